//! Each helper gives a test its own piece of a real service and takes it away afterwards, touching nothing else.

use std::time::Duration;

use dossier_testkit::{PgSchema, RedisNamespace, S3Server, closed_port_endpoint, unique_name};
use redis::Commands;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

async fn schema_exists(url: &str, schema: &str) -> bool {
    let db = Database::connect(url).await.expect("connect");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            [schema.into()],
        ))
        .await
        .expect("query")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("count") == 1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_schema_lives_as_long_as_its_guard() {
    let schema = PgSchema::create().await;
    let (url, name) = (schema.url().to_owned(), schema.schema().to_owned());
    assert!(name.starts_with("t_"));
    assert!(schema_exists(&url, &name).await);
    drop(schema);
    assert!(!schema_exists(&url, &name).await);
}

#[test]
fn a_redis_namespace_takes_only_its_own_keys_away() {
    let namespace = RedisNamespace::new();
    let other = RedisNamespace::new();
    assert_ne!(namespace.name(), other.name());
    let mut redis = redis::Client::open(namespace.url())
        .expect("url")
        .get_connection()
        .expect("connect");
    let mine = format!("{{{}:cache}}:k", namespace.name());
    let theirs = format!("{{{}:cache}}:k", other.name());
    let _: () = redis.set(&mine, 1).expect("SET");
    let _: () = redis.set(&theirs, 1).expect("SET");
    drop(namespace);
    assert!(!redis.exists::<_, bool>(&mine).expect("EXISTS"));
    assert!(redis.exists::<_, bool>(&theirs).expect("EXISTS"));
    drop(other);
    assert!(!redis.exists::<_, bool>(&theirs).expect("EXISTS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_server_stops_when_dropped() {
    let server = S3Server::start().await;
    let address = server.endpoint().trim_start_matches("http://").to_owned();
    assert!(tokio::net::TcpStream::connect(&address).await.is_ok());
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(&address).await.is_err());
}

#[test]
fn names_are_unique_and_bucket_safe() {
    let name = unique_name("Conformance-Tests-With-A-Very-Long-Prefix-Indeed-Yes");
    assert!(name.len() + "-glacier".len() <= 63, "{name}");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{name}"
    );
    assert_ne!(unique_name("x"), unique_name("x"));
    let endpoint = closed_port_endpoint();
    let address = endpoint.trim_start_matches("http://");
    assert!(std::net::TcpStream::connect(address).is_err());
}
