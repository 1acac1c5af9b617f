//! What operators rely on: `/healthz` turns 503 when workers stop polling and 200 when they are back, and
//! housekeeping removes finished job data from Redis in bounded batches, leaving waiting work alone.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use dossier_worker::{CancellationToken, Fleet, FleetOptions, QueueBackend, RedisQueues, housekeeping};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, Noop, PrivateRedis, Recorder};

/// The status code of `GET /healthz`, or `None` while nothing listens.
async fn healthz(addr: SocketAddr) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_is_503_while_redis_hangs_and_200_when_it_answers_again() {
    let redis = PrivateRedis::start();
    let queues =
        QueueBackend::Redis(RedisQueues::connect(&redis.url(), "ns", Duration::from_secs(10)).expect("client"));
    let env = support::postgres_with(queues.clone(), Box::new(())).await;
    let addr: SocketAddr = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address")
    };
    let options = FleetOptions {
        health_listen: Some(addr),
        health_stale_after: Duration::from_secs(1),
        ..support::options()
    };
    let fleet = Fleet::builder(Recorder::default(), queues, env.db.conn.clone(), options)
        .register::<Noop, _, _>(support::noop)
        .build()
        .expect("fleet");
    let stop = CancellationToken::new();
    let running = tokio::spawn(fleet.run(stop.clone()));

    assert!(
        support::eventually(Duration::from_secs(10), || async { healthz(addr).await == Some(200) }).await,
        "healthy while polling"
    );
    // Redis hangs for 4 s: every poll waits on it.
    let stall = redis.stall(4.0);
    assert!(
        support::eventually(Duration::from_secs(4), || async { healthz(addr).await == Some(503) }).await,
        "503 once the workers have not polled for a second"
    );
    stall.join().expect("DEBUG SLEEP");
    assert!(
        support::eventually(Duration::from_secs(15), || async { healthz(addr).await == Some(200) }).await,
        "healthy again once Redis answers"
    );
    stop.cancel();
    running.await.expect("fleet task").expect("fleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_removes_finished_jobs_in_batches_and_leaves_waiting_ones() {
    let env = support::redis_pg().await;
    let recorder = Recorder::default();
    support::enqueue_all(&env.db, (0..250).map(|id| Noop { id })).await;
    let fleet = Fleet::builder(
        recorder.clone(),
        env.queues.clone(),
        env.db.conn.clone(),
        support::options(),
    )
    .register::<Noop, _, _>(support::noop)
    .build()
    .expect("fleet");
    tokio::time::timeout(
        Duration::from_secs(60),
        fleet.run_until_drained(CancellationToken::new()),
    )
    .await
    .expect("drained")
    .expect("fleet");
    assert_eq!(recorder.effect_counts(), (250, 0));
    let before = env.queues.depth("noop").await.expect("depth");
    assert_eq!(before.done, 250, "apalis keeps every finished job: {before:?}");

    // Work that is still owed must survive housekeeping.
    env.queues
        .push(
            "noop",
            vec![serde_json::json!({ "job_id": "waiting", "payload": { "id": 1 } })],
            None,
        )
        .await
        .expect("push");
    let removed = housekeeping(&env.queues, &["noop"], 100).await.expect("housekeeping");
    assert_eq!(removed, 250);
    let after = env.queues.depth("noop").await.expect("depth");
    assert_eq!((after.done, after.dead), (0, 0), "{after:?}");
    assert_eq!(after.waiting, 1, "the waiting job is left: {after:?}");
    let QueueBackend::Redis(redis) = &env.queues else {
        unreachable!("redis_pg gives Redis queues")
    };
    let url = std::env::var("DOSSIER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let data: u64 = redis::cmd("HLEN")
        .arg(format!("{}:data", redis.queue("noop")))
        .query_async(&mut conn)
        .await
        .expect("HLEN");
    assert_eq!(data, 1, "only the waiting job's payload is left");
}
