//! The `rookery` command line: loads the configuration and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rookery::config::Config;
use tokio_util::sync::CancellationToken;

// jemalloc: under `rookery bench load` the system allocator kept 585 MB resident after 300
// account creations (argon2's 19 MiB buffers fragment glibc's per-thread arenas), jemalloc
// 92 MB, with the best write and read rates of the four allocators measured (README).
#[cfg(feature = "alloc-jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// On the development defaults (hostname localhost, no PDS_DID_PLC_URL) it also runs
    /// the embedded PLC directory under /plc.
    Serve(RunArgs),
    /// The embedded did:plc directory.
    #[command(subcommand)]
    Plc(PlcCommand),
    /// Build a signed demo repository, export it as a CAR file and verify it.
    Demo(DemoArgs),
    /// Work with CAR files.
    #[command(subcommand)]
    Car(CarCommand),
    /// Rebuild the PocketBase.cn hub index ({data}/hub.sqlite) from the repositories. Run it
    /// with the server stopped.
    Reindex(ServeArgs),
    /// Rebuild the data directory from the replica bucket (ROOKERY_REPLICA_S3_*) and verify
    /// it. Run it with the server stopped, on an empty data directory. `rookery serve` does
    /// the same by itself when it starts on an empty data directory and a replica exists.
    Restore(RestoreArgs),
    /// Probe a running server's /xrpc/_health (exit 0 when healthy): the Docker HEALTHCHECK.
    Healthcheck {
        /// Base URL; default http://127.0.0.1:{PDS_PORT}.
        #[arg(long)]
        url: Option<String>,
    },
    /// Backups in the replica bucket.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Operate a running server over its admin API (accounts, invites, exports).
    Admin(rookery::admin_client::cli::AdminArgs),
    /// Measure this machine (prints a table).
    #[command(subcommand)]
    Bench(BenchArgs),
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ServeArgs,
    /// Port to listen on, overriding PDS_PORT; 0 picks a free one (the address is printed).
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Args)]
struct RestoreArgs {
    #[command(flatten)]
    config: ServeArgs,
    /// Point in time to restore to (RFC 3339, e.g. 2026-12-02T15:00:00Z); default: the
    /// newest point in the bucket.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Ship every database now as a fresh generation (a new base snapshot).
    Now(ServeArgs),
    /// List the generations in the bucket.
    List(ServeArgs),
    /// Delete generations older than ROOKERY_REPLICA_RETENTION_HOURS that a newer one
    /// supersedes.
    Prune(ServeArgs),
}

#[derive(Subcommand)]
enum PlcCommand {
    /// Run the PLC directory alone, for other local tools to share.
    Serve(PlcServeArgs),
}

#[derive(Args)]
struct PlcServeArgs {
    /// Port to listen on; 0 picks a free one (the address is printed).
    #[arg(long, default_value_t = 2582)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Data directory: the directory lives in DATA/plc.sqlite (the file `rookery serve`
    /// uses for its embedded directory).
    #[arg(long, value_name = "DATA", default_value = "./data")]
    data: PathBuf,
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
    /// uploadBlob and getBlob MiB/s over HTTP, on disk and on the configured S3 bucket.
    Blobs(rookery::bench::blobs::CliArgs),
    /// The firehose over WebSocket: replay from cursor 0 to 1 and N subscribers, live fan-out.
    Firehose(BenchFirehoseArgs),
    /// The PocketBase.cn hub: listPlugins/s with and without full-text queries.
    Hub(BenchHubArgs),
    /// Replication to the ROOKERY_REPLICA_S3_* bucket: writes/s without and with it, bytes
    /// uploaded per 1,000 writes, restore time of many accounts.
    Replication(BenchReplicationArgs),
    /// Sync endpoints over HTTP against an in-process server: getRepo MB/s, getBlocks.
    Sync(BenchSyncArgs),
    /// A spawned `rookery serve` under concurrent load: writes, reads, getRepo, peak RSS.
    Load(BenchLoadArgs),
    /// importRepo: MB/s and peak memory for a repository of N records.
    Import(BenchImportArgs),
}

#[derive(Args)]
struct BenchLoadArgs {
    /// createRecord calls on one connection.
    #[arg(long, default_value_t = 3_000)]
    creates_single: usize,
    /// createRecord calls over the many-account phase.
    #[arg(long, default_value_t = 10_000)]
    creates_multi: usize,
    /// Accounts (one connection each) of the many-account write phase.
    #[arg(long, default_value_t = 16)]
    accounts: usize,
    /// getRecord calls (16 connections).
    #[arg(long, default_value_t = 100_000)]
    reads: usize,
    /// listRecords calls (8 connections).
    #[arg(long, default_value_t = 10_000)]
    lists: usize,
    /// Records of the small repository (listRecords, getRepo); 0 skips.
    #[arg(long, default_value_t = 10_000)]
    small_repo: usize,
    /// Records of the big repository (getRepo); 0 skips.
    #[arg(long, default_value_t = 100_000)]
    big_repo: usize,
    /// getRepo downloads of each repository.
    #[arg(long, default_value_t = 5)]
    repo_runs: usize,
    /// Longest each phase may run, in seconds.
    #[arg(long, default_value_t = 20)]
    phase_limit: u64,
    /// Accounts created, then written to once each in a row (10000 for the memory goal);
    /// 0 skips.
    #[arg(long, default_value_t = 200)]
    touch_accounts: usize,
    /// Longest each of the two many-accounts phases may run, in seconds.
    #[arg(long, default_value_t = 600)]
    touch_limit: u64,
    /// The `rookery` binary run as the server; default: this one.
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Parent of the working directory; default: the system temp directory.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct BenchFirehoseArgs {
    /// Events in the backlog replayed from cursor 0.
    #[arg(long, default_value_t = 100_000)]
    backlog: usize,
    /// Concurrent subscribers of the fan-out phases.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Events appended one at a time while the subscribers listen live.
    #[arg(long, default_value_t = 1_000)]
    live: usize,
    /// Longest each phase may run, in seconds.
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
}

#[derive(Args)]
struct BenchReplicationArgs {
    #[command(flatten)]
    config: ServeArgs,
    /// Accounts the writes are spread over.
    #[arg(long, default_value_t = 10)]
    writers: usize,
    /// Sequential writes measured with and without replication.
    #[arg(long, default_value_t = 2_000)]
    writes: usize,
    /// Accounts in the data directory whose restore is timed.
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
}

#[derive(Args)]
struct BenchHubArgs {
    /// Plugin records in the marketplace.
    #[arg(long, default_value_t = 10_000)]
    plugins: usize,
    /// Sequential listPlugins calls per kind of listing.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
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
struct BenchImportArgs {
    /// Records in the repository.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Parent of the working directory; default: a temporary directory.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
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
        Command::Admin(args) => return ExitCode::from(rookery::admin_client::cli::run(args)),
        Command::Serve(args) => serve(args),
        Command::Plc(PlcCommand::Serve(args)) => plc_serve(args),
        Command::Demo(args) => demo(args),
        Command::Car(CarCommand::Inspect { file, key }) => car_inspect(file, key),
        Command::Bench(BenchArgs::Repo(args)) => bench_repo(args),
        Command::Bench(BenchArgs::Server(args)) => bench_server(args),
        Command::Bench(BenchArgs::Blobs(args)) => {
            rookery::bench::blobs::cli(&args).map_err(Into::into)
        }
        Command::Bench(BenchArgs::Firehose(args)) => bench_firehose(args),
        Command::Bench(BenchArgs::Hub(args)) => bench_hub(args),
        Command::Reindex(args) => reindex(args),
        Command::Restore(args) => restore(args),
        Command::Backup(command) => backup(command),
        Command::Healthcheck { url } => healthcheck(url),
        Command::Bench(BenchArgs::Sync(args)) => bench_sync(args),
        Command::Bench(BenchArgs::Load(args)) => bench_load(args),
        Command::Bench(BenchArgs::Import(args)) => bench_import(args),
        Command::Bench(BenchArgs::Replication(args)) => bench_replication(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rookery: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: RunArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.config.as_deref())?;
    if let Some(port) = args.port {
        config.set_port(port);
    }
    init_logging(&config);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = rookery::server::runtime(config.blocking_threads)?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        rookery::server::cancel_on_signals(shutdown.clone());
        let server = rookery::server::serve(config, shutdown).await?;
        println!(
            "rookery listening on {} ({})",
            server.local_addr(),
            server.public_url()
        );
        if let Some(url) = server.embedded_plc_url() {
            println!("embedded PLC directory at {url}");
        }
        server.wait().await?;
        Ok(())
    })
}

fn bench_replication(args: BenchReplicationArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.config.as_deref())?;
    let replica = replica_config(&config)?;
    let opts = rookery::bench::replication::Options {
        writers: args.writers.max(1),
        writes: args.writes.max(1),
        restore_accounts: args.accounts,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(rookery::bench::replication::run(&replica, &opts))?;
    println!("{report}");
    Ok(())
}

fn healthcheck(url: Option<String>) -> anyhow::Result<()> {
    let url = match url {
        Some(url) => url,
        None => format!("http://127.0.0.1:{}", Config::load(None)?.port),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(4))
            .build()?;
        let reply = client
            .get(format!("{}/xrpc/_health", url.trim_end_matches('/')))
            .send()
            .await?;
        let status = reply.status();
        let body = reply.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(anyhow::anyhow!("unhealthy ({status}): {body}"));
        }
        println!("{body}");
        Ok(())
    })
}

fn replica_config(config: &Config) -> anyhow::Result<rookery::config::ReplicaConfig> {
    config
        .replica
        .clone()
        .ok_or_else(|| anyhow::anyhow!("ROOKERY_REPLICA_S3_BUCKET is not set"))
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.config.as_deref())?;
    init_logging(&config);
    let replica = replica_config(&config)?;
    let to = match &args.to {
        Some(text) => {
            let time = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| anyhow::anyhow!("--to {text}: {e}"))?;
            Some(u64::try_from(time.timestamp_millis()).unwrap_or(0))
        }
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let bucket = rookery::replica::Bucket::new(&replica).await;
        let report = rookery::replica::restore(&config.data_directory, &bucket, to).await?;
        println!(
            "restored {} databases ({} segments, {} bytes) and {} files into {}; {} repositories \
             verified, {} deleted stores left out; next seq above {}; {:.2} s",
            report.databases,
            report.segments,
            report.bytes,
            report.files,
            config.data_directory.display(),
            report.verified_repos,
            report.skipped_stores,
            report.seq_floor,
            report.elapsed.as_secs_f64()
        );
        Ok(())
    })
}

fn backup(command: BackupCommand) -> anyhow::Result<()> {
    let (args, action) = match command {
        BackupCommand::Now(args) => (args, "now"),
        BackupCommand::List(args) => (args, "list"),
        BackupCommand::Prune(args) => (args, "prune"),
    };
    let config = Config::load(args.config.as_deref())?;
    init_logging(&config);
    let replica = replica_config(&config)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let replicator = rookery::replica::Replicator::new(&config.data_directory, &replica).await;
        match action {
            "now" => {
                let report = replicator.snapshot_all().await?;
                println!(
                    "shipped {} databases ({} bytes) as new generations; {} failed",
                    report.uploaded, report.bytes, report.failed
                );
                if report.failed > 0 {
                    return Err(anyhow::anyhow!(
                        "{} databases could not be shipped",
                        report.failed
                    ));
                }
            }
            "list" => {
                let generations = rookery::replica::list_generations(replicator.bucket()).await?;
                println!(
                    "{:<60} {:<24} {:>9} {:>12}  from .. to",
                    "database", "generation", "segments", "bytes"
                );
                for g in generations {
                    let time = |ms: u64| {
                        chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_default()
                    };
                    println!(
                        "{:<60} {:<24} {:>9} {:>12}  {} .. {}",
                        g.db,
                        g.generation,
                        g.segments,
                        g.bytes,
                        time(g.first_ms),
                        time(g.last_ms)
                    );
                }
            }
            _ => {
                let deleted =
                    rookery::replica::prune(replicator.bucket(), replica.retention).await?;
                println!("deleted {deleted} segments of superseded generations");
            }
        }
        Ok(())
    })
}

fn plc_serve(args: PlcServeArgs) -> anyhow::Result<()> {
    init_logging(&Config::default());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let directory = rookery::plc_directory::Directory::open_in(&args.data).await?;
        let addr = std::net::SocketAddr::new(args.bind, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let shutdown = CancellationToken::new();
        rookery::server::cancel_on_signals(shutdown.clone());
        let server = rookery::plc_directory::http::serve(listener, directory, shutdown)?;
        println!(
            "PLC directory listening on http://{} (data in {})",
            server.local_addr,
            args.data
                .join(rookery::plc_directory::DATABASE_FILE)
                .display()
        );
        server.handle.await??;
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

fn bench_import(args: BenchImportArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::import::Options {
        records: args.records,
        dir: args.dir,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::import::run(&opts))?;
    print!("{report}");
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

fn bench_firehose(args: BenchFirehoseArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::firehose::Options {
        backlog: args.backlog,
        subscribers: args.subscribers,
        live: args.live,
        time_limit: std::time::Duration::from_secs(args.time_limit),
        dir: None,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::firehose::run(&opts))?;
    print!("{report}");
    Ok(())
}

fn bench_hub(args: BenchHubArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::hub::Options {
        plugins: args.plugins,
        queries: args.queries,
        ..Default::default()
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::hub::run(&opts))?;
    print!("{report}");
    Ok(())
}

fn bench_load(args: BenchLoadArgs) -> anyhow::Result<()> {
    let opts = rookery::bench::load::Options {
        creates_single: args.creates_single,
        creates_multi: args.creates_multi,
        accounts: args.accounts,
        reads: args.reads,
        lists: args.lists,
        small_repo: args.small_repo,
        big_repo: args.big_repo,
        repo_runs: args.repo_runs,
        phase_limit: std::time::Duration::from_secs(args.phase_limit),
        touch_accounts: args.touch_accounts,
        touch_limit: std::time::Duration::from_secs(args.touch_limit),
        binary: args.server,
        dir: args.dir,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(rookery::bench::load::run(&opts))?;
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

fn reindex(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    init_logging(&config);
    let runtime = tokio::runtime::Runtime::new()?;
    let (accounts, records) = runtime.block_on(rookery::hub::reindex_data_directory(&config))?;
    println!("hub index rebuilt: {accounts} accounts, {records} records read");
    Ok(())
}

fn init_logging(config: &Config) {
    if let Some(filter) = config.log_filter() {
        rookery::telemetry::logging::init(&filter, config.log_format);
    }
}
