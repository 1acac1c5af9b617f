//! DESIGN.md's transition protocol: copy to the target tier, verify size and SHA-256, compare-and-set the blob's
//! location and the version's tier in one transaction with the lifecycle log, delete the source, evict the cache.
//!
//! A crash anywhere leaves either a re-runnable job (the blob stays `moving`; the re-run copies again to the same
//! deterministic target key) or an orphan source object that `fsck` removes after its grace period.
//!
//! A blob sits in the hottest tier anything needs: the versions referencing it and the deltas built on it (a delta
//! is read through its base, so the base is never colder than the delta). After a delta moves, its base is
//! re-homed by the same rule.

use chrono::{DateTime, Utc};
use dossier_core::{FileType, Tier};
use dossier_db::DbError;
use dossier_db::entity::{blob, file_metadata, pack};
use dossier_documents::{DocError, facts_of, release_pack_member, schedule_of};
use dossier_storage::layout::object_key;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait};
use serde::Serialize;

use crate::{Lifecycle, LifecycleError, LogEntry, log};

/// What a transition did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum TransitionOutcome {
    /// The version now sits in the target tier (bytes moved or not).
    Moved { from: Tier, to: Tier, bytes_moved: bool },
    /// Nothing to do: already there, gone, or frozen by a legal hold or pin.
    Skipped { why: String },
    /// The bytes are in glacier: a restore was requested first.
    Restoring { eta: DateTime<Utc>, job_id: String },
}

/// Why a version moves: the reason written to the lifecycle log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    /// A policy rule (`age`, `idle`, `superseded`).
    Policy(&'static str),
    Promotion,
    Prewarm,
    /// `dossier move` or the API: allowed on pinned documents, never skipped.
    Manual,
}

impl MoveKind {
    pub fn reason(self) -> &'static str {
        match self {
            MoveKind::Policy(r) => r,
            MoveKind::Promotion => "promotion",
            MoveKind::Prewarm => "prewarm",
            MoveKind::Manual => "manual",
        }
    }

    pub fn parse(reason: &str) -> MoveKind {
        match reason {
            "promotion" => MoveKind::Promotion,
            "prewarm" => MoveKind::Prewarm,
            "manual" => MoveKind::Manual,
            "idle" => MoveKind::Policy("idle"),
            "superseded" => MoveKind::Policy("superseded"),
            _ => MoveKind::Policy("age"),
        }
    }
}

impl Lifecycle {
    /// Moves one version to `to`, moving its bytes when the blob's tier has to change.
    pub async fn transition(
        &self,
        file_id: i64,
        to: Tier,
        kind: MoveKind,
        job_id: Option<&str>,
    ) -> Result<TransitionOutcome, LifecycleError> {
        let store = &self.store;
        let now = self.now();
        let Some(row) = file_metadata::Entity::find_by_id(file_id)
            .one(&store.db.conn)
            .await
            .map_err(DbError::query("finding the version"))?
        else {
            return Ok(TransitionOutcome::Skipped {
                why: "the version no longer exists".into(),
            });
        };
        let from: Tier = row.storage_tier.parse().unwrap_or(Tier::Hot);
        if from == to {
            return Ok(TransitionOutcome::Skipped {
                why: format!("already in {to}"),
            });
        }
        if kind != MoveKind::Manual && (row.legal_hold || row.pinned) {
            return Ok(TransitionOutcome::Skipped {
                why: "under a legal hold or pinned".into(),
            });
        }
        if matches!(kind, MoveKind::Promotion | MoveKind::Prewarm) && to > from {
            return Ok(TransitionOutcome::Skipped {
                why: format!("{from} is already hotter than {to}"),
            });
        }
        let blob = blob::Entity::find_by_id(row.blob_id)
            .one(&store.db.conn)
            .await
            .map_err(DbError::query("finding the content"))?
            .ok_or_else(|| DocError::Integrity(format!("version {file_id} points at missing content")))?;
        let blob_tier: Tier = blob.tier.parse().unwrap_or(Tier::Hot);

        // The blob must sit in the hottest tier any live version referencing it, or any delta built on it, needs.
        let needed = self
            .tiers_needed(blob.id, Some(row.id))
            .await?
            .into_iter()
            .chain([to])
            .min()
            .unwrap_or(to);

        if needed != blob_tier && blob_tier == Tier::Glacier && !self.is_restored(&blob, now) {
            let (eta, job_id) = self.request_restore(&row, &blob).await?;
            return Ok(TransitionOutcome::Restoring { eta, job_id });
        }

        // Small contents bound for a pack tier wait for the next pack there; their bytes stay put until it is sealed.
        let pack_wait = needed != blob_tier && store.packs_into(needed, usize::try_from(blob.stored_size).unwrap_or(0));
        let bytes_moved = needed != blob_tier && !pack_wait;
        let new_location = if bytes_moved {
            Some(self.copy_blob(file_type_of(&row), &blob, needed).await?)
        } else {
            None
        };

        let txn = store
            .db
            .conn
            .begin()
            .await
            .map_err(DbError::query("starting a transaction"))?;
        let mut emptied_pack = None;
        if let Some((bucket, key)) = &new_location {
            emptied_pack = self.relocate(&txn, &blob, needed, bucket, key, now).await?;
        } else if pack_wait || blob.pack_pending_tier.is_some() {
            let pending = pack_wait.then(|| needed.to_string());
            let done = blob::Entity::update_many()
                .col_expr(blob::Column::PackPendingTier, Expr::value(pending))
                .col_expr(blob::Column::UpdatedAt, Expr::value(now))
                .filter(blob::Column::Id.eq(blob.id))
                .filter(blob::Column::ObjectKey.eq(blob.object_key.clone()))
                .filter(blob::Column::State.eq(blob::LIVE))
                .exec(&txn)
                .await
                .map_err(DbError::query("recording the pack the content waits for"))?;
            if done.rows_affected != 1 {
                return Err(LifecycleError::Busy(format!(
                    "content of version {file_id} changed concurrently"
                )));
            }
        }
        let mut facts = facts_of(&row);
        facts.tier = to;
        let promoted_at = if to == Tier::Hot && kind != MoveKind::Manual {
            Some(now)
        } else {
            row.promoted_at
        };
        facts.promoted_at = promoted_at;
        let policy = store.policies.get(row.file_type.parse().unwrap_or(FileType::Temp));
        let (next_due_at, _) = schedule_of(policy, &facts);
        let done = file_metadata::Entity::update_many()
            .col_expr(file_metadata::Column::StorageTier, Expr::value(to.to_string()))
            .col_expr(file_metadata::Column::TierChangedAt, Expr::value(now))
            .col_expr(file_metadata::Column::NextDueAt, Expr::value(next_due_at))
            .col_expr(file_metadata::Column::PromotedAt, Expr::value(promoted_at))
            .filter(file_metadata::Column::Id.eq(row.id))
            .filter(file_metadata::Column::StorageTier.eq(from.to_string()))
            .exec(&txn)
            .await
            .map_err(DbError::query("recording the new tier"))?;
        if done.rows_affected != 1 {
            return Err(LifecycleError::Busy(format!(
                "version {file_id} changed tier concurrently"
            )));
        }
        let entry = LogEntry {
            file_id: Some(row.id),
            blob_id: Some(blob.id),
            user_id: &row.user_id,
            from: Some(from.as_str()),
            to: to.as_str(),
            reason: kind.reason(),
            policy: Some(&row.file_type),
            job_id,
        };
        log(&txn, entry, now).await?;
        txn.commit()
            .await
            .map_err(DbError::query("committing the transition"))?;

        if new_location.is_some() {
            store.vacate(&blob, emptied_pack.as_ref()).await;
        } else {
            store.cache.evict(&blob.uid).await;
        }
        tracing::info!(file = row.id, from = %from, to = %to, reason = kind.reason(), bytes_moved, "transition");
        if bytes_moved && let Some(base) = blob.delta_base_id {
            self.rehome_chain(base, file_type_of(&row)).await?;
        }
        Ok(TransitionOutcome::Moved { from, to, bytes_moved })
    }

    /// The tiers the versions referencing a blob (but `except`) and the deltas built on it sit in.
    async fn tiers_needed(&self, blob_id: i64, except: Option<i64>) -> Result<Vec<Tier>, LifecycleError> {
        let conn = &self.store.db.conn;
        let mut versions = file_metadata::Entity::find().filter(file_metadata::Column::BlobId.eq(blob_id));
        if let Some(id) = except {
            versions = versions.filter(file_metadata::Column::Id.ne(id));
        }
        let mut tiers: Vec<Tier> = versions
            .all(conn)
            .await
            .map_err(DbError::query("finding versions sharing the content"))?
            .iter()
            .filter_map(|r| r.storage_tier.parse().ok())
            .collect();
        let dependents = blob::Entity::find()
            .filter(blob::Column::DeltaBaseId.eq(blob_id))
            .filter(blob::Column::State.ne(blob::DELETING))
            .all(conn)
            .await
            .map_err(DbError::query("finding the deltas built on the content"))?;
        tiers.extend(dependents.iter().filter_map(|b| b.tier.parse::<Tier>().ok()));
        Ok(tiers)
    }

    /// Moves a blob, and then its own base, and so on up its delta chain, to the hottest tier each one is needed in.
    /// A base in glacier that is not restored stays where it is (reading its deltas then asks for its restore).
    pub(crate) async fn rehome_chain(&self, blob_id: i64, file_type: FileType) -> Result<(), LifecycleError> {
        let store = &self.store;
        let now = self.now();
        let mut next = Some(blob_id);
        while let Some(id) = next.take() {
            let Some(blob) = blob::Entity::find_by_id(id)
                .one(&store.db.conn)
                .await
                .map_err(DbError::query("finding a delta base"))?
            else {
                return Ok(());
            };
            let current: Tier = blob.tier.parse().unwrap_or(Tier::Hot);
            let Some(needed) = self.tiers_needed(blob.id, None).await?.into_iter().min() else {
                return Ok(());
            };
            if needed == current || blob.state != blob::LIVE {
                return Ok(());
            }
            if current == Tier::Glacier && !self.is_restored(&blob, now) {
                tracing::warn!(blob = blob.id, %needed, "delta base in glacier left in place until restored");
                return Ok(());
            }
            if store.packs_into(needed, usize::try_from(blob.stored_size).unwrap_or(0)) {
                // It joins the next pack of that tier; sealing re-homes its own base in turn.
                blob::Entity::update_many()
                    .col_expr(blob::Column::PackPendingTier, Expr::value(needed.as_str()))
                    .col_expr(blob::Column::UpdatedAt, Expr::value(now))
                    .filter(blob::Column::Id.eq(blob.id))
                    .filter(blob::Column::State.eq(blob::LIVE))
                    .exec(&store.db.conn)
                    .await
                    .map_err(DbError::query("marking a delta base for a pack"))?;
                return Ok(());
            }
            let (bucket, key) = self.copy_blob(file_type, &blob, needed).await?;
            let txn = store
                .db
                .conn
                .begin()
                .await
                .map_err(DbError::query("starting a transaction"))?;
            let emptied = self.relocate(&txn, &blob, needed, &bucket, &key, now).await?;
            txn.commit()
                .await
                .map_err(DbError::query("committing a delta base's move"))?;
            store.vacate(&blob, emptied.as_ref()).await;
            tracing::info!(blob = blob.id, from = %current, to = %needed, "delta base re-homed");
            next = blob.delta_base_id;
        }
        Ok(())
    }

    /// Inside `txn`, points a `moving` blob at its verified copy in `tier` (compare-and-set on its old location) and
    /// takes it out of the pack it was in; returns that pack when it was the last member.
    async fn relocate(
        &self,
        txn: &DatabaseTransaction,
        blob: &blob::Model,
        tier: Tier,
        bucket: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<pack::Model>, LifecycleError> {
        let done = blob::Entity::update_many()
            .col_expr(blob::Column::Tier, Expr::value(tier.to_string()))
            .col_expr(blob::Column::Bucket, Expr::value(bucket))
            .col_expr(blob::Column::ObjectKey, Expr::value(key))
            .col_expr(blob::Column::PackId, Expr::value(Option::<i64>::None))
            .col_expr(blob::Column::PackOffset, Expr::value(Option::<i64>::None))
            .col_expr(blob::Column::PackLength, Expr::value(Option::<i64>::None))
            .col_expr(blob::Column::PackPendingTier, Expr::value(Option::<String>::None))
            .col_expr(blob::Column::State, Expr::value(blob::LIVE))
            .col_expr(blob::Column::UpdatedAt, Expr::value(now))
            .filter(blob::Column::Id.eq(blob.id))
            .filter(blob::Column::ObjectKey.eq(blob.object_key.clone()))
            .filter(blob::Column::State.eq(blob::MOVING))
            .exec(txn)
            .await
            .map_err(DbError::query("recording the new location"))?;
        if done.rows_affected != 1 {
            return Err(LifecycleError::Busy(format!("content {} moved concurrently", blob.id)));
        }
        Ok(match (blob.pack_id, blob.pack_length) {
            (Some(pack_id), Some(length)) => release_pack_member(txn, pack_id, length)
                .await
                .map_err(DbError::query("leaving the pack"))?,
            _ => None,
        })
    }

    /// Marks the blob `moving`, copies its bytes to `tier` under a key derived from the blob (so a re-run writes the
    /// same object) and verifies size and SHA-256 of the copy.
    async fn copy_blob(
        &self,
        file_type: FileType,
        blob: &blob::Model,
        tier: Tier,
    ) -> Result<(String, String), LifecycleError> {
        let store = &self.store;
        match blob.state.as_str() {
            blob::LIVE => {
                let marked = blob::Entity::update_many()
                    .col_expr(blob::Column::State, Expr::value(blob::MOVING))
                    .col_expr(blob::Column::UpdatedAt, Expr::value(self.now()))
                    .filter(blob::Column::Id.eq(blob.id))
                    .filter(blob::Column::State.eq(blob::LIVE))
                    .filter(blob::Column::ObjectKey.eq(blob.object_key.clone()))
                    .exec(&store.db.conn)
                    .await
                    .map_err(DbError::query("marking the content as moving"))?;
                if marked.rows_affected != 1 {
                    return Err(LifecycleError::Busy(format!(
                        "content {} changed concurrently",
                        blob.id
                    )));
                }
            }
            // A previous attempt of this work stopped half-way: resume it.
            blob::MOVING => {}
            other => {
                return Err(DocError::Integrity(format!("content {} is {other} and cannot move", blob.id)).into());
            }
        }
        let bucket = store.layout.bucket(tier).to_owned();
        let key = object_key(file_type, tier, &blob.sha256, &blob.uid);
        if blob.pack_id.is_some() {
            // A pack member leaves by its range; the pack stays for its other members.
            let stored = store.fetch_stored(blob).await?;
            store.objects.put(&bucket, &key, stored).await?;
        } else {
            store
                .objects
                .copy(&blob.bucket, &blob.object_key, &bucket, &key)
                .await?;
        }
        let copied = store.objects.get(&bucket, &key).await?;
        let verified = if copied.len() as i64 == blob.stored_size {
            store.verify_content(blob, copied).await
        } else {
            Err(format!("{} bytes instead of {}", copied.len(), blob.stored_size))
        };
        if let Err(why) = verified {
            let _ = store.objects.delete(&bucket, &key).await;
            return Err(DocError::Integrity(format!("the copy of content {} did not verify: {why}", blob.id)).into());
        }
        if let Some(pause) = self.pause_after_copy {
            tracing::warn!(
                pause_ms = pause.as_millis() as u64,
                "test pause between copy and database update"
            );
            tokio::time::sleep(pause).await;
        }
        Ok((bucket, key))
    }

    /// Whether a glacier blob has a finished restore that is still valid at `now`.
    pub fn is_restored(&self, blob: &blob::Model, now: DateTime<Utc>) -> bool {
        blob.restored_until.is_some_and(|until| until > now)
    }
}

fn file_type_of(row: &file_metadata::Model) -> FileType {
    row.file_type.parse().unwrap_or(FileType::Temp)
}
