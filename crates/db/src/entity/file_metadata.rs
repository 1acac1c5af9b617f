//! `file_metadata`: one row per stored version of a user's document.
//!
//! `(user_id, doc_key, version_no)` is unique; the highest version is current (`is_active`), older ones are
//! superseded. `next_due_at` is when the policy next wants something done: the sweep reads only rows due by now.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "file_metadata")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub file_key: String,
    pub user_id: String,
    pub doc_key: String,
    pub version_no: i32,
    pub original_name: String,
    pub file_type: String,
    pub content_hash: String,
    pub file_size: i64,
    pub storage_tier: String,
    pub blob_id: i64,
    pub job_application_id: Option<String>,
    pub is_active: bool,
    pub legal_hold: bool,
    pub pinned: bool,
    pub access_count: i32,
    pub created_at: DateTimeUtc,
    pub last_accessed_at: DateTimeUtc,
    pub tier_changed_at: DateTimeUtc,
    pub superseded_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub next_due_at: Option<DateTimeUtc>,
    /// When the version was last brought back to hot: age rules count from here rather than from creation.
    pub promoted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
