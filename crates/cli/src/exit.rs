//! Exit codes of CONTRACT.md, and the one-line error report on stderr.

use std::process::ExitCode;

use dossier_documents::DocError;

pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const INVALID: u8 = 4;
pub const CONFLICT: u8 = 5;
pub const UNAVAILABLE: u8 = 6;
pub const RESTORING: u8 = 75;
/// An internal failure (sysexits' EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;

/// A command that failed: its exit code and the line to print.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn report(self) -> ExitCode {
        let line = self.message.replace('\n', " ");
        eprintln!("dossier: error: {line}");
        ExitCode::from(self.code)
    }
}

impl From<DocError> for Failure {
    fn from(e: DocError) -> Self {
        let code = match &e {
            DocError::Invalid(_) => INVALID,
            DocError::NotFound(_) => NOT_FOUND,
            DocError::Conflict(_) => CONFLICT,
            DocError::Restoring { .. } => RESTORING,
            DocError::Config(_) | DocError::Db(dossier_db::DbError::NotMigrated(_)) => USAGE,
            DocError::Storage(_) => UNAVAILABLE,
            _ if e.is_unavailable() => UNAVAILABLE,
            DocError::Integrity(_) | DocError::Db(_) => SOFTWARE,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<dossier_lifecycle::LifecycleError> for Failure {
    fn from(e: dossier_lifecycle::LifecycleError) -> Self {
        match e {
            dossier_lifecycle::LifecycleError::Doc(doc) => doc.into(),
            dossier_lifecycle::LifecycleError::Busy(m) => Failure::new(CONFLICT, m),
            other => Failure::new(UNAVAILABLE, other.to_string()),
        }
    }
}

impl From<dossier_worker::BuildError> for Failure {
    fn from(e: dossier_worker::BuildError) -> Self {
        match e {
            dossier_worker::BuildError::Queues(_) => Failure::new(UNAVAILABLE, e.to_string()),
            dossier_worker::BuildError::Fleet(_) => Failure::new(USAGE, e.to_string()),
        }
    }
}

impl From<dossier_core::config::ConfigError> for Failure {
    fn from(e: dossier_core::config::ConfigError) -> Self {
        Failure::new(USAGE, e.to_string())
    }
}
