//! A minimal HTTP/1.1 keep-alive client for the load phases.
//!
//! On two cores the load generator shares the machine with the server: a general client
//! (connection pool, tower services, header maps) costs enough CPU per request to cap the
//! read phases before the server does (listRecords: about half of what `wrk` measured
//! against the same server). This one writes the request line and headers into one buffer,
//! parses the response head with `httparse` and reads the body by `Content-Length` or
//! chunks, on one TCP connection.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most response headers read.
const MAX_HEADERS: usize = 32;

/// One keep-alive connection.
pub(crate) struct Conn {
    stream: TcpStream,
    host: String,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// The request being written.
    out: Vec<u8>,
}

/// A response: status and body.
pub(crate) struct Response {
    pub status: u16,
    /// The body; empty for a successful response read without keeping it.
    pub body: Bytes,
    /// The body's length in bytes.
    pub len: u64,
}

impl Conn {
    /// Connects to `base` (`http://host:port`).
    pub(crate) async fn connect(base: &str) -> io::Result<Conn> {
        let host = base
            .strip_prefix("http://")
            .ok_or_else(|| io::Error::other(format!("not a plain http URL: {base}")))?
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            host,
            buf: BytesMut::with_capacity(64 * 1024),
            out: Vec::with_capacity(1024),
        })
    }

    /// Sends a request and reads its response. Without `keep`, a successful response's body
    /// is counted and dropped as it arrives ([`Response::len`]), never gathered.
    async fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        keep: bool,
    ) -> io::Result<Response> {
        let out = &mut self.out;
        out.clear();
        for part in [
            method,
            " ",
            target,
            " HTTP/1.1\r\nhost: ",
            &self.host,
            "\r\n",
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        for (name, value) in headers {
            for part in [*name, ": ", *value, "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        if let Some(body) = body {
            out.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(out).await?;
        self.response(keep).await
    }

    /// Reads more bytes into the buffer; the peer closing the connection is an error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    async fn response(&mut self, keep: bool) -> io::Result<Response> {
        let (status, head_len, length, chunked) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf).map_err(io::Error::other)? {
                httparse::Status::Complete(len) => {
                    let mut length = None;
                    let mut chunked = false;
                    for header in response.headers.iter() {
                        if header.name.eq_ignore_ascii_case("content-length") {
                            length = std::str::from_utf8(header.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok());
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = header.value.eq_ignore_ascii_case(b"chunked");
                        }
                    }
                    break (response.code.unwrap_or(0), len, length, chunked);
                }
                httparse::Status::Partial => self.fill().await?,
            }
        };
        self.buf.advance(head_len);
        // Error bodies are always kept, for the message.
        let keep = keep || !(200..300).contains(&status);
        let mut body = BytesMut::new();
        let mut len = 0u64;
        if chunked {
            self.chunked_body(keep.then_some(&mut body), &mut len)
                .await?;
        } else {
            let mut left = length.ok_or_else(|| {
                io::Error::other("a response with neither Content-Length nor chunks")
            })?;
            len = left as u64;
            if keep {
                while self.buf.len() < left {
                    self.fill().await?;
                }
                body = self.buf.split_to(left);
            } else {
                loop {
                    let take = left.min(self.buf.len());
                    self.buf.advance(take);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                    self.fill().await?;
                }
            }
        }
        Ok(Response {
            status,
            body: body.freeze(),
            len,
        })
    }

    /// Reads a chunked body: appended to `body` when given, its length added to `len`.
    async fn chunked_body(
        &mut self,
        mut body: Option<&mut BytesMut>,
        len: &mut u64,
    ) -> io::Result<()> {
        loop {
            let line = self.line().await?;
            let size = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| io::Error::other("a malformed chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(());
            }
            *len += size as u64;
            let mut left = size;
            while left > 0 {
                if self.buf.is_empty() {
                    self.fill().await?;
                }
                let take = left.min(self.buf.len());
                if let Some(body) = body.as_deref_mut() {
                    body.extend_from_slice(&self.buf[..take]);
                }
                self.buf.advance(take);
                left -= take;
            }
            while self.buf.len() < 2 {
                self.fill().await?;
            }
            if &self.buf[..2] != b"\r\n" {
                return Err(io::Error::other("a chunk not followed by CRLF"));
            }
            self.buf.advance(2);
        }
    }

    /// The next line without its CRLF.
    async fn line(&mut self) -> io::Result<Bytes> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(at).freeze();
                self.buf.advance(2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }
}

/// A [`Conn`] to share with the futures of one load connection (they run one at a time, so
/// the lock is never contended), connected on first use and again after an error.
#[derive(Clone)]
pub(crate) struct Client {
    base: std::sync::Arc<str>,
    conn: std::sync::Arc<tokio::sync::Mutex<Option<Conn>>>,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str) -> Client {
        Client {
            base: base.into(),
            conn: Default::default(),
        }
    }

    /// `GET target` (a path and query).
    pub(crate) async fn get(&self, target: &str) -> io::Result<Response> {
        self.request("GET", target, &[], None, true).await
    }

    /// `GET target`, a successful body counted and dropped as it arrives (a large download
    /// costs the load generator no copy).
    pub(crate) async fn get_counted(&self, target: &str) -> io::Result<Response> {
        self.request("GET", target, &[], None, false).await
    }

    /// `POST target` with a JSON body and `headers`.
    pub(crate) async fn post_json(
        &self,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.request("POST", target, headers, Some(body), true)
            .await
    }

    async fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        keep: bool,
    ) -> io::Result<Response> {
        let mut slot = self.conn.lock().await;
        let conn = match &mut *slot {
            Some(conn) => conn,
            None => slot.insert(Conn::connect(&self.base).await?),
        };
        let result = conn.request(method, target, headers, body, keep).await;
        if result.is_err() {
            // The connection is in an unknown state: the next request opens another.
            *slot = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncBufReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// Two requests on one connection: a chunked answer (with a chunk extension and a
    /// trailer), then one with a length, each read to exactly its end.
    #[tokio::test]
    async fn keep_alive_with_chunks_and_lengths() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = tokio::io::BufReader::new(stream);
            let answers: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsix!!!",
            ];
            let mut requests = Vec::new();
            for answer in answers {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    stream.read_line(&mut line).await.unwrap();
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                if head.starts_with("POST") {
                    let mut body = [0u8; 2];
                    stream.read_exact(&mut body).await.unwrap();
                    head.push_str(std::str::from_utf8(&body).unwrap());
                }
                requests.push(head);
                stream.get_mut().write_all(answer).await.unwrap();
            }
            requests
        });
        let client = Client::new(&base);
        let first = client.get("/a?b=c").await.unwrap();
        assert_eq!((first.status, &first.body[..]), (200, &b"hello world"[..]));
        assert_eq!(first.len, 11);
        let second = client
            .post_json("/p", &[("authorization", "Bearer t")], b"{}")
            .await
            .unwrap();
        assert_eq!((second.status, &second.body[..]), (404, &b"nope"[..]));
        // Counted, not kept: the connection still ends up at the next response.
        let third = client.get_counted("/c").await.unwrap();
        assert_eq!((third.status, third.len, third.body.len()), (200, 5, 0));
        let fourth = client.get_counted("/d").await.unwrap();
        assert_eq!((fourth.status, fourth.len, fourth.body.len()), (200, 6, 0));
        let requests = server.await.unwrap();
        assert!(requests[0].starts_with("GET /a?b=c HTTP/1.1\r\nhost: 127.0.0.1:"));
        assert!(requests[1].contains("authorization: Bearer t\r\n"));
        assert!(requests[1].ends_with("content-length: 2\r\n\r\n{}"));
    }
}
