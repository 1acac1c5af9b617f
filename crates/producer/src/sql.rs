//! Raw statements written once for both databases: `$n` placeholders become SQLite's `?n`.

use sea_orm::{DatabaseBackend, Statement, Value};

pub(crate) fn statement(backend: DatabaseBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}
