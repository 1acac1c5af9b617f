//! One conformance suite for [`ObjectStore`], run against every backend: the filesystem (a temporary directory) and
//! S3 (the test kit's in-process server, spoken to over HTTP by aws-sdk-s3). Then the S3 error kinds.

use bytes::Bytes;
use dossier_storage::{FsStore, ObjectMeta, ObjectStore, S3Settings, S3Store, StorageErrorKind};
use dossier_testkit::{RequestKind, S3Server, closed_port_endpoint, unique_name};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// A store and two empty buckets of its own, plus whatever keeps the backend alive.
struct Fixture {
    store: Box<dyn ObjectStore>,
    a: String,
    b: String,
    /// The temporary directory or the S3 server, kept alive for the test's duration.
    _backend: Box<dyn std::any::Any + Send>,
}

async fn fs_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsStore::new(dir.path());
    for bucket in ["a", "b"] {
        store.ensure_bucket(bucket).await.expect("bucket");
    }
    Fixture {
        store: Box::new(store),
        a: "a".into(),
        b: "b".into(),
        _backend: Box::new(dir),
    }
}

/// Small multipart thresholds so an 11 MiB body is uploaded and copied in 5 MiB parts; no SDK retries.
fn s3_settings(server: &S3Server) -> S3Settings {
    S3Settings {
        endpoint: Some(server.endpoint()),
        access_key_id: Some(server.access_key().into()),
        secret_access_key: Some(server.secret_key().into()),
        multipart_threshold: 5 * MIB as u64,
        multipart_part_size: 5 * MIB as u64,
        multipart_copy_threshold: 5 * MIB as u64,
        max_attempts: 1,
        ..S3Settings::default()
    }
}

async fn s3_store(server: &S3Server) -> S3Store {
    S3Store::connect(s3_settings(server)).await.expect("S3 client")
}

async fn s3_fixture() -> Fixture {
    let server = S3Server::start().await;
    let store = s3_store(&server).await;
    let a = server.create_bucket(&unique_name("conf-a"));
    let b = server.create_bucket(&unique_name("conf-b"));
    Fixture {
        store: Box::new(store),
        a,
        b,
        _backend: Box::new(server),
    }
}

/// Deterministic, non-repeating-looking bytes.
fn body_of(len: usize) -> Bytes {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

async fn round_trip(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    let body = body_of(4096);
    store
        .put(bucket, "hot/active/ab/object", body.clone())
        .await
        .expect("put");
    assert_eq!(store.get(bucket, "hot/active/ab/object").await.expect("get"), body);
    let meta = store.head(bucket, "hot/active/ab/object").await.expect("head");
    assert_eq!(
        meta,
        Some(ObjectMeta {
            key: "hot/active/ab/object".into(),
            size: 4096
        })
    );
}

async fn zero_byte_object(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    store.put(bucket, "empty", Bytes::new()).await.expect("put");
    assert!(store.get(bucket, "empty").await.expect("get").is_empty());
    assert_eq!(
        store.head(bucket, "empty").await.expect("head").map(|m| m.size),
        Some(0)
    );
    assert!(store.get_range(bucket, "empty", 0..10).await.expect("range").is_empty());
    assert_eq!(
        store.list(bucket, "").await.expect("list"),
        [ObjectMeta {
            key: "empty".into(),
            size: 0
        }]
    );
}

async fn ranged_reads(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    let body = body_of(1000);
    store.put(bucket, "r", body.clone()).await.expect("put");
    let range = |r: std::ops::Range<u64>| store.get_range(bucket, "r", r);
    assert_eq!(range(0..10).await.expect("start"), body.slice(0..10));
    assert_eq!(range(100..200).await.expect("middle"), body.slice(100..200));
    assert_eq!(range(990..2000).await.expect("over the end"), body.slice(990..1000));
    assert_eq!(range(0..1000).await.expect("all"), body);
    assert!(range(1000..1100).await.expect("at the end").is_empty());
    assert!(range(5000..6000).await.expect("past the end").is_empty());
    assert!(range(10..10).await.expect("empty").is_empty());
}

async fn large_object(store: &dyn ObjectStore, bucket: &str, other: &str) {
    let body = body_of(11 * MIB + 123);
    store.put(bucket, "big", body.clone()).await.expect("put");
    let back = store.get(bucket, "big").await.expect("get");
    assert_eq!(back.len(), body.len());
    assert_eq!(sha256(&back), sha256(&body));
    let across_parts = (5 * MIB - 10) as u64..(5 * MIB + 10) as u64;
    assert_eq!(
        store.get_range(bucket, "big", across_parts).await.expect("range"),
        body.slice(5 * MIB - 10..5 * MIB + 10)
    );

    store.copy(bucket, "big", other, "big-copy").await.expect("copy");
    assert_eq!(
        sha256(&store.get(other, "big-copy").await.expect("get copy")),
        sha256(&body)
    );
}

async fn listing_with_prefixes(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    let keys = [
        "hot/active/cd/3",
        "hot/active/ab/2",
        "hot/active/ab/1",
        "hot/cache/ab/4",
        "warm/recent/x",
        "hot/z",
    ];
    for (i, key) in keys.iter().enumerate() {
        store.put(bucket, key, body_of(i + 1)).await.expect("put");
    }
    let listed = |prefix: &'static str| async move {
        store
            .list(bucket, prefix)
            .await
            .expect("list")
            .into_iter()
            .map(|m| (m.key, m.size))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed("hot/active/").await,
        [
            ("hot/active/ab/1".into(), 3),
            ("hot/active/ab/2".into(), 2),
            ("hot/active/cd/3".into(), 1)
        ]
    );
    assert_eq!(listed("hot/active/a").await.len(), 2);
    assert_eq!(listed("hot/").await.len(), 5);
    let all: Vec<String> = listed("").await.into_iter().map(|(key, _)| key).collect();
    let mut sorted = keys.map(String::from).to_vec();
    sorted.sort();
    assert_eq!(all, sorted);
    assert!(listed("cold/").await.is_empty());
}

async fn delete_is_idempotent(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    store.put(bucket, "d/x", body_of(10)).await.expect("put");
    store.delete(bucket, "d/x").await.expect("delete");
    store.delete(bucket, "d/x").await.expect("delete again");
    store.delete(bucket, "never/was").await.expect("delete missing");
    assert_eq!(store.head(bucket, "d/x").await.expect("head"), None);
    assert!(store.list(bucket, "d/").await.expect("list").is_empty());
}

async fn missing_object_is_not_found(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    let err = store.get(bucket, "no/such/key").await.expect_err("get missing");
    assert_eq!(err.kind, StorageErrorKind::NotFound, "{err}");
    assert!(!err.is_retryable());
    let err = store
        .get_range(bucket, "no/such/key", 0..10)
        .await
        .expect_err("range of missing");
    assert_eq!(err.kind, StorageErrorKind::NotFound, "{err}");
    assert_eq!(store.head(bucket, "no/such/key").await.expect("head"), None);
    let err = store
        .copy(bucket, "no/such/key", bucket, "dst")
        .await
        .expect_err("copy missing");
    assert_eq!(err.kind, StorageErrorKind::NotFound, "{err}");
}

async fn copy_between_buckets(store: &dyn ObjectStore, bucket: &str, other: &str) {
    let body = body_of(777);
    store.put(bucket, "hot/active/ab/src", body.clone()).await.expect("put");
    store
        .copy(bucket, "hot/active/ab/src", other, "warm/recent/ab/dst")
        .await
        .expect("copy");
    assert_eq!(store.get(other, "warm/recent/ab/dst").await.expect("copy"), body);
    assert_eq!(store.get(bucket, "hot/active/ab/src").await.expect("source kept"), body);
    // Copying onto an existing object replaces it.
    store.put(bucket, "hot/active/ab/src2", body_of(5)).await.expect("put");
    store
        .copy(bucket, "hot/active/ab/src2", other, "warm/recent/ab/dst")
        .await
        .expect("copy over");
    assert_eq!(store.get(other, "warm/recent/ab/dst").await.expect("get"), body_of(5));
}

async fn overwrite(store: &dyn ObjectStore, bucket: &str, _other: &str) {
    store.put(bucket, "o", body_of(500)).await.expect("put");
    store
        .put(bucket, "o", Bytes::from_static(b"shorter"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.get(bucket, "o").await.expect("get"),
        Bytes::from_static(b"shorter")
    );
    assert_eq!(store.head(bucket, "o").await.expect("head").map(|m| m.size), Some(7));
}

async fn missing_bucket(store: &dyn ObjectStore, _bucket: &str, _other: &str) {
    let missing = unique_name("missing");
    let err = store.list(&missing, "").await.expect_err("list");
    assert_eq!(err.kind, StorageErrorKind::NoSuchBucket, "{err}");
    assert!(!err.is_retryable());
    assert!(err.message.contains(&missing), "{err}");
    let err = store.delete(&missing, "k").await.expect_err("delete");
    assert_eq!(err.kind, StorageErrorKind::NoSuchBucket, "{err}");
}

async fn ensure_bucket_is_idempotent(store: &dyn ObjectStore, _bucket: &str, _other: &str) {
    let bucket = unique_name("ensured");
    store.ensure_bucket(&bucket).await.expect("create");
    store.ensure_bucket(&bucket).await.expect("exists already");
    store.put(&bucket, "k", body_of(3)).await.expect("put");
    assert_eq!(store.get(&bucket, "k").await.expect("get"), body_of(3));
}

macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        mod fs {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    let fixture = super::fs_fixture().await;
                    super::$case(&*fixture.store, &fixture.a, &fixture.b).await;
                }
            )+
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    let fixture = super::s3_fixture().await;
                    super::$case(&*fixture.store, &fixture.a, &fixture.b).await;
                }
            )+
        }
    };
}

conformance!(
    round_trip,
    zero_byte_object,
    ranged_reads,
    large_object,
    listing_with_prefixes,
    delete_is_idempotent,
    missing_object_is_not_found,
    copy_between_buckets,
    overwrite,
    missing_bucket,
    ensure_bucket_is_idempotent,
);

mod s3_only {
    use super::*;

    async fn server_with_bucket() -> (S3Server, S3Store, String) {
        let server = S3Server::start().await;
        let store = s3_store(&server).await;
        let bucket = server.create_bucket(&unique_name("s3"));
        (server, store, bucket)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn large_bodies_go_in_parts_and_large_copies_server_side() {
        let (server, store, bucket) = server_with_bucket().await;
        store.put(&bucket, "big", body_of(11 * MIB)).await.expect("put");
        assert_eq!(server.count(RequestKind::UploadPart), 3);
        assert_eq!(server.puts(), 0);
        store.copy(&bucket, "big", &bucket, "copy").await.expect("copy");
        assert_eq!(server.count(RequestKind::UploadPartCopy), 3);
        assert_eq!(server.count(RequestKind::CopyObject), 0);

        server.reset_counts();
        store.put(&bucket, "small", body_of(MIB)).await.expect("put");
        store.copy(&bucket, "small", &bucket, "small-copy").await.expect("copy");
        assert_eq!((server.puts(), server.count(RequestKind::CopyObject)), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_multipart_upload_is_aborted() {
        let (server, store, bucket) = server_with_bucket().await;
        // The create succeeds; the first part to arrive fails.
        server.fail_after(1, 1, 500);
        let err = store.put(&bucket, "big", body_of(11 * MIB)).await.expect_err("put");
        assert_eq!(err.kind, StorageErrorKind::Transient, "{err}");
        assert_eq!(server.count(RequestKind::AbortMultipartUpload), 1);
        assert_eq!(server.count(RequestKind::CompleteMultipartUpload), 0);
        assert_eq!(store.head(&bucket, "big").await.expect("head"), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_empty_range_sends_no_request() {
        let (server, store, bucket) = server_with_bucket().await;
        store.put(&bucket, "k", body_of(10)).await.expect("put");
        server.reset_counts();
        assert!(store.get_range(&bucket, "k", 5..5).await.expect("range").is_empty());
        assert_eq!(server.requests(), 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn service_unavailable_is_transient() {
        let (server, store, bucket) = server_with_bucket().await;
        store.put(&bucket, "k", body_of(10)).await.expect("put");
        server.fail_next(1, 503);
        let err = store.get(&bucket, "k").await.expect_err("get");
        assert_eq!(err.kind, StorageErrorKind::Transient, "{err}");
        assert!(err.is_retryable());
        assert!(err.message.contains(&bucket) && err.message.contains("get"), "{err}");
        server.fail_next(1, 500);
        let err = store.put(&bucket, "k", body_of(10)).await.expect_err("put");
        assert_eq!(err.kind, StorageErrorKind::Transient, "{err}");
        assert_eq!(store.get(&bucket, "k").await.expect("get after the blip"), body_of(10));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn slow_down_and_429_are_throttled() {
        let (server, store, bucket) = server_with_bucket().await;
        store.put(&bucket, "k", body_of(10)).await.expect("put");
        server.fail_next_with_code(1, 503, "SlowDown");
        let err = store.get(&bucket, "k").await.expect_err("get");
        assert_eq!(err.kind, StorageErrorKind::Throttled, "{err}");
        assert!(err.is_retryable());
        server.fail_next(1, 429);
        let err = store.list(&bucket, "").await.expect_err("list");
        assert_eq!(err.kind, StorageErrorKind::Throttled, "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_sdk_absorbs_one_blip_when_retries_are_allowed() {
        let server = S3Server::start().await;
        let store = S3Store::connect(S3Settings {
            max_attempts: 3,
            ..s3_settings(&server)
        })
        .await
        .expect("client");
        let bucket = server.create_bucket(&unique_name("retry"));
        store.put(&bucket, "k", body_of(10)).await.expect("put");
        server.reset_counts();
        server.fail_next(1, 503);
        assert_eq!(store.get(&bucket, "k").await.expect("get"), body_of(10));
        assert_eq!(server.gets(), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn refused_connection_is_transient() {
        let settings = S3Settings {
            endpoint: Some(closed_port_endpoint()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            max_attempts: 1,
            ..S3Settings::default()
        };
        let store = S3Store::connect(settings).await.expect("client");
        let err = store.get("bucket", "k").await.expect_err("get");
        assert_eq!(err.kind, StorageErrorKind::Transient, "{err}");
        assert!(err.is_retryable());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wrong_secret_is_access_denied() {
        let server = S3Server::start().await;
        let bucket = server.create_bucket(&unique_name("denied"));
        let settings = S3Settings {
            secret_access_key: Some("not-the-secret".into()),
            ..s3_settings(&server)
        };
        let store = S3Store::connect(settings).await.expect("client");
        for err in [
            store.get(&bucket, "k").await.expect_err("get"),
            store.put(&bucket, "k", body_of(10)).await.expect_err("put"),
            store.list(&bucket, "").await.expect_err("list"),
        ] {
            assert_eq!(err.kind, StorageErrorKind::AccessDenied, "{err}");
            assert!(!err.is_retryable());
        }
    }
}
