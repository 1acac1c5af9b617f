//! Dossier's attempts on both backends: panics, permanent and transient failures with backoff, timeouts.

use std::time::Duration;

use crate::support::{self, Behavior, Env, Probe, Recorder};
use dossier_producer::{JobState, job_status};
use dossier_worker::{CancellationToken, Fleet, FleetOptions};

fn probe(id: &str, behavior: Behavior) -> Probe {
    Probe {
        id: id.to_owned(),
        behavior,
    }
}

async fn attempts(env: Env) {
    let recorder = Recorder::default();
    // One job at a time: a job after a panicking one only runs if the worker went on.
    let options = FleetOptions {
        concurrency: 1,
        ..support::options()
    };
    let jobs = [
        probe("panics", Behavior::PanicFirst),
        probe("after-panic", Behavior::Succeed),
        probe("permanent", Behavior::Permanent),
        probe("transient", Behavior::Transient),
        probe("slow", Behavior::SlowFirst),
    ];
    let ids = support::enqueue_all(&env.db, jobs).await;
    let fleet = Fleet::builder(recorder.clone(), env.queues.clone(), env.db.conn.clone(), options)
        .register::<Probe, _, _>(support::probe)
        .build()
        .expect("fleet");
    tokio::time::timeout(
        Duration::from_secs(60),
        fleet.run_until_drained(CancellationToken::new()),
    )
    .await
    .expect("drained in time")
    .expect("fleet");

    let status = |n: usize| {
        let db = env.db.conn.clone();
        let id = ids[n].clone();
        async move { job_status(&db, &id).await.expect("status").expect("known") }
    };

    // A panic is one failed attempt; the job runs again and the worker goes on with the next job.
    assert_eq!(recorder.attempts("panics").len(), 2);
    assert_eq!(recorder.effects("panics"), 1);
    assert_eq!(recorder.effects("after-panic"), 1);
    assert_eq!(status(0).await.state, JobState::Completed);
    assert!(status(0).await.last_error.unwrap_or_default().contains("panicked"));

    // A permanent failure is dead after exactly one attempt.
    assert_eq!(recorder.attempts("permanent").len(), 1);
    let dead = status(2).await;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.last_error.as_deref(), Some("refused for good"));

    // A transient failure is dead after exactly MAX_ATTEMPTS, with backoff between attempts.
    let runs = recorder.attempts("transient");
    let numbers: Vec<u32> = runs.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    for (i, pair) in runs.windows(2).enumerate() {
        let gap = pair[1].1 - pair[0].1;
        let ceiling = <Probe as dossier_jobs::Job>::BACKOFF.ceiling(i as u32 + 1);
        assert!(
            gap >= ceiling / 2,
            "gap {gap:?} after attempt {} is shorter than half of {ceiling:?}",
            i + 1
        );
    }
    let dead = status(3).await;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("flaky backend"));

    // A job outliving its timeout is a failed attempt.
    assert_eq!(recorder.attempts("slow").len(), 2);
    assert_eq!(recorder.effects("slow"), 1);
    assert!(status(4).await.last_error.unwrap_or_default().contains("timed out"));

    assert_eq!(support::count(&env.db, "SELECT COUNT(*) FROM dead_jobs").await, 2);
    assert_eq!(
        support::count(&env.db, "SELECT COUNT(*) FROM outbox WHERE completed_at IS NULL").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_failures_backoff_and_timeouts_on_redis() {
    attempts(support::redis_pg().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_failures_backoff_and_timeouts_on_sqlite() {
    attempts(support::sqlite().await).await;
}
