//! How a version's bytes are stored at rest, and how they come back.
//!
//! New content is stored, in this order of preference:
//! - as a zstd delta against the previous version of the same document, when both are text (decided by content),
//!   the previous version's content sits in the same tier, and the chain is shorter than the keyframe interval;
//! - LZ4-framed, when compression is decided at ingest and a cheap probe and the whole result save at least the
//!   configured fraction;
//! - raw otherwise. Either way the decision is recorded (`codec_checked_at`), so no job probes it again.
//!
//! Reading decodes with the size the database recorded as the bound and verifies size and SHA-256; bytes that do
//! not decode or verify mark the blob `corrupt` and are an integrity error, never a panic.

use bytes::Bytes;
use dossier_core::Tier;
use dossier_core::config::CompressMode;
use dossier_db::DbError;
use dossier_db::entity::blob;
use dossier_storage::StorageErrorKind;
use dossier_storage::codec::{self, Codec};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{DocError, DocumentStore, sha256_hex};

/// zstd level for deltas: small inputs, so a high level costs little.
const DELTA_LEVEL: i32 = 19;

/// How new content will be stored.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) codec: Codec,
    pub(crate) bytes: Bytes,
    /// The base blob and the depth of the new delta in its chain.
    pub(crate) delta: Option<(i64, i32)>,
    /// Whether the codec was decided now (false: left for a `compress` job).
    pub(crate) checked: bool,
}

impl DocumentStore {
    /// Chooses how to store `bytes`, a new version whose previous version's content is `previous` (if any), bound
    /// for `tier`.
    pub(crate) async fn encode_new(&self, bytes: &Bytes, previous: Option<&blob::Model>, tier: Tier) -> Encoded {
        let raw = Encoded {
            codec: Codec::Raw,
            bytes: bytes.clone(),
            delta: None,
            checked: self.storage.compress != CompressMode::Job,
        };
        let mut best = raw;
        if self.storage.compress == CompressMode::Ingest
            && !bytes.is_empty()
            && codec::lz4_worth_it(bytes, self.storage.compress_min_saving)
        {
            let framed = codec::lz4_compress(bytes);
            if saves_enough(bytes.len(), framed.len(), self.storage.compress_min_saving) {
                best = Encoded {
                    codec: Codec::Lz4,
                    bytes: framed.into(),
                    delta: None,
                    checked: true,
                };
            }
        }
        if let Some(delta) = self.delta_against(bytes, previous, tier).await
            && delta.bytes.len() < best.bytes.len()
        {
            best = delta;
        }
        best
    }

    async fn delta_against(&self, bytes: &Bytes, previous: Option<&blob::Model>, tier: Tier) -> Option<Encoded> {
        let keyframe_every = i32::try_from(self.storage.delta_keyframe_every).unwrap_or(i32::MAX);
        let base = previous?;
        let depth = base.delta_depth.saturating_add(1);
        let usable = keyframe_every > 0
            && depth < keyframe_every
            && base.state == blob::LIVE
            && base.pack_id.is_none()
            && base.tier.parse::<Tier>().ok() == Some(tier)
            && codec::is_text(bytes);
        if !usable {
            return None;
        }
        let reference = match self.read_blob(base).await {
            Ok((reference, _)) => reference,
            Err(error) => {
                tracing::warn!(blob = base.id, %error, "previous version unreadable; stored whole");
                return None;
            }
        };
        if !codec::is_text(&reference) {
            return None;
        }
        match codec::zstd_compress(bytes, DELTA_LEVEL, Some(&reference)) {
            Ok(delta) => Some(Encoded {
                codec: Codec::Zstd,
                bytes: delta.into(),
                delta: Some((base.id, depth)),
                checked: true,
            }),
            Err(error) => {
                tracing::warn!(blob = base.id, %error, "delta encoding failed; stored whole");
                None
            }
        }
    }

    /// The content of a blob from its stored bytes: decoded (a delta against its base's content, read first),
    /// bounded by and checked against the recorded size, and verified by SHA-256. Bytes that fail mark the blob
    /// `corrupt`.
    pub async fn decode_blob(&self, blob: &blob::Model, stored: Bytes) -> Result<Bytes, DocError> {
        match self.decode_content(blob, stored).await? {
            Ok(bytes) => Ok(bytes),
            Err(why) => Err(self.corrupt(blob, &why).await),
        }
    }

    /// Checks that `stored` (a copy, say) decodes to the blob's recorded content; says why not otherwise.
    pub async fn verify_content(&self, blob: &blob::Model, stored: Bytes) -> Result<(), String> {
        match self.decode_content(blob, stored).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(why)) => Err(why),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Decodes and verifies; the outer error is a failure to read what decoding needs (the delta base), the inner
    /// one says why these bytes are not the content.
    async fn decode_content(&self, blob: &blob::Model, stored: Bytes) -> Result<Result<Bytes, String>, DocError> {
        let codec: Codec = match blob.codec.parse() {
            Ok(codec) => codec,
            Err(e) => return Ok(Err(format!("{e}"))),
        };
        let expected = u64::try_from(blob.size).unwrap_or_default();
        let decoded = match (codec, blob.delta_base_id) {
            (Codec::Zstd, Some(base_id)) => {
                let base = blob::Entity::find_by_id(base_id)
                    .one(&self.db.conn)
                    .await
                    .map_err(DbError::query("finding a delta's base"))?
                    .ok_or_else(|| DocError::Integrity(format!("content {} lost its delta base", blob.sha256)))?;
                let (reference, _) = Box::pin(self.read_blob(&base)).await?;
                codec::zstd_decompress(&stored, expected, Some(&reference))
            }
            (codec, _) => codec::decode(codec, &stored, expected),
        };
        Ok(match decoded {
            Err(e) => Err(e.to_string()),
            Ok(bytes) if bytes.len() as i64 != blob.size || sha256_hex(&bytes) != blob.sha256 => {
                Err("read back with a different hash".to_owned())
            }
            Ok(bytes) => Ok(bytes.into()),
        })
    }

    /// Reads a blob's stored bytes from its tier: its own object, or its range of a pack.
    pub async fn fetch_stored(&self, blob: &blob::Model) -> Result<Bytes, DocError> {
        let tier: Tier = blob.tier.parse().unwrap_or(Tier::Hot);
        let fetched = match (blob.pack_id, blob.pack_offset, blob.pack_length) {
            (Some(_), Some(offset), Some(length)) => {
                let start = u64::try_from(offset).unwrap_or_default();
                let end = start.saturating_add(u64::try_from(length).unwrap_or_default());
                self.objects.get_range(&blob.bucket, &blob.object_key, start..end).await
            }
            _ => self.objects.get(&blob.bucket, &blob.object_key).await,
        };
        fetched.map_err(|e| match e.kind {
            StorageErrorKind::NotFound => DocError::Integrity(format!(
                "the object of content {} is missing from the {tier} tier",
                blob.sha256
            )),
            _ => e.into(),
        })
    }

    /// Marks a blob whose bytes failed to decode or verify `corrupt`, so it is reported and never served.
    async fn corrupt(&self, blob: &blob::Model, why: &str) -> DocError {
        tracing::error!(blob = blob.id, codec = %blob.codec, why, "stored bytes failed verification; marked corrupt");
        let marked = blob::Entity::update_many()
            .col_expr(blob::Column::State, Expr::value(blob::CORRUPT))
            .filter(blob::Column::Id.eq(blob.id))
            .filter(blob::Column::State.eq(blob::LIVE))
            .exec(&self.db.conn)
            .await;
        if let Err(e) = marked {
            tracing::warn!(blob = blob.id, error = %e, "could not mark content corrupt");
        }
        DocError::Integrity(format!("content {} is corrupt: {why}", blob.sha256))
    }
}

/// Whether `stored` bytes for `raw` bytes save at least `min_saving` of them.
pub(crate) fn saves_enough(raw: usize, stored: usize, min_saving: f64) -> bool {
    (stored as f64) <= raw as f64 * (1.0 - min_saving)
}
