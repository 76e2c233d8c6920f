//! A new user's first run: the real `rookery` binary started as `rookery serve` with no
//! environment at all, in an empty directory, in a network namespace of its own (only a
//! loopback interface: the public network, plc.directory included, is unreachable). The
//! official `@atproto/api` client signs up and posts, and `@atproto/identity` resolves the
//! new DID through the server's embedded PLC directory.
//!
//! The server binds its default `0.0.0.0`, which inside the namespace is the loopback
//! interface alone; the Node client joins the namespace with `nsenter`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::process::LineProcess;

/// Absolute path of a program on this test's PATH (the server gets no PATH).
fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not found"))
}

#[test]
fn serve_with_no_configuration_works_offline_with_official_clients() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = crate::support::plc::node_binary(repo);
    let cwd = tempfile::tempdir().unwrap();
    let rookery = env!("CARGO_BIN_EXE_rookery");

    // unshare → sh (brings loopback up) → env -i → rookery: one process id throughout.
    let mut command = Command::new(which("unshare"));
    command
        .args(["--net", "--", "/bin/sh", "-c"])
        .arg(r#""$0" link set lo up && exec "$1" -i "$2" serve --port 0"#)
        .arg(which("ip"))
        .arg(which("env"))
        .arg(rookery)
        .env_clear()
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = LineProcess::spawn(&mut command);
    let pid = server.child.id();
    let mut stderr = server.child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = server
        .wait_for("rookery listening on ")
        .and_then(|line| Ok((line, server.wait_for("embedded PLC directory at ")?)));
    let (listening, plc_url) = match started {
        Ok(lines) => lines,
        Err(e) => {
            drop(server);
            panic!("rookery did not start: {e}\n{}", log.join().unwrap());
        }
    };
    // "0.0.0.0:PORT (http://localhost:PORT)"
    let public_url = listening
        .split_once(" (")
        .unwrap()
        .1
        .trim_end_matches(')')
        .to_owned();
    assert!(public_url.starts_with("http://localhost:"), "{public_url}");
    assert_ne!(public_url, "http://localhost:0");
    assert_eq!(plc_url, format!("{public_url}/plc"));

    let output = Command::new(which("nsenter"))
        .arg(format!("--target={pid}"))
        .args(["--net", "--"])
        .arg(&node)
        .arg(repo.join("tests/js/offline-first-run.mjs"))
        .args([&public_url, &plc_url, "alice.test"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        drop(server);
        panic!(
            "offline-first-run failed:\n{out}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            log.join().unwrap()
        );
    }
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    let did = result["did"].as_str().unwrap();
    assert!(
        result["publicDirectory"]
            .as_str()
            .unwrap()
            .starts_with("unreachable"),
        "{result}"
    );
    assert_eq!(result["atproto"]["did"], did);
    assert_eq!(result["atproto"]["handle"], "alice.test");
    assert_eq!(result["atproto"]["pds"], public_url.as_str());
    assert_eq!(result["doc"]["id"], did);
    assert_eq!(result["doc"]["alsoKnownAs"][0], "at://alice.test");

    // Everything lives in ./data of the empty directory it was started in, the directory
    // included.
    let data = cwd.path().join("data");
    assert!(data.join("plc.sqlite").is_file());
    assert!(data.join("account.sqlite").is_file());
    drop(server);
    let log = log.join().unwrap();
    assert!(!log.contains("plc.directory"), "{log}");
}
