//! Builds a [`DocumentStore`] from the configuration: each backend chosen on its own, embedded by default.
//!
//! Metadata in Postgres when `DATABASE_URL` is set, else SQLite in the home (migrated on first use); objects in S3
//! when `DOSSIER_S3_ENDPOINT` is set, else the home's tier folders; the hot cache in Redis when `REDIS_URL` is set,
//! else in process.

use std::sync::Arc;
use std::time::Duration;

use dossier_core::config::{ChecksumMode, Config};
use dossier_core::{Clock, Tier};
use dossier_db::Db;
use dossier_storage::cache::{CacheSettings, HotCache, MemoryCache, RedisCache, RedisCacheSettings};
use dossier_storage::fs::FsStore;
use dossier_storage::layout::TierLayout;
use dossier_storage::s3::{S3Settings, S3Store};
use dossier_storage::{self as storage, ObjectStore};

use crate::{DocError, DocumentStore};

/// What [`open`] should do about a missing schema and missing buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Normal use: the fleet's schema must already be migrated (`dossier migrate`).
    Use,
    /// `dossier migrate`: apply migrations and create missing buckets.
    Migrate,
}

/// Opens every backend the configuration names.
pub async fn open(config: &Config, clock: Arc<dyn Clock>, setup: Setup) -> Result<DocumentStore, DocError> {
    let db = match &config.database_url {
        Some(url) => {
            let db =
                Db::connect_postgres(url, config.database_schema.as_deref(), config.database_max_connections).await?;
            match setup {
                Setup::Migrate => db.migrate().await?,
                Setup::Use => db.check_migrated().await?,
            }
            db
        }
        None => Db::open_embedded(&config.home).await?,
    };

    let (objects, layout): (Arc<dyn ObjectStore>, TierLayout) = match &config.s3 {
        Some(s3) => {
            let settings = S3Settings {
                endpoint: Some(s3.endpoint.clone()),
                region: s3.region.clone(),
                force_path_style: s3.force_path_style,
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3.secret_access_key.clone(),
                checksum: match s3.checksum {
                    ChecksumMode::WhenSupported => storage::s3::ChecksumMode::WhenSupported,
                    ChecksumMode::WhenRequired => storage::s3::ChecksumMode::WhenRequired,
                },
                multipart_threshold: s3.multipart_threshold,
                multipart_part_size: s3.multipart_part_size,
                multipart_copy_threshold: s3.multipart_copy_threshold,
                ..S3Settings::default()
            };
            let store = S3Store::connect(settings).await?;
            let layout = TierLayout::new(s3.buckets.clone());
            (Arc::new(store), layout)
        }
        None => (
            Arc::new(FsStore::new(config.home.join("tiers"))),
            TierLayout::for_filesystem(),
        ),
    };
    if setup == Setup::Migrate || config.s3.is_none() {
        for tier in Tier::ALL {
            objects.ensure_bucket(layout.bucket(tier)).await?;
        }
    }

    let settings = CacheSettings {
        ttl: Duration::from_secs(config.cache.ttl_secs),
        max_bytes: config.cache.max_bytes,
        max_object_bytes: config.cache.max_object_bytes,
    };
    let cache: Arc<dyn HotCache> = match &config.redis_url {
        Some(url) => {
            let redis = RedisCacheSettings {
                url: url.clone(),
                namespace: config.namespace.clone(),
                response_timeout: Duration::from_millis(config.redis_response_timeout_ms),
                ..RedisCacheSettings::default()
            };
            Arc::new(RedisCache::connect(&redis, settings).await?)
        }
        None => Arc::new(MemoryCache::new(settings)),
    };

    Ok(DocumentStore {
        db,
        objects,
        layout,
        cache,
        policies: Arc::new(config.policies.clone()),
        cost: Arc::new(config.cost.clone()),
        clock,
        dedup: config.dedup_scope,
        cache_max_object_bytes: config.cache.max_object_bytes,
        storage: config.storage.clone(),
    })
}
