//! Storage efficiency: when a blob's compression was last decided (so a probe that said "keep raw" is not repeated),
//! how deep a delta blob sits in its chain (a keyframe is depth 0), an index to find the deltas built on a blob, and
//! the tier whose next pack a small blob waits for (its bytes stay where they are until the pack is sealed).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            timestamp_with_time_zone_null("codec_checked_at").to_owned(),
            integer("delta_depth").default(0).to_owned(),
            string_len_null("pack_pending_tier", 16)
                .check(Expr::cust("pack_pending_tier IN ('hot', 'warm', 'cold', 'glacier')"))
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table("blobs").add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("blobs_delta_base")
                    .table("blobs")
                    .col("delta_base_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("blobs_pack_pending")
                    .table("blobs")
                    .col("pack_pending_tier")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("blobs_pack")
                    .table("blobs")
                    .col("pack_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["blobs_pack", "blobs_pack_pending", "blobs_delta_base"] {
            manager
                .drop_index(Index::drop().name(index).table("blobs").to_owned())
                .await?;
        }
        for column in ["pack_pending_tier", "delta_depth", "codec_checked_at"] {
            manager
                .alter_table(Table::alter().table("blobs").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
