//! The lifecycle's job handlers: one function per job kind this crate carries out, each idempotent, each turning its
//! outcome into success or a [`JobError`] that says whether to retry.

use dossier_jobs::{
    CompressJob, ExpireJob, Job, JobError, PackCompactJob, PrewarmJob, PromoteJob, RestoreJob, SweepJob, TransitionJob,
};
use serde::de::DeserializeOwned;

use crate::Lifecycle;
use crate::transition::MoveKind;

fn decode<J: DeserializeOwned>(kind: &str, payload: serde_json::Value) -> Result<J, JobError> {
    serde_json::from_value(payload).map_err(|e| JobError::permanent(format!("malformed {kind} payload: {e}")))
}

impl Lifecycle {
    pub async fn run_transition(&self, job: &TransitionJob, job_id: &str) -> Result<(), JobError> {
        self.transition(job.file_id, job.to, MoveKind::parse(&job.reason), Some(job_id))
            .await?;
        Ok(())
    }

    pub async fn run_promote(&self, job: &PromoteJob, job_id: &str) -> Result<(), JobError> {
        self.promote(job.file_id, Some(job_id)).await?;
        Ok(())
    }

    pub async fn run_restore(&self, job: &RestoreJob, job_id: &str) -> Result<(), JobError> {
        self.complete_restore(job.blob_id, Some(job_id)).await?;
        Ok(())
    }

    pub async fn run_prewarm(&self, job: &PrewarmJob, job_id: &str) -> Result<(), JobError> {
        self.prewarm(&job.user_id, &job.application_id, job.interview_at, Some(job_id))
            .await?;
        Ok(())
    }

    pub async fn run_expire(&self, job: &ExpireJob, job_id: &str) -> Result<(), JobError> {
        self.expire(job.file_id, Some(job_id)).await?;
        Ok(())
    }

    pub async fn run_compress(&self, job: &CompressJob, _job_id: &str) -> Result<(), JobError> {
        self.compress(job.blob_id).await?;
        Ok(())
    }

    pub async fn run_pack_compact(&self, job: &PackCompactJob, _job_id: &str) -> Result<(), JobError> {
        self.compact_pack(job.pack_id).await?;
        Ok(())
    }

    pub async fn run_sweep(&self, _job: &SweepJob, _job_id: &str) -> Result<(), JobError> {
        self.sweep(false).await?;
        Ok(())
    }

    /// Runs a job of this crate's kinds from its queue name's kind and JSON payload; `None` for other kinds.
    pub async fn run_json(&self, kind: &str, job_id: &str, payload: serde_json::Value) -> Option<Result<(), JobError>> {
        let result = match kind {
            TransitionJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_transition(&job, job_id).await,
                Err(e) => Err(e),
            },
            PromoteJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_promote(&job, job_id).await,
                Err(e) => Err(e),
            },
            RestoreJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_restore(&job, job_id).await,
                Err(e) => Err(e),
            },
            PrewarmJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_prewarm(&job, job_id).await,
                Err(e) => Err(e),
            },
            ExpireJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_expire(&job, job_id).await,
                Err(e) => Err(e),
            },
            CompressJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_compress(&job, job_id).await,
                Err(e) => Err(e),
            },
            PackCompactJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_pack_compact(&job, job_id).await,
                Err(e) => Err(e),
            },
            SweepJob::KIND => match decode(kind, payload) {
                Ok(job) => self.run_sweep(&job, job_id).await,
                Err(e) => Err(e),
            },
            _ => return None,
        };
        Some(result)
    }
}
