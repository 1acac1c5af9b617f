//! Dossier's fleet runtime: job handlers run on apalis queues (apalis-redis in the fleet, apalis-sqlite embedded)
//! with Dossier's own attempts, backoff, timeouts and dead letters, supervised workers, the outbox relay, cron
//! schedules for recurring jobs, one graceful shutdown, a drain mode and a health endpoint; and the one registration
//! list of Dossier's handlers ([`lifecycle_fleet`]).
//!
//! ```text
//! Fleet::builder(ctx, QueueBackend::from_config(&config).await?, db.conn.clone(), FleetOptions::default())
//!     .register::<TransitionJob, _, _>(|ctx, envelope| async move { … })
//!     .build()?
//!     .run(shutdown)            // or .run_until_drained(shutdown) for `dossier worker --drain`
//! ```

mod delivery;
mod handlers;
mod health;
mod names;
mod options;
mod queue;
mod runtime;
mod schedule;

pub use dossier_producer::{QueueDepth, RelaySettings};
pub use handlers::{BuildError, FleetContext, lifecycle_fleet, registrations};
pub use options::FleetOptions;
pub use queue::{QueueBackend, QueueError, RedisQueues, SqliteQueues, housekeeping};
pub use runtime::{Fleet, FleetBuilder, FleetError};
pub use tokio_util::sync::CancellationToken;
