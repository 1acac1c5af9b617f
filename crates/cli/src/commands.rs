//! One function per subcommand, each a thin layer over `dossier-documents`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dossier_core::config::{Config, Sources};
use dossier_core::{Clock, ManualClock, SystemClock};
use dossier_documents::{DocError, DocumentStore, ListFilter, PutRequest, Setup, Stats};
use dossier_lifecycle::{ApplicationUpdate, Lifecycle, LifecycleError};
use serde_json::json;

use crate::cli::{AppAction, Args, Command};
use crate::exit::{Failure, INVALID, RESTORING, SOFTWARE, UNAVAILABLE, USAGE};

/// Gathers flags, environment and `dossier.toml` into a [`Config`].
fn load_config(args: &Args) -> Result<Config, Failure> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut flags = BTreeMap::new();
    if let Some(now) = &args.now {
        flags.insert("DOSSIER_NOW".to_owned(), now.clone());
    }
    let explicit = args
        .config
        .clone()
        .or_else(|| env.get("DOSSIER_CONFIG").map(PathBuf::from));
    let file = match explicit {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::new(USAGE, format!("cannot read configuration {}: {e}", path.display())))?;
            Some((path, text))
        }
        None => {
            let default = PathBuf::from("dossier.toml");
            std::fs::read_to_string(&default).ok().map(|text| (default, text))
        }
    };
    let sources = Sources { flags, env, file };
    Ok(Config::load(&sources, &|p: &Path| std::fs::read_to_string(p))?)
}

/// Long-running commands (worker, demo) log at the configured level; one-shot commands only when asked to, so that a
/// failure prints exactly one line on stderr.
fn init_logging(config: &Config, long_running: bool) {
    let level = if long_running || config.log_explicit {
        config.log.as_str()
    } else {
        "off"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn clock_of(config: &Config) -> Arc<dyn Clock> {
    match config.now {
        Some(now) => Arc::new(ManualClock::new(now)),
        None => Arc::new(SystemClock),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::new(SOFTWARE, e.to_string()))?;
    println!("{text}");
    Ok(())
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let config = load_config(&args)?;
    init_logging(
        &config,
        matches!(args.command, Command::Worker { .. } | Command::Demo { .. }),
    );
    let clock = clock_of(&config);
    let json = args.json;
    match args.command {
        Command::Migrate => {
            let store = dossier_documents::open(&config, clock, Setup::Migrate).await?;
            let backend = if config.database_url.is_some() {
                "postgres"
            } else {
                "sqlite"
            };
            if json {
                print_json(
                    &json!({ "migrated": true, "database": backend, "buckets": store.layout.all().map(|(_, b)| b.to_owned()) }),
                )
            } else {
                println!("migrated the {backend} schema; buckets ready");
                Ok(())
            }
        }
        Command::Put {
            user,
            file_type,
            key,
            application,
            file,
        } => {
            let (bytes, name) = read_input(&file)?;
            let key = match key {
                Some(k) => k,
                None if file == Path::new("-") => {
                    return Err(Failure::new(USAGE, "reading from standard input needs --key"));
                }
                None => name.clone(),
            };
            let store = open(&config, clock).await?;
            let outcome = store
                .put(PutRequest {
                    user: &user,
                    key: &key,
                    file_type,
                    application: application.as_deref(),
                    original_name: &name,
                    bytes: bytes.into(),
                })
                .await?;
            if json {
                print_json(&outcome)
            } else {
                println!(
                    "stored {:?} version {} in {} ({} bytes, sha256 {})",
                    outcome.key, outcome.version, outcome.tier, outcome.size, outcome.sha256
                );
                Ok(())
            }
        }
        Command::Get {
            user,
            key,
            version,
            output,
        } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let read = match lifecycle.read(&user, &key, version).await {
                Ok(read) => read,
                Err(LifecycleError::Doc(DocError::Restoring { eta, job_id })) => {
                    let eta = eta.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    if json {
                        print_json(&json!({ "status": "restoring", "eta": eta, "job_id": job_id }))?;
                    }
                    return Err(Failure::new(
                        RESTORING,
                        format!("{key:?} is in glacier: restore in progress (job {job_id}), ready at {eta}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            match output {
                Some(path) => {
                    write_whole(&path, &read.bytes)?;
                    if json {
                        print_json(&read.info)?;
                    }
                    Ok(())
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&read.bytes)
                        .and_then(|()| out.flush())
                        .map_err(|e| Failure::new(SOFTWARE, format!("cannot write to standard output: {e}")))
                }
            }
        }
        Command::Ls {
            user,
            file_type,
            tier,
            all_versions,
        } => {
            let store = open(&config, clock).await?;
            let docs = store
                .list(
                    &user,
                    &ListFilter {
                        file_type,
                        tier,
                        all_versions,
                    },
                )
                .await?;
            if json {
                return print_json(&docs);
            }
            println!(
                "{:<40} {:>4} {:<20} {:<8} {:>10}  next due",
                "key", "ver", "type", "tier", "bytes"
            );
            for d in docs {
                let due = d
                    .next_due_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "-".into());
                let hold = if d.legal_hold { " (legal hold)" } else { "" };
                println!(
                    "{:<40} {:>4} {:<20} {:<8} {:>10}  {due}{hold}",
                    d.key,
                    d.version,
                    d.file_type,
                    d.tier.as_str(),
                    d.size
                );
            }
            Ok(())
        }
        Command::Rm { user, key } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let versions = lifecycle.delete(&user, &key, "request").await?;
            if json {
                print_json(&json!({ "key": key, "versions_deleted": versions }))
            } else {
                println!("deleted {key:?} ({versions} version(s))");
                Ok(())
            }
        }
        Command::App {
            action:
                AppAction::Set {
                    user,
                    id,
                    status,
                    interview_at,
                    closed_at,
                },
        } => {
            let lifecycle = lifecycle(&config, clock).await?;
            lifecycle
                .set_application(
                    &user,
                    &id,
                    ApplicationUpdate {
                        status,
                        interview_at,
                        closed_at,
                    },
                )
                .await?;
            if json {
                print_json(&json!({ "user": user, "application": id }))
            } else {
                println!("application {id:?} of {user} recorded");
                Ok(())
            }
        }
        Command::Hold { user, key, state } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let on = state == "on";
            let versions = lifecycle.set_hold(&user, &key, on).await?;
            if json {
                print_json(&json!({ "key": key, "legal_hold": on, "versions": versions }))
            } else {
                println!("legal hold {state} for {key:?} ({versions} version(s))");
                Ok(())
            }
        }
        Command::Move { user, key, to, pin } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let outcome = lifecycle.move_document(&user, &key, to, pin).await?;
            if json {
                print_json(&outcome)
            } else {
                println!("{key:?} is in {to}{}", if pin { " (pinned)" } else { "" });
                Ok(())
            }
        }
        Command::Demo { corpus, seed, fleet } => crate::demo::run(&config, &corpus, seed, fleet, json).await,
        Command::Worker {
            queues,
            concurrency,
            drain,
            health_listen,
        } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let mut options = dossier_worker::FleetOptions::from_config(&config);
            options.queues = queues;
            options.concurrency = concurrency.map_or(options.concurrency, |n| n as usize);
            options.health_listen = health_listen;
            let fleet = dossier_worker::lifecycle_fleet(&config, lifecycle, options).await?;
            let shutdown = dossier_worker::CancellationToken::new();
            tokio::spawn(stop_on_signals(shutdown.clone()));
            let result = if drain {
                fleet.run_until_drained(shutdown).await
            } else {
                fleet.run(shutdown).await
            };
            result.map_err(|e| Failure::new(UNAVAILABLE, e.to_string()))
        }
        Command::Sweep { dry_run } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let report = lifecycle.sweep(dry_run).await?;
            if json {
                return print_json(&report);
            }
            if report.skipped {
                println!("another sweep holds the lease; nothing done");
                return Ok(());
            }
            for p in &report.planned {
                let to = p.to.map(|t| t.to_string()).unwrap_or_else(|| "deleted".into());
                let from = p.from.map(|t| t.to_string()).unwrap_or_default();
                println!(
                    "{:<10} {}:{:?} v{} {from} -> {to} ({}) USD/month {:.6} -> {:.6}",
                    p.work, p.user, p.key, p.version, p.reason, p.monthly_cost_before_usd, p.monthly_cost_after_usd
                );
            }
            let verb = if dry_run { "would enqueue" } else { "enqueued" };
            println!(
                "{} due, {verb} {} job(s); saves USD {:.6}/month",
                report.planned.len(),
                if dry_run {
                    report.planned.len() as u64
                } else {
                    report.enqueued
                },
                report.monthly_saving_usd
            );
            Ok(())
        }
        Command::Fsck { dry_run } => {
            let lifecycle = lifecycle(&config, clock).await?;
            let report = lifecycle.fsck(dry_run).await?;
            if json {
                print_json(&report)?;
            } else {
                let verb = if dry_run { "would remove" } else { "removed" };
                let cleared = if dry_run { "would clear" } else { "cleared" };
                println!(
                    "{} objects, {} contents checked; {verb} {} orphan(s), {} recent orphan(s) kept, {} missing object(s), {} corrupt content(s), {cleared} {} corrupt mark(s), {} deletion(s) finished",
                    report.objects_scanned,
                    report.blobs_checked,
                    report.orphans_removed.len(),
                    report.orphans_recent,
                    report.missing.len(),
                    report.corrupt.len(),
                    report.corrupt_cleared,
                    report.deletions_finished
                );
                for (what, findings) in [("missing", &report.missing), ("corrupt", &report.corrupt)] {
                    for m in findings {
                        println!(
                            "{what}: {}/{} needed by {}",
                            m.bucket,
                            m.object_key,
                            m.documents.join(", ")
                        );
                    }
                }
            }
            if report.missing.is_empty() && report.corrupt.is_empty() {
                Ok(())
            } else {
                Err(Failure::new(
                    SOFTWARE,
                    format!(
                        "{} object(s) missing, {} content(s) corrupt",
                        report.missing.len(),
                        report.corrupt.len()
                    ),
                ))
            }
        }
        Command::Stats { user } => {
            let store = open(&config, clock).await?;
            let stats = store.stats(user.as_deref()).await?;
            if json { print_json(&stats) } else { print_stats(&stats) }
        }
    }
}

async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<DocumentStore, Failure> {
    Ok(dossier_documents::open(config, clock, Setup::Use).await?)
}

async fn lifecycle(config: &Config, clock: Arc<dyn Clock>) -> Result<Lifecycle, Failure> {
    Ok(Lifecycle::new(open(config, clock).await?, config.lifecycle.clone()))
}

/// The bytes to store and the name they came with.
fn read_input(file: &Path) -> Result<(Vec<u8>, String), Failure> {
    if file == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(INVALID, format!("cannot read standard input: {e}")))?;
        return Ok((bytes, "-".to_owned()));
    }
    let bytes =
        std::fs::read(file).map_err(|e| Failure::new(INVALID, format!("cannot read {}: {e}", file.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::new(USAGE, format!("{} names no file; give --key", file.display())))?;
    Ok((bytes, name))
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so a failure leaves no partial file.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.dossier-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::new(INVALID, format!("cannot write {}: {e}", path.display()))
    })
}

fn print_stats(stats: &Stats) -> Result<(), Failure> {
    println!(
        "{:<8} {:>10} {:>14} {:>8} {:>14} {:>14}",
        "tier", "documents", "raw bytes", "objects", "stored bytes", "USD/month"
    );
    let rows = stats
        .tiers
        .iter()
        .map(|(t, s)| (t.as_str(), s))
        .chain(std::iter::once(("total", &stats.total)));
    for (name, s) in rows {
        println!(
            "{:<8} {:>10} {:>14} {:>8} {:>14} {:>14.6}",
            name, s.documents, s.raw_bytes, s.objects, s.stored_bytes, s.monthly_cost_usd
        );
    }
    Ok(())
}

/// Cancels `token` on SIGTERM or SIGINT: workers stop fetching and finish or hand back in-flight work.
async fn stop_on_signals(token: dossier_worker::CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
    token.cancel();
}
