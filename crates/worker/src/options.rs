//! The fleet's knobs, with the defaults `dossier worker` uses.

use std::net::SocketAddr;
use std::time::Duration;

use dossier_producer::RelaySettings;

#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Job kinds to work on (`--queues`); every registered kind when `None`.
    pub queues: Option<Vec<String>>,
    /// Jobs one worker runs at once (`--concurrency`).
    pub concurrency: usize,
    /// apalis workers per queue in this process.
    pub workers_per_queue: usize,
    /// Jobs fetched per poll; the concurrency when `None` (prefetching more only delays other workers).
    pub batch_size: Option<usize>,
    /// How often an idle worker asks its queue for work.
    pub poll_interval: Duration,
    /// A worker's heartbeat; a worker silent for `heartbeat_interval × missed_heartbeats` is dead and its jobs run
    /// elsewhere.
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: usize,
    /// How long a shutdown may take: in-flight jobs finish within it, and what still runs shortly before it is
    /// interrupted and handed back to the outbox.
    pub shutdown_deadline: Duration,
    /// Multiplies every job's backoff (tests make retries quick with a small value).
    pub backoff_scale: f64,
    /// The outbox relay of this process; `None` runs none (another process relays).
    pub relay: Option<RelaySettings>,
    /// Serve `/healthz` here (`--health-listen`).
    pub health_listen: Option<SocketAddr>,
    /// `/healthz` answers 503 once a queue's workers have not polled for this long (and are not simply busy).
    pub health_stale_after: Duration,
    /// Drain mode: nothing due for this long means drained.
    pub drain_settle: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            queues: None,
            concurrency: 8,
            workers_per_queue: 1,
            batch_size: None,
            poll_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_secs(5),
            missed_heartbeats: 3,
            shutdown_deadline: Duration::from_secs(25),
            backoff_scale: 1.0,
            relay: Some(RelaySettings::default()),
            health_listen: None,
            health_stale_after: Duration::from_secs(30),
            drain_settle: Duration::from_millis(300),
        }
    }
}

impl FleetOptions {
    pub(crate) fn batch(&self) -> usize {
        self.batch_size.unwrap_or(self.concurrency).max(1)
    }

    pub(crate) fn scaled(&self, delay: Duration) -> Duration {
        let scale = if self.backoff_scale.is_finite() && self.backoff_scale >= 0.0 {
            self.backoff_scale
        } else {
            1.0
        };
        delay.mul_f64(scale)
    }
}
