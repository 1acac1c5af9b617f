//! Estimated monthly storage cost per tier, from per-tier prices (defaults: S3 us-east-1 list prices).
//!
//! Each tier maps to the storage class it is priced as; minimum billable object sizes and per-object archive
//! overhead are part of the price, because resume-sized objects are dominated by them.

use serde::{Deserialize, Serialize};

use crate::Tier;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Prices of one tier's storage class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    pub storage_class: String,
    pub usd_per_gb_month: f64,
    /// Objects smaller than this are billed as this size (STANDARD_IA and GLACIER_IR: 128 KiB).
    pub min_billable_bytes: u64,
    /// Bytes added to every object (GLACIER and DEEP_ARCHIVE: about 40 KB of index and metadata).
    pub overhead_bytes_per_object: u64,
    /// Days an object is billed for at least, even if deleted or moved earlier.
    pub min_storage_days: u32,
    pub put_usd_per_1000: f64,
    pub get_usd_per_1000: f64,
    pub retrieval_usd_per_gb: f64,
}

/// Prices for all four tiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    pub hot: TierPrice,
    pub warm: TierPrice,
    pub cold: TierPrice,
    pub glacier: TierPrice,
}

impl Default for CostModel {
    fn default() -> Self {
        let price = |class: &str, gb, min_bytes, overhead, days, put, get, retrieval| TierPrice {
            storage_class: class.to_owned(),
            usd_per_gb_month: gb,
            min_billable_bytes: min_bytes,
            overhead_bytes_per_object: overhead,
            min_storage_days: days,
            put_usd_per_1000: put,
            get_usd_per_1000: get,
            retrieval_usd_per_gb: retrieval,
        };
        CostModel {
            hot: price("STANDARD", 0.023, 0, 0, 0, 0.005, 0.0004, 0.0),
            warm: price("STANDARD_IA", 0.0125, 128 * 1024, 0, 30, 0.01, 0.001, 0.01),
            cold: price("GLACIER_IR", 0.004, 128 * 1024, 0, 90, 0.02, 0.01, 0.03),
            glacier: price("DEEP_ARCHIVE", 0.00099, 0, 40 * 1024, 180, 0.05, 0.0004, 0.02),
        }
    }
}

impl CostModel {
    pub fn price(&self, tier: Tier) -> &TierPrice {
        match tier {
            Tier::Hot => &self.hot,
            Tier::Warm => &self.warm,
            Tier::Cold => &self.cold,
            Tier::Glacier => &self.glacier,
        }
    }

    /// The bytes one object of `stored_bytes` is billed as in `tier`.
    pub fn billable_bytes(&self, tier: Tier, stored_bytes: u64) -> u64 {
        let p = self.price(tier);
        stored_bytes
            .max(p.min_billable_bytes)
            .saturating_add(p.overhead_bytes_per_object)
    }

    /// Monthly storage cost of objects billed as `billable_bytes` in `tier`.
    pub fn monthly_storage_usd(&self, tier: Tier, billable_bytes: u64) -> f64 {
        billable_bytes as f64 / GIB * self.price(tier).usd_per_gb_month
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_are_billed_at_the_minimum() {
        let m = CostModel::default();
        assert_eq!(m.billable_bytes(Tier::Hot, 1000), 1000);
        assert_eq!(m.billable_bytes(Tier::Warm, 1000), 128 * 1024);
        assert_eq!(m.billable_bytes(Tier::Glacier, 1000), 1000 + 40 * 1024);
        let one_gib = 1024 * 1024 * 1024;
        assert!((m.monthly_storage_usd(Tier::Hot, one_gib) - 0.023).abs() < 1e-12);
    }
}
