//! The file types of the contract: each one names a lifecycle policy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Tier;

macro_rules! file_types {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A document's type, which selects its lifecycle policy. Names are part of the wire contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum FileType { $($variant),+ }

        impl FileType {
            pub const ALL: &'static [FileType] = &[$(FileType::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(FileType::$variant => $name),+ }
            }
        }

        impl FromStr for FileType {
            type Err = UnknownFileType;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(FileType::$variant),)+
                    other => Err(UnknownFileType(other.to_owned())),
                }
            }
        }
    };
}

file_types! {
    MasterResume => "master_resume",
    ActiveResume => "active_resume",
    ResumeSource => "resume_source",
    CoverLetter => "cover_letter",
    JobDescription => "job_description",
    GeneratedPdf => "generated_pdf",
    Template => "template",
    CommonSection => "common_section",
    Prompt => "prompt",
    LlmCache => "llm_cache",
    Temp => "temp",
    InterviewMaterial => "interview_material",
    ApplicationOutcome => "application_outcome",
    SavedSearch => "saved_search",
    CompanyResearch => "company_research",
    NetworkingNote => "networking_note",
    AnalyticsData => "analytics_data",
    Export => "export",
    ComplianceRecord => "compliance_record",
}

impl FileType {
    /// Shared assets live once for everyone, whatever the dedup scope.
    pub fn is_shared_asset(self) -> bool {
        matches!(self, FileType::Template | FileType::CommonSection)
    }

    /// The area (key prefix inside the tier's bucket) where this type's objects live in `tier`.
    pub fn area(self, tier: Tier) -> &'static str {
        match tier {
            Tier::Hot => match self {
                FileType::Template | FileType::CommonSection | FileType::Prompt => "hot/templates/",
                FileType::LlmCache | FileType::Temp => "hot/cache/",
                _ => "hot/active/",
            },
            Tier::Warm => match self {
                FileType::AnalyticsData => "warm/analytics/",
                FileType::CompanyResearch | FileType::SavedSearch | FileType::NetworkingNote => "warm/research/",
                _ => "warm/recent/",
            },
            Tier::Cold => match self {
                FileType::ComplianceRecord => "cold/compliance/",
                FileType::Export => "cold/exports/",
                _ => "cold/archive/",
            },
            Tier::Glacier => "glacier/archive/",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no file type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown file type {0:?} (expected one of: {list})", list = FileType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownFileType(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_has_an_area_in_every_tier() {
        assert_eq!(FileType::ALL.len(), 19);
        for &t in FileType::ALL {
            assert_eq!(t.as_str().parse::<FileType>(), Ok(t));
            for tier in Tier::ALL {
                assert!(t.area(tier).starts_with(&format!("{tier}/")));
            }
        }
        let err = "resume".parse::<FileType>().expect_err("must fail").to_string();
        assert!(err.contains("\"resume\"") && err.contains("active_resume"), "{err}");
    }
}
