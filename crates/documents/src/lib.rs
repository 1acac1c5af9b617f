//! Dossier's document operations, shared by the CLI and the HTTP API: store, read, list and delete versions of a
//! user's documents across the metadata database, the object tiers and the hot cache.
//!
//! Order of effects keeps every byte safe: bytes are written to a fresh object before any row points at them (a
//! crash leaves an orphan object for `fsck`, never a row without bytes); deletions write their audit row first and
//! remove objects only after the rows that needed them are gone.

mod encoding;
mod error;
mod open;
mod stats;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use dossier_core::config::{DedupScope, StorageConfig};
use dossier_core::cost::CostModel;
use dossier_core::ids::{validate_key, validate_user_id};
use dossier_core::policy::{DocFacts, Policies, Policy};
use dossier_core::{Clock, FileType, Tier};
use dossier_db::entity::{access_event, audit_log, blob, file_metadata, lifecycle_log, pack, user};
use dossier_db::{Db, DbError};
use dossier_storage::ObjectStore;
use dossier_storage::cache::HotCache;
use dossier_storage::layout::{TierLayout, object_key};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, SqlErr, TransactionTrait,
};
use serde::Serialize;

use crate::encoding::Encoded;
use sha2::{Digest, Sha256};

pub use error::DocError;
pub use open::{Setup, open};
pub use stats::{Stats, TierStats};

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A request to store one version of a document.
#[derive(Debug, Clone)]
pub struct PutRequest<'a> {
    pub user: &'a str,
    pub key: &'a str,
    pub file_type: FileType,
    pub application: Option<&'a str>,
    pub original_name: &'a str,
    pub bytes: Bytes,
}

/// What `put` stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutOutcome {
    pub key: String,
    pub version: i32,
    pub tier: Tier,
    pub sha256: String,
    pub size: u64,
    /// Whether identical bytes were already stored in this dedup scope.
    #[serde(skip)]
    pub deduplicated: bool,
}

/// One version of a document as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocInfo {
    pub key: String,
    pub version: i32,
    #[serde(rename = "type")]
    pub file_type: String,
    pub tier: Tier,
    pub size: u64,
    pub sha256: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub last_accessed_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub next_due_at: Option<DateTime<Utc>>,
    pub legal_hold: bool,
    pub pinned: bool,
    pub application: Option<String>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// Filters of `list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub file_type: Option<FileType>,
    pub tier: Option<Tier>,
    pub all_versions: bool,
}

/// A document read back: its bytes and which version and tier they came from.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    pub bytes: Bytes,
    pub info: DocInfo,
    /// Whether the bytes came from the hot cache.
    pub cached: bool,
}

/// The document store: metadata, object tiers, hot cache, policies and the clock, bound together.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    pub db: Db,
    pub objects: Arc<dyn ObjectStore>,
    pub layout: TierLayout,
    pub cache: Arc<dyn HotCache>,
    pub policies: Arc<Policies>,
    pub cost: Arc<CostModel>,
    pub clock: Arc<dyn Clock>,
    pub dedup: DedupScope,
    /// Documents larger than this never enter the hot cache.
    pub cache_max_object_bytes: u64,
    /// Compression and version deltas.
    pub storage: StorageConfig,
}

/// How often an operation that lost a race (same key or same content stored at once) is tried again.
const RACE_RETRIES: usize = 5;

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn is_busy(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("database is locked") || text.contains("SQLITE_BUSY") || text.contains("could not serialize")
}

/// Facts of a version row for its policy.
pub fn facts_of(row: &file_metadata::Model) -> DocFacts {
    DocFacts {
        tier: row.storage_tier.parse().unwrap_or(Tier::Hot),
        created_at: row.created_at,
        last_accessed_at: row.last_accessed_at,
        superseded_at: row.superseded_at,
        promoted_at: row.promoted_at,
        frozen: row.legal_hold || row.pinned,
    }
}

/// The `next_due_at` and `expires_at` a row should carry under `policy`.
pub fn schedule_of(policy: &Policy, facts: &DocFacts) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let next = policy.next_due(facts).map(|d| d.at);
    let expires = policy
        .expire_days
        .map(|days| dossier_core::days::due_at(facts.created_at, days));
    (next, expires)
}

fn not_found(user: &str, key: &str, version: Option<i32>) -> DocError {
    match version {
        Some(v) => DocError::NotFound(format!("no version {v} of document {key:?} for user {user:?}")),
        None => DocError::NotFound(format!("no document {key:?} for user {user:?}")),
    }
}

fn info_of(row: &file_metadata::Model) -> DocInfo {
    DocInfo {
        key: row.doc_key.clone(),
        version: row.version_no,
        file_type: row.file_type.clone(),
        tier: row.storage_tier.parse().unwrap_or(Tier::Hot),
        size: u64::try_from(row.file_size).unwrap_or(0),
        sha256: row.content_hash.clone(),
        created_at: row.created_at,
        last_accessed_at: row.last_accessed_at,
        next_due_at: row.next_due_at,
        legal_hold: row.legal_hold,
        pinned: row.pinned,
        application: row.job_application_id.clone(),
    }
}

impl DocumentStore {
    /// The injected clock's now, at the microsecond precision Postgres keeps, so both backends agree.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// The dedup scope a user's document of this type lives in.
    pub fn scope_for(&self, user: &str, file_type: FileType) -> String {
        if file_type.is_shared_asset() {
            "shared".to_owned()
        } else {
            match self.dedup {
                DedupScope::Global => "global".to_owned(),
                DedupScope::User => format!("u:{user}"),
            }
        }
    }

    /// Stores a new version of `req.key`: the first is version 1, each later put adds one.
    pub async fn put(&self, req: PutRequest<'_>) -> Result<PutOutcome, DocError> {
        validate_user_id(req.user)?;
        validate_key(req.key)?;
        if let Some(app) = req.application {
            validate_key(app).map_err(|e| DocError::Invalid(format!("invalid application id: {e}")))?;
        }
        let sha256 = sha256_hex(&req.bytes);
        let size = req.bytes.len() as u64;
        let policy = self.policies.get(req.file_type);
        let tier = policy.initial_tier;
        let scope = self.scope_for(req.user, req.file_type);

        let mut last_error = None;
        for _ in 0..RACE_RETRIES {
            match self.try_put(&req, &sha256, size, tier, &scope).await {
                Ok(outcome) => {
                    tracing::info!(user = req.user, version = outcome.version, tier = %tier, size, dedup = outcome.deduplicated, "stored document");
                    return Ok(outcome);
                }
                Err(Attempt::Retry(e)) => last_error = Some(e),
                Err(Attempt::Fail(e)) => return Err(e),
            }
        }
        Err(DocError::Conflict(format!(
            "document {:?} changed concurrently too many times; try again ({})",
            req.key,
            last_error.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    async fn try_put(
        &self,
        req: &PutRequest<'_>,
        sha256: &str,
        size: u64,
        tier: Tier,
        scope: &str,
    ) -> Result<PutOutcome, Attempt> {
        let now = self.now();
        let existing = blob::Entity::find()
            .filter(blob::Column::Scope.eq(scope))
            .filter(blob::Column::Sha256.eq(sha256))
            .one(&self.db.conn)
            .await
            .map_err(DbError::query("looking up identical content"))
            .map_err(Attempt::fail)?;

        // Bytes go to a fresh object before any row points at them. For known content whose blob sits colder than
        // this version needs, the same fresh write re-homes it to the hotter tier.
        let existing = existing.filter(|b| b.state == blob::LIVE || b.state == blob::MOVING);
        let needs_upload = match &existing {
            None => true,
            Some(b) => b.state == blob::LIVE && b.tier.parse::<Tier>().map(|t| t > tier).unwrap_or(false),
        };
        let uid = uuid::Uuid::now_v7().simple().to_string();
        let encoded = if needs_upload {
            // New content may be a delta against the previous version; re-homed content is stored whole.
            let previous = match &existing {
                None => self.current_blob(req.user, req.key).await.map_err(Attempt::Fail)?,
                Some(_) => None,
            };
            Some(self.encode_new(&req.bytes, previous.as_ref(), tier).await)
        } else {
            None
        };
        let new_object = match encoded {
            Some(encoded) => {
                let key = object_key(req.file_type, tier, sha256, &uid);
                let bucket = self.layout.bucket(tier).to_owned();
                self.objects
                    .put(&bucket, &key, encoded.bytes.clone())
                    .await
                    .map_err(|e| Attempt::Fail(e.into()))?;
                Some((bucket, key, encoded))
            }
            None => None,
        };

        let result = self
            .put_rows(
                req,
                sha256,
                size,
                tier,
                scope,
                now,
                existing.as_ref(),
                new_object.as_ref(),
                &uid,
            )
            .await;
        match (&result, &new_object) {
            // Our object is not referenced by any row: remove it rather than leave it to fsck.
            (Err(_), Some((bucket, key, _))) => {
                if let Err(e) = self.objects.delete(bucket, key).await {
                    tracing::warn!(error = %e, "could not remove an unreferenced new object; fsck will");
                }
            }
            // A re-homed blob: its old object is no longer referenced.
            (Ok((_, relocated)), Some(_)) => {
                if let Some(old) = existing.as_ref() {
                    self.vacate(old, relocated.emptied.as_ref()).await;
                }
                self.remove_released(&relocated.released).await;
            }
            _ => {}
        }
        result.map(|(outcome, _)| outcome)
    }

    /// The content of the current version of a user's document, if it has one.
    async fn current_blob(&self, user: &str, key: &str) -> Result<Option<blob::Model>, DocError> {
        let current = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.eq(user))
            .filter(file_metadata::Column::DocKey.eq(key))
            .filter(file_metadata::Column::IsActive.eq(true))
            .one(&self.db.conn)
            .await
            .map_err(DbError::query("finding the current version"))?;
        let Some(current) = current else {
            return Ok(None);
        };
        Ok(blob::Entity::find_by_id(current.blob_id)
            .one(&self.db.conn)
            .await
            .map_err(DbError::query("finding the current content"))?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_rows(
        &self,
        req: &PutRequest<'_>,
        sha256: &str,
        size: u64,
        tier: Tier,
        scope: &str,
        now: DateTime<Utc>,
        existing: Option<&blob::Model>,
        new_object: Option<&(String, String, Encoded)>,
        uid: &str,
    ) -> Result<(PutOutcome, Relocated), Attempt> {
        let txn = self
            .db
            .conn
            .begin()
            .await
            .map_err(Attempt::db("starting a transaction"))?;
        let size_i64 =
            i64::try_from(size).map_err(|_| Attempt::Fail(DocError::Invalid("document too large".into())))?;

        user::Entity::insert(user::ActiveModel {
            id: Set(req.user.to_owned()),
            created_at: Set(now),
        })
        .on_conflict_do_nothing_on([user::Column::Id])
        .exec(&txn)
        .await
        .map_err(Attempt::db("recording the user"))?;

        let mut released = Vec::new();
        let mut emptied = None;
        let blob_id = match (existing, new_object) {
            (None, Some((bucket, key, encoded))) => {
                if let Some((base_id, _)) = encoded.delta {
                    // The delta holds a reference on its base: the base outlives every delta built on it.
                    let held = blob::Entity::update_many()
                        .col_expr(blob::Column::Refcount, Expr::col(blob::Column::Refcount).add(1))
                        .filter(blob::Column::Id.eq(base_id))
                        .filter(blob::Column::State.eq(blob::LIVE))
                        .exec(&txn)
                        .await
                        .map_err(Attempt::db("holding the delta base"))?;
                    if held.rows_affected != 1 {
                        return Err(Attempt::Retry(DocError::Conflict(
                            "the previous version changed concurrently".into(),
                        )));
                    }
                }
                let inserted = blob::ActiveModel {
                    uid: Set(uid.to_owned()),
                    scope: Set(scope.to_owned()),
                    sha256: Set(sha256.to_owned()),
                    size: Set(size_i64),
                    stored_size: Set(encoded.bytes.len() as i64),
                    codec: Set(encoded.codec.as_str().to_owned()),
                    tier: Set(tier.to_string()),
                    bucket: Set(bucket.clone()),
                    object_key: Set(key.clone()),
                    delta_base_id: Set(encoded.delta.map(|(base, _)| base)),
                    delta_depth: Set(encoded.delta.map(|(_, depth)| depth).unwrap_or(0)),
                    codec_checked_at: Set(encoded.checked.then_some(now)),
                    pack_pending_tier: Set(self.packs_into(tier, encoded.bytes.len()).then(|| tier.to_string())),
                    refcount: Set(1),
                    state: Set(blob::LIVE.to_owned()),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await
                .map_err(Attempt::db("recording the content"))?;
                inserted.id
            }
            (Some(old), relocation) => {
                let mut update = blob::Entity::update_many()
                    .col_expr(blob::Column::Refcount, Expr::col(blob::Column::Refcount).add(1))
                    .col_expr(blob::Column::UpdatedAt, Expr::value(now))
                    .filter(blob::Column::Id.eq(old.id))
                    .filter(blob::Column::State.is_in([blob::LIVE, blob::MOVING]));
                if let Some((bucket, key, encoded)) = relocation {
                    // Re-homed content is stored whole: it no longer needs its delta base.
                    update = update
                        .col_expr(blob::Column::Tier, Expr::value(tier.to_string()))
                        .col_expr(blob::Column::Bucket, Expr::value(bucket.clone()))
                        .col_expr(blob::Column::ObjectKey, Expr::value(key.clone()))
                        .col_expr(blob::Column::Codec, Expr::value(encoded.codec.as_str()))
                        .col_expr(blob::Column::StoredSize, Expr::value(encoded.bytes.len() as i64))
                        .col_expr(blob::Column::DeltaBaseId, Expr::value(Option::<i64>::None))
                        .col_expr(blob::Column::DeltaDepth, Expr::value(0))
                        .col_expr(
                            blob::Column::CodecCheckedAt,
                            Expr::value(encoded.checked.then_some(now)),
                        )
                        .col_expr(blob::Column::PackId, Expr::value(Option::<i64>::None))
                        .col_expr(blob::Column::PackOffset, Expr::value(Option::<i64>::None))
                        .col_expr(blob::Column::PackLength, Expr::value(Option::<i64>::None))
                        .col_expr(
                            blob::Column::PackPendingTier,
                            Expr::value(self.packs_into(tier, encoded.bytes.len()).then(|| tier.to_string())),
                        )
                        .filter(blob::Column::State.eq(blob::LIVE))
                        .filter(blob::Column::ObjectKey.eq(old.object_key.clone()));
                    if let (Some(pack_id), Some(length)) = (old.pack_id, old.pack_length) {
                        emptied = release_pack_member(&txn, pack_id, length)
                            .await
                            .map_err(Attempt::db("leaving a pack"))?;
                    }
                    if let Some(base) = old.delta_base_id {
                        release_blob(&txn, base, now)
                            .await
                            .map_err(Attempt::db("releasing a delta base"))?;
                        if let Some(b) = blob::Entity::find_by_id(base)
                            .one(&txn)
                            .await
                            .map_err(Attempt::db("reading a delta base"))?
                            .filter(|b| b.state == blob::DELETING)
                        {
                            released.push(b);
                        }
                    }
                }
                let done = update
                    .exec(&txn)
                    .await
                    .map_err(Attempt::db("sharing identical content"))?;
                if done.rows_affected != 1 {
                    return Err(Attempt::Retry(DocError::Conflict(
                        "identical content changed concurrently".into(),
                    )));
                }
                old.id
            }
            (None, None) => unreachable!("new content is always uploaded"),
        };

        let previous = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.eq(req.user))
            .filter(file_metadata::Column::DocKey.eq(req.key))
            .order_by_desc(file_metadata::Column::VersionNo)
            .one(&txn)
            .await
            .map_err(Attempt::db("finding the current version"))?;
        let version = previous.as_ref().map(|p| p.version_no + 1).unwrap_or(1);
        if let Some(prev) = previous.filter(|p| p.is_active) {
            let mut facts = facts_of(&prev);
            facts.superseded_at = Some(now);
            let prev_policy = self.policy_of(&prev.file_type);
            let (next_due_at, expires_at) = schedule_of(prev_policy, &facts);
            let mut am: file_metadata::ActiveModel = prev.into();
            am.is_active = Set(false);
            am.superseded_at = Set(Some(now));
            am.next_due_at = Set(next_due_at);
            am.expires_at = Set(expires_at);
            am.update(&txn)
                .await
                .map_err(Attempt::db("superseding the previous version"))?;
        }

        let facts = DocFacts {
            tier,
            created_at: now,
            last_accessed_at: now,
            superseded_at: None,
            promoted_at: None,
            frozen: false,
        };
        let (next_due_at, expires_at) = schedule_of(self.policies.get(req.file_type), &facts);
        let row = file_metadata::ActiveModel {
            file_key: Set(uuid::Uuid::new_v4().simple().to_string()),
            user_id: Set(req.user.to_owned()),
            doc_key: Set(req.key.to_owned()),
            version_no: Set(version),
            original_name: Set(req.original_name.to_owned()),
            file_type: Set(req.file_type.to_string()),
            content_hash: Set(sha256.to_owned()),
            file_size: Set(size_i64),
            storage_tier: Set(tier.to_string()),
            blob_id: Set(blob_id),
            job_application_id: Set(req.application.map(str::to_owned)),
            is_active: Set(true),
            legal_hold: Set(false),
            pinned: Set(false),
            access_count: Set(0),
            created_at: Set(now),
            last_accessed_at: Set(now),
            tier_changed_at: Set(now),
            superseded_at: Set(None),
            expires_at: Set(expires_at),
            next_due_at: Set(next_due_at),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(Attempt::db("recording the version"))?;

        lifecycle_log::ActiveModel {
            file_id: Set(Some(row.id)),
            blob_id: Set(Some(blob_id)),
            user_id: Set(req.user.to_owned()),
            from_tier: Set(None),
            to_tier: Set(tier.to_string()),
            reason: Set("ingest".to_owned()),
            policy: Set(Some(req.file_type.to_string())),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(Attempt::db("logging the placement"))?;

        txn.commit().await.map_err(Attempt::db("committing the version"))?;
        let outcome = PutOutcome {
            key: req.key.to_owned(),
            version,
            tier,
            sha256: sha256.to_owned(),
            size,
            deduplicated: existing.is_some(),
        };
        Ok((outcome, Relocated { released, emptied }))
    }

    fn policy_of(&self, file_type: &str) -> &Policy {
        self.policies.get(file_type.parse().unwrap_or(FileType::Temp))
    }

    /// The row of one version (the current one when `version` is `None`), only ever among `user`'s own documents.
    pub async fn find_version(
        &self,
        conn: &impl ConnectionTrait,
        user: &str,
        key: &str,
        version: Option<i32>,
    ) -> Result<file_metadata::Model, DocError> {
        validate_user_id(user)?;
        validate_key(key)?;
        let mut query = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.eq(user))
            .filter(file_metadata::Column::DocKey.eq(key));
        query = match version {
            Some(v) => query.filter(file_metadata::Column::VersionNo.eq(v)),
            None => query.order_by_desc(file_metadata::Column::VersionNo),
        };
        query
            .one(conn)
            .await
            .map_err(DbError::query("finding the document"))?
            .ok_or_else(|| not_found(user, key, version))
    }

    /// Reads one version's exact bytes wherever the database says they are, through the hot cache, and records the
    /// access.
    pub async fn get(&self, user: &str, key: &str, version: Option<i32>) -> Result<ReadOutcome, DocError> {
        let row = self.find_version(&self.db.conn, user, key, version).await?;
        let blob = blob::Entity::find_by_id(row.blob_id)
            .one(&self.db.conn)
            .await
            .map_err(DbError::query("finding the content"))?
            .ok_or_else(|| DocError::Integrity(format!("document {key:?} points at missing content")))?;
        let (bytes, cached) = self.read_blob(&blob).await?;
        self.record_access(&row, &blob).await?;
        let mut info = info_of(&row);
        info.last_accessed_at = std::cmp::max(self.now(), row.last_accessed_at);
        Ok(ReadOutcome { bytes, info, cached })
    }

    /// The verified bytes of a blob: from the cache when hot and cached, otherwise from its tier.
    pub async fn read_blob(&self, blob: &blob::Model) -> Result<(Bytes, bool), DocError> {
        let tier: Tier = blob.tier.parse().unwrap_or(Tier::Hot);
        if tier == Tier::Hot
            && let Some(bytes) = self.cache.get(&blob.uid).await
        {
            return Ok((bytes, true));
        }
        if blob.state == blob::CORRUPT {
            return Err(DocError::Integrity(format!(
                "content {} is marked corrupt",
                blob.sha256
            )));
        }
        let stored = self.fetch_stored(blob).await?;
        let bytes = self.decode_blob(blob, stored).await?;
        if tier == Tier::Hot && bytes.len() as u64 <= self.cache_max_object_bytes {
            self.cache.put(&blob.uid, bytes.clone()).await;
        }
        Ok((bytes, false))
    }

    async fn record_access(&self, row: &file_metadata::Model, blob: &blob::Model) -> Result<(), DocError> {
        let now = self.now();
        let txn = self
            .db
            .conn
            .begin()
            .await
            .map_err(DbError::query("starting a transaction"))?;
        let last = std::cmp::max(now, row.last_accessed_at);
        let mut facts = facts_of(row);
        facts.last_accessed_at = last;
        let (next_due_at, _) = schedule_of(self.policy_of(&row.file_type), &facts);
        file_metadata::Entity::update_many()
            .col_expr(
                file_metadata::Column::AccessCount,
                Expr::col(file_metadata::Column::AccessCount).add(1),
            )
            .col_expr(file_metadata::Column::LastAccessedAt, Expr::value(last))
            .col_expr(file_metadata::Column::NextDueAt, Expr::value(next_due_at))
            .filter(file_metadata::Column::Id.eq(row.id))
            .exec(&txn)
            .await
            .map_err(DbError::query("recording the access"))?;
        access_event::ActiveModel {
            file_id: Set(row.id),
            user_id: Set(row.user_id.clone()),
            tier: Set(blob.tier.clone()),
            accessed_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(DbError::query("recording the access"))?;
        txn.commit().await.map_err(DbError::query("recording the access"))?;
        Ok(())
    }

    /// A user's documents: current versions, or every version with `all_versions`, ordered by key and version.
    pub async fn list(&self, user: &str, filter: &ListFilter) -> Result<Vec<DocInfo>, DocError> {
        validate_user_id(user)?;
        let mut query = file_metadata::Entity::find().filter(file_metadata::Column::UserId.eq(user));
        if !filter.all_versions {
            query = query.filter(file_metadata::Column::IsActive.eq(true));
        }
        if let Some(t) = filter.file_type {
            query = query.filter(file_metadata::Column::FileType.eq(t.as_str()));
        }
        if let Some(t) = filter.tier {
            query = query.filter(file_metadata::Column::StorageTier.eq(t.as_str()));
        }
        let rows = query
            .order_by_asc(file_metadata::Column::DocKey)
            .order_by_asc(file_metadata::Column::VersionNo)
            .all(&self.db.conn)
            .await
            .map_err(DbError::query("listing documents"))?;
        Ok(rows.iter().map(info_of).collect())
    }

    /// Deletes every version of a document: audit row first, then the rows, then bytes no document needs any more.
    /// Returns how many versions were deleted.
    pub async fn delete(&self, user: &str, key: &str, reason: &str) -> Result<usize, DocError> {
        validate_user_id(user)?;
        validate_key(key)?;
        let rows = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.eq(user))
            .filter(file_metadata::Column::DocKey.eq(key))
            .all(&self.db.conn)
            .await
            .map_err(DbError::query("finding the document"))?;
        if rows.is_empty() {
            return Err(not_found(user, key, None));
        }
        if rows.iter().any(|r| r.legal_hold) {
            return Err(DocError::Conflict(format!("document {key:?} is under a legal hold")));
        }
        self.audit(
            user,
            "delete",
            Some(key),
            reason,
            serde_json::json!({ "versions": rows.len() }),
        )
        .await?;
        let released = self.delete_rows(&rows).await?;
        self.remove_released(&released).await;
        tracing::info!(user, versions = rows.len(), reason, "deleted document");
        Ok(rows.len())
    }

    /// Writes an audit row in its own committed transaction, before the act it records.
    pub async fn audit(
        &self,
        user: &str,
        action: &str,
        key: Option<&str>,
        reason: &str,
        detail: serde_json::Value,
    ) -> Result<(), DocError> {
        audit_log::ActiveModel {
            user_id: Set(user.to_owned()),
            action: Set(action.to_owned()),
            doc_key: Set(key.map(str::to_owned)),
            reason: Set(Some(reason.to_owned())),
            detail: Set(Some(detail)),
            created_at: Set(self.now()),
            ..Default::default()
        }
        .insert(&self.db.conn)
        .await
        .map_err(DbError::query("writing the audit log"))?;
        Ok(())
    }

    /// Removes version rows and releases their blobs; returns the blobs no row references any more (now `deleting`).
    pub async fn delete_rows(&self, rows: &[file_metadata::Model]) -> Result<Vec<blob::Model>, DocError> {
        for attempt in 0..RACE_RETRIES {
            match self.try_delete_rows(rows).await {
                Ok(released) => return Ok(released),
                Err(e) if is_busy(&e) && attempt + 1 < RACE_RETRIES => continue,
                Err(e) => {
                    return Err(DbError::Query {
                        what: "deleting versions".into(),
                        source: e,
                    }
                    .into());
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn try_delete_rows(&self, rows: &[file_metadata::Model]) -> Result<Vec<blob::Model>, DbErr> {
        let now = self.now();
        let txn = self.db.conn.begin().await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let deleted = file_metadata::Entity::delete_many()
            .filter(file_metadata::Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
        if deleted.rows_affected as usize != rows.len() {
            return Err(DbErr::Custom("the document changed concurrently".into()));
        }
        let mut released = Vec::new();
        for row in rows {
            release_blob(&txn, row.blob_id, now).await?;
        }
        let mut blob_ids: Vec<i64> = rows.iter().map(|r| r.blob_id).collect();
        blob_ids.sort_unstable();
        blob_ids.dedup();
        for blob in blob::Entity::find()
            .filter(blob::Column::Id.is_in(blob_ids))
            .all(&txn)
            .await?
        {
            if blob.state == blob::DELETING {
                released.push(blob);
            } else {
                self.cache.evict(&blob.uid).await;
            }
        }
        txn.commit().await?;
        Ok(released)
    }

    /// Deletes the objects of released blobs, then their rows; a delta's row going releases its base, which goes too
    /// once nothing needs it. A failure leaves the blob `deleting` for `fsck`.
    pub async fn remove_released(&self, released: &[blob::Model]) {
        let mut pending: Vec<blob::Model> = released.to_vec();
        while let Some(blob) = pending.pop() {
            self.cache.evict(&blob.uid).await;
            // A pack member's bytes go with its pack, once the pack has no member left.
            if blob.pack_id.is_none()
                && let Err(e) = self.objects.delete(&blob.bucket, &blob.object_key).await
            {
                tracing::warn!(blob = blob.id, error = %e, "could not remove an object; fsck will retry");
                continue;
            }
            match self.forget_blob(&blob).await {
                Ok((base, emptied)) => {
                    pending.extend(base);
                    if let Some(pack) = emptied {
                        self.remove_pack(&pack).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(blob = blob.id, error = %e, "object removed but its row stays; fsck will finish")
                }
            }
        }
    }

    /// Whether content of `stored_len` bytes at rest in `tier` belongs in a pack.
    pub fn packs_into(&self, tier: Tier, stored_len: usize) -> bool {
        self.storage.pack_tiers.contains(&tier) && (stored_len as u64) < self.storage.pack_member_max_bytes
    }

    /// Cleans up where a blob's bytes were, once the database points elsewhere: its own object is deleted (a pack
    /// member's bytes stay with the pack), a pack it was the last member of is removed, and its cache entry goes.
    /// A failure leaves an orphan for `fsck`.
    pub async fn vacate(&self, old: &blob::Model, emptied: Option<&pack::Model>) {
        if old.pack_id.is_none()
            && let Err(e) = self.objects.delete(&old.bucket, &old.object_key).await
        {
            tracing::warn!(blob = old.id, error = %e, "old object left behind; fsck removes it after its grace period");
        }
        if let Some(pack) = emptied {
            self.remove_pack(pack).await;
        }
        self.cache.evict(&old.uid).await;
    }

    /// Removes a pack that no member points into any more: its object, then its row. A failure leaves the row
    /// `deleted` for `fsck`.
    pub async fn remove_pack(&self, pack: &pack::Model) {
        if let Err(e) = self.objects.delete(&pack.bucket, &pack.object_key).await {
            tracing::warn!(pack = pack.id, error = %e, "could not remove an empty pack; fsck will retry");
            return;
        }
        let gone = pack::Entity::delete_many()
            .filter(pack::Column::Id.eq(pack.id))
            .filter(pack::Column::State.eq(pack::DELETED))
            .exec(&self.db.conn)
            .await;
        if let Err(e) = gone {
            tracing::warn!(pack = pack.id, error = %e, "empty pack removed but its row stays; fsck will finish");
        }
    }

    /// Deletes a `deleting` blob's row, releases its delta base and leaves its pack, in one transaction; returns the
    /// base when that was its last reference, and the pack when that was its last member.
    async fn forget_blob(&self, blob: &blob::Model) -> Result<(Option<blob::Model>, Option<pack::Model>), DbErr> {
        let txn = self.db.conn.begin().await?;
        let gone = blob::Entity::delete_many()
            .filter(blob::Column::Id.eq(blob.id))
            .filter(blob::Column::State.eq(blob::DELETING))
            .exec(&txn)
            .await?;
        let (mut base, mut emptied) = (None, None);
        if gone.rows_affected == 1 {
            if let Some(base_id) = blob.delta_base_id {
                release_blob(&txn, base_id, self.now()).await?;
                base = blob::Entity::find_by_id(base_id)
                    .one(&txn)
                    .await?
                    .filter(|b| b.state == blob::DELETING);
            }
            if let (Some(pack_id), Some(length)) = (blob.pack_id, blob.pack_length) {
                emptied = release_pack_member(&txn, pack_id, length).await?;
            }
        }
        txn.commit().await?;
        Ok((base, emptied))
    }
}

/// What re-homing identical content left to clean up after its transaction: delta bases nothing needs any more, and
/// a pack it was the last member of.
struct Relocated {
    released: Vec<blob::Model>,
    emptied: Option<pack::Model>,
}

/// Takes one member of `length` bytes out of a pack inside `txn`; the last one marks the pack `deleted` and returns
/// it, for [`DocumentStore::remove_pack`] once `txn` commits.
pub async fn release_pack_member(
    txn: &DatabaseTransaction,
    pack_id: i64,
    length: i64,
) -> Result<Option<pack::Model>, DbErr> {
    pack::Entity::update_many()
        .col_expr(pack::Column::LiveBytes, Expr::col(pack::Column::LiveBytes).sub(length))
        .col_expr(pack::Column::MemberCount, Expr::col(pack::Column::MemberCount).sub(1))
        .filter(pack::Column::Id.eq(pack_id))
        .filter(pack::Column::MemberCount.gt(0))
        .exec(txn)
        .await?;
    pack::Entity::update_many()
        .col_expr(pack::Column::State, Expr::value(pack::DELETED))
        .filter(pack::Column::Id.eq(pack_id))
        .filter(pack::Column::MemberCount.eq(0))
        .exec(txn)
        .await?;
    Ok(pack::Entity::find_by_id(pack_id)
        .one(txn)
        .await?
        .filter(|p| p.state == pack::DELETED))
}

/// Drops one reference to a blob inside `txn`; the last reference marks it `deleting`.
pub async fn release_blob(txn: &DatabaseTransaction, blob_id: i64, now: DateTime<Utc>) -> Result<(), DbErr> {
    blob::Entity::update_many()
        .col_expr(blob::Column::Refcount, Expr::col(blob::Column::Refcount).sub(1))
        .col_expr(blob::Column::UpdatedAt, Expr::value(now))
        .filter(blob::Column::Id.eq(blob_id))
        .filter(blob::Column::Refcount.gt(0))
        .exec(txn)
        .await?;
    blob::Entity::update_many()
        .col_expr(blob::Column::State, Expr::value(blob::DELETING))
        .filter(blob::Column::Id.eq(blob_id))
        .filter(blob::Column::Refcount.eq(0))
        .exec(txn)
        .await?;
    Ok(())
}

/// One try of an operation that may lose a race.
enum Attempt {
    Retry(DocError),
    Fail(DocError),
}

impl Attempt {
    fn fail(e: DbError) -> Attempt {
        Attempt::Fail(e.into())
    }

    /// Unique violations and busy databases are races worth another try; anything else fails.
    fn db(what: &'static str) -> impl Fn(DbErr) -> Attempt {
        move |e| {
            if is_unique_violation(&e) || is_busy(&e) {
                Attempt::Retry(
                    DbError::Query {
                        what: what.into(),
                        source: e,
                    }
                    .into(),
                )
            } else {
                Attempt::Fail(
                    DbError::Query {
                        what: what.into(),
                        source: e,
                    }
                    .into(),
                )
            }
        }
    }
}

impl From<DbError> for Attempt {
    fn from(e: DbError) -> Self {
        Attempt::Fail(e.into())
    }
}
