//! Packs: small contents bound for a pack tier (cold and glacier by default) wait where they are, marked with
//! `pack_pending_tier`, until enough bytes wait (`DOSSIER_PACK_TARGET_BYTES`) or the oldest has waited
//! `DOSSIER_PACK_MAX_WAIT_HOURS` on the clock; then one pack object is written with all of them and an index, and
//! read back member by member with ranged GETs. A pack whose live bytes fall below `DOSSIER_PACK_COMPACT_BELOW` is
//! compacted: its live members are written into a new pack and the old one goes.
//!
//! Sealing and compaction follow the transition protocol: the pack object is written and verified first, then one
//! database transaction points the members at it (compare-and-set on each member's previous location), and only
//! then are the old objects removed. A crash before the transaction leaves every member where it was plus an
//! orphan pack object that `fsck` removes after its grace period; a crash after it leaves old objects for `fsck`.
//! One sealer at a time across the fleet (a leased lock), one compaction per pack (a lease per pack); the sealer
//! leaves the members of a compacting pack alone, and every member joins a pack by compare-and-set.

use chrono::{DateTime, Duration, Utc};
use dossier_core::Tier;
use dossier_db::DbError;
use dossier_db::entity::{blob, pack};
use dossier_documents::{DocError, release_pack_member};
use dossier_jobs::PackCompactJob;
use dossier_storage::codec::{self, Codec};
use dossier_storage::layout::pack_key;
use dossier_storage::pack::{PackWriter, read_index};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;

use crate::{Lifecycle, LifecycleError};

/// zstd level for members of sealed packs: written once, read rarely.
const PACK_LEVEL: i32 = 19;

/// What a `pack_compact` job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum CompactOutcome {
    Compacted { into: Option<i64>, members: usize },
    Skipped { why: String },
}

/// One member on its way into a pack.
struct Member {
    blob: blob::Model,
    codec: Codec,
    bytes: Vec<u8>,
}

impl Lifecycle {
    /// Seals packs for every pack tier whose waiting contents are due (enough bytes, or waited long enough);
    /// returns how many packs were written. Runs under the pack lock; a busy lock seals nothing.
    pub async fn seal_due_packs(&self, now: DateTime<Utc>) -> Result<u64, LifecycleError> {
        let holder = format!("seal-{}", uuid::Uuid::new_v4().simple());
        if !self.acquire_lease("pack", &holder, self.lease_ttl()).await? {
            return Ok(0);
        }
        let result = self.seal_due_packs_locked(now).await;
        self.release_lease("pack", &holder).await?;
        result
    }

    async fn seal_due_packs_locked(&self, now: DateTime<Utc>) -> Result<u64, LifecycleError> {
        let storage = &self.store.storage;
        let max_wait = Duration::hours(i64::try_from(storage.pack_max_wait_hours).unwrap_or(i64::MAX / 3_600_000));
        let mut sealed = 0;
        for tier in storage.pack_tiers.clone() {
            loop {
                let compacting = Query::select()
                    .column(pack::Column::Id)
                    .from(pack::Entity)
                    .and_where(pack::Column::State.eq(pack::COMPACTING))
                    .to_owned();
                let waiting = blob::Entity::find()
                    .filter(blob::Column::PackPendingTier.eq(tier.as_str()))
                    .filter(blob::Column::State.eq(blob::LIVE))
                    .filter(
                        Condition::any()
                            .add(blob::Column::PackId.is_null())
                            .add(blob::Column::PackId.not_in_subquery(compacting)),
                    )
                    .order_by_asc(blob::Column::Id)
                    .limit(10_000)
                    .all(&self.store.db.conn)
                    .await
                    .map_err(DbError::query("finding contents waiting for a pack"))?;
                if waiting.is_empty() {
                    break;
                }
                let total: u64 = waiting.iter().map(|b| b.stored_size.max(0) as u64).sum();
                let oldest = waiting.iter().map(|b| b.updated_at).min().unwrap_or(now);
                if total < storage.pack_target_bytes && oldest + max_wait > now {
                    break;
                }
                let mut batch = Vec::new();
                let mut bytes = 0u64;
                for b in waiting {
                    if bytes >= storage.pack_target_bytes {
                        break;
                    }
                    bytes += b.stored_size.max(0) as u64;
                    batch.push(b);
                }
                // A pass that seals nothing ends the loop; sealing can make more wait (re-homed delta bases).
                if self.seal_pack(tier, batch, now).await?.is_none() {
                    break;
                }
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Writes one pack of `members` in `tier` and points them at it; returns the pack's id, or `None` when no
    /// member could join (each changed meanwhile).
    async fn seal_pack(
        &self,
        tier: Tier,
        members: Vec<blob::Model>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, LifecycleError> {
        let store = &self.store;
        let mut ready = Vec::new();
        for blob in members {
            let stored = store.fetch_stored(&blob).await?;
            let content = match store.decode_blob(&blob, stored.clone()).await {
                Ok(content) => content,
                // Marked corrupt now: fsck reports it; the other members still get their pack.
                Err(DocError::Integrity(why)) => {
                    tracing::error!(blob = blob.id, why, "content left out of its pack");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // Whole contents are re-encoded with zstd where it beats what they have; deltas stay as they are.
            let (codec, bytes) = match codec::zstd_compress(&content, PACK_LEVEL, None) {
                Ok(z) if blob.delta_base_id.is_none() && z.len() < stored.len() => (Codec::Zstd, z),
                _ => (blob.codec.parse().unwrap_or(Codec::Raw), stored.to_vec()),
            };
            ready.push(Member { blob, codec, bytes });
        }
        if ready.is_empty() {
            return Ok(None);
        }
        let mut writer = PackWriter::new();
        let mut placed = Vec::new();
        for m in &ready {
            placed.push(writer.append(&m.blob.uid, &m.bytes));
        }
        let uid = uuid::Uuid::now_v7().simple().to_string();
        let bucket = store.layout.bucket(tier).to_owned();
        let key = pack_key(tier, &uid);
        let sealed_size = writer.len() as i64;
        let body = writer.finish();
        let object_size = body.len() as u64;
        store.objects.put(&bucket, &key, body.into()).await?;
        let written = store.objects.head(&bucket, &key).await?;
        if written.map(|m| m.size) != Some(object_size) {
            let _ = store.objects.delete(&bucket, &key).await;
            return Err(DocError::Integrity(format!("pack {key} did not verify after writing")).into());
        }
        self.failpoint("pack_written");

        let txn = store
            .db
            .conn
            .begin()
            .await
            .map_err(DbError::query("starting a transaction"))?;
        let pack = pack::ActiveModel {
            tier: Set(tier.to_string()),
            bucket: Set(bucket.clone()),
            object_key: Set(key.clone()),
            state: Set(pack::SEALED.to_owned()),
            sealed_size: Set(sealed_size),
            live_bytes: Set(0),
            member_count: Set(0),
            created_at: Set(now),
            sealed_at: Set(Some(now)),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(DbError::query("recording the pack"))?;
        let (mut joined, mut live_bytes) = (Vec::new(), 0i64);
        let mut emptied = Vec::new();
        for (m, (offset, length)) in ready.iter().zip(placed) {
            let (offset, length) = (offset as i64, length as i64);
            let mut update = blob::Entity::update_many()
                .col_expr(blob::Column::Tier, Expr::value(tier.to_string()))
                .col_expr(blob::Column::Bucket, Expr::value(bucket.clone()))
                .col_expr(blob::Column::ObjectKey, Expr::value(key.clone()))
                .col_expr(blob::Column::PackId, Expr::value(Some(pack.id)))
                .col_expr(blob::Column::PackOffset, Expr::value(Some(offset)))
                .col_expr(blob::Column::PackLength, Expr::value(Some(length)))
                .col_expr(blob::Column::Codec, Expr::value(m.codec.as_str()))
                .col_expr(blob::Column::StoredSize, Expr::value(length))
                .col_expr(blob::Column::PackPendingTier, Expr::value(Option::<String>::None))
                .col_expr(blob::Column::UpdatedAt, Expr::value(now))
                .filter(blob::Column::Id.eq(m.blob.id))
                .filter(blob::Column::State.eq(blob::LIVE))
                .filter(blob::Column::ObjectKey.eq(m.blob.object_key.clone()))
                .filter(blob::Column::PackPendingTier.eq(tier.as_str()));
            update = match m.blob.pack_offset {
                Some(old) => update.filter(blob::Column::PackOffset.eq(old)),
                None => update.filter(blob::Column::PackOffset.is_null()),
            };
            let done = update
                .exec(&txn)
                .await
                .map_err(DbError::query("pointing a member at its pack"))?;
            if done.rows_affected != 1 {
                continue;
            }
            if let (Some(old_pack), Some(old_length)) = (m.blob.pack_id, m.blob.pack_length)
                && let Some(p) = release_pack_member(&txn, old_pack, old_length)
                    .await
                    .map_err(DbError::query("leaving the old pack"))?
            {
                emptied.push(p);
            }
            live_bytes += length;
            joined.push(&m.blob);
        }
        if joined.is_empty() {
            drop(txn);
            let _ = store.objects.delete(&bucket, &key).await;
            return Ok(None);
        }
        pack::Entity::update_many()
            .col_expr(pack::Column::LiveBytes, Expr::value(live_bytes))
            .col_expr(pack::Column::MemberCount, Expr::value(joined.len() as i32))
            .filter(pack::Column::Id.eq(pack.id))
            .exec(&txn)
            .await
            .map_err(DbError::query("counting the pack's members"))?;
        txn.commit().await.map_err(DbError::query("committing the pack"))?;

        for b in &joined {
            store.vacate(b, None).await;
        }
        for p in &emptied {
            store.remove_pack(p).await;
        }
        tracing::info!(pack = pack.id, %tier, members = joined.len(), sealed_size, live_bytes, "pack sealed");
        // A delta now sitting colder may let its base follow.
        for b in joined.iter().filter(|b| b.delta_base_id.is_some()) {
            if let Some(base) = b.delta_base_id {
                let file_type = self.file_type_of_blob(base).await?;
                self.rehome_chain(base, file_type).await?;
            }
        }
        Ok(Some(pack.id))
    }

    /// Rewrites the live members of a mostly dead pack into a new pack; the old one goes once empty.
    /// One compaction per pack at a time (its own lease); the sealer leaves the members of a compacting pack alone.
    pub async fn compact_pack(&self, pack_id: i64) -> Result<CompactOutcome, LifecycleError> {
        let holder = format!("compact-{}", uuid::Uuid::new_v4().simple());
        let lease = format!("pack-compact:{pack_id}");
        if !self.acquire_lease(&lease, &holder, self.lease_ttl()).await? {
            return Err(LifecycleError::Busy(format!(
                "pack {pack_id} is being compacted elsewhere"
            )));
        }
        let result = self.compact_pack_locked(pack_id).await;
        self.release_lease(&lease, &holder).await?;
        result
    }

    async fn compact_pack_locked(&self, pack_id: i64) -> Result<CompactOutcome, LifecycleError> {
        let store = &self.store;
        let conn = &store.db.conn;
        let now = self.now();
        let Some(old) = pack::Entity::find_by_id(pack_id)
            .one(conn)
            .await
            .map_err(DbError::query("finding the pack"))?
        else {
            return Ok(CompactOutcome::Skipped {
                why: "the pack no longer exists".into(),
            });
        };
        let worth_it = (old.live_bytes as f64) < old.sealed_size as f64 * store.storage.pack_compact_below;
        if old.state == pack::DELETED || (old.state == pack::SEALED && !worth_it) {
            return Ok(CompactOutcome::Skipped {
                why: format!(
                    "the pack is {} with {} of {} bytes live",
                    old.state, old.live_bytes, old.sealed_size
                ),
            });
        }
        let tier: Tier = old.tier.parse().unwrap_or(Tier::Cold);
        pack::Entity::update_many()
            .col_expr(pack::Column::State, Expr::value(pack::COMPACTING))
            .filter(pack::Column::Id.eq(old.id))
            .filter(pack::Column::State.eq(pack::SEALED))
            .exec(conn)
            .await
            .map_err(DbError::query("marking the pack compacting"))?;

        // The database says where members lie; the pack's own index must agree before anything is rewritten.
        let body = store.objects.get(&old.bucket, &old.object_key).await?;
        let index = read_index(&body).map_err(|e| DocError::Integrity(format!("pack {}: {e}", old.id)))?;
        let members = blob::Entity::find()
            .filter(blob::Column::PackId.eq(old.id))
            .filter(blob::Column::State.eq(blob::LIVE))
            .all(conn)
            .await
            .map_err(DbError::query("finding the pack's members"))?;
        for m in &members {
            let agrees = index.iter().any(|e| {
                e.uid == m.uid && Some(e.offset as i64) == m.pack_offset && Some(e.length as i64) == m.pack_length
            });
            if !agrees {
                return Err(DocError::Integrity(format!(
                    "pack {} disagrees with the database about {}",
                    old.id, m.uid
                ))
                .into());
            }
        }
        self.failpoint("pack_compacting");
        let mut moving = Vec::new();
        for m in members {
            let marked = blob::Entity::update_many()
                .col_expr(blob::Column::PackPendingTier, Expr::value(tier.as_str()))
                .filter(blob::Column::Id.eq(m.id))
                .filter(blob::Column::PackId.eq(old.id))
                .filter(blob::Column::State.eq(blob::LIVE))
                .exec(conn)
                .await
                .map_err(DbError::query("marking a member for the new pack"))?;
            if marked.rows_affected == 1 {
                let mut m = m;
                m.pack_pending_tier = Some(tier.to_string());
                moving.push(m);
            }
        }
        let count = moving.len();
        let into = if moving.is_empty() {
            None
        } else {
            self.seal_pack(tier, moving, now).await?
        };
        tracing::info!(pack = old.id, into, members = count, "pack compacted");
        Ok(CompactOutcome::Compacted { into, members: count })
    }

    /// Packs worth compacting (or whose compaction was interrupted): one `pack_compact` job each.
    pub(crate) async fn plan_compactions(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<(u64, u64), LifecycleError> {
        let conn = &self.store.db.conn;
        let below = self.store.storage.pack_compact_below;
        let candidates: Vec<(i64, i64, i64, String)> = pack::Entity::find()
            .select_only()
            .column(pack::Column::Id)
            .column(pack::Column::LiveBytes)
            .column(pack::Column::SealedSize)
            .column(pack::Column::State)
            .filter(pack::Column::State.is_in([pack::SEALED, pack::COMPACTING]))
            .into_tuple()
            .all(conn)
            .await
            .map_err(DbError::query("finding packs to compact"))?;
        let due: Vec<i64> = candidates
            .into_iter()
            .filter(|(_, live, size, state)| state == pack::COMPACTING || (*live as f64) < *size as f64 * below)
            .map(|(id, ..)| id)
            .collect();
        if dry_run {
            return Ok((due.len() as u64, 0));
        }
        let mut enqueued = 0;
        for pack_id in &due {
            enqueued += u64::from(
                dossier_producer::enqueue(conn, &PackCompactJob { pack_id: *pack_id }, now)
                    .await?
                    .created,
            );
        }
        Ok((due.len() as u64, enqueued))
    }

    /// Leases of pack work last as long as the sweep's (`DOSSIER_SWEEP_LEASE_SECS`).
    fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.sweep_lease_secs.max(1))
    }

    /// Test-only crash points (`DOSSIER_TEST_FAILPOINT`): the process aborts there, as a `kill -9` would.
    fn failpoint(&self, name: &str) {
        if self.failpoint.as_deref() == Some(name) {
            tracing::error!(failpoint = name, "test failpoint: aborting");
            std::process::abort();
        }
    }
}
