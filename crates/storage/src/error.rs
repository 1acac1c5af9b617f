//! Storage errors carry a kind, and the kind says whether retrying can help.

use std::fmt;

/// What went wrong, in the terms a caller decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The object does not exist.
    NotFound,
    /// The bucket does not exist: a configuration error, retrying will not help.
    NoSuchBucket,
    /// Credentials refused: permanent until an operator acts.
    AccessDenied,
    /// The server asked us to slow down (429, SlowDown): retry with backoff.
    Throttled,
    /// A 5xx answer, a timeout or a refused connection: retry with backoff.
    Transient,
    /// The bytes read back are not what was stored.
    Integrity,
    /// Anything else the server refused: do not retry.
    Permanent,
}

impl StorageErrorKind {
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Transient)
    }
}

/// An error from an [`crate::ObjectStore`] or the cache, with its kind and a message naming the object.
#[derive(Debug, thiserror::Error)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}
