//! The fleet runtime: supervised apalis workers per queue, the outbox relay, the health server, one shutdown.
//!
//! Each registered job kind gets `workers_per_queue` supervised workers. A Redis error ends an apalis worker (it
//! does not recover by itself): the supervisor starts a fresh one under a new name after a backoff, so a Redis
//! restart or a stall is survived. One [`CancellationToken`] stops everything: workers stop fetching, running jobs
//! may finish until shortly before `shutdown_deadline`, then are interrupted and handed back to the outbox, and
//! `run` returns by the deadline. Recurring jobs are enqueued on their cron schedules (see `schedule`), except in
//! drain mode, which ends once nothing is due.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::ParallelizeExt;
use apalis::prelude::{BackendExt, WorkerBuilder, WorkerBuilderExt, WorkerContext, WorkerError};
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use dossier_jobs::{Envelope, Job, JobError};
use dossier_producer::Relay;
use dossier_producer::outbox;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::delivery::{Delivery, JobSpec};
use crate::health::{self, Health, QueueHealth, TrackedInterval};
use crate::names::worker_name;
use crate::options::FleetOptions;
use crate::queue::{QueueBackend, RedisQueues, SqliteQueues};
use crate::schedule::{self, ScheduleSpec};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("unknown queue {0:?}: no handler is registered for it")]
    UnknownQueue(String),
    #[error("job kind {0} is registered twice")]
    DuplicateKind(&'static str),
    #[error("invalid schedule {expression:?} for {kind} jobs: {message}")]
    Schedule {
        kind: &'static str,
        expression: String,
        message: String,
    },
    #[error("cannot listen on {addr} for health checks: {source}")]
    HealthListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What every worker of the fleet shares.
pub(crate) struct Shared<C> {
    pub(crate) ctx: C,
    pub(crate) db: DatabaseConnection,
    pub(crate) queues: QueueBackend,
    pub(crate) options: FleetOptions,
    /// Cancelled shortly before the shutdown deadline: running handlers stop and hand their jobs back.
    pub(crate) interrupt: CancellationToken,
    /// What finished runs still have to record (see `delivery`).
    pub(crate) bookkeeping: TaskTracker,
}

/// Registers handlers; see [`Fleet::builder`].
pub struct FleetBuilder<C> {
    ctx: C,
    queues: QueueBackend,
    db: DatabaseConnection,
    options: FleetOptions,
    jobs: Vec<JobSpec<C>>,
    schedules: Vec<ScheduleSpec>,
}

impl<C> std::fmt::Debug for FleetBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("jobs", &self.jobs)
            .field("schedules", &self.schedules)
            .finish_non_exhaustive()
    }
}

impl<C: Clone + Send + Sync + 'static> FleetBuilder<C> {
    /// Enqueues `job` at every tick of the cron `expression` (with seconds: `0 */5 * * * *` is every five minutes),
    /// in processes whose fleet works on `J::KIND`. Ticks of many processes at once make one job when `J` has an
    /// idempotency key.
    pub fn schedule<J: Job>(mut self, expression: &str, job: J) -> Result<Self, FleetError> {
        let spec = ScheduleSpec::new(expression, job).map_err(|e| FleetError::Schedule {
            kind: J::KIND,
            expression: expression.to_owned(),
            message: e.to_string(),
        })?;
        self.schedules.push(spec);
        Ok(self)
    }

    /// Registers the handler of job kind `J::KIND`. It gets the context and the decoded envelope (with Dossier's
    /// attempt number) and says whether a failure is worth retrying.
    pub fn register<J, F, Fut>(mut self, handler: F) -> Self
    where
        J: Job,
        F: Fn(C, Envelope<J>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.jobs.push(JobSpec::new::<J, F, Fut>(handler));
        self
    }

    /// Checks the registrations against `options.queues` and keeps the queues to work on.
    pub fn build(self) -> Result<Fleet<C>, FleetError> {
        let mut kinds: Vec<&'static str> = Vec::new();
        for spec in &self.jobs {
            if kinds.contains(&spec.kind) {
                return Err(FleetError::DuplicateKind(spec.kind));
            }
            kinds.push(spec.kind);
        }
        if let Some(wanted) = &self.options.queues
            && let Some(unknown) = wanted.iter().find(|q| !kinds.contains(&q.as_str()))
        {
            return Err(FleetError::UnknownQueue(unknown.clone()));
        }
        let jobs: Vec<Arc<JobSpec<C>>> = self
            .jobs
            .into_iter()
            .filter(|spec| {
                self.options
                    .queues
                    .as_ref()
                    .is_none_or(|q| q.iter().any(|k| k == spec.kind))
            })
            .map(Arc::new)
            .collect();
        let served: Vec<&'static str> = jobs.iter().map(|spec| spec.kind).collect();
        let schedules = self
            .schedules
            .into_iter()
            .filter(|spec| served.contains(&spec.kind))
            .map(Arc::new)
            .collect();
        let health = Arc::new(Health::new(
            &served,
            self.options.concurrency * self.options.workers_per_queue,
            self.options.health_stale_after,
        ));
        let shared = Arc::new(Shared {
            ctx: self.ctx,
            db: self.db,
            queues: self.queues,
            options: self.options,
            interrupt: CancellationToken::new(),
            bookkeeping: TaskTracker::new(),
        });
        Ok(Fleet {
            shared,
            jobs,
            schedules,
            health,
        })
    }
}

/// A set of queues this process works on, with its relay and health server.
pub struct Fleet<C> {
    shared: Arc<Shared<C>>,
    jobs: Vec<Arc<JobSpec<C>>>,
    schedules: Vec<Arc<ScheduleSpec>>,
    health: Arc<Health>,
}

impl<C> std::fmt::Debug for Fleet<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl<C: Clone + Send + Sync + 'static> Fleet<C> {
    /// Starts a registration list: `ctx` is handed to every handler, `db` holds the outbox.
    pub fn builder(ctx: C, queues: QueueBackend, db: DatabaseConnection, options: FleetOptions) -> FleetBuilder<C> {
        FleetBuilder {
            ctx,
            queues,
            db,
            options,
            jobs: Vec::new(),
            schedules: Vec::new(),
        }
    }

    /// The job kinds this fleet works on.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.jobs.iter().map(|spec| spec.kind).collect()
    }

    /// Runs until `shutdown` is cancelled, then shuts down within `shutdown_deadline`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), FleetError> {
        self.run_inner(shutdown, false).await
    }

    /// Runs until no job of its queues is due (no open outbox row; nothing waiting, running or scheduled, for
    /// `drain_settle`), or until `shutdown` is cancelled; then shuts down as [`Fleet::run`] does.
    pub async fn run_until_drained(self, shutdown: CancellationToken) -> Result<(), FleetError> {
        self.run_inner(shutdown, true).await
    }

    async fn run_inner(self, shutdown: CancellationToken, drain: bool) -> Result<(), FleetError> {
        let options = &self.shared.options;
        let listener = match options.health_listen {
            Some(addr) => Some(
                health::bind(addr)
                    .await
                    .map_err(|source| FleetError::HealthListen { addr, source })?,
            ),
            None => None,
        };
        let stop_workers = CancellationToken::new();
        let stop_background = CancellationToken::new();
        // Dropping this set (the fleet's task killed) aborts every worker: their jobs stop as in a crash.
        let mut workers = JoinSet::new();
        for spec in &self.jobs {
            let Some(queue_health) = self.health.queue(spec.kind) else {
                continue;
            };
            for _ in 0..options.workers_per_queue.max(1) {
                workers.spawn(supervise(
                    Arc::clone(&self.shared),
                    Arc::clone(spec),
                    Arc::clone(&queue_health),
                    stop_workers.clone(),
                ));
            }
        }
        let mut background = JoinSet::new();
        if let Some(settings) = &options.relay {
            let relay = Relay::new(self.shared.db.clone(), self.shared.queues.clone(), settings.clone());
            background.spawn(relay.run(stop_background.clone()));
        }
        if !drain {
            for spec in &self.schedules {
                background.spawn(schedule::run(
                    self.shared.db.clone(),
                    Arc::clone(spec),
                    stop_background.clone(),
                ));
            }
        }
        if let Some(listener) = listener {
            background.spawn(health::serve(
                listener,
                Arc::clone(&self.health),
                stop_background.clone(),
            ));
        }
        tracing::info!(queues = ?self.kinds(), drain, "fleet started");

        if drain {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.drained() => tracing::info!("queues drained"),
            }
        } else {
            shutdown.cancelled().await;
        }

        let deadline = options.shutdown_deadline;
        let started = tokio::time::Instant::now();
        // Leave time to hand interrupted jobs back before the deadline.
        let interrupt_at = started + deadline.saturating_sub((deadline / 5).min(Duration::from_secs(2)));
        stop_workers.cancel();
        stop_background.cancel();
        let finished = tokio::time::timeout_at(interrupt_at, join_all(&mut workers))
            .await
            .is_ok();
        // Also reaches jobs still running for workers that failed earlier.
        self.shared.interrupt.cancel();
        if !finished
            && tokio::time::timeout_at(started + deadline, join_all(&mut workers))
                .await
                .is_err()
        {
            tracing::warn!("shutdown deadline reached; stopping the remaining workers");
            workers.abort_all();
        }
        let rest = (started + deadline).max(tokio::time::Instant::now() + Duration::from_millis(100));
        self.shared.bookkeeping.close();
        if tokio::time::timeout_at(rest, self.shared.bookkeeping.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown deadline reached with job bookkeeping unfinished; the outbox redispatches");
        }
        if tokio::time::timeout_at(rest, join_all(&mut background)).await.is_err() {
            background.abort_all();
        }
        tracing::info!(took_ms = started.elapsed().as_millis() as u64, "fleet stopped");
        Ok(())
    }

    /// Resolves once nothing of this fleet's queues is due for `drain_settle`.
    async fn drained(&self) {
        let kinds = self.kinds();
        let settle = self.shared.options.drain_settle;
        let mut idle_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.nothing_due(&kinds).await {
                if idle_since.get_or_insert_with(Instant::now).elapsed() >= settle {
                    return;
                }
            } else {
                idle_since = None;
            }
        }
    }

    async fn nothing_due(&self, kinds: &[&'static str]) -> bool {
        match outbox::open_rows(&self.shared.db, kinds).await {
            Ok(0) => {}
            Ok(_) => return false,
            Err(error) => {
                tracing::warn!(%error, "drain: cannot count open jobs");
                return false;
            }
        }
        for kind in kinds {
            match self.shared.queues.depth(kind).await {
                Ok(depth) if depth.is_idle() => {}
                Ok(_) => return false,
                Err(error) => {
                    tracing::warn!(%error, kind, "drain: cannot read a queue's depth");
                    return false;
                }
            }
        }
        true
    }
}

async fn join_all<T: 'static>(set: &mut JoinSet<T>) {
    while set.join_next().await.is_some() {}
}

/// Keeps one worker of a queue running until `stop`: a worker that fails (Redis went away, its registration was
/// lost) is replaced by a new one under a new name, after a backoff that grows while failures repeat.
async fn supervise<C: Clone + Send + Sync + 'static>(
    shared: Arc<Shared<C>>,
    spec: Arc<JobSpec<C>>,
    health: Arc<QueueHealth>,
    stop: CancellationToken,
) {
    let kill = CancellationToken::new();
    // Fires only when this task is dropped (aborted): a clean exit disarms it.
    let guard = kill.clone().drop_guard();
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let name = worker_name(spec.kind);
        let service = Delivery {
            shared: Arc::clone(&shared),
            spec: Arc::clone(&spec),
            health: Arc::clone(&health),
            kill: kill.clone(),
        };
        let started = Instant::now();
        let result = match &shared.queues {
            QueueBackend::Redis(queues) => {
                run_redis(queues, &shared.options, spec.kind, &name, service, &health, &stop).await
            }
            QueueBackend::Sqlite(queues) => {
                run_sqlite(queues, &shared.options, spec.kind, &name, service, &health, &stop).await
            }
        };
        if stop.is_cancelled() {
            break;
        }
        match result {
            Ok(()) => tracing::warn!(worker = name, "worker stopped by itself; starting another"),
            Err(error) => tracing::warn!(worker = name, %error, "worker failed; starting another"),
        }
        health.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        failures = if started.elapsed() > Duration::from_secs(30) {
            1
        } else {
            failures.saturating_add(1)
        };
        let pause = Duration::from_millis(100 * 2u64.saturating_pow(failures.min(6))).min(Duration::from_secs(5));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    guard.disarm();
}

async fn run_redis<C: Clone + Send + Sync + 'static>(
    queues: &RedisQueues,
    options: &FleetOptions,
    kind: &str,
    name: &str,
    service: Delivery<C>,
    health: &Arc<QueueHealth>,
    stop: &CancellationToken,
) -> Result<(), WorkerError> {
    let config = queues
        .config(kind)
        .batch_size(options.batch())
        .heartbeat_interval(options.heartbeat_interval)
        .missed_heartbeats(options.missed_heartbeats);
    let backend = RedisStorage::<Value>::new(queues.conn.clone())
        .with_config(config)
        .poll_with_strategy(TrackedInterval::new(options.poll_interval, Arc::clone(health)));
    let stop = stop.clone();
    WorkerBuilder::new(name)
        .backend(backend)
        .concurrency(options.concurrency)
        .parallelize(tokio::spawn)
        .build(service)
        .run_with_ctx(move |ctx| stop_when(stop.clone(), ctx))
        .await
}

async fn run_sqlite<C: Clone + Send + Sync + 'static>(
    queues: &SqliteQueues,
    options: &FleetOptions,
    kind: &str,
    name: &str,
    service: Delivery<C>,
    health: &Arc<QueueHealth>,
    stop: &CancellationToken,
) -> Result<(), WorkerError> {
    let config = queues
        .config(kind)
        .batch_size(options.batch())
        .heartbeat_interval(options.heartbeat_interval)
        .missed_heartbeats(options.missed_heartbeats);
    let backend = SqliteStorage::<Value>::new(&queues.pool)
        .with_config(config)
        .poll_with_strategy(TrackedInterval::new(options.poll_interval, Arc::clone(health)));
    let stop = stop.clone();
    WorkerBuilder::new(name)
        .backend(backend)
        .concurrency(options.concurrency)
        .parallelize(tokio::spawn)
        .build(service)
        .run_with_ctx(move |ctx| stop_when(stop.clone(), ctx))
        .await
}

/// Stops a worker in two steps. A stopping apalis worker stops driving its backend until its running tasks end,
/// and apalis-sqlite may be holding the database's write lock in a half-done statement then; so first pause it (no
/// new work, backend still driven), wait for its tasks, and only then stop it.
async fn stop_when(stop: CancellationToken, ctx: WorkerContext) -> Result<(), WorkerError> {
    stop.cancelled().await;
    // A worker that has not started yet can be neither paused nor stopped: ask again until it takes.
    while !ctx.is_paused() && ctx.pause().is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while ctx.task_count() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while ctx.stop().is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
