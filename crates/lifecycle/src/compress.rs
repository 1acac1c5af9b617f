//! `compress` jobs: content stored raw and never looked at (stored with `DOSSIER_COMPRESS=job`, or before
//! compression existed) is probed once; where LZ4 saves the configured fraction it is rewritten LZ4-framed under a new
//! object key, otherwise it is only marked as decided so no job probes it again.
//!
//! The rewrite is the transition protocol in one tier: write the new object, verify it decodes to the recorded
//! SHA-256, compare-and-set the blob's codec and location in the database, then delete the old object. A crash
//! leaves the blob as it was plus an orphan object that `fsck` removes after its grace period.

use chrono::{DateTime, Utc};
use dossier_core::config::CompressMode;
use dossier_core::{FileType, Tier};
use dossier_db::DbError;
use dossier_db::entity::{blob, file_metadata};
use dossier_jobs::CompressJob;
use dossier_storage::codec::{self, Codec};
use dossier_storage::layout::object_key;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::{Lifecycle, LifecycleError};

/// What a `compress` job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum CompressOutcome {
    Compressed {
        stored_size: i64,
    },
    /// LZ4 would not save enough: kept raw, and recorded as decided.
    KeptRaw,
    Skipped {
        why: String,
    },
}

impl Lifecycle {
    pub async fn compress(&self, blob_id: i64) -> Result<CompressOutcome, LifecycleError> {
        let store = &self.store;
        let conn = &store.db.conn;
        let now = self.now();
        let Some(blob) = blob::Entity::find_by_id(blob_id)
            .one(conn)
            .await
            .map_err(DbError::query("finding the content"))?
        else {
            return Ok(CompressOutcome::Skipped {
                why: "the content no longer exists".into(),
            });
        };
        if blob.state != blob::LIVE || blob.codec != Codec::Raw.as_str() || blob.pack_id.is_some() {
            return Ok(CompressOutcome::Skipped {
                why: format!("content is {} and {}", blob.state, blob.codec),
            });
        }
        if blob.codec_checked_at.is_some() {
            return Ok(CompressOutcome::Skipped {
                why: "compression already decided".into(),
            });
        }
        let tier: Tier = blob.tier.parse().unwrap_or(Tier::Hot);
        if tier == Tier::Glacier && !self.is_restored(&blob, now) {
            return Ok(CompressOutcome::Skipped {
                why: "content in glacier is compressed when it is next restored".into(),
            });
        }
        let (content, _) = store.read_blob(&blob).await?;
        let min_saving = store.storage.compress_min_saving;
        let framed = if codec::lz4_worth_it(&content, min_saving) {
            Some(codec::lz4_compress(&content))
                .filter(|f| (f.len() as f64) <= content.len() as f64 * (1.0 - min_saving))
        } else {
            None
        };
        let Some(framed) = framed else {
            self.mark_checked(&blob, now).await?;
            return Ok(CompressOutcome::KeptRaw);
        };

        let file_type = self.file_type_of_blob(blob.id).await?;
        let uid = uuid::Uuid::now_v7().simple().to_string();
        let key = object_key(file_type, tier, &blob.sha256, &uid);
        let stored_size = framed.len() as i64;
        store.objects.put(&blob.bucket, &key, framed.clone().into()).await?;
        let check = codec::lz4_decompress(&framed, content.len() as u64).map(|d| d == content.as_ref());
        if check != Ok(true) {
            let _ = store.objects.delete(&blob.bucket, &key).await;
            return Err(
                dossier_documents::DocError::Integrity(format!("LZ4 of content {} did not verify", blob.id)).into(),
            );
        }
        let done = blob::Entity::update_many()
            .col_expr(blob::Column::Codec, Expr::value(Codec::Lz4.as_str()))
            .col_expr(blob::Column::StoredSize, Expr::value(stored_size))
            .col_expr(blob::Column::Uid, Expr::value(uid))
            .col_expr(blob::Column::ObjectKey, Expr::value(key.clone()))
            .col_expr(blob::Column::CodecCheckedAt, Expr::value(Some(now)))
            .col_expr(blob::Column::UpdatedAt, Expr::value(now))
            .filter(blob::Column::Id.eq(blob.id))
            .filter(blob::Column::State.eq(blob::LIVE))
            .filter(blob::Column::ObjectKey.eq(blob.object_key.clone()))
            .exec(conn)
            .await
            .map_err(DbError::query("recording the compressed content"))?;
        if done.rows_affected != 1 {
            let _ = store.objects.delete(&blob.bucket, &key).await;
            return Err(LifecycleError::Busy(format!(
                "content {} changed concurrently",
                blob.id
            )));
        }
        store.vacate(&blob, None).await;
        tracing::info!(blob = blob.id, size = blob.size, stored_size, "content compressed");
        Ok(CompressOutcome::Compressed { stored_size })
    }

    async fn mark_checked(&self, blob: &blob::Model, now: DateTime<Utc>) -> Result<(), LifecycleError> {
        blob::Entity::update_many()
            .col_expr(blob::Column::CodecCheckedAt, Expr::value(Some(now)))
            .filter(blob::Column::Id.eq(blob.id))
            .exec(&self.store.db.conn)
            .await
            .map_err(DbError::query("recording the compression decision"))?;
        Ok(())
    }

    /// The file type whose area a blob's objects live in (any version referencing it).
    pub(crate) async fn file_type_of_blob(&self, blob_id: i64) -> Result<FileType, LifecycleError> {
        let row = file_metadata::Entity::find()
            .filter(file_metadata::Column::BlobId.eq(blob_id))
            .one(&self.store.db.conn)
            .await
            .map_err(DbError::query("finding a version of the content"))?;
        Ok(row.and_then(|r| r.file_type.parse().ok()).unwrap_or(FileType::Temp))
    }

    /// With `DOSSIER_COMPRESS=job`: one `compress` job for each raw blob never looked at, a page per sweep.
    pub(crate) async fn plan_compression(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<(u64, u64), LifecycleError> {
        if self.store.storage.compress != CompressMode::Job {
            return Ok((0, 0));
        }
        let conn = &self.store.db.conn;
        let ids: Vec<i64> = blob::Entity::find()
            .select_only()
            .column(blob::Column::Id)
            .filter(blob::Column::State.eq(blob::LIVE))
            .filter(blob::Column::Codec.eq(Codec::Raw.as_str()))
            .filter(blob::Column::CodecCheckedAt.is_null())
            .filter(blob::Column::PackId.is_null())
            .filter(blob::Column::Size.gt(0))
            .order_by_asc(blob::Column::Id)
            .limit(self.config.sweep_batch)
            .into_tuple()
            .all(conn)
            .await
            .map_err(DbError::query("finding content to compress"))?;
        if dry_run {
            return Ok((ids.len() as u64, 0));
        }
        let mut enqueued = 0;
        for blob_id in &ids {
            let job = CompressJob { blob_id: *blob_id };
            enqueued += u64::from(dossier_producer::enqueue(conn, &job, now).await?.created);
        }
        Ok((ids.len() as u64, enqueued))
    }
}
