//! The sweep: one at a time across the fleet (a leased lock), it pages through versions whose `next_due_at` has
//! passed, by that index, and enqueues their work through the outbox with idempotency keys, so two sweeps at once
//! produce no double work. It also completes due glacier restores and pre-warms applications with an interview
//! coming, and keeps active users' hot documents in the cache.

use chrono::{DateTime, Duration, Utc};
use dossier_core::policy::Action;
use dossier_core::{FileType, Tier};
use dossier_db::DbError;
use dossier_db::entity::{blob, file_metadata, job_application, lease, restore};
use dossier_documents::{facts_of, schedule_of};
use dossier_jobs::{ExpireJob, PrewarmJob, RestoreJob, TransitionJob};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set, TransactionTrait,
};
use serde::Serialize;

use crate::{Lifecycle, LifecycleError};

/// One piece of work the sweep found due.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedWork {
    pub user: String,
    pub key: String,
    pub version: i32,
    /// `transition`, `expire`, `restore` or `prewarm`.
    pub work: String,
    pub from: Option<Tier>,
    pub to: Option<Tier>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// Estimated monthly storage cost of this version's bytes before and after (USD).
    pub monthly_cost_before_usd: f64,
    pub monthly_cost_after_usd: f64,
}

/// What one sweep did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepReport {
    pub as_of: Option<DateTime<Utc>>,
    pub dry_run: bool,
    /// Another process holds the sweep lease; this sweep did nothing.
    pub skipped: bool,
    pub scanned: u64,
    pub enqueued: u64,
    pub planned: Vec<PlannedWork>,
    pub cache_warmed: u64,
    /// Raw content never looked at, planned for a `compress` job (`DOSSIER_COMPRESS=job`).
    pub compressions: u64,
    /// Packs written for contents that waited long enough (or filled one).
    pub packs_sealed: u64,
    /// Mostly dead packs planned for a `pack_compact` job.
    pub compactions: u64,
    pub monthly_saving_usd: f64,
}

/// One page of versions due by `now`, after the keyset position `after`, by the `next_due_at` index.
pub fn due_page(now: DateTime<Utc>, after: Option<(DateTime<Utc>, i64)>, batch: u64) -> Select<file_metadata::Entity> {
    let mut query = file_metadata::Entity::find().filter(file_metadata::Column::NextDueAt.lte(now));
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any().add(file_metadata::Column::NextDueAt.gt(at)).add(
                Condition::all()
                    .add(file_metadata::Column::NextDueAt.eq(at))
                    .add(file_metadata::Column::Id.gt(id)),
            ),
        );
    }
    query
        .order_by_asc(file_metadata::Column::NextDueAt)
        .order_by_asc(file_metadata::Column::Id)
        .limit(batch)
}

impl Lifecycle {
    fn cost_of(&self, tier: Tier, bytes: i64) -> f64 {
        let cost = &self.store.cost;
        cost.monthly_storage_usd(tier, cost.billable_bytes(tier, bytes.max(0) as u64))
    }

    /// Takes or renews the named lease for `holder` until `ttl` from the real time; false when someone else holds it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, LifecycleError> {
        let conn = &self.store.db.conn;
        let wall = Utc::now();
        let expires_at = wall + Duration::from_std(ttl).unwrap_or(Duration::minutes(5));
        lease::Entity::insert(lease::ActiveModel {
            name: Set(name.to_owned()),
            holder: Set(String::new()),
            expires_at: Set(wall - Duration::seconds(1)),
        })
        .on_conflict(OnConflict::column(lease::Column::Name).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await
        .map_err(DbError::query("creating the lease"))?;
        let taken = lease::Entity::update_many()
            .col_expr(lease::Column::Holder, Expr::value(holder))
            .col_expr(lease::Column::ExpiresAt, Expr::value(expires_at))
            .filter(lease::Column::Name.eq(name))
            .filter(
                Condition::any()
                    .add(lease::Column::ExpiresAt.lt(wall))
                    .add(lease::Column::Holder.eq(holder)),
            )
            .exec(conn)
            .await
            .map_err(DbError::query("taking the lease"))?;
        Ok(taken.rows_affected == 1)
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), LifecycleError> {
        lease::Entity::update_many()
            .col_expr(lease::Column::ExpiresAt, Expr::value(Utc::now() - Duration::seconds(1)))
            .filter(lease::Column::Name.eq(name))
            .filter(lease::Column::Holder.eq(holder))
            .exec(&self.store.db.conn)
            .await
            .map_err(DbError::query("releasing the lease"))?;
        Ok(())
    }

    /// Plans due work as of the clock's now and, unless `dry_run`, enqueues it.
    pub async fn sweep(&self, dry_run: bool) -> Result<SweepReport, LifecycleError> {
        let now = self.now();
        let mut report = SweepReport {
            as_of: Some(now),
            dry_run,
            ..Default::default()
        };
        let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        if !dry_run {
            let ttl = std::time::Duration::from_secs(self.config.sweep_lease_secs.max(1));
            if !self.acquire_lease("sweep", &holder, ttl).await? {
                report.skipped = true;
                return Ok(report);
            }
        }
        let result = self.sweep_locked(now, dry_run, &mut report).await;
        if !dry_run {
            self.release_lease("sweep", &holder).await?;
        }
        result?;
        report.monthly_saving_usd = report
            .planned
            .iter()
            .map(|p| p.monthly_cost_before_usd - p.monthly_cost_after_usd)
            .sum();
        Ok(report)
    }

    async fn sweep_locked(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut SweepReport,
    ) -> Result<(), LifecycleError> {
        // Packs first: what waited since earlier sweeps is sealed before this sweep's own jobs start moving contents.
        if !dry_run {
            report.packs_sealed = self.seal_due_packs(now).await?;
        }
        let conn = &self.store.db.conn;
        let batch = self.config.sweep_batch;
        let mut after: Option<(DateTime<Utc>, i64)> = None;
        loop {
            let rows = due_page(now, after, batch)
                .all(conn)
                .await
                .map_err(DbError::query("reading due versions"))?;
            if rows.is_empty() {
                break;
            }
            report.scanned += rows.len() as u64;
            after = rows.last().and_then(|r| r.next_due_at.map(|at| (at, r.id)));
            let txn = conn.begin().await.map_err(DbError::query("starting a transaction"))?;
            for row in &rows {
                let policy = self.store.policies.get(row.file_type.parse().unwrap_or(FileType::Temp));
                let facts = facts_of(row);
                let from = facts.tier;
                let Some(due) = policy.due_now(&facts, now) else {
                    // Nothing due after all (a hold, a pin, or a policy change): reschedule.
                    if !dry_run {
                        let (next, _) = schedule_of(policy, &facts);
                        file_metadata::Entity::update_many()
                            .col_expr(file_metadata::Column::NextDueAt, Expr::value(next))
                            .filter(file_metadata::Column::Id.eq(row.id))
                            .exec(&txn)
                            .await
                            .map_err(DbError::query("rescheduling a version"))?;
                    }
                    continue;
                };
                let (work, to, after_cost) = match due.action {
                    Action::Expire => ("expire", None, 0.0),
                    Action::Transition(to) => ("transition", Some(to), self.cost_of(to, row.file_size)),
                };
                report.planned.push(PlannedWork {
                    user: row.user_id.clone(),
                    key: row.doc_key.clone(),
                    version: row.version_no,
                    work: work.to_owned(),
                    from: Some(from),
                    to,
                    reason: due.reason.as_str().to_owned(),
                    due_at: Some(due.at),
                    monthly_cost_before_usd: self.cost_of(from, row.file_size),
                    monthly_cost_after_usd: after_cost,
                });
                if dry_run {
                    continue;
                }
                let enqueued = match due.action {
                    Action::Expire => dossier_producer::enqueue(&txn, &ExpireJob { file_id: row.id }, now).await?,
                    Action::Transition(to) => {
                        let job = TransitionJob {
                            file_id: row.id,
                            from,
                            to,
                            reason: due.reason.as_str().to_owned(),
                        };
                        dossier_producer::enqueue(&txn, &job, now).await?
                    }
                };
                report.enqueued += u64::from(enqueued.created);
            }
            txn.commit()
                .await
                .map_err(DbError::query("committing the sweep page"))?;
            if (rows.len() as u64) < batch {
                break;
            }
        }
        self.sweep_restores(now, dry_run, report).await?;
        self.sweep_interviews(now, dry_run, report).await?;
        let (compressions, enqueued) = self.plan_compression(now, dry_run).await?;
        report.compressions = compressions;
        report.enqueued += enqueued;
        let (compactions, enqueued) = self.plan_compactions(now, dry_run).await?;
        report.compactions = compactions;
        report.enqueued += enqueued;
        if !dry_run {
            report.cache_warmed = self.warm_active_users(now).await?;
        }
        Ok(())
    }

    async fn sweep_restores(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut SweepReport,
    ) -> Result<(), LifecycleError> {
        let conn = &self.store.db.conn;
        let due = restore::Entity::find()
            .filter(restore::Column::OpenBlobId.is_not_null())
            .filter(restore::Column::ReadyAt.lte(now))
            .limit(self.config.sweep_batch)
            .all(conn)
            .await
            .map_err(DbError::query("reading due restores"))?;
        for r in due {
            if let Some(row) = file_metadata::Entity::find_by_id(r.file_id)
                .one(conn)
                .await
                .map_err(DbError::query("finding a version"))?
            {
                report.planned.push(PlannedWork {
                    user: row.user_id.clone(),
                    key: row.doc_key.clone(),
                    version: row.version_no,
                    work: "restore".into(),
                    from: Some(Tier::Glacier),
                    to: Some(Tier::Glacier),
                    reason: "restore".into(),
                    due_at: Some(r.ready_at),
                    monthly_cost_before_usd: 0.0,
                    monthly_cost_after_usd: 0.0,
                });
            }
            if !dry_run {
                let job = RestoreJob {
                    file_id: r.file_id,
                    blob_id: r.blob_id,
                    ready_at: r.ready_at,
                };
                report.enqueued += u64::from(dossier_producer::enqueue(conn, &job, now).await?.created);
            }
        }
        Ok(())
    }

    /// Applications whose interview is close enough that their documents must be made hot now: the lead covers the
    /// configured margin plus the restore time of the coldest tier their documents sit in.
    async fn sweep_interviews(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut SweepReport,
    ) -> Result<(), LifecycleError> {
        let conn = &self.store.db.conn;
        let base_lead = Duration::hours(self.config.prewarm_lead_hours as i64);
        let max_lead = base_lead + self.restore_time(Tier::Glacier);
        let apps = job_application::Entity::find()
            .filter(job_application::Column::InterviewAt.gt(now))
            .filter(job_application::Column::InterviewAt.lte(now + max_lead))
            .all(conn)
            .await
            .map_err(DbError::query("reading upcoming interviews"))?;
        for app in apps {
            let Some(interview_at) = app.interview_at else { continue };
            if app.prewarmed_for == Some(interview_at) {
                continue;
            }
            let docs = file_metadata::Entity::find()
                .filter(file_metadata::Column::UserId.eq(app.user_id.clone()))
                .filter(file_metadata::Column::JobApplicationId.eq(app.application_id.clone()))
                .filter(file_metadata::Column::IsActive.eq(true))
                .all(conn)
                .await
                .map_err(DbError::query("reading an application's documents"))?;
            let coldest = docs
                .iter()
                .filter_map(|d| d.storage_tier.parse::<Tier>().ok())
                .max()
                .unwrap_or(Tier::Hot);
            if interview_at - (base_lead + self.restore_time(coldest)) > now {
                continue;
            }
            for d in docs.iter().filter(|d| d.storage_tier != Tier::Hot.as_str()) {
                report.planned.push(PlannedWork {
                    user: d.user_id.clone(),
                    key: d.doc_key.clone(),
                    version: d.version_no,
                    work: "prewarm".into(),
                    from: d.storage_tier.parse().ok(),
                    to: Some(Tier::Hot),
                    reason: "prewarm".into(),
                    due_at: Some(interview_at),
                    monthly_cost_before_usd: self.cost_of(d.storage_tier.parse().unwrap_or(Tier::Hot), d.file_size),
                    monthly_cost_after_usd: self.cost_of(Tier::Hot, d.file_size),
                });
            }
            if !dry_run {
                let job = PrewarmJob {
                    user_id: app.user_id.clone(),
                    application_id: app.application_id.clone(),
                    interview_at,
                };
                report.enqueued += u64::from(dossier_producer::enqueue(conn, &job, now).await?.created);
            }
        }
        Ok(())
    }

    /// Refreshes the cache entries of hot documents of users with an application active recently; everyone else's
    /// entries simply expire with their TTL. Bounded per sweep.
    async fn warm_active_users(&self, now: DateTime<Utc>) -> Result<u64, LifecycleError> {
        const LIMIT: u64 = 500;
        let conn = &self.store.db.conn;
        let since = now - Duration::days(self.config.active_user_days as i64);
        let users: Vec<String> = job_application::Entity::find()
            .select_only()
            .column(job_application::Column::UserId)
            .filter(job_application::Column::UpdatedAt.gt(since))
            .filter(job_application::Column::ClosedAt.is_null())
            .distinct()
            .limit(LIMIT)
            .into_tuple()
            .all(conn)
            .await
            .map_err(DbError::query("reading active users"))?;
        if users.is_empty() {
            return Ok(0);
        }
        let rows = file_metadata::Entity::find()
            .filter(file_metadata::Column::UserId.is_in(users))
            .filter(file_metadata::Column::IsActive.eq(true))
            .filter(file_metadata::Column::StorageTier.eq(Tier::Hot.as_str()))
            .filter(file_metadata::Column::FileSize.lte(self.store.cache_max_object_bytes as i64))
            .limit(LIMIT)
            .all(conn)
            .await
            .map_err(DbError::query("reading active users' documents"))?;
        let mut warmed = 0;
        for row in rows {
            if let Some(b) = blob::Entity::find_by_id(row.blob_id)
                .one(conn)
                .await
                .map_err(DbError::query("finding content"))?
                && b.tier == Tier::Hot.as_str()
                && self.store.read_blob(&b).await.is_ok()
            {
                warmed += 1;
            }
        }
        Ok(warmed)
    }
}
