//! Shutdown within its deadline, drain, and a killed worker's job re-run elsewhere.

use std::time::{Duration, Instant};

use dossier_worker::{CancellationToken, Fleet, FleetOptions};

use crate::support::{self, Env, Recorder, Slow};

fn fleet(env: &Env, recorder: &Recorder, options: FleetOptions) -> Fleet<Recorder> {
    Fleet::builder(recorder.clone(), env.queues.clone(), env.db.conn.clone(), options)
        .register::<Slow, _, _>(support::slow)
        .build()
        .expect("fleet")
}

/// Starts a fleet, waits for the slow job to start, shuts down; returns how long shutting down took.
async fn shut_down_mid_job(env: &Env, recorder: &Recorder, deadline: Duration) -> Duration {
    let options = FleetOptions {
        shutdown_deadline: deadline,
        ..support::options()
    };
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(fleet(env, recorder, options).run(shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(20), recorder.started.notified())
        .await
        .expect("the job starts");
    let asked = Instant::now();
    shutdown.cancel();
    run.await.expect("joined").expect("fleet");
    asked.elapsed()
}

async fn shutdown(env: Env) {
    let recorder = Recorder::default();

    // A deadline longer than the job: it finishes, once.
    support::enqueue_all(
        &env.db,
        [Slow {
            id: "finishes".into(),
            millis: 3000,
        }],
    )
    .await;
    let took = shut_down_mid_job(&env, &recorder, Duration::from_secs(6)).await;
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    assert_eq!(recorder.effects("finishes"), 1, "the in-flight job finished");

    // A deadline shorter than the job: run returns in time, the job is handed back and runs once later.
    support::enqueue_all(
        &env.db,
        [Slow {
            id: "interrupted".into(),
            millis: 3000,
        }],
    )
    .await;
    let took = shut_down_mid_job(&env, &recorder, Duration::from_secs(1)).await;
    assert!(took <= Duration::from_millis(1500), "shutdown took {took:?}");
    assert_eq!(recorder.effects("interrupted"), 0);
    let drain = fleet(&env, &recorder, support::options()).run_until_drained(CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .expect("drained")
        .expect("fleet");
    assert_eq!(
        recorder.effects("interrupted"),
        1,
        "the interrupted job ran exactly once in the end"
    );
    assert_eq!(recorder.effects("finishes"), 1);
    assert_eq!(
        recorder
            .attempts("interrupted")
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        vec![1, 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_or_hands_back_in_flight_jobs_on_redis() {
    shutdown(support::redis_pg().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_or_hands_back_in_flight_jobs_on_sqlite() {
    shutdown(support::sqlite().await).await;
}

async fn killed_worker(env: Env) {
    let recorder = Recorder::default();
    let options = support::options();
    let orphaned_after = options.heartbeat_interval * options.missed_heartbeats as u32;
    support::enqueue_all(
        &env.db,
        [Slow {
            id: "survives".into(),
            millis: 1500,
        }],
    )
    .await;

    let first = tokio::spawn(fleet(&env, &recorder, options.clone()).run(CancellationToken::new()));
    tokio::time::timeout(Duration::from_secs(20), recorder.started.notified())
        .await
        .expect("the job starts");
    // A kill: the process' tasks vanish, nothing is cleaned up.
    first.abort();
    let killed = Instant::now();
    let _ = first.await;

    let shutdown = CancellationToken::new();
    let second = tokio::spawn(fleet(&env, &recorder, options).run(shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(20), recorder.started.notified())
        .await
        .expect("the job runs again");
    let rerun_after = killed.elapsed();
    // Heartbeats are compared in whole seconds, and the survivor notices at its own next heartbeat.
    let bound = orphaned_after + Duration::from_secs(3);
    assert!(
        rerun_after <= bound,
        "re-run after {rerun_after:?}, expected within {bound:?}"
    );
    assert!(support::eventually(Duration::from_secs(10), || async { recorder.effects("survives") == 1 }).await);
    shutdown.cancel();
    second.await.expect("joined").expect("fleet");
    assert_eq!(
        recorder.effects("survives"),
        1,
        "the killed attempt left no effect, the re-run one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_job_runs_elsewhere_on_redis() {
    killed_worker(support::redis_pg().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_job_runs_elsewhere_on_sqlite() {
    killed_worker(support::sqlite().await).await;
}
