//! The command line of CONTRACT.md: global flags accepted before or after the subcommand.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use dossier_core::{FileType, Tier};

#[derive(Debug, Parser)]
#[command(
    name = "dossier",
    version,
    about = "Tiered document store and job-queue worker fleet for resume automation"
)]
pub struct Args {
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// The clock of this invocation (RFC 3339; offsets are normalised to UTC). Environment: DOSSIER_NOW.
    #[arg(long, global = true, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Path of dossier.toml. Environment: DOSSIER_CONFIG.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations and create missing buckets (fleet); embedded homes migrate themselves.
    Migrate,
    /// Store a document; an existing key gets a new version.
    Put {
        #[arg(long)]
        user: String,
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_file_type)]
        file_type: FileType,
        /// The document's key (default: the file's name).
        #[arg(long)]
        key: Option<String>,
        /// The job application this document belongs to.
        #[arg(long)]
        application: Option<String>,
        /// The file to store, or `-` for standard input.
        file: PathBuf,
    },
    /// Write a document's exact bytes to a file or standard output.
    Get {
        #[arg(long)]
        user: String,
        key: String,
        /// Version to read (from 1; default the current one).
        #[arg(long)]
        version: Option<i32>,
        /// Output file (written whole or not at all).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// List a user's documents.
    Ls {
        #[arg(long)]
        user: String,
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_file_type)]
        file_type: Option<FileType>,
        #[arg(long, value_parser = parse_tier)]
        tier: Option<Tier>,
        /// Every version, not only the current ones.
        #[arg(long)]
        all_versions: bool,
    },
    /// Delete every version of a document (audited).
    Rm {
        #[arg(long)]
        user: String,
        key: String,
    },
    /// Documents, bytes, objects and estimated monthly cost per tier.
    Stats {
        #[arg(long)]
        user: Option<String>,
    },
    /// The main job: two simulated years of a resume platform on the corpus, through the real queues.
    Demo {
        /// Folder with resumes/*.json, jobs/*.json and pdfs/*.pdf.
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Use the configured Redis, Postgres and S3 instead of the embedded default.
        #[arg(long)]
        fleet: bool,
    },
    /// Run workers until SIGTERM (or, with `--drain`, until no job is due).
    Worker {
        /// Job kinds to work on, comma separated (default: every kind this binary handles).
        #[arg(long, value_delimiter = ',')]
        queues: Option<Vec<String>>,
        /// Jobs run at once per queue (default DOSSIER_WORKER_CONCURRENCY).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        concurrency: Option<u32>,
        /// Exit once no job is due (due retries and simulated restores included) and the outbox is empty.
        #[arg(long)]
        drain: bool,
        /// Serve `/healthz` on this address.
        #[arg(long, value_name = "ADDR")]
        health_listen: Option<std::net::SocketAddr>,
    },
    /// Record what the policies need about a job application.
    App {
        #[command(subcommand)]
        action: AppAction,
    },
    /// Put a document under a legal hold, or lift it: held documents are never moved or deleted by policy.
    Hold {
        #[arg(long)]
        user: String,
        key: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Move a document to a tier now; `--pin` keeps it there against its policy.
    Move {
        #[arg(long)]
        user: String,
        key: String,
        #[arg(long, value_parser = parse_tier)]
        to: Tier,
        #[arg(long)]
        pin: bool,
    },
    /// Plan due lifecycle work and enqueue it (`--dry-run`: print the plan with reasons and costs).
    Sweep {
        #[arg(long)]
        dry_run: bool,
    },
    /// Find objects no row points to (removed after a grace period) and rows whose object is missing (reported).
    Fsck {
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppAction {
    /// Create or update an application.
    Set {
        #[arg(long)]
        user: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        status: Option<String>,
        /// RFC 3339.
        #[arg(long, value_parser = parse_instant)]
        interview_at: Option<DateTime<Utc>>,
        /// RFC 3339.
        #[arg(long, value_parser = parse_instant)]
        closed_at: Option<DateTime<Utc>>,
    },
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    dossier_core::config::parse_instant(s).ok_or_else(|| format!("expected an RFC 3339 instant, got {s:?}"))
}

fn parse_file_type(s: &str) -> Result<FileType, String> {
    s.parse()
        .map_err(|e: dossier_core::file_type::UnknownFileType| e.to_string())
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.parse().map_err(|e: dossier_core::tier::UnknownTier| e.to_string())
}
