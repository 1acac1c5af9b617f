//! Worker names, unique per process and per restart: apalis refuses a name still registered as alive.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}

/// `<host>-<pid>-<kind>-<counter>-<random>`.
pub(crate) fn worker_name(kind: &str) -> String {
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = uuid::Uuid::new_v4().simple().to_string();
    random.truncate(6);
    format!("{}-{}-{kind}-{counter}-{random}", host(), std::process::id())
}
