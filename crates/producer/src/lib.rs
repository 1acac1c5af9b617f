//! Enqueueing jobs the transactional way, and the outbox that makes it so.
//!
//! A change that needs a job calls [`enqueue`] inside its own database transaction: it writes an `outbox` row, so a
//! committed change always gets its job and a rolled-back one never does. The [`relay`] moves open rows to the queue
//! of their kind (never more than a queue can hold), and the worker runtime closes a row through [`outbox`] when its
//! job completes or dies. An open row dispatched long ago is dispatched again: a lost queue loses no work.
//!
//! Row states, written once here and kept by the statements of [`outbox`]:
//!
//! ```text
//! queued (dispatched_at NULL) ──relay──▶ dispatched ──claim──▶ running ──ok──▶ completed (completed_at set)
//!      ▲                                   │  ▲                    │ ├─permanent / exhausted──▶ dead (dead_at too)
//!      └──────── shutdown interrupted ─────┘  └─ transient: retry ─┘ └─interrupted──▶ queued
//! ```
//!
//! A closed row (completed or dead) releases its idempotency key, so the same work can be enqueued again later.

mod enqueue;
mod error;
pub mod outbox;
pub mod relay;
mod sql;
mod status;

pub use enqueue::{Enqueued, enqueue};
pub use error::ProducerError;
pub use relay::{Dispatch, QueueDepth, Relay, RelayPass, RelaySettings};
pub use status::{JobState, JobStatus, job_status};
