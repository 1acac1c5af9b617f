//! The schema on both backends: migrations apply (twice, idempotently), and Postgres holds no naive timestamp.

use dossier_db::Db;
use dossier_db::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use dossier_testkit::PgSchema;

#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrates_and_every_instant_is_timestamptz() {
    let pg = PgSchema::create().await;
    let db = Db::connect_postgres(pg.url(), Some(pg.schema()), 2)
        .await
        .expect("connect");
    assert!(
        db.check_migrated().await.is_err(),
        "a fresh schema reports pending migrations"
    );
    db.migrate().await.expect("migrate");
    db.migrate().await.expect("migrating again is a no-op");
    db.check_migrated().await.expect("nothing pending");

    let rows = db
        .conn
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = $1",
            [pg.schema().into()],
        ))
        .await
        .expect("information_schema");
    let mut instants = 0;
    for row in &rows {
        let table: String = row.try_get("", "table_name").expect("table_name");
        let column: String = row.try_get("", "column_name").expect("column_name");
        let data_type: String = row.try_get("", "data_type").expect("data_type");
        assert_ne!(
            data_type, "timestamp without time zone",
            "{table}.{column} is a naive timestamp"
        );
        if data_type == "timestamp with time zone" {
            instants += 1;
        }
    }
    assert!(instants >= 15, "expected the schema's instants, found {instants}");

    let indexes = db
        .conn
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'file_metadata'",
            [pg.schema().into()],
        ))
        .await
        .expect("pg_indexes");
    let names: Vec<String> = indexes
        .iter()
        .map(|r| r.try_get("", "indexname").expect("indexname"))
        .collect();
    for wanted in [
        "file_metadata_user_active",
        "file_metadata_tier_created",
        "file_metadata_expires_at",
        "file_metadata_next_due_at",
    ] {
        assert!(names.iter().any(|n| n == wanted), "missing index {wanted} in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_home_migrates_itself() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = Db::open_embedded(home.path()).await.expect("open");
    db.check_migrated().await.expect("migrated on first use");
    drop(db);
    let again = Db::open_embedded(home.path()).await.expect("reopen");
    again.check_migrated().await.expect("still migrated");
    let mode = again
        .conn
        .query_one_raw(Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA journal_mode"))
        .await
        .expect("pragma")
        .expect("a row");
    let mode: String = mode.try_get_by_index(0).expect("journal mode");
    assert_eq!(mode, "wal");
}
