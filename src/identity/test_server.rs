//! Test helpers: a minimal HTTP/1.1 server on a real 127.0.0.1 socket, and in-memory
//! host and TXT lookups.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::handle::{DnsError, TxtLookup};
use super::net::HostLookup;

/// How long a test waits for a call that a resolver deadline (at most a few hundred
/// milliseconds in these tests) must end: far beyond those deadlines, far below the 30 s that
/// [`Reply::Hang`] and [`StaticTxt::slow`] stall for.
const TEST_DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `call`, failing the test only if it has not finished by [`TEST_DEADLINE`]: proof that
/// a deadline inside it fired, without measuring wall-clock time.
pub(crate) async fn within<F: std::future::Future>(call: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, call)
        .await
        .expect("still running at the test deadline: a resolver deadline did not fire")
}

/// What the server answers on a path.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Answer {
        status: u16,
        content_type: String,
        body: String,
        location: Option<String>,
    },
    /// Accept the connection, read the request, never answer.
    Hang,
}

impl Reply {
    pub(crate) fn ok(content_type: &str, body: impl Into<String>) -> Reply {
        Reply::Answer {
            status: 200,
            content_type: content_type.to_owned(),
            body: body.into(),
            location: None,
        }
    }

    pub(crate) fn text(body: impl Into<String>) -> Reply {
        Reply::ok("text/plain", body)
    }

    pub(crate) fn status(status: u16) -> Reply {
        Reply::Answer {
            status,
            content_type: "text/plain".to_owned(),
            body: String::new(),
            location: None,
        }
    }

    pub(crate) fn redirect(location: &str) -> Reply {
        Reply::Answer {
            status: 302,
            content_type: "text/plain".to_owned(),
            body: String::new(),
            location: Some(location.to_owned()),
        }
    }
}

type Routes = Arc<Mutex<HashMap<String, Reply>>>;

/// Serves fixed replies by path (404 for anything else) until dropped.
pub(crate) struct TestServer {
    port: u16,
    routes: Routes,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Routes = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (r, h) = (Arc::clone(&routes), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&r), Arc::clone(&h)));
            }
        });
        TestServer {
            port,
            routes,
            hits,
            task,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// How many requests reached `path`.
    pub(crate) fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, routes: Routes, hits: Arc<Mutex<HashMap<String, usize>>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = routes
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or(Reply::status(404));
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Reply::Answer {
            status,
            content_type,
            body,
            location,
        } => {
            let location = location
                .map(|l| format!("Location: {l}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{location}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// A fixed host → addresses map.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticHosts(pub(crate) HashMap<String, Vec<IpAddr>>);

impl StaticHosts {
    pub(crate) fn localhost() -> StaticHosts {
        StaticHosts::default().with("localhost", IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    pub(crate) fn with(mut self, host: &str, ip: IpAddr) -> StaticHosts {
        self.0.entry(host.to_owned()).or_default().push(ip);
        self
    }
}

impl HostLookup for StaticHosts {
    fn lookup_ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            self.0
                .get(host)
                .cloned()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// A fixed name → TXT records map; names listed in `failing` give a DNS failure, names in
/// `slow` never answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticTxt {
    pub(crate) records: HashMap<String, Vec<String>>,
    pub(crate) failing: Vec<String>,
    pub(crate) slow: Vec<String>,
}

impl StaticTxt {
    pub(crate) fn with(mut self, name: &str, record: &str) -> StaticTxt {
        self.records
            .entry(name.to_owned())
            .or_default()
            .push(record.to_owned());
        self
    }
}

impl TxtLookup for StaticTxt {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        Box::pin(async move {
            if self.slow.iter().any(|n| n == name) {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            if self.failing.iter().any(|n| n == name) {
                return Err(DnsError::Failed("SERVFAIL".into()));
            }
            self.records.get(name).cloned().ok_or(DnsError::NotFound)
        })
    }
}
