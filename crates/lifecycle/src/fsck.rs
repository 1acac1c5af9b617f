//! `dossier fsck`: objects no row points to (removed once older than the grace period), rows whose object is missing
//! (reported, never dropped), and deletions a crash left half done (finished).
//!
//! An object's age comes from the blob id inside its key (a UUIDv7, which carries its creation time), so no
//! backend-specific timestamps are needed. Objects of a blob that is `moving` are never touched: a transition may be
//! between its copy and its commit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use dossier_db::DbError;
use dossier_db::entity::{blob, file_metadata, pack};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;

use crate::{Lifecycle, LifecycleError};

/// One problem fsck found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub bucket: String,
    pub object_key: String,
    /// For missing objects: the versions that need them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    pub dry_run: bool,
    pub objects_scanned: u64,
    pub blobs_checked: u64,
    /// Unreferenced objects older than the grace period (removed unless dry run).
    pub orphans_removed: Vec<Finding>,
    /// Unreferenced objects still inside the grace period (left alone).
    pub orphans_recent: u64,
    /// Live content whose object is gone: reported, never silently dropped.
    pub missing: Vec<Finding>,
    /// Contents no version references any more whose deletion was interrupted (finished unless dry run).
    pub deletions_finished: u64,
    /// Contents marked corrupt whose stored bytes still fail verification: reported, never served.
    pub corrupt: Vec<Finding>,
    /// Contents marked corrupt whose stored bytes verify again (repaired or restored by an operator): live again
    /// unless dry run.
    pub corrupt_cleared: u64,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.orphans_removed.is_empty()
            && self.missing.is_empty()
            && self.deletions_finished == 0
            && self.corrupt.is_empty()
            && self.corrupt_cleared == 0
    }
}

/// The creation time of a blob uid (UUIDv7, simple form), if it is one.
fn uid_time(uid: &str) -> Option<DateTime<Utc>> {
    let millis = u64::from_str_radix(uid.get(0..12)?, 16).ok()?;
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(millis).ok()?)
}

/// The blob uid at the end of a Dossier object key (`<area><xx>/<sha256>.<uid>`).
fn uid_of_key(key: &str) -> Option<&str> {
    key.rsplit_once('.').map(|(_, uid)| uid).filter(|uid| uid.len() == 32)
}

impl Lifecycle {
    pub async fn fsck(&self, dry_run: bool) -> Result<FsckReport, LifecycleError> {
        let store = &self.store;
        let conn = &store.db.conn;
        let mut report = FsckReport {
            dry_run,
            ..Default::default()
        };
        // Real time: grace protects in-flight writes of this fleet, which happen in real time.
        let wall = Utc::now();
        let grace = Duration::hours(self.config.fsck_grace_hours as i64);

        let blobs = blob::Entity::find()
            .all(conn)
            .await
            .map_err(DbError::query("reading contents"))?;
        report.blobs_checked = blobs.len() as u64;
        let mut deleting = Vec::new();
        let mut referenced: HashSet<(String, String)> = HashSet::new();
        // A pack's object is referenced while its row is not `deleted` (members point into it, or it is compacting).
        for p in pack::Entity::find()
            .filter(pack::Column::State.ne(pack::DELETED))
            .all(conn)
            .await
            .map_err(DbError::query("reading packs"))?
        {
            referenced.insert((p.bucket, p.object_key));
        }
        let mut by_uid: HashMap<String, &blob::Model> = HashMap::new();
        for b in &blobs {
            by_uid.insert(b.uid.clone(), b);
            if b.state == blob::DELETING {
                deleting.push(b.clone());
            } else {
                referenced.insert((b.bucket.clone(), b.object_key.clone()));
            }
        }

        let mut present: HashSet<(String, String)> = HashSet::new();
        for (_, bucket) in store.layout.all() {
            for object in store.objects.list(bucket, "").await? {
                report.objects_scanned += 1;
                let id = (bucket.to_owned(), object.key.clone());
                present.insert(id.clone());
                if referenced.contains(&id) {
                    continue;
                }
                let uid = uid_of_key(&object.key);
                let owner = uid.and_then(|u| by_uid.get(u));
                if owner.is_some_and(|b| b.state == blob::MOVING || b.state == blob::DELETING) {
                    continue;
                }
                // A leftover of a blob still alive (an old source after a move) ages from the blob's last change;
                // anything else from its creation.
                let born = owner.map(|b| b.updated_at).or_else(|| uid.and_then(uid_time));
                let old_enough = born.is_some_and(|t| t + grace <= wall);
                if !old_enough {
                    report.orphans_recent += 1;
                    continue;
                }
                if !dry_run {
                    store.objects.delete(bucket, &object.key).await?;
                }
                report.orphans_removed.push(Finding {
                    bucket: bucket.to_owned(),
                    object_key: object.key,
                    documents: vec![],
                });
            }
        }

        for b in blobs
            .iter()
            .filter(|b| b.state == blob::LIVE || b.state == blob::MOVING)
        {
            if present.contains(&(b.bucket.clone(), b.object_key.clone())) {
                continue;
            }
            let rows = file_metadata::Entity::find()
                .filter(file_metadata::Column::BlobId.eq(b.id))
                .all(conn)
                .await
                .map_err(DbError::query("finding versions of missing content"))?;
            let documents = rows
                .iter()
                .map(|r| format!("{}:{} v{}", r.user_id, r.doc_key, r.version_no))
                .collect();
            tracing::error!(blob = b.id, bucket = %b.bucket, "content recorded but its object is missing");
            report.missing.push(Finding {
                bucket: b.bucket.clone(),
                object_key: b.object_key.clone(),
                documents,
            });
        }

        for b in blobs.iter().filter(|b| b.state == blob::CORRUPT) {
            let verified = match store.fetch_stored(b).await {
                Ok(stored) => store.verify_content(b, stored).await,
                Err(e) => Err(e.to_string()),
            };
            match verified {
                Ok(()) => {
                    report.corrupt_cleared += 1;
                    if !dry_run {
                        blob::Entity::update_many()
                            .col_expr(blob::Column::State, Expr::value(blob::LIVE))
                            .filter(blob::Column::Id.eq(b.id))
                            .filter(blob::Column::State.eq(blob::CORRUPT))
                            .exec(conn)
                            .await
                            .map_err(DbError::query("clearing a corrupt mark"))?;
                    }
                }
                Err(why) => {
                    tracing::error!(blob = b.id, why, "content still fails verification");
                    let rows = file_metadata::Entity::find()
                        .filter(file_metadata::Column::BlobId.eq(b.id))
                        .all(conn)
                        .await
                        .map_err(DbError::query("finding versions of corrupt content"))?;
                    report.corrupt.push(Finding {
                        bucket: b.bucket.clone(),
                        object_key: b.object_key.clone(),
                        documents: rows
                            .iter()
                            .map(|r| format!("{}:{} v{}", r.user_id, r.doc_key, r.version_no))
                            .collect(),
                    });
                }
            }
        }

        // Packs emptied whose object could not be removed then.
        let empty_packs = pack::Entity::find()
            .filter(pack::Column::State.eq(pack::DELETED))
            .all(conn)
            .await
            .map_err(DbError::query("reading emptied packs"))?;
        report.deletions_finished = (deleting.len() + empty_packs.len()) as u64;
        if !dry_run {
            store.remove_released(&deleting).await;
            for p in &empty_packs {
                store.remove_pack(p).await;
            }
        }
        Ok(report)
    }
}
