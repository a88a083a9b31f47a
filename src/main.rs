//! The `ccetl` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use ccetl::cli::{Cli, Command, LogFormat};
use ccetl::commands;

fn init_logs(cli: &Cli) {
    let default = match cli.verbose {
        // Schedulers read JSON logs: they get the window commits; a terminal gets quiet.
        0 if cli.log_format == LogFormat::Json => "ccetl=info",
        0 => "ccetl=warn",
        1 => "ccetl=debug",
        _ => "ccetl=trace",
    };
    let filter = EnvFilter::try_from_env("CCETL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    ccetl::memory::limit_arenas();
    let cli = Cli::parse();
    init_logs(&cli);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo {
                dir,
                days,
                calls_per_day,
            } => commands::demo(&dir, days, calls_per_day).await,
            Command::Run(args) => commands::run(args).await,
            Command::Check { pipeline } => commands::check(&pipeline).await,
            Command::Plan(args) => commands::plan(&args),
            Command::Finalize(args) => commands::finalize(&args).await,
            Command::State { action } => commands::state(action).await,
            Command::Query {
                pipeline,
                sql,
                format,
                as_of,
            } => commands::query(&pipeline, sql.as_deref(), format, as_of.as_deref()).await,
            Command::Describe { pipeline, json } => commands::describe::run(&pipeline, json),
            Command::Status {
                pipeline,
                stale,
                json,
            } => commands::status::run(&pipeline, stale.as_deref(), json).await,
            Command::Reparse {
                pipeline,
                source,
                since,
                until,
            } => commands::reparse(&pipeline, source.as_deref(), since, until).await,
            Command::Vacuum {
                pipeline,
                retain,
                dry_run,
                json,
            } => commands::vacuum::run(&pipeline, retain.as_deref(), dry_run, json).await,
            Command::Simulate(args) => commands::simulate(args).await,
            Command::Auth(action) => commands::auth::run(action).await,
            Command::Subscribe {
                pipeline,
                url,
                source,
            } => commands::webhooks::subscribe(&pipeline, source.as_deref(), &url).await,
            Command::Subscriptions(action) => commands::webhooks::subscriptions(action).await,
            Command::Serve {
                pipeline,
                listen,
                source,
                batch_wait,
            } => commands::webhooks::serve(&pipeline, source.as_deref(), listen, &batch_wait).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole cause chain, each cause once.
            eprintln!("error: {}", ccetl::error::one_line(&e));
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
