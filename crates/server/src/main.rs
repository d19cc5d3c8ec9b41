//! The `ferrite` broker binary.

use clap::Parser;
use ferrite_server::config::broker::BrokerConfig;
use std::path::PathBuf;

/// Ferrite: a Kafka-compatible partitioned log server.
///
/// Settings use Kafka's names. They come from, in increasing precedence: defaults, the TOML file given with
/// --config (or FERRITE_CONFIG), FERRITE_* environment variables (FERRITE_LOG_RETENTION_HOURS sets
/// log.retention.hours), and --override name=value flags.
#[derive(Debug, Parser)]
#[command(name = "ferrite", version)]
struct Cli {
    /// TOML file of broker settings.
    #[arg(long, env = "FERRITE_CONFIG")]
    config: Option<PathBuf>,
    /// A broker setting, Kafka name=value (repeatable), e.g. --override log.retention.hours=24.
    #[arg(short = 'o', long = "override", value_name = "NAME=VALUE")]
    overrides: Vec<String>,
    /// Shorthand for --override listeners=...
    #[arg(long)]
    listeners: Option<String>,
    /// Shorthand for --override log.dirs=...
    #[arg(long)]
    log_dirs: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRITE_LOG")
                // openraft reports every election and log step at info.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut overrides = Vec::new();
    for o in &cli.overrides {
        let Some((name, value)) = o.split_once('=') else {
            eprintln!("ferrite: --override needs NAME=VALUE, got {o:?}");
            return std::process::ExitCode::from(2);
        };
        overrides.push((name.trim().to_string(), value.trim().to_string()));
    }
    if let Some(l) = cli.listeners {
        overrides.push(("listeners".into(), l));
    }
    if let Some(d) = cli.log_dirs {
        overrides.push(("log.dirs".into(), d));
    }
    let config = match BrokerConfig::load(cli.config.as_deref(), std::env::vars(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrite: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrite: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ferrite_server::run::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrite: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
