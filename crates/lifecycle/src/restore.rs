//! Glacier restores on the injected clock: the first read starts one restore, later reads see the same one, and the
//! bytes become readable once its ready time has passed (the sweep completes restores that are due).

use chrono::{DateTime, Utc};
use dossier_core::Tier;
use dossier_db::DbError;
use dossier_db::entity::{blob, file_metadata, restore};
use dossier_jobs::RestoreJob;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde::Serialize;

use crate::{Lifecycle, LifecycleError, LogEntry, log};

/// What a restore job found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RestoreOutcome {
    Completed { readable_until: DateTime<Utc> },
    NotYet { ready_at: DateTime<Utc> },
    Gone,
}

impl Lifecycle {
    /// Starts a restore of a glacier blob unless one is open; returns its ETA and job id either way.
    pub async fn request_restore(
        &self,
        row: &file_metadata::Model,
        blob: &blob::Model,
    ) -> Result<(DateTime<Utc>, String), LifecycleError> {
        let now = self.now();
        let conn = &self.store.db.conn;
        if let Some(open) = self.open_restore(blob.id).await? {
            return Ok((open.ready_at, open.job_id.unwrap_or_default()));
        }
        let ready_at = now + self.restore_time(Tier::Glacier);
        let txn = conn.begin().await.map_err(DbError::query("starting a transaction"))?;
        let inserted = restore::Entity::insert(restore::ActiveModel {
            blob_id: Set(blob.id),
            file_id: Set(row.id),
            user_id: Set(row.user_id.clone()),
            open_blob_id: Set(Some(blob.id)),
            requested_at: Set(now),
            ready_at: Set(ready_at),
            ..Default::default()
        })
        .on_conflict(OnConflict::column(restore::Column::OpenBlobId).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await
        .map_err(DbError::query("recording the restore"))?;
        if inserted == 0 {
            drop(txn);
            let open = self
                .open_restore(blob.id)
                .await?
                .ok_or_else(|| LifecycleError::Busy("restore raced".into()))?;
            return Ok((open.ready_at, open.job_id.unwrap_or_default()));
        }
        let job = RestoreJob {
            file_id: row.id,
            blob_id: blob.id,
            ready_at,
        };
        let enqueued = dossier_producer::enqueue(&txn, &job, now).await?;
        restore::Entity::update_many()
            .col_expr(restore::Column::JobId, Expr::value(enqueued.job_id.clone()))
            .filter(restore::Column::OpenBlobId.eq(blob.id))
            .exec(&txn)
            .await
            .map_err(DbError::query("recording the restore job"))?;
        dossier_db::entity::audit_log::ActiveModel {
            user_id: Set(row.user_id.clone()),
            action: Set("restore".to_owned()),
            doc_key: Set(Some(row.doc_key.clone())),
            reason: Set(Some("read".to_owned())),
            detail: Set(Some(
                serde_json::json!({ "version": row.version_no, "ready_at": ready_at }),
            )),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(DbError::query("auditing the restore"))?;
        txn.commit().await.map_err(DbError::query("committing the restore"))?;
        tracing::info!(file = row.id, blob = blob.id, %ready_at, "glacier restore requested");
        Ok((ready_at, enqueued.job_id))
    }

    async fn open_restore(&self, blob_id: i64) -> Result<Option<restore::Model>, LifecycleError> {
        Ok(restore::Entity::find()
            .filter(restore::Column::OpenBlobId.eq(blob_id))
            .one(&self.store.db.conn)
            .await
            .map_err(DbError::query("finding an open restore"))?)
    }

    /// The restore job: completes the blob's open restore once its ready time has passed on the clock.
    pub async fn complete_restore(&self, blob_id: i64, job_id: Option<&str>) -> Result<RestoreOutcome, LifecycleError> {
        let now = self.now();
        let Some(open) = self.open_restore(blob_id).await? else {
            return Ok(RestoreOutcome::Gone);
        };
        if open.ready_at > now {
            return Ok(RestoreOutcome::NotYet {
                ready_at: open.ready_at,
            });
        }
        let readable_until = now + chrono::Duration::days(self.config.restored_days as i64);
        let txn = self
            .store
            .db
            .conn
            .begin()
            .await
            .map_err(DbError::query("starting a transaction"))?;
        blob::Entity::update_many()
            .col_expr(blob::Column::RestoredUntil, Expr::value(Some(readable_until)))
            .col_expr(blob::Column::UpdatedAt, Expr::value(now))
            .filter(blob::Column::Id.eq(blob_id))
            .exec(&txn)
            .await
            .map_err(DbError::query("marking the content restored"))?;
        let closed = restore::Entity::update_many()
            .col_expr(restore::Column::CompletedAt, Expr::value(Some(now)))
            .col_expr(restore::Column::OpenBlobId, Expr::value(Option::<i64>::None))
            .filter(restore::Column::Id.eq(open.id))
            .filter(restore::Column::OpenBlobId.eq(blob_id))
            .exec(&txn)
            .await
            .map_err(DbError::query("closing the restore"))?;
        if closed.rows_affected != 1 {
            return Ok(RestoreOutcome::Completed { readable_until });
        }
        let entry = LogEntry {
            file_id: Some(open.file_id),
            blob_id: Some(blob_id),
            user_id: &open.user_id,
            from: Some("glacier"),
            to: "glacier",
            reason: "restore",
            policy: None,
            job_id,
        };
        log(&txn, entry, now).await?;
        txn.commit().await.map_err(DbError::query("committing the restore"))?;
        tracing::info!(blob = blob_id, %readable_until, "glacier restore completed");
        Ok(RestoreOutcome::Completed { readable_until })
    }
}
