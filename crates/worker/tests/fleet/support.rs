//! Shared by the runtime tests: both backends set up in isolation, test job types whose handlers record what they
//! did, a private Redis server to stop and stall, and small waiting helpers.

use std::any::Any;
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dossier_db::Db;
use dossier_db::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use dossier_jobs::{Backoff, Envelope, Job, JobError};
use dossier_testkit::{PgSchema, RedisNamespace};
use dossier_worker::{FleetOptions, QueueBackend, RedisQueues, RelaySettings, SqliteQueues};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// A database and queues of their own; `guards` keep the schema, namespace or directory alive.
pub struct Env {
    pub db: Db,
    pub queues: QueueBackend,
    #[allow(dead_code)]
    guards: Vec<Box<dyn Any + Send>>,
}

/// Postgres (own schema) and Redis (own namespace on the shared server).
pub async fn redis_pg() -> Env {
    let ns = RedisNamespace::new();
    let queues = QueueBackend::Redis(RedisQueues::connect(ns.url(), ns.name(), Duration::from_secs(5)).expect("redis"));
    postgres_with(queues, Box::new(ns)).await
}

/// Postgres (own schema) and a Redis of the caller's.
pub async fn postgres_with(queues: QueueBackend, guard: Box<dyn Any + Send>) -> Env {
    let schema = PgSchema::create().await;
    let db = Db::connect_postgres(schema.url(), Some(schema.schema()), 10)
        .await
        .expect("postgres");
    db.migrate().await.expect("migrate");
    Env {
        db,
        queues,
        guards: vec![guard, Box::new(schema)],
    }
}

/// The embedded default: SQLite metadata and apalis-sqlite queues in one `dossier.db`.
pub async fn sqlite() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open_embedded(dir.path()).await.expect("sqlite");
    let queues = QueueBackend::Sqlite(
        SqliteQueues::open(&dir.path().join("dossier.db"), "dossier")
            .await
            .expect("queues"),
    );
    Env {
        db,
        queues,
        guards: vec![Box::new(dir)],
    }
}

/// Quick settings for tests (and logs on stderr when `RUST_LOG` asks for them).
pub fn options() -> FleetOptions {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    FleetOptions {
        concurrency: 4,
        poll_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_secs(1),
        missed_heartbeats: 2,
        shutdown_deadline: Duration::from_secs(5),
        relay: Some(RelaySettings {
            interval: Duration::from_millis(50),
            ..RelaySettings::default()
        }),
        drain_settle: Duration::from_millis(200),
        ..FleetOptions::default()
    }
}

/// What a probe's handler does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Behavior {
    Succeed,
    /// Panics on the first attempt, succeeds on the next.
    PanicFirst,
    Permanent,
    /// Fails every attempt, worth retrying.
    Transient,
    /// Outlives the 1 s timeout on the first attempt, succeeds on the next.
    SlowFirst,
    /// Takes this many milliseconds, then records its effect.
    Sleep(u64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub id: String,
    pub behavior: Behavior,
}

impl Job for Probe {
    const KIND: &'static str = "probe";
    const MAX_ATTEMPTS: u32 = 3;
    const BACKOFF: Backoff = Backoff::new(Duration::from_millis(1200), Duration::from_secs(4));
    const TIMEOUT: Duration = Duration::from_secs(1);

    fn unique_key(&self) -> Option<String> {
        None
    }
}

/// A job that does nothing but note that it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Noop {
    pub id: u32,
}

impl Job for Noop {
    const KIND: &'static str = "noop";
    const MAX_ATTEMPTS: u32 = 3;
    const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn unique_key(&self) -> Option<String> {
        None
    }
}

/// A long job for shutdown tests: sleeps, then records its effect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slow {
    pub id: String,
    pub millis: u64,
}

impl Job for Slow {
    const KIND: &'static str = "slow";
    const MAX_ATTEMPTS: u32 = 3;
    const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    const TIMEOUT: Duration = Duration::from_secs(30);

    fn unique_key(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, Default)]
struct Record {
    attempts: HashMap<String, Vec<(u32, Instant)>>,
    effects: HashMap<String, u32>,
}

/// The handlers' context in tests: what ran, when, and which effects landed.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    record: Arc<Mutex<Record>>,
    pub started: Arc<Notify>,
}

impl Recorder {
    fn attempt(&self, id: &str, attempt: u32) {
        let mut record = self.record.lock().expect("lock");
        record
            .attempts
            .entry(id.to_owned())
            .or_default()
            .push((attempt, Instant::now()));
        self.started.notify_one();
    }

    fn effect(&self, id: &str) {
        *self
            .record
            .lock()
            .expect("lock")
            .effects
            .entry(id.to_owned())
            .or_default() += 1;
    }

    /// Attempt numbers and start times of one job, in order.
    pub fn attempts(&self, id: &str) -> Vec<(u32, Instant)> {
        self.record
            .lock()
            .expect("lock")
            .attempts
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn effects(&self, id: &str) -> u32 {
        self.record.lock().expect("lock").effects.get(id).copied().unwrap_or(0)
    }

    /// How many jobs had an effect, and how many had it more than once.
    pub fn effect_counts(&self) -> (usize, usize) {
        let record = self.record.lock().expect("lock");
        let twice = record.effects.values().filter(|n| **n > 1).count();
        (record.effects.len(), twice)
    }
}

pub async fn probe(recorder: Recorder, envelope: Envelope<Probe>) -> Result<(), JobError> {
    let Probe { id, behavior } = envelope.payload;
    recorder.attempt(&id, envelope.attempt);
    match behavior {
        Behavior::Succeed => {}
        Behavior::PanicFirst if envelope.attempt == 1 => panic!("probe {id} panics"),
        Behavior::PanicFirst => {}
        Behavior::Permanent => return Err(JobError::permanent("refused for good")),
        Behavior::Transient => return Err(JobError::transient("flaky backend")),
        Behavior::SlowFirst if envelope.attempt == 1 => tokio::time::sleep(Duration::from_secs(5)).await,
        Behavior::SlowFirst => {}
        Behavior::Sleep(millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
    }
    recorder.effect(&id);
    Ok(())
}

pub async fn noop(recorder: Recorder, envelope: Envelope<Noop>) -> Result<(), JobError> {
    recorder.effect(&envelope.payload.id.to_string());
    Ok(())
}

pub async fn slow(recorder: Recorder, envelope: Envelope<Slow>) -> Result<(), JobError> {
    recorder.attempt(&envelope.payload.id, envelope.attempt);
    tokio::time::sleep(Duration::from_millis(envelope.payload.millis)).await;
    recorder.effect(&envelope.payload.id);
    Ok(())
}

/// Enqueues jobs in one transaction, as a burst of work would arrive.
pub async fn enqueue_all<J: Job>(db: &Db, jobs: impl IntoIterator<Item = J>) -> Vec<String> {
    let txn = db.conn.begin().await.expect("begin");
    let mut ids = Vec::new();
    for job in jobs {
        ids.push(
            dossier_producer::enqueue(&txn, &job, chrono::Utc::now())
                .await
                .expect("enqueue")
                .job_id,
        );
    }
    txn.commit().await.expect("commit");
    ids
}

pub async fn count(db: &Db, sql: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(db.backend(), sql.to_owned()))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

/// Polls `check` until it holds or `within` passes; returns whether it held.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A Redis server of this test's own (no persistence), to stop, restart and stall without touching the shared one.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("address").port()
        };
        let mut redis = PrivateRedis { port, child: None };
        redis.up();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--enable-debug-command", "local"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("client");
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server did not start");
    }

    /// Kills the server: everything it held is lost.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stalls the server for `seconds` (`DEBUG SLEEP`), from a thread of its own.
    pub fn stall(&self, seconds: f64) -> std::thread::JoinHandle<()> {
        let url = self.url();
        std::thread::spawn(move || {
            let mut conn = redis::Client::open(url)
                .expect("client")
                .get_connection()
                .expect("connect");
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query::<()>(&mut conn)
                .expect("DEBUG SLEEP");
        })
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.down();
    }
}
