//! Command-line definitions (clap). Pipeline-defining settings live in the TOML file;
//! flags here are per-invocation knobs only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::query::Format;

#[derive(Debug, Parser)]
#[command(
    name = "ccetl",
    version,
    about = "Contact-center call data and recordings into Parquet + object storage"
)]
pub struct Cli {
    /// Log format: human-readable text, or JSON lines for schedulers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the simulator in-process, run a pipeline into DIR, print a summary and a query.
    Demo {
        #[arg(long, default_value = "ccetl-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 2)]
        days: u32,
        #[arg(long, default_value_t = 40)]
        calls_per_day: u32,
    },
    /// Extract, transform and load: incremental by default.
    Run(RunArgs),
    /// Validate the config, resolve secrets, try each source's credentials and the warehouse.
    Check { pipeline: PathBuf },
    /// Inspect or reset the run state.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Query the warehouse with DuckDB SQL (views: one per table, plus calls and recordings).
    Query {
        pipeline: PathBuf,
        /// SQL to run; without it, a sample of calls with their recordings.
        sql: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Serve the simulated APIs on 127.0.0.1 until interrupted.
    Simulate(SimulateArgs),
}

#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Watermarks, windows, audio ledger and recent runs.
    Show { pipeline: PathBuf },
    /// Forget watermarks and windows (tokens and the audio ledger are kept).
    Reset {
        pipeline: PathBuf,
        #[arg(long)]
        source: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    pub pipeline: PathBuf,
    /// Re-extract from this time (RFC 3339 or YYYY-MM-DD); watermarks never move back.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// Only this source (repeatable).
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// Plan the windows and print them; make no requests.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the JSON run report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Treat this time as "now" (reproducible backfills, tests).
    #[arg(long, hide = true)]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[arg(long, default_value_t = 8799)]
    pub port: u16,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    #[arg(long, default_value_t = 200)]
    pub calls_per_day: u32,
    /// Faults to inject, e.g. "tasks:429x3,captures:503x2,audio:expire,cars:badvalue".
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Audio bytes per second of call (8000 = 8 kHz µ-law).
    #[arg(long, default_value_t = 8000)]
    pub audio_rate: u32,
    /// The most rows one legacy CSR/CAR query returns.
    #[arg(long, default_value_t = 100_000)]
    pub legacy_record_cap: usize,
}
