//! The `rookery` command line: loads the configuration and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rookery::config::Config;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "rookery",
    version,
    about = "An AT Protocol Personal Data Server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the PDS (configured by PDS_* / ROOKERY_* variables and an optional rookery.toml).
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file; defaults to ./rookery.toml when present. Environment
    /// variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rookery: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    init_logging(&config);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        rookery::server::cancel_on_signals(shutdown.clone());
        let server = rookery::server::serve(config, shutdown).await?;
        server.wait().await?;
        Ok(())
    })
}

fn init_logging(config: &Config) {
    let Some(filter) = config.log_filter() else {
        return;
    };
    // `log_filter` only returns directives that `Config` validated.
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
