//! `packs`: containers of small blobs in one tier, written whole when sealed and read back member by member with
//! ranged GETs. S3 neither transitions nor cheaply stores resume-sized objects (128 KiB minimum billable size, about
//! 40 KB of archive overhead per object); a pack of several MiB pays those once for hundreds of members.
//!
//! States: `sealed` (written, members point into it) → `compacting` (its live members are being copied into a new
//! pack) → `deleted` (no member points into it; its object is removed, then its row).

use sea_orm::entity::prelude::*;

pub const SEALED: &str = "sealed";
pub const COMPACTING: &str = "compacting";
pub const DELETED: &str = "deleted";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "packs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tier: String,
    pub bucket: String,
    pub object_key: String,
    pub state: String,
    /// Bytes of members when it was sealed (the object adds its index and trailer).
    pub sealed_size: i64,
    /// Bytes of members still referenced.
    pub live_bytes: i64,
    pub member_count: i32,
    pub created_at: DateTimeUtc,
    pub sealed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
