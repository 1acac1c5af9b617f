//! A `dossier` process under test, on the embedded default or on real Postgres, Redis and S3 of its own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dossier_testkit::{PgSchema, RedisNamespace, S3Server, unique_name};
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The shared corpus, read in place.
pub fn corpus() -> PathBuf {
    dossier_testkit::corpus_dir()
}

/// Every corpus file the demo would use: resumes, job postings and PDFs.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (dir, ext) in [("resumes", "json"), ("jobs", "json"), ("pdfs", "pdf")] {
        let entries = std::fs::read_dir(corpus().join(dir)).expect("corpus folder");
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            if path.extension().is_some_and(|e| e == ext) {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 30, "corpus not found at {}", corpus().display());
    files
}

/// One isolated Dossier installation: its own home, and in the fleet its own schema, Redis namespace and S3 server.
#[derive(Debug)]
pub struct Dossier {
    pub home: tempfile::TempDir,
    pub vars: Vec<(String, String)>,
    pub s3: Option<S3Server>,
    pg: Option<PgSchema>,
    redis: Option<RedisNamespace>,
}

impl Dossier {
    pub fn embedded() -> Dossier {
        let home = tempfile::tempdir().expect("home");
        let vars = vec![(
            "DOSSIER_HOME".to_owned(),
            home.path().join("home").display().to_string(),
        )];
        Dossier {
            home,
            vars,
            s3: None,
            pg: None,
            redis: None,
        }
    }

    /// Postgres schema, Redis namespace and S3 server of this test only, migrated with `dossier migrate`.
    pub async fn fleet() -> Dossier {
        let mut d = Dossier::embedded();
        let pg = PgSchema::create().await;
        let redis = RedisNamespace::new();
        let s3 = S3Server::start().await;
        d.vars.extend(pg.env());
        d.vars.extend(redis.env());
        d.vars.extend(s3.env(&unique_name("b")));
        d.pg = Some(pg);
        d.redis = Some(redis);
        d.s3 = Some(s3);
        let out = d.run(&["migrate"]);
        assert!(
            out.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        d
    }

    async fn postgres(&self) -> dossier_db::Db {
        let pg = self.pg.as_ref().expect("a fleet installation");
        dossier_db::Db::connect_postgres(pg.url(), Some(pg.schema()), 1)
            .await
            .expect("connect")
    }

    /// The Postgres schema of this installation.
    pub fn schema(&self) -> &str {
        self.pg.as_ref().expect("a fleet installation").schema()
    }

    /// A single number from this installation's Postgres schema.
    pub async fn count(&self, sql: &str) -> i64 {
        use dossier_db::sea_orm::{ConnectionTrait, Statement};
        let db = self.postgres().await;
        let row = db
            .conn
            .query_one_raw(Statement::from_string(db.backend(), sql))
            .await
            .expect(sql)
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    }

    /// Runs one statement on this installation's Postgres.
    pub async fn execute(&self, sql: &str) {
        use dossier_db::sea_orm::ConnectionTrait;
        self.postgres().await.conn.execute_unprepared(sql).await.expect(sql);
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_owned(), value.to_owned()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dossier"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.home.path())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run dossier")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dossier {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_slice(&self.ok(&all)).expect("json output")
    }

    /// Stores `bytes` under `key` through a temporary file.
    pub fn put(&self, user: &str, file_type: &str, key: &str, bytes: &[u8]) -> serde_json::Value {
        let file = self.home.path().join(unique_name("in"));
        std::fs::write(&file, bytes).expect("input file");
        let path = file.display().to_string();
        self.json(&["put", "--user", user, "--type", file_type, "--key", key, &path])
    }

    /// Reads a document through `-o` and returns its bytes.
    pub fn get(&self, user: &str, key: &str, version: Option<u32>) -> Vec<u8> {
        let out = self.home.path().join(unique_name("out"));
        let path = out.display().to_string();
        let v = version.map(|v| v.to_string());
        let mut args = vec!["get", "--user", user, key, "-o", &path];
        if let Some(v) = &v {
            args.extend(["--version", v]);
        }
        self.ok(&args);
        std::fs::read(&out).expect("output file")
    }

    /// Every object in every tier of this installation (folders or buckets).
    pub fn object_count(&self) -> usize {
        let root = match &self.s3 {
            Some(s3) => s3.root().to_path_buf(),
            None => self.home.path().join("home/tiers"),
        };
        walk(&root)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
            .count()
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}
