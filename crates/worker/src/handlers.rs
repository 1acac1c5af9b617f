//! The one registration list: which handler runs each job kind, which kinds run on a schedule, and the fleet's
//! options from the configuration. `dossier worker`, `dossier demo`, the tests and the benchmarks all build their
//! fleet here, so they run exactly the same handlers.

use std::time::Duration;

use dossier_core::config::Config;
use dossier_jobs::{
    CompressJob, ExpireJob, HousekeepingJob, JobError, PackCompactJob, PrewarmJob, PromoteJob, RestoreJob, SweepJob,
    TransitionJob,
};
use dossier_lifecycle::Lifecycle;

use crate::queue::{QueueBackend, QueueError, housekeeping};
use crate::runtime::{Fleet, FleetBuilder, FleetError};
use crate::{FleetOptions, RelaySettings};

/// Finished jobs removed per housekeeping step (one bounded Redis call or SQLite statement each).
const HOUSEKEEPING_BATCH: usize = 1000;

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct FleetContext {
    pub lifecycle: Lifecycle,
    pub queues: QueueBackend,
}

/// Why the lifecycle fleet could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("queues: {0}")]
    Queues(#[from] QueueError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// Kinds whose handlers arrive with later capabilities (dedup, rendering, export, erasure) are not registered: their jobs wait in the outbox for a worker that has them.
pub fn registrations(builder: FleetBuilder<FleetContext>) -> FleetBuilder<FleetContext> {
    builder
        .register::<TransitionJob, _, _>(
            |ctx, e| async move { ctx.lifecycle.run_transition(&e.payload, &e.job_id).await },
        )
        .register::<PromoteJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_promote(&e.payload, &e.job_id).await })
        .register::<RestoreJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_restore(&e.payload, &e.job_id).await })
        .register::<PrewarmJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_prewarm(&e.payload, &e.job_id).await })
        .register::<ExpireJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_expire(&e.payload, &e.job_id).await })
        .register::<CompressJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_compress(&e.payload, &e.job_id).await })
        .register::<PackCompactJob, _, _>(|ctx, e| async move {
            ctx.lifecycle.run_pack_compact(&e.payload, &e.job_id).await
        })
        .register::<SweepJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_sweep(&e.payload, &e.job_id).await })
        .register::<HousekeepingJob, _, _>(|ctx, _e| async move {
            housekeeping(&ctx.queues, dossier_jobs::KINDS, HOUSEKEEPING_BATCH)
                .await
                .map(|_| ())
                .map_err(|e| JobError::transient(e.to_string()))
        })
}

impl FleetOptions {
    /// The options `dossier worker` runs with, from the configuration (flags override some of them afterwards).
    pub fn from_config(config: &Config) -> FleetOptions {
        let w = &config.worker;
        FleetOptions {
            concurrency: (w.concurrency as usize).max(1),
            poll_interval: Duration::from_millis(w.poll_interval_ms.max(1)),
            heartbeat_interval: Duration::from_secs(w.heartbeat_secs),
            missed_heartbeats: w.missed_heartbeats as usize,
            shutdown_deadline: Duration::from_secs(w.shutdown_deadline_secs),
            backoff_scale: w.backoff_scale,
            relay: Some(RelaySettings {
                max_waiting: w.relay_max_waiting,
                redispatch_after: Duration::from_secs(w.relay_redispatch_secs),
                ..RelaySettings::default()
            }),
            health_stale_after: Duration::from_secs(w.health_stale_secs),
            ..FleetOptions::default()
        }
    }
}

/// Builds the lifecycle fleet of this process over `lifecycle`'s store, on the queues the configuration names, with
/// the sweep and housekeeping on their configured schedules.
pub async fn lifecycle_fleet(
    config: &Config,
    lifecycle: Lifecycle,
    options: FleetOptions,
) -> Result<Fleet<FleetContext>, BuildError> {
    let queues = QueueBackend::from_config(config).await?;
    let db = lifecycle.store.db.conn.clone();
    let ctx = FleetContext {
        lifecycle,
        queues: queues.clone(),
    };
    let mut builder = registrations(Fleet::builder(ctx, queues, db, options));
    if let Some(expression) = &config.worker.sweep_schedule {
        builder = builder.schedule(expression, SweepJob { as_of: None })?;
    }
    if let Some(expression) = &config.worker.housekeeping_schedule {
        builder = builder.schedule(expression, HousekeepingJob {})?;
    }
    Ok(builder.build()?)
}
