//! How bytes are stored, as a user would notice it: text compressed, PDFs kept raw, a small edit of a resume costing
//! a small delta, deltas and their bases moving through the tiers together, and corrupt bytes never served. Each on
//! the embedded default and on Postgres + Redis + S3 where the backend matters.

mod harness;

use dossier_core::{FileType, Tier};
use dossier_documents::DocError;
use dossier_lifecycle::LifecycleError;
use harness::Harness;

fn corpus(path: &str) -> Vec<u8> {
    let root = dossier_testkit::corpus_dir();
    std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("corpus file {path}: {e}"))
}

fn resume_06() -> Vec<u8> {
    let dir = dossier_testkit::corpus_dir().join("resumes");
    let name = std::fs::read_dir(&dir)
        .expect("resumes")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.contains("06") && n.ends_with(".json"))
        .expect("resume 06 in the corpus");
    corpus(&format!("resumes/{name}"))
}

/// A pdfTeX document of resume size: its streams are already deflated, so LZ4 saves almost nothing.
fn pdf() -> Vec<u8> {
    corpus("pdfs/10-texlive-humanities-doc--sample.pdf")
}

/// Resume 06 with three fields edited, as a candidate tailoring it would.
fn edited(original: &[u8]) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(original).expect("resume JSON");
    doc["basics"]["label"] = "Staff Engineer, Platform".into();
    doc["basics"]["email"] = "candidate@example.org".into();
    doc["basics"]["summary"] = "Ten years building reliable storage systems.".into();
    serde_json::to_vec_pretty(&doc).expect("JSON")
}

/// (codec, stored size, delta depth, has a base) of the blob of one version.
async fn stored(h: &Harness, user: &str, key: &str, version: i32) -> (String, i64, i32, bool) {
    let rows = h
        .sql(&format!(
            "SELECT b.codec, b.stored_size, b.delta_depth, b.delta_base_id FROM blobs b \
             JOIN file_metadata f ON f.blob_id = b.id \
             WHERE f.user_id = '{user}' AND f.doc_key = '{key}' AND f.version_no = {version}"
        ))
        .await;
    let r = &rows[0];
    (
        r.try_get_by_index(0).expect("codec"),
        r.try_get_by_index(1).expect("stored size"),
        r.try_get_by_index(2).expect("depth"),
        r.try_get_by_index::<Option<i64>>(3).expect("base").is_some(),
    )
}

async fn read(h: &Harness, user: &str, key: &str, version: Option<i32>) -> Vec<u8> {
    h.lc.read(user, key, version).await.expect("read").bytes.to_vec()
}

async fn small_edits_cost_a_small_delta(fleet: bool) {
    let h = Harness::new(fleet, "2026-01-01T10:00:00Z", &[("DOSSIER_PACK_MAX_WAIT_HOURS", "0")]).await;
    let v1 = resume_06();
    let v2 = edited(&v1);
    h.put("cho", "resume.json", FileType::ActiveResume, None, &v1).await;
    h.put("cho", "resume.json", FileType::ActiveResume, None, &v2).await;

    let (codec1, size1, _, _) = stored(&h, "cho", "resume.json", 1).await;
    assert_eq!(codec1, "lz4", "JSON is compressed at ingest");
    assert!(size1 < v1.len() as i64, "{size1} < {}", v1.len());
    let (codec2, size2, depth2, based) = stored(&h, "cho", "resume.json", 2).await;
    assert_eq!((codec2.as_str(), depth2, based), ("zstd", 1, true));
    assert!(size2 < 1024, "the second version costs {size2} bytes stored");
    assert_eq!(read(&h, "cho", "resume.json", None).await, v2);
    assert_eq!(read(&h, "cho", "resume.json", Some(1)).await, v1);
    let stats = h.lc.store.stats(Some("cho")).await.expect("stats");
    let hot = &stats.tiers[&Tier::Hot];
    assert_eq!(hot.raw_bytes, (v1.len() + v2.len()) as u64);
    assert_eq!(hot.stored_bytes, (size1 + size2) as u64, "stats count what is stored");

    // v1 is superseded: after 30 days its row says cold, but its bytes stay as hot as the delta that needs them.
    h.set_now("2026-02-01T00:00:00Z");
    h.sweep_and_run().await;
    assert_eq!(h.tier_of("cho", "resume.json").await, Tier::Warm, "v2 aged to warm");
    let rows = h
        .sql("SELECT version_no, storage_tier FROM file_metadata WHERE user_id = 'cho' ORDER BY version_no")
        .await;
    let tiers: Vec<String> = rows.iter().map(|r| r.try_get_by_index(1).expect("tier")).collect();
    assert_eq!(tiers, ["cold", "warm"]);
    let objects = h.objects().await;
    assert_eq!(
        objects[&Tier::Warm],
        2,
        "the base went warm with its delta: {objects:?}"
    );
    assert_eq!(read(&h, "cho", "resume.json", None).await, v2);
    assert_eq!(read(&h, "cho", "resume.json", Some(1)).await, v1);

    // When the delta goes cold too, it waits for a cold pack, which the next sweep seals; its base follows into the
    // next one.
    h.set_now("2026-07-01T00:00:00Z");
    h.sweep_and_run().await;
    h.sweep_and_run().await;
    assert_eq!(
        h.objects().await,
        harness::only(Tier::Cold, 2),
        "two packs, no loose object"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM blobs WHERE pack_id IS NOT NULL").await, 2);
    assert_eq!(read(&h, "cho", "resume.json", Some(1)).await, v1);
    assert_eq!(read(&h, "cho", "resume.json", None).await, v2);
    let fsck = h.lc.fsck(true).await.expect("fsck");
    assert!(fsck.is_clean(), "{fsck:?}");

    // Deleting the document removes the delta and then its base.
    h.lc.store.delete("cho", "resume.json", "test").await.expect("rm");
    assert_eq!(h.objects().await, harness::only(Tier::Hot, 0));
    assert_eq!(h.count("SELECT COUNT(*) FROM blobs").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn small_edits_cost_a_small_delta_embedded() {
    small_edits_cost_a_small_delta(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn small_edits_cost_a_small_delta_on_the_fleet() {
    small_edits_cost_a_small_delta(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyframe_every_k_versions_bounds_the_chain() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[("DOSSIER_DELTA_KEYFRAME_EVERY", "3")]).await;
    let mut versions = Vec::new();
    for n in 0..7 {
        let text = format!("{}\nrevision {n}\n", String::from_utf8_lossy(&resume_06()));
        h.put("dan", "cv.txt", FileType::ResumeSource, None, text.as_bytes())
            .await;
        versions.push(text);
    }
    let mut depths = Vec::new();
    for v in 1..=7 {
        depths.push(stored(&h, "dan", "cv.txt", v).await.2);
    }
    assert_eq!(depths, [0, 1, 2, 0, 1, 2, 0]);
    for (i, text) in versions.iter().enumerate() {
        assert_eq!(read(&h, "dan", "cv.txt", Some(i as i32 + 1)).await, text.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pdfs_stay_raw_and_text_is_compressed() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[]).await;
    let pdf = pdf();
    h.put("eve", "cv.pdf", FileType::GeneratedPdf, None, &pdf).await;
    h.put("eve", "cv.json", FileType::ActiveResume, None, &resume_06())
        .await;
    let (codec, size, _, _) = stored(&h, "eve", "cv.pdf", 1).await;
    assert_eq!((codec.as_str(), size), ("raw", pdf.len() as i64));
    assert_eq!(stored(&h, "eve", "cv.json", 1).await.0, "lz4");
    assert_eq!(
        h.count("SELECT COUNT(*) FROM blobs WHERE codec_checked_at IS NULL")
            .await,
        0,
        "both decisions recorded"
    );
    assert_eq!(read(&h, "eve", "cv.pdf", None).await, pdf);
}

async fn compress_jobs(fleet: bool) {
    let h = Harness::new(fleet, "2026-01-01T10:00:00Z", &[("DOSSIER_COMPRESS", "job")]).await;
    let (json, pdf) = (resume_06(), pdf());
    h.put("fay", "cv.json", FileType::ActiveResume, None, &json).await;
    h.put("fay", "cv.pdf", FileType::GeneratedPdf, None, &pdf).await;
    assert_eq!(
        stored(&h, "fay", "cv.json", 1).await.0,
        "raw",
        "stored raw, left for a job"
    );

    let report = h.lc.sweep(false).await.expect("sweep");
    assert_eq!(report.compressions, 2);
    assert_eq!(h.run_jobs().await, 2);
    let (codec, size, _, _) = stored(&h, "fay", "cv.json", 1).await;
    assert_eq!(codec, "lz4");
    assert!(size < json.len() as i64 * 9 / 10, "{size} saves 10 % of {}", json.len());
    assert_eq!(stored(&h, "fay", "cv.pdf", 1).await.0, "raw", "a PDF does not compress");
    assert_eq!(read(&h, "fay", "cv.json", None).await, json);
    assert_eq!(read(&h, "fay", "cv.pdf", None).await, pdf);
    assert_eq!(
        h.objects().await[&Tier::Hot],
        2,
        "the raw object was replaced, not kept"
    );

    let again = h.lc.sweep(false).await.expect("sweep");
    assert_eq!(again.compressions, 0, "decisions are not repeated");
    assert_eq!(h.run_jobs().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn compress_jobs_compress_text_once_and_keep_pdfs_raw_embedded() {
    compress_jobs(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compress_jobs_compress_text_once_and_keep_pdfs_raw_on_the_fleet() {
    compress_jobs(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_byte_is_an_integrity_error_and_marks_the_content_corrupt() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[]).await;
    h.put("gus", "cv.json", FileType::ActiveResume, None, &resume_06())
        .await;
    let rows = h.sql("SELECT bucket, object_key FROM blobs").await;
    let (bucket, key): (String, String) = (
        rows[0].try_get_by_index(0).expect("bucket"),
        rows[0].try_get_by_index(1).expect("key"),
    );
    let original = h.lc.store.objects.get(&bucket, &key).await.expect("object");
    let mut bytes = original.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    h.lc.store
        .objects
        .put(&bucket, &key, bytes.into())
        .await
        .expect("tamper");
    h.lc.store
        .cache
        .evict(
            &h.sql("SELECT uid FROM blobs").await[0]
                .try_get_by_index::<String>(0)
                .expect("uid"),
        )
        .await;

    let err = h.lc.read("gus", "cv.json", None).await.expect_err("corrupt");
    assert!(matches!(err, LifecycleError::Doc(DocError::Integrity(_))), "{err:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM blobs WHERE state = 'corrupt'").await, 1);
    let again = h.lc.read("gus", "cv.json", None).await.expect_err("still corrupt");
    assert!(again.to_string().contains("corrupt"), "{again}");

    let fsck = h.lc.fsck(true).await.expect("fsck");
    assert_eq!(fsck.corrupt.len(), 1, "fsck reports it: {fsck:?}");
    assert_eq!(fsck.corrupt[0].documents, ["gus:cv.json v1"]);

    // An operator puts the right bytes back: fsck clears the mark and the document reads again.
    h.lc.store.objects.put(&bucket, &key, original).await.expect("repair");
    let fsck = h.lc.fsck(false).await.expect("fsck");
    assert_eq!((fsck.corrupt.len(), fsck.corrupt_cleared), (0, 1), "{fsck:?}");
    assert_eq!(read(&h, "gus", "cv.json", None).await, resume_06());
    assert!(h.lc.fsck(true).await.expect("fsck").is_clean());
}

async fn packs(fleet: bool) {
    let h = Harness::new(fleet, "2026-01-01T10:00:00Z", &[("DOSSIER_PACK_MAX_WAIT_HOURS", "24")]).await;
    let record = |i: usize| format!("{{\"consent\":\"recorded\",\"n\":{i}}}").into_bytes();
    for i in 0..20 {
        h.put(
            "kai",
            &format!("consent-{i}"),
            FileType::ComplianceRecord,
            None,
            &record(i),
        )
        .await;
    }
    assert_eq!(h.objects().await[&Tier::Cold], 20, "each waits in an object of its own");
    let report = h.lc.sweep(false).await.expect("sweep");
    assert_eq!(report.packs_sealed, 0, "not before the oldest has waited its day");

    h.set_now("2026-01-02T10:00:00Z");
    let report = h.lc.sweep(false).await.expect("sweep");
    assert_eq!(report.packs_sealed, 1);
    assert_eq!(
        h.objects().await,
        harness::only(Tier::Cold, 1),
        "twenty contents, one object"
    );
    for i in 0..20 {
        assert_eq!(read(&h, "kai", &format!("consent-{i}"), None).await, record(i));
    }

    // Deleting members never loses a neighbour; once most of the pack is dead it is compacted.
    for i in 0..15 {
        h.lc.store
            .delete("kai", &format!("consent-{i}"), "test")
            .await
            .expect("rm");
    }
    assert_eq!(read(&h, "kai", "consent-15", None).await, record(15));
    let report = h.lc.sweep(false).await.expect("sweep");
    assert_eq!(report.compactions, 1);
    assert_eq!(h.run_jobs().await, 1);
    assert_eq!(h.objects().await, harness::only(Tier::Cold, 1), "the old pack went");
    assert_eq!(h.count("SELECT COUNT(*) FROM packs").await, 1);
    assert_eq!(h.count("SELECT CAST(member_count AS BIGINT) FROM packs").await, 5);
    for i in 15..20 {
        assert_eq!(read(&h, "kai", &format!("consent-{i}"), None).await, record(i));
    }
    let fsck = h.lc.fsck(true).await.expect("fsck");
    assert!(fsck.is_clean(), "{fsck:?}");

    for i in 15..20 {
        h.lc.store
            .delete("kai", &format!("consent-{i}"), "test")
            .await
            .expect("rm");
    }
    assert_eq!(
        h.objects().await,
        harness::only(Tier::Cold, 0),
        "an empty pack is removed"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM packs").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn small_contents_share_a_pack_embedded() {
    packs(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn small_contents_share_a_pack_on_the_fleet() {
    packs(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_ages_through_cold_and_glacier_packs() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[("DOSSIER_PACK_MAX_WAIT_HOURS", "0")]).await;
    let cv = resume_06();
    h.put("lea", "cv.json", FileType::ActiveResume, None, &cv).await;
    for day in ["2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z"] {
        h.set_now(day);
        h.sweep_and_run().await;
    }
    h.sweep_and_run().await;
    assert_eq!(h.tier_of("lea", "cv.json").await, Tier::Cold);
    assert_eq!(h.objects().await, harness::only(Tier::Cold, 1));
    assert_eq!(read(&h, "lea", "cv.json", None).await, cv);

    h.set_now("2027-01-02T00:00:00Z");
    h.sweep_and_run().await;
    h.sweep_and_run().await;
    assert_eq!(
        h.objects().await,
        harness::only(Tier::Glacier, 1),
        "out of the cold pack into a glacier one"
    );
    assert!(
        h.lc.read("lea", "cv.json", None).await.is_err(),
        "glacier needs a restore"
    );
    h.set_now("2027-01-02T12:00:00Z");
    assert_eq!(read(&h, "lea", "cv.json", None).await, cv);
    let fsck = h.lc.fsck(true).await.expect("fsck");
    assert!(fsck.is_clean(), "{fsck:?}");
}
