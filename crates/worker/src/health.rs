//! Liveness: each queue's workers note every poll; `/healthz` answers 200 while they poll (or are busy with as
//! many jobs as they may run) and 503 once they have been silent for `health_stale_after`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::prelude::{IntervalStrategy, PollSnapshot, PollStrategy};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// What one queue's workers in this process are doing.
#[derive(Debug)]
pub(crate) struct QueueHealth {
    epoch: Instant,
    last_poll_ms: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    capacity: usize,
}

impl QueueHealth {
    fn new(epoch: Instant, capacity: usize) -> Self {
        Self {
            epoch,
            last_poll_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            capacity,
        }
    }

    fn polled(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_poll_ms.store(now, Ordering::Relaxed);
    }

    fn since_poll(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_poll_ms.load(Ordering::Relaxed)))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.capacity
    }
}

/// Counts a running job for as long as it lives.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<QueueHealth>);

impl InFlight {
    pub(crate) fn start(health: &Arc<QueueHealth>) -> Self {
        health.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(health))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every queue of this process.
#[derive(Debug)]
pub(crate) struct Health {
    queues: BTreeMap<&'static str, Arc<QueueHealth>>,
    stale_after: Duration,
}

impl Health {
    pub(crate) fn new(kinds: &[&'static str], capacity: usize, stale_after: Duration) -> Self {
        let epoch = Instant::now();
        Self {
            queues: kinds
                .iter()
                .map(|k| (*k, Arc::new(QueueHealth::new(epoch, capacity))))
                .collect(),
            stale_after,
        }
    }

    pub(crate) fn queue(&self, kind: &str) -> Option<Arc<QueueHealth>> {
        self.queues.get(kind).cloned()
    }

    fn report(&self) -> (bool, HealthReport) {
        let mut healthy = true;
        let queues = self
            .queues
            .iter()
            .map(|(kind, q)| {
                let since = q.since_poll();
                let ok = since <= self.stale_after || q.busy();
                healthy &= ok;
                let state = QueueReport {
                    healthy: ok,
                    last_poll_ms_ago: since.as_millis() as u64,
                    in_flight: q.in_flight.load(Ordering::Relaxed),
                    restarts: q.restarts.load(Ordering::Relaxed),
                };
                ((*kind).to_owned(), state)
            })
            .collect();
        let status = if healthy { "ok" } else { "stale" };
        (healthy, HealthReport { status, queues })
    }
}

#[derive(Debug, Serialize)]
struct HealthReport {
    status: &'static str,
    queues: BTreeMap<String, QueueReport>,
}

#[derive(Debug, Serialize)]
struct QueueReport {
    healthy: bool,
    last_poll_ms_ago: u64,
    in_flight: usize,
    restarts: u64,
}

async fn healthz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let (healthy, report) = health.report();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

/// Serves `/healthz` until `shutdown` is cancelled.
pub(crate) async fn serve(listener: tokio::net::TcpListener, health: Arc<Health>, shutdown: CancellationToken) {
    let router = Router::new().route("/healthz", get(healthz)).with_state(health);
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!(%error, "health server stopped");
    }
}

/// Binds the health listener before anything starts, so a taken port fails the start.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// apalis' interval polling, noting each poll for `/healthz`.
#[derive(Debug, Clone)]
pub(crate) struct TrackedInterval {
    inner: IntervalStrategy,
    health: Arc<QueueHealth>,
}

impl TrackedInterval {
    pub(crate) fn new(interval: Duration, health: Arc<QueueHealth>) -> Self {
        Self {
            inner: IntervalStrategy::new(interval),
            health,
        }
    }
}

impl PollStrategy for TrackedInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, snapshot: &PollSnapshot) -> Poll<Option<()>> {
        self.inner.poll_drive(cx, snapshot)
    }

    fn on_poll(&mut self, _snapshot: &PollSnapshot) {
        self.health.polled();
    }
}
