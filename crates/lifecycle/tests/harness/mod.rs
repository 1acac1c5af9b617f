//! The lifecycle test harness: one installation (embedded, or Postgres + Redis + S3 of its own) on an injected
//! clock, with jobs run in process straight from the outbox.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dossier_core::config::{Config, Sources};
use dossier_core::{FileType, ManualClock, Tier};
use dossier_db::sea_orm::{ConnectionTrait, Statement};
use dossier_documents::{PutRequest, Setup};
use dossier_lifecycle::Lifecycle;
use dossier_testkit::{PgSchema, RedisNamespace, S3Server, unique_name};

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("instant").with_timezone(&Utc)
}

pub struct Harness {
    pub lc: Lifecycle,
    pub clock: Arc<ManualClock>,
    _home: tempfile::TempDir,
    _pg: Option<PgSchema>,
    _redis: Option<RedisNamespace>,
    _s3: Option<S3Server>,
}

impl Harness {
    pub async fn new(fleet: bool, start: &str, extra: &[(&str, &str)]) -> Harness {
        let home = tempfile::tempdir().expect("home");
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("DOSSIER_HOME".into(), home.path().display().to_string());
        let (mut pg, mut redis, mut s3) = (None, None, None);
        if fleet {
            let p = PgSchema::create().await;
            let r = RedisNamespace::new();
            let s = S3Server::start().await;
            env.extend(p.env());
            env.extend(r.env());
            env.extend(s.env(&unique_name("lc")));
            (pg, redis, s3) = (Some(p), Some(r), Some(s));
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
        let clock = Arc::new(ManualClock::new(at(start)));
        let store = dossier_documents::open(&config, clock.clone(), Setup::Migrate)
            .await
            .expect("open");
        let lc = Lifecycle::new(store, config.lifecycle.clone());
        Harness {
            lc,
            clock,
            _home: home,
            _pg: pg,
            _redis: redis,
            _s3: s3,
        }
    }

    pub fn set_now(&self, s: &str) {
        self.clock.set(at(s));
    }

    pub async fn put(&self, user: &str, key: &str, file_type: FileType, app: Option<&str>, bytes: &[u8]) {
        self.lc
            .store
            .put(PutRequest {
                user,
                key,
                file_type,
                application: app,
                original_name: key,
                bytes: bytes.to_vec().into(),
            })
            .await
            .expect("put");
    }

    pub async fn sql(&self, sql: &str) -> Vec<dossier_db::sea_orm::QueryResult> {
        let backend = self.lc.store.db.backend();
        self.lc
            .store
            .db
            .conn
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect(sql)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let rows = self.sql(sql).await;
        rows[0].try_get_by_index::<i64>(0).expect("count")
    }

    /// Runs every open outbox job in process until none is left; returns how many ran.
    pub async fn run_jobs(&self) -> usize {
        let mut ran = 0;
        loop {
            let rows = self
                .sql("SELECT id, queue, job_id, payload FROM outbox WHERE completed_at IS NULL ORDER BY id")
                .await;
            if rows.is_empty() {
                return ran;
            }
            for row in rows {
                let id: i64 = row.try_get("", "id").expect("id");
                let queue: String = row.try_get("", "queue").expect("queue");
                let job_id: String = row.try_get("", "job_id").expect("job_id");
                let payload: serde_json::Value = row.try_get("", "payload").expect("payload");
                let result = self
                    .lc
                    .run_json(&queue, &job_id, payload)
                    .await
                    .expect("a lifecycle job kind");
                result.expect("job succeeds");
                dossier_producer::outbox::complete(&self.lc.store.db.conn, id, self.lc.now())
                    .await
                    .expect("complete");
                ran += 1;
            }
        }
    }

    pub async fn sweep_and_run(&self) -> usize {
        let report = self.lc.sweep(false).await.expect("sweep");
        assert!(!report.skipped);
        self.run_jobs().await
    }

    /// Objects per tier bucket, listed from the backend itself.
    pub async fn objects(&self) -> BTreeMap<Tier, usize> {
        let store = &self.lc.store;
        let mut out = BTreeMap::new();
        for (tier, bucket) in store.layout.all() {
            out.insert(tier, store.objects.list(bucket, "").await.expect("list").len());
        }
        out
    }

    pub async fn tier_of(&self, user: &str, key: &str) -> Tier {
        let docs = self.lc.store.list(user, &Default::default()).await.expect("ls");
        docs.iter().find(|d| d.key == key).expect("document").tier
    }

    pub async fn reasons(&self, user: &str) -> Vec<String> {
        self.sql(&format!(
            "SELECT reason FROM storage_lifecycle_log WHERE user_id = '{user}' ORDER BY id"
        ))
        .await
        .iter()
        .map(|r| r.try_get::<String>("", "reason").expect("reason"))
        .collect()
    }
}

pub fn only(tier: Tier, n: usize) -> BTreeMap<Tier, usize> {
    Tier::ALL.iter().map(|t| (*t, if *t == tier { n } else { 0 })).collect()
}
