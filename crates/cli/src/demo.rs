//! `dossier demo`: the main job. It ingests the corpus for a handful of simulated users (resumes with several
//! versions, job descriptions, PDFs attached to applications, applications with interviews), runs the fleet
//! in-process through the real queues, and steps an injected clock through two simulated years of sweeps, reads,
//! interviews, promotions, restores and expiries. Same seed, same counts, every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use dossier_core::config::Config;
use dossier_core::{FileType, ManualClock, Tier};
use dossier_documents::{DocError, PutRequest, Setup, sha256_hex};
use dossier_jobs::{ExpireJob, HousekeepingJob, Job, PrewarmJob, PromoteJob, RestoreJob, SweepJob, TransitionJob};
use dossier_lifecycle::{ApplicationUpdate, Lifecycle, LifecycleError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;
use serde_json::json;

use crate::exit::{Failure, INVALID, SOFTWARE, UNAVAILABLE};

const START: &str = "2025-01-06T09:00:00Z";
const DAYS: i64 = 735;
const STEP_DAYS: i64 = 5;
const CHECKPOINTS: &[i64] = &[0, 90, 180, 365, 545, 730];
const USERS: usize = 6;
const KINDS: &[&str] = &[
    TransitionJob::KIND,
    PromoteJob::KIND,
    RestoreJob::KIND,
    PrewarmJob::KIND,
    ExpireJob::KIND,
    SweepJob::KIND,
    HousekeepingJob::KIND,
];

#[derive(Debug, Clone, Default, Serialize)]
struct TierFigures {
    documents: u64,
    stored_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Checkpoint {
    day: i64,
    tiers: BTreeMap<Tier, TierFigures>,
}

#[derive(Debug, Clone, Serialize)]
struct Latency {
    p50: f64,
    p99: f64,
    reads: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    checkpoints: Vec<Checkpoint>,
    #[serde(rename = "final")]
    final_: BTreeMap<&'static str, BTreeMap<Tier, TierFigures>>,
    ingested: BTreeMap<&'static str, u64>,
    transitions: BTreeMap<String, u64>,
    promotions: u64,
    restores: u64,
    expiries: u64,
    jobs: BTreeMap<&'static str, u64>,
    latency_ms: BTreeMap<Tier, Latency>,
    verified: u64,
    backend: &'static str,
    seed: u64,
}

/// A document the simulation stores on a given day.
#[derive(Debug, Clone)]
struct Planned {
    day: i64,
    user: String,
    key: String,
    file_type: FileType,
    application: Option<String>,
    bytes: Vec<u8>,
}

/// The corpus, read in place.
struct Corpus {
    resumes: Vec<(String, serde_json::Value)>,
    jobs: Vec<serde_json::Value>,
    pdfs: Vec<(String, Vec<u8>)>,
}

fn read_corpus(dir: &Path) -> Result<Corpus, Failure> {
    let bad = |what: String| Failure::new(INVALID, what);
    let list = |sub: &str, ext: &str| -> Result<Vec<PathBuf>, Failure> {
        let folder = dir.join(sub);
        let entries =
            std::fs::read_dir(&folder).map_err(|e| bad(format!("corpus folder {}: {e}", folder.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        files.sort();
        Ok(files)
    };
    let mut resumes = Vec::new();
    for path in list("resumes", "json")? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("schema.") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| bad(format!("{} is not JSON: {e}", path.display())))?;
        resumes.push((name, value));
    }
    let mut jobs = Vec::new();
    for path in list("jobs", "json")? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("job-schema") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| bad(format!("{} is not JSON: {e}", path.display())))?;
        match value.get("jobs").and_then(|j| j.as_array()) {
            Some(many) => jobs.extend(many.iter().cloned()),
            None => jobs.push(value),
        }
    }
    let mut pdfs = Vec::new();
    for path in list("pdfs", "pdf")? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        pdfs.push((
            name,
            std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?,
        ));
    }
    if resumes.is_empty() || jobs.is_empty() || pdfs.is_empty() {
        return Err(bad(format!(
            "{} needs resumes/*.json, jobs/*.json and pdfs/*.pdf",
            dir.display()
        )));
    }
    Ok(Corpus { resumes, jobs, pdfs })
}

/// A resume with a few fields edited, as a user revising it would.
fn revise(resume: &serde_json::Value, revision: usize) -> Vec<u8> {
    let mut r = resume.clone();
    if let Some(basics) = r.get_mut("basics").and_then(|b| b.as_object_mut()) {
        let label = basics
            .get("label")
            .and_then(|l| l.as_str())
            .unwrap_or("Engineer")
            .to_owned();
        basics.insert("label".into(), json!(format!("{label} (revision {revision})")));
        basics.insert(
            "summary".into(),
            json!(format!("Revision {revision}: tailored for the next application.")),
        );
    }
    serde_json::to_vec_pretty(&r).unwrap_or_default()
}

/// An application update the demo makes on a day: (day, user, application id, update).
type PlannedApplication = (i64, String, String, ApplicationUpdate);

/// Everything the simulated users store over the two years, in order.
fn plan(corpus: &Corpus, rng: &mut StdRng) -> (Vec<Planned>, Vec<PlannedApplication>) {
    let mut docs = Vec::new();
    let mut apps = Vec::new();
    let mut job_index = 0;
    let mut pdf_index = 0;
    for u in 0..USERS {
        let user = format!("user-{}", u + 1);
        let (_, resume) = &corpus.resumes[u % corpus.resumes.len()];
        let doc = |day: i64, key: &str, file_type, application: Option<String>, bytes: Vec<u8>| Planned {
            day,
            user: user.clone(),
            key: key.to_owned(),
            file_type,
            application,
            bytes,
        };
        docs.push(doc(
            0,
            "master.json",
            FileType::MasterResume,
            None,
            serde_json::to_vec_pretty(resume).unwrap_or_default(),
        ));
        for (v, day) in [0, 20 + u as i64 * 3, 60 + u as i64 * 5].into_iter().enumerate() {
            docs.push(doc(
                day,
                "resume.json",
                FileType::ActiveResume,
                None,
                revise(resume, v + 1),
            ));
        }
        docs.push(doc(
            2,
            "scratch/draft.txt",
            FileType::Temp,
            None,
            format!("draft of {user}").into_bytes(),
        ));
        docs.push(doc(
            3,
            "analytics/views.csv",
            FileType::AnalyticsData,
            None,
            format!("day,views\n1,{}\n", rng.random_range(1..99)).into_bytes(),
        ));
        docs.push(doc(
            4,
            "compliance/consent.json",
            FileType::ComplianceRecord,
            None,
            format!("{{\"user\":\"{user}\",\"consent\":true}}").into_bytes(),
        ));
        for a in 0..3 {
            let day = 10 + 120 * a as i64 + u as i64 * 7 + rng.random_range(0..5);
            let app = format!("app-{}", a + 1);
            let job = &corpus.jobs[job_index % corpus.jobs.len()];
            job_index += 1;
            let (pdf_name, pdf) = &corpus.pdfs[pdf_index % corpus.pdfs.len()];
            pdf_index += 1;
            let company = job
                .get("company")
                .and_then(|c| c.as_str())
                .unwrap_or("the company")
                .to_owned();
            docs.push(doc(
                day,
                &format!("{app}/job.json"),
                FileType::JobDescription,
                Some(app.clone()),
                serde_json::to_vec_pretty(job).unwrap_or_default(),
            ));
            docs.push(doc(
                day,
                &format!("{app}/letter.txt"),
                FileType::CoverLetter,
                Some(app.clone()),
                format!("Dear {company},\nI am applying as {user}.\n").into_bytes(),
            ));
            docs.push(doc(
                day,
                &format!("{app}/{pdf_name}"),
                FileType::GeneratedPdf,
                Some(app.clone()),
                pdf.clone(),
            ));
            // The first application interviews soon; the last one a year later, after its documents went cold.
            let interview = match a {
                0 => Some(day + 14),
                2 => Some(day + 200),
                _ => None,
            };
            apps.push((
                day,
                user.clone(),
                app.clone(),
                ApplicationUpdate {
                    status: Some("applied".into()),
                    ..Default::default()
                },
            ));
            if let Some(at) = interview {
                docs.push(doc(
                    at - 20,
                    &format!("{app}/interview-notes.md"),
                    FileType::InterviewMaterial,
                    Some(app.clone()),
                    format!("# Interview at {company}\n").into_bytes(),
                ));
                let when = day_instant(at) + Duration::hours(6);
                apps.push((
                    at - 30,
                    user.clone(),
                    app.clone(),
                    ApplicationUpdate {
                        status: Some("interview".into()),
                        interview_at: Some(when),
                        closed_at: None,
                    },
                ));
            }
        }
    }
    docs.sort_by_key(|d| d.day);
    apps.sort_by_key(|a| a.0);
    (docs, apps)
}

fn day_instant(day: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
        + Duration::days(day)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The demo's own configuration: embedded in `DOSSIER_HOME/demo` (recreated), or the configured fleet under demo
/// names (namespace, schema, buckets) that are emptied first.
async fn demo_config(base: &Config, fleet: bool) -> Result<Config, Failure> {
    let mut config = base.clone();
    config.home = base.home.join("demo");
    // The demo steps its own clock and sweeps when it says: wall-clock schedules would make its counts vary.
    config.worker.sweep_schedule = None;
    config.worker.housekeeping_schedule = None;
    if config.home.exists() {
        std::fs::remove_dir_all(&config.home)
            .map_err(|e| Failure::new(SOFTWARE, format!("cannot recreate {}: {e}", config.home.display())))?;
    }
    if !fleet {
        config.database_url = None;
        config.redis_url = None;
        config.s3 = None;
        return Ok(config);
    }
    let (Some(db), Some(redis), Some(_)) = (&config.database_url, &config.redis_url, &config.s3) else {
        return Err(Failure::new(
            INVALID,
            "demo --fleet needs DATABASE_URL, REDIS_URL and DOSSIER_S3_ENDPOINT",
        ));
    };
    config.namespace = format!("{}-demo", config.namespace);
    let schema = format!(
        "{}_demo",
        config.database_schema.clone().unwrap_or_else(|| "dossier".into())
    );
    let pg = dossier_db::Db::connect_postgres(db, None, 2)
        .await
        .map_err(DocError::from)?;
    pg.conn
        .execute_raw(Statement::from_string(
            pg.backend(),
            format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
        ))
        .await
        .map_err(|e| Failure::new(UNAVAILABLE, format!("recreating the demo schema: {e}")))?;
    config.database_schema = Some(schema);
    let client = redis::Client::open(redis.as_str()).map_err(|e| Failure::new(INVALID, format!("REDIS_URL: {e}")))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| Failure::new(UNAVAILABLE, format!("Redis: {e}")))?;
    let pattern = format!("*{}*", config.namespace);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query_async(&mut conn).await;
    }
    if let Some(s3) = config.s3.as_mut() {
        for b in s3.buckets.iter_mut() {
            *b = format!("{b}-demo");
        }
    }
    Ok(config)
}

pub async fn run(base: &Config, corpus_dir: &Path, seed: u64, fleet: bool, json_out: bool) -> Result<(), Failure> {
    let wall = Instant::now();
    let corpus = read_corpus(corpus_dir)?;
    let config = demo_config(base, fleet).await?;
    let clock = Arc::new(ManualClock::new(day_instant(0)));
    let store = dossier_documents::open(&config, clock.clone(), Setup::Migrate).await?;
    if fleet {
        for (_, bucket) in store.layout.all() {
            for object in store.objects.list(bucket, "").await.map_err(DocError::from)? {
                store
                    .objects
                    .delete(bucket, &object.key)
                    .await
                    .map_err(DocError::from)?;
            }
        }
    }
    let lifecycle = Lifecycle::new(store, config.lifecycle.clone());
    let mut options = dossier_worker::FleetOptions::from_config(&config);
    // One job at a time per queue: jobs on one document never race, so every run counts the same attempts.
    options.concurrency = 1;
    options.poll_interval = StdDuration::from_millis(10);
    if let Some(relay) = options.relay.as_mut() {
        relay.interval = StdDuration::from_millis(10);
    }
    let fleet_runtime = dossier_worker::lifecycle_fleet(&config, lifecycle.clone(), options).await?;
    let shutdown = dossier_worker::CancellationToken::new();
    let running = tokio::spawn(fleet_runtime.run(shutdown.clone()));

    let mut rng = StdRng::seed_from_u64(seed);
    let (docs, apps) = plan(&corpus, &mut rng);
    let mut next_doc = 0;
    let mut next_app = 0;
    let mut ingested_bytes = 0u64;
    let mut latencies: BTreeMap<Tier, Vec<f64>> = BTreeMap::new();
    let mut checkpoints = Vec::new();
    let mut waiting_restores: Vec<(String, String)> = Vec::new();

    let mut day = 0;
    while day <= DAYS {
        clock.set(day_instant(day));
        while next_doc < docs.len() && docs[next_doc].day <= day {
            let d = &docs[next_doc];
            lifecycle
                .store
                .put(PutRequest {
                    user: &d.user,
                    key: &d.key,
                    file_type: d.file_type,
                    application: d.application.as_deref(),
                    original_name: &d.key,
                    bytes: d.bytes.clone().into(),
                })
                .await?;
            ingested_bytes += d.bytes.len() as u64;
            next_doc += 1;
        }
        while next_app < apps.len() && apps[next_app].0 <= day {
            let (_, user, app, update) = &apps[next_app];
            lifecycle.set_application(user, app, update.clone()).await?;
            next_app += 1;
        }

        // Reads: the users take turns looking at their resume; one user studies their analytics daily for a while (promotion);
        // now and then someone opens an old application (cold and glacier reads, restores).
        let reader = (day / STEP_DAYS) as usize % USERS + 1;
        let mut reads = vec![(format!("user-{reader}"), "resume.json".to_owned())];
        if (200..=230).contains(&day) {
            reads.extend(std::iter::repeat_n(
                ("user-1".to_owned(), "analytics/views.csv".to_owned()),
                2,
            ));
        }
        if day % 45 == 0 && day > 0 {
            let u = rng.random_range(1..=USERS);
            reads.push((format!("user-{u}"), "app-1/letter.txt".to_owned()));
        }
        reads.append(&mut waiting_restores);
        for (user, key) in reads {
            let tier = lifecycle
                .store
                .list(&user, &Default::default())
                .await?
                .into_iter()
                .find(|d| d.key == key)
                .map(|d| d.tier);
            let started = Instant::now();
            match lifecycle.read(&user, &key, None).await {
                Ok(_) => {
                    if let Some(t) = tier {
                        latencies
                            .entry(t)
                            .or_default()
                            .push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Err(LifecycleError::Doc(DocError::Restoring { .. })) => waiting_restores.push((user, key)),
                Err(LifecycleError::Doc(DocError::NotFound(_))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        waiting_restores.dedup();
        // What the reads caused (promotions, restores) settles before the sweep, so every run sees the same state.
        wait_idle(&lifecycle).await?;

        lifecycle.sweep(false).await?;
        wait_idle(&lifecycle).await?;
        if CHECKPOINTS.contains(&day) {
            checkpoints.push(Checkpoint {
                day,
                tiers: tiers(&lifecycle).await?,
            });
        }
        day += STEP_DAYS;
    }
    clock.set(day_instant(DAYS));
    lifecycle.sweep(false).await?;
    wait_idle(&lifecycle).await?;
    shutdown.cancel();
    running
        .await
        .map_err(|e| Failure::new(SOFTWARE, format!("fleet task: {e}")))?
        .map_err(|e| Failure::new(UNAVAILABLE, e.to_string()))?;

    let verified = verify_all(&lifecycle).await?;
    let final_tiers = tiers(&lifecycle).await?;
    let log = count_by(
        &lifecycle,
        "SELECT reason, COUNT(*) FROM storage_lifecycle_log GROUP BY reason",
    )
    .await?;
    let transitions: BTreeMap<String, u64> = log
        .iter()
        .filter(|(r, _)| !matches!(r.as_str(), "ingest" | "restore" | "expiry"))
        .map(|(r, n)| (r.clone(), *n))
        .collect();
    let outcome = count_by(
        &lifecycle,
        "SELECT CASE WHEN dead_at IS NOT NULL THEN 'dead' WHEN completed_at IS NOT NULL THEN 'processed' ELSE 'open' END, COUNT(*) FROM outbox GROUP BY 1",
    )
    .await?;
    let failed = count_by(&lifecycle, "SELECT 'failed', COALESCE(SUM(attempts), 0) FROM outbox").await?;
    let mut latency_ms = BTreeMap::new();
    for (tier, mut values) in latencies {
        values.sort_by(|a, b| a.total_cmp(b));
        latency_ms.insert(
            tier,
            Latency {
                p50: percentile(&values, 50.0),
                p99: percentile(&values, 99.0),
                reads: values.len(),
            },
        );
    }
    let report = Report {
        checkpoints,
        final_: BTreeMap::from([("tiers", final_tiers)]),
        ingested: BTreeMap::from([("documents", docs.len() as u64), ("raw_bytes", ingested_bytes)]),
        promotions: log.get("promotion").copied().unwrap_or(0),
        restores: log.get("restore").copied().unwrap_or(0),
        expiries: log.get("expiry").copied().unwrap_or(0),
        transitions,
        jobs: BTreeMap::from([
            ("processed", outcome.get("processed").copied().unwrap_or(0)),
            ("failed", failed.get("failed").copied().unwrap_or(0)),
            ("dead", outcome.get("dead").copied().unwrap_or(0)),
        ]),
        latency_ms,
        verified,
        backend: if fleet { "fleet" } else { "embedded" },
        seed,
    };
    if json_out {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Failure::new(SOFTWARE, e.to_string()))?;
        println!("{text}");
    } else {
        print_report(&report, wall.elapsed());
    }
    Ok(())
}

/// Waits until every job the demo's steps caused has completed or died.
async fn wait_idle(lifecycle: &Lifecycle) -> Result<(), Failure> {
    let deadline = Instant::now() + StdDuration::from_secs(120);
    loop {
        let open = dossier_producer::outbox::open_rows(&lifecycle.store.db.conn, KINDS)
            .await
            .map_err(|e| Failure::new(UNAVAILABLE, e.to_string()))?;
        if open == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Failure::new(
                SOFTWARE,
                format!("{open} job(s) still open after two minutes"),
            ));
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}

async fn count_by(lifecycle: &Lifecycle, sql: &str) -> Result<BTreeMap<String, u64>, Failure> {
    let conn = &lifecycle.store.db.conn;
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .map_err(|e| Failure::new(UNAVAILABLE, e.to_string()))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let key: String = row
            .try_get_by_index(0)
            .map_err(|e| Failure::new(SOFTWARE, e.to_string()))?;
        let n: i64 = row
            .try_get_by_index(1)
            .map_err(|e| Failure::new(SOFTWARE, e.to_string()))?;
        out.insert(key, n.max(0) as u64);
    }
    Ok(out)
}

/// Documents and stored bytes per tier (every stored version, by the tier its policy placed it in).
async fn tiers(lifecycle: &Lifecycle) -> Result<BTreeMap<Tier, TierFigures>, Failure> {
    let stats = lifecycle.store.stats(None).await?;
    Ok(stats
        .tiers
        .into_iter()
        .map(|(tier, s)| {
            (
                tier,
                TierFigures {
                    documents: s.documents,
                    stored_bytes: s.stored_bytes,
                },
            )
        })
        .collect())
}

/// Reads every surviving version's bytes straight from its tier and checks its SHA-256.
async fn verify_all(lifecycle: &Lifecycle) -> Result<u64, Failure> {
    use dossier_db::entity::{blob, file_metadata};
    use sea_orm::EntityTrait;
    let conn = &lifecycle.store.db.conn;
    let rows = file_metadata::Entity::find()
        .all(conn)
        .await
        .map_err(|e| Failure::new(UNAVAILABLE, e.to_string()))?;
    let mut verified = 0;
    for row in rows {
        let b = blob::Entity::find_by_id(row.blob_id)
            .one(conn)
            .await
            .map_err(|e| Failure::new(UNAVAILABLE, e.to_string()))?
            .ok_or_else(|| Failure::new(SOFTWARE, format!("{} has no content row", row.doc_key)))?;
        let (bytes, _) = lifecycle.store.read_blob(&b).await?;
        if sha256_hex(&bytes) != row.content_hash {
            return Err(Failure::new(
                SOFTWARE,
                format!(
                    "{}:{} v{} read back different bytes",
                    row.user_id, row.doc_key, row.version_no
                ),
            ));
        }
        verified += 1;
    }
    Ok(verified)
}

fn print_report(r: &Report, took: StdDuration) {
    println!(
        "Dossier demo ({} backend, seed {}): {} documents, {} bytes ingested for {USERS} users over {DAYS} simulated days",
        r.backend, r.seed, r.ingested["documents"], r.ingested["raw_bytes"]
    );
    println!();
    println!(
        "{:>5}  {:>18} {:>18} {:>18} {:>18}",
        "day", "hot", "warm", "cold", "glacier"
    );
    let row = |label: String, tiers: &BTreeMap<Tier, TierFigures>| {
        let cell = |t: Tier| {
            tiers
                .get(&t)
                .map(|f| format!("{} docs {:>8} B", f.documents, f.stored_bytes))
                .unwrap_or_default()
        };
        println!(
            "{label:>5}  {:>18} {:>18} {:>18} {:>18}",
            cell(Tier::Hot),
            cell(Tier::Warm),
            cell(Tier::Cold),
            cell(Tier::Glacier)
        );
    };
    for c in &r.checkpoints {
        row(c.day.to_string(), &c.tiers);
    }
    row("final".into(), &r.final_["tiers"]);
    println!();
    let transitions: Vec<String> = r.transitions.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("transitions by reason: {}", transitions.join(", "));
    println!(
        "promotions {}, restores {}, expiries {}",
        r.promotions, r.restores, r.expiries
    );
    println!(
        "jobs: {} processed, {} failed attempts, {} dead",
        r.jobs["processed"], r.jobs["failed"], r.jobs["dead"]
    );
    for (tier, l) in &r.latency_ms {
        let promise = match tier {
            Tier::Hot => " (promise < 100 ms)",
            Tier::Warm => " (promise < 1000 ms)",
            _ => "",
        };
        println!(
            "read latency {tier}: p50 {:.2} ms, p99 {:.2} ms over {} reads{promise}",
            l.p50, l.p99, l.reads
        );
    }
    println!(
        "{} surviving versions read back with their SHA-256; took {:.1} s",
        r.verified,
        took.as_secs_f64()
    );
}
