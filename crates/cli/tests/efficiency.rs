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
