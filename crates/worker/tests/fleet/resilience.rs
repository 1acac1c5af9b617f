//! The lifecycle fleet when Redis and S3 misbehave: two workers (fleets with their own connections and relays, as two
//! `dossier worker` processes have) move real documents while their Redis is restarted or stalled, S3 refuses or
//! fails, and 20,000 transitions arrive at once.

use std::time::{Duration, Instant};

use dossier_core::Tier;
use dossier_producer::{JobState, job_status};
use dossier_worker::{CancellationToken, Fleet, QueueBackend, RedisQueues};

use crate::installation::{Installation, Objects, wait_until};
use crate::support::{self, Behavior, PrivateRedis, Probe, Recorder};

async fn stop_workers(stop: CancellationToken, workers: Vec<tokio::task::JoinHandle<()>>) {
    stop.cancel();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .expect("a worker stops within its deadline")
            .expect("worker task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_in_the_middle_of_1000_transitions_loses_none_and_repeats_none() {
    let mut redis = PrivateRedis::start();
    let lc = Installation::new(Some(redis.url()), Objects::S3, &[]).await;
    lc.put_resumes(1000).await;
    assert_eq!(lc.sweep_due().await, 1000);

    let stop = CancellationToken::new();
    let workers = vec![lc.start_worker(&stop).await, lc.start_worker(&stop).await];
    wait_until("the first hundred moves", Duration::from_secs(60), || async {
        lc.moves().await >= 100
    })
    .await;
    // Everything queued, running or scheduled in Redis is lost; Postgres still has the open jobs.
    redis.down();
    let moved_before = lc.moves().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.up();
    assert!(
        moved_before < 1000,
        "the restart came in the middle ({moved_before} moved)"
    );
    wait_until("all 1000 moves", Duration::from_secs(120), || async {
        lc.moves().await == 1000
    })
    .await;
    stop_workers(stop, workers).await;
    lc.assert_all_moved_once(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_survive_a_stalled_redis_and_finish() {
    let redis = PrivateRedis::start();
    // A reply may take 1 s: the 2 s stall makes calls fail, as a slow Redis would.
    let lc = Installation::new(
        Some(redis.url()),
        Objects::S3,
        &[("DOSSIER_REDIS_RESPONSE_TIMEOUT_MS", "1000")],
    )
    .await;
    lc.put_resumes(200).await;
    assert_eq!(lc.sweep_due().await, 200);

    let stop = CancellationToken::new();
    let workers = vec![lc.start_worker(&stop).await, lc.start_worker(&stop).await];
    wait_until("the first moves", Duration::from_secs(60), || async {
        lc.moves().await >= 20
    })
    .await;
    redis.stall(2.0).join().expect("DEBUG SLEEP 2");
    wait_until("all 200 moves", Duration::from_secs(90), || async {
        lc.moves().await == 200
    })
    .await;
    for worker in &workers {
        assert!(!worker.is_finished(), "a worker died in the stall");
    }
    stop_workers(stop, workers).await;
    lc.assert_all_moved_once(200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_transitions_enqueued_at_once_all_complete() {
    let lc = Installation::new(None, Objects::Folders, &[("DOSSIER_SWEEP_BATCH", "5000")]).await;
    lc.put_resumes(20_000).await;
    assert_eq!(lc.sweep_due().await, 20_000);

    let stop = CancellationToken::new();
    let workers = vec![lc.start_worker(&stop).await, lc.start_worker(&stop).await];
    wait_until("all 20,000 moves", Duration::from_secs(600), || async {
        lc.moves().await == 20_000
    })
    .await;
    stop_workers(stop, workers).await;
    lc.assert_all_moved_once(20_000).await;
}

/// Stores one resume and sweeps it due: returns its transition job's id.
async fn one_due_transition(lc: &Installation) -> String {
    use dossier_db::sea_orm::{ConnectionTrait, Statement};
    lc.put_resumes(1).await;
    assert_eq!(lc.sweep_due().await, 1);
    let db = &lc.lifecycle.store.db;
    let row = db
        .conn
        .query_one_raw(Statement::from_string(
            db.backend(),
            "SELECT job_id FROM outbox WHERE queue = 'transition'",
        ))
        .await
        .expect("outbox")
        .expect("a transition job");
    row.try_get_by_index(0).expect("job id")
}

/// Lets one worker drain its queues; returns how long it took.
async fn drain(lc: &Installation) -> Duration {
    let fleet = dossier_worker::lifecycle_fleet(&lc.config, lc.lifecycle.clone(), lc.options())
        .await
        .expect("fleet");
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(90),
        fleet.run_until_drained(CancellationToken::new()),
    )
    .await
    .expect("drained in time")
    .expect("fleet");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_is_dead_after_one_attempt_and_the_document_stays_readable() {
    let lc = Installation::new(None, Objects::S3, &[]).await;
    let s3 = lc.s3.as_ref().expect("s3");
    let warm = lc.lifecycle.store.layout.bucket(Tier::Warm).to_owned();
    std::fs::remove_dir_all(s3.root().join(&warm)).expect("remove the warm bucket");

    let job_id = one_due_transition(&lc).await;
    drain(&lc).await;
    let status = job_status(&lc.lifecycle.store.db.conn, &job_id)
        .await
        .expect("status")
        .expect("known job");
    assert_eq!(status.state, JobState::Dead);
    assert_eq!(status.attempts, 1, "a permanent error is not retried");
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("NoSuchBucket") || error.contains("bucket"), "{error}");
    assert_eq!(lc.count("SELECT COUNT(*) FROM dead_jobs").await, 1);
    let read = lc.lifecycle.read("u0", "cv-0", None).await.expect("still readable");
    assert_eq!(read.info.tier, Tier::Hot);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_server_answering_503_kills_the_job_after_exactly_its_attempts_with_backoff() {
    let lc = Installation::new(None, Objects::S3, &[]).await;
    let s3 = lc.s3.as_ref().expect("s3");
    let job_id = one_due_transition(&lc).await;
    s3.fail_next(100_000, 503);
    let took = drain(&lc).await;

    let status = job_status(&lc.lifecycle.store.db.conn, &job_id)
        .await
        .expect("status")
        .expect("known job");
    let max = <dossier_jobs::TransitionJob as dossier_jobs::Job>::MAX_ATTEMPTS;
    assert_eq!(status.state, JobState::Dead);
    assert_eq!(status.attempts, max);
    // Backoff scaled by 0.01: at least half of each ceiling passed between attempts.
    let backoff = <dossier_jobs::TransitionJob as dossier_jobs::Job>::BACKOFF;
    let least: Duration = (1..max).map(|n| backoff.ceiling(n).mul_f64(0.01) / 2).sum();
    assert!(took >= least, "{took:?} < {least:?}: retries came without backoff");
    let read = {
        s3.fail_next(0, 503);
        lc.lifecycle.read("u0", "cv-0", None).await.expect("still readable")
    };
    assert_eq!(read.info.tier, Tier::Hot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_committed_while_redis_is_down_runs_when_it_returns() {
    let mut redis = PrivateRedis::start();
    redis.down();
    let queues = QueueBackend::Redis(RedisQueues::connect(&redis.url(), "ns", Duration::from_secs(5)).expect("client"));
    let env = support::postgres_with(queues.clone(), Box::new(())).await;
    let ids = support::enqueue_all(
        &env.db,
        [Probe {
            id: "while-down".into(),
            behavior: Behavior::Succeed,
        }],
    )
    .await;
    let recorder = Recorder::default();
    let fleet = Fleet::builder(recorder.clone(), queues, env.db.conn.clone(), support::options())
        .register::<Probe, _, _>(support::probe)
        .build()
        .expect("fleet");
    let stop = CancellationToken::new();
    let running = tokio::spawn(fleet.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(recorder.effects("while-down"), 0, "nothing runs without Redis");
    redis.up();
    assert!(
        support::eventually(Duration::from_secs(30), || async {
            recorder.effects("while-down") == 1
        })
        .await,
        "the job ran once Redis was back"
    );
    stop.cancel();
    running.await.expect("fleet task").expect("fleet");
    let status = job_status(&env.db.conn, &ids[0]).await.expect("status").expect("known");
    assert_eq!(status.state, JobState::Completed);
    assert_eq!(recorder.effects("while-down"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduled_sweep_moves_due_documents_once_with_two_workers_ticking() {
    let lc = Installation::new(None, Objects::S3, &[("DOSSIER_SWEEP_SCHEDULE", "* * * * * *")]).await;
    lc.put_resumes(20).await;
    lc.clock.set(crate::installation::at(crate::installation::DUE_AT));
    let stop = CancellationToken::new();
    let workers = vec![lc.start_worker(&stop).await, lc.start_worker(&stop).await];
    wait_until("the scheduled sweep's moves", Duration::from_secs(60), || async {
        lc.moves().await == 20
    })
    .await;
    // Ticks keep coming: nothing is moved again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_workers(stop, workers).await;
    lc.assert_all_moved_once(20).await;
    assert!(
        lc.count("SELECT COUNT(*) FROM outbox WHERE queue = 'sweep'").await >= 2,
        "the schedule ticked"
    );
}
