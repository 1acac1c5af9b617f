//! "N days" as S3 and MinIO lifecycle rules mean it.
//!
//! For N ≥ 1 a rule is due at `utc_midnight_floor(reference) + (N + 1) days`: an object created at any time on
//! 9 March with a 1-day rule becomes due at midnight UTC starting 11 March. N = 0 is due at the reference instant.
//! Computed in UTC whatever the local or database time zone; huge N saturates instead of overflowing.

use chrono::{DateTime, Duration, NaiveTime, Utc};

/// When a rule of `days` days counted from `reference` becomes due.
pub fn due_at(reference: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    if days == 0 {
        return reference;
    }
    let midnight = reference.date_naive().and_time(NaiveTime::MIN).and_utc();
    Duration::try_days(i64::from(days) + 1)
        .and_then(|span| midnight.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn design_examples() {
        assert_eq!(due_at(at("2026-03-09T00:00:00Z"), 1), at("2026-03-11T00:00:00Z"));
        assert_eq!(due_at(at("2026-03-08T23:30:00-05:00"), 30), at("2026-04-09T00:00:00Z"));
    }

    #[test]
    fn zero_days_is_the_reference_instant() {
        let t = at("2026-03-08T23:30:00-05:00");
        assert_eq!(due_at(t, 0), t);
    }

    #[test]
    fn end_of_day_and_leap_years() {
        assert_eq!(due_at(at("2026-03-09T23:59:59.999Z"), 1), at("2026-03-11T00:00:00Z"));
        assert_eq!(due_at(at("2028-02-28T12:00:00Z"), 1), at("2028-03-01T00:00:00Z"));
    }

    #[test]
    fn huge_n_saturates() {
        assert_eq!(due_at(at("2026-03-09T00:00:00Z"), u32::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(due_at(DateTime::<Utc>::MAX_UTC, 1), DateTime::<Utc>::MAX_UTC);
    }
}
