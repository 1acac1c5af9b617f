//! The statements that move an outbox row through its states (see the crate docs), used by the worker runtime.
//!
//! A delivery (one message taken from a queue, named by the queue's task id) must [`claim`] the row before running
//! its job. The claim is a lease: a duplicate delivery of the same row (the relay dispatched it again, or a lost
//! queue came back) finds it held and skips, while the same delivery handed out again by the queue after its worker
//! died may take it over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};

use crate::error::ProducerError;
use crate::sql::statement;

/// The answer to a [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Run it: `failed_attempts` attempts failed before this one.
    Run { failed_attempts: u32 },
    /// Done already, dead, or held by another live delivery: drop this delivery.
    Skip,
}

/// Takes the row for `delivery` for `hold` (the job's timeout and a margin).
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    outbox_id: i64,
    delivery: &str,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Claim, ProducerError> {
    let until = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::MAX);
    let update = statement(
        conn.get_database_backend(),
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE id = $3 AND completed_at IS NULL \
         AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_until < $4) RETURNING attempts",
        [delivery.into(), until.into(), outbox_id.into(), now.into()],
    );
    let row = conn
        .query_one_raw(update)
        .await
        .map_err(ProducerError::db("claiming an outbox row"))?;
    match row {
        Some(row) => {
            let attempts: i32 = row
                .try_get_by_index(0)
                .map_err(ProducerError::db("reading the attempts of an outbox row"))?;
            Ok(Claim::Run {
                failed_attempts: u32::try_from(attempts).unwrap_or_default(),
            })
        }
        None => Ok(Claim::Skip),
    }
}

/// Closes the row of a completed job and releases its idempotency key. False when it was closed already.
pub async fn complete<C: ConnectionTrait>(conn: &C, outbox_id: i64, now: DateTime<Utc>) -> Result<bool, ProducerError> {
    let update = statement(
        conn.get_database_backend(),
        "UPDATE outbox SET completed_at = $1, idempotency_key = NULL, claimed_by = NULL, claimed_until = NULL \
         WHERE id = $2 AND completed_at IS NULL",
        [now.into(), outbox_id.into()],
    );
    let done = conn
        .execute_raw(update)
        .await
        .map_err(ProducerError::db("closing a completed job's outbox row"))?;
    Ok(done.rows_affected() > 0)
}

/// Records a failed attempt that will be retried at `run_at`, and lets the claim go. The row counts as dispatched
/// at `run_at`, so the relay dispatches it again only if the retry never shows up. False when this delivery no
/// longer held the row (then it must not schedule the retry).
pub async fn retry_later<C: ConnectionTrait>(
    conn: &C,
    outbox_id: i64,
    delivery: &str,
    error: &str,
    run_at: DateTime<Utc>,
) -> Result<bool, ProducerError> {
    let update = statement(
        conn.get_database_backend(),
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, claimed_by = NULL, claimed_until = NULL, \
         dispatched_at = $2, dispatch_count = dispatch_count + 1 \
         WHERE id = $3 AND completed_at IS NULL AND claimed_by = $4",
        [error.into(), run_at.into(), outbox_id.into(), delivery.into()],
    );
    let done = conn
        .execute_raw(update)
        .await
        .map_err(ProducerError::db("recording a failed attempt"))?;
    Ok(done.rows_affected() > 0)
}

/// Gives the row back unrun (the worker is shutting down): the relay dispatches it again at once, and the attempt
/// does not count.
pub async fn release<C: ConnectionTrait>(conn: &C, outbox_id: i64, delivery: &str) -> Result<(), ProducerError> {
    let update = statement(
        conn.get_database_backend(),
        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, dispatched_at = NULL \
         WHERE id = $1 AND completed_at IS NULL AND claimed_by = $2",
        [outbox_id.into(), delivery.into()],
    );
    conn.execute_raw(update)
        .await
        .map_err(ProducerError::db("releasing an outbox row"))?;
    Ok(())
}

/// A job that failed for good.
#[derive(Debug, Clone)]
pub struct DeadJob<'a> {
    /// The job kind.
    pub kind: &'a str,
    pub job_id: &'a str,
    pub outbox_id: Option<i64>,
    /// The whole envelope as delivered.
    pub payload: &'a serde_json::Value,
    /// Attempts made, this one included.
    pub attempts: u32,
    pub last_error: &'a str,
}

/// Records a dead job in `dead_jobs` and closes its outbox row as dead, in one transaction. A row closed already
/// (another delivery finished it) records nothing. Returns whether the job was recorded.
pub async fn bury(db: &DatabaseConnection, dead: &DeadJob<'_>, now: DateTime<Utc>) -> Result<bool, ProducerError> {
    let backend = db.get_database_backend();
    let txn = db.begin().await.map_err(ProducerError::db("starting a transaction"))?;
    let attempts = i32::try_from(dead.attempts).unwrap_or(i32::MAX);
    if let Some(outbox_id) = dead.outbox_id {
        let close = statement(
            backend,
            "UPDATE outbox SET completed_at = $1, dead_at = $1, idempotency_key = NULL, claimed_by = NULL, \
             claimed_until = NULL, attempts = $2, last_error = $3 WHERE id = $4 AND completed_at IS NULL",
            [now.into(), attempts.into(), dead.last_error.into(), outbox_id.into()],
        );
        let closed = txn
            .execute_raw(close)
            .await
            .map_err(ProducerError::db("closing a dead job's outbox row"))?;
        if closed.rows_affected() == 0 {
            txn.rollback().await.map_err(ProducerError::db("rolling back"))?;
            return Ok(false);
        }
    }
    let insert = statement(
        backend,
        "INSERT INTO dead_jobs (queue, job_id, payload, attempts, last_error, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        [
            dead.kind.into(),
            dead.job_id.into(),
            Value::Json(Some(Box::new(dead.payload.clone()))),
            attempts.into(),
            dead.last_error.into(),
            now.into(),
        ],
    );
    txn.execute_raw(insert)
        .await
        .map_err(ProducerError::db("recording a dead job"))?;
    txn.commit().await.map_err(ProducerError::db("committing a dead job"))?;
    Ok(true)
}

/// Open rows of these kinds: jobs not yet completed or dead (queued, in a queue, running or waiting to retry).
pub async fn open_rows<C: ConnectionTrait>(conn: &C, kinds: &[&str]) -> Result<u64, ProducerError> {
    if kinds.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (1..=kinds.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT COUNT(*) FROM outbox WHERE completed_at IS NULL AND queue IN ({})",
        placeholders.join(", ")
    );
    let query = statement(conn.get_database_backend(), &sql, kinds.iter().map(|k| Value::from(*k)));
    let row = conn
        .query_one_raw(query)
        .await
        .map_err(ProducerError::db("counting open outbox rows"))?;
    let count: i64 = match row {
        Some(row) => row
            .try_get_by_index(0)
            .map_err(ProducerError::db("counting open outbox rows"))?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or_default())
}
