//! A lean HTTP/1.1 client for plain `http://` OpenAI-compatible servers (vLLM, llama.cpp server,
//! Ollama on the local network): POST a JSON body, read one response, keep the connection.
//!
//! Why by hand: with HTTP/1.1 every request in flight holds its own connection, and a
//! hyper/reqwest connection costs about 25 KB however small the exchange (measured with massif:
//! a 9 KB dispatch-channel block, an 8 KB header write buffer and an 8 KB read buffer, none of
//! them configurable through reqwest), so 10,000 requests in flight need ~250 MB. Here a
//! connection is a socket and a read buffer that starts at 1 KB and grows only as a response
//! needs. `https://` URLs, and any URL when an HTTP proxy is configured, still go through reqwest
//! (TLS and proxies are what it does well).
//!
//! Supported: `Content-Length`, `chunked` and read-until-close bodies; keep-alive with an idle
//! pool; a pooled connection the server closed meanwhile is retried once on a fresh one.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Largest response body accepted.
const MAX_BODY: usize = 64 << 20;

/// A response: status, headers and the whole body.
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// One `http://host:port` origin with a pool of idle keep-alive connections.
pub(crate) struct Http1 {
    /// `host:port` to connect to and to send as `Host`.
    authority: String,
    /// Path prefix of the base URL without a trailing `/` (e.g. `/v1`).
    prefix: String,
    idle: Mutex<Vec<TcpStream>>,
    max_idle: usize,
    connect_timeout: Duration,
}

/// Whether requests to `base_url` can use [`Http1`]: plain HTTP and no proxy configured.
pub(crate) fn usable(base_url: &str) -> bool {
    let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|p| !p.is_empty()));
    !proxied
        && reqwest::Url::parse(base_url)
            .is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some())
}

impl Http1 {
    pub(crate) fn new(base_url: &str, max_idle: usize, connect_timeout: Duration) -> Result<Self> {
        let url = reqwest::Url::parse(base_url).with_context(|| format!("base URL {base_url}"))?;
        if url.scheme() != "http" {
            bail!("internal: {base_url} is not a plain http:// URL");
        }
        let host = url.host_str().context("base URL without a host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Self {
            authority: format!("{host}:{port}"),
            prefix: url.path().trim_end_matches('/').to_string(),
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
        })
    }

    /// POSTs a JSON body to `prefix/path`.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<Response> {
        let mut head = format!(
            "POST {}/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n",
            self.prefix,
            path,
            self.authority,
            body.len()
        );
        if let Some(k) = bearer {
            head.push_str("Authorization: Bearer ");
            head.push_str(k);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        // A pooled connection may have been closed by the server since its last use: that shows
        // as a write error or an end of stream before any byte of the response. Once, retry on a
        // fresh connection (the request was not processed: nothing was answered).
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        if let Some(stream) = pooled {
            match self.exchange(stream, true, head.as_bytes(), body).await {
                Ok(r) => return Ok(r),
                Err(Exchange::Stale) => {}
                Err(Exchange::Failed(e)) => return Err(e),
            }
        }
        let stream =
            tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.authority))
                .await
                .map_err(|_| anyhow!("connecting to {}: timed out", self.authority))?
                .with_context(|| format!("connecting to {}", self.authority))?;
        let _ = stream.set_nodelay(true);
        match self.exchange(stream, false, head.as_bytes(), body).await {
            Ok(r) => Ok(r),
            Err(Exchange::Stale) => Err(anyhow!(
                "{} closed the connection without answering",
                self.authority
            )),
            Err(Exchange::Failed(e)) => Err(e),
        }
    }

    /// One request/response on `s` (`reused`: it comes from the idle pool).
    async fn exchange(
        &self,
        mut s: TcpStream,
        reused: bool,
        head: &[u8],
        body: &[u8],
    ) -> std::result::Result<Response, Exchange> {
        if s.write_all(head).await.is_err() || s.write_all(body).await.is_err() {
            return Err(if reused {
                Exchange::Stale
            } else {
                Exchange::Failed(anyhow!("sending to {}: connection closed", self.authority))
            });
        }
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        // The head.
        let (status, headers, head_len, close) = loop {
            let n = match fill(&mut s, &mut buf).await {
                Ok(n) => n,
                Err(_) if reused && buf.is_empty() => return Err(Exchange::Stale),
                Err(e) => {
                    return Err(Exchange::Failed(anyhow!(
                        "reading from {}: {e}",
                        self.authority
                    )));
                }
            };
            if n == 0 {
                return Err(if reused && buf.is_empty() {
                    Exchange::Stale
                } else {
                    Exchange::Failed(anyhow!(
                        "{} closed the connection mid-response",
                        self.authority
                    ))
                });
            }
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut hs);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    let http10 = resp.version == Some(0);
                    let mut headers = HeaderMap::new();
                    for h in resp.headers.iter() {
                        if let (Ok(n), Ok(v)) = (
                            HeaderName::from_bytes(h.name.as_bytes()),
                            HeaderValue::from_bytes(h.value),
                        ) {
                            headers.append(n, v);
                        }
                    }
                    let conn = headers
                        .get("connection")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.to_ascii_lowercase())
                        .unwrap_or_default();
                    let close = conn.contains("close") || (http10 && !conn.contains("keep-alive"));
                    break (status, headers, len, close);
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Exchange::Failed(anyhow!(
                        "response head from {} over {MAX_HEAD} bytes",
                        self.authority
                    )));
                }
                Err(e) => {
                    return Err(Exchange::Failed(anyhow!(
                        "malformed HTTP response from {}: {e}",
                        self.authority
                    )));
                }
            }
        };
        buf.drain(..head_len);
        let fail = |e: String| Exchange::Failed(anyhow!("{}: {e}", self.authority));
        let chunked = headers
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let (body, reusable) = if chunked {
            (read_chunked(&mut s, buf).await.map_err(fail)?, !close)
        } else if let Some(len) = length {
            if len > MAX_BODY {
                return Err(fail(format!("response body of {len} bytes is too large")));
            }
            while buf.len() < len {
                buf.reserve(len - buf.len());
                if fill(&mut s, &mut buf)
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    == 0
                {
                    return Err(fail("connection closed mid-body".into()));
                }
            }
            // Bytes beyond the body would be a protocol error: do not reuse the connection.
            let extra = buf.len() > len;
            buf.truncate(len);
            (buf, !close && !extra)
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            // No body. After an unexpected 1xx the real answer would follow on this connection:
            // do not hand it to another request.
            (Vec::new(), !close && status >= 200)
        } else {
            // Delimited by the end of the connection.
            while fill(&mut s, &mut buf)
                .await
                .map_err(|e| fail(e.to_string()))?
                > 0
            {
                if buf.len() > MAX_BODY {
                    return Err(fail("response body too large".into()));
                }
            }
            (buf, false)
        };
        if reusable
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(s);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

enum Exchange {
    /// Nothing was answered on a connection that may have been closed while idle.
    Stale,
    Failed(anyhow::Error),
}

/// Reads more bytes into `buf` (growing it by at least 1 KB when full); 0 at end of stream.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 512 {
        buf.reserve(buf.len().max(1024));
    }
    s.read_buf(buf).await
}

/// Decodes a chunked body; `buf` holds the bytes already read after the head.
async fn read_chunked(s: &mut TcpStream, mut buf: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        // The chunk-size line.
        let line_end = loop {
            if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            if buf.len() - pos > 4096 {
                return Err("malformed chunk header".into());
            }
            if fill(s, &mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed mid-body".into());
            }
        };
        let line = std::str::from_utf8(&buf[pos..line_end]).map_err(|e| e.to_string())?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("malformed chunk size {size_hex:?}"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers (if any) end with an empty line.
            loop {
                if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    if i == 0 {
                        return Ok(body);
                    }
                    pos += i + 2;
                    continue;
                }
                if fill(s, &mut buf).await.map_err(|e| e.to_string())? == 0 {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err("response body too large".into());
        }
        while buf.len() < pos + size + 2 {
            if fill(s, &mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed mid-chunk".into());
            }
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
        // Keep the buffer small: drop what has been consumed.
        if pos > 4096 {
            buf.drain(..pos);
            pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A real loopback server answering its n-th request (over all connections) as scripted:
    /// the framings and connection endings real servers use.
    fn serve(connections: Arc<AtomicUsize>) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", l.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                connections.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut len = 0;
                        loop {
                            let mut line = String::new();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap();
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        let reply: &[u8] = match requests.fetch_add(1, Ordering::SeqCst) {
                            // Content-Length; then the server drops the idle connection.
                            0 => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                            // Chunked, with a chunk extension and a trailer; kept alive.
                            1 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n",
                            // No length: the body ends with the connection.
                            _ => b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 3\r\n\r\nbye",
                        };
                        let _ = conn.write_all(reply);
                        if !reply.starts_with(b"HTTP/1.1 200 OK\r\nTransfer") {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    #[test]
    fn framings_keep_alive_and_a_closed_idle_connection() {
        let connections = Arc::new(AtomicUsize::new(0));
        let url = serve(connections.clone());
        let c = Http1::new(&url, 8, Duration::from_secs(5)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = c
                .post_json("chat/completions", Some("k"), b"{}")
                .await
                .unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
            // Let the server's close arrive: the pooled connection is now dead, and the client
            // must notice and resend on a fresh one, without an error.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let r = c
                .post_json("chat/completions", None, b"{\"a\":1}")
                .await
                .unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
            // Kept alive after the chunked answer: the third request reuses that connection.
            let r = c.post_json("completions", None, b"{}").await.unwrap();
            assert_eq!((r.status, r.body.as_slice()), (429, &b"bye"[..]));
            assert_eq!(r.headers.get("retry-after").unwrap(), "3");
        });
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        assert!(
            c.idle.lock().unwrap().is_empty(),
            "a closed connection was pooled"
        );
    }
}
