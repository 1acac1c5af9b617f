//! The tables of DESIGN.md: users, job applications, file versions, blobs, packs, access events, the lifecycle and
//! audit logs, the outbox and dead jobs.
//!
//! A blob moves through the states `live → moving → live` (a tier transition) and `live → deleting` (its last
//! reference is gone); `corrupt` marks content that failed verification. The CHECK constraints refuse anything else.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TIERS: &str = "('hot', 'warm', 'cold', 'glacier')";

fn tier_check(column: &'static str) -> Expr {
    Expr::cust(format!("{column} IN {TIERS}"))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(string_len("id", 128).primary_key())
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("job_applications")
                    .col(big_pk_auto("id"))
                    .col(string_len("user_id", 128))
                    .col(string_len("application_id", 256))
                    .col(string_len_null("status", 64))
                    .col(timestamp_with_time_zone_null("applied_at"))
                    .col(timestamp_with_time_zone_null("interview_at"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("job_applications", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("job_applications_user_application")
                    .table("job_applications")
                    .col("user_id")
                    .col("application_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("job_applications_interview_at")
                    .table("job_applications")
                    .col("interview_at")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("packs")
                    .col(big_pk_auto("id"))
                    .col(string_len("tier", 16).check(tier_check("tier")))
                    .col(string_len("bucket", 255))
                    .col(string_len("object_key", 1024))
                    .col(
                        string_len("state", 16)
                            .check(Expr::cust("state IN ('open', 'sealed', 'compacting', 'deleted')")),
                    )
                    .col(big_integer("sealed_size").default(0))
                    .col(big_integer("live_bytes").default(0))
                    .col(integer("member_count").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("sealed_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("blobs")
                    .col(big_pk_auto("id"))
                    .col(string_len("uid", 64).unique_key())
                    .col(string_len("scope", 160))
                    .col(string_len("sha256", 64))
                    .col(big_integer("size"))
                    .col(big_integer("stored_size"))
                    .col(string_len("codec", 16).default("raw"))
                    .col(string_len("tier", 16).check(tier_check("tier")))
                    .col(string_len("bucket", 255))
                    .col(string_len("object_key", 1024))
                    .col(big_integer_null("pack_id"))
                    .col(big_integer_null("pack_offset"))
                    .col(big_integer_null("pack_length"))
                    .col(big_integer_null("delta_base_id"))
                    .col(integer("refcount").check(Expr::cust("refcount >= 0")))
                    .col(
                        string_len("state", 16).check(Expr::cust("state IN ('live', 'moving', 'deleting', 'corrupt')")),
                    )
                    .col(timestamp_with_time_zone_null("restored_until"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(ForeignKey::create().from("blobs", "pack_id").to("packs", "id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("blobs_scope_sha256")
                    .table("blobs")
                    .col("scope")
                    .col("sha256")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("blobs_state")
                    .table("blobs")
                    .col("state")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("file_metadata")
                    .col(big_pk_auto("id"))
                    .col(string_len("file_key", 64).unique_key())
                    .col(string_len("user_id", 128))
                    .col(string_len("doc_key", 1024))
                    .col(integer("version_no").check(Expr::cust("version_no >= 1")))
                    .col(string_len("original_name", 1024))
                    .col(string_len("file_type", 32))
                    .col(string_len("content_hash", 64))
                    .col(big_integer("file_size"))
                    .col(string_len("storage_tier", 16).check(tier_check("storage_tier")))
                    .col(big_integer("blob_id"))
                    .col(string_len_null("job_application_id", 256))
                    .col(boolean("is_active"))
                    .col(boolean("legal_hold").default(false))
                    .col(boolean("pinned").default(false))
                    .col(integer("access_count").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("last_accessed_at"))
                    .col(timestamp_with_time_zone("tier_changed_at"))
                    .col(timestamp_with_time_zone_null("superseded_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("next_due_at"))
                    .foreign_key(ForeignKey::create().from("file_metadata", "user_id").to("users", "id"))
                    .foreign_key(ForeignKey::create().from("file_metadata", "blob_id").to("blobs", "id"))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "file_metadata_user_key_version",
                &["user_id", "doc_key", "version_no"][..],
                true,
            ),
            ("file_metadata_user_active", &["user_id", "is_active"][..], false),
            ("file_metadata_tier_created", &["storage_tier", "created_at"][..], false),
            ("file_metadata_expires_at", &["expires_at"][..], false),
            ("file_metadata_next_due_at", &["next_due_at"][..], false),
            ("file_metadata_blob", &["blob_id"][..], false),
            (
                "file_metadata_application",
                &["user_id", "job_application_id"][..],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table("file_metadata");
            for col in cols {
                index.col(*col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("access_events")
                    .col(big_pk_auto("id"))
                    .col(big_integer("file_id"))
                    .col(string_len("user_id", 128))
                    .col(string_len("tier", 16).check(tier_check("tier")))
                    .col(timestamp_with_time_zone("accessed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("access_events_file_at")
                    .table("access_events")
                    .col("file_id")
                    .col("accessed_at")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("storage_lifecycle_log")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("file_id"))
                    .col(big_integer_null("blob_id"))
                    .col(string_len("user_id", 128))
                    .col(string_len_null("from_tier", 16))
                    .col(string_len("to_tier", 16))
                    .col(string_len("reason", 32))
                    .col(string_len_null("policy", 64))
                    .col(string_len_null("job_id", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("storage_lifecycle_log_file")
                    .table("storage_lifecycle_log")
                    .col("file_id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .col(big_pk_auto("id"))
                    .col(string_len("user_id", 128))
                    .col(string_len("action", 32))
                    .col(string_len_null("doc_key", 1024))
                    .col(string_len_null("reason", 64))
                    .col(json_null("detail"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_log_user_created")
                    .table("audit_log")
                    .col("user_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .col(big_pk_auto("id"))
                    .col(string_len("queue", 64))
                    .col(json("payload"))
                    .col(string_len_null("idempotency_key", 512).unique_key())
                    .col(string_len_null("job_id", 64))
                    .col(integer("dispatch_count").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("dispatched_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_open")
                    .table("outbox")
                    .col("completed_at")
                    .col("dispatched_at")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("dead_jobs")
                    .col(big_pk_auto("id"))
                    .col(string_len("queue", 64))
                    .col(string_len("job_id", 64))
                    .col(json("payload"))
                    .col(integer("attempts"))
                    .col(text("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "dead_jobs",
            "outbox",
            "audit_log",
            "storage_lifecycle_log",
            "access_events",
            "file_metadata",
            "blobs",
            "packs",
            "job_applications",
            "users",
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
