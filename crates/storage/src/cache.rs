//! The hot-tier read cache: in-process ([`MemoryCache`], embedded) or shared by the fleet ([`RedisCache`]).
//!
//! A cache is an optimisation, never a source of truth: a cache that fails is logged (`warn`) and behaves as a miss,
//! so a reader never sees a cache error. Entries live for [`CacheSettings::ttl`] after being put, the total stays
//! within [`CacheSettings::max_bytes`] (oldest entries go first), and objects over
//! [`CacheSettings::max_object_bytes`] are never cached. Ids are blob ids, so an entry's content never changes.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{StorageError, StorageErrorKind};

/// A read cache of object bytes by id. Failures are logged and treated as misses, never returned.
#[async_trait]
pub trait HotCache: Send + Sync + Debug {
    async fn get(&self, id: &str) -> Option<Bytes>;
    /// Caches `bytes` unless they exceed the per-object limit (then any older entry for `id` is dropped).
    async fn put(&self, id: &str, bytes: Bytes);
    async fn evict(&self, id: &str);
}

/// Lifetime and size bounds shared by both caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long an entry lives after it is put. Default: 1 hour.
    pub ttl: Duration,
    /// Memory budget for all entries together. Default: 256 MiB.
    pub max_bytes: u64,
    /// Larger objects are never cached. Default: 4 MiB.
    pub max_object_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            max_bytes: 256 * 1024 * 1024,
            max_object_bytes: 4 * 1024 * 1024,
        }
    }
}

impl CacheSettings {
    fn admits(&self, bytes: &Bytes) -> bool {
        let size = bytes.len() as u64;
        size <= self.max_object_bytes && size <= self.max_bytes
    }
}

/// The embedded cache: a moka cache weighed in bytes, least recently used out first.
#[derive(Debug, Clone)]
pub struct MemoryCache {
    entries: Cache<String, Bytes>,
    settings: CacheSettings,
}

impl MemoryCache {
    pub fn new(settings: CacheSettings) -> Self {
        let entries = Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|_id: &String, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
            .time_to_live(settings.ttl)
            // LRU rather than TinyLFU: a document pre-warmed for an interview must be admitted on its first put.
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self { entries, settings }
    }

    /// Bytes currently held, once pending evictions have run.
    pub async fn weighted_size(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.weighted_size()
    }
}

#[async_trait]
impl HotCache for MemoryCache {
    async fn get(&self, id: &str) -> Option<Bytes> {
        self.entries.get(id).await
    }

    async fn put(&self, id: &str, bytes: Bytes) {
        if self.settings.admits(&bytes) {
            self.entries.insert(id.to_owned(), bytes).await;
        } else {
            self.entries.invalidate(id).await;
        }
    }

    async fn evict(&self, id: &str) {
        self.entries.invalidate(id).await;
    }
}

/// Where the fleet's cache lives in Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisCacheSettings {
    pub url: String,
    /// Prefix shared with the queues; cache keys are `{<namespace>:cache}:<id>`.
    pub namespace: String,
    /// A command without an answer by then counts as a failure (a miss). Default: 5 s.
    pub response_timeout: Duration,
    /// Establishing or re-establishing the connection. Default: 3 s.
    pub connection_timeout: Duration,
}

impl Default for RedisCacheSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            namespace: "dossier".to_owned(),
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(3),
        }
    }
}

impl Debug for RedisCacheSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisCacheSettings")
            .field("namespace", &self.namespace)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .finish_non_exhaustive()
    }
}

/// Puts a value and keeps the budget, atomically.
///
/// KEYS: index (sorted set, member = id, score = expiry in ms), sizes (hash id → bytes), total (bytes accounted),
/// the value key. ARGV: id, value, ttl ms, max bytes, value key prefix. Evicted entries' value keys are built from
/// the prefix; they share the hash tag, so they live in the same cluster slot as the declared keys.
const PUT_SCRIPT: &str = r"
local index, sizes, total_key, value_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, value, ttl, max_bytes, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local size = string.len(value)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function unaccount(member)
  local bytes = redis.call('HGET', sizes, member)
  if bytes then
    redis.call('DECRBY', total_key, bytes)
    redis.call('HDEL', sizes, member)
  end
  redis.call('ZREM', index, member)
end

-- Entries whose value Redis already expired still hold accounted bytes.
for _, member in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 256)) do
  unaccount(member)
end
unaccount(id)
redis.call('DEL', value_key)
if size > max_bytes then
  return 0
end

local total = tonumber(redis.call('GET', total_key) or '0')
while total + size > max_bytes do
  local oldest = redis.call('ZRANGE', index, 0, 0)
  if #oldest == 0 then
    total = 0
    break
  end
  unaccount(oldest[1])
  redis.call('DEL', prefix .. oldest[1])
  total = tonumber(redis.call('GET', total_key) or '0')
end

redis.call('SET', value_key, value, 'PX', ttl)
redis.call('ZADD', index, now + ttl, id)
redis.call('HSET', sizes, id, size)
redis.call('SET', total_key, total + size)
-- The bookkeeping outlives every value it accounts for, then goes away with an idle namespace.
for _, key in ipairs({index, sizes, total_key}) do
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return 1
";

/// Deletes a value and its accounting. KEYS: index, sizes, total, the value key. ARGV: id.
const EVICT_SCRIPT: &str = r"
local index, sizes, total_key, value_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
redis.call('DEL', value_key)
local bytes = redis.call('HGET', sizes, id)
if bytes then
  redis.call('DECRBY', total_key, bytes)
  redis.call('HDEL', sizes, id)
end
redis.call('ZREM', index, id)
return 1
";

/// The fleet cache: values in Redis under one hash tag, with a byte budget kept by Lua scripts.
///
/// Keys: values at `{<ns>:cache}:<id>` (with a `PX` expiry), and the bookkeeping at `{<ns>:cache}#index`
/// (ids by expiry), `{<ns>:cache}#sizes` and `{<ns>:cache}#total`. The `#` keeps bookkeeping apart from any id.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    settings: CacheSettings,
    tag: String,
    put_script: redis::Script,
    evict_script: redis::Script,
}

impl Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("tag", &self.tag)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A cache on Redis, connected on first use: while Redis cannot be reached every lookup is a miss.
    pub async fn connect(redis: &RedisCacheSettings, settings: CacheSettings) -> Result<Self, StorageError> {
        let client = redis::Client::open(redis.url.as_str()).map_err(|err| {
            StorageError::new(
                StorageErrorKind::Permanent,
                format!("invalid Redis URL for the cache: {err}"),
            )
            .with_source(err)
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(redis.response_timeout))
            .set_connection_timeout(Some(redis.connection_timeout));
        // Lazy: a Redis that is down at start costs cache misses, never a failed read or write.
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(|err| {
            StorageError::new(StorageErrorKind::Permanent, format!("the Redis cache: {err}")).with_source(err)
        })?;
        Ok(Self {
            connection,
            settings,
            tag: format!("{{{}:cache}}", redis.namespace),
            put_script: redis::Script::new(PUT_SCRIPT),
            evict_script: redis::Script::new(EVICT_SCRIPT),
        })
    }

    /// The Redis key holding `id`'s bytes.
    pub fn value_key(&self, id: &str) -> String {
        format!("{}:{id}", self.tag)
    }

    /// Bytes the cache accounts for right now (what the budget is checked against).
    pub async fn accounted_bytes(&self) -> Result<u64, StorageError> {
        let total: Option<i64> = self
            .connection
            .clone()
            .get(self.meta_key("total"))
            .await
            .map_err(redis_error)?;
        Ok(total.and_then(|total| u64::try_from(total).ok()).unwrap_or(0))
    }

    fn meta_key(&self, name: &str) -> String {
        format!("{}#{name}", self.tag)
    }

    fn bookkeeping_keys(&self, id: &str) -> [String; 4] {
        [
            self.meta_key("index"),
            self.meta_key("sizes"),
            self.meta_key("total"),
            self.value_key(id),
        ]
    }
}

fn redis_error(err: redis::RedisError) -> StorageError {
    StorageError::new(StorageErrorKind::Transient, format!("Redis cache: {err}")).with_source(err)
}

#[async_trait]
impl HotCache for RedisCache {
    async fn get(&self, id: &str) -> Option<Bytes> {
        let answer: Result<Option<Vec<u8>>, _> = self.connection.clone().get(self.value_key(id)).await;
        match answer {
            Ok(value) => value.map(Bytes::from),
            Err(err) => {
                tracing::warn!(id, error = %err, "hot cache read failed; treating it as a miss");
                None
            }
        }
    }

    async fn put(&self, id: &str, bytes: Bytes) {
        if !self.settings.admits(&bytes) {
            self.evict(id).await;
            return;
        }
        let ttl_ms = u64::try_from(self.settings.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.put_script.prepare_invoke();
        for key in self.bookkeeping_keys(id) {
            invocation.key(key);
        }
        invocation
            .arg(id)
            .arg(bytes.as_ref())
            .arg(ttl_ms)
            .arg(self.settings.max_bytes)
            .arg(format!("{}:", self.tag));
        let stored: Result<i64, _> = invocation.invoke_async(&mut self.connection.clone()).await;
        if let Err(err) = stored {
            tracing::warn!(id, size = bytes.len(), error = %err, "hot cache write failed; the entry is not cached");
        }
    }

    async fn evict(&self, id: &str) {
        let mut invocation = self.evict_script.prepare_invoke();
        for key in self.bookkeeping_keys(id) {
            invocation.key(key);
        }
        invocation.arg(id);
        let evicted: Result<i64, _> = invocation.invoke_async(&mut self.connection.clone()).await;
        if let Err(err) = evicted {
            tracing::warn!(id, error = %err, "hot cache eviction failed; the entry expires with its TTL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_bytes: u64, max_object_bytes: u64) -> CacheSettings {
        CacheSettings {
            ttl: Duration::from_secs(60),
            max_bytes,
            max_object_bytes,
        }
    }

    fn bytes_of(len: usize) -> Bytes {
        Bytes::from(vec![7; len])
    }

    #[tokio::test]
    async fn memory_cache_round_trips_and_evicts() {
        let cache = MemoryCache::new(settings(1024, 512));
        cache.put("a", Bytes::from_static(b"hello")).await;
        assert_eq!(cache.get("a").await, Some(Bytes::from_static(b"hello")));
        cache.evict("a").await;
        assert_eq!(cache.get("a").await, None);
    }

    #[tokio::test]
    async fn memory_cache_never_holds_oversize_objects() {
        let cache = MemoryCache::new(settings(1024, 100));
        cache.put("big", bytes_of(101)).await;
        assert_eq!(cache.get("big").await, None);
        cache.put("a", bytes_of(100)).await;
        assert!(cache.get("a").await.is_some());
        cache.put("a", bytes_of(101)).await;
        assert_eq!(cache.get("a").await, None, "an oversize put drops the older entry");
    }

    #[tokio::test]
    async fn memory_cache_stays_within_its_budget_dropping_the_oldest() {
        let cache = MemoryCache::new(settings(1000, 400));
        for i in 0..10 {
            cache.put(&format!("e{i}"), bytes_of(300)).await;
            assert!(cache.weighted_size().await <= 1000);
        }
        assert!(cache.get("e0").await.is_none(), "the oldest entry is gone");
        assert!(cache.get("e9").await.is_some(), "the newest entry is kept");
    }

    #[tokio::test]
    async fn memory_cache_entries_expire() {
        let cache = MemoryCache::new(CacheSettings {
            ttl: Duration::from_millis(50),
            ..settings(1024, 512)
        });
        cache.put("a", bytes_of(10)).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get("a").await, None);
    }
}
