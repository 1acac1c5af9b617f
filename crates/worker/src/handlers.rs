//! The one registration list: which handler runs each job kind, and the fleet's options from the configuration.

use std::net::SocketAddr;
use std::time::Duration;

use dossier_core::config::Config;
use dossier_jobs::{ExpireJob, HousekeepingJob, Job, PrewarmJob, PromoteJob, RestoreJob, SweepJob, TransitionJob};
use dossier_lifecycle::Lifecycle;
use dossier_worker::{Fleet, FleetBuilder, FleetOptions, QueueBackend, RelaySettings};

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct FleetContext {
    pub lifecycle: Lifecycle,
    pub queues: QueueBackend,
}

/// Kinds whose handlers arrive with later capabilities (compression, dedup, packs, rendering, export, erasure) are
/// not registered: their jobs wait in the outbox for a worker that has them.
pub fn registrations(builder: FleetBuilder<FleetContext>) -> FleetBuilder<FleetContext> {
    builder
        .register::<TransitionJob, _, _>(
            |ctx, e| async move { ctx.lifecycle.run_transition(&e.payload, &e.job_id).await },
        )
        .register::<PromoteJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_promote(&e.payload, &e.job_id).await })
        .register::<RestoreJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_restore(&e.payload, &e.job_id).await })
        .register::<PrewarmJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_prewarm(&e.payload, &e.job_id).await })
        .register::<ExpireJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_expire(&e.payload, &e.job_id).await })
        .register::<SweepJob, _, _>(|ctx, e| async move { ctx.lifecycle.run_sweep(&e.payload, &e.job_id).await })
        .register::<HousekeepingJob, _, _>(|ctx, _e| async move {
            let kinds = [
                TransitionJob::KIND,
                PromoteJob::KIND,
                RestoreJob::KIND,
                PrewarmJob::KIND,
                ExpireJob::KIND,
                SweepJob::KIND,
                HousekeepingJob::KIND,
            ];
            dossier_worker::housekeeping(&ctx.queues, &kinds, 1000)
                .await
                .map(|_| ())
                .map_err(|e| dossier_jobs::JobError::transient(e.to_string()))
        })
}

/// The fleet's options from the configuration and the `worker` flags.
pub fn options(
    config: &Config,
    queues: Option<Vec<String>>,
    concurrency: Option<usize>,
    health: Option<SocketAddr>,
) -> FleetOptions {
    let w = &config.worker;
    FleetOptions {
        queues,
        concurrency: concurrency.unwrap_or(w.concurrency as usize).max(1),
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
        health_listen: health,
        health_stale_after: Duration::from_secs(w.health_stale_secs),
        ..FleetOptions::default()
    }
}

/// Builds the fleet of this process over `lifecycle`'s store.
pub async fn build(
    config: &Config,
    lifecycle: Lifecycle,
    options: FleetOptions,
) -> Result<Fleet<FleetContext>, crate::exit::Failure> {
    let queues = QueueBackend::from_config(config)
        .await
        .map_err(|e| crate::exit::Failure::new(crate::exit::UNAVAILABLE, format!("queues: {e}")))?;
    let db = lifecycle.store.db.conn.clone();
    let ctx = FleetContext {
        lifecycle,
        queues: queues.clone(),
    };
    registrations(Fleet::builder(ctx, queues, db, options))
        .build()
        .map_err(|e| crate::exit::Failure::new(crate::exit::USAGE, e.to_string()))
}
