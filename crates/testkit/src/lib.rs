//! Test-only helpers for Dossier: every test gets its own isolated piece of each real service.
//!
//! - [`S3Server`]: an in-process S3 server (s3s-fs over a temporary directory) spoken to over HTTP, with request
//!   counters and fault injection.
//! - [`PgSchema`]: a fresh Postgres schema, dropped afterwards.
//! - [`RedisNamespace`]: a unique Redis key namespace, whose keys are deleted afterwards (never `FLUSHDB`).
//!
//! Helpers panic with a clear message when a service is missing: they are for tests only.

mod postgres;
mod redis_namespace;
mod s3_server;

pub use postgres::PgSchema;
pub use redis_namespace::RedisNamespace;
pub use s3_server::{RequestKind, S3Server};

/// `prefix-` followed by ten random lowercase hex characters: a valid, unique S3 bucket or Redis name part.
///
/// The prefix is lowercased and cut to 40 characters so `<name>-glacier` stays within S3's 63.
pub fn unique_name(prefix: &str) -> String {
    let prefix: String = prefix.to_ascii_lowercase().chars().take(40).collect();
    format!("{prefix}-{}", random_suffix())
}

/// The shared corpus (`shared/corpus` beside the checkout), read in place: `DOSSIER_CORPUS` when set, else the first
/// `shared/corpus` found walking up from this crate, so a clone anywhere next to `shared/` finds it.
pub fn corpus_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("DOSSIER_CORPUS") {
        return dir.into();
    }
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/corpus"))
        .find(|c| c.join("resumes").is_dir())
        .unwrap_or_else(|| panic!("no shared/corpus above {}: set DOSSIER_CORPUS", here.display()))
}

/// An `http://127.0.0.1:PORT` endpoint where nothing listens: connecting is refused.
pub fn closed_port_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free local port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn random_suffix() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(10);
    id
}
