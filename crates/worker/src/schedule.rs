//! Recurring jobs (the lifecycle sweep, housekeeping) on cron schedules, ticking through apalis-cron.
//!
//! apalis-cron fires in every process that runs the schedule, so a tick does not run the work: it enqueues the job
//! through the outbox with the job's idempotency key. However many workers tick at once, one job is open; the sweep
//! itself is single-flight besides (a leased lock), so a tick that arrives while a sweep runs costs one row lookup.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use apalis_cron::CronScheduler;
use chrono::Utc;
use dossier_jobs::Job;
use dossier_producer::ProducerError;
use futures::StreamExt;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

type EnqueueFn =
    Arc<dyn Fn(DatabaseConnection) -> Pin<Box<dyn Future<Output = Result<bool, ProducerError>> + Send>> + Send + Sync>;

/// One job kind enqueued on a cron schedule.
pub(crate) struct ScheduleSpec {
    pub(crate) kind: &'static str,
    expression: String,
    schedule: cron::Schedule,
    enqueue: EnqueueFn,
}

impl std::fmt::Debug for ScheduleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduleSpec")
            .field("kind", &self.kind)
            .field("expression", &self.expression)
            .finish_non_exhaustive()
    }
}

impl ScheduleSpec {
    /// `expression` is a cron expression with seconds (`sec min hour day-of-month month day-of-week`).
    pub(crate) fn new<J: Job>(expression: &str, job: J) -> Result<ScheduleSpec, cron::error::Error> {
        let schedule = cron::Schedule::from_str(expression)?;
        let enqueue: EnqueueFn = Arc::new(move |db| {
            let job = job.clone();
            Box::pin(async move {
                dossier_producer::enqueue(&db, &job, Utc::now())
                    .await
                    .map(|e| e.created)
            })
        });
        Ok(ScheduleSpec {
            kind: J::KIND,
            expression: expression.to_owned(),
            schedule,
            enqueue,
        })
    }
}

/// Enqueues `spec`'s job at every tick until `stop`.
pub(crate) async fn run(db: DatabaseConnection, spec: Arc<ScheduleSpec>, stop: CancellationToken) {
    tracing::info!(kind = spec.kind, schedule = spec.expression, "schedule started");
    while !stop.is_cancelled() {
        let mut ticks = std::pin::pin!(CronScheduler::new(spec.schedule.clone()).into_stream());
        loop {
            let tick = tokio::select! {
                _ = stop.cancelled() => return,
                tick = ticks.next() => tick,
            };
            match tick {
                Some(Ok(tick)) => match (spec.enqueue)(db.clone()).await {
                    Ok(created) => {
                        tracing::info!(
                            kind = spec.kind,
                            tick = tick.get_timestamp(),
                            created,
                            "scheduled job enqueued"
                        );
                    }
                    Err(error) => tracing::warn!(kind = spec.kind, %error, "cannot enqueue a scheduled job"),
                },
                // A tick computed a moment before it passed: apalis-cron keeps answering the same error for it, so
                // start from the next tick.
                Some(Err(error)) => {
                    tracing::debug!(kind = spec.kind, %error, "cron tick missed");
                    break;
                }
                None => {
                    tracing::warn!(kind = spec.kind, "schedule has no further ticks");
                    return;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
