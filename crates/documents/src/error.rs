//! What can go wrong with a document operation, in the terms the CLI's exit codes and the API's statuses use.

use chrono::{DateTime, Utc};
use dossier_core::config::ConfigError;
use dossier_core::ids::InvalidId;
use dossier_db::DbError;
use dossier_storage::{StorageError, StorageErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Bad input: a bad key, user id, file type or document (exit 4).
    #[error("{0}")]
    Invalid(String),
    /// No such document for this user, including another user's key (exit 3).
    #[error("{0}")]
    NotFound(String),
    /// A legal hold or a concurrent change stands in the way (exit 5).
    #[error("{0}")]
    Conflict(String),
    /// The document is in glacier and a restore is under way (exit 75).
    #[error("document is in glacier; restore in progress, ready at {eta}")]
    Restoring { eta: DateTime<Utc>, job_id: String },
    /// The bytes read back are not the bytes stored.
    #[error("integrity error: {0}")]
    Integrity(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("metadata: {0}")]
    Db(#[from] DbError),
    #[error("object storage: {0}")]
    Storage(StorageError),
}

impl From<InvalidId> for DocError {
    fn from(e: InvalidId) -> Self {
        DocError::Invalid(e.to_string())
    }
}

impl From<StorageError> for DocError {
    fn from(e: StorageError) -> Self {
        match e.kind {
            StorageErrorKind::Integrity => DocError::Integrity(e.to_string()),
            _ => DocError::Storage(e),
        }
    }
}

impl DocError {
    /// Whether a backend (database, Redis, object store) could not be reached: retrying later may work.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DocError::Db(e) => e.is_unreachable(),
            DocError::Storage(e) => e.is_retryable(),
            _ => false,
        }
    }
}
