//! Validation of the identifiers callers choose: user ids and document keys.
//!
//! Keys are stored only in the database; they never become object keys or paths, so almost any UTF-8 is allowed.
//! NFC and NFD spellings are deliberately different keys: Dossier compares bytes, as S3 does.

/// Longest document key accepted, in bytes (S3's own limit).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest user id accepted, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error(
        "invalid user id {0:?}: expected 1 to 128 characters of A-Z a-z 0-9 . _ - with at least one letter or digit"
    )]
    User(String),
    #[error("invalid key: {0}")]
    Key(&'static str),
}

/// Checks a calling platform's user id.
pub fn validate_user_id(user: &str) -> Result<(), InvalidId> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = !user.is_empty()
        && user.chars().count() <= MAX_USER_ID_CHARS
        && user.chars().all(allowed)
        && user.chars().any(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(InvalidId::User(user.to_owned()))
    }
}

/// Checks a document key: non-empty, at most 1,024 bytes, no NUL, no `.` or `..` path segment.
pub fn validate_key(key: &str) -> Result<(), InvalidId> {
    if key.is_empty() {
        return Err(InvalidId::Key("the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(InvalidId::Key("the key is longer than 1024 bytes"));
    }
    if key.contains('\0') {
        return Err(InvalidId::Key("the key contains a NUL character"));
    }
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(InvalidId::Key("the key has a '.' or '..' segment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        for ok in ["u1", "user_42", "a.b-c", "X", &"a".repeat(128)] {
            assert_eq!(validate_user_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "...", "_-", "a b", "ü", "a/b", &"a".repeat(129)] {
            assert!(validate_user_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        let nfc = "r\u{e9}sum\u{e9}.json";
        let nfd = "re\u{301}sume\u{301}.json";
        for ok in [
            "a",
            "with space",
            "a+b%20=c:{d}",
            "履歴書/王.pdf",
            nfc,
            nfd,
            "a/.b/c..",
            "/lead",
            &"k".repeat(1024),
        ] {
            assert_eq!(validate_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a\0b", ".", "..", "a/../b", "a/./b", "a/..", &"k".repeat(1025)] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }
}
