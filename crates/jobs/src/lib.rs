//! The wire contract between producers and workers: one payload type per job kind, each declaring beside itself its
//! stable queue name, attempts, backoff, timeout and uniqueness key.
//!
//! Queue names are `<namespace>:<kind>` (`dossier:transition` with the default namespace) and never derived from Rust
//! type names. Every job travels in an [`Envelope`] that carries Dossier's own attempt count, the outbox row to
//! close on completion, and the trace context of the request that caused it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_core::Tier;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Exponential backoff with full jitter: attempt `n` (from 1) waits a random time up to `min(max, base · 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The ceiling of the wait after the `attempt`-th failure (before jitter).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait after the `attempt`-th failure: uniform in `[ceiling / 2, ceiling]`, so retries never bunch up
    /// and never come back sooner than half the ceiling.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = ceiling.saturating_sub(half).as_millis() as u64;
        half + Duration::from_millis(rand::random_range(0..=spread))
    }
}

/// What every job payload declares about itself.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Clone + std::fmt::Debug + 'static {
    /// The job kind: the last part of the queue name. A wire contract: never rename.
    const KIND: &'static str;
    /// Attempts in all, the first one included.
    const MAX_ATTEMPTS: u32;
    const BACKOFF: Backoff;
    /// A run that takes longer is cancelled and counts as a failed attempt.
    const TIMEOUT: Duration;

    /// Jobs with equal keys are the same work: enqueueing one while another is open does nothing.
    fn unique_key(&self) -> Option<String>;
}

/// The queue a job kind lives in, under a namespace.
pub fn queue_name(namespace: &str, kind: &str) -> String {
    format!("{namespace}:{kind}")
}

/// A job on the wire: the payload plus what Dossier itself needs to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<J> {
    /// Dossier's id for this job, stable across retries (the API's `GET /v1/jobs/{id}`).
    pub job_id: String,
    /// The attempt this delivery is, from 1.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The outbox row to close when the job completes.
    #[serde(default)]
    pub outbox_id: Option<i64>,
    /// W3C trace context (`traceparent`, `tracestate`) of the request that enqueued the job.
    #[serde(default)]
    pub trace: BTreeMap<String, String>,
    pub payload: J,
}

fn first_attempt() -> u32 {
    1
}

/// Whether a failed attempt is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Timeouts, 5xx, throttling, an unreachable backend: retry with backoff.
    Transient,
    /// Invalid input, a missing bucket, refused credentials: dead-lettered at once.
    Permanent,
}

/// A job that failed, saying whether to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct JobError {
    pub kind: FailureKind,
    pub message: String,
}

impl JobError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }
}

macro_rules! job {
    ($ty:ident, $kind:literal, attempts = $attempts:expr, backoff = ($base:expr, $max:expr), timeout = $timeout:expr,
     unique = |$s:ident| $unique:expr) => {
        impl Job for $ty {
            const KIND: &'static str = $kind;
            const MAX_ATTEMPTS: u32 = $attempts;
            const BACKOFF: Backoff = Backoff::new($base, $max);
            const TIMEOUT: Duration = $timeout;

            fn unique_key(&self) -> Option<String> {
                let $s = self;
                $unique
            }
        }
    };
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Move one version's bytes to a colder (or, for a manual move, any) tier, by DESIGN.md's transition protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionJob {
    pub file_id: i64,
    pub from: Tier,
    pub to: Tier,
    /// `age`, `idle`, `superseded` or `manual`.
    pub reason: String,
}
job!(
    TransitionJob,
    "transition",
    attempts = 8,
    backoff = (secs(2), secs(300)),
    timeout = secs(900),
    unique = |j| Some(format!("transition:{}:{}", j.file_id, j.to))
);

/// Bring a warm or cold document read often back to hot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteJob {
    pub file_id: i64,
}
job!(
    PromoteJob,
    "promote",
    attempts = 8,
    backoff = (secs(2), secs(300)),
    timeout = secs(900),
    unique = |j| Some(format!("promote:{}", j.file_id))
);

/// Restore a glacier document so it can be read; ready once the tier's restore time has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreJob {
    pub file_id: i64,
    pub blob_id: i64,
    pub ready_at: DateTime<Utc>,
}
job!(
    RestoreJob,
    "restore",
    attempts = 10,
    backoff = (secs(5), secs(600)),
    timeout = secs(900),
    unique = |j| Some(format!("restore:{}", j.blob_id))
);

/// Make an application's documents hot before its interview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrewarmJob {
    pub user_id: String,
    pub application_id: String,
    pub interview_at: DateTime<Utc>,
}
job!(
    PrewarmJob,
    "prewarm",
    attempts = 8,
    backoff = (secs(2), secs(300)),
    timeout = secs(900),
    unique = |j| Some(format!(
        "prewarm:{}:{}:{}",
        j.user_id,
        j.application_id,
        j.interview_at.timestamp()
    ))
);

/// Delete an expired version, audit row first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireJob {
    pub file_id: i64,
}
job!(
    ExpireJob,
    "expire",
    attempts = 8,
    backoff = (secs(2), secs(300)),
    timeout = secs(300),
    unique = |j| Some(format!("expire:{}", j.file_id))
);

/// Compress a blob where its content allows (storage-efficiency issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressJob {
    pub blob_id: i64,
}
job!(
    CompressJob,
    "compress",
    attempts = 5,
    backoff = (secs(2), secs(300)),
    timeout = secs(600),
    unique = |j| Some(format!("compress:{}", j.blob_id))
);

/// Fold a blob into an identical one of the same scope (storage-efficiency issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupJob {
    pub blob_id: i64,
}
job!(
    DedupJob,
    "dedup",
    attempts = 5,
    backoff = (secs(2), secs(300)),
    timeout = secs(600),
    unique = |j| Some(format!("dedup:{}", j.blob_id))
);

/// Render a JSON Resume to PDF (PDF issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderPdfJob {
    pub user_id: String,
    pub source_key: String,
    pub source_version: Option<i32>,
    pub template: String,
    pub job_description_key: Option<String>,
    pub output_key: String,
}
job!(
    RenderPdfJob,
    "render_pdf",
    attempts = 3,
    backoff = (secs(2), secs(60)),
    timeout = secs(120),
    unique = |_j| None
);

/// Write a user's documents to an archive in the exports area (API issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    pub user_id: String,
}
job!(
    ExportJob,
    "export",
    attempts = 5,
    backoff = (secs(5), secs(600)),
    timeout = secs(1800),
    unique = |j| Some(format!("export:{}", j.user_id))
);

/// Remove everything of a user (API issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseJob {
    pub user_id: String,
}
job!(
    EraseJob,
    "erase",
    attempts = 10,
    backoff = (secs(5), secs(600)),
    timeout = secs(1800),
    unique = |j| Some(format!("erase:{}", j.user_id))
);

/// Rewrite a mostly dead pack (storage-efficiency issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackCompactJob {
    pub pack_id: i64,
}
job!(
    PackCompactJob,
    "pack_compact",
    attempts = 5,
    backoff = (secs(5), secs(600)),
    timeout = secs(1800),
    unique = |j| Some(format!("pack_compact:{}", j.pack_id))
);

/// Plan due lifecycle work and enqueue it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepJob {
    /// The instant the sweep acts as of (the injected clock's now when absent).
    pub as_of: Option<DateTime<Utc>>,
}
job!(
    SweepJob,
    "sweep",
    attempts = 3,
    backoff = (secs(5), secs(60)),
    timeout = secs(1800),
    unique = |_j| Some("sweep".to_owned())
);

/// Remove finished job data and old log rows in bounded batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HousekeepingJob {}
job!(
    HousekeepingJob,
    "housekeeping",
    attempts = 3,
    backoff = (secs(5), secs(60)),
    timeout = secs(1800),
    unique = |_j| Some("housekeeping".to_owned())
);

/// Every job kind, in one list: the worker registers exactly these.
pub const KINDS: &[&str] = &[
    TransitionJob::KIND,
    PromoteJob::KIND,
    RestoreJob::KIND,
    PrewarmJob::KIND,
    ExpireJob::KIND,
    CompressJob::KIND,
    DedupJob::KIND,
    RenderPdfJob::KIND,
    ExportJob::KIND,
    EraseJob::KIND,
    PackCompactJob::KIND,
    SweepJob::KIND,
    HousekeepingJob::KIND,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_the_contract() {
        assert_eq!(queue_name("dossier", TransitionJob::KIND), "dossier:transition");
        assert_eq!(queue_name("dossier", RenderPdfJob::KIND), "dossier:render_pdf");
        let mut kinds = KINDS.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 13);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(b.ceiling(1), Duration::from_secs(2));
        assert_eq!(b.ceiling(3), Duration::from_secs(8));
        assert_eq!(b.ceiling(40), Duration::from_secs(60));
        for attempt in 1..10 {
            let d = b.delay(attempt);
            assert!(
                d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn envelopes_round_trip_and_default_to_the_first_attempt() {
        let json = r#"{"job_id":"j1","payload":{"file_id":7,"from":"hot","to":"warm","reason":"age"}}"#;
        let e: Envelope<TransitionJob> = serde_json::from_str(json).expect("envelope");
        assert_eq!(e.attempt, 1);
        assert_eq!(e.payload.to, Tier::Warm);
        assert_eq!(e.payload.unique_key().as_deref(), Some("transition:7:warm"));
    }
}
