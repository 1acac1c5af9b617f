//! Lifecycle errors, and whether a job that hit one should be retried.

use dossier_documents::DocError;
use dossier_jobs::JobError;
use dossier_storage::StorageErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Doc(#[from] DocError),
    #[error("enqueueing work: {0}")]
    Enqueue(#[from] dossier_producer::ProducerError),
    /// Another job is moving the same bytes, or a compare-and-set lost a race: try again later.
    #[error("{0}")]
    Busy(String),
}

impl From<dossier_db::DbError> for LifecycleError {
    fn from(e: dossier_db::DbError) -> Self {
        LifecycleError::Doc(e.into())
    }
}

impl From<dossier_storage::StorageError> for LifecycleError {
    fn from(e: dossier_storage::StorageError) -> Self {
        LifecycleError::Doc(e.into())
    }
}

impl From<LifecycleError> for JobError {
    fn from(e: LifecycleError) -> Self {
        let message = e.to_string();
        let permanent = match &e {
            LifecycleError::Doc(DocError::Invalid(_) | DocError::NotFound(_) | DocError::Config(_)) => true,
            LifecycleError::Doc(DocError::Storage(s)) => {
                matches!(
                    s.kind,
                    StorageErrorKind::NoSuchBucket | StorageErrorKind::AccessDenied | StorageErrorKind::Permanent
                )
            }
            _ => false,
        };
        if permanent {
            JobError::permanent(message)
        } else {
            JobError::transient(message)
        }
    }
}
