//! One delivery of one job: Dossier's own attempts around a registered handler.
//!
//! The queue only carries envelopes; whether a job runs, and what a failure means, is decided here:
//!
//! - the outbox row is claimed first, so a duplicate delivery (a redispatch, a recovered queue) never runs a job that
//!   is done or running elsewhere;
//! - the handler runs with panics caught and `J::TIMEOUT` enforced: a panic or a timeout is one failed attempt;
//! - a permanent failure, or a transient one on the last attempt, is dead: a `dead_jobs` row and the outbox row
//!   closed; a transient one is retried by pushing the envelope with the next attempt number, due after the job's
//!   backoff. The queue itself always sees success: apalis-redis would retry 25 times on its own otherwise;
//! - at the shutdown deadline a running handler is interrupted and its row handed back to the outbox (the attempt
//!   does not count); when the worker's task is killed the handler simply stops, as in a crash.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{BoxDynError, Task};
use chrono::Utc;
use dossier_jobs::{Backoff, Envelope, FailureKind, Job, JobError};
use dossier_producer::outbox::{self, Claim, DeadJob};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::health::{InFlight, QueueHealth};
use crate::runtime::Shared;

/// A claim outlives the job's timeout by this much, so only a crashed delivery ever loses it.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

pub(crate) type Handler<C> = Arc<dyn Fn(C, Value) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// A registered job kind: what the payload type declares, and its handler behind a decoding shim.
pub(crate) struct JobSpec<C> {
    pub(crate) kind: &'static str,
    max_attempts: u32,
    backoff: Backoff,
    timeout: Duration,
    handler: Handler<C>,
}

impl<C> std::fmt::Debug for JobSpec<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSpec")
            .field("kind", &self.kind)
            .field("max_attempts", &self.max_attempts)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<C: Clone + Send + Sync + 'static> JobSpec<C> {
    pub(crate) fn new<J, F, Fut>(handler: F) -> Self
    where
        J: Job,
        F: Fn(C, Envelope<J>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler: Handler<C> =
            Arc::new(
                move |ctx, envelope| match serde_json::from_value::<Envelope<J>>(envelope) {
                    Ok(envelope) => handler(ctx, envelope).boxed(),
                    Err(error) => {
                        futures::future::ready(Err(JobError::permanent(format!("cannot decode the payload: {error}"))))
                            .boxed()
                    }
                },
            );
        Self {
            kind: J::KIND,
            max_attempts: J::MAX_ATTEMPTS,
            backoff: J::BACKOFF,
            timeout: J::TIMEOUT,
            handler,
        }
    }
}

/// The apalis service of one worker: every task is one delivery.
pub(crate) struct Delivery<C> {
    pub(crate) shared: Arc<Shared<C>>,
    pub(crate) spec: Arc<JobSpec<C>>,
    pub(crate) health: Arc<QueueHealth>,
    /// Cancelled when the worker's task is killed (dropped): its handlers stop as in a crash.
    pub(crate) kill: CancellationToken,
}

impl<C> Clone for Delivery<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            spec: Arc::clone(&self.spec),
            health: Arc::clone(&self.health),
            kill: self.kill.clone(),
        }
    }
}

impl<C> std::fmt::Debug for Delivery<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("kind", &self.spec.kind)
            .finish_non_exhaustive()
    }
}

impl<C: Clone + Send + Sync + 'static> tower::Service<Task<Value>> for Delivery<C> {
    type Response = ();
    type Error = BoxDynError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxDynError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<Value>) -> Self::Future {
        let (envelope, context) = task.take();
        let delivery = context.task_id().map(|id| id.to_string()).unwrap_or_default();
        let this = self.clone();
        Box::pin(async move {
            this.deliver(delivery, envelope).await;
            Ok(())
        })
    }
}

/// How one run of a handler ended.
enum Outcome {
    Succeeded,
    Failed(JobError),
    /// The shutdown deadline came first.
    Interrupted,
}

impl<C: Clone + Send + Sync + 'static> Delivery<C> {
    async fn deliver(&self, delivery: String, raw: Value) {
        let kind = self.spec.kind;
        let db = &self.shared.db;
        let mut envelope: Envelope<Value> = match serde_json::from_value(raw.clone()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let message = format!("undecodable envelope: {error}");
                tracing::warn!(kind, %delivery, %message, "job dead");
                let dead = DeadJob {
                    kind,
                    job_id: "",
                    outbox_id: None,
                    payload: &raw,
                    attempts: 1,
                    last_error: &message,
                };
                if let Err(error) = outbox::bury(db, &dead, Utc::now()).await {
                    tracing::error!(kind, %error, "cannot record a dead job");
                }
                return;
            }
        };
        let job_id = envelope.job_id.clone();
        if let Some(outbox_id) = envelope.outbox_id {
            let hold = self.spec.timeout + CLAIM_MARGIN;
            let claim = tokio::select! {
                biased;
                _ = self.kill.cancelled() => return,
                // Not claimed (or claimed only until the lease runs out): the outbox hands it out again.
                _ = self.shared.interrupt.cancelled() => return,
                claim = outbox::claim(db, outbox_id, &delivery, Utc::now(), hold) => claim,
            };
            match claim {
                Ok(Claim::Run { failed_attempts }) => envelope.attempt = failed_attempts + 1,
                Ok(Claim::Skip) => {
                    tracing::debug!(kind, job_id, "duplicate delivery skipped");
                    return;
                }
                Err(error) => {
                    // The row stays dispatched: the relay hands it out again after `redispatch_after`.
                    tracing::warn!(kind, job_id, %error, "cannot claim a job; leaving it for redispatch");
                    return;
                }
            }
        }
        let json = match serde_json::to_value(&envelope) {
            Ok(json) => json,
            Err(error) => Value::String(error.to_string()),
        };
        let outcome = {
            let _running = InFlight::start(&self.health);
            let run = self.run_handler(json.clone());
            tokio::select! {
                biased;
                _ = self.kill.cancelled() => return,
                _ = self.shared.interrupt.cancelled() => Outcome::Interrupted,
                outcome = run => outcome,
            }
        };
        // The bookkeeping runs beside the queue's task, which ends now: apalis-sqlite stops driving its own
        // (lock-holding) statements while a stopping worker waits for its tasks, and the bookkeeping writes to the
        // same file. The fleet waits for these before it returns.
        let this = self.clone();
        self.shared
            .bookkeeping
            .spawn(async move { this.settle(delivery, envelope, json, outcome).await });
    }

    /// Records how a run ended: closes, retries, buries or hands back the job.
    async fn settle(&self, delivery: String, mut envelope: Envelope<Value>, json: Value, outcome: Outcome) {
        let kind = self.spec.kind;
        let db = &self.shared.db;
        let job_id = envelope.job_id.clone();
        let attempt = envelope.attempt;
        match outcome {
            Outcome::Succeeded => {
                tracing::debug!(kind, job_id, attempt, "job completed");
                if let Some(outbox_id) = envelope.outbox_id {
                    retrying("closing a completed job", || {
                        outbox::complete(db, outbox_id, Utc::now())
                    })
                    .await;
                }
            }
            Outcome::Interrupted => {
                tracing::info!(
                    kind,
                    job_id,
                    attempt,
                    "job interrupted by shutdown; handed back to the outbox"
                );
                match envelope.outbox_id {
                    Some(outbox_id) => {
                        retrying("handing a job back", || outbox::release(db, outbox_id, &delivery)).await;
                    }
                    None => self.push_again(&envelope, None).await,
                }
            }
            Outcome::Failed(error) if error.kind == FailureKind::Permanent || attempt >= self.spec.max_attempts => {
                let permanent = error.kind == FailureKind::Permanent;
                tracing::warn!(kind, job_id, attempt, error = %error.message, permanent, "job dead");
                let dead = DeadJob {
                    kind,
                    job_id: &job_id,
                    outbox_id: envelope.outbox_id,
                    payload: &json,
                    attempts: attempt,
                    last_error: &error.message,
                };
                retrying("recording a dead job", || outbox::bury(db, &dead, Utc::now())).await;
            }
            Outcome::Failed(error) => {
                let delay = self.shared.options.scaled(self.spec.backoff.delay(attempt));
                let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                let retry_in_ms = delay.as_millis() as u64;
                tracing::info!(kind, job_id, attempt, error = %error.message, retry_in_ms, "job attempt failed");
                let still_ours = match envelope.outbox_id {
                    Some(outbox_id) => retrying("recording a failed attempt", || {
                        outbox::retry_later(db, outbox_id, &delivery, &error.message, run_at)
                    })
                    .await
                    .unwrap_or(false),
                    None => true,
                };
                if still_ours {
                    envelope.attempt = attempt + 1;
                    self.push_again(&envelope, Some(run_at)).await;
                }
            }
        }
    }

    async fn run_handler(&self, envelope: Value) -> Outcome {
        let ctx = self.shared.ctx.clone();
        let handler = Arc::clone(&self.spec.handler);
        // The call itself may panic before it returns a future.
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, envelope))) {
            Ok(future) => future,
            Err(panic) => return Outcome::Failed(JobError::transient(panic_message(panic.as_ref()))),
        };
        match tokio::time::timeout(self.spec.timeout, AssertUnwindSafe(future).catch_unwind()).await {
            Err(_) => Outcome::Failed(JobError::transient(format!("timed out after {:?}", self.spec.timeout))),
            Ok(Err(panic)) => Outcome::Failed(JobError::transient(panic_message(panic.as_ref()))),
            Ok(Ok(Err(error))) => Outcome::Failed(error),
            Ok(Ok(Ok(()))) => Outcome::Succeeded,
        }
    }

    async fn push_again(&self, envelope: &Envelope<Value>, run_at: Option<chrono::DateTime<Utc>>) {
        let json = match serde_json::to_value(envelope) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, "cannot encode an envelope");
                return;
            }
        };
        if let Err(error) = self.shared.queues.push(self.spec.kind, vec![json], run_at).await {
            // The outbox row stays open: the relay dispatches it again after `redispatch_after`.
            tracing::warn!(%error, "cannot queue a job again; the outbox will");
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    format!("panicked: {detail}")
}

/// A bookkeeping write, tried a few times before giving up (the outbox redispatches what it leaves open).
async fn retrying<T, F, Fut>(what: &'static str, mut write: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, dossier_producer::ProducerError>>,
{
    let mut pause = Duration::from_millis(50);
    for round in 1..=4 {
        match write().await {
            Ok(value) => return Some(value),
            Err(error) if round == 4 => tracing::error!(%error, what, "giving up"),
            Err(error) => tracing::warn!(%error, what, round, "retrying"),
        }
        tokio::time::sleep(pause).await;
        pause *= 4;
    }
    None
}
