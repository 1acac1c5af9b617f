//! Lifecycle state: when a version was last promoted (age rules restart from it), which interview an application was
//! pre-warmed for, glacier restores in progress, and leases for fleet-wide single-flight work such as the sweep.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("file_metadata")
                    .add_column(timestamp_with_time_zone_null("promoted_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("job_applications")
                    .add_column(timestamp_with_time_zone_null("prewarmed_for"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("restores")
                    .col(big_pk_auto("id"))
                    .col(big_integer("blob_id"))
                    .col(big_integer("file_id"))
                    .col(string_len("user_id", 128))
                    // Equal to blob_id while the restore is open, NULL once done: one open restore per blob.
                    .col(big_integer_null("open_blob_id").unique_key())
                    .col(string_len_null("job_id", 64))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone("ready_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("restores_ready_open")
                    .table("restores")
                    .col("completed_at")
                    .col("ready_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("leases")
                    .col(string_len("name", 64).primary_key())
                    .col(string_len("holder", 128))
                    .col(timestamp_with_time_zone("expires_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("leases").to_owned()).await?;
        manager.drop_table(Table::drop().table("restores").to_owned()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table("job_applications")
                    .drop_column("prewarmed_for")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("file_metadata")
                    .drop_column("promoted_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
