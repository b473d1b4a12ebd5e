//! `feedsim`: a local exchange simulator speaking each venue's real
//! WebSocket protocol, for tests, benches and the out-of-the-box run.
//!
//! [`FeedSim::start`] binds a listener (port 0 = any free port) and serves
//! every accepted connection on its own thread (a test tool, not the hot
//! path): WebSocket handshake (optionally TLS with a self-signed certificate
//! generated at start by `rcgen`), then the venue's control protocol —
//! data flows only after a subscribe, and only for the subscribed streams
//! (Polygon: `connected` status → `auth` → `auth_success` → `subscribe`).
//! Every client text message is recorded ([`FeedSim::received_messages`],
//! [`FeedSim::received_subscribes`]) so tests can assert resubscribes.
//!
//! Data comes from the engine's deterministic simulator (one market shared
//! by all connections: after a reconnect ids continue where they were) or
//! from a recorded capture (served verbatim, shared cursor), paced at a
//! rate, at recorded pace, or as fast as the socket takes it.
//!
//! Fault injection ([`Faults`]) makes connections misbehave on purpose:
//! drop after N messages, stall, garbage frames, half a frame then close,
//! refuse connections for a while after start, skipped trade ids.

pub mod capture;
mod venues;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{HandshakeError, Message, WebSocket};

pub use capture::{CaptureFormat, CapturedFrame, read_capture};

use crate::config::{AdapterKind, SimConfig};
use crate::feed::sim::SimSource;
use crate::instruments::InstrumentRegistry;

/// Which venue's wire format the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    /// Binance combined streams (`{"stream":..,"data":..}`), `SUBSCRIBE`.
    Binance,
    /// Bybit v5 public (`publicTrade.X`, `orderbook.1.X`, `tickers.X`).
    Bybit,
    /// Coinbase Advanced Trade (`market_trades`, `ticker`, `heartbeats`).
    Coinbase,
    /// Polygon-style stocks (`status`/`auth`/`subscribe`, `T` and `Q`).
    Polygon,
}

impl std::str::FromStr for Venue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "binance" => Ok(Self::Binance),
            "bybit" => Ok(Self::Bybit),
            "coinbase" => Ok(Self::Coinbase),
            "polygon" => Ok(Self::Polygon),
            _ => Err(format!(
                "unknown venue '{s}'; use binance, bybit, coinbase or polygon"
            )),
        }
    }
}

impl Venue {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binance => "binance",
            Self::Bybit => "bybit",
            Self::Coinbase => "coinbase",
            Self::Polygon => "polygon",
        }
    }

    /// The venue whose format an adapter decodes.
    pub fn for_adapter(kind: AdapterKind) -> Self {
        match kind {
            AdapterKind::Binance | AdapterKind::BinanceUsdm | AdapterKind::Sim => Self::Binance,
            AdapterKind::BybitSpot | AdapterKind::BybitLinear => Self::Bybit,
            AdapterKind::Coinbase => Self::Coinbase,
            AdapterKind::Polygon => Self::Polygon,
        }
    }

    /// The URL path the real venue uses (any path is accepted).
    pub fn default_path(self) -> &'static str {
        match self {
            Self::Binance => "/stream",
            Self::Bybit => "/v5/public/spot",
            Self::Coinbase => "/",
            Self::Polygon => "/stocks",
        }
    }

    /// Ten liquid symbols of the venue with realistic precisions and prices.
    pub fn default_symbols(self) -> Vec<SimSymbol> {
        let crypto = [
            ("BTCUSDT", 2, 5, "61837.63"),
            ("ETHUSDT", 2, 4, "2650.17"),
            ("BNBUSDT", 2, 3, "520.40"),
            ("SOLUSDT", 2, 2, "151.22"),
            ("XRPUSDT", 4, 0, "0.5731"),
            ("DOGEUSDT", 5, 0, "0.10321"),
            ("ADAUSDT", 4, 1, "0.3512"),
            ("AVAXUSDT", 2, 2, "25.17"),
            ("LINKUSDT", 3, 2, "10.412"),
            ("DOTUSDT", 3, 2, "4.611"),
        ];
        let coinbase = [
            ("BTC-USD", 2, 8, "61837.63"),
            ("ETH-USD", 2, 8, "2650.17"),
            ("SOL-USD", 2, 8, "151.22"),
            ("XRP-USD", 4, 6, "0.5731"),
            ("DOGE-USD", 5, 2, "0.10321"),
            ("ADA-USD", 4, 2, "0.3512"),
            ("AVAX-USD", 2, 8, "25.17"),
            ("LINK-USD", 3, 8, "10.412"),
            ("DOT-USD", 3, 8, "4.611"),
            ("LTC-USD", 2, 8, "63.11"),
        ];
        let stocks = [
            ("AAPL", 2, 0, "182.31"),
            ("MSFT", 2, 0, "414.20"),
            ("NVDA", 2, 0, "118.44"),
            ("AMZN", 2, 0, "178.25"),
            ("GOOGL", 2, 0, "165.03"),
            ("META", 2, 0, "505.12"),
            ("TSLA", 2, 0, "201.88"),
            ("SPY", 2, 0, "532.40"),
            ("QQQ", 2, 0, "455.91"),
            ("AMD", 2, 0, "140.07"),
        ];
        let list: &[(&str, u8, u8, &str)] = match self {
            Self::Binance | Self::Bybit => &crypto,
            Self::Coinbase => &coinbase,
            Self::Polygon => &stocks,
        };
        list.iter()
            .map(|(s, p, q, px)| SimSymbol {
                symbol: (*s).into(),
                price_precision: *p,
                size_precision: *q,
                start_price: (*px).into(),
            })
            .collect()
    }
}

/// One simulated symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSymbol {
    /// Venue symbol as the venue spells it.
    pub symbol: String,
    /// Price fraction digits.
    pub price_precision: u8,
    /// Size fraction digits.
    pub size_precision: u8,
    /// Starting price, decimal text.
    pub start_price: String,
}

impl SimSymbol {
    /// Parses `SYMBOL[:PRICE_PREC:SIZE_PREC[:START_PRICE]]`.
    ///
    /// # Errors
    /// A malformed spec.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = || {
            format!(
                "symbol '{spec}': use SYMBOL or SYMBOL:PRICE_PREC:SIZE_PREC[:START_PRICE], e.g. BTCUSDT:2:5:61837.63"
            )
        };
        let num = |s: &str| s.parse::<u8>().ok().filter(|p| *p <= 18).ok_or_else(bad);
        let (p, q, px) = match parts.len() {
            1 => (2, 4, "100".to_string()),
            3 => (num(parts[1])?, num(parts[2])?, "100".to_string()),
            4 => (num(parts[1])?, num(parts[2])?, parts[3].to_string()),
            _ => return Err(bad()),
        };
        if parts[0].is_empty() {
            return Err(bad());
        }
        Ok(Self {
            symbol: parts[0].to_ascii_uppercase(),
            price_precision: p,
            size_precision: q,
            start_price: px,
        })
    }
}

/// How fast data is sent on each connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// This many messages per second (before subscription filtering).
    Rate(f64),
    /// At the capture's recorded receive times (generator: as `Max`).
    Recorded,
    /// As fast as the socket accepts.
    Max,
}

/// Fault injection; 0 disables each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Close the TCP connection (no close frame) after every N data
    /// messages on a connection.
    pub drop_every: u64,
    /// Stop sending for this many ms (see `stall_every`).
    pub stall_ms: u64,
    /// Stall after every K data messages; 0 = stall once per server, after
    /// [`STALL_ONCE_AFTER`] messages of the first connection that gets there.
    pub stall_every: u64,
    /// Send a non-JSON text frame after every N data messages.
    pub garbage_every: u64,
    /// After N data messages on a connection, write half of the next frame
    /// and close the TCP socket.
    pub close_mid_frame_after: u64,
    /// Refuse connections (nothing listens) for this long after start.
    pub refuse_for_ms: u64,
    /// Skip every N-th subscribed trade message (its trade id, and on
    /// Coinbase its `sequence_num`, never appear): a sequence gap.
    pub gap_every: u64,
}

/// Data messages a connection sends before the one-off stall.
pub const STALL_ONCE_AFTER: u64 = 100;

/// The text of an injected garbage frame.
pub const GARBAGE: &str = "feedsim: this frame is not JSON {{{";

/// Simulator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSimConfig {
    /// Wire format.
    pub venue: Venue,
    /// Listen address (port 0 = any free port).
    pub listen: SocketAddr,
    /// Serve `wss://` with a self-signed certificate.
    pub tls: bool,
    /// Write the certificate (PEM) here so clients can trust it.
    pub cert_out: Option<PathBuf>,
    /// Symbols of the generated market.
    pub symbols: Vec<SimSymbol>,
    /// Generator seed, trade ratio (other settings of `SimConfig` unused).
    pub sim: SimConfig,
    /// Pacing.
    pub pace: Pace,
    /// Stop generating after this many messages (all connections); 0 = no
    /// limit.
    pub messages: u64,
    /// Serve this capture instead of the generator.
    pub capture: Option<(PathBuf, CaptureFormat)>,
    /// Fault injection.
    pub faults: Faults,
    /// Polygon: the key `auth` must carry (`None` accepts any key).
    pub api_key: Option<String>,
    /// Binance generator at `Pace::Max` only: pre-generate this many
    /// frames per connection, pre-encoded as WebSocket frames, and write
    /// them in large chunks in a loop (event times, trade ids patched
    /// forward each lap so they keep increasing). Makes the simulator
    /// nearly free so a loopback bench measures the engine; faults are not
    /// applied. 0 = generate live.
    pub pool: usize,
}

impl FeedSimConfig {
    /// Defaults for `venue`: 127.0.0.1:0, plain ws, the venue's ten
    /// default symbols, 20,000 msg/s, no faults.
    pub fn new(venue: Venue) -> Self {
        Self {
            venue,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            cert_out: None,
            symbols: venue.default_symbols(),
            sim: SimConfig::default(),
            pace: Pace::Rate(20_000.0),
            messages: 0,
            capture: None,
            faults: Faults::default(),
            api_key: None,
            pool: 0,
        }
    }

    /// The symbols of `venue_name`'s instruments in `registry` (precisions
    /// from the registry, start prices from `prices` by `VENUE:SYMBOL` key).
    pub fn symbols_from_registry(
        registry: &InstrumentRegistry,
        venue_name: &str,
        only: &[String],
        prices: &[(String, String)],
    ) -> Vec<SimSymbol> {
        registry
            .of_venue(venue_name)
            .filter(|i| only.is_empty() || only.iter().any(|s| s.eq_ignore_ascii_case(&i.symbol)))
            .map(|i| SimSymbol {
                symbol: i.symbol.clone(),
                price_precision: i.price_precision,
                size_precision: i.size_precision,
                start_price: prices
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&i.key))
                    .map_or_else(|| "100".to_string(), |(_, p)| p.clone()),
            })
            .collect()
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum FeedSimError {
    /// The listen address could not be bound.
    #[error(
        "feedsim: cannot listen on {addr}: {source} (pick another port, or 0 for any free one)"
    )]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// I/O error.
        source: io::Error,
    },
    /// Certificate or TLS setup failed.
    #[error("feedsim: TLS setup: {0}")]
    Tls(String),
    /// The certificate could not be written.
    #[error("feedsim: cannot write the certificate to {path}: {source}")]
    CertOut {
        /// Path.
        path: PathBuf,
        /// I/O error.
        source: io::Error,
    },
    /// The capture could not be read.
    #[error("feedsim: capture: {0}")]
    Capture(String),
    /// Inconsistent settings.
    #[error("feedsim: {0}")]
    Config(String),
}

/// Counters of a running simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedSimStats {
    /// Connections accepted (handshake attempted).
    pub connections: u64,
    /// WebSocket handshakes completed.
    pub handshakes: u64,
    /// Data messages sent (after subscription filtering).
    pub data_messages: u64,
    /// Subscribe (and Polygon auth) messages received.
    pub subscribes: u64,
    /// Garbage frames sent.
    pub garbage: u64,
    /// Trades skipped (gaps injected).
    pub gaps: u64,
    /// Connections dropped by `drop_every`.
    pub drops: u64,
    /// Connections closed mid-frame.
    pub mid_frame_closes: u64,
    /// Stalls performed.
    pub stalls: u64,
}

/// One client message the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Connection number (1 = first accepted).
    pub conn: u64,
    /// The text.
    pub text: String,
    /// It was a subscribe (or Polygon auth).
    pub subscribe: bool,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    handshakes: AtomicU64,
    data_messages: AtomicU64,
    subscribes: AtomicU64,
    garbage: AtomicU64,
    gaps: AtomicU64,
    drops: AtomicU64,
    mid_frame_closes: AtomicU64,
    stalls: AtomicU64,
}

enum Market {
    Gen {
        sim: Box<SimSource>,
        buf: Vec<u8>,
        made: u64,
    },
    Capture {
        frames: Vec<CapturedFrame>,
        next: usize,
        t0: i64,
    },
}

enum Next {
    Frame,
    /// Not due yet: wait this long.
    NotYet(Duration),
    Exhausted,
}

struct Shared {
    cfg: FeedSimConfig,
    stop: AtomicBool,
    stall_done: AtomicBool,
    market: Mutex<Market>,
    received: Mutex<Vec<ReceivedMessage>>,
    counters: Counters,
    tls: Option<Arc<ServerConfig>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Next market frame into `out`. `elapsed` = time since the
    /// connection's data started (recorded pace only).
    fn next_frame(&self, out: &mut String, elapsed: Duration) -> Next {
        let Ok(mut m) = self.market.lock() else {
            return Next::Exhausted;
        };
        out.clear();
        match &mut *m {
            Market::Gen { sim, buf, made } => {
                if self.cfg.messages > 0 && *made >= self.cfg.messages {
                    return Next::Exhausted;
                }
                buf.clear();
                sim.generate(buf, crate::clock::wall_now_ns());
                *made += 1;
                out.push_str(&String::from_utf8_lossy(buf));
                Next::Frame
            }
            Market::Capture { frames, next, t0 } => {
                let Some(f) = frames.get(*next) else {
                    return Next::Exhausted;
                };
                if self.cfg.pace == Pace::Recorded && f.ts_ns > 0 {
                    let due = Duration::from_nanos((f.ts_ns - *t0).max(0) as u64);
                    if due > elapsed {
                        return Next::NotYet(due - elapsed);
                    }
                }
                out.push_str(&f.text);
                *next += 1;
                Next::Frame
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A running simulator; stops (and joins its threads) on [`stop`](Self::stop)
/// or drop.
pub struct FeedSim {
    addr: SocketAddr,
    cert_pem: Option<String>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FeedSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSim")
            .field("addr", &self.addr)
            .field("venue", &self.shared.cfg.venue)
            .field("tls", &self.cert_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The market generator for `cfg`'s symbols.
fn new_generator(cfg: &FeedSimConfig) -> Result<SimSource, FeedSimError> {
    let mut reg = InstrumentRegistry::new();
    let mut prices = Vec::new();
    for s in &cfg.symbols {
        let key = format!("FEEDSIM:{}", s.symbol);
        reg.add(&key, s.price_precision, s.size_precision, None)
            .map_err(|e| FeedSimError::Config(e.to_string()))?;
        prices.push((key, s.start_price.clone()));
    }
    let mut sim_cfg = cfg.sim.clone();
    sim_cfg.messages = 0;
    Ok(SimSource::new(&reg, "FEEDSIM", &prices, sim_cfg))
}

fn tls_server_config() -> Result<(Arc<ServerConfig>, String), FeedSimError> {
    let ck = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(|e| FeedSimError::Tls(format!("certificate generation: {e}")))?;
    let pem = ck.cert.pem();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FeedSimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| FeedSimError::Tls(e.to_string()))?;
    Ok((Arc::new(cfg), pem))
}

impl FeedSim {
    /// Binds, generates the certificate (TLS), loads the capture, and
    /// starts accepting on a background thread.
    ///
    /// # Errors
    /// Bind, TLS, certificate output or capture errors.
    pub fn start(cfg: FeedSimConfig) -> Result<Self, FeedSimError> {
        if cfg.symbols.is_empty() && cfg.capture.is_none() {
            return Err(FeedSimError::Config("no symbols to simulate".into()));
        }
        if cfg.pool > 0
            && (cfg.venue != Venue::Binance || cfg.capture.is_some() || cfg.pace != Pace::Max)
        {
            return Err(FeedSimError::Config(
                "a prebuilt pool needs the Binance generator at --max pace".into(),
            ));
        }
        let market = match &cfg.capture {
            Some((path, fmt)) => {
                let frames = read_capture(path, *fmt).map_err(FeedSimError::Capture)?;
                let t0 = frames.iter().map(|f| f.ts_ns).find(|t| *t > 0).unwrap_or(0);
                Market::Capture {
                    frames,
                    next: 0,
                    t0,
                }
            }
            None => Market::Gen {
                sim: Box::new(new_generator(&cfg)?),
                buf: Vec::with_capacity(512),
                made: 0,
            },
        };
        let (tls, cert_pem) = if cfg.tls {
            let (c, pem) = tls_server_config()?;
            if let Some(p) = &cfg.cert_out {
                std::fs::write(p, &pem).map_err(|source| FeedSimError::CertOut {
                    path: p.clone(),
                    source,
                })?;
            }
            (Some(c), Some(pem))
        } else {
            (None, None)
        };
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| FeedSimError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| FeedSimError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let refuse = Duration::from_millis(cfg.faults.refuse_for_ms);
        let listener = if refuse.is_zero() {
            listener
                .set_nonblocking(true)
                .map_err(|source| FeedSimError::Bind { addr, source })?;
            Some(listener)
        } else {
            // Nothing listens until `refuse` has passed: connects are
            // refused by the kernel, as with a venue that is down.
            drop(listener);
            None
        };
        let shared = Arc::new(Shared {
            cfg,
            stop: AtomicBool::new(false),
            stall_done: AtomicBool::new(false),
            market: Mutex::new(market),
            received: Mutex::new(Vec::new()),
            counters: Counters::default(),
            tls,
            threads: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let started = Instant::now();
        let acceptor = std::thread::Builder::new()
            .name("feedsim-accept".into())
            .spawn(move || accept_loop(&sh, listener, addr, started + refuse))
            .map_err(|e| FeedSimError::Config(format!("cannot spawn the accept thread: {e}")))?;
        tracing::debug!(%addr, venue = shared.cfg.venue.as_str(), tls = shared.tls.is_some(), "feedsim listening");
        Ok(Self {
            addr,
            cert_pem,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/PATH` (or `wss://localhost:PORT/PATH` with TLS, the name
    /// the certificate carries) with the venue's usual path.
    pub fn url(&self) -> String {
        let path = self.shared.cfg.venue.default_path();
        if self.cert_pem.is_some() {
            let host = if self.addr.ip().is_loopback() && self.addr.is_ipv4() {
                "127.0.0.1".to_string()
            } else {
                self.addr.ip().to_string()
            };
            format!("wss://{host}:{}{path}", self.addr.port())
        } else {
            format!("ws://{}{path}", self.addr)
        }
    }

    /// The self-signed certificate (PEM) when serving TLS.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Every client text message received so far, in order.
    pub fn received_messages(&self) -> Vec<ReceivedMessage> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The subscribe (and Polygon auth) messages received so far.
    pub fn received_subscribes(&self) -> Vec<String> {
        self.received_messages()
            .into_iter()
            .filter(|m| m.subscribe)
            .map(|m| m.text)
            .collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> FeedSimStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FeedSimStats {
            connections: g(&c.connections),
            handshakes: g(&c.handshakes),
            data_messages: g(&c.data_messages),
            subscribes: g(&c.subscribes),
            garbage: g(&c.garbage),
            gaps: g(&c.gaps),
            drops: g(&c.drops),
            mid_frame_closes: g(&c.mid_frame_closes),
            stalls: g(&c.stalls),
        }
    }

    /// Stops accepting, closes every connection and joins the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        let threads = self
            .shared
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for h in threads {
            let _ = h.join();
        }
    }
}

impl Drop for FeedSim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    sh: &Arc<Shared>,
    mut listener: Option<std::net::TcpListener>,
    addr: SocketAddr,
    listen_at: Instant,
) {
    let mut conn_id = 0u64;
    while !sh.stopped() {
        let Some(l) = &listener else {
            if Instant::now() >= listen_at {
                match std::net::TcpListener::bind(addr) {
                    Ok(l) => {
                        let _ = l.set_nonblocking(true);
                        listener = Some(l);
                    }
                    Err(e) => {
                        tracing::debug!(%addr, error = %e, "feedsim: re-bind failed; retrying");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
            continue;
        };
        match l.accept() {
            Ok((sock, _peer)) => {
                conn_id += 1;
                sh.counters.connections.fetch_add(1, Ordering::Relaxed);
                let sh2 = sh.clone();
                let id = conn_id;
                let spawned = std::thread::Builder::new()
                    .name(format!("feedsim-conn-{id}"))
                    .spawn(move || {
                        if let Err(e) = serve(&sh2, sock, id) {
                            tracing::debug!(conn = id, error = %e, "feedsim connection ended");
                        }
                    });
                if let Ok(h) = spawned
                    && let Ok(mut t) = sh.threads.lock()
                {
                    t.retain(|h| !h.is_finished());
                    t.push(h);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Server-side stream: plain or TLS over a mio socket.
enum SrvStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl SrvStream {
    fn sock(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(t) => &mut t.sock,
        }
    }
}

impl Read for SrvStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(t) => t.read(buf),
        }
    }
}

impl Write for SrvStream {
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

type Ws = WebSocket<SrvStream>;

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

/// Per-connection state of the serving loop.
struct Conn<'a> {
    sh: &'a Shared,
    ws: Ws,
    poll: Poll,
    events: Events,
    /// Output waiting for WRITABLE.
    blocked: bool,
}

impl Conn<'_> {
    /// Queues a text frame; `WouldBlock` = buffered (stop producing until
    /// flushed).
    fn send(&mut self, text: &str) -> Result<(), String> {
        match self.ws.write(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(e) if would_block(&e) => {
                self.blocked = true;
                Ok(())
            }
            Err(tungstenite::Error::WriteBufferFull(_)) => {
                self.blocked = true;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        match self.ws.flush() {
            Ok(()) => {
                self.blocked = false;
                Ok(())
            }
            Err(e) if would_block(&e) => {
                self.blocked = true;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Flushes everything, waiting for the socket up to `limit`.
    fn flush_all(&mut self, limit: Duration) -> Result<(), String> {
        let until = Instant::now() + limit;
        loop {
            self.flush()?;
            if !self.blocked || Instant::now() >= until || self.sh.stopped() {
                return Ok(());
            }
            let _ = self
                .poll
                .poll(&mut self.events, Some(Duration::from_millis(10)));
        }
    }

    /// Sleeps `d` in small steps, still answering nothing (a stall).
    fn stall(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.sh.stopped() {
            std::thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
        }
    }

    /// Writes half of a text frame carrying `text` straight to the socket,
    /// then closes TCP.
    fn close_mid_frame(&mut self, text: &str) {
        let _ = self.flush_all(Duration::from_secs(2));
        let p = text.as_bytes();
        let mut frame = Vec::with_capacity(p.len() + 10);
        frame.push(0x81);
        match p.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= 0xFFFF => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(p);
        let half = &frame[..frame.len() / 2];
        let s = self.ws.get_mut();
        let _ = s.write_all(half);
        let _ = s.flush();
        let _ = s.sock().shutdown(std::net::Shutdown::Both);
    }

    fn abort(&mut self) {
        let _ = self.ws.get_mut().sock().shutdown(std::net::Shutdown::Both);
    }
}

fn serve(sh: &Shared, sock: std::net::TcpStream, id: u64) -> Result<(), String> {
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let _ = sock.set_nodelay(true);
    let mut sock = TcpStream::from_std(sock);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    poll.registry()
        .register(&mut sock, Token(0), Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(16);
    let stream = match &sh.tls {
        None => SrvStream::Plain(sock),
        Some(cfg) => {
            let c = ServerConnection::new(cfg.clone()).map_err(|e| e.to_string())?;
            SrvStream::Tls(Box::new(StreamOwned::new(c, sock)))
        }
    };
    let path = Arc::new(Mutex::new(String::new()));
    let p2 = path.clone();
    // The error type is tungstenite's; it is never returned here.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &tungstenite::handshake::server::Request,
                         resp: tungstenite::handshake::server::Response| {
        if let Ok(mut p) = p2.lock() {
            *p = req.uri().to_string();
        }
        Ok(resp)
    };
    let ws_cfg = WebSocketConfig::default()
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(64 << 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut res = tungstenite::accept_hdr_with_config(stream, callback, Some(ws_cfg));
    let ws = loop {
        match res {
            Ok(ws) => break ws,
            Err(HandshakeError::Interrupted(mid)) => {
                if sh.stopped() || Instant::now() > deadline {
                    return Err("handshake did not finish".into());
                }
                let _ = poll.poll(&mut events, Some(Duration::from_millis(20)));
                res = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(format!("handshake: {e}")),
        }
    };
    sh.counters.handshakes.fetch_add(1, Ordering::Relaxed);
    let mut c = Conn {
        sh,
        ws,
        poll,
        events,
        blocked: false,
    };
    let venue = sh.cfg.venue;
    let mut session = venues::Session::new(venue, id, sh.cfg.api_key.clone());
    if let Ok(p) = path.lock() {
        session.on_path(&p);
    }
    let mut replies = Vec::new();
    session.on_open(&mut replies);
    for r in replies.drain(..) {
        c.send(&r)?;
    }
    c.flush()?;

    if sh.cfg.pool > 0 {
        return serve_pool(&mut c, &mut session, id);
    }
    let f = sh.cfg.faults;
    let capture = sh.cfg.capture.is_some();
    let mut sent = 0u64;
    let mut trades = 0u64;
    let mut paced = 0u64;
    let mut active_since: Option<Instant> = None;
    let mut frame = String::with_capacity(512);
    let mut enc = String::with_capacity(1024);
    let mut last_hb = Instant::now();
    let mut hb_count = 0u64;
    loop {
        if sh.stopped() {
            let _ = c.ws.close(None);
            let _ = c.flush_all(Duration::from_millis(200));
            return Ok(());
        }
        // Client messages (subscribe, auth, ping); pings are answered by
        // tungstenite.
        loop {
            match c.ws.read() {
                Ok(Message::Text(t)) => {
                    let now = crate::clock::wall_now_ns();
                    let sub = session.on_client_text(t.as_str(), now, &mut replies);
                    if sub {
                        sh.counters.subscribes.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Ok(mut r) = sh.received.lock() {
                        r.push(ReceivedMessage {
                            conn: id,
                            text: t.as_str().to_string(),
                            subscribe: sub,
                        });
                    }
                    for r in replies.drain(..) {
                        c.send(&r)?;
                    }
                    c.flush()?;
                    if session.close {
                        let _ = c.flush_all(Duration::from_millis(200));
                        c.abort();
                        return Ok(());
                    }
                }
                Ok(Message::Close(_)) => {
                    let _ = c.flush_all(Duration::from_millis(200));
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        if c.blocked {
            c.flush()?;
        }
        let mut wait = Duration::from_millis(20);
        if session.active() && !c.blocked {
            let start = *active_since.get_or_insert_with(Instant::now);
            let elapsed = start.elapsed();
            let budget = match sh.cfg.pace {
                Pace::Rate(r) if r > 0.0 => {
                    let due = (elapsed.as_secs_f64() * r) as u64;
                    let b = due.saturating_sub(paced).min(4096);
                    wait = Duration::from_secs_f64((1.0 / r).clamp(0.000_1, 0.01));
                    b
                }
                _ => {
                    wait = Duration::ZERO;
                    512
                }
            };
            let now_ns = crate::clock::wall_now_ns();
            if last_hb.elapsed() >= Duration::from_secs(1) {
                last_hb = Instant::now();
                hb_count += 1;
                if let Some(h) = session.heartbeat(now_ns, hb_count) {
                    c.send(&h)?;
                }
            }
            for _ in 0..budget {
                match sh.next_frame(&mut frame, elapsed) {
                    Next::Frame => {}
                    Next::NotYet(d) => {
                        wait = d.min(Duration::from_millis(10));
                        break;
                    }
                    Next::Exhausted => {
                        wait = Duration::from_millis(20);
                        break;
                    }
                }
                paced += 1;
                let text: &str = if capture {
                    &frame
                } else {
                    // Encode first: a skipped message also consumes its
                    // connection sequence number (Coinbase), as a message
                    // lost upstream would.
                    if !session.encode(&frame, now_ns, &mut enc) {
                        continue;
                    }
                    if f.gap_every > 0 && venues::is_trade_frame(&frame) {
                        trades += 1;
                        if trades % f.gap_every == 0 {
                            sh.counters.gaps.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    &enc
                };
                if f.close_mid_frame_after > 0 && sent == f.close_mid_frame_after {
                    let t = text.to_string();
                    c.close_mid_frame(&t);
                    sh.counters.mid_frame_closes.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                c.send(text)?;
                sent += 1;
                sh.counters.data_messages.fetch_add(1, Ordering::Relaxed);
                if f.garbage_every > 0 && sent % f.garbage_every == 0 {
                    c.send(GARBAGE)?;
                    sh.counters.garbage.fetch_add(1, Ordering::Relaxed);
                }
                if f.drop_every > 0 && sent % f.drop_every == 0 {
                    let _ = c.flush_all(Duration::from_secs(2));
                    c.abort();
                    sh.counters.drops.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                let stall = f.stall_ms > 0
                    && if f.stall_every > 0 {
                        sent % f.stall_every == 0
                    } else {
                        sent == STALL_ONCE_AFTER && !sh.stall_done.swap(true, Ordering::Relaxed)
                    };
                if stall {
                    let _ = c.flush_all(Duration::from_secs(2));
                    sh.counters.stalls.fetch_add(1, Ordering::Relaxed);
                    c.stall(Duration::from_millis(f.stall_ms));
                }
                if c.blocked {
                    break;
                }
            }
            c.flush()?;
        }
        if c.blocked {
            wait = Duration::from_millis(50);
        }
        if !wait.is_zero() || c.blocked {
            let _ = c.poll.poll(&mut c.events, Some(wait));
        }
    }
}

/// Where to patch one pooled trade frame each lap.
struct Patch {
    /// Byte offsets of the 13-digit `E` and `T` millisecond times.
    e_at: usize,
    t_at: usize,
    /// Byte offset and width of the trade id digits.
    id_at: usize,
    id_width: usize,
    e0: i64,
    t0: i64,
    id0: u64,
    sym: usize,
}

/// Pre-encoded frames served in a loop (see [`FeedSimConfig::pool`]).
struct Pool {
    bytes: Vec<u8>,
    /// Start offset of every frame, plus the end.
    starts: Vec<usize>,
    patches: Vec<Patch>,
    /// Event-time span of one lap, ms.
    span_ms: i64,
    /// Trades per symbol in one lap.
    trades_per_sym: Vec<u64>,
}

fn digits_at(b: &[u8], key: &[u8]) -> Option<(usize, usize, u64)> {
    let at = b.windows(key.len()).position(|w| w == key)? + key.len();
    let width = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    let v = std::str::from_utf8(&b[at..at + width]).ok()?.parse().ok()?;
    Some((at, width, v))
}

fn write_digits(dst: &mut [u8], mut v: u64) -> bool {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    v == 0
}

fn ws_text_header(out: &mut Vec<u8>, len: usize) {
    out.push(0x81);
    match len {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
}

fn build_pool(sh: &Shared, session: &mut venues::Session) -> Result<Pool, String> {
    let n = sh.cfg.pool;
    let mut sim = new_generator(&sh.cfg).map_err(|e| e.to_string())?;
    let syms: Vec<&str> = sh.cfg.symbols.iter().map(|s| s.symbol.as_str()).collect();
    let mut pool = Pool {
        bytes: Vec::with_capacity(n * 180),
        starts: Vec::with_capacity(n + 1),
        patches: Vec::new(),
        span_ms: (n as i64 / 1_000).max(1),
        trades_per_sym: vec![0; syms.len()],
    };
    let t0 = crate::clock::wall_now_ns();
    let mut raw = Vec::with_capacity(512);
    let mut enc = String::with_capacity(512);
    for i in 0..n {
        raw.clear();
        sim.generate(&mut raw, t0 + i as i64 * 1_000);
        let text = String::from_utf8_lossy(&raw);
        if !session.encode(&text, t0, &mut enc) {
            continue;
        }
        let start = pool.bytes.len();
        pool.starts.push(start);
        ws_text_header(&mut pool.bytes, enc.len());
        let body = pool.bytes.len();
        pool.bytes.extend_from_slice(enc.as_bytes());
        if venues::is_trade_frame(&enc) {
            let b = &pool.bytes[body..];
            let sym = venues::parse_sim_frame(&enc).and_then(|e| match e {
                venues::MarketEvent::Trade { symbol, .. } => syms.iter().position(|s| *s == symbol),
                venues::MarketEvent::Quote { .. } => None,
            });
            if let (Some((e_at, 13, e0)), Some((t_at, 13, t0v)), Some((id_at, w, id0)), Some(sym)) = (
                digits_at(b, br#""E":"#),
                digits_at(b, br#""T":"#),
                digits_at(b, br#""t":"#),
                sym,
            ) {
                pool.trades_per_sym[sym] += 1;
                pool.patches.push(Patch {
                    e_at: body + e_at,
                    t_at: body + t_at,
                    id_at: body + id_at,
                    id_width: w,
                    e0: e0 as i64,
                    t0: t0v as i64,
                    id0,
                    sym,
                });
            }
        }
    }
    pool.starts.push(pool.bytes.len());
    if pool.starts.len() < 2 {
        return Err("nothing subscribed matches the generated market".into());
    }
    Ok(pool)
}

impl Pool {
    /// Moves event times and trade ids forward to lap `lap`.
    fn patch(&mut self, lap: u64) {
        for p in &self.patches {
            let dt = self.span_ms * lap as i64;
            let _ = write_digits(&mut self.bytes[p.e_at..p.e_at + 13], (p.e0 + dt) as u64);
            let _ = write_digits(&mut self.bytes[p.t_at..p.t_at + 13], (p.t0 + dt) as u64);
            let id = p.id0 + self.trades_per_sym[p.sym] * lap;
            // A wider id does not fit: leave it (the client sees the id
            // sequence restart, which it treats as a reset, not a gap).
            let mut tmp = [0u8; 20];
            let w = p.id_width.min(20);
            if write_digits(&mut tmp[..w], id) {
                self.bytes[p.id_at..p.id_at + w].copy_from_slice(&tmp[..w]);
            }
        }
    }
}

/// Serves a prebuilt pool: waits for the subscribe, then writes
/// frame-aligned chunks of pre-encoded frames as fast as the socket takes
/// them. Client messages are read only between chunks, so a pong written
/// by tungstenite never lands inside a raw frame.
fn serve_pool(c: &mut Conn<'_>, session: &mut venues::Session, id: u64) -> Result<(), String> {
    const CHUNK_FRAMES: usize = 1024;
    let sh = c.sh;
    let mut replies = Vec::new();
    let mut pool: Option<Pool> = None;
    let mut frame = 0usize;
    let mut lap = 0u64;
    // Bytes of the current chunk not written yet: [pos, end).
    let (mut pos, mut end, mut chunk_frames) = (0usize, 0usize, 0usize);
    loop {
        if sh.stopped() {
            return Ok(());
        }
        if pos == end {
            // Between chunks: client messages, subscribe.
            loop {
                match c.ws.read() {
                    Ok(Message::Text(t)) => {
                        let sub = session.on_client_text(t.as_str(), 0, &mut replies);
                        if sub {
                            sh.counters.subscribes.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Ok(mut r) = sh.received.lock() {
                            r.push(ReceivedMessage {
                                conn: id,
                                text: t.as_str().to_string(),
                                subscribe: sub,
                            });
                        }
                        for r in replies.drain(..) {
                            c.send(&r)?;
                        }
                    }
                    Ok(Message::Close(_)) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if would_block(&e) => break,
                    Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    ) => {
                        return Ok(());
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            c.flush_all(Duration::from_secs(1))?;
            if c.blocked {
                continue;
            }
            sh.counters
                .data_messages
                .fetch_add(chunk_frames as u64, Ordering::Relaxed);
            chunk_frames = 0;
            if !session.active() {
                let _ = c.poll.poll(&mut c.events, Some(Duration::from_millis(10)));
                continue;
            }
            if pool.is_none() {
                pool = Some(build_pool(sh, session)?);
            }
            let Some(p) = pool.as_mut() else { continue };
            let frames = p.starts.len() - 1;
            if frame >= frames {
                frame = 0;
                lap += 1;
                p.patch(lap);
            }
            let last = (frame + CHUNK_FRAMES).min(frames);
            pos = p.starts[frame];
            end = p.starts[last];
            chunk_frames = last - frame;
            frame = last;
        }
        let Some(p) = pool.as_ref() else { continue };
        match c.ws.get_mut().write(&p.bytes[pos..end]) {
            Ok(0) => return Err("socket closed".into()),
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let _ = c.ws.get_mut().flush();
                let _ = c.poll.poll(&mut c.events, Some(Duration::from_millis(50)));
            }
            Err(e) => return Err(e.to_string()),
        }
        if pos == end {
            let _ = c.ws.get_mut().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_patches_times_and_ids_forward() {
        let mut cfg = FeedSimConfig::new(Venue::Binance);
        cfg.pace = Pace::Max;
        cfg.pool = 2_000;
        cfg.sim.trade_ratio = 1.0;
        cfg.symbols.truncate(2);
        let sh = Shared {
            cfg,
            stop: AtomicBool::new(false),
            stall_done: AtomicBool::new(false),
            market: Mutex::new(Market::Capture {
                frames: Vec::new(),
                next: 0,
                t0: 0,
            }),
            received: Mutex::new(Vec::new()),
            counters: Counters::default(),
            tls: None,
            threads: Mutex::new(Vec::new()),
        };
        let mut session = venues::Session::new(Venue::Binance, 1, None);
        session.on_path("/stream?streams=btcusdt@trade/ethusdt@trade");
        let mut pool = build_pool(&sh, &mut session).unwrap();
        assert_eq!(pool.starts.len(), 2_001);
        assert_eq!(pool.patches.len(), 2_000);
        let frame = |p: &Pool, i: usize| {
            let b = &p.bytes[p.starts[i]..p.starts[i + 1]];
            let hdr = if b[1] < 126 { 2 } else { 4 };
            serde_json::from_slice::<serde_json::Value>(&b[hdr..]).unwrap()
        };
        let a = frame(&pool, 0);
        pool.patch(3);
        let b = frame(&pool, 0);
        assert_eq!(
            b["data"]["T"].as_i64().unwrap() - a["data"]["T"].as_i64().unwrap(),
            3 * pool.span_ms
        );
        let sym = pool.patches[0].sym;
        assert_eq!(
            b["data"]["t"].as_u64().unwrap() - a["data"]["t"].as_u64().unwrap(),
            3 * pool.trades_per_sym[sym]
        );
        assert_eq!(a["data"]["s"], b["data"]["s"]);
    }

    #[test]
    fn symbol_specs_parse() {
        assert_eq!(
            SimSymbol::parse("btcusdt:2:5:61837.63").unwrap(),
            SimSymbol {
                symbol: "BTCUSDT".into(),
                price_precision: 2,
                size_precision: 5,
                start_price: "61837.63".into()
            }
        );
        assert_eq!(SimSymbol::parse("AAPL").unwrap().price_precision, 2);
        assert!(SimSymbol::parse("X:1").is_err());
        assert!(SimSymbol::parse("X:99:1").is_err());
        assert!(SimSymbol::parse("").is_err());
        assert_eq!(Venue::Bybit.default_symbols().len(), 10);
        assert_eq!("Polygon".parse::<Venue>(), Ok(Venue::Polygon));
        assert!("kraken".parse::<Venue>().is_err());
    }

    #[test]
    fn refuses_then_accepts_and_stops() {
        let mut cfg = FeedSimConfig::new(Venue::Binance);
        cfg.faults.refuse_for_ms = 300;
        let sim = FeedSim::start(cfg).unwrap();
        let addr = sim.local_addr();
        assert_ne!(addr.port(), 0);
        let e = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "listener never came back");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim.stop();
    }
}
