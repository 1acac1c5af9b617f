//! Dossier's domain, free of I/O: the four tiers, the file types and their lifecycle policies, the day arithmetic
//! shared with S3 lifecycle rules, the injected [`Clock`], the cost model and the typed configuration.

pub mod clock;
pub mod config;
pub mod cost;
pub mod days;
pub mod file_type;
pub mod ids;
pub mod policy;
pub mod tier;

pub use clock::{Clock, ManualClock, SystemClock};
pub use file_type::FileType;
pub use tier::Tier;
