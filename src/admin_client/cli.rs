//! `rookery admin …`: the subcommands, their output (human lines, or JSON with `--json`)
//! and their exit statuses (see [`super::Error::exit_code`]).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{AdminClient, Error, Target};

/// Where the relays are when neither arguments nor `PDS_CRAWLERS` name one.
const DEFAULT_RELAY: &str = "https://bsky.network";

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The server's URL (default: from PDS_HOSTNAME and PDS_PORT).
    #[arg(long, global = true)]
    url: Option<String>,
    /// The admin password (default: PDS_ADMIN_PASSWORD).
    #[arg(long, global = true)]
    password: Option<String>,
    /// A pds.env file to read PDS_* settings from (they override the environment).
    #[arg(long, global = true, value_name = "PDS_ENV")]
    config: Option<PathBuf>,
    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Accounts hosted on the server.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Invite codes.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Ask relays to crawl this server (default: PDS_CRAWLERS, else bsky.network).
    RequestCrawl {
        /// Relay URLs.
        relays: Vec<String>,
    },
    /// Write an account's repository as a CAR file (to stdout unless --out).
    Export {
        /// The account's DID.
        did: String,
        /// The file to write.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Import a repository CAR file into an account (com.atproto.repo.importRepo, as that
    /// account).
    Import {
        /// The CAR file.
        file: PathBuf,
        /// The account's handle or DID.
        #[arg(long)]
        identifier: String,
        /// The account's password.
        #[arg(long)]
        account_password: String,
    },
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// Every account: handle, e-mail, DID.
    List,
    /// One account (by DID or handle).
    Info { account: String },
    /// Create an account with a fresh invite code; prints its password.
    Create {
        email: String,
        handle: String,
        /// The password (default: a random one, printed).
        #[arg(long)]
        account_password: Option<String>,
    },
    /// Delete an account and its data.
    Delete { did: String },
    /// Take an account down (its repository is no longer served).
    Takedown {
        did: String,
        /// A reference recorded with the takedown (default: the time).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Lift an account's takedown.
    Untakedown { did: String },
    /// Set a new random password; prints it.
    ResetPassword { did: String },
}

#[derive(Subcommand, Debug)]
enum InviteCommand {
    /// Create invite codes.
    Create {
        /// Uses per code.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Number of codes.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// List invite codes.
    List {
        #[arg(long, default_value_t = 500)]
        limit: u32,
    },
    /// Disable invite codes.
    Disable { codes: Vec<String> },
}

/// A random password of 24 letters and digits.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_owned());
    bar
}

/// Prints `value` as JSON, or `text` lines.
fn emit(json_output: bool, value: &Value, text: impl FnOnce() -> String) {
    if json_output {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        let text = text();
        if !text.is_empty() {
            println!("{}", text.trim_end());
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

/// Runs `rookery admin …`; returns the process exit status.
pub fn run(args: AdminArgs) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rookery admin: {e}");
            return 1;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("rookery admin: {err}");
            err.exit_code()
        }
    }
}

async fn execute(args: AdminArgs) -> Result<(), Error> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let crawlers_env = env
        .iter()
        .find(|(k, _)| k == "PDS_CRAWLERS")
        .map(|(_, v)| v.clone());
    let crawlers_file = args
        .config
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| {
            super::parse_env_file(&t)
                .into_iter()
                .find(|(k, _)| k == "PDS_CRAWLERS")
                .map(|(_, v)| v)
        });
    let target = Target::resolve(
        args.url.as_deref(),
        args.password.as_deref(),
        args.config.as_deref(),
        env,
    )?;
    let client = AdminClient::new(target)?;
    let json_output = args.json;
    match args.command {
        AdminCommand::Account(command) => account(&client, json_output, command).await,
        AdminCommand::Invite(command) => invite(&client, json_output, command).await,
        AdminCommand::RequestCrawl { relays } => {
            let relays = if relays.is_empty() {
                let configured = crawlers_file.or(crawlers_env).unwrap_or_default();
                let list: Vec<String> = configured
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if list.is_empty() {
                    vec![DEFAULT_RELAY.to_owned()]
                } else {
                    list
                }
            } else {
                relays
            };
            let hostname = url::Url::parse(client.url())
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            for relay in &relays {
                client
                    .post_to(
                        relay,
                        "com.atproto.sync.requestCrawl",
                        &json!({ "hostname": hostname }),
                    )
                    .await?;
            }
            emit(
                json_output,
                &json!({ "hostname": hostname, "relays": relays }),
                || format!("crawl of {hostname} requested from {}", relays.join(", ")),
            );
            Ok(())
        }
        AdminCommand::Export { did, out } => export(&client, &did, out).await,
        AdminCommand::Import {
            file,
            identifier,
            account_password,
        } => import(&client, json_output, &file, &identifier, &account_password).await,
    }
}

/// A DID as given, or the DID a handle resolves to on the server.
async fn resolve_did(client: &AdminClient, account: &str) -> Result<String, Error> {
    if account.starts_with("did:") {
        return Ok(account.to_owned());
    }
    let out = client
        .get_public("com.atproto.identity.resolveHandle", &[("handle", account)])
        .await?;
    Ok(str_of(&out, "did").to_owned())
}

async fn account(
    client: &AdminClient,
    json_output: bool,
    command: AccountCommand,
) -> Result<(), Error> {
    match command {
        AccountCommand::List => {
            let mut accounts = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = vec![("limit", "1000")];
                if let Some(c) = &cursor {
                    query.push(("cursor", c));
                }
                let page = client
                    .get_public("com.atproto.sync.listRepos", &query)
                    .await?;
                for repo in page["repos"].as_array().into_iter().flatten() {
                    let did = str_of(repo, "did");
                    let info = client
                        .get("com.atproto.admin.getAccountInfo", &[("did", did)])
                        .await?;
                    accounts.push(json!({
                        "did": did,
                        "handle": info["handle"],
                        "email": info["email"],
                        "active": repo["active"],
                        "status": repo["status"],
                    }));
                }
                match page["cursor"].as_str() {
                    Some(next) if Some(next) != cursor.as_deref() => cursor = Some(next.to_owned()),
                    _ => break,
                }
            }
            emit(json_output, &Value::Array(accounts.clone()), || {
                let mut text = String::from("Handle\tEmail\tDID\tStatus\n");
                for a in &accounts {
                    let status = a["status"].as_str().unwrap_or("active");
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{status}\n",
                        str_of(a, "handle"),
                        str_of(a, "email"),
                        str_of(a, "did")
                    ));
                }
                text
            });
        }
        AccountCommand::Info { account } => {
            let did = resolve_did(client, &account).await?;
            let info = client
                .get("com.atproto.admin.getAccountInfo", &[("did", &did)])
                .await?;
            emit(json_output, &info, || {
                let mut text = String::new();
                if let Some(map) = info.as_object() {
                    for (key, value) in map {
                        let shown = value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned);
                        text.push_str(&format!("{key}: {shown}\n"));
                    }
                }
                text
            });
        }
        AccountCommand::Create {
            email,
            handle,
            account_password,
        } => {
            let invite = client
                .post(
                    "com.atproto.server.createInviteCode",
                    &json!({ "useCount": 1 }),
                )
                .await?;
            let password = account_password.unwrap_or_else(random_password);
            let created = client
                .post_bearer(
                    "com.atproto.server.createAccount",
                    None,
                    serde_json::to_vec(&json!({
                        "email": email,
                        "handle": handle,
                        "password": password,
                        "inviteCode": invite["code"],
                    }))
                    .unwrap_or_default()
                    .into(),
                    "application/json",
                )
                .await?;
            let out = json!({
                "did": created["did"],
                "handle": created["handle"],
                "password": password,
            });
            emit(json_output, &out, || {
                format!(
                    "Account created\nHandle   : {}\nDID      : {}\nPassword : {password}",
                    str_of(&created, "handle"),
                    str_of(&created, "did"),
                )
            });
        }
        AccountCommand::Delete { did } => {
            client
                .post("com.atproto.admin.deleteAccount", &json!({ "did": did }))
                .await?;
            emit(json_output, &json!({ "did": did, "deleted": true }), || {
                format!("{did} deleted")
            });
        }
        AccountCommand::Takedown { did, reference } => {
            let mut takedown = json!({ "applied": true });
            if let Some(reference) = reference {
                takedown["ref"] = json!(reference);
            }
            let out = update_status(client, &did, takedown).await?;
            emit(json_output, &out, || format!("{did} taken down"));
        }
        AccountCommand::Untakedown { did } => {
            let out = update_status(client, &did, json!({ "applied": false })).await?;
            emit(json_output, &out, || format!("{did} restored"));
        }
        AccountCommand::ResetPassword { did } => {
            let password = random_password();
            client
                .post(
                    "com.atproto.admin.updateAccountPassword",
                    &json!({ "did": did, "password": password }),
                )
                .await?;
            emit(
                json_output,
                &json!({ "did": did, "password": password }),
                || format!("New password for {did}: {password}"),
            );
        }
    }
    Ok(())
}

async fn update_status(client: &AdminClient, did: &str, takedown: Value) -> Result<Value, Error> {
    client
        .post(
            "com.atproto.admin.updateSubjectStatus",
            &json!({
                "subject": { "$type": "com.atproto.admin.defs#repoRef", "did": did },
                "takedown": takedown,
            }),
        )
        .await
}

async fn invite(
    client: &AdminClient,
    json_output: bool,
    command: InviteCommand,
) -> Result<(), Error> {
    match command {
        InviteCommand::Create { uses, count } => {
            let out = client
                .post(
                    "com.atproto.server.createInviteCodes",
                    &json!({ "codeCount": count, "useCount": uses }),
                )
                .await?;
            let codes: Vec<Value> = out["codes"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a["codes"].as_array().cloned().unwrap_or_default())
                .collect();
            emit(json_output, &json!({ "codes": codes }), || {
                codes
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        InviteCommand::List { limit } => {
            let out = client
                .get(
                    "com.atproto.admin.getInviteCodes",
                    &[("limit", &limit.to_string())],
                )
                .await?;
            emit(json_output, &out, || {
                let mut text = String::from("Code\tAvailable\tUses\tDisabled\n");
                for code in out["codes"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{}\n",
                        str_of(code, "code"),
                        code["available"],
                        code["uses"].as_array().map_or(0, Vec::len),
                        code["disabled"]
                    ));
                }
                text
            });
        }
        InviteCommand::Disable { codes } => {
            if codes.is_empty() {
                return Err(Error::Usage("name at least one code to disable".to_owned()));
            }
            client
                .post(
                    "com.atproto.admin.disableInviteCodes",
                    &json!({ "codes": codes }),
                )
                .await?;
            emit(json_output, &json!({ "disabled": codes }), || {
                format!("disabled {}", codes.join(", "))
            });
        }
    }
    Ok(())
}

async fn export(client: &AdminClient, did: &str, out: Option<PathBuf>) -> Result<(), Error> {
    if out.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "refusing to write a CAR file to a terminal: redirect stdout or pass --out".to_owned(),
        ));
    }
    let response = client
        .download("com.atproto.sync.getRepo", &[("did", did)])
        .await?;
    let bar = progress(response.content_length(), "export");
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &out {
        Some(path) => Box::new(tokio::fs::File::create(path).await?),
        None => Box::new(tokio::io::stdout()),
    };
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::Unreachable {
            url: client.url().to_owned(),
            reason: format!("export interrupted: {e}"),
        })?;
        sink.write_all(&chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    sink.flush().await?;
    bar.finish_and_clear();
    if let Some(path) = out {
        eprintln!("wrote {} bytes to {}", bar.position(), path.display());
    }
    std::io::stdout().flush()?;
    Ok(())
}

async fn import(
    client: &AdminClient,
    json_output: bool,
    file: &std::path::Path,
    identifier: &str,
    password: &str,
) -> Result<(), Error> {
    let session = client
        .post_bearer(
            "com.atproto.server.createSession",
            None,
            serde_json::to_vec(&json!({ "identifier": identifier, "password": password }))
                .unwrap_or_default()
                .into(),
            "application/json",
        )
        .await?;
    let token = str_of(&session, "accessJwt").to_owned();
    let data = tokio::fs::File::open(file).await?;
    let len = data.metadata().await?.len();
    let bar = progress(Some(len), "import");
    let counted = bar.clone();
    let stream = tokio_util::io::ReaderStream::new(data).inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            counted.inc(chunk.len() as u64);
        }
    });
    client
        .post_bearer(
            "com.atproto.repo.importRepo",
            Some(&token),
            reqwest::Body::wrap_stream(stream),
            "application/vnd.ipld.car",
        )
        .await?;
    bar.finish_and_clear();
    emit(
        json_output,
        &json!({ "did": session["did"], "imported": len }),
        || format!("imported {len} bytes into {}", str_of(&session, "did")),
    );
    Ok(())
}
