//! The subscriber server: HTTP/1.1 + WebSocket on one port, driven by a mio
//! `Poll` on the fan-out thread.
//!
//! The pipeline's fan-out loop calls [`Server::on_event`] for every event
//! (route to subscribers: serialize once, share the bytes, queue per client)
//! and [`Server::poll`] between ring batches (zero-timeout `epoll_wait`,
//! then accepts, requests, reads, timers and the write pass). Nothing here
//! blocks: sockets are non-blocking and edge-triggered, every read and
//! write goes until `WouldBlock`.
//!
//! Writes are batched in cycles: a cycle flushes the clients that had
//! messages queued when it started, in slices of at most [`FLUSH_SLICE`]
//! (the rings are drained between slices). The next cycle may start once
//! the previous cycle's own busy time has passed again (so socket writes
//! take at most about half the thread under load) and no sooner than
//! `server.flush_interval_us`. When few clients are dirty this adds
//! nothing to latency; under load it batches more messages per system
//! call.
//!
//! The WebSocket handshake is done here (the request is parsed with
//! httparse like any other, so limits, auth and 503 apply before the
//! upgrade; the `101` answer goes through the connection's output buffer
//! and resumes on `WouldBlock`); tungstenite then takes over the stream
//! with the bytes already read.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Utf8Bytes, WebSocket};

use super::http::{self, Parsed, Response};
use super::protocol::{
    ChannelId, ChannelTable, Delivery, NO_SLOT, Request, Router, Snapshot, Sub, close_code,
    error_code, parse_request,
};
use super::rest::{self, View};
use super::ws::{CloseReason, Flushed, Inbound, Push, ReadEnd, WsClient};
use super::{MarketState, RingState};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::event::Event;
use crate::instruments::InstrumentId;
use crate::json::{self, EngineStats, JsonContext};
use crate::telemetry::{Percentiles, StageRecorder, Telemetry, new_histogram};

/// When the rings are busy, an I/O pass runs at most this often.
pub const BUSY_IO_INTERVAL: Duration = Duration::from_micros(100);
/// Timer checks (idle, ping, close deadlines, HTTP linger) run this often.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);
/// Longest slice of a write cycle before the rings get the thread back.
pub const FLUSH_SLICE: Duration = Duration::from_micros(200);
/// Inbound messages handled per client per pass (the rest on the next).
pub const READ_BUDGET: usize = 64;
/// HTTP connections that are being closed get this long to read the answer.
pub const HTTP_LINGER: Duration = Duration::from_secs(2);
/// Block size of the shared serialization buffer.
const SLAB_BYTES: usize = 64 * 1024;
const LISTENER: Token = Token(usize::MAX);

/// A market-data feed, as `/health` and `/metrics` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfo {
    /// Source name (`sim`, `binance-ws`, ...).
    pub name: String,
    /// Registry venue (`SIM`, `BINANCE`).
    pub venue: String,
}

/// Everything the server needs; built by the engine at start.
#[derive(Debug, Clone)]
pub struct ServerSetup {
    /// `[server]`.
    pub cfg: ServerConfig,
    /// Address to bind (already resolved; may be port 0).
    pub addr: SocketAddr,
    /// Bearer token, read by the caller from the variable named by
    /// `server.token_env`. `None` = no authentication.
    pub token: Option<String>,
    /// Serializer context (registry, window names).
    pub ctx: JsonContext,
    /// Window names in kernel order (`1m`, `5m`).
    pub window_names: Vec<String>,
    /// Shared counters and histograms.
    pub tel: Arc<Telemetry>,
    /// Engine clock (receive times are on it).
    pub clock: Clock,
    /// Feeds, for `/health` and `/metrics`.
    pub feeds: Vec<FeedInfo>,
    /// Slots per pipeline ring, for `/health`.
    pub ring_capacity: usize,
    /// The tick journal, for `/api/v1/ticks/{symbol}` (None: not journaling).
    pub journal_dir: Option<std::path::PathBuf>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (another process may use the port: pick another with --listen or [server] listen, or set [server] enabled = false)"
    )]
    Bind {
        /// Address tried.
        addr: SocketAddr,
        /// OS error.
        source: io::Error,
    },
    /// The event loop could not be created.
    #[error("cannot create the server's event loop: {0}")]
    Poll(io::Error),
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// `server.max_connections` reached (closed at accept).
    MaxConnections,
    /// `server.max_clients` reached (HTTP 503 to the upgrade).
    MaxClients,
    /// Missing or wrong token (HTTP 401).
    Unauthorized,
}

impl RefuseReason {
    /// Every reason, in `/metrics` order.
    pub const ALL: [Self; 3] = [Self::MaxConnections, Self::MaxClients, Self::Unauthorized];

    /// Label value in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxConnections => "max_connections",
            Self::MaxClients => "max_clients",
            Self::Unauthorized => "unauthorized",
        }
    }
}

/// Server counters (written and read on the fan-out thread only).
#[derive(Debug, Clone, Default)]
pub struct ServerCounters {
    /// TCP connections accepted.
    pub accepted: u64,
    /// WebSocket upgrades completed.
    pub upgrades: u64,
    /// Refusals by [`RefuseReason`] index.
    pub refused: [u64; 3],
    /// Connection ends by [`CloseReason`] index (subscribers only).
    pub closes: [u64; 8],
    /// HTTP responses by status code.
    pub http_responses: Vec<(u16, u64)>,
    /// Messages written to subscribers.
    pub sent: u64,
    /// Messages replaced by a newer one before being sent (conflation).
    pub conflated: u64,
    /// Requests received from subscribers.
    pub requests: u64,
    /// Error replies sent to subscribers.
    pub errors: u64,
    /// Events that had at least one subscriber (serialized once each).
    pub routed: u64,
}

impl ServerCounters {
    fn http(&mut self, status: u16) {
        match self.http_responses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => {
                self.http_responses.push((status, 1));
                self.http_responses.sort_unstable();
            }
        }
    }
}

/// At most `PER_SEC` log lines a second for refusals and client errors;
/// the rest are counted and summarized.
#[derive(Debug)]
struct LogLimiter {
    window: Instant,
    n: u32,
    suppressed: u64,
}

impl LogLimiter {
    const PER_SEC: u32 = 10;

    fn new(now: Instant) -> Self {
        Self {
            window: now,
            n: 0,
            suppressed: 0,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "server: similar messages suppressed in the last second"
                );
            }
            self.window = now;
            self.n = 0;
            self.suppressed = 0;
        }
        if self.n < Self::PER_SEC {
            self.n += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[derive(Debug)]
struct HttpConn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Close once `out` is written.
    close_after: bool,
    /// Write side shut; discarding input until EOF or this deadline.
    linger_until: Option<Instant>,
    /// A `101` is being written; then the connection becomes a subscriber.
    upgrading: bool,
}

#[derive(Debug)]
enum ConnKind {
    Http(HttpConn),
    Ws(Box<WsClient>),
    /// Transient while switching kinds.
    Gone,
}

#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    last_rx: Instant,
    kind: ConnKind,
}

/// Per-period figures behind `stats` messages and `/api/v1/status`.
#[derive(Debug)]
struct StatsState {
    at: Instant,
    ticks: u64,
    events: u64,
    sent: u64,
    prev: Vec<Histogram<u64>>,
    last: EngineStats,
    last_msg: Option<Utf8Bytes>,
}

/// The HTTP + WebSocket server. See the module docs.
pub struct Server {
    poll: Poll,
    events: Events,
    ready: Vec<(Token, bool, bool)>,
    listener: TcpListener,
    local_addr: SocketAddr,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    n_conns: usize,
    n_ws: usize,
    n_upgrading: usize,
    n_subs: usize,
    cfg: ServerConfig,
    limits: http::Limits,
    ws_config: WebSocketConfig,
    token: Option<Vec<u8>>,
    ctx: JsonContext,
    window_names: Vec<String>,
    channels: ChannelTable,
    router: Router,
    tel: Arc<Telemetry>,
    clock: Clock,
    feeds: Vec<FeedInfo>,
    ring_capacity: usize,
    journal_dir: Option<std::path::PathBuf>,
    started: Instant,
    started_ns: i64,
    scratch: Vec<u8>,
    slab: BytesMut,
    dirty: Vec<u32>,
    /// The write cycle under way: clients to flush, and the next position.
    flushing: Vec<u32>,
    flush_pos: usize,
    cycle_busy: Duration,
    overflowed: Vec<u32>,
    reread: Vec<u32>,
    inbound: Vec<Inbound>,
    deliver: StageRecorder,
    counters: ServerCounters,
    log: LogLimiter,
    next_busy_io: Instant,
    next_housekeeping: Instant,
    next_stats: Instant,
    next_flush: Instant,
    stats: StatsState,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr)
            .field("connections", &self.n_conns)
            .field("subscribers", &self.n_ws)
            .field("auth", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

enum Routed {
    Respond(Response),
    Upgrade(String),
}

impl Server {
    /// Binds the listener and prepares the event loop. Logs nothing; the
    /// caller logs [`Server::local_addr`].
    ///
    /// # Errors
    /// The address cannot be bound, or epoll cannot be created.
    pub fn bind(setup: ServerSetup) -> Result<Self, ServerError> {
        let poll = Poll::new().map_err(ServerError::Poll)?;
        let mut listener = TcpListener::bind(setup.addr).map_err(|source| ServerError::Bind {
            addr: setup.addr,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: setup.addr,
            source,
        })?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        let cfg = setup.cfg;
        let channels = ChannelTable::new(&setup.window_names);
        let router = Router::new(channels.len(), setup.ctx.registry().len());
        let write_target = (64 * 1024).min(cfg.max_write_buffer_bytes / 2);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(write_target)
            .max_write_buffer_size(cfg.max_write_buffer_bytes)
            .max_message_size(Some(cfg.max_message_bytes))
            .max_frame_size(Some(cfg.max_message_bytes));
        let now = Instant::now();
        let n_stages = setup.tel.stages().len();
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            listener,
            local_addr,
            conns: Vec::new(),
            free: Vec::new(),
            n_conns: 0,
            n_ws: 0,
            n_upgrading: 0,
            n_subs: 0,
            limits: http::Limits {
                max_header_bytes: cfg.max_header_bytes,
                max_body_bytes: cfg.max_body_bytes,
            },
            ws_config,
            token: setup.token.map(String::into_bytes),
            ctx: setup.ctx,
            window_names: setup.window_names,
            channels,
            router,
            deliver: StageRecorder::new(setup.tel.deliver.clone()),
            tel: setup.tel,
            clock: setup.clock,
            feeds: setup.feeds,
            ring_capacity: setup.ring_capacity,
            journal_dir: setup.journal_dir,
            started: now,
            started_ns: setup.clock.now_ns(),
            scratch: Vec::with_capacity(1024),
            slab: BytesMut::with_capacity(SLAB_BYTES),
            dirty: Vec::with_capacity(1024),
            flushing: Vec::with_capacity(1024),
            flush_pos: 0,
            cycle_busy: Duration::ZERO,
            overflowed: Vec::new(),
            reread: Vec::new(),
            inbound: Vec::new(),
            counters: ServerCounters::default(),
            log: LogLimiter::new(now),
            next_busy_io: now,
            next_housekeeping: now + HOUSEKEEPING_INTERVAL,
            next_stats: now + Duration::from_millis(cfg.stats_interval_ms),
            next_flush: now,
            stats: StatsState {
                at: now,
                ticks: 0,
                events: 0,
                sent: 0,
                prev: (0..n_stages).map(|_| new_histogram()).collect(),
                last: EngineStats::default(),
                last_msg: None,
            },
            cfg,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters so far.
    pub fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    /// Connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.n_ws
    }

    /// The channel table.
    pub fn channels(&self) -> &ChannelTable {
        &self.channels
    }

    // ----------------------------------------------------------------
    // Events → subscribers
    // ----------------------------------------------------------------

    /// Routes one event to its subscribers: serialized once into shared
    /// bytes, queued per subscriber (lossless or conflated per channel).
    #[inline]
    pub fn on_event(&mut self, ev: &Event) {
        let Some(ch) = self.channels.classify(ev) else {
            return;
        };
        let global = self
            .channels
            .get(ch)
            .is_some_and(|c| c.def.scope == super::protocol::Scope::Global);
        let inst = if global {
            InstrumentId(0)
        } else {
            ev.instrument()
        };
        if inst.0 as usize >= self.ctx.registry().len() {
            return;
        }
        let key = self.router.key(ch, inst);
        if self.router.subs(key).is_empty() {
            return;
        }
        self.scratch.clear();
        json::write_event(&mut self.scratch, &self.ctx, ev);
        let msg = share(&mut self.slab, &self.scratch);
        self.counters.routed += 1;
        self.fan(key, &msg, ev.recv_ns);
    }

    /// Queues `msg` for every subscriber of `key`.
    fn fan(&mut self, key: usize, msg: &Utf8Bytes, recv_ns: i64) {
        let max_q = self.cfg.max_queued_messages;
        for s in self.router.subs(key) {
            let Some(Some(Conn {
                kind: ConnKind::Ws(c),
                ..
            })) = self.conns.get_mut(s.client as usize)
            else {
                continue;
            };
            match c.push(msg, recv_ns, s.slot, max_q) {
                Push::Queued(true) => self.dirty.push(s.client),
                Push::Queued(false) | Push::Ignored => {}
                Push::Conflated => self.counters.conflated += 1,
                Push::Overflow => self.overflowed.push(s.client),
            }
        }
        if !self.overflowed.is_empty() {
            self.close_slow_consumers();
        }
    }

    #[cold]
    fn close_slow_consumers(&mut self) {
        let ids = std::mem::take(&mut self.overflowed);
        let now = Instant::now();
        for &id in &ids {
            if let Some(Some(conn)) = self.conns.get(id as usize)
                && let ConnKind::Ws(c) = &conn.kind
                && !c.is_closing()
                && self.log.allow(now)
            {
                tracing::warn!(
                    peer = %conn.peer,
                    queued = c.queued(),
                    socket_full = c.blocked,
                    "server: closing slow consumer (4008): server.max_queued_messages reached"
                );
            }
            self.begin_close(
                id as usize,
                CloseReason::SlowConsumer,
                close_code::SLOW_CONSUMER,
                "slow consumer",
            );
        }
        self.overflowed = ids;
        self.overflowed.clear();
    }

    // ----------------------------------------------------------------
    // The I/O pass
    // ----------------------------------------------------------------

    /// One I/O pass; see [`super::FanoutStage::poll_io`].
    pub fn poll(&mut self, rings: RingState, market: &MarketState) -> bool {
        let now = Instant::now();
        if rings != RingState::Idle && now < self.next_busy_io {
            return false;
        }
        self.next_busy_io = now + BUSY_IO_INTERVAL;
        let mut did = false;
        match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if self.log.allow(now) {
                    tracing::error!(error = %e, "server: epoll_wait failed");
                }
            }
        }
        self.ready.clear();
        for e in self.events.iter() {
            self.ready.push((
                e.token(),
                e.is_readable() || e.is_read_closed() || e.is_error(),
                e.is_writable() || e.is_write_closed(),
            ));
        }
        let ready = std::mem::take(&mut self.ready);
        for &(tok, readable, writable) in &ready {
            did = true;
            if tok == LISTENER {
                self.accept(now);
            } else {
                self.on_ready(tok.0, readable, writable, now, market);
            }
        }
        self.ready = ready;
        if !self.reread.is_empty() {
            did = true;
            let ids = std::mem::take(&mut self.reread);
            for &id in &ids {
                self.read_ws(id as usize, now, market);
            }
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            self.housekeeping(now);
            self.accept(now);
            // Merging a histogram walks all its buckets: not every pass.
            self.deliver.publish();
        }
        if now >= self.next_stats {
            self.next_stats = now + Duration::from_millis(self.cfg.stats_interval_ms);
            self.publish_stats(now);
        }
        let may_write = rings != RingState::Backlog;
        if may_write && (self.mid_cycle() || (!self.dirty.is_empty() && now >= self.next_flush)) {
            did = true;
            self.flush_pass();
        }
        did
    }

    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.on_accept(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: retried at the next housekeeping.
                    if self.log.allow(now) {
                        tracing::warn!(error = %e, "server: accept failed");
                    }
                    return;
                }
            }
        }
    }

    fn on_accept(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        self.counters.accepted += 1;
        if self.n_conns >= self.cfg.max_connections {
            self.counters.refused[0] += 1;
            if self.log.allow(now) {
                tracing::warn!(%peer, max = self.cfg.max_connections, "server: connection refused: server.max_connections reached");
            }
            return;
        }
        let _ = stream.set_nodelay(true);
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            if self.log.allow(now) {
                tracing::warn!(%peer, error = %e, "server: cannot register connection");
            }
            self.free.push(idx);
            return;
        }
        self.conns[idx] = Some(Conn {
            peer,
            last_rx: now,
            kind: ConnKind::Http(HttpConn {
                stream,
                inbuf: Vec::new(),
                out: Vec::new(),
                out_pos: 0,
                close_after: false,
                linger_until: None,
                upgrading: false,
            }),
        });
        self.n_conns += 1;
    }

    fn on_ready(
        &mut self,
        idx: usize,
        readable: bool,
        writable: bool,
        now: Instant,
        market: &MarketState,
    ) {
        let is_ws = match self.conns.get(idx) {
            Some(Some(c)) => matches!(c.kind, ConnKind::Ws(_)),
            _ => return,
        };
        if !is_ws {
            self.drive_http(idx, now, market);
            return;
        }
        if writable {
            if let Some(c) = self.ws_mut(idx) {
                c.blocked = false;
            }
            self.flush_client(idx);
        }
        if readable {
            self.read_ws(idx, now, market);
        }
    }

    fn ws_mut(&mut self, idx: usize) -> Option<&mut WsClient> {
        match self.conns.get_mut(idx) {
            Some(Some(Conn {
                kind: ConnKind::Ws(c),
                ..
            })) => Some(c),
            _ => None,
        }
    }

    // ----------------------------------------------------------------
    // HTTP
    // ----------------------------------------------------------------

    fn drive_http(&mut self, idx: usize, now: Instant, market: &MarketState) {
        let mut buf = [0u8; 8192];
        loop {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            let peer = conn.peer;
            let ConnKind::Http(h) = &mut conn.kind else {
                return;
            };
            // 1. Pending output first.
            if h.out_pos < h.out.len() {
                match h.stream.write(&h.out[h.out_pos..]) {
                    Ok(0) => return self.drop_conn(idx, None),
                    Ok(n) => {
                        h.out_pos += n;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return self.drop_conn(idx, None),
                }
            }
            h.out.clear();
            h.out_pos = 0;
            // 2. Lingering close: discard input until EOF.
            if h.linger_until.is_some() {
                match h.stream.read(&mut buf) {
                    Ok(0) => return self.drop_conn(idx, None),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return self.drop_conn(idx, None),
                }
            }
            if h.close_after {
                let _ = h.stream.shutdown(Shutdown::Write);
                h.linger_until = Some(now + HTTP_LINGER);
                continue;
            }
            // 3. Upgrade once the 101 is out.
            if h.upgrading {
                return self.finish_upgrade(idx, now, market);
            }
            // 4. A complete request in the buffer?
            if !h.inbuf.is_empty() {
                match http::parse(&h.inbuf, &self.limits) {
                    Parsed::Request(req) => {
                        h.inbuf.drain(..req.total_len);
                        self.handle_request(idx, req, peer, now, market);
                        continue;
                    }
                    Parsed::Refuse(status, msg) => {
                        if self.log.allow(now) {
                            tracing::info!(%peer, status, reason = msg, "server: bad HTTP request");
                        }
                        let resp = Response::error(status, error_code::BAD_REQUEST, msg).closing();
                        self.respond(idx, &resp, false, false);
                        continue;
                    }
                    Parsed::Incomplete => {}
                }
            }
            // 5. Read more.
            match h.stream.read(&mut buf) {
                Ok(0) => return self.drop_conn(idx, None),
                Ok(n) => {
                    h.inbuf.extend_from_slice(&buf[..n]);
                    conn.last_rx = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(idx, None),
            }
        }
    }

    fn respond(&mut self, idx: usize, resp: &Response, keep_alive: bool, head_only: bool) {
        self.counters.http(resp.status);
        if let Some(Some(Conn {
            kind: ConnKind::Http(h),
            ..
        })) = self.conns.get_mut(idx)
        {
            http::write_response(&mut h.out, resp, keep_alive, head_only);
            if !keep_alive || resp.close {
                h.close_after = true;
            }
        }
    }

    fn handle_request(
        &mut self,
        idx: usize,
        req: http::Request,
        peer: SocketAddr,
        now: Instant,
        market: &MarketState,
    ) {
        let head_only = req.method == "HEAD";
        match self.route(&req, peer, now, market) {
            Routed::Respond(resp) => self.respond(idx, &resp, req.keep_alive, head_only),
            Routed::Upgrade(key) => {
                self.counters.http(101);
                self.n_upgrading += 1;
                if let Some(Some(Conn {
                    kind: ConnKind::Http(h),
                    ..
                })) = self.conns.get_mut(idx)
                {
                    http::write_upgrade(&mut h.out, &key);
                    h.upgrading = true;
                }
            }
        }
    }

    fn authorized(&self, req: &http::Request) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let presented = req
            .bearer
            .clone()
            .or_else(|| http::query_param(&req.query, "token").map(|c| c.into_owned()));
        presented.is_some_and(|p| http::token_matches(p.as_bytes(), expected))
    }

    fn route(
        &mut self,
        req: &http::Request,
        peer: SocketAddr,
        now: Instant,
        market: &MarketState,
    ) -> Routed {
        let path = req.path.as_str();
        let known =
            path == "/ws" || path == "/health" || path == "/metrics" || rest::is_api_path(path);
        if !known {
            return Routed::Respond(Response::error(
                404,
                error_code::NOT_FOUND,
                &format!(
                    "no such path '{}'; see docs/PROTOCOL.md (/ws, /health, /metrics, /api/v1/...)",
                    truncate(path, 100)
                ),
            ));
        }
        let get = req.method == "GET";
        if !(get || (req.method == "HEAD" && path != "/ws")) {
            return Routed::Respond(
                Response::error(
                    405,
                    error_code::METHOD_NOT_ALLOWED,
                    &format!(
                        "{} is not allowed on {path}; use GET",
                        truncate(&req.method, 16)
                    ),
                )
                .with_header("Allow", if path == "/ws" { "GET" } else { "GET, HEAD" }),
            );
        }
        if path != "/health" && !self.authorized(req) {
            self.counters.refused[2] += 1;
            if self.log.allow(now) {
                tracing::warn!(%peer, path, "server: refused: missing or wrong bearer token");
            }
            return Routed::Respond(
                Response::error(
                    401,
                    error_code::NOT_AUTHENTICATED,
                    "a bearer token is required: send 'Authorization: Bearer TOKEN' or ?token=TOKEN",
                )
                .with_header("WWW-Authenticate", "Bearer"),
            );
        }
        if path == "/ws" {
            return self.route_upgrade(req, peer, now);
        }
        let view = View {
            market,
            ctx: &self.ctx,
            tel: &self.tel,
            channels: &self.channels,
            counters: &self.counters,
            stats: &self.stats.last,
            feeds: &self.feeds,
            cfg: &self.cfg,
            clock: &self.clock,
            uptime: now.duration_since(self.started),
            started_ns: self.started_ns,
            subscribers: self.n_ws,
            connections: self.n_conns,
            subscriptions: self.n_subs,
            window_names: &self.window_names,
            ring_capacity: self.ring_capacity,
            journal_dir: self.journal_dir.as_deref(),
        };
        Routed::Respond(rest::handle(&view, req))
    }

    fn route_upgrade(&mut self, req: &http::Request, peer: SocketAddr, now: Instant) -> Routed {
        if !req.upgrade_websocket {
            return Routed::Respond(
                Response::error(
                    426,
                    error_code::BAD_REQUEST,
                    "/ws is a WebSocket endpoint: send an upgrade request (Upgrade: websocket)",
                )
                .with_header("Upgrade", "websocket"),
            );
        }
        if req.ws_version.as_deref() != Some("13") {
            return Routed::Respond(
                Response::error(
                    426,
                    error_code::BAD_REQUEST,
                    "unsupported Sec-WebSocket-Version; this server speaks 13",
                )
                .with_header("Sec-WebSocket-Version", "13"),
            );
        }
        let Some(key) = req.ws_key.clone().filter(|k| !k.is_empty()) else {
            return Routed::Respond(
                Response::error(400, error_code::BAD_REQUEST, "missing Sec-WebSocket-Key")
                    .closing(),
            );
        };
        if self.n_ws + self.n_upgrading >= self.cfg.max_clients {
            self.counters.refused[1] += 1;
            if self.log.allow(now) {
                tracing::warn!(%peer, max = self.cfg.max_clients, "server: subscriber refused: server.max_clients reached");
            }
            return Routed::Respond(
                Response::error(
                    503,
                    error_code::TOO_MANY_CLIENTS,
                    "too many subscribers (server.max_clients); retry later",
                )
                .with_header("Retry-After", "5")
                .closing(),
            );
        }
        Routed::Upgrade(key)
    }

    fn finish_upgrade(&mut self, idx: usize, now: Instant, market: &MarketState) {
        self.n_upgrading = self.n_upgrading.saturating_sub(1);
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let ConnKind::Http(h) = std::mem::replace(&mut conn.kind, ConnKind::Gone) else {
            return;
        };
        let ws =
            WebSocket::from_partially_read(h.stream, h.inbuf, Role::Server, Some(self.ws_config));
        conn.kind = ConnKind::Ws(Box::new(WsClient::new(ws, now)));
        conn.last_rx = now;
        self.n_ws += 1;
        self.counters.upgrades += 1;
        // Frames may have arrived with the request.
        self.read_ws(idx, now, market);
    }

    // ----------------------------------------------------------------
    // WebSocket subscribers
    // ----------------------------------------------------------------

    fn read_ws(&mut self, idx: usize, now: Instant, market: &MarketState) {
        let mut inbound = std::mem::take(&mut self.inbound);
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            self.inbound = inbound;
            return;
        };
        let ConnKind::Ws(c) = &mut conn.kind else {
            self.inbound = inbound;
            return;
        };
        if c.discard_input {
            self.inbound = inbound;
            if c.discard_raw() {
                self.drop_conn(idx, None);
            }
            return;
        }
        let (end, any) = c.read(&mut inbound, READ_BUDGET);
        if any {
            conn.last_rx = now;
        }
        let closing = c.is_closing();
        let needs_flush = c.needs_flush;
        let peer = conn.peer;
        if !closing {
            for m in inbound.drain(..) {
                self.handle_message(idx, m, market);
            }
        }
        inbound.clear();
        self.inbound = inbound;
        if needs_flush {
            self.flush_client(idx);
        }
        match end {
            ReadEnd::WouldBlock => {}
            ReadEnd::Budget => self.reread.push(idx as u32),
            ReadEnd::Closed => self.drop_conn(idx, Some(CloseReason::ClientClose)),
            ReadEnd::TooBig => {
                if closing {
                    return self.drop_conn(idx, None);
                }
                if self.log.allow(now) {
                    tracing::info!(%peer, max = self.cfg.max_message_bytes, "server: subscriber sent an oversized message; closing 1009");
                }
                if let Some(c) = self.ws_mut(idx) {
                    c.discard_input = true;
                }
                self.send_error(
                    idx,
                    error_code::MESSAGE_TOO_LARGE,
                    &format!(
                        "message larger than server.max_message_bytes ({} bytes)",
                        self.cfg.max_message_bytes
                    ),
                );
                self.flush_client(idx);
                self.begin_close(
                    idx,
                    CloseReason::MessageTooBig,
                    close_code::TOO_BIG,
                    "message too big",
                );
            }
            ReadEnd::Protocol(code) => {
                if closing {
                    return self.drop_conn(idx, None);
                }
                if self.log.allow(now) {
                    tracing::info!(%peer, code, "server: subscriber violated the WebSocket protocol; closing");
                }
                if let Some(c) = self.ws_mut(idx) {
                    c.discard_input = true;
                }
                self.begin_close(idx, CloseReason::ProtocolError, code, "protocol error");
            }
            ReadEnd::Io => self.drop_conn(idx, Some(CloseReason::IoError)),
        }
    }

    fn handle_message(&mut self, idx: usize, m: Inbound, market: &MarketState) {
        self.counters.requests += 1;
        let text = match m {
            Inbound::Text(t) => t,
            Inbound::Binary => {
                return self.send_error(
                    idx,
                    error_code::UNSUPPORTED_MESSAGE,
                    "binary messages are not part of the protocol; send JSON text",
                );
            }
        };
        match parse_request(text.as_bytes(), &self.channels, self.ctx.registry()) {
            Ok(Request::Ping) => {
                self.scratch.clear();
                json::write_pong(&mut self.scratch);
                let msg = share(&mut self.slab, &self.scratch);
                self.push_to(idx, &msg, NO_SLOT);
            }
            Ok(Request::Subscribe(sel)) => self.subscribe(idx, &sel, market),
            Ok(Request::Unsubscribe(sel)) => self.unsubscribe(idx, &sel),
            Err(e) => self.send_error(idx, e.code, &e.message),
        }
    }

    fn send_error(&mut self, idx: usize, code: &str, message: &str) {
        self.counters.errors += 1;
        self.scratch.clear();
        json::write_error(&mut self.scratch, code, message);
        let msg = share(&mut self.slab, &self.scratch);
        self.push_to(idx, &msg, NO_SLOT);
    }

    /// Queues a message for one client (replies, snapshots).
    fn push_to(&mut self, idx: usize, msg: &Utf8Bytes, slot: u32) {
        let max_q = self.cfg.max_queued_messages;
        let now_ns = self.clock.now_ns();
        let Some(c) = self.ws_mut(idx) else { return };
        match c.push(msg, now_ns, slot, max_q) {
            Push::Queued(true) => self.dirty.push(idx as u32),
            Push::Overflow => self.begin_close(
                idx,
                CloseReason::SlowConsumer,
                close_code::SLOW_CONSUMER,
                "slow consumer",
            ),
            _ => {}
        }
    }

    fn subscribe(&mut self, idx: usize, sel: &super::protocol::Selection, market: &MarketState) {
        let pairs: Vec<(ChannelId, InstrumentId)> = sel.pairs(&self.channels).collect();
        let max = self.cfg.max_subscriptions;
        let keyed: Vec<(ChannelId, InstrumentId, usize)> = pairs
            .iter()
            .map(|&(ch, i)| (ch, i, self.router.key(ch, i)))
            .collect();
        let new: Vec<(ChannelId, InstrumentId, usize)> = {
            let Some(c) = self.ws_mut(idx) else { return };
            let mut seen = std::collections::HashSet::new();
            keyed
                .into_iter()
                .filter(|(_, _, k)| !c.subs.contains_key(k) && seen.insert(*k))
                .collect()
        };
        let have = self.ws_mut(idx).map_or(0, |c| c.subs.len());
        if have + new.len() > max {
            return self.send_error(
                idx,
                error_code::TOO_MANY_SUBSCRIPTIONS,
                &format!(
                    "this would make {} subscriptions; server.max_subscriptions is {max} (each channel × symbol counts one, \"*\" one per instrument)",
                    have + new.len()
                ),
            );
        }
        let mut slots = Vec::with_capacity(new.len());
        for &(ch, _, key) in &new {
            let conflated = self
                .channels
                .get(ch)
                .is_some_and(|c| c.def.delivery == Delivery::Conflated);
            let Some(Some(Conn {
                kind: ConnKind::Ws(c),
                ..
            })) = self.conns.get_mut(idx)
            else {
                return;
            };
            let slot = if conflated { c.alloc_slot() } else { NO_SLOT };
            c.subs.insert(key, slot);
            self.router.add(
                key,
                Sub {
                    client: idx as u32,
                    slot,
                },
            );
            slots.push(slot);
        }
        self.n_subs += new.len();
        self.scratch.clear();
        json::write_subscription_ack(
            &mut self.scratch,
            true,
            sel.channels
                .iter()
                .filter_map(|&c| self.channels.get(c).map(|c| c.name.as_str())),
            sel.symbol_names.iter().map(String::as_str),
        );
        let ack = share(&mut self.slab, &self.scratch);
        self.push_to(idx, &ack, NO_SLOT);
        for (&(ch, inst, _), &slot) in new.iter().zip(&slots) {
            if let Some(msg) = self.snapshot(ch, inst, market) {
                self.push_to(idx, &msg, slot);
            }
        }
    }

    fn snapshot(
        &mut self,
        ch: ChannelId,
        inst: InstrumentId,
        market: &MarketState,
    ) -> Option<Utf8Bytes> {
        let c = self.channels.get(ch)?;
        let i = inst.0 as usize;
        self.scratch.clear();
        match c.def.snapshot {
            Snapshot::None => return None,
            Snapshot::Stats => return self.stats.last_msg.clone(),
            Snapshot::LatestTrade => {
                json::write_tick(&mut self.scratch, &self.ctx, &market.latest(i)?.trade?)
            }
            Snapshot::LatestQuote => {
                json::write_tick(&mut self.scratch, &self.ctx, &market.latest(i)?.quote?)
            }
            Snapshot::LatestAnomaly => {
                json::write_tick(&mut self.scratch, &self.ctx, &market.latest(i)?.anomaly?)
            }
            Snapshot::LastBar => {
                let b = market.last_bar(i, usize::from(c.window?))?;
                json::write_bar(&mut self.scratch, &self.ctx, b);
            }
        }
        Some(share(&mut self.slab, &self.scratch))
    }

    fn unsubscribe(&mut self, idx: usize, sel: &super::protocol::Selection) {
        let pairs: Vec<usize> = sel
            .pairs(&self.channels)
            .map(|(ch, i)| self.router.key(ch, i))
            .collect();
        let mut removed = 0;
        if let Some(Some(Conn {
            kind: ConnKind::Ws(c),
            ..
        })) = self.conns.get_mut(idx)
        {
            for key in pairs {
                if let Some(slot) = c.subs.remove(&key) {
                    self.router.remove(key, idx as u32);
                    if slot != NO_SLOT {
                        c.free_slot(slot);
                    }
                    removed += 1;
                }
            }
        }
        self.n_subs -= removed;
        self.scratch.clear();
        json::write_subscription_ack(
            &mut self.scratch,
            false,
            sel.channels
                .iter()
                .filter_map(|&c| self.channels.get(c).map(|c| c.name.as_str())),
            sel.symbol_names.iter().map(String::as_str),
        );
        let ack = share(&mut self.slab, &self.scratch);
        self.push_to(idx, &ack, NO_SLOT);
    }

    /// Removes a client from the subscription index.
    fn unsubscribe_all(&mut self, idx: usize) {
        if let Some(Some(Conn {
            kind: ConnKind::Ws(c),
            ..
        })) = self.conns.get_mut(idx)
        {
            let n = c.subs.len();
            for (key, _) in c.subs.drain() {
                self.router.remove(key, idx as u32);
            }
            self.n_subs -= n;
        }
    }

    /// Starts a server-side close of a subscriber: no more messages are
    /// routed to it; the close frame is queued; the connection is dropped
    /// when the peer answers or at the close deadline.
    fn begin_close(&mut self, idx: usize, reason: CloseReason, code: u16, text: &'static str) {
        self.unsubscribe_all(idx);
        let deadline = Instant::now() + Duration::from_secs(self.cfg.close_grace_secs);
        let Some(Some(Conn {
            kind: ConnKind::Ws(c),
            ..
        })) = self.conns.get_mut(idx)
        else {
            return;
        };
        if c.is_closing() {
            return;
        }
        // Counted when decided (the socket may linger until the deadline).
        if c.close_reason.is_none() {
            c.close_reason = Some(reason);
            self.counters.closes[reason.index()] += 1;
        }
        // Anything queued is dropped: for a slow consumer that is the point;
        // for other reasons the client has stopped being served anyway.
        c.begin_close(code, text, true, deadline);
        c.blocked = false;
        self.flush_client(idx);
    }

    /// Closes the socket and forgets the connection.
    fn drop_conn(&mut self, idx: usize, reason: Option<CloseReason>) {
        self.unsubscribe_all(idx);
        let Some(slot) = self.conns.get_mut(idx) else {
            return;
        };
        let Some(mut conn) = slot.take() else { return };
        match &mut conn.kind {
            ConnKind::Ws(c) => {
                if c.close_reason.is_none() {
                    let r = reason.unwrap_or(CloseReason::ClientClose);
                    self.counters.closes[r.index()] += 1;
                }
                self.n_ws -= 1;
                let _ = self.poll.registry().deregister(c.stream_mut());
            }
            ConnKind::Http(h) => {
                if h.upgrading {
                    self.n_upgrading = self.n_upgrading.saturating_sub(1);
                }
                let _ = self.poll.registry().deregister(&mut h.stream);
            }
            ConnKind::Gone => {}
        }
        self.n_conns -= 1;
        self.free.push(idx);
    }

    fn flush_client(&mut self, idx: usize) {
        let now_ns = self.clock.now_ns();
        self.flush_client_at(idx, now_ns);
    }

    fn flush_client_at(&mut self, idx: usize, now_ns: i64) {
        let Some(Some(Conn {
            kind: ConnKind::Ws(c),
            ..
        })) = self.conns.get_mut(idx)
        else {
            return;
        };
        c.dirty = false;
        if c.blocked {
            return;
        }
        let (how, sent) = c.flush(now_ns, &mut self.deliver);
        self.counters.sent += sent;
        match how {
            Flushed::Done => {
                if c.discard_input && c.is_closing() {
                    c.shutdown_write();
                }
            }
            Flushed::Blocked => {}
            Flushed::Closed => self.drop_conn(idx, Some(CloseReason::ClientClose)),
            Flushed::Failed => self.drop_conn(idx, Some(CloseReason::IoError)),
        }
    }

    /// Whether a write cycle is under way (slices left).
    fn mid_cycle(&self) -> bool {
        self.flush_pos < self.flushing.len()
    }

    /// One slice of a write cycle: flushes dirty clients for at most
    /// [`FLUSH_SLICE`], so the rings are drained in between. A cycle covers
    /// the clients dirty when it started; once it ends, the next may start
    /// after the cycle's own busy time (and `flush_interval_us`).
    fn flush_pass(&mut self) {
        let start = Instant::now();
        if !self.mid_cycle() {
            self.flushing.clear();
            std::mem::swap(&mut self.flushing, &mut self.dirty);
            self.flush_pos = 0;
            self.cycle_busy = Duration::ZERO;
        }
        let now_ns = self.clock.now_ns();
        let deadline = start + FLUSH_SLICE;
        while let Some(&id) = self.flushing.get(self.flush_pos) {
            self.flush_pos += 1;
            let dirty = matches!(
                self.conns.get(id as usize),
                Some(Some(Conn { kind: ConnKind::Ws(c), .. })) if c.dirty
            );
            if dirty {
                self.flush_client_at(id as usize, now_ns);
            }
            if self.flush_pos % 16 == 0 && Instant::now() >= deadline {
                break;
            }
        }
        let end = Instant::now();
        self.cycle_busy += end.duration_since(start);
        if !self.mid_cycle() {
            self.next_flush = end
                + self
                    .cycle_busy
                    .max(Duration::from_micros(self.cfg.flush_interval_us));
        }
    }

    // ----------------------------------------------------------------
    // Timers
    // ----------------------------------------------------------------

    fn housekeeping(&mut self, now: Instant) {
        let idle = Duration::from_secs(self.cfg.idle_timeout_secs);
        let ping = Duration::from_secs(self.cfg.ping_interval_secs);
        for idx in 0..self.conns.len() {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                continue;
            };
            let silent = now.duration_since(conn.last_rx);
            match &mut conn.kind {
                ConnKind::Http(h) => {
                    let expired = h.linger_until.is_some_and(|d| now >= d);
                    if expired || (silent >= idle && h.linger_until.is_none()) {
                        self.drop_conn(idx, None);
                    }
                }
                ConnKind::Ws(c) => {
                    if let Some(deadline) = c.closing {
                        if now >= deadline {
                            self.drop_conn(idx, None);
                        }
                    } else if silent >= idle {
                        self.begin_close(
                            idx,
                            CloseReason::IdleTimeout,
                            close_code::IDLE_TIMEOUT,
                            "idle timeout",
                        );
                    } else if !ping.is_zero() && now.duration_since(c.last_ping) >= ping {
                        if c.awaiting_pong {
                            self.begin_close(
                                idx,
                                CloseReason::PingTimeout,
                                close_code::PING_TIMEOUT,
                                "ping timeout",
                            );
                        } else {
                            c.ping(now);
                            if !c.dirty && !c.blocked {
                                c.dirty = true;
                                self.dirty.push(idx as u32);
                            }
                        }
                    }
                }
                ConnKind::Gone => {}
            }
        }
    }

    fn publish_stats(&mut self, now: Instant) {
        let tel = &self.tel;
        let dt = now.duration_since(self.stats.at).as_secs_f64().max(1e-9);
        let ticks = tel.feed.ticks.get();
        let events = tel.fanout.market_events.get() + tel.fanout.signal_events.get();
        let sent = self.counters.sent;
        let mut stages = Vec::with_capacity(self.stats.prev.len());
        for (st, prev) in tel.stages().iter().zip(self.stats.prev.iter_mut()) {
            let cur = st.with_cumulative(Histogram::clone);
            let mut diff = cur.clone();
            let _ = diff.subtract(&*prev);
            *prev = cur;
            stages.push((st.name, Percentiles::of(&diff)));
        }
        let s = EngineStats {
            ts: self.clock.now_ns(),
            uptime_secs: now.duration_since(self.started).as_secs_f64(),
            msgs_per_sec: (ticks - self.stats.ticks) as f64 / dt,
            events_per_sec: (events - self.stats.events) as f64 / dt,
            sent_per_sec: (sent - self.stats.sent) as f64 / dt,
            ticks,
            decode_errors: tel.feed.decode_errors.get() + tel.feed.decimal_errors.get(),
            ring_full: tel.feed.ring_full.get()
                + tel.kernel.ring_full.get()
                + tel.signal.ring_full.get(),
            drops: tel.feed.drops.get() + tel.kernel.drops.get() + tel.signal.drops.get(),
            subscribers: self.n_ws as u64,
            stages,
        };
        self.stats.at = now;
        self.stats.ticks = ticks;
        self.stats.events = events;
        self.stats.sent = sent;
        self.scratch.clear();
        json::write_stats(&mut self.scratch, &s);
        let msg = share(&mut self.slab, &self.scratch);
        self.stats.last = s;
        self.stats.last_msg = Some(msg.clone());
        if let Some(ch) = self.channels.stats() {
            let key = self.router.key(ch, InstrumentId(0));
            let now_ns = self.clock.now_ns();
            self.fan(key, &msg, now_ns);
        }
    }

    // ----------------------------------------------------------------
    // Shutdown
    // ----------------------------------------------------------------

    /// Sends what is queued, closes every subscriber with 1001, and waits
    /// (polling, at most `close_grace_secs`, capped at 2 s) for them to go.
    pub fn shutdown(&mut self, market: &MarketState) {
        for idx in 0..self.conns.len() {
            match self.conns.get(idx) {
                Some(Some(Conn {
                    kind: ConnKind::Ws(_),
                    ..
                })) => {
                    self.flush_client(idx);
                    self.begin_close(
                        idx,
                        CloseReason::Shutdown,
                        close_code::GOING_AWAY,
                        "server shutting down",
                    );
                }
                Some(Some(_)) => self.drop_conn(idx, None),
                _ => {}
            }
        }
        let deadline = Instant::now() + Duration::from_secs(self.cfg.close_grace_secs.min(2));
        while self.n_ws > 0 && Instant::now() < deadline {
            self.poll(RingState::Idle, market);
            std::thread::sleep(Duration::from_millis(1));
        }
        for idx in 0..self.conns.len() {
            if matches!(self.conns.get(idx), Some(Some(_))) {
                self.drop_conn(idx, None);
            }
        }
        self.deliver.publish_blocking();
    }
}

/// Copies serialized JSON into the shared slab and returns refcounted bytes.
fn share(slab: &mut BytesMut, json: &[u8]) -> Utf8Bytes {
    if slab.capacity() - slab.len() < json.len() {
        slab.reserve(SLAB_BYTES.max(json.len()));
    }
    slab.extend_from_slice(json);
    // The serializer writes UTF-8 only (escaped &str input, ASCII digits).
    Utf8Bytes::try_from(slab.split().freeze()).unwrap_or_else(|_| Utf8Bytes::from_static("{}"))
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
