//! A local server run as a child process that announces itself with one stdout line
//! `NAME=http://127.0.0.1:PORT` and exits when its stdin closes (so even a test process that
//! dies without running `Drop` leaves nothing behind).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child server; killed (and reaped) on drop.
pub struct ChildServer {
    child: Child,
    _stdin: ChildStdin,
    pub url: String,
}

impl ChildServer {
    /// Runs `program script` in `dir` and waits for the line `{key}=…`; panics (a test failure,
    /// never a skip) if the server does not announce itself in time or not on 127.0.0.1.
    pub fn start(what: &str, program: &Path, script: &Path, dir: &Path, key: &str) -> ChildServer {
        let mut command = Command::new(program);
        command.arg(script).current_dir(dir);
        ChildServer::start_command(what, command, key)
    }

    /// [`ChildServer::start`] for a prepared command (arguments, environment, directory).
    pub fn start_command(what: &str, mut command: Command, key: &str) -> ChildServer {
        let program = PathBuf::from(command.get_program());
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        // Read the first stdout line on a thread so the wait can time out.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let result = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(result);
            // Keep draining so the server never blocks on a full pipe.
            let mut sink = String::new();
            while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not start: {other:?}");
            }
        };
        let prefix = format!("{key}=");
        let Some(url) = line.trim().strip_prefix(&prefix).map(str::to_owned) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("{what} printed {line:?} instead of {prefix}… (exit: {status:?})");
        };
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "{what} must listen on 127.0.0.1 only: {url}"
        );
        ChildServer {
            child,
            _stdin: stdin,
            url,
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process whose stdout is read line by line on a thread; killed (and reaped) on drop.
pub struct LineProcess {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl LineProcess {
    /// Spawns `command` with stdout piped (stdin and stderr as the command sets them).
    pub fn spawn(command: &mut Command) -> LineProcess {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineProcess { child, lines }
    }

    /// The rest of the first stdout line starting with `prefix`, waiting up to the start
    /// timeout; `Err` with the lines seen if the process ends or the time runs out first.
    pub fn wait_for(&self, prefix: &str) -> Result<String, String> {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return Ok(rest.to_owned()),
                    None => seen.push(line),
                },
                Err(e) => return Err(format!("no line {prefix:?} ({e}); stdout: {seen:?}")),
            }
        }
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
