//! `blobs`: one row per stored content, content-addressed by SHA-256 within a dedup scope and refcounted.
//!
//! States: `live → moving → live` during a tier transition, `live → deleting` once the last reference is gone,
//! `corrupt` when the bytes failed verification.

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
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
