//! The outbox on both databases: transactional enqueue, idempotency keys, the relay's backpressure, job status.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_db::Db;
use dossier_db::sea_orm::{ConnectionTrait, TransactionTrait};
use dossier_jobs::{Backoff, Job};
use dossier_producer::outbox::{self, Claim, DeadJob};
use dossier_producer::{Dispatch, JobState, QueueDepth, Relay, RelaySettings, enqueue, job_status};
use dossier_testkit::PgSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ping {
    n: u32,
    key: Option<String>,
}

impl Job for Ping {
    const KIND: &'static str = "ping";
    const MAX_ATTEMPTS: u32 = 3;
    const BACKOFF: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn unique_key(&self) -> Option<String> {
        self.key.clone()
    }
}

fn ping(n: u32, key: Option<&str>) -> Ping {
    Ping {
        n,
        key: key.map(str::to_owned),
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The databases under test; the guard keeps the Postgres schema or the SQLite directory alive.
enum Guard {
    Pg(#[allow(dead_code)] PgSchema),
    Dir(#[allow(dead_code)] tempfile::TempDir),
}

async fn postgres() -> (Guard, Db) {
    let schema = PgSchema::create().await;
    let db = Db::connect_postgres(schema.url(), Some(schema.schema()), 4)
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    (Guard::Pg(schema), db)
}

async fn sqlite() -> (Guard, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open_embedded(dir.path()).await.expect("open");
    (Guard::Dir(dir), db)
}

async fn count(db: &Db, sql: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(dossier_db::sea_orm::Statement::from_string(
            db.backend(),
            sql.to_owned(),
        ))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("count")
}

async fn rollback_and_commit(db: Db) {
    let txn = db.conn.begin().await.expect("begin");
    enqueue(&txn, &ping(1, None), now()).await.expect("enqueue");
    txn.rollback().await.expect("rollback");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM outbox").await,
        0,
        "a rolled-back change enqueues nothing"
    );

    let txn = db.conn.begin().await.expect("begin");
    let enqueued = enqueue(&txn, &ping(2, None), now()).await.expect("enqueue");
    txn.commit().await.expect("commit");
    assert!(enqueued.created);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox").await, 1);
    let status = job_status(&db.conn, &enqueued.job_id)
        .await
        .expect("status")
        .expect("known");
    assert_eq!(status.state, JobState::Queued);
    assert_eq!(status.kind, "ping");
}

#[tokio::test]
async fn rolled_back_enqueues_nothing_committed_enqueues_one_postgres() {
    let (_guard, db) = postgres().await;
    rollback_and_commit(db).await;
}

#[tokio::test]
async fn rolled_back_enqueues_nothing_committed_enqueues_one_sqlite() {
    let (_guard, db) = sqlite().await;
    rollback_and_commit(db).await;
}

async fn idempotency(db: Db) {
    let first = enqueue(&db.conn, &ping(1, Some("k")), now()).await.expect("enqueue");
    let again = enqueue(&db.conn, &ping(2, Some("k")), now()).await.expect("enqueue");
    assert!(first.created);
    assert!(!again.created, "an open job with the same key is returned");
    assert_eq!(first.job_id, again.job_id);
    assert_eq!(first.outbox_id, again.outbox_id);
    let other = enqueue(&db.conn, &ping(3, Some("other")), now())
        .await
        .expect("enqueue");
    assert_ne!(other.job_id, first.job_id);

    assert!(outbox::complete(&db.conn, first.outbox_id, now()).await.expect("close"));
    let later = enqueue(&db.conn, &ping(4, Some("k")), now()).await.expect("enqueue");
    assert!(later.created, "a closed job releases its key");
    assert_ne!(later.job_id, first.job_id);
    let status = job_status(&db.conn, &first.job_id)
        .await
        .expect("status")
        .expect("known");
    assert_eq!(status.state, JobState::Completed);
}

#[tokio::test]
async fn idempotency_key_holds_while_open_and_is_released_on_close_postgres() {
    let (_guard, db) = postgres().await;
    idempotency(db).await;
}

#[tokio::test]
async fn idempotency_key_holds_while_open_and_is_released_on_close_sqlite() {
    let (_guard, db) = sqlite().await;
    idempotency(db).await;
}

/// A queue in memory that reports what it holds.
#[derive(Default)]
struct MemoryQueue {
    held: Mutex<Vec<serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Dispatch for &MemoryQueue {
    type Error = Never;

    async fn depth(&self, _kind: &str) -> Result<QueueDepth, Never> {
        let waiting = self.held.lock().expect("lock").len() as u64;
        Ok(QueueDepth {
            waiting,
            ..QueueDepth::default()
        })
    }

    async fn push(
        &self,
        _kind: &str,
        envelopes: Vec<serde_json::Value>,
        _run_at: Option<DateTime<Utc>>,
    ) -> Result<(), Never> {
        self.held.lock().expect("lock").extend(envelopes);
        Ok(())
    }
}

async fn relay_backpressure(db: Db) {
    for n in 0..25 {
        enqueue(&db.conn, &ping(n, None), now()).await.expect("enqueue");
    }
    let queue = MemoryQueue::default();
    let settings = RelaySettings {
        batch: 4,
        max_waiting: 10,
        redispatch_after: Duration::from_secs(60),
        interval: Duration::from_millis(10),
    };
    let relay = Relay::new(db.conn.clone(), &queue, settings);
    let mut passes = 0;
    loop {
        let pass = relay.pass(now()).await.expect("pass");
        passes += 1;
        if pass.throttled || passes > 10 {
            break;
        }
    }
    let held = queue.held.lock().expect("lock").clone();
    assert_eq!(held.len(), 10, "the relay stops at max_waiting");
    let first = &held[0];
    assert_eq!(first["attempt"], 1);
    assert!(first["outbox_id"].as_i64().is_some());
    assert_eq!(first["payload"]["n"], 0, "oldest first");

    // The queue drains; the relay fills it up again, and only with rows not dispatched yet.
    queue.held.lock().expect("lock").clear();
    while relay.pass(now()).await.expect("pass").dispatched > 0 {}
    let held = queue.held.lock().expect("lock").clone();
    assert_eq!(held.len(), 10);
    assert_eq!(held[0]["payload"]["n"], 10);

    // Rows dispatched long ago and still open go out again.
    queue.held.lock().expect("lock").clear();
    let later = now() + chrono::Duration::seconds(120);
    let mut again = 0;
    loop {
        let pass = relay.pass(later).await.expect("pass");
        again += pass.dispatched;
        if pass.dispatched == 0 {
            break;
        }
        queue.held.lock().expect("lock").clear();
    }
    assert_eq!(again, 25, "every open row is dispatched again after redispatch_after");
}

#[tokio::test]
async fn relay_respects_max_waiting_and_redispatches_postgres() {
    let (_guard, db) = postgres().await;
    relay_backpressure(db).await;
}

#[tokio::test]
async fn relay_respects_max_waiting_and_redispatches_sqlite() {
    let (_guard, db) = sqlite().await;
    relay_backpressure(db).await;
}

async fn claims_and_dead_jobs(db: Db) {
    let job = enqueue(&db.conn, &ping(1, Some("c")), now()).await.expect("enqueue");
    let hold = Duration::from_secs(60);
    let first = outbox::claim(&db.conn, job.outbox_id, "task-a", now(), hold)
        .await
        .expect("claim");
    assert_eq!(first, Claim::Run { failed_attempts: 0 });
    let duplicate = outbox::claim(&db.conn, job.outbox_id, "task-b", now(), hold)
        .await
        .expect("claim");
    assert_eq!(
        duplicate,
        Claim::Skip,
        "a duplicate delivery skips while the claim holds"
    );
    let redelivered = outbox::claim(&db.conn, job.outbox_id, "task-a", now(), hold)
        .await
        .expect("claim");
    assert_eq!(
        redelivered,
        Claim::Run { failed_attempts: 0 },
        "the same delivery may take over"
    );
    assert_eq!(
        job_status(&db.conn, &job.job_id)
            .await
            .expect("status")
            .expect("known")
            .state,
        JobState::Running
    );

    let retry = outbox::retry_later(&db.conn, job.outbox_id, "task-a", "flaky", now())
        .await
        .expect("retry");
    assert!(retry);
    let second = outbox::claim(&db.conn, job.outbox_id, "task-c", now(), hold)
        .await
        .expect("claim");
    assert_eq!(second, Claim::Run { failed_attempts: 1 });

    let payload = serde_json::json!({"n": 1});
    let dead = DeadJob {
        kind: Ping::KIND,
        job_id: &job.job_id,
        outbox_id: Some(job.outbox_id),
        payload: &payload,
        attempts: 2,
        last_error: "broken for good",
    };
    assert!(outbox::bury(&db.conn, &dead, now()).await.expect("bury"));
    assert!(
        !outbox::bury(&db.conn, &dead, now()).await.expect("bury"),
        "a closed row is buried once"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM dead_jobs").await, 1);
    let status = job_status(&db.conn, &job.job_id).await.expect("status").expect("known");
    assert_eq!(status.state, JobState::Dead);
    assert_eq!(status.attempts, 2);
    assert_eq!(status.last_error.as_deref(), Some("broken for good"));
    let after = outbox::claim(&db.conn, job.outbox_id, "task-d", now(), hold)
        .await
        .expect("claim");
    assert_eq!(after, Claim::Skip, "a dead job never runs again");
    assert!(
        enqueue(&db.conn, &ping(2, Some("c")), now())
            .await
            .expect("enqueue")
            .created
    );
    assert!(job_status(&db.conn, "no-such-job").await.expect("status").is_none());
}

#[tokio::test]
async fn claims_retries_and_dead_jobs_postgres() {
    let (_guard, db) = postgres().await;
    claims_and_dead_jobs(db).await;
}

#[tokio::test]
async fn claims_retries_and_dead_jobs_sqlite() {
    let (_guard, db) = sqlite().await;
    claims_and_dead_jobs(db).await;
}
