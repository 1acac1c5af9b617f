//! The Redis hot cache against the real Redis, each test in a namespace of its own.

use std::time::Duration;

use bytes::Bytes;
use dossier_storage::{CacheSettings, HotCache, RedisCache, RedisCacheSettings};
use dossier_testkit::RedisNamespace;
use redis::AsyncCommands;

async fn cache(namespace: &RedisNamespace, settings: CacheSettings) -> RedisCache {
    let redis = RedisCacheSettings {
        url: namespace.url().to_owned(),
        namespace: namespace.name().to_owned(),
        ..RedisCacheSettings::default()
    };
    RedisCache::connect(&redis, settings).await.expect("connect to Redis")
}

async fn raw(namespace: &RedisNamespace) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(namespace.url()).expect("Redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("raw Redis connection")
}

fn bytes_of(len: usize, fill: u8) -> Bytes {
    Bytes::from(vec![fill; len])
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_round_trip_with_their_ttl() {
    let namespace = RedisNamespace::new();
    let settings = CacheSettings {
        ttl: Duration::from_secs(60),
        max_bytes: 1 << 20,
        max_object_bytes: 1 << 16,
    };
    let cache = cache(&namespace, settings).await;
    cache.put("blob-1", Bytes::from_static(b"resume bytes")).await;
    assert_eq!(cache.get("blob-1").await, Some(Bytes::from_static(b"resume bytes")));
    assert_eq!(cache.get("blob-2").await, None);

    let key = cache.value_key("blob-1");
    assert!(key.starts_with(&format!("{{{}:cache}}:", namespace.name())), "{key}");
    let ttl_ms: i64 = raw(&namespace).await.pttl(&key).await.expect("PTTL");
    assert!(0 < ttl_ms && ttl_ms <= 60_000, "{ttl_ms}");
    assert_eq!(cache.accounted_bytes().await.expect("total"), 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_budget_holds_and_the_oldest_entries_go_first() {
    let namespace = RedisNamespace::new();
    let settings = CacheSettings {
        ttl: Duration::from_secs(60),
        max_bytes: 1000,
        max_object_bytes: 400,
    };
    let cache = cache(&namespace, settings).await;
    let mut redis = raw(&namespace).await;
    for i in 0..10u8 {
        cache.put(&format!("e{i}"), bytes_of(300, i)).await;
        assert!(cache.accounted_bytes().await.expect("total") <= 1000);
        let mut stored = 0;
        for j in 0..=i {
            let len: usize = redis.strlen(cache.value_key(&format!("e{j}"))).await.expect("STRLEN");
            stored += len;
        }
        assert!(stored <= 1000, "{stored} bytes stored after put {i}");
    }
    for i in 0..7 {
        assert_eq!(cache.get(&format!("e{i}")).await, None, "e{i} should have been evicted");
    }
    for i in 7..10u8 {
        assert_eq!(cache.get(&format!("e{i}")).await, Some(bytes_of(300, i)));
    }
    assert_eq!(cache.accounted_bytes().await.expect("total"), 900);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_objects_are_never_stored() {
    let namespace = RedisNamespace::new();
    let settings = CacheSettings {
        ttl: Duration::from_secs(60),
        max_bytes: 1000,
        max_object_bytes: 400,
    };
    let cache = cache(&namespace, settings).await;
    cache.put("small", bytes_of(400, 1)).await;
    cache.put("big", bytes_of(401, 2)).await;
    assert_eq!(cache.get("big").await, None);
    let exists: bool = raw(&namespace)
        .await
        .exists(cache.value_key("big"))
        .await
        .expect("EXISTS");
    assert!(!exists);
    assert_eq!(cache.accounted_bytes().await.expect("total"), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn evict_removes_the_entry_and_its_bytes() {
    let namespace = RedisNamespace::new();
    let cache = cache(&namespace, CacheSettings::default()).await;
    cache.put("a", bytes_of(100, 1)).await;
    cache.put("b", bytes_of(50, 2)).await;
    cache.evict("a").await;
    cache.evict("never-cached").await;
    assert_eq!(cache.get("a").await, None);
    assert_eq!(cache.get("b").await, Some(bytes_of(50, 2)));
    assert_eq!(cache.accounted_bytes().await.expect("total"), 50);
    // Putting again replaces the entry without counting it twice.
    cache.put("b", bytes_of(70, 3)).await;
    assert_eq!(cache.accounted_bytes().await.expect("total"), 70);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_entries_leave_the_accounting() {
    let namespace = RedisNamespace::new();
    let settings = CacheSettings {
        ttl: Duration::from_millis(100),
        max_bytes: 1000,
        max_object_bytes: 400,
    };
    let cache = cache(&namespace, settings).await;
    cache.put("old", bytes_of(300, 1)).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(cache.get("old").await, None);
    cache.put("new", bytes_of(10, 2)).await;
    assert_eq!(cache.accounted_bytes().await.expect("total"), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_failures_are_misses_not_errors() {
    let namespace = RedisNamespace::new();
    let cache = cache(&namespace, CacheSettings::default()).await;
    let mut redis = raw(&namespace).await;
    // Keys of the wrong type make every command on them fail, as a broken Redis would.
    let _: () = redis
        .hset(cache.value_key("hash"), "field", "value")
        .await
        .expect("HSET");
    assert_eq!(cache.get("hash").await, None);
    let index = format!("{{{}:cache}}#index", namespace.name());
    let _: () = redis.set(&index, "not a sorted set").await.expect("SET");
    cache.put("a", bytes_of(10, 1)).await;
    assert_eq!(cache.get("a").await, None);
    cache.evict("a").await;
}

#[tokio::test]
async fn a_redis_that_is_down_is_a_cache_that_misses() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let redis = RedisCacheSettings {
        url: format!("redis://127.0.0.1:{port}"),
        namespace: "down".to_owned(),
        ..RedisCacheSettings::default()
    };
    let cache = RedisCache::connect(&redis, CacheSettings::default())
        .await
        .expect("a cache even while Redis is down");
    cache.put("a", bytes_of(10, 1)).await;
    assert_eq!(cache.get("a").await, None);
    cache.evict("a").await;
}
