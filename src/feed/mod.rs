//! Feed stage: frame sources and venue adapters → normalized [`Tick`]s.
//!
//! A [`FrameSource`] yields raw venue frames (the built-in simulator,
//! WebSocket connections ([`ws`]), capture readers); an [`Adapter`] decodes
//! one frame into zero or more ticks. [`FeedStage`] pairs them and is what
//! the pipeline's feed thread drives with [`FeedStage::step`]. After warm-up
//! a step does not allocate: frame, parse and tick buffers are reused.
//!
//! One source may carry several *streams* (one per configured feed, each
//! with its own adapter): [`FrameSource::current_stream`] says which stream
//! the last frame belongs to, [`FrameSource::next_event`] reports connection
//! lifecycle events (turned into [`TickKind::FeedStatus`] ticks for every
//! instrument of the stream, and into the adapter's `on_connect`
//! subscribe), and [`FrameSource::send`] carries the adapter's outgoing
//! messages back to the stream's connection. [`multi::MultiSource`] combines
//! sources (simulators and one WebSocket source) into one.

pub mod binance;
pub mod bybit;
pub mod capture;
pub mod coinbase;
pub mod import;
pub mod multi;
pub mod parse;
pub mod polygon;
pub mod resilience;
pub mod sim;
pub mod ws;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::AdapterKind;
use crate::decimal::DecimalError;
use crate::instruments::{InstrumentId, InstrumentRegistry};
use crate::telemetry::{FeedCounters, StageRecorder};
use crate::tick::{Tick, TickKind, feed_status, flags};

/// What a source produced on one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// A frame was written into the buffer; `recv_ns` is its receive time.
    Frame {
        /// Receive time stamped once per frame (engine clock).
        recv_ns: i64,
    },
    /// Nothing available now; poll again later.
    Idle,
    /// The source has ended (finite capture, message limit reached).
    Done,
}

/// What happened to a stream's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEventKind {
    /// Handshake complete: the stage sends the adapter's `on_connect`
    /// messages (subscribe) and reports [`feed_status::CONNECTED`].
    /// `detail` = connections made so far on this stream (1 = first).
    Connected,
    /// The connection was lost or closed (reconnecting with backoff).
    /// `detail` = consecutive failed attempts so far.
    Disconnected,
    /// No frame within the stale-feed interval; a reconnect is forced.
    /// `detail` = silence in ms.
    Stale,
    /// The circuit breaker opened: no attempts for a while.
    /// `detail` = open period in ms.
    CircuitOpen,
}

/// A connection lifecycle event of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceEvent {
    /// Stream index (the feed's position in the stage's stream list).
    pub stream: u32,
    /// What happened.
    pub kind: SourceEventKind,
    /// Kind-specific detail (see [`SourceEventKind`]).
    pub detail: u64,
}

/// A producer of raw venue frames.
pub trait FrameSource: Send {
    /// Writes the next frame into `buf` (cleared by the caller) if one is
    /// available. Must not block for long: return [`SourcePoll::Idle`].
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll;
    /// Short name for logs (`sim`, `binance-ws`, ...).
    fn name(&self) -> &str;
    /// The stream the last frame returned by `poll_frame` belongs to
    /// (index into the stage's streams). Single-stream sources: 0.
    fn current_stream(&self) -> u32 {
        0
    }
    /// The next pending connection lifecycle event, if any. Sources without
    /// connections have none.
    fn next_event(&mut self) -> Option<SourceEvent> {
        None
    }
    /// Sends text messages (subscribe, auth, replies) on `stream`'s
    /// connection. Never blocks: what the socket does not take now is
    /// buffered and written when it becomes writable. Messages for a stream
    /// that is not connected are dropped (the adapter's `on_connect` runs
    /// again on the next connect). Sources without connections ignore it.
    fn send(&mut self, stream: u32, msgs: &[String]) {
        let _ = (stream, msgs);
    }
}

/// Why a frame could not be decoded. `Copy`, allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not valid JSON.
    Json,
    /// A required field is missing or has the wrong type.
    MissingField(&'static str),
    /// A price or size did not fit the instrument precision or range.
    Decimal(&'static str, DecimalError),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json => write!(f, "frame is not valid JSON"),
            Self::MissingField(k) => write!(f, "required field '{k}' missing or mistyped"),
            Self::Decimal(k, e) => write!(f, "field '{k}': {e}"),
        }
    }
}

/// What a successfully parsed frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Market data: this many ticks were appended (may be 0 when every
    /// symbol in it was unknown). Gap ticks ([`crate::tick::TickKind::Gap`])
    /// an adapter detects are appended too and counted here.
    Data(usize),
    /// A control message (ack, ping, heartbeat, unsupported stream).
    Control,
}

/// What an adapter needs to know to subscribe: built from the feed's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterParams {
    /// Registry venue name the adapter resolves symbols against (`BINANCE`).
    pub venue: String,
    /// Venue symbols to subscribe, as the venue spells them (`BTCUSDT`).
    pub symbols: Vec<String>,
    /// Venue channel names to subscribe (`trade`, `bookTicker`,
    /// `depth@100ms`; `publicTrade`, `orderbook.50`; `market_trades`...).
    /// Empty = the adapter's defaults.
    pub channels: Vec<String>,
    /// API key for venues that authenticate (Polygon), read by the caller
    /// from the environment variable named in config. Never logged.
    pub api_key: Option<String>,
}

/// Turns one venue frame into ticks, and speaks the venue's control
/// protocol (subscribe, auth, keepalive). One implementation per venue file.
pub trait Adapter: Send {
    /// Messages to send right after the WebSocket handshake (subscribe, or
    /// nothing for venues that wait for a status frame first). Called on
    /// every (re)connect, so it is also the resubscribe.
    fn on_connect(&mut self, out: &mut Vec<String>) {
        let _ = out;
    }

    /// Messages the adapter wants sent in reaction to frames it decoded
    /// (e.g. Polygon: `auth` after the `connected` status, then `subscribe`
    /// after `auth_success`). Polled after every decode; drains its queue.
    fn take_outgoing(&mut self, out: &mut Vec<String>) {
        let _ = out;
    }

    /// Application-level keepalive: interval and message (Bybit sends
    /// `{"op":"ping"}` every 20 s). `None` when WebSocket pings suffice.
    fn keepalive(&self) -> Option<(std::time::Duration, String)> {
        None
    }

    /// Decodes `frame`, appending ticks to `out`. Symbols not in the
    /// registry are counted in `counters.unknown_symbols` and skipped.
    ///
    /// # Errors
    /// A malformed frame; the caller counts it and carries on.
    fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        out: &mut Vec<Tick>,
        counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError>;
}

/// Why [`make_adapter`] could not build an adapter.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdapterError {
    /// The adapter kind exists in config but is not built into this binary.
    #[error("adapter '{0}' is not available in this build")]
    Unsupported(&'static str),
}

/// Builds the adapter for `kind`, resolving symbols against `params.venue`
/// in `registry`. The one place that maps config adapter names to code.
///
/// # Errors
/// [`AdapterError::Unsupported`] for a kind not built in (none today).
pub fn make_adapter(
    kind: AdapterKind,
    registry: Arc<InstrumentRegistry>,
    params: &AdapterParams,
) -> Result<Box<dyn Adapter>, AdapterError> {
    Ok(match kind {
        AdapterKind::Binance | AdapterKind::BinanceUsdm | AdapterKind::Sim => {
            Box::new(binance::BinanceAdapter::with_params(registry, params))
        }
        AdapterKind::BybitSpot => Box::new(bybit::BybitAdapter::new(
            registry,
            params,
            bybit::BybitCategory::Spot,
        )),
        AdapterKind::BybitLinear => Box::new(bybit::BybitAdapter::new(
            registry,
            params,
            bybit::BybitCategory::Linear,
        )),
        AdapterKind::Coinbase => Box::new(coinbase::CoinbaseAdapter::new(registry, params)),
        AdapterKind::Polygon => Box::new(polygon::PolygonAdapter::new(registry, params)),
    })
}

/// One feed inside a [`FeedStage`]: its adapter and the instruments whose
/// [`TickKind::FeedStatus`] ticks report its connection state.
pub struct FeedStream {
    /// Feed name (logs).
    pub name: String,
    /// Decoder and control protocol.
    pub adapter: Box<dyn Adapter>,
    /// Instruments served by this feed (status ticks go to each).
    pub instruments: Vec<InstrumentId>,
}

impl std::fmt::Debug for FeedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedStream")
            .field("name", &self.name)
            .field("instruments", &self.instruments.len())
            .finish_non_exhaustive()
    }
}

/// Result of one [`FeedStage::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStep {
    /// This many ticks are ready in [`FeedStage::ticks`].
    Ticks(usize),
    /// No frame was available.
    Idle,
    /// The source ended.
    Done,
}

/// Initial capacity of the per-frame tick buffer (a depth snapshot may
/// exceed it once; the buffer then keeps the larger capacity).
pub const TICK_BUF_CAPACITY: usize = 4096;

/// Samples of decode errors logged per second at most.
const ERROR_LOG_PER_SEC: u32 = 5;

/// Source + adapters, driven by the feed thread.
pub struct FeedStage {
    source: Box<dyn FrameSource>,
    streams: Vec<FeedStream>,
    /// Per stream: connected at least once (the next connect is a reconnect).
    connected_once: Vec<bool>,
    clock: Clock,
    frame: Vec<u8>,
    ticks: Vec<Tick>,
    outgoing: Vec<String>,
    err_window_start_ns: i64,
    err_logged: u32,
}

impl std::fmt::Debug for FeedStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedStage")
            .field("source", &self.source.name())
            .finish_non_exhaustive()
    }
}

impl FeedStage {
    /// Pairs a single-stream source with its adapter (no status ticks: no
    /// instrument list). All buffers are allocated here.
    pub fn new(source: Box<dyn FrameSource>, adapter: Box<dyn Adapter>, clock: Clock) -> Self {
        let name = source.name().to_string();
        Self::with_streams(
            source,
            vec![FeedStream {
                name,
                adapter,
                instruments: Vec::new(),
            }],
            clock,
        )
    }

    /// A source carrying several streams; `streams[i]` decodes the frames
    /// the source tags with stream `i`. All buffers are allocated here.
    ///
    /// # Panics
    /// If `streams` is empty (a constructor misuse).
    pub fn with_streams(
        source: Box<dyn FrameSource>,
        streams: Vec<FeedStream>,
        clock: Clock,
    ) -> Self {
        assert!(!streams.is_empty(), "FeedStage needs at least one stream");
        let status_max: usize = streams.iter().map(|s| s.instruments.len()).sum();
        Self {
            source,
            connected_once: vec![false; streams.len()],
            streams,
            clock,
            frame: Vec::with_capacity(64 * 1024),
            ticks: Vec::with_capacity(TICK_BUF_CAPACITY.max(status_max * 4)),
            outgoing: Vec::with_capacity(16),
            err_window_start_ns: 0,
            err_logged: 0,
        }
    }

    /// Polls the source once and decodes the frame, if any, after turning
    /// pending connection events into status ticks and subscribes. Decode
    /// time (the adapter's work on one frame) is recorded in `decode_lat`;
    /// errors are counted (and a few per second logged) and the stage
    /// carries on.
    pub fn step(&mut self, counters: &FeedCounters, decode_lat: &mut StageRecorder) -> FeedStep {
        self.frame.clear();
        self.ticks.clear();
        while let Some(ev) = self.source.next_event() {
            self.on_event(ev, counters);
        }
        let status = self.ticks.len();
        let recv_ns = match self.source.poll_frame(&mut self.frame, &self.clock) {
            SourcePoll::Frame { recv_ns } => recv_ns,
            SourcePoll::Idle if status > 0 => return FeedStep::Ticks(status),
            SourcePoll::Idle => return FeedStep::Idle,
            SourcePoll::Done if status > 0 => return FeedStep::Ticks(status),
            SourcePoll::Done => return FeedStep::Done,
        };
        counters.frames.inc();
        let stream = self.source.current_stream() as usize;
        let Some(fs) = self.streams.get_mut(stream) else {
            // A source tagged a stream the stage does not have: a wiring
            // bug, counted rather than decoded with the wrong adapter.
            counters.decode_errors.inc();
            return FeedStep::Ticks(status);
        };
        let t0 = self.clock.now_ns();
        let res = fs
            .adapter
            .decode(&self.frame, recv_ns, &mut self.ticks, counters);
        fs.adapter.take_outgoing(&mut self.outgoing);
        if !self.outgoing.is_empty() {
            self.flush_outgoing(stream as u32);
        }
        match res {
            Ok(Decoded::Data(n)) => {
                decode_lat.record(self.clock.now_ns() - t0);
                if let Some(last) = self.ticks.last_mut() {
                    last.flags |= flags::LAST_IN_FRAME;
                }
                counters.data_frames.inc();
                counters.ticks.add(n as u64);
                FeedStep::Ticks(self.ticks.len())
            }
            Ok(Decoded::Control) => {
                counters.control.inc();
                FeedStep::Ticks(status)
            }
            Err(e) => {
                match e {
                    DecodeError::Decimal(..) => counters.decimal_errors.inc(),
                    _ => counters.decode_errors.inc(),
                }
                self.ticks.truncate(status);
                self.log_error(e, recv_ns);
                FeedStep::Ticks(status)
            }
        }
    }

    /// Connection event → counters, status ticks, subscribe on connect.
    #[inline(never)]
    #[cold]
    fn on_event(&mut self, ev: SourceEvent, counters: &FeedCounters) {
        let i = ev.stream as usize;
        let Some(fs) = self.streams.get_mut(i) else {
            return;
        };
        let code = match ev.kind {
            SourceEventKind::Connected => {
                if std::mem::replace(&mut self.connected_once[i], true) {
                    counters.reconnects.inc();
                }
                fs.adapter.on_connect(&mut self.outgoing);
                tracing::info!(feed = %fs.name, connection = ev.detail, "feed connected");
                feed_status::CONNECTED
            }
            SourceEventKind::Disconnected => {
                tracing::warn!(feed = %fs.name, failed_attempts = ev.detail, "feed disconnected; reconnecting with backoff");
                feed_status::DISCONNECTED
            }
            SourceEventKind::Stale => {
                counters.stale.inc();
                tracing::warn!(feed = %fs.name, silent_ms = ev.detail, "stale feed; forcing a reconnect");
                feed_status::STALE
            }
            SourceEventKind::CircuitOpen => {
                counters.circuit_open.inc();
                tracing::warn!(feed = %fs.name, open_ms = ev.detail, "circuit breaker open; not retrying for a while");
                feed_status::CIRCUIT_OPEN
            }
        };
        let now = self.clock.now_ns();
        counters.ticks.add(fs.instruments.len() as u64);
        for &inst in &fs.instruments {
            self.ticks.push(Tick {
                ts_event_ns: now,
                ts_recv_ns: now,
                size: ev.detail.min(i64::MAX as u64) as i64,
                id: code,
                instrument: inst,
                kind: TickKind::FeedStatus as u8,
                flags: flags::NO_EVENT_TIME,
                ..Tick::default()
            });
        }
        if !self.outgoing.is_empty() {
            self.flush_outgoing(ev.stream);
        }
    }

    #[inline(never)]
    #[cold]
    fn flush_outgoing(&mut self, stream: u32) {
        self.source.send(stream, &self.outgoing);
        self.outgoing.clear();
    }

    #[inline(never)]
    #[cold]
    fn log_error(&mut self, e: DecodeError, now_ns: i64) {
        if now_ns - self.err_window_start_ns > 1_000_000_000 {
            self.err_window_start_ns = now_ns;
            self.err_logged = 0;
        }
        if self.err_logged < ERROR_LOG_PER_SEC {
            self.err_logged += 1;
            let sample = String::from_utf8_lossy(&self.frame[..self.frame.len().min(200)]);
            tracing::warn!(source = self.source.name(), error = %e, frame = %sample, "dropped a malformed frame (counted)");
        }
    }

    /// The ticks decoded by the last successful [`step`](Self::step).
    pub fn ticks(&self) -> &[Tick] {
        &self.ticks
    }
}
