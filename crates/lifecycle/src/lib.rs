//! Dossier's lifecycle: what the policies ask for, carried out safely.
//!
//! The sweep pages through versions whose `next_due_at` has passed and enqueues their work through the outbox; the
//! handlers of the worker call the operations here: [`Lifecycle::transition`] (DESIGN.md's protocol: copy, verify,
//! compare-and-set with the lifecycle log, delete the source, evict the cache), promotion, pre-warming, glacier
//! restores on the injected clock, expiry with the audit row first, and `fsck`. Every operation is idempotent, so
//! at-least-once delivery never does work twice.
//!
//! A blob's states: `live → moving → live` while its bytes change tier (a crash leaves it `moving`, and the re-run of
//! the same job resumes), `live → deleting` once nothing references it.

mod compress;
mod error;
mod fsck;
mod jobs;
mod manage;
mod pack;
mod read;
mod restore;
mod sweep;
mod transition;

use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_core::Tier;
use dossier_core::config::LifecycleConfig;
use dossier_db::DbError;
use dossier_db::entity::lifecycle_log;
use dossier_documents::DocumentStore;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

pub use compress::CompressOutcome;
pub use error::LifecycleError;
pub use fsck::FsckReport;
pub use manage::{ApplicationUpdate, ExpireOutcome};
pub use pack::CompactOutcome;
pub use restore::RestoreOutcome;
pub use sweep::{PlannedWork, SweepReport, due_page};
pub use transition::{MoveKind, TransitionOutcome};

/// The lifecycle operations over one document store.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub store: DocumentStore,
    pub config: LifecycleConfig,
    /// Test-only: sleep between the copy and the database update of a transition, so that a test can kill the worker
    /// there (`DOSSIER_TEST_PAUSE_AFTER_COPY_MS`).
    pub pause_after_copy: Option<Duration>,
    /// Test-only: a named point where the process aborts (`DOSSIER_TEST_FAILPOINT`), for crash tests.
    pub failpoint: Option<String>,
}

impl Lifecycle {
    pub fn new(store: DocumentStore, config: LifecycleConfig) -> Self {
        let pause_after_copy = std::env::var("DOSSIER_TEST_PAUSE_AFTER_COPY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        Self {
            store,
            config,
            pause_after_copy,
            failpoint: std::env::var("DOSSIER_TEST_FAILPOINT").ok(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.store.now()
    }

    /// How long a restore out of `tier` takes.
    pub fn restore_time(&self, tier: Tier) -> chrono::Duration {
        match tier {
            Tier::Glacier => chrono::Duration::hours(self.config.restore_hours as i64),
            _ => chrono::Duration::zero(),
        }
    }
}

/// One row of `storage_lifecycle_log`.
#[derive(Debug, Clone)]
pub struct LogEntry<'a> {
    pub file_id: Option<i64>,
    pub blob_id: Option<i64>,
    pub user_id: &'a str,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub reason: &'a str,
    pub policy: Option<&'a str>,
    pub job_id: Option<&'a str>,
}

pub(crate) async fn log(conn: &impl ConnectionTrait, e: LogEntry<'_>, now: DateTime<Utc>) -> Result<(), DbError> {
    lifecycle_log::ActiveModel {
        file_id: Set(e.file_id),
        blob_id: Set(e.blob_id),
        user_id: Set(e.user_id.to_owned()),
        from_tier: Set(e.from.map(str::to_owned)),
        to_tier: Set(e.to.to_owned()),
        reason: Set(e.reason.to_owned()),
        policy: Set(e.policy.map(str::to_owned)),
        job_id: Set(e.job_id.map(str::to_owned)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map_err(DbError::query("writing the lifecycle log"))?;
    Ok(())
}
