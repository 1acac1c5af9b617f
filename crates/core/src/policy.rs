//! Lifecycle policies: per file type, where a document starts, when it moves colder, when it expires.
//!
//! The defaults are the product brief's table (README, "Lifecycle policies"); `dossier.toml` overrides any part of
//! any type under `[policies.<type>]`. Rule ages use [`crate::days::due_at`], the S3 day rule.
//!
//! When several rules are due at once the winner is defined: expiry first, then the coldest due tier.
//! A legal hold or a pin freezes a document: no rule is ever due for it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::days::due_at;
use crate::{FileType, Tier};

/// What a rule's age is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Since {
    #[default]
    Created,
    LastAccess,
}

/// Move to `to` once `days` days have passed since `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionRule {
    pub days: u32,
    pub to: Tier,
    #[serde(default)]
    pub since: Since,
}

/// Move a superseded version to `to` once `days` days have passed since it was superseded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupersededRule {
    pub days: u32,
    pub to: Tier,
}

/// The lifecycle of one file type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub initial_tier: Tier,
    /// Age-based moves, each to a colder tier than the one before.
    pub transitions: Vec<TransitionRule>,
    /// Days after creation when every version is deleted, audited; `None` keeps it forever.
    pub expire_days: Option<u32>,
    /// What happens to a version once a newer one exists.
    pub superseded: Option<SupersededRule>,
    /// A warm or cold document read more than this many times within the window goes back to hot.
    pub promote_after_reads: u32,
    pub promotion_window_days: u32,
}

/// Why a rule is due: the reason recorded in the lifecycle log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Age,
    Idle,
    Superseded,
    Expiry,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Age => "age",
            Reason::Idle => "idle",
            Reason::Superseded => "superseded",
            Reason::Expiry => "expiry",
        }
    }
}

/// What a due rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "tier")]
pub enum Action {
    Transition(Tier),
    Expire,
}

/// One rule's next due instant for a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Due {
    pub at: DateTime<Utc>,
    pub action: Action,
    pub reason: Reason,
}

/// The facts about one stored version that its policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocFacts {
    pub tier: Tier,
    pub created_at: DateTime<Utc>,
    pub last_accessed_at: DateTime<Utc>,
    pub superseded_at: Option<DateTime<Utc>>,
    /// When it was last brought back to hot: age rules count from here, so a promoted document is not demoted at
    /// the next sweep. Expiry still counts from creation.
    pub promoted_at: Option<DateTime<Utc>>,
    /// A legal hold or a pin.
    pub frozen: bool,
}

impl Policy {
    /// Every rule not yet carried out for this document, with its due instant.
    fn pending(&self, doc: &DocFacts) -> Vec<Due> {
        if doc.frozen {
            return Vec::new();
        }
        let mut pending = Vec::new();
        if let Some(days) = self.expire_days {
            pending.push(Due {
                at: due_at(doc.created_at, days),
                action: Action::Expire,
                reason: Reason::Expiry,
            });
        }
        for rule in &self.transitions {
            if rule.to > doc.tier {
                let (reference, reason) = match rule.since {
                    Since::Created => (
                        doc.promoted_at.map_or(doc.created_at, |p| p.max(doc.created_at)),
                        Reason::Age,
                    ),
                    Since::LastAccess => (doc.last_accessed_at, Reason::Idle),
                };
                pending.push(Due {
                    at: due_at(reference, rule.days),
                    action: Action::Transition(rule.to),
                    reason,
                });
            }
        }
        if let (Some(rule), Some(superseded_at)) = (self.superseded, doc.superseded_at)
            && rule.to > doc.tier
        {
            pending.push(Due {
                at: due_at(superseded_at, rule.days),
                action: Action::Transition(rule.to),
                reason: Reason::Superseded,
            });
        }
        pending
    }

    /// When this document next needs work, if ever: the `next_due_at` the sweep pages through.
    pub fn next_due(&self, doc: &DocFacts) -> Option<Due> {
        self.pending(doc).into_iter().min_by_key(|due| due.at)
    }

    /// The rule that wins at `now`, if any is due: expiry first, then the coldest due tier.
    pub fn due_now(&self, doc: &DocFacts, now: DateTime<Utc>) -> Option<Due> {
        let due: Vec<Due> = self.pending(doc).into_iter().filter(|d| d.at <= now).collect();
        if let Some(expiry) = due.iter().find(|d| d.action == Action::Expire) {
            return Some(*expiry);
        }
        due.into_iter().max_by_key(|d| match d.action {
            Action::Transition(tier) => (tier, std::cmp::Reverse(d.at)),
            Action::Expire => (Tier::Hot, std::cmp::Reverse(d.at)),
        })
    }
}

/// Days that cover seven calendar years whatever the leap years.
pub const SEVEN_YEARS_DAYS: u32 = 7 * 365 + 2;

/// The policy of every file type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policies(BTreeMap<FileType, Policy>);

fn rule(days: u32, to: Tier) -> TransitionRule {
    TransitionRule {
        days,
        to,
        since: Since::Created,
    }
}

impl Default for Policies {
    fn default() -> Self {
        use FileType::*;
        use Tier::*;
        let superseded = Some(SupersededRule { days: 30, to: Cold });
        let archive = || vec![rule(30, Warm), rule(180, Cold), rule(365, Glacier)];
        let make = |initial_tier, transitions, expire_days| Policy {
            initial_tier,
            transitions,
            expire_days,
            superseded,
            promote_after_reads: 5,
            promotion_window_days: 30,
        };
        let mut map = BTreeMap::new();
        for &file_type in FileType::ALL {
            let policy = match file_type {
                MasterResume | Template | CommonSection | Prompt => make(Hot, vec![], None),
                ActiveResume | ResumeSource | CoverLetter | InterviewMaterial => make(Hot, archive(), Some(730)),
                JobDescription => make(Hot, vec![rule(90, Warm), rule(365, Cold)], Some(730)),
                GeneratedPdf => make(Hot, vec![rule(30, Warm), rule(180, Cold)], Some(730)),
                LlmCache | Temp => Policy {
                    superseded: None,
                    ..make(Hot, vec![], Some(1))
                },
                ApplicationOutcome => make(Warm, vec![rule(180, Cold), rule(365, Glacier)], Some(730)),
                SavedSearch | CompanyResearch | NetworkingNote => make(Warm, vec![rule(180, Cold)], Some(730)),
                AnalyticsData => make(Warm, vec![rule(90, Cold)], Some(730)),
                Export => make(Cold, vec![], Some(30)),
                ComplianceRecord => make(Cold, vec![], Some(SEVEN_YEARS_DAYS)),
            };
            map.insert(file_type, policy);
        }
        Policies(map)
    }
}

/// A `[policies.<type>]` table of `dossier.toml`: every field optional, replacing the default's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    pub initial_tier: Option<Tier>,
    pub transitions: Option<Vec<TransitionRule>>,
    /// A number of days, or the string "never".
    pub expire_days: Option<DaysOrNever>,
    /// A `{days, to}` table, or the string "never".
    pub superseded: Option<SupersededOrNever>,
    pub promote_after_reads: Option<u32>,
    pub promotion_window_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DaysOrNever {
    Days(u32),
    Never(Never),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SupersededOrNever {
    Rule(SupersededRule),
    Never(Never),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Never {
    Never,
}

impl Policies {
    pub fn get(&self, file_type: FileType) -> &Policy {
        // Every type has an entry: `default()` fills them all and overrides only replace.
        &self.0[&file_type]
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileType, &Policy)> {
        self.0.iter().map(|(t, p)| (*t, p))
    }

    /// Applies one override; the error says which part of it is inconsistent.
    pub fn apply(&mut self, file_type: FileType, o: PolicyOverride) -> Result<(), String> {
        let policy = self.0.get_mut(&file_type).ok_or("unknown file type")?;
        if let Some(tier) = o.initial_tier {
            policy.initial_tier = tier;
        }
        if let Some(transitions) = o.transitions {
            policy.transitions = transitions;
        }
        match o.expire_days {
            Some(DaysOrNever::Days(days)) => policy.expire_days = Some(days),
            Some(DaysOrNever::Never(_)) => policy.expire_days = None,
            None => {}
        }
        match o.superseded {
            Some(SupersededOrNever::Rule(rule)) => policy.superseded = Some(rule),
            Some(SupersededOrNever::Never(_)) => policy.superseded = None,
            None => {}
        }
        if let Some(n) = o.promote_after_reads {
            policy.promote_after_reads = n;
        }
        if let Some(n) = o.promotion_window_days {
            policy.promotion_window_days = n;
        }
        let mut previous = policy.initial_tier;
        for (i, t) in policy.transitions.iter().enumerate() {
            if t.to <= previous {
                return Err(format!(
                    "transitions[{i}] moves to {} which is not colder than {previous}: list transitions from hot to cold",
                    t.to
                ));
            }
            previous = t.to;
        }
        Ok(())
    }
}

impl Policies {
    /// The policy table of the README, generated so that the README cannot drift from the code.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from(
            "| file type | starts in | moves | expires | superseded versions | promoted after |\n|---|---|---|---|---|---|\n",
        );
        for (file_type, p) in self.iter() {
            let moves = if p.transitions.is_empty() {
                "stays".to_owned()
            } else {
                p.transitions
                    .iter()
                    .map(|t| match t.since {
                        Since::Created => format!("{} at {} d", t.to, t.days),
                        Since::LastAccess => format!("{} at {} d idle", t.to, t.days),
                    })
                    .collect::<Vec<_>>()
                    .join(" → ")
            };
            let expires = p
                .expire_days
                .map(|d| format!("{d} d"))
                .unwrap_or_else(|| "never".to_owned());
            let superseded = p
                .superseded
                .map(|s| format!("{} at {} d", s.to, s.days))
                .unwrap_or_else(|| "as current".to_owned());
            out.push_str(&format!(
                "| `{file_type}` | {} | {moves} | {expires} | {superseded} | {} reads in {} d |\n",
                p.initial_tier, p.promote_after_reads, p.promotion_window_days
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn doc(tier: Tier, created: &str) -> DocFacts {
        let created_at = at(created);
        DocFacts {
            tier,
            created_at,
            last_accessed_at: created_at,
            superseded_at: None,
            promoted_at: None,
            frozen: false,
        }
    }

    /// Walks a fresh document of every type through its policy: one second before each due instant nothing is due,
    /// exactly at it the rule wins.
    #[test]
    fn every_default_policy_at_each_due_instant() {
        let policies = Policies::default();
        let created = "2026-03-08T15:45:00Z";
        for (file_type, policy) in policies.iter() {
            let mut d = doc(policy.initial_tier, created);
            let mut steps = 0;
            while let Some(next) = policy.next_due(&d) {
                assert_eq!(
                    policy.due_now(&d, next.at - Duration::seconds(1)),
                    None,
                    "{file_type} before {next:?}"
                );
                let now = policy.due_now(&d, next.at).expect("due at its instant");
                assert_eq!(now.at, next.at, "{file_type}");
                match now.action {
                    Action::Transition(tier) => d.tier = tier,
                    Action::Expire => break,
                }
                steps += 1;
                assert!(steps < 10, "{file_type} never settles");
            }
        }
    }

    #[test]
    fn brief_defaults() {
        let p = Policies::default();
        let active = p.get(FileType::ActiveResume);
        let mut d = doc(Tier::Hot, "2026-01-01T10:00:00Z");
        let expect = [
            ("2026-02-01T00:00:00Z", Action::Transition(Tier::Warm)),
            ("2026-07-01T00:00:00Z", Action::Transition(Tier::Cold)),
            ("2027-01-02T00:00:00Z", Action::Transition(Tier::Glacier)),
            ("2028-01-02T00:00:00Z", Action::Expire),
        ];
        for (when, action) in expect {
            let next = active.next_due(&d).expect("a next step");
            assert_eq!((next.at, next.action), (at(when), action));
            if let Action::Transition(t) = action {
                d.tier = t;
            }
        }
        assert_eq!(p.get(FileType::AnalyticsData).initial_tier, Tier::Warm);
        assert_eq!(
            p.get(FileType::Template)
                .next_due(&doc(Tier::Hot, "2026-01-01T00:00:00Z")),
            None
        );
        let compliance = p
            .get(FileType::ComplianceRecord)
            .next_due(&doc(Tier::Cold, "2026-01-01T00:00:00Z"));
        assert_eq!(compliance.map(|d| d.at), Some(at("2033-01-02T00:00:00Z")));
        let temp = p.get(FileType::Temp).next_due(&doc(Tier::Hot, "2026-01-01T10:00:00Z"));
        assert_eq!(
            temp.map(|d| (d.at, d.action)),
            Some((at("2026-01-03T00:00:00Z"), Action::Expire))
        );
    }

    #[test]
    fn promotion_restarts_age_rules_but_not_expiry() {
        let p = Policies::default();
        let active = p.get(FileType::ActiveResume);
        let mut d = doc(Tier::Hot, "2026-01-01T00:00:00Z");
        d.promoted_at = Some(at("2026-09-10T12:00:00Z"));
        let next = active.next_due(&d).expect("due");
        assert_eq!(
            (next.at, next.action),
            (at("2026-10-11T00:00:00Z"), Action::Transition(Tier::Warm))
        );
        d.tier = Tier::Glacier;
        assert_eq!(active.next_due(&d).map(|d| d.at), Some(at("2028-01-02T00:00:00Z")));
    }

    #[test]
    fn expiry_wins_then_coldest_tier() {
        let p = Policies::default();
        let active = p.get(FileType::ActiveResume);
        let d = doc(Tier::Hot, "2026-01-01T00:00:00Z");
        let late = at("2027-06-01T00:00:00Z");
        assert_eq!(
            active.due_now(&d, late).map(|d| d.action),
            Some(Action::Transition(Tier::Glacier))
        );
        let very_late = at("2030-01-01T00:00:00Z");
        assert_eq!(active.due_now(&d, very_late).map(|d| d.action), Some(Action::Expire));
    }

    #[test]
    fn superseded_versions_go_cold_and_frozen_documents_never_move() {
        let p = Policies::default();
        let master = p.get(FileType::MasterResume);
        let mut d = doc(Tier::Hot, "2026-01-01T00:00:00Z");
        d.superseded_at = Some(at("2026-05-05T08:00:00Z"));
        let next = master.next_due(&d).expect("superseded rule");
        assert_eq!(
            (next.at, next.action, next.reason),
            (
                at("2026-06-05T00:00:00Z"),
                Action::Transition(Tier::Cold),
                Reason::Superseded
            )
        );
        d.frozen = true;
        assert_eq!(master.next_due(&d), None);
        assert_eq!(master.due_now(&d, at("2099-01-01T00:00:00Z")), None);
    }

    #[test]
    fn overrides_replace_and_are_checked() {
        let mut p = Policies::default();
        let o: PolicyOverride =
            toml::from_str("transitions = [{ days = 7, to = \"cold\" }]\nexpire_days = \"never\"").expect("toml");
        p.apply(FileType::ActiveResume, o).expect("valid override");
        assert_eq!(p.get(FileType::ActiveResume).transitions, vec![rule(7, Tier::Cold)]);
        assert_eq!(p.get(FileType::ActiveResume).expire_days, None);
        let bad: PolicyOverride =
            toml::from_str("transitions = [{ days = 7, to = \"cold\" }, { days = 9, to = \"warm\" }]").expect("toml");
        let err = p.apply(FileType::JobDescription, bad).expect_err("must fail");
        assert!(err.contains("transitions[1]"), "{err}");
    }
}
