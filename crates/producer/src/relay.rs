//! The outbox relay: moves open, due outbox rows into the queue of their kind, never past what a queue may hold.
//!
//! A row is due when it was never dispatched, or was dispatched more than `redispatch_after` ago and is still open
//! (the queue lost it, or its worker died with it). Rows are marked in one statement (`FOR UPDATE SKIP LOCKED` on
//! Postgres, so relays in several workers share the work), then pushed; a failed push unmarks them.
//!
//! Backpressure: apalis-redis 1.0 fails every fetch once more than about 8,000 jobs wait in one queue (a Lua
//! `unpack` limit), so the relay pushes only up to `max_waiting` minus what the queue already holds; the rest of a
//! large burst waits in the outbox, where it costs nothing.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Value};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::ProducerError;
use crate::sql::statement;

/// How much one queue holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Ready to run now.
    pub waiting: u64,
    /// Taken by a worker, not yet finished.
    pub active: u64,
    /// Due later (retries waiting out their backoff).
    pub scheduled: u64,
    /// Finished and not yet removed by housekeeping.
    pub done: u64,
    pub dead: u64,
}

impl QueueDepth {
    /// What the queue holds that has not run yet: the figure backpressure limits.
    pub fn pending(&self) -> u64 {
        self.waiting + self.scheduled
    }

    /// Nothing waiting, running or scheduled.
    pub fn is_idle(&self) -> bool {
        self.waiting == 0 && self.active == 0 && self.scheduled == 0
    }
}

/// A queue backend the relay can push to.
pub trait Dispatch: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The depth of the queue of a job kind.
    fn depth(&self, kind: &str) -> impl Future<Output = Result<QueueDepth, Self::Error>> + Send;

    /// Pushes envelopes (JSON of `dossier_jobs::Envelope`) to the queue of a job kind, due at `run_at` (now when
    /// `None`).
    fn push(
        &self,
        kind: &str,
        envelopes: Vec<serde_json::Value>,
        run_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows moved per statement and push.
    pub batch: u64,
    /// The most jobs a queue may hold waiting or scheduled.
    pub max_waiting: u64,
    /// An open row dispatched longer ago than this is dispatched again.
    pub redispatch_after: Duration,
    /// Pause between passes when there was nothing (or no room) to move.
    pub interval: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch: 500,
            max_waiting: 2000,
            redispatch_after: Duration::from_secs(600),
            interval: Duration::from_millis(100),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayPass {
    pub dispatched: u64,
    /// Some queue had no room for due rows.
    pub throttled: bool,
    /// Some queue got a full batch: more may be due right now.
    pub more: bool,
}

#[derive(Debug)]
pub struct Relay<D> {
    db: DatabaseConnection,
    dispatch: D,
    settings: RelaySettings,
}

impl<D: Dispatch> Relay<D> {
    pub fn new(db: DatabaseConnection, dispatch: D, settings: RelaySettings) -> Self {
        Self { db, dispatch, settings }
    }

    /// One pass over every queue with due rows.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<RelayPass, ProducerError> {
        let backend = self.db.get_database_backend();
        let cutoff = now - chrono::Duration::from_std(self.settings.redispatch_after).unwrap_or(chrono::Duration::MAX);
        let queues = statement(
            backend,
            "SELECT DISTINCT queue FROM outbox WHERE completed_at IS NULL \
             AND (dispatched_at IS NULL OR dispatched_at < $1)",
            [cutoff.into()],
        );
        let rows = self
            .db
            .query_all_raw(queues)
            .await
            .map_err(ProducerError::db("listing queues with due outbox rows"))?;
        let mut pass = RelayPass::default();
        for row in rows {
            let kind: String = row
                .try_get_by_index(0)
                .map_err(ProducerError::db("reading a queue name"))?;
            let depth = self.dispatch.depth(&kind).await.map_err(|e| ProducerError::Dispatch {
                queue: kind.clone(),
                message: e.to_string(),
            })?;
            let room = self.settings.max_waiting.saturating_sub(depth.pending());
            if room == 0 {
                pass.throttled = true;
                continue;
            }
            let limit = room.min(self.settings.batch);
            let moved = self.move_rows(&kind, limit, cutoff, now).await?;
            pass.dispatched += moved;
            pass.more |= moved == limit;
            pass.throttled |= moved == limit && limit < self.settings.batch;
        }
        Ok(pass)
    }

    async fn move_rows(
        &self,
        kind: &str,
        limit: u64,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, ProducerError> {
        let backend = self.db.get_database_backend();
        let lock = match backend {
            DatabaseBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE outbox SET dispatched_at = $1, dispatch_count = dispatch_count + 1 WHERE id IN (\
             SELECT id FROM outbox WHERE queue = $2 AND completed_at IS NULL \
             AND (dispatched_at IS NULL OR dispatched_at < $3) ORDER BY id LIMIT $4{lock}) \
             RETURNING id, job_id, payload, attempts"
        );
        let limit_value = i64::try_from(limit).unwrap_or(i64::MAX);
        let mark = statement(
            backend,
            &sql,
            [now.into(), kind.into(), cutoff.into(), limit_value.into()],
        );
        let rows = self
            .db
            .query_all_raw(mark)
            .await
            .map_err(ProducerError::db("marking outbox rows dispatched"))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let read = ProducerError::db("reading an outbox row");
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get_by_index(0).map_err(read)?;
            let job_id: Option<String> = row.try_get_by_index(1).map_err(read)?;
            let payload: serde_json::Value = row.try_get_by_index(2).map_err(read)?;
            let attempts: i32 = row.try_get_by_index(3).map_err(read)?;
            due.push((id, job_id.unwrap_or_default(), payload, attempts));
        }
        due.sort_unstable_by_key(|(id, ..)| *id);
        let ids: Vec<i64> = due.iter().map(|(id, ..)| *id).collect();
        let envelopes = due
            .into_iter()
            .map(|(id, job_id, payload, attempts)| {
                serde_json::json!({
                    "job_id": job_id,
                    "attempt": attempts.saturating_add(1),
                    "outbox_id": id,
                    "trace": {},
                    "payload": payload,
                })
            })
            .collect();
        if let Err(error) = self.dispatch.push(kind, envelopes, None).await {
            self.unmark(&ids).await;
            return Err(ProducerError::Dispatch {
                queue: kind.to_owned(),
                message: error.to_string(),
            });
        }
        tracing::debug!(kind, dispatched = ids.len(), "outbox rows dispatched");
        Ok(ids.len() as u64)
    }

    /// Best effort: rows left marked are dispatched again after `redispatch_after` anyway.
    async fn unmark(&self, ids: &[i64]) {
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "UPDATE outbox SET dispatched_at = NULL WHERE completed_at IS NULL AND id IN ({})",
            placeholders.join(", ")
        );
        let unmark = statement(
            self.db.get_database_backend(),
            &sql,
            ids.iter().map(|id| Value::from(*id)),
        );
        if let Err(error) = self.db.execute_raw(unmark).await {
            tracing::warn!(%error, rows = ids.len(), "cannot unmark outbox rows after a failed push");
        }
    }

    /// Relays until `shutdown` is cancelled. Errors (database or queue unreachable) are logged and retried with
    /// backoff: the relay never gives up.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let pause = tokio::select! {
                _ = shutdown.cancelled() => return,
                pass = self.pass(Utc::now()) => match pass {
                    Ok(pass) => {
                        failures = 0;
                        if pass.more { Duration::ZERO } else { self.settings.interval }
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(%error, failures, "outbox relay pass failed");
                        (self.settings.interval * 2u32.saturating_pow(failures.min(6))).min(Duration::from_secs(5))
                    }
                },
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
