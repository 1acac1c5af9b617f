//! `storage_lifecycle_log`: every placement, transition, promotion, restore and expiry, with the policy or request
//! that caused it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_lifecycle_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub file_id: Option<i64>,
    pub blob_id: Option<i64>,
    pub user_id: String,
    pub from_tier: Option<String>,
    pub to_tier: String,
    pub reason: String,
    pub policy: Option<String>,
    pub job_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
