//! A Postgres schema of its own for one test.

use sea_orm::{ConnectionTrait, Database};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema `t_<random>` created for one test and dropped (CASCADE) when this value is dropped.
///
/// The database comes from `DOSSIER_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
#[derive(Debug)]
pub struct PgSchema {
    url: String,
    schema: String,
}

impl PgSchema {
    /// Creates the schema. Panics when Postgres cannot be reached.
    pub async fn create() -> PgSchema {
        let url = std::env::var("DOSSIER_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let schema = format!("t_{}", crate::random_suffix());
        let db = Database::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("connect to Postgres at {url}: {err}"));
        db.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
            .await
            .expect("create the test schema");
        db.close().await.expect("close the setup connection");
        PgSchema { url, schema }
    }

    /// The database URL (without any schema setting: set `search_path` to [`Self::schema`] on connect).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The configuration that points Dossier at this schema (`DATABASE_URL`, `DOSSIER_DB_SCHEMA`).
    pub fn env(&self) -> [(String, String); 2] {
        [
            ("DATABASE_URL".into(), self.url.clone()),
            ("DOSSIER_DB_SCHEMA".into(), self.schema.clone()),
        ]
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop may run inside an async test's runtime, which cannot be blocked on: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let db = Database::connect(&url).await?;
                db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await?;
                db.close().await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("dossier-testkit: could not drop schema {}", self.schema);
        }
    }
}
