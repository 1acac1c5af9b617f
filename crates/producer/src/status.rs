//! A job's state as the outbox knows it, for `GET /v1/jobs/{id}`.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;

use crate::error::ProducerError;
use crate::sql::statement;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Written, not yet handed to a queue.
    Queued,
    /// In a queue (or waiting for a retry after a failed attempt).
    Dispatched,
    /// A worker is running it now.
    Running,
    Completed,
    /// Failed for good: see `last_error`; a `dead_jobs` row holds the payload.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    pub job_id: String,
    /// The job kind (`transition`, `render_pdf`, …).
    pub kind: String,
    pub state: JobState,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The state of the job with this id, `None` when no such job was ever enqueued.
pub async fn job_status<C: ConnectionTrait>(conn: &C, job_id: &str) -> Result<Option<JobStatus>, ProducerError> {
    let query = statement(
        conn.get_database_backend(),
        "SELECT queue, attempts, last_error, created_at, dispatched_at, completed_at, dead_at, claimed_by, \
         claimed_until FROM outbox WHERE job_id = $1 ORDER BY id DESC LIMIT 1",
        [job_id.into()],
    );
    let Some(row) = conn
        .query_one_raw(query)
        .await
        .map_err(ProducerError::db("reading a job's status"))?
    else {
        return Ok(None);
    };
    let read = ProducerError::db("reading a job's status");
    let kind: String = row.try_get_by_index(0).map_err(read)?;
    let attempts: i32 = row.try_get_by_index(1).map_err(read)?;
    let last_error: Option<String> = row.try_get_by_index(2).map_err(read)?;
    let created_at: DateTime<Utc> = row.try_get_by_index(3).map_err(read)?;
    let dispatched_at: Option<DateTime<Utc>> = row.try_get_by_index(4).map_err(read)?;
    let completed_at: Option<DateTime<Utc>> = row.try_get_by_index(5).map_err(read)?;
    let dead_at: Option<DateTime<Utc>> = row.try_get_by_index(6).map_err(read)?;
    let claimed_by: Option<String> = row.try_get_by_index(7).map_err(read)?;
    let claimed_until: Option<DateTime<Utc>> = row.try_get_by_index(8).map_err(read)?;
    // Claims are leases on the wall clock, whatever clock the caller acts as of.
    let now = Utc::now();
    let state = match (completed_at, dead_at, dispatched_at) {
        (Some(_), Some(_), _) => JobState::Dead,
        (Some(_), None, _) => JobState::Completed,
        _ if claimed_by.is_some() && claimed_until.is_some_and(|until| until > now) => JobState::Running,
        (None, _, Some(_)) => JobState::Dispatched,
        (None, _, None) => JobState::Queued,
    };
    Ok(Some(JobStatus {
        job_id: job_id.to_owned(),
        kind,
        state,
        attempts: u32::try_from(attempts).unwrap_or_default(),
        last_error,
        created_at,
        dispatched_at,
        completed_at,
    }))
}
