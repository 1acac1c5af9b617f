//! The queue backends behind the fleet: apalis-redis in the fleet, apalis-sqlite embedded, chosen by configuration.
//!
//! Both hold Dossier envelopes as JSON under the queue name `<namespace>:<kind>`; in Redis it is wrapped in a hash
//! tag (`{dossier:transition}`) so every key of one queue lands in one Redis Cluster slot. Besides what apalis does
//! (fetch, acknowledge, recover a dead worker's jobs), this module reads queue depths for backpressure and drain,
//! pushes envelopes for the relay and for retries, and removes finished job data in bounded batches (apalis keeps it
//! forever).

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqlitePool, SqliteStorage};
use chrono::{DateTime, Utc};
use dossier_core::config::Config;
use dossier_jobs::queue_name;
use dossier_producer::{Dispatch, QueueDepth};
use redis::Script;
use sea_orm::sqlx;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use serde_json::Value;

/// Envelopes per push: one Lua call (Redis) or one transaction (SQLite) each.
const PUSH_CHUNK: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("sqlite queue: {0}")]
    Sqlite(#[from] sqlx::Error),
    #[error("sqlite queue setup: {0}")]
    Setup(#[from] apalis_sqlite::Error),
    #[error("cannot push to {queue}: {message}")]
    Push { queue: String, message: String },
}

/// Where the queues live.
#[derive(Debug, Clone)]
pub enum QueueBackend {
    Redis(RedisQueues),
    Sqlite(SqliteQueues),
}

impl QueueBackend {
    /// Redis when `REDIS_URL` is set, else apalis-sqlite in `DOSSIER_HOME/dossier.db`.
    pub async fn from_config(config: &Config) -> Result<QueueBackend, QueueError> {
        match &config.redis_url {
            Some(url) => Ok(QueueBackend::Redis(RedisQueues::connect(
                url,
                &config.namespace,
                Duration::from_millis(config.redis_response_timeout_ms),
            )?)),
            None => Ok(QueueBackend::Sqlite(
                SqliteQueues::open(&config.home.join("dossier.db"), &config.namespace).await?,
            )),
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            QueueBackend::Redis(r) => &r.namespace,
            QueueBackend::Sqlite(s) => &s.namespace,
        }
    }

    /// The depth of the queue of a job kind.
    pub async fn depth(&self, kind: &str) -> Result<QueueDepth, QueueError> {
        match self {
            QueueBackend::Redis(r) => r.depth(kind).await,
            QueueBackend::Sqlite(s) => s.depth(kind).await,
        }
    }

    /// Pushes envelopes to the queue of a job kind, due at `run_at` (now when `None`).
    pub async fn push(
        &self,
        kind: &str,
        envelopes: Vec<Value>,
        run_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        // Queues schedule in whole seconds: round up, so a retry never runs before its backoff has passed.
        let due = run_at.map(|at| {
            let millis = at.timestamp_millis().max(0) as u64;
            millis.div_ceil(1000)
        });
        let mut envelopes = envelopes;
        while !envelopes.is_empty() {
            let rest = envelopes.split_off(envelopes.len().min(PUSH_CHUNK));
            let chunk = std::mem::replace(&mut envelopes, rest);
            match self {
                QueueBackend::Redis(r) => r.push(kind, chunk, due).await?,
                QueueBackend::Sqlite(s) => s.push(kind, chunk, due).await?,
            }
        }
        Ok(())
    }

    /// Removes at most `batch` finished (done or dead) jobs of one kind; returns how many it removed.
    pub async fn remove_finished(&self, kind: &str, batch: usize) -> Result<u64, QueueError> {
        match self {
            QueueBackend::Redis(r) => r.remove_finished(kind, batch).await,
            QueueBackend::Sqlite(s) => s.remove_finished(kind, batch).await,
        }
    }
}

impl Dispatch for QueueBackend {
    type Error = QueueError;

    async fn depth(&self, kind: &str) -> Result<QueueDepth, QueueError> {
        QueueBackend::depth(self, kind).await
    }

    async fn push(&self, kind: &str, envelopes: Vec<Value>, run_at: Option<DateTime<Utc>>) -> Result<(), QueueError> {
        QueueBackend::push(self, kind, envelopes, run_at).await
    }
}

/// Removes every finished job of these kinds, `batch` at a time (each step one bounded Redis call or SQLite
/// statement); waiting, running and scheduled jobs are left alone. Returns how many it removed.
pub async fn housekeeping(backend: &QueueBackend, kinds: &[&str], batch: usize) -> Result<u64, QueueError> {
    let batch = batch.max(1);
    let mut removed = 0;
    for kind in kinds {
        loop {
            let n = backend.remove_finished(kind, batch).await?;
            removed += n;
            if n < batch as u64 {
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "finished job data removed");
    }
    Ok(removed)
}

fn unix_now() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

/// The Redis queues of one namespace.
#[derive(Clone)]
pub struct RedisQueues {
    pub(crate) conn: ConnectionManager,
    namespace: String,
}

impl std::fmt::Debug for RedisQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueues")
            .field("namespace", &self.namespace)
            .finish()
    }
}

static DEPTH_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local waiting = redis.call('LLEN', KEYS[1]) + redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])
        local scheduled = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
        local active = 0
        for _, worker in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
            active = active + redis.call('SCARD', ARGV[2] .. ':' .. worker)
        end
        return {waiting, active, scheduled, redis.call('SCARD', KEYS[4]), redis.call('SCARD', KEYS[5])}
        ",
    )
});

static REMOVE_FINISHED_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local ids = redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[2]))
        for _, id in ipairs(ids) do
            redis.call('HDEL', KEYS[2], id)
            redis.call('DEL', ARGV[1] .. ':' .. id)
            redis.call('SREM', KEYS[1], id)
        end
        return #ids
        ",
    )
});

impl RedisQueues {
    /// A lazily connected, self-reconnecting connection: the fleet starts (and waits) while Redis is down.
    /// `response_timeout` bounds one reply; redis-rs' default of 500 ms would let one slow reply kill a worker.
    pub fn connect(url: &str, namespace: &str, response_timeout: Duration) -> Result<RedisQueues, QueueError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisQueues {
            conn,
            namespace: namespace.to_owned(),
        })
    }

    /// The apalis queue name of a kind, hash-tagged: `{dossier:transition}`.
    pub fn queue(&self, kind: &str) -> String {
        format!("{{{}}}", queue_name(&self.namespace, kind))
    }

    pub(crate) fn config(&self, kind: &str) -> apalis_redis::Config {
        apalis_redis::Config::default()
            .queue(self.queue(kind))
            .persist_results(true)
            .emit_events(false)
    }

    async fn depth(&self, kind: &str) -> Result<QueueDepth, QueueError> {
        let config = self.config(kind);
        let mut conn = self.conn.clone();
        let (waiting, active, scheduled, done, dead): (u64, u64, u64, u64, u64) = DEPTH_SCRIPT
            .key(config.active_jobs_list())
            .key(config.scheduled_jobs_set())
            .key(config.workers_set())
            .key(config.done_jobs_set())
            .key(config.dead_jobs_set())
            .arg(unix_now())
            .arg(config.inflight_jobs_set())
            .invoke_async(&mut conn)
            .await?;
        Ok(QueueDepth {
            waiting,
            active,
            scheduled,
            done,
            dead,
        })
    }

    async fn push(&self, kind: &str, envelopes: Vec<Value>, due: Option<u64>) -> Result<(), QueueError> {
        let mut storage = RedisStorage::<Value>::new(self.conn.clone()).with_config(self.config(kind));
        let tasks = envelopes.into_iter().map(|envelope| task(envelope, due));
        storage
            .push_all(futures::stream::iter(tasks))
            .await
            .map_err(|e| QueueError::Push {
                queue: self.queue(kind),
                message: e.to_string(),
            })
    }

    async fn remove_finished(&self, kind: &str, batch: usize) -> Result<u64, QueueError> {
        let config = self.config(kind);
        let mut conn = self.conn.clone();
        let mut removed = 0;
        for set in [config.done_jobs_set(), config.dead_jobs_set()] {
            let left = batch as u64 - removed;
            if left == 0 {
                break;
            }
            let n: u64 = REMOVE_FINISHED_SCRIPT
                .key(set)
                .key(config.job_data_hash())
                .arg(config.job_meta_hash())
                .arg(left)
                .invoke_async(&mut conn)
                .await?;
            removed += n;
        }
        Ok(removed)
    }
}

fn task(envelope: Value, due: Option<u64>) -> apalis::prelude::Task<Value> {
    // Dossier counts attempts itself: the queue must never retry on its own.
    let builder = TaskBuilder::new(envelope).max_attempts(1);
    match due {
        Some(at) => builder.run_at_timestamp(at).build(),
        None => builder.build(),
    }
}

/// The apalis-sqlite queues in the embedded database file, with their own pool.
#[derive(Debug, Clone)]
pub struct SqliteQueues {
    pub(crate) pool: SqlitePool,
    namespace: String,
}

impl SqliteQueues {
    /// Opens the queue tables in `path` (the embedded `dossier.db`), creating them on first use.
    pub async fn open(path: &Path, namespace: &str) -> Result<SqliteQueues, QueueError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        // apalis' setup turns `synchronous` off on the connection it runs on: give it one of its own, then close it.
        let setup = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        SqliteStorage::setup(&setup).await?;
        setup.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(SqliteQueues {
            pool,
            namespace: namespace.to_owned(),
        })
    }

    /// The apalis job type of a kind: `dossier:transition`.
    pub fn queue(&self, kind: &str) -> String {
        queue_name(&self.namespace, kind)
    }

    pub(crate) fn config(&self, kind: &str) -> apalis_sqlite::Config {
        apalis_sqlite::Config::default()
            .queue(self.queue(kind))
            .persist_results(true)
    }

    async fn depth(&self, kind: &str) -> Result<QueueDepth, QueueError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*), COALESCE(SUM(CASE WHEN run_at > ?2 THEN 1 ELSE 0 END), 0) \
             FROM Jobs WHERE job_type = ?1 GROUP BY status",
        )
        .bind(self.queue(kind))
        .bind(unix_now() as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut depth = QueueDepth::default();
        for (status, count, later) in rows {
            let (count, later) = (count.max(0) as u64, later.max(0) as u64);
            match status.as_str() {
                "Pending" => {
                    depth.waiting += count - later;
                    depth.scheduled += later;
                }
                "Queued" | "Running" => depth.active += count,
                "Done" => depth.done += count,
                _ => depth.dead += count,
            }
        }
        Ok(depth)
    }

    async fn push(&self, kind: &str, envelopes: Vec<Value>, due: Option<u64>) -> Result<(), QueueError> {
        let mut storage = SqliteStorage::<Value>::new(&self.pool).with_config(self.config(kind));
        let tasks = envelopes.into_iter().map(|envelope| task(envelope, due));
        storage
            .push_all(futures::stream::iter(tasks))
            .await
            .map_err(|e| QueueError::Push {
                queue: self.queue(kind),
                message: e.to_string(),
            })
    }

    async fn remove_finished(&self, kind: &str, batch: usize) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "DELETE FROM Jobs WHERE ROWID IN (SELECT ROWID FROM Jobs WHERE job_type = ?1 \
             AND status IN ('Done', 'Killed', 'Failed') LIMIT ?2)",
        )
        .bind(self.queue(kind))
        .bind(batch as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
