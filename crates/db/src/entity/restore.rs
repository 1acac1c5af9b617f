//! `restores`: glacier restores, one open per blob; the bytes are readable once `ready_at` has passed on the clock.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "restores")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub blob_id: i64,
    pub file_id: i64,
    pub user_id: String,
    pub open_blob_id: Option<i64>,
    pub job_id: Option<String>,
    pub requested_at: DateTimeUtc,
    pub ready_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
