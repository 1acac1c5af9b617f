//! The pack object format: members one after another, then a JSON index of them, its length (8 bytes, little
//! endian) and a magic trailer. The database is the source of truth for where each member lies; the index makes a
//! pack self-describing, so compaction can check the database against it before it rewrites anything.

use serde::{Deserialize, Serialize};

/// The last 8 bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"DSPACK01";

/// One member as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// The blob's uid.
    pub uid: String,
    pub offset: u64,
    pub length: u64,
}

/// Why bytes are not a pack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a readable pack: {0}")]
pub struct PackError(String);

/// Builds one pack in memory (packs are several MiB, written whole when sealed).
#[derive(Debug, Default)]
pub struct PackWriter {
    body: Vec<u8>,
    index: Vec<PackEntry>,
}

impl PackWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a member; returns its offset and length in the pack.
    pub fn append(&mut self, uid: &str, bytes: &[u8]) -> (u64, u64) {
        let offset = self.body.len() as u64;
        self.body.extend_from_slice(bytes);
        let length = bytes.len() as u64;
        self.index.push(PackEntry {
            uid: uid.to_owned(),
            offset,
            length,
        });
        (offset, length)
    }

    /// Bytes of members so far.
    pub fn len(&self) -> u64 {
        self.body.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The whole pack object.
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.body;
        let index = serde_json::to_vec(&self.index).unwrap_or_default();
        out.extend_from_slice(&index);
        out.extend_from_slice(&(index.len() as u64).to_le_bytes());
        out.extend_from_slice(PACK_MAGIC);
        out
    }
}

/// The index of a whole pack object, checked against its size.
pub fn read_index(pack: &[u8]) -> Result<Vec<PackEntry>, PackError> {
    let trailer = PACK_MAGIC.len() + 8;
    if pack.len() < trailer || &pack[pack.len() - PACK_MAGIC.len()..] != PACK_MAGIC {
        return Err(PackError("no pack trailer".into()));
    }
    let len_at = pack.len() - trailer;
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&pack[len_at..len_at + 8]);
    let index_len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| PackError("index too long".into()))?;
    let index_at = len_at
        .checked_sub(index_len)
        .ok_or_else(|| PackError("index longer than the pack".into()))?;
    let entries: Vec<PackEntry> =
        serde_json::from_slice(&pack[index_at..len_at]).map_err(|e| PackError(format!("index: {e}")))?;
    if let Some(e) = entries
        .iter()
        .find(|e| e.offset.checked_add(e.length).is_none_or(|end| end > index_at as u64))
    {
        return Err(PackError(format!("member {} lies outside the pack", e.uid)));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_back_from_their_ranges_and_the_index() {
        let mut w = PackWriter::new();
        let a = w.append("a", b"first member");
        let b = w.append("b", b"");
        let c = w.append("c", &[7u8; 1000]);
        assert_eq!((a, b, c), ((0, 12), (12, 0), (12, 1000)));
        let pack = w.finish();
        let index = read_index(&pack).expect("index");
        assert_eq!(
            index.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(&pack[0..12], b"first member");
        assert_eq!(&pack[12..1012], &[7u8; 1000][..]);
    }

    #[test]
    fn damaged_packs_are_errors_not_panics() {
        let mut w = PackWriter::new();
        w.append("a", b"bytes");
        let pack = w.finish();
        for cut in 0..pack.len() {
            assert!(read_index(&pack[..cut]).is_err(), "cut at {cut}");
        }
        let mut lying = pack.clone();
        let len_at = lying.len() - 16;
        lying[len_at..len_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_index(&lying).is_err());
    }
}
