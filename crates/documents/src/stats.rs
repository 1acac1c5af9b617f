//! Storage statistics per tier: documents, raw and stored bytes, objects and estimated monthly cost.

use std::collections::BTreeMap;

use dossier_core::Tier;
use dossier_core::ids::validate_user_id;
use dossier_db::DbError;
use dossier_db::entity::{blob, file_metadata};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use crate::{DocError, DocumentStore};

/// Figures of one tier (or of all of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TierStats {
    /// Stored versions whose policy placed them in this tier.
    pub documents: u64,
    /// Their size as uploaded.
    pub raw_bytes: u64,
    /// Distinct stored contents (after dedup) physically in this tier.
    pub objects: u64,
    /// Bytes those objects occupy.
    pub stored_bytes: u64,
    /// Estimated storage cost per month of those objects, with minimum billable sizes and per-object overhead.
    pub monthly_cost_usd: f64,
}

/// `stats --json` and `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub tiers: BTreeMap<Tier, TierStats>,
    pub total: TierStats,
}

impl DocumentStore {
    /// Statistics of every document, or of one user's documents and the contents they reference.
    pub async fn stats(&self, user: Option<&str>) -> Result<Stats, DocError> {
        if let Some(u) = user {
            validate_user_id(u)?;
        }
        let mut tiers: BTreeMap<Tier, TierStats> = Tier::ALL.iter().map(|t| (*t, TierStats::default())).collect();

        let mut docs = file_metadata::Entity::find()
            .select_only()
            .column(file_metadata::Column::StorageTier)
            .column_as(Expr::cust("COUNT(*)"), "documents")
            .column_as(Expr::cust("CAST(COALESCE(SUM(file_size), 0) AS BIGINT)"), "raw_bytes")
            .group_by(file_metadata::Column::StorageTier);
        if let Some(u) = user {
            docs = docs.filter(file_metadata::Column::UserId.eq(u));
        }
        let rows: Vec<(String, i64, i64)> = docs
            .into_tuple()
            .all(&self.db.conn)
            .await
            .map_err(DbError::query("counting documents"))?;
        for (tier, documents, raw_bytes) in rows {
            if let Ok(tier) = tier.parse::<Tier>() {
                let s = tiers.entry(tier).or_default();
                s.documents = documents.max(0) as u64;
                s.raw_bytes = raw_bytes.max(0) as u64;
            }
        }

        // Billable bytes are computed per object in SQL so that millions of blobs are never loaded.
        let mut billable = String::from("CAST(COALESCE(SUM(CASE");
        for tier in Tier::ALL {
            let price = self.cost.price(tier);
            billable.push_str(&format!(
                " WHEN tier = '{tier}' THEN (CASE WHEN stored_size < {min} THEN {min} ELSE stored_size END) + {overhead}",
                min = price.min_billable_bytes,
                overhead = price.overhead_bytes_per_object,
            ));
        }
        billable.push_str(" ELSE stored_size END), 0) AS BIGINT)");
        let mut blobs = blob::Entity::find()
            .select_only()
            .column(blob::Column::Tier)
            .column_as(Expr::cust("COUNT(*)"), "objects")
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(stored_size), 0) AS BIGINT)"),
                "stored_bytes",
            )
            .column_as(Expr::cust(billable), "billable_bytes")
            .filter(blob::Column::State.ne(blob::DELETING))
            .group_by(blob::Column::Tier);
        if let Some(u) = user {
            blobs = blobs.filter(
                blob::Column::Id.in_subquery(
                    Query::select()
                        .column(file_metadata::Column::BlobId)
                        .from(file_metadata::Entity)
                        .and_where(file_metadata::Column::UserId.eq(u))
                        .to_owned(),
                ),
            );
        }
        let rows: Vec<(String, i64, i64, i64)> = blobs
            .into_tuple()
            .all(&self.db.conn)
            .await
            .map_err(DbError::query("counting objects"))?;
        for (tier, objects, stored_bytes, billable_bytes) in rows {
            if let Ok(tier) = tier.parse::<Tier>() {
                let s = tiers.entry(tier).or_default();
                s.objects = objects.max(0) as u64;
                s.stored_bytes = stored_bytes.max(0) as u64;
                s.monthly_cost_usd = self.cost.monthly_storage_usd(tier, billable_bytes.max(0) as u64);
            }
        }

        let mut total = TierStats::default();
        for s in tiers.values() {
            total.documents += s.documents;
            total.raw_bytes += s.raw_bytes;
            total.objects += s.objects;
            total.stored_bytes += s.stored_bytes;
            total.monthly_cost_usd += s.monthly_cost_usd;
        }
        Ok(Stats { tiers, total })
    }
}
