//! Fleet throughput and read latency, printed as tables (`just bench`, or
//! `cargo bench -p dossier-worker --bench throughput`). Runs on the machine's Postgres and Redis (each run in its own
//! schema and namespace) and the test kit's S3 server, as the tests do:
//!
//! - bare apalis-redis 1.0 no-op jobs per second (pushed with `push_all`, one worker with the same concurrency,
//!   prefetch and poll interval as Dossier's), the baseline Dossier must match;
//! - end-to-end no-op jobs per second with 1, 2 and 4 workers: enqueued in one transaction through the outbox, timed
//!   until the last outbox row is closed (relay, Redis queue, delivery and bookkeeping all included);
//! - transition jobs per second with 1, 2 and 4 workers: real resumes moved hot → warm on S3 by the sweep's jobs;
//! - read latency p50/p99 per tier on S3 with the Redis hot cache.
//!
//! `DOSSIER_BENCH_JOBS` and `DOSSIER_BENCH_DOCS` change the sizes (defaults 5,000 and 1,000). Bare apalis-redis 1.0
//! cannot take more than about 8,000 waiting jobs (every fetch fails with "too many results to unpack"), so the
//! default stays below that for the baseline to run at all; Dossier's relay keeps any number waiting in the outbox.

#[allow(dead_code)]
#[path = "../tests/fleet/installation.rs"]
mod installation;
#[allow(dead_code)]
#[path = "../tests/fleet/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::{
    BackendExt, BoxDynError, Data, ParallelizeExt, TaskBuilder, TaskSink, WorkerBuilder, WorkerBuilderExt,
};
use apalis_redis::RedisStorage;
use dossier_core::Tier;
use dossier_testkit::RedisNamespace;
use dossier_worker::{CancellationToken, Fleet, FleetOptions};
use installation::{Installation, Objects, wait_until};
use support::{Noop, Recorder};

const CONCURRENCY: usize = 16;
const POLL: Duration = Duration::from_millis(50);

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn row(workload: &str, workers: usize, jobs: usize, took: Duration) {
    println!(
        "| {workload} | {workers} | {jobs} | {:.2} | {:.0} |",
        took.as_secs_f64(),
        jobs as f64 / took.as_secs_f64()
    );
}

async fn dossier_noop(workers: usize, jobs: usize) -> Duration {
    let env = support::redis_pg().await;
    let recorder = Recorder::default();
    support::enqueue_all(&env.db, (0..jobs as u32).map(|id| Noop { id })).await;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..workers {
        let options = FleetOptions {
            concurrency: CONCURRENCY,
            poll_interval: POLL,
            ..support::options()
        };
        let fleet = Fleet::builder(recorder.clone(), env.queues.clone(), env.db.conn.clone(), options)
            .register::<Noop, _, _>(support::noop)
            .build()
            .expect("fleet");
        running.push(tokio::spawn(fleet.run(stop.clone())));
    }
    wait_until("every no-op job", Duration::from_secs(600), || async {
        support::count(&env.db, "SELECT COUNT(*) FROM outbox WHERE completed_at IS NULL").await == 0
    })
    .await;
    let took = started.elapsed();
    stop.cancel();
    for r in running {
        r.await.expect("fleet task").expect("fleet");
    }
    assert_eq!(recorder.effect_counts(), (jobs, 0), "every job ran, none twice");
    took
}

async fn bare_noop(_job: serde_json::Value, done: Data<Arc<AtomicUsize>>) -> Result<(), BoxDynError> {
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn bare_apalis_noop(jobs: usize) -> Duration {
    let ns = RedisNamespace::new();
    let client = redis::Client::open(ns.url()).expect("redis");
    let conn = apalis_redis::ConnectionManager::new(client).await.expect("connect");
    let config = apalis_redis::Config::default()
        .queue(format!("{{{}:bare}}", ns.name()))
        .batch_size(CONCURRENCY);
    let mut storage = RedisStorage::<serde_json::Value>::new(conn).with_config(config);
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1000) {
        let tasks = chunk
            .iter()
            .map(|i| TaskBuilder::new(serde_json::json!({ "id": i })).build());
        storage.push_all(futures::stream::iter(tasks)).await.expect("push");
    }
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let counter = Arc::clone(&done);
    let worker = WorkerBuilder::new(format!("bare-{}", uuid::Uuid::new_v4().simple()))
        .backend(storage.poll_with_interval(POLL))
        .data(Arc::clone(&done))
        .concurrency(CONCURRENCY)
        .parallelize(tokio::spawn)
        .build(bare_noop)
        .run_with_ctx(move |ctx| {
            let counter = Arc::clone(&counter);
            async move {
                while counter.load(Ordering::Relaxed) < jobs {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = ctx.stop();
                Ok(())
            }
        });
    tokio::time::timeout(Duration::from_secs(600), worker)
        .await
        .expect("bare apalis finishes")
        .expect("bare apalis worker");
    started.elapsed()
}

async fn transitions(workers: usize, docs: usize) -> Duration {
    let lc = Installation::new(None, Objects::S3, &[("DOSSIER_WORKER_CONCURRENCY", "16")]).await;
    lc.put_resumes(docs).await;
    assert_eq!(lc.sweep_due().await, docs as u64);
    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..workers {
        running.push(lc.start_worker(&stop).await);
    }
    wait_until("every transition", Duration::from_secs(600), || async {
        lc.moves().await == docs as i64
    })
    .await;
    let took = started.elapsed();
    stop.cancel();
    for r in running {
        r.await.expect("worker");
    }
    took
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn read_latency() {
    const PER_TIER: usize = 50;
    const PASSES: usize = 4;
    let lc = Installation::new(None, Objects::S3, &[("DOSSIER_PACK_MAX_WAIT_HOURS", "0")]).await;
    lc.put_resumes(PER_TIER * 4).await;
    let key = |i: usize| (format!("u{}", i % 10), format!("cv-{i}"));
    for (group, tier) in [(1, Tier::Warm), (2, Tier::Cold), (3, Tier::Glacier)] {
        for i in group * PER_TIER..(group + 1) * PER_TIER {
            let (user, doc) = key(i);
            lc.lifecycle.move_document(&user, &doc, tier, true).await.expect("move");
        }
    }
    // Cold and glacier contents this small live in packs: seal them, so reads come from the packs by range.
    lc.lifecycle.sweep(false).await.expect("seal the packs");
    // Glacier: one read each starts the restore; once the restore time has passed on the clock they are readable.
    for i in 3 * PER_TIER..4 * PER_TIER {
        let (user, doc) = key(i);
        assert!(lc.lifecycle.read(&user, &doc, None).await.is_err(), "restoring");
    }
    let restored_at = lc.lifecycle.now() + chrono::Duration::hours(lc.config.lifecycle.restore_hours as i64 + 1);
    lc.clock.set(restored_at);
    let drain = dossier_worker::lifecycle_fleet(&lc.config, lc.lifecycle.clone(), lc.options())
        .await
        .expect("fleet");
    drain
        .run_until_drained(CancellationToken::new())
        .await
        .expect("restores");

    println!("| tier | reads | p50 ms | p99 ms | promise |");
    println!("|---|---|---|---|---|");
    let groups = [
        ("hot, first read (S3)", 0, 1, "< 100 ms"),
        ("hot, cached (Redis)", 0, PASSES, "< 100 ms"),
        ("warm", 1, PASSES, "< 1 s"),
        ("cold", 2, PASSES, "minutes"),
        ("glacier, restored", 3, PASSES, "hours, after a restore"),
    ];
    for (name, group, passes, promise) in groups {
        let mut ms = Vec::new();
        for _ in 0..passes {
            for i in group * PER_TIER..(group + 1) * PER_TIER {
                let (user, doc) = key(i);
                let started = Instant::now();
                lc.lifecycle.read(&user, &doc, None).await.expect("read");
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {:.2} | {:.2} | {promise} |",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let jobs = size("DOSSIER_BENCH_JOBS", 5_000);
    let docs = size("DOSSIER_BENCH_DOCS", 1_000);
    runtime.block_on(async {
        println!("| workload | workers | jobs | seconds | jobs/s |");
        println!("|---|---|---|---|---|");
        row("bare apalis-redis 1.0, no-op", 1, jobs, bare_apalis_noop(jobs).await);
        for workers in [1, 2, 4] {
            row("Dossier, no-op", workers, jobs, dossier_noop(workers, jobs).await);
        }
        for workers in [1, 2, 4] {
            row(
                "Dossier, transition hot → warm (S3)",
                workers,
                docs,
                transitions(workers, docs).await,
            );
        }
        println!();
        read_latency().await;
    });
}
