//! The main job: `dossier demo --json` on the shared corpus, twice, with the same counts.

mod common;

use common::{Dossier, corpus};

fn demo(d: &Dossier) -> serde_json::Value {
    let corpus = corpus().display().to_string();
    d.json(&["demo", "--corpus", &corpus])
}

fn counts(report: &serde_json::Value) -> serde_json::Value {
    let mut r = report.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("latency_ms");
        o.remove("backend");
    }
    r
}

#[test]
fn demo_runs_two_years_on_the_corpus_the_same_way_twice() {
    let (a, b) = (Dossier::embedded(), Dossier::embedded());
    let (first, second) = std::thread::scope(|s| {
        let one = s.spawn(|| demo(&a));
        let two = s.spawn(|| demo(&b));
        (one.join().expect("first run"), two.join().expect("second run"))
    });

    let tiers = &first["final"]["tiers"];
    let surviving: u64 = ["hot", "warm", "cold", "glacier"]
        .iter()
        .map(|t| tiers[t]["documents"].as_u64().expect("count"))
        .sum();
    let ingested = first["ingested"]["documents"].as_u64().expect("ingested");
    let expiries = first["expiries"].as_u64().expect("expiries");
    assert_eq!(
        surviving + expiries,
        ingested,
        "every ingested document is in a tier or expired: {first}"
    );
    assert!(
        tiers["glacier"]["documents"].as_u64() > Some(0),
        "glacier holds documents at the end"
    );
    for field in ["promotions", "restores", "expiries"] {
        assert!(first[field].as_u64() >= Some(1), "{field} happened: {first}");
    }
    assert_eq!(first["jobs"]["failed"], 0);
    assert_eq!(first["jobs"]["dead"], 0);
    assert!(first["jobs"]["processed"].as_u64() > Some(100));
    assert_eq!(
        first["verified"].as_u64(),
        Some(surviving),
        "every surviving version read back with its SHA-256"
    );
    assert_eq!(first["checkpoints"].as_array().map(Vec::len), Some(6));
    assert!(first["latency_ms"]["hot"]["p50"].as_f64() < Some(100.0));
    assert_eq!(counts(&first), counts(&second), "two runs, same counts");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_on_the_fleet_counts_what_the_embedded_demo_counts() {
    let fleet = Dossier::fleet().await;
    let corpus_dir = corpus().display().to_string();
    let on_fleet = tokio::task::block_in_place(|| fleet.json(&["demo", "--fleet", "--corpus", &corpus_dir]));
    fleet
        .execute(&format!("DROP SCHEMA IF EXISTS \"{}_demo\" CASCADE", fleet.schema()))
        .await;
    let embedded = tokio::task::block_in_place(|| demo(&Dossier::embedded()));
    assert_eq!(
        counts(&on_fleet),
        counts(&embedded),
        "Postgres, Redis and S3 give the embedded counts"
    );
    assert!(on_fleet["latency_ms"]["warm"]["p50"].as_f64() < Some(1000.0));
}

#[test]
fn demo_refuses_a_corpus_without_its_folders() {
    let d = Dossier::embedded();
    let empty = d.home.path().join("empty-corpus");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = d.run(&["demo", "--corpus", &empty.display().to_string()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resumes"));
}
