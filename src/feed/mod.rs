//! Feed stage: frame sources and venue adapters → normalized [`Tick`]s.
//!
//! A [`FrameSource`] yields raw venue frames (the built-in simulator, later
//! WebSocket connections and capture readers); an [`Adapter`] decodes one
//! frame into zero or more ticks. [`FeedStage`] pairs them and is what the
//! pipeline's feed thread drives with [`FeedStage::step`]. After warm-up a
//! step does not allocate: frame, parse and tick buffers are reused.

pub mod binance;
pub mod bybit;
pub mod capture;
pub mod coinbase;
pub mod import;
pub mod parse;
pub mod polygon;
pub mod sim;

use crate::clock::Clock;
use crate::decimal::DecimalError;
use crate::telemetry::{FeedCounters, StageRecorder};
use crate::tick::Tick;

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

/// A producer of raw venue frames.
pub trait FrameSource: Send {
    /// Writes the next frame into `buf` (cleared by the caller) if one is
    /// available. Must not block for long: return [`SourcePoll::Idle`].
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll;
    /// Short name for logs (`sim`, `binance-ws`, ...).
    fn name(&self) -> &str;
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

/// Source + adapter, driven by the feed thread.
pub struct FeedStage {
    source: Box<dyn FrameSource>,
    adapter: Box<dyn Adapter>,
    clock: Clock,
    frame: Vec<u8>,
    ticks: Vec<Tick>,
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
    /// Pairs a source with its adapter. All buffers are allocated here.
    pub fn new(source: Box<dyn FrameSource>, adapter: Box<dyn Adapter>, clock: Clock) -> Self {
        Self {
            source,
            adapter,
            clock,
            frame: Vec::with_capacity(64 * 1024),
            ticks: Vec::with_capacity(TICK_BUF_CAPACITY),
            err_window_start_ns: 0,
            err_logged: 0,
        }
    }

    /// Polls the source once and decodes the frame, if any. Decode time (the
    /// adapter's work on one frame) is recorded in `decode_lat`; errors are counted (and a few per second
    /// logged) and the stage carries on.
    pub fn step(&mut self, counters: &FeedCounters, decode_lat: &mut StageRecorder) -> FeedStep {
        self.frame.clear();
        self.ticks.clear();
        let recv_ns = match self.source.poll_frame(&mut self.frame, &self.clock) {
            SourcePoll::Frame { recv_ns } => recv_ns,
            SourcePoll::Idle => return FeedStep::Idle,
            SourcePoll::Done => return FeedStep::Done,
        };
        counters.frames.inc();
        let t0 = self.clock.now_ns();
        match self
            .adapter
            .decode(&self.frame, recv_ns, &mut self.ticks, counters)
        {
            Ok(Decoded::Data(n)) => {
                decode_lat.record(self.clock.now_ns() - t0);
                if let Some(last) = self.ticks.last_mut() {
                    last.flags |= crate::tick::flags::LAST_IN_FRAME;
                }
                counters.ticks.add(n as u64);
                FeedStep::Ticks(n)
            }
            Ok(Decoded::Control) => {
                counters.control.inc();
                FeedStep::Ticks(0)
            }
            Err(e) => {
                match e {
                    DecodeError::Decimal(..) => counters.decimal_errors.inc(),
                    _ => counters.decode_errors.inc(),
                }
                self.ticks.clear();
                self.log_error(e, recv_ns);
                FeedStep::Ticks(0)
            }
        }
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
