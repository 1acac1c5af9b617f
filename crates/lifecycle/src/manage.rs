//! Expiry, promotion, pre-warming, legal holds, pins and manual moves, and the job-application facts the policies
//! need.

use chrono::{DateTime, Utc};
use dossier_core::ids::{validate_key, validate_user_id};
use dossier_core::policy::Action;
use dossier_core::{FileType, Tier};
use dossier_db::DbError;
use dossier_db::entity::{file_metadata, job_application, user};
use dossier_documents::{DocError, facts_of, schedule_of};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait};
use serde::Serialize;

use crate::transition::{MoveKind, TransitionOutcome};
use crate::{Lifecycle, LifecycleError, LogEntry, log};

/// What an expire job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ExpireOutcome {
    Expired,
    Skipped { why: String },
}

/// What `dossier app set` records.
#[derive(Debug, Clone, Default)]
pub struct ApplicationUpdate {
    pub status: Option<String>,
    pub interview_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Lifecycle {
    /// Deletes one expired version: the audit row first, then the row, then bytes nothing else needs.
    pub async fn expire(&self, file_id: i64, job_id: Option<&str>) -> Result<ExpireOutcome, LifecycleError> {
        let store = &self.store;
        let now = self.now();
        let Some(row) = file_metadata::Entity::find_by_id(file_id)
            .one(&store.db.conn)
            .await
            .map_err(DbError::query("finding the version"))?
        else {
            return Ok(ExpireOutcome::Skipped {
                why: "the version no longer exists".into(),
            });
        };
        let policy = store.policies.get(row.file_type.parse().unwrap_or(FileType::Temp));
        let facts = facts_of(&row);
        if policy.due_now(&facts, now).map(|d| d.action) != Some(Action::Expire) {
            let (next, _) = schedule_of(policy, &facts);
            file_metadata::Entity::update_many()
                .col_expr(file_metadata::Column::NextDueAt, Expr::value(next))
                .filter(file_metadata::Column::Id.eq(row.id))
                .exec(&store.db.conn)
                .await
                .map_err(DbError::query("rescheduling a version"))?;
            let why = if facts.frozen {
                "under a legal hold or pinned"
            } else {
                "not due"
            };
            return Ok(ExpireOutcome::Skipped { why: why.into() });
        }
        let detail = serde_json::json!({ "version": row.version_no, "type": row.file_type, "sha256": row.content_hash, "job_id": job_id });
        store
            .audit(
                &row.user_id,
                "expire",
                Some(&row.doc_key),
                &format!("policy:{}", row.file_type),
                detail,
            )
            .await?;
        let released = store.delete_rows(std::slice::from_ref(&row)).await?;
        let entry = LogEntry {
            file_id: Some(row.id),
            blob_id: Some(row.blob_id),
            user_id: &row.user_id,
            from: Some(&row.storage_tier),
            to: "expired",
            reason: "expiry",
            policy: Some(&row.file_type),
            job_id,
        };
        log(&store.db.conn, entry, now).await?;
        store.remove_released(&released).await;
        self.rehome_after_delete(&[row.blob_id]).await?;
        tracing::info!(file = row.id, "expired");
        Ok(ExpireOutcome::Expired)
    }

    /// Deletes every version of a user's document (audited, as [`dossier_documents::DocumentStore::delete`]); content
    /// still shared with other documents then moves to the hottest tier those still need.
    pub async fn delete(&self, user: &str, key: &str, reason: &str) -> Result<usize, LifecycleError> {
        let rows = self.versions(user, key).await?;
        let blobs: Vec<i64> = rows.iter().map(|r| r.blob_id).collect();
        let deleted = self.store.delete(user, key, reason).await?;
        self.rehome_after_delete(&blobs).await?;
        Ok(deleted)
    }

    async fn rehome_after_delete(&self, blob_ids: &[i64]) -> Result<(), LifecycleError> {
        for blob_id in blob_ids {
            let file_type = self.file_type_of_blob(*blob_id).await?;
            self.rehome_chain(*blob_id, file_type).await?;
        }
        Ok(())
    }

    /// Brings a warm or cold version read often back to hot.
    pub async fn promote(&self, file_id: i64, job_id: Option<&str>) -> Result<TransitionOutcome, LifecycleError> {
        self.transition(file_id, Tier::Hot, MoveKind::Promotion, job_id).await
    }

    /// Makes an application's current documents hot (glacier ones are restored first) ahead of an interview.
    pub async fn prewarm(
        &self,
        user_id: &str,
        application_id: &str,
        interview_at: DateTime<Utc>,
        job_id: Option<&str>,
    ) -> Result<Vec<TransitionOutcome>, LifecycleError> {
        let conn = &self.store.db.conn;
        let docs = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.eq(user_id))
            .filter(file_metadata::Column::JobApplicationId.eq(application_id))
            .filter(file_metadata::Column::IsActive.eq(true))
            .all(conn)
            .await
            .map_err(DbError::query("reading an application's documents"))?;
        let mut outcomes = Vec::new();
        let mut waiting = false;
        for d in docs {
            let outcome = self.transition(d.id, Tier::Hot, MoveKind::Prewarm, job_id).await?;
            waiting |= matches!(outcome, TransitionOutcome::Restoring { .. });
            outcomes.push(outcome);
        }
        if !waiting {
            job_application::Entity::update_many()
                .col_expr(job_application::Column::PrewarmedFor, Expr::value(Some(interview_at)))
                .filter(job_application::Column::UserId.eq(user_id))
                .filter(job_application::Column::ApplicationId.eq(application_id))
                .exec(conn)
                .await
                .map_err(DbError::query("recording the pre-warm"))?;
        }
        Ok(outcomes)
    }

    /// Every version of a user's document, newest first; "not found" for anyone else's.
    async fn versions(&self, user: &str, key: &str) -> Result<Vec<file_metadata::Model>, LifecycleError> {
        validate_user_id(user).map_err(DocError::from)?;
        validate_key(key).map_err(DocError::from)?;
        let rows = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.eq(user))
            .filter(file_metadata::Column::DocKey.eq(key))
            .order_by_desc(file_metadata::Column::VersionNo)
            .all(&self.store.db.conn)
            .await
            .map_err(DbError::query("finding the document"))?;
        if rows.is_empty() {
            return Err(DocError::NotFound(format!("no document {key:?} for user {user:?}")).into());
        }
        Ok(rows)
    }

    /// Puts every version under a legal hold, or lifts it (audited). A held document is never moved or deleted by
    /// policy, nor deleted on request.
    pub async fn set_hold(&self, user: &str, key: &str, on: bool) -> Result<usize, LifecycleError> {
        let rows = self.versions(user, key).await?;
        let store = &self.store;
        let action = if on { "legal_hold_on" } else { "legal_hold_off" };
        store
            .audit(
                user,
                action,
                Some(key),
                "request",
                serde_json::json!({ "versions": rows.len() }),
            )
            .await?;
        let txn = store
            .db
            .conn
            .begin()
            .await
            .map_err(DbError::query("starting a transaction"))?;
        for row in &rows {
            let mut facts = facts_of(row);
            facts.frozen = on || row.pinned;
            let policy = store.policies.get(row.file_type.parse().unwrap_or(FileType::Temp));
            let (next, _) = schedule_of(policy, &facts);
            file_metadata::Entity::update_many()
                .col_expr(file_metadata::Column::LegalHold, Expr::value(on))
                .col_expr(file_metadata::Column::NextDueAt, Expr::value(next))
                .filter(file_metadata::Column::Id.eq(row.id))
                .exec(&txn)
                .await
                .map_err(DbError::query("setting the legal hold"))?;
        }
        txn.commit()
            .await
            .map_err(DbError::query("committing the legal hold"))?;
        Ok(rows.len())
    }

    /// Moves the current version to `to` now; with `pin` it stays there whatever its policy says until unpinned by a
    /// later move without `pin`.
    pub async fn move_document(
        &self,
        user: &str,
        key: &str,
        to: Tier,
        pin: bool,
    ) -> Result<TransitionOutcome, LifecycleError> {
        let rows = self.versions(user, key).await?;
        if rows.iter().any(|r| r.legal_hold) {
            return Err(
                DocError::Conflict(format!("document {key:?} is under a legal hold: it cannot be moved")).into(),
            );
        }
        let current = &rows[0];
        let store = &self.store;
        let mut facts = facts_of(current);
        facts.frozen = pin || current.legal_hold;
        facts.tier = to;
        let policy = store.policies.get(current.file_type.parse().unwrap_or(FileType::Temp));
        let (next, _) = schedule_of(policy, &facts);
        file_metadata::Entity::update_many()
            .col_expr(file_metadata::Column::Pinned, Expr::value(pin))
            .col_expr(file_metadata::Column::NextDueAt, Expr::value(next))
            .filter(file_metadata::Column::Id.eq(current.id))
            .exec(&store.db.conn)
            .await
            .map_err(DbError::query("pinning the document"))?;
        let outcome = self.transition(current.id, to, MoveKind::Manual, None).await?;
        if let TransitionOutcome::Restoring { eta, job_id } = &outcome {
            return Err(DocError::Restoring {
                eta: *eta,
                job_id: job_id.clone(),
            }
            .into());
        }
        Ok(outcome)
    }

    /// Records what the policies need about a job application, creating it on first use.
    pub async fn set_application(
        &self,
        user: &str,
        application_id: &str,
        update: ApplicationUpdate,
    ) -> Result<(), LifecycleError> {
        validate_user_id(user).map_err(DocError::from)?;
        validate_key(application_id).map_err(|e| DocError::Invalid(format!("invalid application id: {e}")))?;
        let now = self.now();
        let conn = &self.store.db.conn;
        user::Entity::insert(user::ActiveModel {
            id: Set(user.to_owned()),
            created_at: Set(now),
        })
        .on_conflict_do_nothing_on([user::Column::Id])
        .exec(conn)
        .await
        .map_err(DbError::query("recording the user"))?;
        job_application::Entity::insert(job_application::ActiveModel {
            user_id: Set(user.to_owned()),
            application_id: Set(application_id.to_owned()),
            applied_at: Set(Some(now)),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([job_application::Column::UserId, job_application::Column::ApplicationId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .map_err(DbError::query("recording the application"))?;
        let existing = job_application::Entity::find()
            .filter(job_application::Column::UserId.eq(user))
            .filter(job_application::Column::ApplicationId.eq(application_id))
            .one(conn)
            .await
            .map_err(DbError::query("finding the application"))?
            .ok_or_else(|| LifecycleError::Busy("application vanished".into()))?;
        let mut am: job_application::ActiveModel = existing.into();
        if let Some(s) = update.status {
            am.status = Set(Some(s));
        }
        if let Some(t) = update.interview_at {
            am.interview_at = Set(Some(t));
        }
        if let Some(t) = update.closed_at {
            am.closed_at = Set(Some(t));
        }
        am.updated_at = Set(now);
        am.update(conn)
            .await
            .map_err(DbError::query("updating the application"))?;
        Ok(())
    }
}
