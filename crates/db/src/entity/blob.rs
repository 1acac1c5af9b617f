//! `blobs`: one row per stored content, content-addressed by SHA-256 within a dedup scope and refcounted.
//!
//! States: `live → moving → live` during a tier transition, `live → deleting` once the last reference is gone,
//! `corrupt` when the bytes failed verification.
//!
//! Bytes at rest are `codec`-encoded (`raw`, `lz4`, `zstd`), `stored_size` long; a delta (`delta_base_id` set) is
//! zstd with the base blob's content as reference, so the base stays at least as hot as every delta built on it.

use sea_orm::entity::prelude::*;

pub const LIVE: &str = "live";
pub const MOVING: &str = "moving";
pub const DELETING: &str = "deleting";
pub const CORRUPT: &str = "corrupt";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Dossier's own unique id, part of the object key so that no two blobs ever share an object.
    pub uid: String,
    /// `u:<user>` for per-user dedup, `global`, or `shared` for templates and common sections.
    pub scope: String,
    pub sha256: String,
    pub size: i64,
    pub stored_size: i64,
    pub codec: String,
    pub tier: String,
    pub bucket: String,
    pub object_key: String,
    pub pack_id: Option<i64>,
    pub pack_offset: Option<i64>,
    pub pack_length: Option<i64>,
    pub delta_base_id: Option<i64>,
    pub refcount: i32,
    pub state: String,
    pub restored_until: Option<DateTimeUtc>,
    /// When the codec was last decided (at ingest, or by a `compress` job); `None`: never looked at.
    pub codec_checked_at: Option<DateTimeUtc>,
    /// 0 for content stored whole; n for a delta whose base is at depth n - 1.
    pub delta_depth: i32,
    /// A small blob bound for a packed tier waits here for the next pack of that tier; its bytes stay in `tier`.
    pub pack_pending_tier: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
