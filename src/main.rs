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
    /// Build a signed demo repository, export it as a CAR file and verify it.
    Demo(DemoArgs),
    /// Work with CAR files.
    #[command(subcommand)]
    Car(CarCommand),
    /// Measure this machine (prints a table).
    #[command(subcommand)]
    Bench(BenchArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Number of posts to write.
    #[arg(long, default_value_t = 1000)]
    records: usize,
    /// CAR file to write.
    #[arg(long, default_value = "demo.car")]
    out: PathBuf,
    /// SQLite actor store to build the repository in (replaced if present).
    #[arg(long, default_value = "demo.sqlite")]
    store: PathBuf,
}

#[derive(Subcommand)]
enum CarCommand {
    /// Read a CAR file, verify every block and, when its root is a commit, the repository.
    Inspect {
        /// The CAR file.
        file: PathBuf,
        /// did:key of the repository signing key, to verify the commit signature.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchArgs {
    /// The repo engine on a SQLite file store: build, single writes, CAR export and import.
    Repo(BenchRepoArgs),
    /// XRPC over HTTP against an in-process server: createRecord/s and getRecord/s.
    Server(BenchServerArgs),
    /// Sync endpoints over HTTP against an in-process server: getRepo MB/s, getBlocks.
    Sync(BenchSyncArgs),
}

#[derive(Args)]
struct BenchSyncArgs {
    /// Records in the repository.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Downloads of each kind (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// CIDs per getBlocks request (at most 1000).
    #[arg(long, default_value_t = 1_000)]
    cids: usize,
}

#[derive(Args)]
struct BenchServerArgs {
    /// Sequential createRecord calls.
    #[arg(long, default_value_t = 2_000)]
    creates: usize,
    /// Sequential getRecord calls.
    #[arg(long, default_value_t = 5_000)]
    reads: usize,
}

#[derive(Args)]
struct BenchRepoArgs {
    /// Records in the repository.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Single-record writes measured of each kind (update, create, cold update).
    #[arg(long, default_value_t = 1_000)]
    updates: usize,
    /// Parent of the working directory (kept afterwards); default: a temporary directory.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
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
        Command::Demo(args) => demo(args),
        Command::Car(CarCommand::Inspect { file, key }) => car_inspect(file, key),
        Command::Bench(BenchArgs::Repo(args)) => bench_repo(args),
        Command::Bench(BenchArgs::Server(args)) => bench_server(args),
        Command::Bench(BenchArgs::Sync(args)) => bench_sync(args),
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

fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let opts = rookery::demo::DemoOptions {
        records: args.records,
        out: args.out,
        store_path: args.store,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::demo::run(&opts))?;
    print!("{report}");
    anyhow::ensure!(report.verified(), "the exported repository did not verify");
    Ok(())
}

fn car_inspect(file: PathBuf, key: Option<String>) -> anyhow::Result<()> {
    let key = key
        .map(|k| rookery::crypto::PublicKey::from_did_key(&k))
        .transpose()?;
    let report = tokio::runtime::Runtime::new()?.block_on(async {
        let reader = tokio::io::BufReader::new(tokio::fs::File::open(&file).await?);
        anyhow::Ok(rookery::repo::inspect::inspect(reader, key.as_ref()).await?)
    })?;
    print!("{report}");
    let repo_ok = report
        .repo
        .as_ref()
        .is_none_or(|r| r.verification.is_ok() && r.signature.as_ref().is_none_or(Result::is_ok));
    anyhow::ensure!(repo_ok, "the repository did not verify");
    Ok(())
}

fn bench_repo(args: BenchRepoArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::repo::Options {
        records: args.records,
        updates: args.updates,
        dir: args.dir,
        ..Default::default()
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::repo::run(&opts))?;
    print!("{report}");
    Ok(())
}

fn bench_server(args: BenchServerArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::server::Options {
        creates: args.creates,
        reads: args.reads,
        dir: None,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::server::run(&opts))?;
    print!("{report}");
    Ok(())
}

fn bench_sync(args: BenchSyncArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::sync::Options {
        records: args.records,
        runs: args.runs,
        cids: args.cids,
        ..Default::default()
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::sync::run(&opts))?;
    print!("{report}");
    Ok(())
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
