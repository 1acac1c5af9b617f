//! Typed configuration with one precedence everywhere: command-line flag > environment > `dossier.toml` > default.
//!
//! Every key has an environment name (standard names kept: `DATABASE_URL`, `REDIS_URL`; everything else
//! `DOSSIER_*`) and a path in `dossier.toml`. Any key may come from a file instead, named by the same key with
//! `_FILE` (Kubernetes secret mounts); the file's trailing newline is dropped. A wrong value is an error naming the
//! key and where the value came from. This module reads nothing itself: the caller hands it the environment, the
//! file's text and a way to read `_FILE` files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cost::CostModel;
use crate::policy::{Policies, PolicyOverride};
use crate::{FileType, Tier};

/// One configuration key: its environment name, its `dossier.toml` path, its default and what it means.
#[derive(Debug)]
pub struct Key {
    pub env: &'static str,
    pub toml: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub doc: &'static str,
}

macro_rules! keys {
    ($($env:literal, $toml:literal, $default:expr, $secret:literal, $doc:literal;)+) => {
        /// Every configuration key, in the order of the README's table.
        pub const KEYS: &[Key] = &[$(Key { env: $env, toml: $toml, default: $default, secret: $secret, doc: $doc }),+];
    };
}

keys! {
    "DOSSIER_HOME", "home", Some("./.dossier"), false, "Embedded home: SQLite database, tier folders, demo output.";
    "DOSSIER_CONFIG", "", None, false, "Path of dossier.toml (also `--config`); otherwise ./dossier.toml when it exists.";
    "DOSSIER_NOW", "", None, false, "The clock of this invocation, RFC 3339 (also `--now`).";
    "DOSSIER_LOG", "log", Some("warn"), false, "Log filter (tracing EnvFilter syntax); logs go to stderr.";
    "DOSSIER_LOG_FORMAT", "log_format", Some("text"), false, "`text` or `json` log lines.";
    "DATABASE_URL", "database_url", None, true, "Postgres URL: metadata in Postgres (else SQLite at DOSSIER_HOME/dossier.db).";
    "DOSSIER_DB_SCHEMA", "database_schema", None, false, "Postgres schema for Dossier's tables (created by `migrate`); default the connection's search_path.";
    "DOSSIER_DB_MAX_CONNECTIONS", "database_max_connections", Some("10"), false, "Connection pool size.";
    "REDIS_URL", "redis_url", None, true, "Redis URL: queues and hot cache in Redis (else SQLite queue and in-process cache).";
    "DOSSIER_NAMESPACE", "namespace", Some("dossier"), false, "Prefix of every Redis key and queue name, so several deployments or tests share one Redis.";
    "DOSSIER_REDIS_RESPONSE_TIMEOUT_MS", "redis_response_timeout_ms", Some("5000"), false, "How long one Redis response may take before the call fails.";
    "DOSSIER_S3_ENDPOINT", "s3.endpoint", None, false, "S3 endpoint URL: objects in S3/MinIO (else folders DOSSIER_HOME/tiers/<tier>/).";
    "DOSSIER_S3_REGION", "s3.region", Some("us-east-1"), false, "S3 region.";
    "DOSSIER_S3_BUCKET_PREFIX", "s3.bucket_prefix", Some("dossier"), false, "Buckets are <prefix>-hot, -warm, -cold, -glacier unless named one by one.";
    "DOSSIER_S3_BUCKET_HOT", "s3.bucket_hot", None, false, "Bucket of the hot tier.";
    "DOSSIER_S3_BUCKET_WARM", "s3.bucket_warm", None, false, "Bucket of the warm tier.";
    "DOSSIER_S3_BUCKET_COLD", "s3.bucket_cold", None, false, "Bucket of the cold tier.";
    "DOSSIER_S3_BUCKET_GLACIER", "s3.bucket_glacier", None, false, "Bucket of the glacier tier.";
    "DOSSIER_S3_FORCE_PATH_STYLE", "s3.force_path_style", Some("true"), false, "Path-style addressing (MinIO and most S3-compatible servers need it).";
    "DOSSIER_S3_ACCESS_KEY_ID", "s3.access_key_id", None, true, "Static credentials; without them the standard AWS credential chain is used.";
    "DOSSIER_S3_SECRET_ACCESS_KEY", "s3.secret_access_key", None, true, "Static credentials (secret part).";
    "DOSSIER_S3_CHECKSUM", "s3.checksum", Some("when_required"), false, "Request checksums: `when_supported` (AWS) or `when_required` (safe for S3-compatible servers).";
    "DOSSIER_S3_MULTIPART_THRESHOLD", "s3.multipart_threshold", Some("16777216"), false, "Uploads of at least this many bytes use multipart upload.";
    "DOSSIER_S3_MULTIPART_PART_SIZE", "s3.multipart_part_size", Some("8388608"), false, "Part size of multipart uploads (at least 5 MiB on S3).";
    "DOSSIER_S3_MULTIPART_COPY_THRESHOLD", "s3.multipart_copy_threshold", Some("5368709120"), false, "Copies of at least this many bytes use multipart copy.";
    "DOSSIER_CACHE_TTL_SECS", "cache.ttl_secs", Some("3600"), false, "Lifetime of a hot-cache entry.";
    "DOSSIER_CACHE_MAX_BYTES", "cache.max_bytes", Some("268435456"), false, "Memory budget of the hot cache.";
    "DOSSIER_CACHE_MAX_OBJECT_BYTES", "cache.max_object_bytes", Some("1048576"), false, "Documents larger than this are never cached.";
    "DOSSIER_RESTORE_HOURS", "lifecycle.restore_hours", Some("12"), false, "How long a glacier restore takes (on the injected clock in tests and the demo).";
    "DOSSIER_RESTORED_DAYS", "lifecycle.restored_days", Some("7"), false, "How long a restored glacier document stays readable.";
    "DOSSIER_PREWARM_LEAD_HOURS", "lifecycle.prewarm_lead_hours", Some("24"), false, "An interview's documents are hot this long before it, plus the restore time of their tier.";
    "DOSSIER_ACTIVE_USER_DAYS", "lifecycle.active_user_days", Some("30"), false, "Users with an application active this recently keep their hot documents cached.";
    "DOSSIER_SWEEP_BATCH", "lifecycle.sweep_batch", Some("1000"), false, "Rows the sweep reads per page.";
    "DOSSIER_SWEEP_LEASE_SECS", "lifecycle.sweep_lease_secs", Some("300"), false, "How long one sweep (and one pack seal or compaction) holds its fleet-wide lease.";
    "DOSSIER_FSCK_GRACE_HOURS", "lifecycle.fsck_grace_hours", Some("24"), false, "Objects no row points to are removed by fsck only after this age.";
    "DOSSIER_WORKER_CONCURRENCY", "worker.concurrency", Some("8"), false, "Jobs one worker runs at once (also `--concurrency`).";
    "DOSSIER_POLL_INTERVAL_MS", "worker.poll_interval_ms", Some("100"), false, "How often an idle worker asks its queue for work.";
    "DOSSIER_HEARTBEAT_SECS", "worker.heartbeat_secs", Some("5"), false, "Worker heartbeat; a worker silent for heartbeat × missed beats is dead and its jobs run elsewhere.";
    "DOSSIER_MISSED_HEARTBEATS", "worker.missed_heartbeats", Some("3"), false, "Missed heartbeats before a worker counts as dead.";
    "DOSSIER_SHUTDOWN_DEADLINE_SECS", "worker.shutdown_deadline_secs", Some("25"), false, "SIGTERM: in-flight jobs finish or are handed back within this (keep it below Kubernetes' grace period).";
    "DOSSIER_HEALTH_STALE_SECS", "worker.health_stale_secs", Some("30"), false, "`/healthz` answers 503 once the worker has not polled for this long.";
    "DOSSIER_BACKOFF_SCALE", "worker.backoff_scale", Some("1.0"), false, "Multiplies every job's retry backoff.";
    "DOSSIER_RELAY_MAX_WAITING", "worker.relay_max_waiting", Some("2000"), false, "The most jobs the outbox relay lets wait in one queue (apalis-redis 1.0 fails above about 8,000).";
    "DOSSIER_RELAY_REDISPATCH_SECS", "worker.relay_redispatch_secs", Some("600"), false, "An open job dispatched longer ago than this is dispatched again (a lost queue loses no work).";
    "DOSSIER_COMPRESS", "storage.compress", Some("ingest"), false, "LZ4 for content that saves at least the minimum: `ingest` (decided when stored), `job` (by `compress` jobs the sweep plans) or `off`.";
    "DOSSIER_COMPRESS_MIN_SAVING", "storage.compress_min_saving", Some("0.10"), false, "The fraction LZ4 must save for a blob to be kept compressed; otherwise it stays raw and is not probed again.";
    "DOSSIER_DELTA_KEYFRAME_EVERY", "storage.delta_keyframe_every", Some("10"), false, "Text versions of one document are stored as zstd deltas against the previous one, whole every this many versions; 0 stores every version whole.";
    "DOSSIER_PACK_TIERS", "storage.pack_tiers", Some("cold,glacier"), false, "Tiers whose small contents are stored in packs (comma separated, or `none`).";
    "DOSSIER_PACK_MEMBER_MAX_BYTES", "storage.pack_member_max_bytes", Some("131072"), false, "Contents stored smaller than this go into packs in the pack tiers.";
    "DOSSIER_PACK_TARGET_BYTES", "storage.pack_target_bytes", Some("8388608"), false, "A pack is sealed once this many bytes wait for it.";
    "DOSSIER_PACK_MAX_WAIT_HOURS", "storage.pack_max_wait_hours", Some("24"), false, "A pack is sealed by the sweep once its oldest member has waited this long, however small.";
    "DOSSIER_PACK_COMPACT_BELOW", "storage.pack_compact_below", Some("0.5"), false, "A sealed pack whose live bytes fall below this fraction is compacted.";
    "DOSSIER_SWEEP_SCHEDULE", "worker.sweep_schedule", Some("0 */5 * * * *"), false, "When workers enqueue the lifecycle sweep: a cron expression with seconds (`sec min hour day month weekday`), or `off`.";
    "DOSSIER_HOUSEKEEPING_SCHEDULE", "worker.housekeeping_schedule", Some("0 17 * * * *"), false, "When workers enqueue housekeeping (finished job data removed in bounded batches): cron with seconds, or `off`.";
    "DOSSIER_DEDUP_SCOPE", "dedup.scope", Some("user"), false, "`user` (identical bytes shared within one user) or `global`; templates and common sections are always shared.";
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    EnvFile(PathBuf),
    File(PathBuf),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("command line"),
            Origin::Env => f.write_str("environment"),
            Origin::EnvFile(p) => write!(f, "file {}", p.display()),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A configuration value that cannot be used, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration {key} (from {origin}): {message}")]
pub struct ConfigError {
    pub key: String,
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, origin: impl fmt::Display, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            origin: origin.to_string(),
            message: message.into(),
        }
    }
}

/// Everything the configuration is read from.
#[derive(Debug, Default)]
pub struct Sources {
    /// Command-line values by environment name (`--now` is `DOSSIER_NOW`).
    pub flags: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    /// `dossier.toml`: its path and its text.
    pub file: Option<(PathBuf, String)>,
}

/// How identical bytes of different users are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupScope {
    User,
    Global,
}

/// How aws-sdk-s3 adds request checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    WhenSupported,
    WhenRequired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    /// Bucket of each tier, hot to glacier.
    pub buckets: [String; 4],
    pub force_path_style: bool,
    #[serde(skip)]
    pub access_key_id: Option<String>,
    #[serde(skip)]
    pub secret_access_key: Option<String>,
    pub checksum: ChecksumMode,
    pub multipart_threshold: u64,
    pub multipart_part_size: u64,
    pub multipart_copy_threshold: u64,
}

impl S3Config {
    pub fn bucket(&self, tier: Tier) -> &str {
        &self.buckets[tier as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheConfig {
    pub ttl_secs: u64,
    pub max_bytes: u64,
    pub max_object_bytes: u64,
}

/// Timings of the lifecycle beyond the per-type policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleConfig {
    pub restore_hours: u64,
    pub restored_days: u64,
    pub prewarm_lead_hours: u64,
    pub active_user_days: u64,
    pub sweep_batch: u64,
    pub sweep_lease_secs: u64,
    pub fsck_grace_hours: u64,
}

/// The worker fleet's timings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerConfig {
    pub concurrency: u64,
    pub poll_interval_ms: u64,
    pub heartbeat_secs: u64,
    pub missed_heartbeats: u64,
    pub shutdown_deadline_secs: u64,
    pub health_stale_secs: u64,
    pub backoff_scale: f64,
    pub relay_max_waiting: u64,
    pub relay_redispatch_secs: u64,
    /// Cron expressions (with seconds); `None` when `off`.
    pub sweep_schedule: Option<String>,
    pub housekeeping_schedule: Option<String>,
}

/// When Dossier compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressMode {
    /// Decided when a document is stored.
    Ingest,
    /// Stored raw, compressed later by `compress` jobs.
    Job,
    Off,
}

/// How bytes are stored: compression and version deltas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageConfig {
    pub compress: CompressMode,
    pub compress_min_saving: f64,
    pub delta_keyframe_every: u32,
    pub pack_tiers: Vec<Tier>,
    pub pack_member_max_bytes: u64,
    pub pack_target_bytes: u64,
    pub pack_max_wait_hours: u64,
    pub pack_compact_below: f64,
}

/// The whole resolved configuration of one process.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub home: PathBuf,
    pub log: String,
    /// Whether the log filter was set (rather than defaulted).
    pub log_explicit: bool,
    pub log_json: bool,
    #[serde(skip)]
    pub database_url: Option<String>,
    pub database_schema: Option<String>,
    pub database_max_connections: u32,
    #[serde(skip)]
    pub redis_url: Option<String>,
    pub namespace: String,
    pub redis_response_timeout_ms: u64,
    pub s3: Option<S3Config>,
    pub cache: CacheConfig,
    pub dedup_scope: DedupScope,
    pub storage: StorageConfig,
    pub lifecycle: LifecycleConfig,
    pub worker: WorkerConfig,
    pub now: Option<DateTime<Utc>>,
    pub policies: Policies,
    pub cost: CostModel,
}

/// Resolves keys from [`Sources`] in precedence order.
struct Resolver<'a> {
    sources: &'a Sources,
    file: Option<&'a toml::Table>,
    read_file: &'a dyn Fn(&std::path::Path) -> std::io::Result<String>,
}

impl Resolver<'_> {
    fn key(env: &str) -> &'static Key {
        // KEYS holds every name this module asks for; a miss is a bug in this file, caught by its tests.
        KEYS.iter().find(|k| k.env == env).unwrap_or(&KEYS[0])
    }

    fn toml_value(&self, path: &str) -> Option<String> {
        let mut parts = path.split('.');
        let mut table = self.file?;
        let mut part = parts.next()?;
        for next in parts {
            table = table.get(part)?.as_table()?;
            part = next;
        }
        match table.get(part)? {
            toml::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The raw value of a key and its origin, or `None` when unset with no default.
    fn raw(&self, env: &str) -> Result<Option<(String, Origin)>, ConfigError> {
        let key = Self::key(env);
        if let Some(v) = self.sources.flags.get(env) {
            return Ok(Some((v.clone(), Origin::Flag)));
        }
        if let Some(v) = self.sources.env.get(env) {
            return Ok(Some((v.clone(), Origin::Env)));
        }
        let file_key = format!("{env}_FILE");
        if let Some(path) = self.sources.env.get(&file_key) {
            let path = PathBuf::from(path);
            let text = (self.read_file)(&path).map_err(|e| {
                ConfigError::new(&file_key, Origin::Env, format!("cannot read {}: {e}", path.display()))
            })?;
            let value = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            return Ok(Some((value.to_owned(), Origin::EnvFile(path))));
        }
        if !key.toml.is_empty()
            && let Some(v) = self.toml_value(key.toml)
        {
            let path = self.sources.file.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
            return Ok(Some((v, Origin::File(path))));
        }
        Ok(key.default.map(|d| (d.to_owned(), Origin::Default)))
    }

    fn string(&self, env: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.raw(env)?.map(|(v, _)| v).filter(|v| !v.is_empty()))
    }

    fn parse<T>(&self, env: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ConfigError> {
        match self.raw(env)? {
            None => Ok(None),
            Some((v, origin)) => parse(v.trim())
                .map(Some)
                .ok_or_else(|| ConfigError::new(env, origin, format!("expected {what}, got {v:?}"))),
        }
    }

    /// A URL that must start with one of `schemes` (secrets are never echoed back in the error).
    fn url(&self, env: &str, schemes: &[&str]) -> Result<Option<String>, ConfigError> {
        match self.raw(env)? {
            Some((v, _)) if v.is_empty() => Ok(None),
            Some((v, origin)) if !schemes.iter().any(|s| v.starts_with(s)) => Err(ConfigError::new(
                env,
                origin,
                format!("expected a URL starting with {}", schemes.join(" or ")),
            )),
            other => Ok(other.map(|(v, _)| v)),
        }
    }

    fn required<T>(&self, env: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, ConfigError> {
        self.parse(env, what, parse)?
            .ok_or_else(|| ConfigError::new(env, Origin::Default, "no value"))
    }
}

const CRON_EXPECTED: &str = "a cron expression with seconds such as \"0 */5 * * * *\", or off";

/// A schedule: `off` is `Some(None)`; a cron expression that parses is kept as written.
fn parse_schedule(v: &str) -> Option<Option<String>> {
    if v.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    cron::Schedule::from_str(v).ok().map(|_| Some(v.to_owned()))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses an RFC 3339 instant and normalises it to UTC.
pub fn parse_instant(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&Utc))
}

const TOP_LEVEL: &[&str] = &[
    "policies",
    "cost",
    "s3",
    "cache",
    "dedup",
    "storage",
    "lifecycle",
    "worker",
];

fn check_unknown_keys(table: &toml::Table, path: &std::path::Path) -> Result<(), ConfigError> {
    let known: Vec<&str> = KEYS.iter().map(|k| k.toml).filter(|t| !t.is_empty()).collect();
    for (name, value) in table {
        if name == "policies" || name == "cost" {
            continue;
        }
        match value.as_table() {
            Some(section) if TOP_LEVEL.contains(&name.as_str()) => {
                for inner in section.keys() {
                    let full = format!("{name}.{inner}");
                    if !known.contains(&full.as_str()) {
                        return Err(ConfigError::new(full, path.display(), "unknown key"));
                    }
                }
            }
            _ if known.contains(&name.as_str()) => {}
            _ => return Err(ConfigError::new(name, path.display(), "unknown key")),
        }
    }
    Ok(())
}

impl Config {
    /// Resolves the configuration; `read_file` reads `*_FILE` secrets.
    pub fn load(
        sources: &Sources,
        read_file: &dyn Fn(&std::path::Path) -> std::io::Result<String>,
    ) -> Result<Config, ConfigError> {
        let parsed_file = match &sources.file {
            Some((path, text)) => {
                let table: toml::Table = toml::from_str(text)
                    .map_err(|e| ConfigError::new("DOSSIER_CONFIG", path.display(), e.message().to_owned()))?;
                check_unknown_keys(&table, path)?;
                Some((path.clone(), table))
            }
            None => None,
        };
        let r = Resolver {
            sources,
            file: parsed_file.as_ref().map(|(_, t)| t),
            read_file,
        };
        let u64_of = |env: &str| r.required(env, "a whole number", |v| v.parse::<u64>().ok());

        let s3 = match r.string("DOSSIER_S3_ENDPOINT")? {
            None => None,
            Some(endpoint) => {
                let prefix = r.string("DOSSIER_S3_BUCKET_PREFIX")?.unwrap_or_default();
                let bucket = |env: &str, tier: Tier| -> Result<String, ConfigError> {
                    Ok(r.string(env)?.unwrap_or_else(|| format!("{prefix}-{tier}")))
                };
                let part_size = u64_of("DOSSIER_S3_MULTIPART_PART_SIZE")?;
                if part_size < 5 * 1024 * 1024 {
                    return Err(ConfigError::new(
                        "DOSSIER_S3_MULTIPART_PART_SIZE",
                        "value",
                        "S3 refuses parts under 5 MiB (5242880 bytes)",
                    ));
                }
                Some(S3Config {
                    endpoint,
                    region: r.string("DOSSIER_S3_REGION")?.unwrap_or_default(),
                    buckets: [
                        bucket("DOSSIER_S3_BUCKET_HOT", Tier::Hot)?,
                        bucket("DOSSIER_S3_BUCKET_WARM", Tier::Warm)?,
                        bucket("DOSSIER_S3_BUCKET_COLD", Tier::Cold)?,
                        bucket("DOSSIER_S3_BUCKET_GLACIER", Tier::Glacier)?,
                    ],
                    force_path_style: r.required("DOSSIER_S3_FORCE_PATH_STYLE", "true or false", parse_bool)?,
                    access_key_id: r.string("DOSSIER_S3_ACCESS_KEY_ID")?,
                    secret_access_key: r.string("DOSSIER_S3_SECRET_ACCESS_KEY")?,
                    checksum: r.required("DOSSIER_S3_CHECKSUM", "when_supported or when_required", |v| match v {
                        "when_supported" => Some(ChecksumMode::WhenSupported),
                        "when_required" => Some(ChecksumMode::WhenRequired),
                        _ => None,
                    })?,
                    multipart_threshold: u64_of("DOSSIER_S3_MULTIPART_THRESHOLD")?,
                    multipart_part_size: part_size,
                    multipart_copy_threshold: u64_of("DOSSIER_S3_MULTIPART_COPY_THRESHOLD")?,
                })
            }
        };

        let namespace = r.string("DOSSIER_NAMESPACE")?.unwrap_or_default();
        if namespace.is_empty()
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(ConfigError::new(
                "DOSSIER_NAMESPACE",
                "value",
                format!("expected letters, digits, _ - . only, got {namespace:?}"),
            ));
        }
        let schema = r.string("DOSSIER_DB_SCHEMA")?;
        if let Some(s) = &schema
            && !(s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && s.len() <= 63)
        {
            return Err(ConfigError::new(
                "DOSSIER_DB_SCHEMA",
                "value",
                format!("expected a plain SQL identifier, got {s:?}"),
            ));
        }

        let mut policies = Policies::default();
        let mut cost = CostModel::default();
        if let Some((path, table)) = &parsed_file {
            if let Some(p) = table.get("policies") {
                let p = p
                    .as_table()
                    .ok_or_else(|| ConfigError::new("policies", path.display(), "expected a table of file types"))?;
                for (name, value) in p {
                    let key = format!("policies.{name}");
                    let file_type: FileType = name.parse().map_err(|e: crate::file_type::UnknownFileType| {
                        ConfigError::new(&key, path.display(), e.to_string())
                    })?;
                    let o: PolicyOverride = value
                        .clone()
                        .try_into()
                        .map_err(|e: toml::de::Error| ConfigError::new(&key, path.display(), e.message().to_owned()))?;
                    policies
                        .apply(file_type, o)
                        .map_err(|m| ConfigError::new(&key, path.display(), m))?;
                }
            }
            if let Some(c) = table.get("cost") {
                let mut merged =
                    toml::Table::try_from(&cost).map_err(|e| ConfigError::new("cost", "default", e.to_string()))?;
                let overrides = c
                    .as_table()
                    .ok_or_else(|| ConfigError::new("cost", path.display(), "expected a table"))?;
                for (tier, prices) in overrides {
                    let slot = merged
                        .get_mut(tier)
                        .and_then(|v| v.as_table_mut())
                        .ok_or_else(|| ConfigError::new(format!("cost.{tier}"), path.display(), "unknown tier"))?;
                    let prices = prices
                        .as_table()
                        .ok_or_else(|| ConfigError::new(format!("cost.{tier}"), path.display(), "expected a table"))?;
                    for (k, v) in prices {
                        slot.insert(k.clone(), v.clone());
                    }
                }
                cost = toml::Value::Table(merged)
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::new("cost", path.display(), e.message().to_owned()))?;
            }
        }

        Ok(Config {
            home: PathBuf::from(r.required("DOSSIER_HOME", "a directory path", |v| {
                Some(v.to_owned()).filter(|v| !v.is_empty())
            })?),
            log: r.string("DOSSIER_LOG")?.unwrap_or_default(),
            log_explicit: r
                .raw("DOSSIER_LOG")?
                .is_some_and(|(_, origin)| origin != Origin::Default),
            log_json: r.required("DOSSIER_LOG_FORMAT", "text or json", |v| match v {
                "text" => Some(false),
                "json" => Some(true),
                _ => None,
            })?,
            database_url: r.url("DATABASE_URL", &["postgres://", "postgresql://"])?,
            database_schema: schema,
            database_max_connections: r.required("DOSSIER_DB_MAX_CONNECTIONS", "a whole number from 1", |v| {
                v.parse::<u32>().ok().filter(|n| *n > 0)
            })?,
            redis_url: r.url("REDIS_URL", &["redis://", "rediss://", "redis+unix://", "unix://"])?,
            namespace,
            redis_response_timeout_ms: u64_of("DOSSIER_REDIS_RESPONSE_TIMEOUT_MS")?,
            s3,
            cache: CacheConfig {
                ttl_secs: u64_of("DOSSIER_CACHE_TTL_SECS")?,
                max_bytes: u64_of("DOSSIER_CACHE_MAX_BYTES")?,
                max_object_bytes: u64_of("DOSSIER_CACHE_MAX_OBJECT_BYTES")?,
            },
            dedup_scope: r.required("DOSSIER_DEDUP_SCOPE", "user or global", |v| match v {
                "user" => Some(DedupScope::User),
                "global" => Some(DedupScope::Global),
                _ => None,
            })?,
            storage: StorageConfig {
                compress: r.required("DOSSIER_COMPRESS", "ingest, job or off", |v| match v {
                    "ingest" => Some(CompressMode::Ingest),
                    "job" => Some(CompressMode::Job),
                    "off" => Some(CompressMode::Off),
                    _ => None,
                })?,
                compress_min_saving: r.required("DOSSIER_COMPRESS_MIN_SAVING", "a fraction from 0 to 1", |v| {
                    v.parse::<f64>().ok().filter(|n| (0.0..=1.0).contains(n))
                })?,
                delta_keyframe_every: r.required("DOSSIER_DELTA_KEYFRAME_EVERY", "a whole number", |v| {
                    v.parse::<u32>().ok()
                })?,
                pack_tiers: r.required("DOSSIER_PACK_TIERS", "tiers such as cold,glacier, or none", |v| {
                    if v == "none" {
                        return Some(Vec::new());
                    }
                    v.split(',').map(|t| t.trim().parse::<Tier>().ok()).collect()
                })?,
                pack_member_max_bytes: u64_of("DOSSIER_PACK_MEMBER_MAX_BYTES")?,
                pack_target_bytes: r.required("DOSSIER_PACK_TARGET_BYTES", "a whole number from 1", |v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0)
                })?,
                pack_max_wait_hours: u64_of("DOSSIER_PACK_MAX_WAIT_HOURS")?,
                pack_compact_below: r.required("DOSSIER_PACK_COMPACT_BELOW", "a fraction from 0 to 1", |v| {
                    v.parse::<f64>().ok().filter(|n| (0.0..=1.0).contains(n))
                })?,
            },
            lifecycle: LifecycleConfig {
                restore_hours: u64_of("DOSSIER_RESTORE_HOURS")?,
                restored_days: u64_of("DOSSIER_RESTORED_DAYS")?,
                prewarm_lead_hours: u64_of("DOSSIER_PREWARM_LEAD_HOURS")?,
                active_user_days: u64_of("DOSSIER_ACTIVE_USER_DAYS")?,
                sweep_batch: r.required("DOSSIER_SWEEP_BATCH", "a whole number from 1", |v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0)
                })?,
                sweep_lease_secs: u64_of("DOSSIER_SWEEP_LEASE_SECS")?,
                fsck_grace_hours: u64_of("DOSSIER_FSCK_GRACE_HOURS")?,
            },
            worker: WorkerConfig {
                concurrency: r.required("DOSSIER_WORKER_CONCURRENCY", "a whole number from 1", |v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0)
                })?,
                poll_interval_ms: u64_of("DOSSIER_POLL_INTERVAL_MS")?,
                heartbeat_secs: r.required("DOSSIER_HEARTBEAT_SECS", "a whole number from 1", |v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0)
                })?,
                missed_heartbeats: r.required("DOSSIER_MISSED_HEARTBEATS", "a whole number from 1", |v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0)
                })?,
                shutdown_deadline_secs: u64_of("DOSSIER_SHUTDOWN_DEADLINE_SECS")?,
                health_stale_secs: u64_of("DOSSIER_HEALTH_STALE_SECS")?,
                backoff_scale: r.required("DOSSIER_BACKOFF_SCALE", "a number from 0", |v| {
                    v.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0)
                })?,
                relay_max_waiting: r.required("DOSSIER_RELAY_MAX_WAITING", "a whole number from 1", |v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0)
                })?,
                relay_redispatch_secs: u64_of("DOSSIER_RELAY_REDISPATCH_SECS")?,
                sweep_schedule: r.required("DOSSIER_SWEEP_SCHEDULE", CRON_EXPECTED, parse_schedule)?,
                housekeeping_schedule: r.required("DOSSIER_HOUSEKEEPING_SCHEDULE", CRON_EXPECTED, parse_schedule)?,
            },
            now: r.parse(
                "DOSSIER_NOW",
                "an RFC 3339 instant such as 2026-03-09T12:00:00Z",
                parse_instant,
            )?,
            policies,
            cost,
        })
    }
}

/// The configuration table of the README, generated from [`KEYS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| environment | dossier.toml | default | meaning |\n|---|---|---|---|\n");
    for key in KEYS {
        let toml = if key.toml.is_empty() {
            "—".to_owned()
        } else {
            format!("`{}`", key.toml)
        };
        let default = key.default.map(|d| format!("`{d}`")).unwrap_or_else(|| "—".to_owned());
        let secret = if key.secret { " Secret: also `_FILE`." } else { "" };
        out.push_str(&format!(
            "| `{}` | {toml} | {default} | {}{secret} |\n",
            key.env, key.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &std::path::Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }

    fn sources(env: &[(&str, &str)], flags: &[(&str, &str)], file: Option<&str>) -> Sources {
        Sources {
            flags: flags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            file: file.map(|t| (PathBuf::from("dossier.toml"), t.to_owned())),
        }
    }

    #[test]
    fn defaults_are_fully_embedded() {
        let c = Config::load(&Sources::default(), &no_files).expect("defaults load");
        assert_eq!(c.home, PathBuf::from("./.dossier"));
        assert!(c.database_url.is_none() && c.redis_url.is_none() && c.s3.is_none());
        assert_eq!(c.dedup_scope, DedupScope::User);
        assert_eq!(c.cache.ttl_secs, 3600);
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let file = "cache.ttl_secs = 1\n[s3]\nendpoint = \"http://file\"\nbucket_prefix = \"f\"\n";
        let file = file.replace("cache.ttl_secs = 1\n", "[cache]\nttl_secs = 1\n");
        let c = Config::load(&sources(&[], &[], Some(&file)), &no_files).expect("file");
        assert_eq!(c.cache.ttl_secs, 1);
        let s3 = c.s3.expect("s3 from file");
        assert_eq!(s3.endpoint, "http://file");
        assert_eq!(s3.bucket(Tier::Cold), "f-cold");
        let c = Config::load(
            &sources(&[("DOSSIER_CACHE_TTL_SECS", "2")], &[], Some(&file)),
            &no_files,
        )
        .expect("env");
        assert_eq!(c.cache.ttl_secs, 2);
        let c = Config::load(
            &sources(
                &[("DOSSIER_NOW", "2026-01-01T00:00:00Z")],
                &[("DOSSIER_NOW", "2026-03-08T23:30:00-05:00")],
                None,
            ),
            &no_files,
        )
        .expect("flag");
        assert_eq!(c.now, parse_instant("2026-03-09T04:30:00Z"));
    }

    #[test]
    fn secrets_from_files() {
        let read = |p: &std::path::Path| {
            assert_eq!(p, std::path::Path::new("/run/secrets/db"));
            Ok("postgres://u:p@db/x\n".to_owned())
        };
        let c =
            Config::load(&sources(&[("DATABASE_URL_FILE", "/run/secrets/db")], &[], None), &read).expect("file secret");
        assert_eq!(c.database_url.as_deref(), Some("postgres://u:p@db/x"));
        let err = Config::load(&sources(&[("REDIS_URL_FILE", "/nope")], &[], None), &no_files).expect_err("must fail");
        assert_eq!(err.key, "REDIS_URL_FILE");
    }

    #[test]
    fn errors_name_the_key() {
        let err =
            Config::load(&sources(&[("DOSSIER_CACHE_TTL_SECS", "soon")], &[], None), &no_files).expect_err("must fail");
        assert_eq!(err.key, "DOSSIER_CACHE_TTL_SECS");
        assert!(
            err.to_string().contains("environment") && err.to_string().contains("soon"),
            "{err}"
        );
        let err = Config::load(&sources(&[("DOSSIER_NOW", "yesterday")], &[], None), &no_files).expect_err("must fail");
        assert_eq!(err.key, "DOSSIER_NOW");
        let err = Config::load(&sources(&[], &[], Some("[cache]\nttl = 3\n")), &no_files).expect_err("must fail");
        assert_eq!(err.key, "cache.ttl");
        let err = Config::load(
            &sources(&[], &[], Some("[policies.resume]\nexpire_days = 3\n")),
            &no_files,
        )
        .expect_err("must fail");
        assert_eq!(err.key, "policies.resume");
        let err = Config::load(
            &sources(&[], &[], Some("[policies.temp]\nexpire_days = -3\n")),
            &no_files,
        )
        .expect_err("must fail");
        assert_eq!(err.key, "policies.temp");
    }

    #[test]
    fn schedules_are_cron_expressions_or_off() {
        let c = Config::load(&sources(&[], &[], None), &no_files).expect("defaults");
        assert_eq!(c.worker.sweep_schedule.as_deref(), Some("0 */5 * * * *"));
        let c = Config::load(
            &sources(
                &[("DOSSIER_SWEEP_SCHEDULE", "off")],
                &[],
                Some("[worker]\nhousekeeping_schedule = \"* * * * * *\"\n"),
            ),
            &no_files,
        )
        .expect("off and every second");
        assert_eq!(c.worker.sweep_schedule, None);
        assert_eq!(c.worker.housekeeping_schedule.as_deref(), Some("* * * * * *"));
        let err = Config::load(
            &sources(&[("DOSSIER_SWEEP_SCHEDULE", "every 5 minutes")], &[], None),
            &no_files,
        )
        .expect_err("not cron");
        assert_eq!(err.key, "DOSSIER_SWEEP_SCHEDULE");
        assert!(err.to_string().contains("every 5 minutes"), "{err}");
    }

    #[test]
    fn policy_and_cost_overrides_from_the_file() {
        let text = "[policies.temp]\nexpire_days = 3\n[cost.hot]\nusd_per_gb_month = 0.02\n";
        let c = Config::load(&sources(&[], &[], Some(text)), &no_files).expect("overrides");
        assert_eq!(c.policies.get(FileType::Temp).expire_days, Some(3));
        assert_eq!(c.cost.hot.usd_per_gb_month, 0.02);
        assert_eq!(c.cost.hot.storage_class, "STANDARD");
    }
}
