//! HTTP/1.1 request parsing (httparse) and response writing.
//!
//! Requests are parsed from a connection's input buffer as bytes arrive;
//! [`parse`] says whether a full request (head and body) is there, or what
//! status to refuse it with. Responses are written into the connection's
//! output buffer by [`write_response`].

use std::borrow::Cow;

/// Limits applied while parsing (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head, bytes.
    pub max_header_bytes: usize,
    /// Largest body, bytes.
    pub max_body_bytes: usize,
}

/// Most header lines in one request.
pub const MAX_HEADERS: usize = 64;

/// One parsed request; only what the server uses is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Percent-decoded path without the query.
    pub path: String,
    /// Raw query string (after `?`), not decoded.
    pub query: String,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// `Upgrade: websocket` with `Connection: upgrade`.
    pub upgrade_websocket: bool,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// Token of `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
    /// Bytes of head plus body: what to consume from the buffer.
    pub total_len: usize,
}

/// Result of trying to parse the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A complete request.
    Request(Request),
    /// Refuse with this status and message, then close.
    Refuse(u16, &'static str),
}

/// Parses one request from the start of `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_header_bytes {
                Parsed::Refuse(431, "request head larger than server.max_header_bytes")
            } else {
                Parsed::Incomplete
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refuse(431, "too many header lines");
        }
        Err(_) => return Parsed::Refuse(400, "malformed HTTP request"),
    };
    if head_len > limits.max_header_bytes {
        return Parsed::Refuse(431, "request head larger than server.max_header_bytes");
    }
    let version = req.version.unwrap_or(1);
    let mut r = Request {
        method: req.method.unwrap_or("").to_string(),
        keep_alive: version >= 1,
        ..Request::default()
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    r.path = percent_decode(path).into_owned();
    r.query = query.to_string();
    let mut body_len = 0usize;
    let mut conn_upgrade = false;
    let mut upgrade_ws = false;
    for h in req.headers.iter() {
        let name = h.name;
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) => body_len = n,
                Err(_) => return Parsed::Refuse(400, "invalid Content-Length"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Refuse(501, "chunked request bodies are not supported");
        } else if name.eq_ignore_ascii_case("connection") {
            for tok in value.split(',').map(str::trim) {
                if tok.eq_ignore_ascii_case("close") {
                    r.keep_alive = false;
                } else if tok.eq_ignore_ascii_case("keep-alive") {
                    r.keep_alive = true;
                } else if tok.eq_ignore_ascii_case("upgrade") {
                    conn_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_ws = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            r.ws_key = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            r.ws_version = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("authorization") {
            let (scheme, tok) = value.split_once(' ').unwrap_or((value, ""));
            if scheme.eq_ignore_ascii_case("bearer") {
                r.bearer = Some(tok.trim().to_string());
            }
        }
    }
    r.upgrade_websocket = conn_upgrade && upgrade_ws;
    if body_len > limits.max_body_bytes {
        return Parsed::Refuse(413, "request body larger than server.max_body_bytes");
    }
    if buf.len() < head_len + body_len {
        return Parsed::Incomplete;
    }
    r.total_len = head_len + body_len;
    Parsed::Request(r)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set); invalid
/// escapes are kept as they are, invalid UTF-8 is replaced.
fn decode(s: &str, plus: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (plus && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-decodes a path.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    decode(s, false)
}

/// The decoded value of query parameter `name`, if present.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k, true) == name).then(|| decode(v, true))
    })
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Content type of JSON bodies.
pub const JSON: &str = "application/json";
/// Content type of the Prometheus text exposition format 0.0.4.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A response ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Extra header lines (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: JSON,
            body,
            headers: Vec::new(),
            close: false,
        }
    }

    /// A JSON error body `{"type":"error","code":..,"message":..}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let mut body = Vec::with_capacity(96 + message.len());
        crate::json::write_error(&mut body, code, message);
        Self::json(status, body)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Marks the connection to be closed after this response.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

/// Appends `resp` as an HTTP/1.1 response to `out`; `head_only` omits the
/// body (HEAD requests) but keeps its `Content-Length`.
pub fn write_response(out: &mut Vec<u8>, resp: &Response, keep_alive: bool, head_only: bool) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        if keep_alive && !resp.close {
            "keep-alive"
        } else {
            "close"
        }
    );
    for (k, v) in &resp.headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade.
pub fn write_upgrade(out: &mut Vec<u8>, ws_key: &str) {
    let accept = tungstenite::handshake::derive_accept_key(ws_key.as_bytes());
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// Compares a presented token with the configured one in time that does
/// not depend on where they differ.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(!*e);
        diff |= p ^ e;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_header_bytes: 1024,
        max_body_bytes: 16,
    };

    fn req(s: &str) -> Request {
        match parse(s.as_bytes(), &L) {
            Parsed::Request(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_get_with_query_and_keepalive() {
        let r = req("GET /api/v1/bars/SIM%3ABTC?window=1m&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/v1/bars/SIM:BTC");
        assert_eq!(query_param(&r.query, "window").as_deref(), Some("1m"));
        assert_eq!(query_param(&r.query, "limit").as_deref(), Some("5"));
        assert_eq!(query_param(&r.query, "nope"), None);
        assert!(r.keep_alive);
        assert!(!r.upgrade_websocket);
        let r = req("GET / HTTP/1.0\r\n\r\n");
        assert!(!r.keep_alive);
        let r = req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!r.keep_alive);
    }

    #[test]
    fn parses_upgrade_and_bearer() {
        let r = req(
            "GET /ws?token=a%2Bb HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer s3cr3t\r\n\r\n",
        );
        assert!(r.upgrade_websocket);
        assert_eq!(r.bearer.as_deref(), Some("s3cr3t"));
        assert_eq!(query_param(&r.query, "token").as_deref(), Some("a+b"));
        let mut out = Vec::new();
        write_upgrade(&mut out, r.ws_key.as_deref().unwrap());
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn incomplete_and_body() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost:", &L), Parsed::Incomplete);
        assert_eq!(
            parse(b"POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nab", &L),
            Parsed::Incomplete
        );
        let r = req("POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdGET");
        assert_eq!(
            r.total_len,
            "POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd".len()
        );
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse(b"\x01\x02garbage\r\n\r\n", &L),
            Parsed::Refuse(400, _)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 999\r\n\r\n", &L),
            Parsed::Refuse(413, _)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", &L),
            Parsed::Refuse(400, _)
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &L),
            Parsed::Refuse(501, _)
        ));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(2000));
        assert!(matches!(parse(big.as_bytes(), &L), Parsed::Refuse(431, _)));
        let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
        let s = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let l = Limits {
            max_header_bytes: 1 << 20,
            ..L
        };
        assert!(matches!(parse(s.as_bytes(), &l), Parsed::Refuse(431, _)));
    }

    #[test]
    fn percent_decoding_edge_cases() {
        assert_eq!(percent_decode("/a%3Ab"), "/a:b");
        assert_eq!(percent_decode("/a%3"), "/a%3");
        assert_eq!(percent_decode("/a%zz"), "/a%zz");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn response_format() {
        let mut out = Vec::new();
        let r = Response::error(404, "not_found", "no such path").with_header("X-A", "1");
        write_response(&mut out, &r, true, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"), "{s}");
        assert!(s.contains("Content-Type: application/json\r\n"));
        assert!(s.contains("Connection: keep-alive\r\n"));
        assert!(s.contains("X-A: 1\r\n"));
        let body = s.split("\r\n\r\n").nth(1).unwrap();
        assert!(s.contains(&format!("Content-Length: {}\r\n", body.len())));
        let mut out = Vec::new();
        write_response(&mut out, &r.closing(), true, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Connection: close\r\n") && s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn token_compare() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abd", b"abc"));
        assert!(!token_matches(b"ab", b"abc"));
        assert!(!token_matches(b"abcd", b"abc"));
        assert!(!token_matches(b"", b"abc"));
    }
}
