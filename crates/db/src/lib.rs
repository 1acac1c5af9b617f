//! Dossier's metadata: SeaORM entities over Postgres (fleet) and SQLite (embedded), and the connection that picks one.
//!
//! Postgres is the source of truth for where every byte lives and what work is owed. The embedded default keeps the
//! same schema in `DOSSIER_HOME/dossier.db` (WAL, busy timeout), migrated on first use.

pub mod entity;

use std::path::Path;
use std::time::Duration;

use dossier_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr, Statement};

pub use sea_orm;

/// A metadata error, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach the database ({what}): {source}")]
    Unreachable { what: String, source: DbErr },
    #[error("database error while {what}: {source}")]
    Query { what: String, source: DbErr },
    #[error("cannot create {path}: {source}")]
    Home { path: String, source: std::io::Error },
    /// The schema is missing or behind the code: an operator's step (`dossier migrate`) is needed.
    #[error("{0}")]
    NotMigrated(String),
}

impl DbError {
    pub fn query(what: impl Into<String>) -> impl FnOnce(DbErr) -> DbError {
        let what = what.into();
        move |source| DbError::Query { what, source }
    }

    /// Whether the database could not be reached at all (exit code 6), as opposed to a failed statement.
    pub fn is_unreachable(&self) -> bool {
        match self {
            DbError::Unreachable { .. } => true,
            DbError::Query { source, .. } => matches!(source, DbErr::Conn(_) | DbErr::ConnectionAcquire(_)),
            DbError::Home { .. } | DbError::NotMigrated(_) => false,
        }
    }
}

/// An open metadata database.
#[derive(Debug, Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    schema: Option<String>,
}

impl Db {
    /// Connects to Postgres; `schema` (a plain identifier, checked by the configuration) becomes the search path.
    pub async fn connect_postgres(url: &str, schema: Option<&str>, max_connections: u32) -> Result<Db, DbError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if let Some(schema) = schema {
            options.set_schema_search_path(schema.to_owned());
        }
        let conn = Database::connect(options)
            .await
            .map_err(|source| DbError::Unreachable {
                what: "DATABASE_URL".into(),
                source,
            })?;
        Ok(Db {
            conn,
            schema: schema.map(str::to_owned),
        })
    }

    /// Opens (creating it if needed) the embedded SQLite database of a home and migrates it.
    pub async fn open_embedded(home: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(home).map_err(|source| DbError::Home {
            path: home.display().to_string(),
            source,
        })?;
        let path = home.join("dossier.db");
        let mut options = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
        options
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        options.map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
        let conn = Database::connect(options)
            .await
            .map_err(|source| DbError::Unreachable {
                what: path.display().to_string(),
                source,
            })?;
        let db = Db { conn, schema: None };
        db.migrate().await?;
        Ok(db)
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    /// Applies every pending migration (creating the Postgres schema first when one is configured).
    pub async fn migrate(&self) -> Result<(), DbError> {
        if let Some(schema) = &self.schema {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            self.conn
                .execute_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
                .await
                .map_err(DbError::query("creating the schema"))?;
        }
        Migrator::up(&self.conn, None)
            .await
            .map_err(DbError::query("applying migrations"))
    }

    /// Fails when migrations are missing, so a fleet process never runs on an old schema.
    pub async fn check_migrated(&self) -> Result<(), DbError> {
        let not_migrated = |detail: String| {
            DbError::NotMigrated(format!(
                "the database schema is not ready ({detail}): run `dossier migrate`"
            ))
        };
        let pending = match Migrator::get_pending_migrations(&self.conn).await {
            Ok(pending) => pending,
            Err(e @ (DbErr::Conn(_) | DbErr::ConnectionAcquire(_))) => {
                return Err(DbError::Unreachable {
                    what: "reading migrations".into(),
                    source: e,
                });
            }
            Err(e) => return Err(not_migrated(e.to_string())),
        };
        if pending.is_empty() {
            Ok(())
        } else {
            Err(not_migrated(format!("{} migration(s) pending", pending.len())))
        }
    }
}
