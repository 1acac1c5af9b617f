//! A whole Dossier installation for the lifecycle fleet tests: Postgres (own schema), Redis (a namespace on the
//! shared server, or a private server), objects on the test kit's S3 server or in folders, the injected clock, and
//! fleets built from the one registration list that `dossier worker` uses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_core::config::{Config, Sources};
use dossier_core::{FileType, ManualClock, Tier};
use dossier_db::sea_orm::{ConnectionTrait, Statement};
use dossier_documents::{PutRequest, Setup};
use dossier_lifecycle::Lifecycle;
use dossier_testkit::{PgSchema, RedisNamespace, S3Server, unique_name};
use dossier_worker::{CancellationToken, FleetOptions, lifecycle_fleet};
use futures::StreamExt;
use tokio::task::JoinHandle;

/// When the documents are stored.
pub const STORED_AT: &str = "2026-01-01T08:00:00Z";
/// When their move to warm is due (active_resume: warm at 30 days).
pub const DUE_AT: &str = "2026-02-01T00:00:00Z";

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("instant").with_timezone(&Utc)
}

/// Where the objects live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    S3,
    Folders,
}

pub struct Installation {
    pub config: Config,
    pub clock: Arc<ManualClock>,
    pub lifecycle: Lifecycle,
    pub s3: Option<S3Server>,
    _pg: PgSchema,
    _redis: Option<RedisNamespace>,
    _home: tempfile::TempDir,
}

impl Installation {
    /// An installation on `redis_url` (a namespace of its own on the shared Redis when `None`), with quick worker
    /// timings and `extra` settings on top.
    pub async fn new(redis_url: Option<String>, objects: Objects, extra: &[(&str, &str)]) -> Installation {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let home = tempfile::tempdir().expect("home");
        let pg = PgSchema::create().await;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("DOSSIER_HOME".into(), home.path().display().to_string());
        env.extend(pg.env());
        env.insert("DOSSIER_DB_MAX_CONNECTIONS".into(), "20".into());
        let redis = match redis_url {
            Some(url) => {
                env.insert("REDIS_URL".into(), url);
                env.insert("DOSSIER_NAMESPACE".into(), unique_name("ns"));
                None
            }
            None => {
                let ns = RedisNamespace::new();
                env.extend(ns.env());
                Some(ns)
            }
        };
        let s3 = match objects {
            Objects::S3 => {
                let s = S3Server::start().await;
                env.extend(s.env(&unique_name("fl")));
                Some(s)
            }
            Objects::Folders => None,
        };
        for (k, v) in [
            ("DOSSIER_POLL_INTERVAL_MS", "50"),
            ("DOSSIER_HEARTBEAT_SECS", "1"),
            ("DOSSIER_MISSED_HEARTBEATS", "2"),
            ("DOSSIER_SHUTDOWN_DEADLINE_SECS", "5"),
            ("DOSSIER_RELAY_REDISPATCH_SECS", "3"),
            ("DOSSIER_BACKOFF_SCALE", "0.01"),
            ("DOSSIER_SWEEP_SCHEDULE", "off"),
            ("DOSSIER_HOUSEKEEPING_SCHEDULE", "off"),
        ] {
            env.insert(k.into(), v.into());
        }
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let config = Config::load(
            &Sources {
                env,
                ..Default::default()
            },
            &|_| Err(std::io::ErrorKind::NotFound.into()),
        )
        .expect("config");
        let clock = Arc::new(ManualClock::new(at(STORED_AT)));
        let store = dossier_documents::open(&config, clock.clone(), Setup::Migrate)
            .await
            .expect("open the store");
        let lifecycle = Lifecycle::new(store, config.lifecycle.clone());
        Installation {
            config,
            clock,
            lifecycle,
            s3,
            _pg: pg,
            _redis: redis,
            _home: home,
        }
    }

    /// Stores `n` distinct resumes (`cv-0` … of user `u<i % 10>`), sixteen at a time, as a web backend would.
    pub async fn put_resumes(&self, n: usize) {
        self.clock.set(at(STORED_AT));
        futures::stream::iter(0..n)
            .map(|i| {
                let store = self.lifecycle.store.clone();
                async move {
                    let bytes = format!(r#"{{"basics":{{"name":"Candidate {i}"}},"work":[]}}"#);
                    let key = format!("cv-{i}");
                    store
                        .put(PutRequest {
                            user: &format!("u{}", i % 10),
                            key: &key,
                            file_type: FileType::ActiveResume,
                            application: None,
                            original_name: &key,
                            bytes: bytes.into_bytes().into(),
                        })
                        .await
                        .expect("put")
                }
            })
            .buffer_unordered(16)
            .count()
            .await;
    }

    /// Moves the clock to when the resumes are due for warm and sweeps once: one transition job each, in the outbox.
    pub async fn sweep_due(&self) -> u64 {
        self.clock.set(at(DUE_AT));
        let report = self.lifecycle.sweep(false).await.expect("sweep");
        assert!(!report.skipped);
        report.enqueued
    }

    /// Fleet options as `dossier worker` derives them from this installation's configuration.
    pub fn options(&self) -> FleetOptions {
        FleetOptions {
            concurrency: 4,
            drain_settle: Duration::from_millis(300),
            ..FleetOptions::from_config(&self.config)
        }
    }

    /// Starts one worker (a fleet with its own queues connection and relay) until `stop`.
    pub async fn start_worker(&self, stop: &CancellationToken) -> JoinHandle<()> {
        let fleet = lifecycle_fleet(&self.config, self.lifecycle.clone(), self.options())
            .await
            .expect("fleet");
        let stop = stop.clone();
        tokio::spawn(async move { fleet.run(stop).await.expect("fleet runs") })
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let db = &self.lifecycle.store.db;
        let row = db
            .conn
            .query_one_raw(Statement::from_string(db.backend(), sql.to_owned()))
            .await
            .expect(sql)
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    }

    /// Lifecycle log rows of moves by age.
    pub async fn moves(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM storage_lifecycle_log WHERE reason = 'age'")
            .await
    }

    /// Objects per tier, listed from the buckets (or folders) themselves.
    pub async fn objects(&self) -> BTreeMap<Tier, usize> {
        let store = &self.lifecycle.store;
        let mut out = BTreeMap::new();
        for (tier, bucket) in store.layout.all() {
            let listed = store.objects.list(bucket, "").await.expect("list");
            out.insert(tier, listed.len());
        }
        out
    }

    /// What a user would check after `n` documents moved to warm: each moved exactly once, its bytes in warm only,
    /// every job closed, nothing dead, fsck clean.
    pub async fn assert_all_moved_once(&self, n: usize) {
        assert_eq!(self.moves().await, n as i64, "one lifecycle log row per document");
        assert_eq!(
            self.count(
                "SELECT COUNT(*) FROM (SELECT file_id FROM storage_lifecycle_log WHERE reason = 'age' \
                 GROUP BY file_id HAVING COUNT(*) > 1) twice"
            )
            .await,
            0,
            "no document moved twice"
        );
        assert_eq!(
            self.count("SELECT COUNT(*) FROM file_metadata WHERE storage_tier = 'warm'")
                .await,
            n as i64
        );
        let objects = self.objects().await;
        assert_eq!(objects[&Tier::Warm], n, "{objects:?}");
        assert_eq!(objects[&Tier::Hot], 0, "{objects:?}");
        assert_eq!(
            self.count("SELECT COUNT(*) FROM outbox WHERE completed_at IS NULL")
                .await,
            0,
            "every job closed"
        );
        assert_eq!(self.count("SELECT COUNT(*) FROM dead_jobs").await, 0);
        let fsck = self.lifecycle.fsck(true).await.expect("fsck");
        assert!(fsck.is_clean() && fsck.orphans_recent == 0, "{fsck:?}");
    }
}

/// Waits until `check` holds, failing with `what` after `within`.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
