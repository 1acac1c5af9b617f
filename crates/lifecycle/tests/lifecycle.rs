//! The lifecycle on the injected clock, on the embedded default and on Postgres + S3 + Redis: jobs are run in
//! process straight from the outbox, so these tests check the operations, not the queues.

mod harness;

use dossier_core::{FileType, Tier};
use dossier_documents::DocError;
use dossier_lifecycle::{ApplicationUpdate, LifecycleError};
use harness::{Harness, at, only};

async fn full_life(fleet: bool) {
    // One object per content, so each move is visible in the buckets (packs have a test of their own).
    let h = Harness::new(fleet, "2026-01-01T10:00:00Z", &[("DOSSIER_PACK_TIERS", "none")]).await;
    let bytes = b"{\"basics\":{\"name\":\"Ada\"}}";
    h.put("ada", "cv.json", FileType::ActiveResume, None, bytes).await;
    assert_eq!(h.objects().await, only(Tier::Hot, 1));

    h.set_now("2026-01-31T23:59:59Z");
    assert_eq!(h.sweep_and_run().await, 0, "nothing due one second before the rule");
    h.set_now("2026-02-01T00:00:00Z");
    assert_eq!(h.sweep_and_run().await, 1);
    assert_eq!(h.tier_of("ada", "cv.json").await, Tier::Warm);
    assert_eq!(h.objects().await, only(Tier::Warm, 1), "bytes in exactly one tier");
    assert_eq!(h.sweep_and_run().await, 0, "a second sweep finds nothing");
    assert_eq!(h.reasons("ada").await, ["ingest", "age"]);

    h.set_now("2026-07-01T00:00:00Z");
    h.sweep_and_run().await;
    assert_eq!(h.tier_of("ada", "cv.json").await, Tier::Cold);
    h.set_now("2027-01-02T00:00:00Z");
    h.sweep_and_run().await;
    assert_eq!(h.tier_of("ada", "cv.json").await, Tier::Glacier);
    assert_eq!(h.objects().await, only(Tier::Glacier, 1));

    // Glacier: the first read starts one restore, the second sees the same one.
    let first = h.lc.read("ada", "cv.json", None).await.expect_err("restoring");
    let second = h.lc.read("ada", "cv.json", None).await.expect_err("still restoring");
    let (eta1, job1, eta2, job2) = match (first, second) {
        (
            LifecycleError::Doc(DocError::Restoring { eta: e1, job_id: j1 }),
            LifecycleError::Doc(DocError::Restoring { eta: e2, job_id: j2 }),
        ) => (e1, j1, e2, j2),
        other => panic!("expected restoring twice, got {other:?}"),
    };
    assert_eq!((eta1, &job1), (eta2, &job2));
    assert_eq!(eta1, at("2027-01-02T12:00:00Z"));
    assert_eq!(h.count("SELECT COUNT(*) FROM restores").await, 1);
    h.run_jobs().await;
    assert!(
        h.lc.read("ada", "cv.json", None).await.is_err(),
        "not before the restore time"
    );
    h.set_now("2027-01-02T12:00:00Z");
    h.sweep_and_run().await;
    let read = h.lc.read("ada", "cv.json", None).await.expect("restored");
    assert_eq!(read.bytes.as_ref(), bytes);
    assert_eq!(h.count("SELECT COUNT(*) FROM restores").await, 1, "one restore in all");

    let fsck = h.lc.fsck(true).await.expect("fsck");
    assert!(fsck.is_clean(), "{fsck:?}");

    h.set_now("2028-01-02T00:00:00Z");
    h.sweep_and_run().await;
    assert!(matches!(
        h.lc.read("ada", "cv.json", None).await,
        Err(LifecycleError::Doc(DocError::NotFound(_)))
    ));
    assert_eq!(h.objects().await, only(Tier::Hot, 0));
    assert_eq!(
        h.count("SELECT COUNT(*) FROM audit_log WHERE action = 'expire'").await,
        1
    );
    assert_eq!(
        h.reasons("ada").await,
        ["ingest", "age", "age", "age", "restore", "expiry"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_lives_its_whole_life_embedded() {
    full_life(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_lives_its_whole_life_on_the_fleet() {
    full_life(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn promotion_after_the_sixth_read_in_the_window() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[]).await;
    h.put("bea", "stats.csv", FileType::AnalyticsData, None, b"a,b\n1,2\n")
        .await;
    assert_eq!(h.tier_of("bea", "stats.csv").await, Tier::Warm);
    for _ in 0..5 {
        h.lc.read("bea", "stats.csv", None).await.expect("read");
    }
    assert_eq!(h.run_jobs().await, 0, "five reads promote nothing");
    h.lc.read("bea", "stats.csv", None).await.expect("sixth read");
    assert_eq!(h.run_jobs().await, 1);
    assert_eq!(h.tier_of("bea", "stats.csv").await, Tier::Hot);
    assert_eq!(h.reasons("bea").await, ["ingest", "promotion"]);
    assert_eq!(h.objects().await, only(Tier::Hot, 1));
    // Not demoted at the next sweep: age rules restart from the promotion.
    h.set_now("2026-01-10T00:00:00Z");
    assert_eq!(h.sweep_and_run().await, 0);
    assert_eq!(h.tier_of("bea", "stats.csv").await, Tier::Hot);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_outside_the_window_do_not_promote() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[]).await;
    h.put("cy", "stats.csv", FileType::AnalyticsData, None, b"x").await;
    for day in 0..8 {
        h.set_now(&format!("2026-{:02}-01T00:00:00Z", day + 1));
        h.lc.read("cy", "stats.csv", None).await.expect("read");
    }
    assert_eq!(h.run_jobs().await, 0, "one read a month never reaches six in 30 days");
}

#[tokio::test(flavor = "multi_thread")]
async fn interview_documents_are_prewarmed() {
    let h = Harness::new(true, "2026-01-01T10:00:00Z", &[]).await;
    h.put(
        "dee",
        "letter.txt",
        FileType::CoverLetter,
        Some("acme-42"),
        b"Dear ACME",
    )
    .await;
    h.set_now("2026-07-01T00:00:00Z");
    h.sweep_and_run().await;
    assert_eq!(h.tier_of("dee", "letter.txt").await, Tier::Cold);
    let update = ApplicationUpdate {
        interview_at: Some(at("2026-07-20T15:00:00Z")),
        ..Default::default()
    };
    h.lc.set_application("dee", "acme-42", update).await.expect("app set");
    h.set_now("2026-07-19T14:59:59Z");
    assert_eq!(h.sweep_and_run().await, 0, "not before the lead time");
    h.set_now("2026-07-19T15:00:00Z");
    assert_eq!(h.sweep_and_run().await, 1);
    assert_eq!(h.tier_of("dee", "letter.txt").await, Tier::Hot);
    assert_eq!(
        h.reasons("dee").await,
        ["ingest", "age", "prewarm"],
        "hot straight to cold: tiers may be skipped"
    );
    assert_eq!(h.sweep_and_run().await, 0, "pre-warmed once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legal_hold_blocks_expiry_and_deletion() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[]).await;
    h.put("eve", "scratch", FileType::Temp, None, b"temporary").await;
    assert_eq!(h.lc.set_hold("eve", "scratch", true).await.expect("hold"), 1);
    h.set_now("2026-02-01T00:00:00Z");
    assert_eq!(h.sweep_and_run().await, 0, "held: nothing due");
    assert!(matches!(
        h.lc.store.delete("eve", "scratch", "request").await,
        Err(DocError::Conflict(_))
    ));
    assert_eq!(
        h.lc.read("eve", "scratch", None)
            .await
            .expect("readable")
            .bytes
            .as_ref(),
        b"temporary"
    );
    h.lc.set_hold("eve", "scratch", false).await.expect("release");
    assert_eq!(h.sweep_and_run().await, 1);
    assert!(h.lc.read("eve", "scratch", None).await.is_err());
    assert_eq!(h.reasons("eve").await, ["ingest", "expiry"]);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM audit_log WHERE user_id = 'eve'").await,
        3,
        "hold on, off, expire"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pin_keeps_a_document_where_it_was_moved() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[("DOSSIER_PACK_TIERS", "none")]).await;
    h.put("fay", "cv", FileType::ActiveResume, None, b"pinned").await;
    h.lc.move_document("fay", "cv", Tier::Cold, true).await.expect("move");
    assert_eq!(h.tier_of("fay", "cv").await, Tier::Cold);
    assert_eq!(h.objects().await, only(Tier::Cold, 1));
    h.set_now("2030-01-01T00:00:00Z");
    assert_eq!(h.sweep_and_run().await, 0, "pinned: no move, no expiry");
    assert_eq!(h.tier_of("fay", "cv").await, Tier::Cold);
    assert_eq!(h.reasons("fay").await, ["ingest", "manual"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sweeps_at_once_enqueue_each_piece_of_work_once() {
    let h = Harness::new(true, "2026-01-01T10:00:00Z", &[]).await;
    for i in 0..40 {
        h.put(
            "gus",
            &format!("doc-{i}"),
            FileType::ActiveResume,
            None,
            format!("doc {i}").as_bytes(),
        )
        .await;
    }
    h.set_now("2026-02-01T00:00:00Z");
    let (a, b) = tokio::join!(h.lc.sweep(false), h.lc.sweep(false));
    let (a, b) = (a.expect("sweep a"), b.expect("sweep b"));
    assert_eq!(a.enqueued + b.enqueued, 40, "{a:?} {b:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await, 40);
    // Even without the lease, idempotency keys keep open work single.
    let again = h.lc.sweep(false).await.expect("sweep again");
    assert_eq!(again.enqueued, 0);
    assert_eq!(h.run_jobs().await, 40);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM storage_lifecycle_log WHERE reason = 'age'")
            .await,
        40
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_plans_with_reasons_and_costs_and_enqueues_nothing() {
    let h = Harness::new(false, "2026-01-01T10:00:00Z", &[]).await;
    h.put("hal", "cv", FileType::ActiveResume, None, &vec![7u8; 300_000])
        .await;
    h.set_now("2026-02-01T00:00:00Z");
    let plan = h.lc.sweep(true).await.expect("dry run");
    assert_eq!(plan.planned.len(), 1);
    let p = &plan.planned[0];
    assert_eq!(
        (p.work.as_str(), p.from, p.to, p.reason.as_str()),
        ("transition", Some(Tier::Hot), Some(Tier::Warm), "age")
    );
    assert!(p.monthly_cost_after_usd < p.monthly_cost_before_usd);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(h.tier_of("hal", "cv").await, Tier::Hot);
}

#[tokio::test(flavor = "multi_thread")]
async fn fsck_removes_old_orphans_and_reports_missing_objects() {
    let h = Harness::new(true, "2026-01-01T10:00:00Z", &[("DOSSIER_FSCK_GRACE_HOURS", "0")]).await;
    h.put("ian", "kept", FileType::ActiveResume, None, b"kept").await;
    h.put("ian", "lost", FileType::ActiveResume, None, b"lost").await;
    let store = &h.lc.store;
    let hot = store.layout.bucket(Tier::Hot);
    store
        .objects
        .put(
            hot,
            "hot/active/zz/orphan.0190f0000000700080000000000000aa",
            b"orphan".to_vec().into(),
        )
        .await
        .expect("orphan");
    let rows = h
        .sql("SELECT object_key FROM blobs b JOIN file_metadata f ON f.blob_id = b.id WHERE f.doc_key = 'lost'")
        .await;
    let lost_key: String = rows[0].try_get("", "object_key").expect("key");
    store
        .objects
        .delete(hot, &lost_key)
        .await
        .expect("lose an object behind Dossier's back");

    let dry = h.lc.fsck(true).await.expect("dry run");
    assert_eq!(dry.orphans_removed.len(), 1);
    assert_eq!(dry.missing.len(), 1);
    assert!(dry.missing[0].documents[0].contains("lost"), "{dry:?}");
    assert_eq!(h.objects().await[&Tier::Hot], 2, "dry run removes nothing");

    let real = h.lc.fsck(false).await.expect("fsck");
    assert_eq!(real.orphans_removed.len(), 1);
    assert_eq!(h.objects().await[&Tier::Hot], 1);
    assert_eq!(
        h.lc.store.list("ian", &Default::default()).await.expect("ls").len(),
        2,
        "rows are never dropped"
    );
    let again = h.lc.fsck(false).await.expect("fsck again");
    assert!(again.orphans_removed.is_empty() && again.missing.len() == 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_reads_only_due_rows_through_the_next_due_index() {
    let h = Harness::new(true, "2026-01-01T10:00:00Z", &[]).await;
    h.put("jo", "seed", FileType::ActiveResume, None, b"seed").await;
    // 100,000 versions, 1,000 of them due.
    h.sql(
        "INSERT INTO file_metadata (file_key, user_id, doc_key, version_no, original_name, file_type, content_hash, \
         file_size, storage_tier, blob_id, is_active, legal_hold, pinned, access_count, created_at, last_accessed_at, \
         tier_changed_at, next_due_at) \
         SELECT 'fk' || i, 'jo', 'k' || i, 1, 'n', 'active_resume', 'h', 1, 'hot', (SELECT MIN(id) FROM blobs), true, \
         false, false, 0, now(), now(), now(), \
         CASE WHEN i <= 1000 THEN TIMESTAMPTZ '2026-01-15T00:00:00Z' ELSE TIMESTAMPTZ '2027-01-01T00:00:00Z' END \
         FROM generate_series(1, 100000) AS i",
    )
    .await;
    h.sql("ANALYZE file_metadata").await;
    let query = dossier_lifecycle::due_page(at("2026-02-01T00:00:00Z"), None, 1000);
    let sql =
        dossier_db::sea_orm::QueryTrait::build(&query, dossier_db::sea_orm::DatabaseBackend::Postgres).to_string();
    let plan = h.sql(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).await;
    let plan: serde_json::Value = plan[0].try_get_by_index(0).expect("plan");
    let text = plan.to_string();
    assert!(
        text.contains("file_metadata_next_due_at"),
        "plan does not use the index: {text}"
    );
    assert!(!text.contains("Seq Scan"), "{text}");
    let rows_read = plan[0]["Plan"]["Plans"][0]["Actual Rows"]
        .as_f64()
        .or(plan[0]["Plan"]["Actual Rows"].as_f64());
    assert!(
        rows_read.is_some_and(|r| r <= 1001.0),
        "read about the due rows only: {rows_read:?}"
    );
}
