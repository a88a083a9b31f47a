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
/// The command line: global flags, then one command.
pub struct Cli {
    /// Log format: human-readable text, or JSON lines for schedulers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // clap would show variant docs, turning `--help` into its long form
pub enum LogFormat {
    Text,
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the simulator in-process, run a pipeline into DIR, print a summary and a query.
    Demo {
        /// Where the warehouse, state and pipeline file go.
        #[arg(long, default_value = "ccetl-demo")]
        dir: PathBuf,
        /// Days of simulated calls.
        #[arg(long, default_value_t = 2)]
        days: u32,
        /// Simulated calls per day.
        #[arg(long, default_value_t = 40)]
        calls_per_day: u32,
    },
    /// Extract, transform and load: incremental by default.
    Run(RunArgs),
    /// Cut a backfill into shards for a scheduler: grid windows per source, with the pool of
    /// each source's API budget and the share of it each shard may use.
    Plan(PlanArgs),
    /// After a backfill's shards: check that every window of the range is committed and
    /// every file its manifest names is there, with its size.
    Finalize(FinalizeArgs),
    /// Validate the config, resolve secrets, try each source's credentials and the warehouse.
    Check {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
    },
    /// Inspect or reset the run state.
    State {
        /// What to do with the state.
        #[command(subcommand)]
        action: StateAction,
    },
    /// Query the warehouse with DuckDB SQL (views: one per table, plus calls and recordings).
    Query {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// SQL to run; without it, a sample of calls with their recordings.
        sql: Option<String>,
        /// How results are printed.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Read each Delta table as it was at this time (RFC 3339 or YYYY-MM-DD, UTC): its
        /// newest version committed then, back as far as `vacuum` has kept files.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// What the pipeline reads and writes, for orchestrators and lineage: each source's API
    /// and endpoints, the tables it writes and the views they feed, its scheduler pool.
    Describe {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Each source's standing, for people and monitors: watermark and its lag, open windows,
    /// the last commit, recordings not stored yet, refresh-token expiry.
    Status {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Exit 1 when a source's watermark lags now by more than this (e.g. `2d`), or it
        /// has none: for alerting.
        #[arg(long)]
        stale: Option<String>,
        /// Print one JSON object per source instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Derive again, from the objects the warehouse stored, the rows sources make of them
    /// (transcripts split into messages) in every committed window: a reader's fix reaches
    /// rows written before it. No API request; a window whose rows come out the same
    /// rewrites nothing.
    Reparse {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Windows from this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Windows up to this time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Delete the table files no version within the retention reads (replaced windows'
    /// files, files a killed run left): Delta tables only.
    Vacuum {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Keep files older versions read for this long (default: the pipeline's
        /// `retention`, 7d); time travel reaches no further back afterwards.
        #[arg(long)]
        retain: Option<String>,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object per table instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the simulated APIs on 127.0.0.1 until interrupted.
    Simulate(SimulateArgs),
    /// Obtain, import and inspect a Webex source's OAuth tokens.
    #[command(subcommand)]
    Auth(AuthAction),
    /// Register (or update) the capture:available subscription that makes Webex push each
    /// new recording to `ccetl serve` at URL (signed with the source's webhook_secret).
    Subscribe {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Where Webex posts events: https://…/webhooks/wxcc, reaching `ccetl serve`.
        #[arg(long)]
        url: String,
        /// The Webex source (needed when the pipeline has several).
        #[arg(long)]
        source: Option<String>,
    },
    /// Receive capture:available webhooks for a Webex source (POST /webhooks/wxcc, GET
    /// /healthz) and land each announced recording; SIGTERM drains what was acknowledged.
    Serve {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Where to listen (put a TLS-terminating proxy in front: Webex posts to https://).
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: std::net::SocketAddr,
        /// The source (needed when the pipeline has several).
        #[arg(long)]
        source: Option<String>,
        /// Events are gathered this long before a batch is committed.
        #[arg(long, default_value = "2s")]
        batch_wait: String,
    },
    /// List or delete a Webex org's event subscriptions.
    #[command(subcommand)]
    Subscriptions(SubscriptionsAction),
}

/// Commands on a Webex org's event subscriptions.
#[derive(Debug, Subcommand)]
pub enum SubscriptionsAction {
    /// The org's subscriptions; ccetl's own is marked with *.
    List {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The source (needed when the pipeline has several).
        #[arg(long)]
        source: Option<String>,
    },
    /// Delete a subscription by id.
    Delete {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The subscription's id (`ccetl subscriptions list` shows it).
        id: String,
        /// The source (needed when the pipeline has several).
        #[arg(long)]
        source: Option<String>,
    },
}

/// Commands on the run state.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Watermarks, windows, audio ledger and recent runs.
    Show {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
    },
    /// Forget watermarks and windows (tokens and the audio ledger are kept).
    Reset {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The source (needed when the pipeline has several).
        #[arg(long)]
        source: Option<String>,
    },
    /// Recreate the state from the warehouse: windows and watermarks from its manifests,
    /// the audio ledger from its recording tables (tokens need `ccetl auth` again).
    Rebuild {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The source (needed when the pipeline has several).
        #[arg(long)]
        source: Option<String>,
    },
}

/// The pipeline and the range of `ccetl run` and `ccetl plan`.
#[derive(Debug, Args)]
pub struct RangeArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// From this time (RFC 3339 or YYYY-MM-DD); a re-extract never moves watermarks back.
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time (default: now minus `settle`).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this source (repeatable).
    #[arg(long = "source")]
    pub sources: Vec<String>,
}

/// Arguments of `ccetl plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The pipeline (its path as the workers will see it) and the backfill's range.
    #[command(flatten)]
    pub range: RangeArgs,
    /// Windows per shard.
    #[arg(long, default_value_t = 7)]
    pub windows_per_shard: usize,
    /// Print JSON (a list of shards) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ccetl finalize`.
#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The pipeline and the backfill's range.
    #[command(flatten)]
    pub range: RangeArgs,
    /// Print JSON (one object per source) instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ccetl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline and the range to extract.
    #[command(flatten)]
    pub range: RangeArgs,
    /// Plan the windows and print them; make no requests.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the JSON run report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Use this share (0 < F <= 1) of each source's request budget: what `ccetl plan` gives
    /// a shard whose pool runs several at once under one client ID.
    #[arg(long, value_name = "F")]
    pub rate_share: Option<f64>,
    /// Keep this run's state here instead of the pipeline's `state` (`{source}` allowed): a
    /// worker's own disk, when several run shards of one pipeline side by side.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Treat this time as "now" (reproducible backfills, tests).
    #[arg(long, hide = true)]
    pub now: Option<String>,
}

/// Arguments of `ccetl simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 8799)]
    pub port: u16,
    /// Seed of the generated calls: the same seed serves the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of calls, ending today.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// Calls per day.
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
    /// Xima tenants, comma-separated (each has its own calls; key: sim-xima-key-TENANT).
    #[arg(long, default_value = "acme-main")]
    pub xima_tenants: String,
    /// Xima's pace: one request per interval, 3 per (interval × 10/3). Xima's own is 3s;
    /// the default is scaled down so the demo pipeline runs in seconds.
    #[arg(long, default_value = "30ms")]
    pub xima_min_interval: String,
    /// Audio bytes a Xima tenant may download in a rolling five days before 509, e.g. 20MB.
    #[arg(long)]
    pub xima_bandwidth_cap: Option<String>,
    /// The client ID's limit on the WxCC API, "REQUESTS/WINDOW SHAPE" (SHAPE optional) or "off". Webex's
    /// is 300/60s; the default is scaled 1:20 like the demo pipeline's rate_window. SHAPE
    /// is how it counts: bucket (a token bucket holding a sixtieth of the window's requests:
    /// Webex's 300 a minute as a bucket of 5), bucket:N, sliding or fixed. The default holds
    /// 20 (200 ms at the scaled rate) like the demo's.
    #[arg(long, default_value = "300/3s bucket:20")]
    pub rate_limit: String,
    /// The share of WxCC API requests answered 429 (Retry-After 1 s) whatever the limit,
    /// e.g. 0.04.
    #[arg(long, default_value_t = 0.0)]
    pub rate_noise: f64,
    /// The limit falls for a while, "REQUESTS after AFTER for LASTS", e.g. "75 after 2m for 2m"
    /// (counted from the first API request).
    #[arg(long)]
    pub rate_drop: Option<String>,
    /// Bytes per second each audio download streams at, e.g. 2MB (default: unpaced).
    #[arg(long)]
    pub audio_stream_rate: Option<String>,
}

/// Commands on a Webex source's OAuth tokens.
#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// OAuth authorization-code login for a Webex Integration: prints the authorize URL,
    /// receives the redirect on 127.0.0.1 (or takes it pasted with --no-listen) and stores
    /// the tokens in the state DB.
    Login {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The Webex source.
        #[arg(long)]
        source: String,
        /// Don't listen for the redirect: paste the URL the browser was sent to.
        #[arg(long)]
        no_listen: bool,
        /// How long to wait for the redirect.
        #[arg(long, default_value = "5m")]
        timeout: String,
    },
    /// Store a Service App's tokens read from stdin (its JSON, or just the refresh token).
    Import {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The Webex source.
        #[arg(long)]
        source: String,
    },
    /// Token age, expiry, org and scopes per source, with a warning when renewal is due.
    Status {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
    },
}
