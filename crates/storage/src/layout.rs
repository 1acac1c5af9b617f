//! Where objects live: the bucket of each tier and the object keys Dossier generates.
//!
//! A key is `{area}{sha[0..2]}/{sha}.{blob_uid}`, for example
//! `hot/active/ab/ab12…ef.0190f3c2-…`: the area (from [`FileType::area`]) starts with the tier's name, so a key read
//! back from a bucket listing says which tier it was written for ([`tier_of_key`]); the two-character fan-out keeps
//! filesystem directories small; the blob uid keeps two blobs of the same content (different dedup scopes) apart.

use dossier_core::{FileType, Tier};

/// The bucket that holds each tier's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLayout {
    /// Bucket names in [`Tier::ALL`] order: hot, warm, cold, glacier.
    buckets: [String; 4],
}

impl TierLayout {
    /// Explicit bucket names, in the order hot, warm, cold, glacier.
    pub fn new(buckets: [impl Into<String>; 4]) -> Self {
        Self {
            buckets: buckets.map(Into::into),
        }
    }

    /// The embedded layout: one directory per tier named after it (`hot`, `warm`, `cold`, `glacier`).
    pub fn for_filesystem() -> Self {
        Self::new(Tier::ALL.map(Tier::as_str))
    }

    /// The fleet layout: `<prefix>-hot`, `<prefix>-warm`, `<prefix>-cold`, `<prefix>-glacier`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self::new(Tier::ALL.map(|tier| format!("{prefix}-{tier}")))
    }

    /// The bucket holding `tier`'s objects.
    pub fn bucket(&self, tier: Tier) -> &str {
        &self.buckets[tier_index(tier)]
    }

    /// Every tier with its bucket, hottest first.
    pub fn all(&self) -> [(Tier, &str); 4] {
        Tier::ALL.map(|tier| (tier, self.bucket(tier)))
    }
}

fn tier_index(tier: Tier) -> usize {
    match tier {
        Tier::Hot => 0,
        Tier::Warm => 1,
        Tier::Cold => 2,
        Tier::Glacier => 3,
    }
}

/// The object key of one blob: `{area}{sha[0..2]}/{sha}.{blob_uid}`.
pub fn object_key(file_type: FileType, tier: Tier, sha256_hex: &str, blob_uid: &str) -> String {
    let fan_out = sha256_hex.get(..2).unwrap_or(sha256_hex);
    format!("{area}{fan_out}/{sha256_hex}.{blob_uid}", area = file_type.area(tier))
}

/// The object key of one pack: `{tier}/packs/{uid[0..2]}/pack.{uid}` (the uid last, as in blob keys, so `fsck` can
/// tell its age).
pub fn pack_key(tier: Tier, pack_uid: &str) -> String {
    let fan_out = pack_uid.get(..2).unwrap_or(pack_uid);
    format!("{tier}/packs/{fan_out}/pack.{pack_uid}")
}

/// The tier named by a key's first segment (`"cold/archive/…"` → `Cold`), or `None` for a key Dossier did not write.
pub fn tier_of_key(key: &str) -> Option<Tier> {
    let (first, _) = key.split_once('/')?;
    first.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56abef";

    #[test]
    fn layouts_name_one_bucket_per_tier() {
        let fs = TierLayout::for_filesystem();
        assert_eq!(fs.all().map(|(_, b)| b), ["hot", "warm", "cold", "glacier"]);

        let fleet = TierLayout::with_prefix("dossier");
        assert_eq!(fleet.bucket(Tier::Hot), "dossier-hot");
        assert_eq!(fleet.bucket(Tier::Glacier), "dossier-glacier");
        assert_eq!(fleet.all()[2], (Tier::Cold, "dossier-cold"));

        let custom = TierLayout::new(["a", "b", "c", "d"]);
        assert_eq!(Tier::ALL.map(|t| custom.bucket(t)), ["a", "b", "c", "d"]);
    }

    #[test]
    fn object_key_is_area_fan_out_hash_and_uid() {
        let key = object_key(FileType::ActiveResume, Tier::Hot, SHA, "0190f3c2-uid");
        assert_eq!(key, format!("hot/active/ab/{SHA}.0190f3c2-uid"));

        let key = object_key(FileType::ComplianceRecord, Tier::Cold, SHA, "u1");
        assert_eq!(key, format!("cold/compliance/ab/{SHA}.u1"));
    }

    #[test]
    fn every_generated_key_names_its_tier() {
        for &file_type in FileType::ALL {
            for tier in Tier::ALL {
                assert_eq!(tier_of_key(&object_key(file_type, tier, SHA, "u")), Some(tier));
            }
        }
    }

    #[test]
    fn pack_keys_name_their_tier_and_end_with_the_uid() {
        let key = pack_key(Tier::Cold, "0190f3c2abcd");
        assert_eq!(key, "cold/packs/01/pack.0190f3c2abcd");
        assert_eq!(tier_of_key(&key), Some(Tier::Cold));
    }

    #[test]
    fn foreign_keys_have_no_tier() {
        assert_eq!(tier_of_key("resumes/alice.pdf"), None);
        assert_eq!(tier_of_key("hot"), None);
        assert_eq!(tier_of_key("HOT/active/x"), None);
        assert_eq!(tier_of_key(""), None);
    }
}
