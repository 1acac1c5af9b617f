//! The fleet under stress, as operators would see it: worker processes killed mid-transition or told to stop, on
//! real Postgres, Redis and S3.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Dossier;

const NOW: &str = "2026-02-01T00:00:00Z";

async fn fleet() -> Dossier {
    let mut d = Dossier::fleet().await;
    for (k, v) in [
        ("DOSSIER_HEARTBEAT_SECS", "1"),
        ("DOSSIER_MISSED_HEARTBEATS", "2"),
        ("DOSSIER_POLL_INTERVAL_MS", "50"),
        ("DOSSIER_RELAY_REDISPATCH_SECS", "3"),
        ("DOSSIER_SHUTDOWN_DEADLINE_SECS", "6"),
        ("DOSSIER_LOG", "info"),
    ] {
        d.set(k, v);
    }
    d
}

/// Stores one resume in January and plans its move to warm in February.
fn one_due_transition(d: &Dossier) {
    let input = d.home.path().join("cv.json");
    std::fs::write(&input, br#"{"basics":{"name":"Kim"}}"#).expect("input");
    let input = input.display().to_string();
    d.ok(&[
        "put",
        "--user",
        "kim",
        "--type",
        "active_resume",
        "--key",
        "cv",
        &input,
        "--now",
        "2026-01-01T08:00:00Z",
    ]);
    let plan = d.json(&["sweep", "--now", NOW]);
    assert_eq!(plan["enqueued"], 1, "{plan}");
}

fn spawn_worker(d: &Dossier, pause_ms: Option<u64>, drain: bool) -> Child {
    let mut args = vec!["worker", "--now", NOW];
    if drain {
        args.push("--drain");
    }
    let mut cmd = d.command(&args);
    if let Some(ms) = pause_ms {
        cmd.env("DOSSIER_TEST_PAUSE_AFTER_COPY_MS", ms.to_string());
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker")
}

/// Objects per tier, read from the S3 server's own storage.
fn objects_in(d: &Dossier, tier: &str) -> usize {
    let s3 = d.s3.as_ref().expect("s3");
    let prefix = d
        .vars
        .iter()
        .find(|(k, _)| k == "DOSSIER_S3_BUCKET_PREFIX")
        .map(|(_, v)| v.clone())
        .expect("prefix");
    let root = s3.root().join(format!("{prefix}-{tier}"));
    count_files(&root)
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else if p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')) {
                1
            } else {
                0
            }
        })
        .sum()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn assert_moved_once(d: &Dossier) {
    let moves = d
        .count("SELECT COUNT(*) FROM storage_lifecycle_log WHERE reason = 'age'")
        .await;
    assert_eq!(moves, 1, "one lifecycle log row for the move");
    let docs = d.json(&["ls", "--user", "kim", "--now", NOW]);
    assert_eq!(docs[0]["tier"], "warm");
    assert_eq!(
        objects_in(d, "hot") + objects_in(d, "warm") + objects_in(d, "cold") + objects_in(d, "glacier"),
        1,
        "bytes in exactly one tier"
    );
    assert_eq!(objects_in(d, "warm"), 1);
    let fsck = d.json(&["fsck", "--dry-run"]);
    assert_eq!(fsck["orphans_removed"].as_array().map(Vec::len), Some(0), "{fsck}");
    assert_eq!(fsck["orphans_recent"], 0, "{fsck}");
    assert_eq!(fsck["missing"].as_array().map(Vec::len), Some(0), "{fsck}");
    let stats = d.json(&["stats", "--user", "kim"]);
    assert_eq!(stats["tiers"]["warm"]["documents"], 1);
    assert_eq!(d.get("kim", "cv", None), br#"{"basics":{"name":"Kim"}}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_between_copy_and_commit_has_its_job_rerun_by_another() {
    let d = fleet().await;
    one_due_transition(&d);
    let mut first = spawn_worker(&d, Some(60_000), false);
    // The copy lands in warm while the source is still in hot: the worker is between copy and commit.
    wait_for("the copy", Duration::from_secs(30), || objects_in(&d, "warm") == 1);
    assert_eq!(objects_in(&d, "hot"), 1);
    first.kill().expect("kill -9");
    first.wait().expect("reap");

    let second = spawn_worker(&d, None, true);
    let out = second.wait_with_output().expect("second worker");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_moved_once(&d).await;
    let log = d.json(&["sweep", "--dry-run", "--now", NOW]);
    assert_eq!(
        log["planned"].as_array().map(Vec::len),
        Some(0),
        "nothing left to do: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_three_second_job_exits_within_the_deadline_and_lands_once() {
    let d = fleet().await;
    one_due_transition(&d);
    let worker = spawn_worker(&d, Some(3_000), false);
    wait_for("the copy", Duration::from_secs(30), || objects_in(&d, "warm") == 1);
    let stopped_at = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = worker.wait_with_output().expect("worker exits");
    let took = stopped_at.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        took < Duration::from_secs(6),
        "exited within its 6 s deadline, took {took:?}"
    );
    // Whatever was in flight either finished or was handed back; a drain finishes the rest.
    let drain = spawn_worker(&d, None, true).wait_with_output().expect("drain");
    assert!(drain.status.success(), "{}", String::from_utf8_lossy(&drain.stderr));
    assert_moved_once(&d).await;
}
