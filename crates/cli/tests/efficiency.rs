//! Storage efficiency through the binary: a tailored resume costs a small delta, on both backends.

mod common;

use common::{Dossier, corpus};

fn resume_06() -> Vec<u8> {
    let dir = corpus().join("resumes");
    let path = std::fs::read_dir(&dir)
        .expect("resumes")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.contains("06") && name.ends_with(".json")
        })
        .expect("resume 06");
    std::fs::read(path).expect("resume 06")
}

fn tailored(original: &[u8]) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(original).expect("JSON");
    doc["basics"]["label"] = "Principal Engineer".into();
    doc["basics"]["email"] = "applicant@example.org".into();
    doc["basics"]["summary"] = "Builds document pipelines that never lose a byte.".into();
    serde_json::to_vec_pretty(&doc).expect("JSON")
}

fn stored_hot(d: &Dossier) -> u64 {
    d.json(&["stats", "--user", "ivy"])["tiers"]["hot"]["stored_bytes"]
        .as_u64()
        .expect("stored bytes")
}

fn second_version_is_a_small_delta(d: &Dossier) {
    let v1 = resume_06();
    let v2 = tailored(&v1);
    d.put("ivy", "active_resume", "resume.json", &v1);
    let before = stored_hot(d);
    assert!(
        before < v1.len() as u64,
        "version 1 is compressed: {before} of {}",
        v1.len()
    );
    let put = d.put("ivy", "active_resume", "resume.json", &v2);
    assert_eq!(put["version"], 2);
    d.ok(&["worker", "--drain"]);
    let added = stored_hot(d) - before;
    assert!(added < 1024, "the second version costs {added} bytes stored");
    assert_eq!(d.get("ivy", "resume.json", None), v2);
    assert_eq!(d.get("ivy", "resume.json", Some(1)), v1);
}

#[test]
fn a_tailored_resume_costs_under_a_kibibyte_embedded() {
    second_version_is_a_small_delta(&Dossier::embedded());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tailored_resume_costs_under_a_kibibyte_on_the_fleet() {
    let d = Dossier::fleet().await;
    tokio::task::block_in_place(|| second_version_is_a_small_delta(&d));
}

fn consent(i: usize) -> Vec<u8> {
    format!("{{\"consent\":\"given\",\"record\":{i}}}").into_bytes()
}

fn all_read_back(d: &Dossier, range: std::ops::Range<usize>) {
    for i in range {
        assert_eq!(d.get("max", &format!("c{i}"), None), consent(i), "record {i}");
    }
}

fn fsck_finds(d: &Dossier) -> (usize, usize, usize) {
    let report = d.json(&["fsck", "--dry-run"]);
    let len = |k: &str| report[k].as_array().map(Vec::len).unwrap_or(usize::MAX);
    (len("orphans_removed"), len("missing"), len("corrupt"))
}

#[test]
fn a_crash_while_sealing_or_compacting_a_pack_loses_nothing() {
    let mut d = Dossier::embedded();
    for (k, v) in [
        ("DOSSIER_PACK_MAX_WAIT_HOURS", "0"),
        ("DOSSIER_FSCK_GRACE_HOURS", "0"),
        ("DOSSIER_SWEEP_LEASE_SECS", "1"),
    ] {
        d.set(k, v);
    }
    for i in 0..12 {
        d.put("max", "compliance_record", &format!("c{i}"), &consent(i));
    }

    // Killed after writing the pack, before the database points at it: every record still reads from where it was.
    let crashed = d
        .command(&["sweep"])
        .env("DOSSIER_TEST_FAILPOINT", "pack_written")
        .output()
        .expect("sweep");
    assert!(!crashed.status.success(), "the failpoint aborts the sweep");
    all_read_back(&d, 0..12);
    assert_eq!(fsck_finds(&d), (1, 0, 0), "the unreferenced pack is an orphan");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    d.ok(&["sweep"]);
    d.ok(&["fsck"]);
    assert_eq!(fsck_finds(&d), (0, 0, 0));
    assert_eq!(d.object_count(), 1, "twelve records in one pack");
    all_read_back(&d, 0..12);

    // Killed during compaction: the old pack still holds every live member, and the next worker finishes the job.
    for i in 0..9 {
        d.ok(&["rm", "--user", "max", &format!("c{i}")]);
    }
    assert_eq!(d.json(&["sweep"])["compactions"], 1);
    let crashed = d
        .command(&["worker", "--drain"])
        .env("DOSSIER_TEST_FAILPOINT", "pack_compacting")
        .output()
        .expect("worker");
    assert!(!crashed.status.success(), "the failpoint aborts the worker");
    all_read_back(&d, 9..12);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut drain = d.command(&["worker", "--drain"]);
    drain.env("DOSSIER_RELAY_REDISPATCH_SECS", "1");
    let out = drain.output().expect("worker");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    d.ok(&["fsck"]);
    assert_eq!(fsck_finds(&d), (0, 0, 0));
    assert_eq!(
        d.object_count(),
        1,
        "the three survivors in a new pack, the old one gone"
    );
    all_read_back(&d, 9..12);
}
