//! WebSocket client source: many venue connections on one mio [`Poll`],
//! never blocking the feed thread.
//!
//! [`WsSource`] is a [`FrameSource`] that drives one connection per
//! [`WsConnSpec`] (one per configured feed): non-blocking TCP connect
//! (registered with the poller *before* tungstenite sees the socket), TLS
//! through rustls (webpki roots plus optional extra CA certificates),
//! WebSocket handshake resumed on [`HandshakeError::Interrupted`] at the next
//! readiness event, then frames read until `WouldBlock` (edge-triggered).
//!
//! Per connection:
//! - receive time stamped once per frame, right after tungstenite returns it;
//! - frame and message size limits from config (`max_frame_bytes`);
//! - writes (subscribe, keepalive, pong) never block: `WouldBlock` means the
//!   frame sits in tungstenite's bounded write buffer ([`MAX_WRITE_BUFFER`])
//!   and is flushed on the next WRITABLE event, never re-sent;
//! - pings are answered by tungstenite and the pong flushed after the read
//!   burst; application keepalives ([`super::Adapter::keepalive`]) are sent
//!   on their interval;
//! - resilience ([`super::resilience`]): reconnect with exponential backoff
//!   and full jitter, circuit breaker over failed attempts, stale-feed
//!   watchdog forcing a reconnect, proactive rotation after
//!   `max_connection_age` (Binance cuts connections at 24 h).
//!
//! Lifecycle changes are reported through [`FrameSource::next_event`]; the
//! [`super::FeedStage`] turns them into status ticks and sends the adapter's
//! `on_connect` messages (the resubscribe) back through
//! [`FrameSource::send`].
//!
//! Host names are resolved on a short-lived helper thread so a slow DNS
//! server cannot stall the feed thread; IP literals connect directly.
//!
//! The following is **not** guaranteed: rotation is break-then-make (a
//! short gap around the rotation, reported as DISCONNECTED/CONNECTED), and
//! tungstenite may allocate while reading when a frame is larger than its
//! read buffer.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::handshake::MidHandshake;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{HandshakeError, Message, WebSocket};

use super::resilience::{Backoff, CircuitBreaker, Watchdog};
use super::{FrameSource, SourceEvent, SourceEventKind, SourcePoll};
use crate::clock::Clock;
use crate::config::FeedConfig;

/// Bound on each connection's outgoing buffer (subscribes, keepalives,
/// pongs). Exceeding it closes the connection (the peer is not reading).
pub const MAX_WRITE_BUFFER: usize = 1 << 20;

/// Most frames read from one connection before another readable one gets a
/// turn.
const BURST: u32 = 64;

/// How often timers and readiness are serviced while frames keep coming.
const SERVICE_EVERY_NS: i64 = 1_000_000;

/// Events fetched per poll.
const EVENTS_CAPACITY: usize = 256;

/// Tokens: low 16 bits = connection index, the rest = socket generation
/// (stale events of a replaced socket are ignored).
const IDX_BITS: usize = 16;

/// Why a connection spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WsSetupError {
    /// The URL is not a usable ws:// or wss:// URL.
    #[error("feed '{feed}': url '{url}': {message}")]
    Url {
        /// Feed name.
        feed: String,
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The CA file could not be read.
    #[error("feed '{feed}': cannot read ca_file {path}: {source} (check the path in config)")]
    CaRead {
        /// Feed name.
        feed: String,
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The CA PEM has no usable certificate.
    #[error("feed '{feed}': CA certificates: {message}")]
    Ca {
        /// Feed name.
        feed: String,
        /// What is wrong.
        message: String,
    },
    /// The poller could not be created.
    #[error("cannot create the network poller (epoll): {0}")]
    Poll(io::Error),
    /// More connections than tokens.
    #[error("too many WebSocket feeds ({0}); at most 65535")]
    TooMany(usize),
}

/// A rustls client configuration trusting the webpki (Mozilla) roots plus
/// every certificate in `extra_ca_pem` (PEM text; tests, private venues,
/// feedsim's self-signed certificate).
///
/// # Errors
/// `extra_ca_pem` holds no certificate or a certificate rustls rejects.
pub fn client_tls_config(extra_ca_pem: Option<&[u8]>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("certificate rejected: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err("no CERTIFICATE block found in the PEM".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Everything one connection needs: where, how to keep it alive, limits.
#[derive(Clone)]
pub struct WsConnSpec {
    /// Feed name (logs).
    pub name: String,
    /// Stream index reported with frames and events (this source's own
    /// numbering; [`super::multi::MultiSource`] maps it to the stage's).
    pub stream: u32,
    /// `ws://` or `wss://` URL.
    pub url: String,
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    /// Largest frame and message accepted, bytes.
    pub max_frame_bytes: usize,
    /// Stale-feed interval; zero = off.
    pub stale_after: Duration,
    /// Backoff ceiling of the first attempt.
    pub backoff_initial: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Consecutive failed attempts that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open.
    pub breaker_open: Duration,
    /// Proactive reconnect after this age; zero = never.
    pub max_age: Duration,
    /// Connect + handshake deadline.
    pub connect_timeout: Duration,
    /// Application keepalive: interval and message.
    pub keepalive: Option<(Duration, String)>,
}

impl std::fmt::Debug for WsConnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnSpec")
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("url", &self.url)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl WsConnSpec {
    /// A spec for `url` with default resilience settings (those of
    /// [`FeedConfig::default`]). `extra_ca_pem` adds trusted certificates
    /// for `wss://`.
    ///
    /// # Errors
    /// Not a ws/wss URL, or unusable CA certificates.
    pub fn new(
        name: &str,
        stream: u32,
        url: &str,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, WsSetupError> {
        let bad = |message: String| WsSetupError::Url {
            feed: name.to_string(),
            url: url.to_string(),
            message,
        };
        let u = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let tls = match u.scheme() {
            "ws" => false,
            "wss" => true,
            s => return Err(bad(format!("scheme '{s}' is not ws or wss"))),
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port().unwrap_or(if tls { 443 } else { 80 });
        let tls = if tls {
            Some(
                client_tls_config(extra_ca_pem).map_err(|message| WsSetupError::Ca {
                    feed: name.to_string(),
                    message,
                })?,
            )
        } else {
            None
        };
        let d = FeedConfig::default();
        Ok(Self {
            name: name.to_string(),
            stream,
            url: url.to_string(),
            host,
            port,
            tls,
            max_frame_bytes: d.max_frame_bytes,
            stale_after: Duration::from_millis(d.stale_after_ms),
            backoff_initial: Duration::from_millis(d.backoff_initial_ms),
            backoff_max: Duration::from_millis(d.backoff_max_ms),
            breaker_failures: d.breaker_failures,
            breaker_open: Duration::from_millis(d.breaker_open_ms),
            max_age: Duration::from_secs(d.max_connection_age_secs),
            connect_timeout: Duration::from_millis(d.connect_timeout_ms),
            keepalive: None,
        })
    }

    /// A spec from a `[[feeds]]` entry connecting to `url` (the entry's own
    /// URL, or the address of an in-process feedsim). The entry's
    /// `ca_file` is read here; `extra_ca_pem` adds more certificates.
    ///
    /// # Errors
    /// Bad URL, unreadable or unusable CA file.
    pub fn from_feed_config(
        f: &FeedConfig,
        stream: u32,
        url: &str,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, WsSetupError> {
        let mut pem = Vec::new();
        if let Some(p) = &f.ca_file {
            pem = std::fs::read(p).map_err(|source| WsSetupError::CaRead {
                feed: f.name.clone(),
                path: p.clone(),
                source,
            })?;
            pem.push(b'\n');
        }
        if let Some(extra) = extra_ca_pem {
            pem.extend_from_slice(extra);
        }
        let mut s = Self::new(&f.name, stream, url, (!pem.is_empty()).then_some(&pem[..]))?;
        s.max_frame_bytes = f.max_frame_bytes;
        s.stale_after = Duration::from_millis(f.stale_after_ms);
        s.backoff_initial = Duration::from_millis(f.backoff_initial_ms);
        s.backoff_max = Duration::from_millis(f.backoff_max_ms);
        s.breaker_failures = f.breaker_failures;
        s.breaker_open = Duration::from_millis(f.breaker_open_ms);
        s.max_age = Duration::from_secs(f.max_connection_age_secs);
        s.connect_timeout = Duration::from_millis(f.connect_timeout_ms);
        Ok(s)
    }

    /// Whether the URL is `wss://`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn ws_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_frame_size(Some(self.max_frame_bytes))
            .max_message_size(Some(self.max_frame_bytes))
            .write_buffer_size(0)
            .max_write_buffer_size(MAX_WRITE_BUFFER)
    }
}

/// Plain TCP or TLS over a mio socket.
enum NetStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl NetStream {
    fn sock(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(t) => &mut t.sock,
        }
    }
}

impl Read for NetStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(t) => t.read(buf),
        }
    }
}

impl Write for NetStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(t) => t.flush(),
        }
    }
}

type Resolved = io::Result<Vec<SocketAddr>>;

enum State {
    /// Waiting to (re)connect at `retry_at_ns` (backoff or open breaker).
    Waiting { retry_at_ns: i64 },
    /// Host name being resolved on a helper thread.
    Resolving { rx: mpsc::Receiver<Resolved> },
    /// Non-blocking TCP connect in flight; `rest` = addresses to try next.
    Connecting {
        sock: TcpStream,
        rest: Vec<SocketAddr>,
    },
    /// TLS + WebSocket handshake in flight.
    Handshaking(Box<MidHandshake<ClientHandshake<NetStream>>>),
    /// Open: frames flow.
    Open(Box<WebSocket<NetStream>>),
}

/// Why a connection is being dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropKind {
    /// Attempt failed or the connection broke.
    Failure,
    /// The watchdog fired.
    Stale,
    /// Proactive rotation (max age).
    Rotate,
}

struct Conn {
    spec: WsConnSpec,
    state: State,
    generation: usize,
    /// Engine-clock time the current attempt started.
    attempt_ns: i64,
    /// Readiness seen and not yet drained (edge-triggered).
    readable: bool,
    /// Buffered output waiting for WRITABLE.
    want_flush: bool,
    /// Data received since the connection opened.
    got_data: bool,
    opened_ns: i64,
    last_keepalive_ns: i64,
    /// Connections opened so far.
    connections: u64,
    /// Consecutive failed attempts (reset by data).
    failures: u64,
    /// Last status reported downstream (feed_status code; 0 = none).
    reported: u64,
    backoff: Backoff,
    breaker: CircuitBreaker,
    watchdog: Watchdog,
    /// Pings received (answered by tungstenite).
    pings: u64,
}

impl Conn {
    fn token(&self, idx: usize) -> Token {
        Token((self.generation << IDX_BITS) | idx)
    }
}

/// Counters a [`WsSource`] keeps for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsStats {
    /// Connections opened (handshake complete), all streams.
    pub connections: u64,
    /// Failed attempts and broken connections.
    pub failures: u64,
    /// WebSocket pings received (each answered with a pong).
    pub pings: u64,
}

/// Frame source over WebSocket connections (see the module docs).
pub struct WsSource {
    poll: Poll,
    events: Events,
    ready: Vec<(usize, bool, bool)>,
    conns: Vec<Conn>,
    pending: VecDeque<SourceEvent>,
    clock: Clock,
    /// Connection the last frame came from.
    cur: usize,
    burst: u32,
    next_service_ns: i64,
    failures: u64,
    /// Kept alive as long as the source (e.g. an in-process feedsim).
    attached: Vec<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for WsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsSource")
            .field(
                "conns",
                &self.conns.iter().map(|c| &c.spec).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl WsSource {
    /// A source for `specs`; the first connection attempts start on the
    /// first poll. `seed` seeds the backoff jitter (per connection
    /// `seed ^ stream`).
    ///
    /// # Errors
    /// The poller could not be created, or too many specs.
    pub fn new(specs: Vec<WsConnSpec>, clock: Clock, seed: u64) -> Result<Self, WsSetupError> {
        if specs.len() >= (1 << IDX_BITS) {
            return Err(WsSetupError::TooMany(specs.len()));
        }
        let poll = Poll::new().map_err(WsSetupError::Poll)?;
        let conns = specs
            .into_iter()
            .map(|spec| Conn {
                backoff: Backoff::new(
                    spec.backoff_initial,
                    spec.backoff_max,
                    seed ^ u64::from(spec.stream).wrapping_mul(0x9E37_79B9),
                ),
                breaker: CircuitBreaker::new(spec.breaker_failures, spec.breaker_open),
                watchdog: Watchdog::new(spec.stale_after),
                spec,
                state: State::Waiting { retry_at_ns: 0 },
                generation: 0,
                attempt_ns: 0,
                readable: false,
                want_flush: false,
                got_data: false,
                opened_ns: 0,
                last_keepalive_ns: 0,
                connections: 0,
                failures: 0,
                reported: 0,
                pings: 0,
            })
            .collect();
        Ok(Self {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            ready: Vec::with_capacity(EVENTS_CAPACITY),
            conns,
            pending: VecDeque::with_capacity(64),
            clock,
            cur: 0,
            burst: 0,
            next_service_ns: 0,
            failures: 0,
            attached: Vec::new(),
        })
    }

    /// Keeps `thing` alive as long as this source (dropped after the
    /// connections are closed), e.g. the in-process feedsim it talks to.
    pub fn attach(&mut self, thing: Box<dyn std::any::Any + Send>) {
        self.attached.push(thing);
    }

    /// Counters so far.
    pub fn stats(&self) -> WsStats {
        WsStats {
            connections: self.conns.iter().map(|c| c.connections).sum(),
            failures: self.failures,
            pings: self.conns.iter().map(|c| c.pings).sum(),
        }
    }

    /// Whether connection `stream` is open.
    pub fn is_open(&self, stream: u32) -> bool {
        self.conns
            .iter()
            .any(|c| c.spec.stream == stream && matches!(c.state, State::Open(_)))
    }

    fn push_event(&mut self, i: usize, kind: SourceEventKind, detail: u64) {
        let stream = self.conns[i].spec.stream;
        self.pending.push_back(SourceEvent {
            stream,
            kind,
            detail,
        });
    }

    /// Reads one message from connection `i`.
    #[inline]
    fn read_one(&mut self, i: usize, buf: &mut Vec<u8>) -> ReadOutcome {
        let c = &mut self.conns[i];
        let State::Open(ws) = &mut c.state else {
            return ReadOutcome::Drained;
        };
        match ws.read() {
            Ok(Message::Text(t)) => {
                buf.extend_from_slice(t.as_bytes());
                ReadOutcome::Frame
            }
            Ok(Message::Binary(b)) => {
                buf.extend_from_slice(&b);
                ReadOutcome::Frame
            }
            Ok(Message::Ping(_)) => {
                // tungstenite queued the pong; flushed after the burst.
                c.pings += 1;
                c.want_flush = true;
                ReadOutcome::Again
            }
            Ok(Message::Close(_)) => {
                // tungstenite queued the close reply; the next read
                // reports the end of the connection.
                c.want_flush = true;
                ReadOutcome::Again
            }
            Ok(_) => ReadOutcome::Again,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                ReadOutcome::Drained
            }
            Err(e) => ReadOutcome::Closed(e),
        }
    }

    /// Flushes connection `i`'s buffered output; `false` when the
    /// connection broke.
    fn flush(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        let State::Open(ws) = &mut c.state else {
            c.want_flush = false;
            return true;
        };
        match ws.flush() {
            Ok(()) => {
                c.want_flush = false;
                true
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => {
                let now = self.clock.now_ns();
                self.drop_conn(i, now, DropKind::Failure, &e.to_string());
                false
            }
        }
    }

    /// Tries to take a frame from readable connections, round-robin.
    #[inline]
    fn read_ready(&mut self, buf: &mut Vec<u8>) -> Option<i64> {
        let n = self.conns.len();
        if self.burst >= BURST {
            self.burst = 0;
            self.cur = (self.cur + 1) % n;
        }
        for k in 0..n {
            let i = (self.cur + k) % n;
            if !self.conns[i].readable {
                continue;
            }
            loop {
                match self.read_one(i, buf) {
                    ReadOutcome::Frame => {
                        let now = self.clock.now_ns();
                        let c = &mut self.conns[i];
                        c.watchdog.feed(now);
                        if !c.got_data {
                            c.got_data = true;
                            c.failures = 0;
                            c.backoff.reset();
                        }
                        if i != self.cur {
                            self.cur = i;
                            self.burst = 0;
                        }
                        self.burst += 1;
                        return Some(now);
                    }
                    ReadOutcome::Again => {}
                    ReadOutcome::Drained => {
                        self.conns[i].readable = false;
                        if self.conns[i].want_flush {
                            self.flush(i);
                        }
                        break;
                    }
                    ReadOutcome::Closed(e) => {
                        let now = self.clock.now_ns();
                        let reason = match e {
                            tungstenite::Error::ConnectionClosed => "closed by the server".into(),
                            e => e.to_string(),
                        };
                        self.drop_conn(i, now, DropKind::Failure, &reason);
                        break;
                    }
                }
            }
        }
        None
    }

    /// Readiness events and timers.
    #[inline(never)]
    fn service(&mut self, now: i64) {
        self.next_service_ns = now + SERVICE_EVERY_NS;
        if let Err(e) = self.poll.poll(&mut self.events, Some(Duration::ZERO))
            && e.kind() != io::ErrorKind::Interrupted
        {
            tracing::warn!(error = %e, "epoll wait failed");
        }
        self.ready.clear();
        for ev in self.events.iter() {
            let t = ev.token().0;
            let writable = ev.is_writable() || ev.is_error() || ev.is_write_closed();
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            self.ready.push((t, readable, writable));
        }
        for k in 0..self.ready.len() {
            let (t, readable, writable) = self.ready[k];
            let i = t & ((1 << IDX_BITS) - 1);
            let Some(c) = self.conns.get(i) else { continue };
            if c.generation != t >> IDX_BITS {
                continue;
            }
            self.on_ready(i, readable, writable, now);
        }
        for i in 0..self.conns.len() {
            self.on_timer(i, now);
        }
    }

    fn on_ready(&mut self, i: usize, readable: bool, writable: bool, now: i64) {
        match &self.conns[i].state {
            State::Connecting { .. } => {
                if writable || readable {
                    self.connect_progress(i, now);
                }
            }
            State::Handshaking(_) => self.handshake_progress(i, now),
            State::Open(_) => {
                if readable {
                    self.conns[i].readable = true;
                }
                if writable && self.conns[i].want_flush {
                    self.flush(i);
                }
            }
            State::Waiting { .. } | State::Resolving { .. } => {}
        }
    }

    fn on_timer(&mut self, i: usize, now: i64) {
        let action = {
            let c = &mut self.conns[i];
            let in_attempt = matches!(
                c.state,
                State::Resolving { .. } | State::Connecting { .. } | State::Handshaking(_)
            );
            if in_attempt && now - c.attempt_ns > c.spec.connect_timeout.as_nanos() as i64 {
                TimerAction::Timeout
            } else {
                match &mut c.state {
                    State::Waiting { retry_at_ns } if now >= *retry_at_ns => TimerAction::Start,
                    State::Resolving { rx } => match rx.try_recv() {
                        Ok(r) => TimerAction::Resolved(r),
                        Err(mpsc::TryRecvError::Empty) => TimerAction::Nothing,
                        Err(mpsc::TryRecvError::Disconnected) => TimerAction::ResolverGone,
                    },
                    State::Open(_) => {
                        if c.watchdog.check(now) {
                            TimerAction::Stale(
                                ((now - c.watchdog.last_ns()).max(0) / 1_000_000) as u64,
                            )
                        } else if !c.spec.max_age.is_zero()
                            && now - c.opened_ns
                                > c.spec.max_age.as_nanos().min(i64::MAX as u128) as i64
                        {
                            TimerAction::Rotate
                        } else {
                            match &c.spec.keepalive {
                                Some((every, msg))
                                    if now - c.last_keepalive_ns >= every.as_nanos() as i64 =>
                                {
                                    c.last_keepalive_ns = now;
                                    TimerAction::Keepalive(msg.clone())
                                }
                                _ => TimerAction::Nothing,
                            }
                        }
                    }
                    _ => TimerAction::Nothing,
                }
            }
        };
        match action {
            TimerAction::Nothing => {}
            TimerAction::Timeout => {
                let ms = self.conns[i].spec.connect_timeout.as_millis();
                self.drop_conn(
                    i,
                    now,
                    DropKind::Failure,
                    &format!("connect/handshake timed out after {ms} ms"),
                );
            }
            TimerAction::Start => self.start_attempt(i, now),
            TimerAction::Resolved(Ok(addrs)) if !addrs.is_empty() => self.connect(i, addrs, now),
            TimerAction::Resolved(Ok(_)) => {
                self.drop_conn(i, now, DropKind::Failure, "host name has no addresses");
            }
            TimerAction::Resolved(Err(e)) => {
                self.drop_conn(
                    i,
                    now,
                    DropKind::Failure,
                    &format!("cannot resolve host: {e}"),
                );
            }
            TimerAction::ResolverGone => {
                self.drop_conn(i, now, DropKind::Failure, "resolver thread ended");
            }
            TimerAction::Stale(silent_ms) => {
                self.push_event(i, SourceEventKind::Stale, silent_ms);
                self.conns[i].reported = crate::tick::feed_status::STALE;
                self.drop_conn(i, now, DropKind::Stale, "no frame within stale_after_ms");
            }
            TimerAction::Rotate => {
                self.drop_conn(i, now, DropKind::Rotate, "max connection age reached");
            }
            TimerAction::Keepalive(msg) => self.write_msgs(i, std::slice::from_ref(&msg)),
        }
    }

    fn start_attempt(&mut self, i: usize, now: i64) {
        let c = &mut self.conns[i];
        if !c.breaker.allow(now) {
            let until = c.breaker.open_until().unwrap_or(now + 100_000_000);
            c.state = State::Waiting {
                retry_at_ns: until.max(now + 1_000_000),
            };
            return;
        }
        c.attempt_ns = now;
        if let Ok(ip) = c.spec.host.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, c.spec.port);
            self.connect(i, vec![addr], now);
            return;
        }
        let (tx, rx) = mpsc::channel();
        let host = c.spec.host.clone();
        let port = c.spec.port;
        let spawned = std::thread::Builder::new()
            .name("tw-dns".into())
            .spawn(move || {
                let r = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<_>>());
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => self.conns[i].state = State::Resolving { rx },
            Err(e) => self.drop_conn(
                i,
                now,
                DropKind::Failure,
                &format!("cannot spawn resolver: {e}"),
            ),
        }
    }

    fn connect(&mut self, i: usize, mut addrs: Vec<SocketAddr>, now: i64) {
        while !addrs.is_empty() {
            let addr = addrs.remove(0);
            match TcpStream::connect(addr) {
                Ok(mut sock) => {
                    let c = &mut self.conns[i];
                    c.generation = (c.generation + 1) & 0xFFFF_FFFF;
                    let token = c.token(i);
                    if let Err(e) = self.poll.registry().register(
                        &mut sock,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        self.drop_conn(i, now, DropKind::Failure, &format!("register: {e}"));
                        return;
                    }
                    self.conns[i].state = State::Connecting { sock, rest: addrs };
                    return;
                }
                Err(e) if addrs.is_empty() => {
                    self.drop_conn(i, now, DropKind::Failure, &format!("connect {addr}: {e}"));
                    return;
                }
                Err(_) => {}
            }
        }
        self.drop_conn(i, now, DropKind::Failure, "no address to connect to");
    }

    fn connect_progress(&mut self, i: usize, now: i64) {
        let State::Connecting { sock, .. } = &mut self.conns[i].state else {
            return;
        };
        let err = match sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match sock.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        let state = std::mem::replace(&mut self.conns[i].state, State::Waiting { retry_at_ns: 0 });
        let State::Connecting { mut sock, rest } = state else {
            return;
        };
        if let Some(e) = err {
            let _ = self.poll.registry().deregister(&mut sock);
            drop(sock);
            if rest.is_empty() {
                self.drop_conn(i, now, DropKind::Failure, &format!("connect: {e}"));
            } else {
                self.connect(i, rest, now);
            }
            return;
        }
        let _ = sock.set_nodelay(true);
        let spec = &self.conns[i].spec;
        let (tls, host, url, ws_cfg) = (
            spec.tls.clone(),
            spec.host.clone(),
            spec.url.clone(),
            spec.ws_config(),
        );
        let stream = match tls {
            None => NetStream::Plain(sock),
            Some(cfg) => {
                let tls = ServerName::try_from(host)
                    .map_err(|e| format!("TLS server name: {e}"))
                    .and_then(|name| {
                        ClientConnection::new(cfg, name).map_err(|e| format!("TLS: {e}"))
                    });
                match tls {
                    Ok(tls) => NetStream::Tls(Box::new(StreamOwned::new(tls, sock))),
                    Err(msg) => {
                        let _ = self.poll.registry().deregister(&mut sock);
                        self.drop_conn(i, now, DropKind::Failure, &msg);
                        return;
                    }
                }
            }
        };
        let res = tungstenite::client::client_with_config(url.as_str(), stream, Some(ws_cfg));
        self.on_handshake(i, res, now);
    }

    fn handshake_progress(&mut self, i: usize, now: i64) {
        let state = std::mem::replace(&mut self.conns[i].state, State::Waiting { retry_at_ns: 0 });
        let State::Handshaking(mid) = state else {
            self.conns[i].state = state;
            return;
        };
        let res = mid.handshake();
        self.on_handshake(i, res, now);
    }

    fn on_handshake(
        &mut self,
        i: usize,
        res: Result<
            (
                WebSocket<NetStream>,
                tungstenite::handshake::client::Response,
            ),
            HandshakeError<ClientHandshake<NetStream>>,
        >,
        now: i64,
    ) {
        match res {
            Ok((ws, _resp)) => {
                let c = &mut self.conns[i];
                c.state = State::Open(Box::new(ws));
                // Bytes may already sit in tungstenite's or rustls's
                // buffers: read at once, do not wait for an edge.
                c.readable = true;
                c.want_flush = false;
                c.got_data = false;
                c.opened_ns = now;
                c.last_keepalive_ns = now;
                c.connections += 1;
                c.breaker.on_success();
                c.watchdog.arm(now);
                c.reported = crate::tick::feed_status::CONNECTED;
                let n = c.connections;
                tracing::debug!(feed = %c.spec.name, url = %c.spec.url, "WebSocket open");
                self.push_event(i, SourceEventKind::Connected, n);
            }
            Err(HandshakeError::Interrupted(mid)) => {
                self.conns[i].state = State::Handshaking(Box::new(mid));
            }
            Err(HandshakeError::Failure(e)) => {
                self.drop_conn(i, now, DropKind::Failure, &format!("handshake: {e}"));
            }
        }
    }

    /// Closes connection `i` (whatever its state) and schedules the next
    /// attempt; reports DISCONNECTED (once per outage) and CIRCUIT_OPEN.
    #[inline(never)]
    #[cold]
    fn drop_conn(&mut self, i: usize, now: i64, kind: DropKind, reason: &str) {
        let state = std::mem::replace(
            &mut self.conns[i].state,
            State::Waiting { retry_at_ns: now },
        );
        let was_open = matches!(state, State::Open(_));
        match state {
            State::Open(mut ws) => {
                if kind == DropKind::Rotate {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                }
                let _ = self.poll.registry().deregister(ws.get_mut().sock());
            }
            State::Handshaking(mut mid) => {
                let _ = self
                    .poll
                    .registry()
                    .deregister(mid.get_mut().get_mut().sock());
            }
            State::Connecting { mut sock, .. } => {
                let _ = self.poll.registry().deregister(&mut sock);
            }
            State::Waiting { .. } | State::Resolving { .. } => {}
        }
        let c = &mut self.conns[i];
        c.readable = false;
        c.want_flush = false;
        c.watchdog.disarm();
        let mut opened = false;
        let retry_at = match kind {
            DropKind::Rotate => now,
            DropKind::Stale => now + c.backoff.next_delay().as_nanos() as i64,
            DropKind::Failure => {
                if !was_open || !c.got_data {
                    c.failures += 1;
                }
                if !was_open {
                    opened = c.breaker.on_failure(now);
                }
                match c.breaker.open_until() {
                    Some(until) if opened => until,
                    _ => now + c.backoff.next_delay().as_nanos() as i64,
                }
            }
        };
        c.state = State::Waiting {
            retry_at_ns: retry_at,
        };
        if kind == DropKind::Failure {
            self.failures += 1;
        }
        let failures = c.failures;
        let delay_ms = (retry_at - now).max(0) / 1_000_000;
        if was_open {
            tracing::warn!(feed = %c.spec.name, reason, retry_in_ms = delay_ms, "connection closed");
        } else {
            tracing::debug!(feed = %c.spec.name, reason, retry_in_ms = delay_ms, "connection attempt failed");
        }
        if c.reported != crate::tick::feed_status::DISCONNECTED
            && c.reported != crate::tick::feed_status::CIRCUIT_OPEN
        {
            c.reported = crate::tick::feed_status::DISCONNECTED;
            self.push_event(i, SourceEventKind::Disconnected, failures);
        }
        if opened {
            let c = &mut self.conns[i];
            c.reported = crate::tick::feed_status::CIRCUIT_OPEN;
            let ms = c.spec.breaker_open.as_millis() as u64;
            tracing::warn!(feed = %c.spec.name, reason, open_ms = ms, "circuit breaker opened");
            self.push_event(i, SourceEventKind::CircuitOpen, ms);
        }
    }

    /// Queues `msgs` on connection `i` and flushes what the socket takes.
    fn write_msgs(&mut self, i: usize, msgs: &[String]) {
        let c = &mut self.conns[i];
        let State::Open(ws) = &mut c.state else {
            return;
        };
        let mut err = None;
        for m in msgs {
            match ws.write(Message::text(m.as_str())) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Buffered: flushed on WRITABLE, never re-sent.
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = err {
            let now = self.clock.now_ns();
            self.drop_conn(i, now, DropKind::Failure, &format!("write: {e}"));
            return;
        }
        self.conns[i].want_flush = true;
        self.flush(i);
    }
}

enum TimerAction {
    Nothing,
    Timeout,
    Start,
    Resolved(Resolved),
    ResolverGone,
    Stale(u64),
    Rotate,
    Keepalive(String),
}

enum ReadOutcome {
    Frame,
    Again,
    Drained,
    Closed(tungstenite::Error),
}

impl FrameSource for WsSource {
    #[inline]
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll {
        if self.conns.is_empty() {
            return SourcePoll::Done;
        }
        if let Some(recv_ns) = self.read_ready(buf) {
            if recv_ns >= self.next_service_ns {
                self.service(recv_ns);
            }
            return SourcePoll::Frame { recv_ns };
        }
        self.service(clock.now_ns());
        match self.read_ready(buf) {
            Some(recv_ns) => SourcePoll::Frame { recv_ns },
            None => SourcePoll::Idle,
        }
    }

    fn name(&self) -> &str {
        "ws"
    }

    #[inline]
    fn current_stream(&self) -> u32 {
        self.conns.get(self.cur).map_or(0, |c| c.spec.stream)
    }

    #[inline]
    fn next_event(&mut self) -> Option<SourceEvent> {
        self.pending.pop_front()
    }

    fn send(&mut self, stream: u32, msgs: &[String]) {
        for i in 0..self.conns.len() {
            if self.conns[i].spec.stream == stream {
                if matches!(self.conns[i].state, State::Open(_)) {
                    self.write_msgs(i, msgs);
                } else {
                    tracing::debug!(feed = %self.conns[i].spec.name, n = msgs.len(), "not connected; outgoing messages dropped (resent on connect)");
                }
            }
        }
    }
}

impl Drop for WsSource {
    fn drop(&mut self) {
        for c in &mut self.conns {
            if let State::Open(ws) = &mut c.state {
                let _ = ws.close(None);
                let _ = ws.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_urls_and_rejects_bad_ones() {
        let s = WsConnSpec::new("a", 3, "ws://127.0.0.1:9000/stream", None).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.is_tls()),
            ("127.0.0.1", 9000, false)
        );
        let s = WsConnSpec::new("a", 0, "wss://stream.binance.com:9443/stream", None).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.is_tls()),
            ("stream.binance.com", 9443, true)
        );
        let s = WsConnSpec::new("a", 0, "wss://[::1]/x", None).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 443));
        assert!(WsConnSpec::new("a", 0, "http://x", None).is_err());
        assert!(WsConnSpec::new("a", 0, "nonsense", None).is_err());
        let e = WsConnSpec::new("a", 0, "wss://x", Some(b"not a pem")).unwrap_err();
        assert!(e.to_string().contains("CERTIFICATE"), "{e}");
    }

    #[test]
    fn refused_connection_reports_disconnect_then_opens_breaker() {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut spec =
            WsConnSpec::new("dead", 7, &format!("ws://127.0.0.1:{port}/"), None).unwrap();
        spec.backoff_initial = Duration::from_millis(1);
        spec.backoff_max = Duration::from_millis(2);
        spec.breaker_failures = 3;
        spec.breaker_open = Duration::from_secs(3600);
        let clock = Clock::new();
        let mut src = WsSource::new(vec![spec], clock, 1).unwrap();
        let mut buf = Vec::new();
        let mut evs = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            assert_eq!(src.poll_frame(&mut buf, &clock), SourcePoll::Idle);
            while let Some(e) = src.next_event() {
                evs.push(e);
            }
            if evs.iter().any(|e| e.kind == SourceEventKind::CircuitOpen) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![SourceEventKind::Disconnected, SourceEventKind::CircuitOpen],
            "one DISCONNECTED per outage, then the breaker: {evs:?}"
        );
        assert!(evs.iter().all(|e| e.stream == 7));
        assert_eq!(evs[1].detail, 3_600_000);
        assert_eq!(src.stats().failures, 3);
        assert!(!src.is_open(7));
    }
}
