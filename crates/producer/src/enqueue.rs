//! The typed enqueue: one outbox row per job, written in the caller's transaction.

use chrono::{DateTime, Utc};
use dossier_jobs::Job;
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use crate::error::ProducerError;
use crate::sql::statement;

/// What [`enqueue`] did: the job's id (for `GET /v1/jobs/{id}`), its outbox row, and whether this call created it
/// (false: an open job with the same idempotency key already existed and is returned instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: String,
    pub outbox_id: i64,
    pub created: bool,
}

/// A closed row releases its key between our insert and our select at most this often before we give up.
const CONFLICT_ROUNDS: usize = 3;

/// Writes the outbox row of one job. `conn` may be the caller's transaction: the job exists only if it commits.
///
/// Jobs with an idempotency key ([`Job::unique_key`]) are enqueued once while open: a second call returns the open
/// job with `created: false`. Once that job completes or dies its key is released and the work can be enqueued again.
pub async fn enqueue<J: Job, C: ConnectionTrait>(
    conn: &C,
    payload: &J,
    now: DateTime<Utc>,
) -> Result<Enqueued, ProducerError> {
    let json = serde_json::to_value(payload).map_err(|source| ProducerError::Payload { kind: J::KIND, source })?;
    let key = payload.unique_key();
    let backend = conn.get_database_backend();
    for _ in 0..CONFLICT_ROUNDS {
        let job_id = Uuid::now_v7().to_string();
        let insert = statement(
            backend,
            "INSERT INTO outbox (queue, payload, idempotency_key, job_id, dispatch_count, attempts, created_at) \
             VALUES ($1, $2, $3, $4, 0, 0, $5) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            [
                J::KIND.into(),
                Value::Json(Some(Box::new(json.clone()))),
                key.clone().into(),
                job_id.clone().into(),
                now.into(),
            ],
        );
        let inserted = conn
            .query_one_raw(insert)
            .await
            .map_err(ProducerError::db("writing an outbox row"))?;
        if let Some(row) = inserted {
            let outbox_id = row
                .try_get_by_index::<i64>(0)
                .map_err(ProducerError::db("reading the new outbox id"))?;
            tracing::debug!(kind = J::KIND, job_id, outbox_id, "job enqueued");
            return Ok(Enqueued {
                job_id,
                outbox_id,
                created: true,
            });
        }
        let Some(key) = &key else {
            // Without a key nothing can conflict; an empty answer means the insert did not happen.
            return Err(ProducerError::Contended { kind: J::KIND });
        };
        let existing = statement(
            backend,
            "SELECT id, job_id FROM outbox WHERE idempotency_key = $1 AND completed_at IS NULL",
            [key.clone().into()],
        );
        let found = conn
            .query_one_raw(existing)
            .await
            .map_err(ProducerError::db("reading the open job of an idempotency key"))?;
        if let Some(row) = found {
            let outbox_id = row
                .try_get_by_index::<i64>(0)
                .map_err(ProducerError::db("reading an outbox id"))?;
            let job_id = row
                .try_get_by_index::<Option<String>>(1)
                .map_err(ProducerError::db("reading a job id"))?
                .unwrap_or_default();
            return Ok(Enqueued {
                job_id,
                outbox_id,
                created: false,
            });
        }
        // The open row closed between our insert and our select: its key is free again, try once more.
    }
    Err(ProducerError::Contended { kind: J::KIND })
}
