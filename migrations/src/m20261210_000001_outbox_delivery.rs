//! What the fleet runtime needs on an outbox row to run its job exactly as Dossier's attempts say: the attempts
//! spent and the last error (so attempts survive a lost queue), a claim held by the delivery running it (so a
//! duplicate delivery never runs it twice at once), and when it was closed as dead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            integer("attempts").default(0).to_owned(),
            text_null("last_error").to_owned(),
            string_len_null("claimed_by", 128).to_owned(),
            timestamp_with_time_zone_null("claimed_until").to_owned(),
            timestamp_with_time_zone_null("dead_at").to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table("outbox").add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("outbox_job_id")
                    .table("outbox")
                    .col("job_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("dead_jobs_job_id")
                    .table("dead_jobs")
                    .col("job_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("dead_jobs_job_id").table("dead_jobs").to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("outbox_job_id").table("outbox").to_owned())
            .await?;
        for column in ["dead_at", "claimed_until", "claimed_by", "last_error", "attempts"] {
            manager
                .alter_table(Table::alter().table("outbox").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
