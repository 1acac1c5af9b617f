//! Issue 2's CLI behaviour, on the embedded default and on real Postgres, Redis and S3.

mod common;

use common::{Dossier, corpus_files, sha256_hex};

/// Every corpus file stored and read back through the CLI, SHA-256 equal.
fn corpus_round_trip(d: &Dossier) {
    let files = corpus_files();
    for (i, file) in files.iter().enumerate() {
        let file_type = if file.extension().is_some_and(|e| e == "pdf") {
            "generated_pdf"
        } else {
            "resume_source"
        };
        let path = file.display().to_string();
        let user = format!("user-{}", i % 3);
        let stored = d.json(&["put", "--user", &user, "--type", file_type, &path]);
        let original = std::fs::read(file).expect("corpus file");
        assert_eq!(stored["sha256"], sha256_hex(&original));
        assert_eq!(stored["size"], original.len());
        assert_eq!(stored["version"], 1);
        assert_eq!(stored["tier"], "hot");
        let key = file.file_name().expect("name").to_string_lossy().into_owned();
        assert_eq!(stored["key"], key.as_str());
        let back = d.get(&user, &key, None);
        assert_eq!(sha256_hex(&back), sha256_hex(&original), "{key}");
    }
    let stats = d.json(&["stats"]);
    assert_eq!(stats["total"]["documents"], files.len());
}

#[test]
fn corpus_round_trips_embedded() {
    corpus_round_trip(&Dossier::embedded());
}

#[tokio::test(flavor = "multi_thread")]
async fn corpus_round_trips_on_postgres_redis_and_s3() {
    let d = Dossier::fleet().await;
    corpus_round_trip(&d);
    // Bytes really live in the S3 server's hot bucket, under Dossier's own keys.
    let s3 = d.s3.as_ref().expect("s3");
    assert!(s3.puts() >= corpus_files().len() as u64);
}

const ODD_KEYS: &[&str] = &[
    "with space.json",
    "a+b%20=c:{d}&x?y#z",
    "履歴書/王小明.pdf",
    "Кузнецова — резюме.txt",
    "سيرة ذاتية",
    "r\u{e9}sum\u{e9}",
    "re\u{301}sume\u{301}",
    "deep/nested/path/to/file",
    "/leading-slash",
    "trailing-slash/",
    "dots.../..hidden/.x",
];

fn odd_keys_round_trip(d: &Dossier) {
    let long = "k".repeat(1024);
    let mut keys: Vec<&str> = ODD_KEYS.to_vec();
    keys.push(&long);
    for (i, key) in keys.iter().enumerate() {
        let body = format!("document number {i} under {key}");
        let stored = d.put("odd", "cover_letter", key, body.as_bytes());
        assert_eq!(stored["key"], *key);
        assert_eq!(d.get("odd", key, None), body.as_bytes(), "{key:?}");
    }
    let listed = d.json(&["ls", "--user", "odd"]);
    let listed: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        listed.len(),
        keys.len(),
        "NFC and NFD spellings are two keys: {listed:?}"
    );
    for key in &keys {
        assert!(listed.contains(key), "{key:?} missing from ls");
    }
}

#[test]
fn odd_keys_round_trip_embedded() {
    odd_keys_round_trip(&Dossier::embedded());
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_keys_round_trip_on_the_fleet() {
    odd_keys_round_trip(&Dossier::fleet().await);
}

#[test]
fn refused_keys_exit_4_and_store_nothing() {
    let d = Dossier::embedded();
    let input = d.home.path().join("input.txt");
    std::fs::write(&input, b"bytes").expect("input");
    let input = input.display().to_string();
    let too_long = "k".repeat(1025);
    for key in ["", ".", "..", "a/../b", "a/./b", "x/..", too_long.as_str()] {
        let out = d.run(&["put", "--user", "u1", "--type", "temp", "--key", key, &input]);
        assert_eq!(
            out.status.code(),
            Some(4),
            "key {key:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("key"), "the error names the key: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    for user in ["", "a b", "../x", "___"] {
        let out = d.run(&["put", "--user", user, "--type", "temp", "--key", "k", &input]);
        assert_eq!(out.status.code(), Some(4), "user {user:?}");
    }
    let out = d.run(&["put", "--user", "u1", "--type", "resume", "--key", "k", &input]);
    assert_eq!(out.status.code(), Some(2), "an unknown type is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("active_resume"));
    let stats = d.json(&["stats"]);
    assert_eq!(stats["total"]["documents"], 0);
    assert_eq!(stats["total"]["objects"], 0);
    assert_eq!(d.object_count(), 0, "no object written for a refused key");
}

fn versions_and_isolation(d: &Dossier) {
    d.put("alice", "active_resume", "resume.json", b"{\"v\":1}");
    let second = d.put("alice", "active_resume", "resume.json", b"{\"v\":2}");
    assert_eq!(second["version"], 2);
    assert_eq!(d.get("alice", "resume.json", None), b"{\"v\":2}");
    assert_eq!(d.get("alice", "resume.json", Some(1)), b"{\"v\":1}");
    assert_eq!(d.get("alice", "resume.json", Some(2)), b"{\"v\":2}");
    let out = d.run(&["get", "--user", "alice", "resume.json", "--version", "3"]);
    assert_eq!(out.status.code(), Some(3));

    let listed = d.json(&["ls", "--user", "alice"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "ls shows current versions");
    assert_eq!(listed[0]["version"], 2);
    let all = d.json(&["ls", "--user", "alice", "--all-versions"]);
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    assert!(all[0]["next_due_at"].is_string(), "a superseded version has a due date");

    // Another user's key is "not found": exit 3, no bytes on stdout, no output file.
    let target = d.home.path().join("stolen.json");
    let target_s = target.display().to_string();
    let out = d.run(&["get", "--user", "mallory", "resume.json", "-o", &target_s]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(!target.exists(), "no partial file");
    let out = d.run(&["get", "--user", "mallory", "resume.json"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let out = d.run(&["rm", "--user", "mallory", "resume.json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        d.get("alice", "resume.json", None),
        b"{\"v\":2}",
        "mallory's rm did nothing"
    );
}

#[test]
fn versions_and_isolation_embedded() {
    versions_and_isolation(&Dossier::embedded());
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_and_isolation_on_the_fleet() {
    versions_and_isolation(&Dossier::fleet().await);
}

#[test]
fn dedup_is_per_user_by_default_and_global_on_request() {
    let bytes = b"identical bytes of two users";
    let d = Dossier::embedded();
    d.put("ann", "cover_letter", "letter", bytes);
    d.put("bob", "cover_letter", "letter", bytes);
    assert_eq!(d.get("ann", "letter", None), bytes);
    assert_eq!(d.get("bob", "letter", None), bytes);
    let stats = d.json(&["stats"]);
    assert_eq!(stats["total"]["documents"], 2);
    assert_eq!(stats["total"]["objects"], 2, "user scope: one blob per user");
    assert_eq!(d.json(&["stats", "--user", "ann"])["total"]["objects"], 1);

    // One user, same bytes under two keys: one blob.
    d.put("ann", "cover_letter", "letter-copy", bytes);
    assert_eq!(d.json(&["stats"])["total"]["objects"], 2);
    assert_eq!(d.json(&["stats", "--user", "ann"])["total"]["documents"], 2);

    let mut g = Dossier::embedded();
    g.set("DOSSIER_DEDUP_SCOPE", "global");
    g.put("ann", "cover_letter", "letter", bytes);
    g.put("bob", "cover_letter", "letter", bytes);
    assert_eq!(g.json(&["stats"])["total"]["objects"], 1, "global scope: one blob");
    assert_eq!(g.json(&["stats"])["total"]["documents"], 2);
    assert_eq!(g.get("bob", "letter", None), bytes);
    assert_eq!(g.object_count(), 1);

    // Deleting one reference keeps the bytes for the other; deleting the last removes them.
    g.ok(&["rm", "--user", "ann", "letter"]);
    assert_eq!(g.get("bob", "letter", None), bytes);
    assert_eq!(g.object_count(), 1);
    g.ok(&["rm", "--user", "bob", "letter"]);
    assert_eq!(g.object_count(), 0);
    assert_eq!(g.json(&["stats"])["total"]["objects"], 0);
}

#[test]
fn put_records_now_as_creation_time_and_schedules_the_policy() {
    let d = Dossier::embedded();
    let input = d.home.path().join("r.json");
    std::fs::write(&input, b"{}").expect("input");
    let input = input.display().to_string();
    d.ok(&[
        "put",
        "--user",
        "u",
        "--type",
        "active_resume",
        &input,
        "--now",
        "2026-03-08T23:30:00-05:00",
    ]);
    let listed = d.json(&["ls", "--user", "u", "--now", "2026-03-10T00:00:00Z"]);
    assert_eq!(listed[0]["created_at"], "2026-03-09T04:30:00Z");
    assert_eq!(listed[0]["tier"], "hot");
    assert_eq!(listed[0]["type"], "active_resume");
    // active_resume: warm after 30 days, by the S3 day rule.
    assert_eq!(listed[0]["next_due_at"], "2026-04-09T00:00:00Z");
    assert_eq!(listed[0]["legal_hold"], false);
    let warm = d.json(&["ls", "--user", "u", "--tier", "warm"]);
    assert_eq!(warm.as_array().map(Vec::len), Some(0));
    let analytics = d.put("u", "analytics_data", "a.csv", b"x,y\n1,2\n");
    assert_eq!(analytics["tier"], "warm", "analytics starts warm");
    assert_eq!(
        d.json(&["ls", "--user", "u", "--type", "analytics_data"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn stdin_put_and_stdout_get() {
    use std::io::Write;
    let d = Dossier::embedded();
    let mut child = d
        .command(&["put", "--user", "u", "--type", "temp", "--key", "from-stdin", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"piped bytes\x00\xff")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    assert_eq!(d.ok(&["get", "--user", "u", "from-stdin"]), b"piped bytes\x00\xff");
    let out = d.run(&["put", "--user", "u", "--type", "temp", "-"]);
    assert_eq!(out.status.code(), Some(2), "stdin needs --key");
}

#[test]
fn bad_configuration_names_the_key() {
    let mut d = Dossier::embedded();
    d.set("DOSSIER_CACHE_TTL_SECS", "an hour");
    let out = d.run(&["ls", "--user", "u"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DOSSIER_CACHE_TTL_SECS") && err.contains("an hour"),
        "{err}"
    );
    let out = Dossier::embedded().run(&["ls", "--user", "u", "--now", "next tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOSSIER_NOW"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_backends_exit_6() {
    let mut d = Dossier::fleet().await;
    d.set("DOSSIER_S3_ENDPOINT", &dossier_testkit::closed_port_endpoint());
    d.put_expecting(6);
    let mut d = Dossier::embedded();
    d.set("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none");
    d.put_expecting(6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_is_down_costs_the_cache_not_the_documents() {
    let mut d = Dossier::fleet().await;
    d.set("REDIS_URL", "redis://127.0.0.1:1");
    tokio::task::block_in_place(|| {
        d.put("ida", "active_resume", "cv", b"still stored");
        assert_eq!(d.get("ida", "cv", None), b"still stored");
    });
}

#[test]
fn misconfigured_backends_are_usage_errors_on_one_line() {
    for (key, value) in [
        ("REDIS_URL", "garbage"),
        ("DATABASE_URL", "mysql://x"),
        ("DOSSIER_HOME", ""),
    ] {
        let mut d = Dossier::embedded();
        d.set(key, value);
        let out = d.run(&["ls", "--user", "u"]);
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
        assert!(!stderr.contains("mysql://x"), "no URL is echoed back: {stderr}");
    }
    let d = Dossier::embedded();
    assert_eq!(
        d.run(&["worker", "--drain", "--concurrency", "0"]).status.code(),
        Some(2)
    );
    let missing = d.run(&["get", "--user", "u", "nothing-here"]);
    assert_eq!(missing.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&missing.stderr).lines().count(), 1);
}

impl Dossier {
    fn put_expecting(&self, code: i32) {
        let input = self.home.path().join("x");
        std::fs::write(&input, b"x").expect("input");
        let input = input.display().to_string();
        let out = self.run(&["put", "--user", "u", "--type", "temp", "--key", "k", &input]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The hot cache (Redis in the fleet), seen from the S3 server's request counts.
#[tokio::test(flavor = "multi_thread")]
async fn hot_reads_come_from_the_cache_until_evicted() {
    let d = Dossier::fleet().await;
    let s3 = d.s3.as_ref().expect("s3");
    let bytes = b"a hot resume read often";
    d.put("carol", "active_resume", "cv", bytes);
    d.put("carol", "active_resume", "cv-copy", bytes);
    s3.reset_counts();
    assert_eq!(d.get("carol", "cv", None), bytes);
    assert_eq!(s3.gets(), 1, "first read goes to S3");
    assert_eq!(d.get("carol", "cv", None), bytes);
    assert_eq!(d.get("carol", "cv-copy", None), bytes);
    assert_eq!(s3.gets(), 1, "later reads of the same content come from the cache");

    // Deleting one reference evicts the content; the next read of the other goes to S3 again.
    d.ok(&["rm", "--user", "carol", "cv"]);
    assert_eq!(d.get("carol", "cv-copy", None), bytes);
    assert_eq!(s3.gets(), 2, "after rm the next read is a GET");

    // A failed read is not cached.
    let other = b"another document";
    d.put("carol", "active_resume", "other", other);
    s3.reset_counts();
    s3.fail_next(3, 503);
    let out = d.run(&["get", "--user", "carol", "other"]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(d.get("carol", "other", None), other);
    assert_eq!(d.get("carol", "other", None), other);
    assert_eq!(s3.gets(), 4, "three failed attempts, one real GET, then the cache");
}

#[test]
fn rm_removes_every_version_and_its_bytes() {
    let d = Dossier::embedded();
    d.put("dan", "temp", "scratch", b"one");
    d.put("dan", "temp", "scratch", b"two");
    assert_eq!(d.object_count(), 2);
    let out = d.json(&["rm", "--user", "dan", "scratch"]);
    assert_eq!(out["versions_deleted"], 2);
    assert_eq!(d.object_count(), 0);
    assert_eq!(d.run(&["get", "--user", "dan", "scratch"]).status.code(), Some(3));
    assert_eq!(d.run(&["rm", "--user", "dan", "scratch"]).status.code(), Some(3));
}

#[test]
fn glacier_reads_exit_75_and_start_one_restore() {
    let mut d = Dossier::embedded();
    d.set("DOSSIER_PACK_MAX_WAIT_HOURS", "0");
    d.put("gil", "active_resume", "cv", b"frozen bytes");
    d.ok(&["move", "--user", "gil", "cv", "--to", "glacier"]);
    // Small contents wait for a glacier pack; the sweep seals it.
    d.ok(&["sweep"]);
    assert_eq!(d.json(&["ls", "--user", "gil"])[0]["tier"], "glacier");
    let target = d.home.path().join("cv.out");
    std::fs::write(&target, b"untouched").expect("existing output");
    let target_s = target.display().to_string();
    let first = d.run(&[
        "--json",
        "get",
        "--user",
        "gil",
        "cv",
        "-o",
        &target_s,
        "--now",
        "2027-01-01T00:00:00Z",
    ]);
    assert_eq!(
        first.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(status["status"], "restoring");
    assert_eq!(status["eta"], "2027-01-01T12:00:00Z");
    assert!(String::from_utf8_lossy(&first.stderr).contains("2027-01-01T12:00:00Z"));
    assert_eq!(
        std::fs::read(&target).expect("output"),
        b"untouched",
        "-o is left untouched"
    );
    let second = d.run(&["--json", "get", "--user", "gil", "cv", "--now", "2027-01-01T01:00:00Z"]);
    assert_eq!(second.status.code(), Some(75));
    let again: serde_json::Value = serde_json::from_slice(&second.stdout).expect("json");
    assert_eq!(
        again["job_id"], status["job_id"],
        "asking again starts no second restore"
    );

    // A worker running the restore job before its time leaves the restore owed; once the time has passed the
    // document reads, with or without another worker run.
    d.ok(&["worker", "--drain", "--now", "2027-01-01T02:00:00Z"]);
    let early = d.run(&["get", "--user", "gil", "cv", "--now", "2027-01-01T11:59:59Z"]);
    assert_eq!(early.status.code(), Some(75));
    let bytes = d.ok(&["get", "--user", "gil", "cv", "--now", "2027-01-01T12:00:00Z"]);
    assert_eq!(bytes, b"frozen bytes");
    assert_eq!(
        d.ok(&["get", "--user", "gil", "cv", "--now", "2027-01-02T00:00:00Z"]),
        b"frozen bytes"
    );
}

#[test]
fn legal_holds_block_rm_and_pins_block_policy() {
    let d = Dossier::embedded();
    d.put("hil", "temp", "held", b"evidence");
    d.ok(&["hold", "--user", "hil", "held", "on"]);
    assert_eq!(d.json(&["ls", "--user", "hil"])[0]["legal_hold"], true);
    let out = d.run(&["rm", "--user", "hil", "held"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("legal hold"));
    let plan = d.json(&["sweep", "--dry-run", "--now", "2030-01-01T00:00:00Z"]);
    assert_eq!(
        plan["planned"].as_array().map(Vec::len),
        Some(0),
        "held documents never expire"
    );
    let moved = d.run(&["move", "--user", "hil", "held", "--to", "cold"]);
    assert_eq!(moved.status.code(), Some(5), "a legal hold stops manual moves too");
    assert_eq!(d.json(&["ls", "--user", "hil"])[0]["tier"], "hot");
    d.ok(&["hold", "--user", "hil", "held", "off"]);
    let plan = d.json(&["sweep", "--dry-run", "--now", "2030-01-01T00:00:00Z"]);
    assert_eq!(plan["planned"][0]["work"], "expire");
    d.ok(&["rm", "--user", "hil", "held"]);
    assert_eq!(
        d.run(&["hold", "--user", "mallory", "held", "on"]).status.code(),
        Some(3)
    );
    let out = d.run(&[
        "app",
        "set",
        "--user",
        "hil",
        "--id",
        "a1",
        "--interview-at",
        "tomorrow",
    ]);
    assert_eq!(out.status.code(), Some(2));
    d.ok(&[
        "app",
        "set",
        "--user",
        "hil",
        "--id",
        "a1",
        "--interview-at",
        "2027-01-01T09:00:00+01:00",
    ]);
}

#[test]
fn removing_the_hottest_reference_lets_shared_bytes_cool() {
    let mut d = Dossier::embedded();
    d.set("DOSSIER_PACK_TIERS", "none");
    let bytes = b"the same signed consent, kept twice";
    d.put("jon", "active_resume", "draft", bytes);
    d.put("jon", "compliance_record", "consent", bytes);
    let hot = d.json(&["stats", "--user", "jon"]);
    assert_eq!(
        hot["tiers"]["hot"]["objects"], 1,
        "one shared copy, as hot as the draft needs: {hot}"
    );
    d.ok(&["rm", "--user", "jon", "draft"]);
    let cooled = d.json(&["stats", "--user", "jon"]);
    assert_eq!(cooled["tiers"]["hot"]["objects"], 0, "{cooled}");
    assert_eq!(
        cooled["tiers"]["cold"]["objects"], 1,
        "the compliance record alone needs only cold: {cooled}"
    );
    assert_eq!(d.get("jon", "consent", None), bytes);
}
