//! Reading through the lifecycle: glacier documents need a finished restore first, and a warm or cold document read
//! often enough within its policy's window is promoted back to hot.

use chrono::Duration;
use dossier_core::{FileType, Tier};
use dossier_db::DbError;
use dossier_db::entity::{access_event, blob};
use dossier_documents::{DocError, ReadOutcome};
use dossier_jobs::PromoteJob;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// Reads one version of a user's document: glacier bytes only after a restore (the first read starts it and
    /// answers [`DocError::Restoring`]), and frequently read warm or cold documents are queued for promotion.
    pub async fn read(&self, user: &str, key: &str, version: Option<i32>) -> Result<ReadOutcome, LifecycleError> {
        let store = &self.store;
        let now = self.now();
        let row = store.find_version(&store.db.conn, user, key, version).await?;
        let blob = blob::Entity::find_by_id(row.blob_id)
            .one(&store.db.conn)
            .await
            .map_err(DbError::query("finding the content"))?
            .ok_or_else(|| DocError::Integrity(format!("document {key:?} points at missing content")))?;
        if blob.tier == Tier::Glacier.as_str() && !self.is_restored(&blob, now) {
            let (eta, job_id) = self.request_restore(&row, &blob).await?;
            if eta > now {
                return Err(DocError::Restoring { eta, job_id }.into());
            }
            // The restore time has passed but no job has finished it yet (its job ran early, or none ran since):
            // finishing it is idempotent, so the reader does not wait for the next sweep.
            self.complete_restore(blob.id, Some(&job_id)).await?;
        }
        let outcome = store.get(user, key, version).await?;

        let tier: Tier = row.storage_tier.parse().unwrap_or(Tier::Hot);
        if matches!(tier, Tier::Warm | Tier::Cold) && !row.pinned && !row.legal_hold {
            let policy = store.policies.get(row.file_type.parse().unwrap_or(FileType::Temp));
            let since = now - Duration::days(i64::from(policy.promotion_window_days));
            let reads = access_event::Entity::find()
                .filter(access_event::Column::FileId.eq(row.id))
                .filter(access_event::Column::AccessedAt.gt(since))
                .count(&store.db.conn)
                .await
                .map_err(DbError::query("counting reads"))?;
            if reads > u64::from(policy.promote_after_reads) {
                let enqueued = dossier_producer::enqueue(&store.db.conn, &PromoteJob { file_id: row.id }, now).await?;
                if enqueued.created {
                    tracing::info!(file = row.id, reads, "promotion queued");
                }
            }
        }
        Ok(outcome)
    }
}
