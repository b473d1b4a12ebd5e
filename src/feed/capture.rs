//! Capture readers: replay recorded venue traffic frame by frame.
//!
//! [`CaptureReader`] is a [`FrameSource`] over a recorded file; each frame
//! comes with the receive time the recorder stamped (except `frames`,
//! which has none). Formats ([`CaptureFormat`]):
//!
//! | format | line layout | receive time |
//! |---|---|---|
//! | `hftbacktest` | `<recv_ns> <frame>` (the hftbacktest collector; usually gzip) | the integer ns |
//! | `cryptofeed` | cryptofeed "ws" text capture: header `<url> <-> <epoch_s>`, sent lines `<url> <- <epoch_s>: <json>` (skipped), received `<epoch_s>: <frame>`, empty lines (skipped) | float seconds with 2–7 decimals, converted to ns exactly by [`parse_epoch_secs_ns`] (no `f64`) |
//! | `cryptofeed-jsonl` | cryptofeed corpus v2: one JSON object per line; only `"t":"recv"` lines are frames, `data` is the frame as a JSON string (decoded here, so the adapter gets the raw frame) | `ts`, read from the line's text exactly |
//! | `frames` | one raw frame per line | now (engine clock) |
//! | `tardis-csv` | Tardis.dev normalized CSV: not frames, see [`TardisCsvReader`] | `local_timestamp` (µs) |
//!
//! Any file starting with the gzip magic bytes is decompressed on the fly
//! (multi-member gzip included), whatever the format.
//!
//! A cryptofeed JSONL corpus may interleave several connections (Bybit spot
//! and linear). [`CaptureOptions::conn_filter`] keeps only the connections
//! whose `connect` address contains a given text, so each adapter sees the
//! frames of its own endpoint.
//!
//! Lines that are not frames (headers, sent messages, other connections)
//! are counted in [`CaptureStats::skipped`]; lines that look like frames
//! but cannot be split (bad timestamp) in [`CaptureStats::malformed`].
//! After the first buffers have grown, reading a line does not allocate
//! (the JSONL connection table allocates once per `connect` line).
//!
//! [`capture_symbols`] is a cheap first pass that lists the venue symbols
//! in a capture, so `journal import` can build a registry without config.
//!
//! # Tardis CSV: ticks, not frames
//! Tardis CSV is already normalized across exchanges, so instead of
//! synthesizing venue frames (which would fit one venue's wire format and
//! lose Tardis's µs timestamps) [`TardisCsvReader`] yields [`Tick`]s
//! directly: `timestamp` → `ts_event_ns`, `local_timestamp` → `ts_recv_ns`,
//! trades from `id,side,price,amount` (side is the aggressor), quotes from
//! `ask_amount,ask_price,bid_price,bid_amount` (empty = no level = 0,
//! `id` 0: Tardis gives no update id). No sequence-gap detection.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::parse::{TapeParser, get_str, id_or_hash};
use super::{DecodeError, FrameSource, SourcePoll};
use crate::clock::Clock;
use crate::decimal::parse_scaled;
use crate::instruments::{InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, flags};

/// A recorded-capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// `<recv_ns> <frame>` lines (hftbacktest collector).
    Hftbacktest,
    /// cryptofeed "ws" text capture (`<epoch_s>: <frame>`).
    Cryptofeed,
    /// cryptofeed corpus v2 JSONL.
    CryptofeedJsonl,
    /// Tardis.dev normalized CSV (trades or quotes).
    TardisCsv,
    /// One raw frame per line.
    Frames,
}

impl CaptureFormat {
    /// Every format, in CLI order.
    pub const ALL: [Self; 5] = [
        Self::Hftbacktest,
        Self::Cryptofeed,
        Self::CryptofeedJsonl,
        Self::TardisCsv,
        Self::Frames,
    ];

    /// The CLI name (`hftbacktest`, `cryptofeed`, `cryptofeed-jsonl`,
    /// `tardis-csv`, `frames`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hftbacktest => "hftbacktest",
            Self::Cryptofeed => "cryptofeed",
            Self::CryptofeedJsonl => "cryptofeed-jsonl",
            Self::TardisCsv => "tardis-csv",
            Self::Frames => "frames",
        }
    }

    /// Parses a CLI name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
    }

    /// Whether the format yields raw frames (all but `tardis-csv`).
    pub fn has_frames(self) -> bool {
        self != Self::TardisCsv
    }
}

impl std::fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("cannot open capture '{path}': {err} (check the path and permissions)")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error (part of the message, not a separate source).
        err: io::Error,
    },
    /// Reading failed midway (truncated gzip, I/O error).
    #[error("reading capture '{path}' failed after {lines} lines: {err} (is the file truncated?)")]
    Read {
        /// The file.
        path: PathBuf,
        /// Lines read before the failure.
        lines: u64,
        /// The error (part of the message, not a separate source).
        err: io::Error,
    },
    /// The CSV header is not a Tardis trades or quotes header.
    #[error(
        "'{path}' is not a Tardis trades or quotes CSV: the header must name exchange, symbol, timestamp, local_timestamp and either id, side, price, amount or ask_amount, ask_price, bid_price, bid_amount (got '{header}')"
    )]
    TardisHeader {
        /// The file.
        path: PathBuf,
        /// The header line found.
        header: String,
    },
    /// A frame reader was asked for a format that has no frames.
    #[error("format '{0}' yields ticks, not frames; use TardisCsvReader")]
    NotFrames(CaptureFormat),
}

/// Reader options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureOptions {
    /// `cryptofeed-jsonl` only: keep frames of connections whose `connect`
    /// address contains this text (e.g. `/linear`). Connections without a
    /// `connect` line are kept. `None` keeps everything.
    pub conn_filter: Option<String>,
}

/// What a reader has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Lines read.
    pub lines: u64,
    /// Frames (or Tardis rows) yielded.
    pub frames: u64,
    /// Lines that are not frames: headers, sent messages, empty lines,
    /// other record types, filtered-out connections.
    pub skipped: u64,
    /// Lines that should have been frames but could not be split (bad
    /// receive time, missing `data`).
    pub malformed: u64,
}

/// Counts bytes read from the underlying file (for progress bars).
struct CountingRead<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A capture file opened for line reading.
struct Opened {
    input: Box<dyn BufRead + Send>,
    bytes: Arc<AtomicU64>,
    len: u64,
}

/// Opens `path` as buffered lines, decompressing gzip if the file starts
/// with the gzip magic.
fn open_lines(path: &Path) -> Result<Opened, CaptureError> {
    let open_err = |err| CaptureError::Open {
        path: path.to_path_buf(),
        err,
    };
    let file = File::open(path).map_err(open_err)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let count = Arc::new(AtomicU64::new(0));
    let mut buffered = BufReader::with_capacity(
        256 * 1024,
        CountingRead {
            inner: file,
            count: count.clone(),
        },
    );
    let is_gz = buffered
        .fill_buf()
        .map_err(open_err)?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn BufRead + Send> = if is_gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    Ok(Opened {
        input,
        bytes: count,
        len,
    })
}

/// Reads one line into `line` (cleared first) without its `\n`/`\r\n`.
/// `Ok(false)` at end of input.
fn read_line(input: &mut dyn BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(true)
}

/// Parses decimal epoch seconds (`1628952395.799805`) to ns exactly: integer
/// arithmetic only, fraction digits beyond 9 truncated. `None` when `s` is
/// not `digits[.digits]`.
///
/// ```
/// use tickwire::feed::capture::parse_epoch_secs_ns;
/// assert_eq!(parse_epoch_secs_ns(b"1628952397.7059772"), Some(1_628_952_397_705_977_200));
/// ```
pub fn parse_epoch_secs_ns(s: &[u8]) -> Option<i64> {
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[][..]),
    };
    if int.is_empty() || int.len() > 11 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut secs = 0i64;
    for &c in int {
        secs = secs * 10 + i64::from(c - b'0');
    }
    let mut ns = 0i64;
    for k in 0..9 {
        ns = ns * 10 + frac.get(k).map_or(0, |c| i64::from(c - b'0'));
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Parses a non-negative decimal integer (ASCII digits only).
fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0i64, |a, &c| {
        a.checked_mul(10)?.checked_add(i64::from(c - b'0'))
    })
}

/// The raw text of the top-level number `"key":<number>` in a JSON line.
/// Inside JSON strings every `"` is escaped, so the pattern cannot match
/// inside the embedded frame.
fn raw_number_field<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let pos = line.windows(key.len()).position(|w| w == key)?;
    let rest = &line[pos + key.len()..];
    let rest = &rest[rest.iter().position(|c| !c.is_ascii_whitespace())?..];
    let end = rest
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// State of the cryptofeed JSONL reader.
struct JsonlState {
    parser: TapeParser,
    filter: Option<String>,
    excluded: HashSet<String>,
}

/// A [`FrameSource`] over a recorded capture file (any format except
/// `tardis-csv`).
pub struct CaptureReader {
    format: CaptureFormat,
    input: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    jsonl: Option<JsonlState>,
    stats: CaptureStats,
    bytes: Arc<AtomicU64>,
    total_bytes: u64,
    error: Option<io::Error>,
    path: PathBuf,
    name: String,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("path", &self.path)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl CaptureReader {
    /// Opens a capture file.
    ///
    /// # Errors
    /// The file cannot be opened, or `format` is `tardis-csv`.
    pub fn open(
        path: &Path,
        format: CaptureFormat,
        opts: &CaptureOptions,
    ) -> Result<Self, CaptureError> {
        if !format.has_frames() {
            return Err(CaptureError::NotFrames(format));
        }
        let o = open_lines(path)?;
        let mut r = Self::from_reader(o.input, format, opts);
        r.bytes = o.bytes;
        r.total_bytes = o.len;
        r.path = path.to_path_buf();
        r.name = format!("capture:{}", format.name());
        Ok(r)
    }

    /// A reader over already opened (and decompressed) lines, e.g. an
    /// in-memory capture in tests.
    pub fn from_reader(
        input: Box<dyn BufRead + Send>,
        format: CaptureFormat,
        opts: &CaptureOptions,
    ) -> Self {
        let jsonl = (format == CaptureFormat::CryptofeedJsonl).then(|| JsonlState {
            parser: TapeParser::new(256 * 1024),
            filter: opts.conn_filter.clone(),
            excluded: HashSet::new(),
        });
        Self {
            format,
            input,
            line: Vec::with_capacity(64 * 1024),
            jsonl,
            stats: CaptureStats::default(),
            bytes: Arc::new(AtomicU64::new(0)),
            total_bytes: 0,
            error: None,
            path: PathBuf::new(),
            name: format!("capture:{}", format.name()),
        }
    }

    /// Lines, frames, skipped and malformed lines so far.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// Bytes read from the file so far (compressed bytes for gzip), shared
    /// so a progress bar can watch it from elsewhere.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// Size of the file in bytes (0 for [`from_reader`](Self::from_reader)).
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The I/O error that ended the capture early, if any. A reader that
    /// hit an error returns [`SourcePoll::Done`].
    pub fn take_error(&mut self) -> Option<CaptureError> {
        self.error.take().map(|err| CaptureError::Read {
            path: self.path.clone(),
            lines: self.stats.lines,
            err,
        })
    }

    /// Splits the current line into `buf`; the receive time, or `None` when
    /// the line is not a frame (stats updated).
    fn frame_from_line(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> Option<i64> {
        let line = &self.line[..];
        if line.iter().all(u8::is_ascii_whitespace) {
            self.stats.skipped += 1;
            return None;
        }
        match self.format {
            CaptureFormat::Hftbacktest => {
                let sp = line.iter().position(|&c| c == b' ');
                match sp.and_then(|p| parse_int(&line[..p]).map(|ns| (p, ns))) {
                    Some((p, ns)) => {
                        buf.extend_from_slice(&line[p + 1..]);
                        Some(ns)
                    }
                    None => {
                        self.stats.malformed += 1;
                        None
                    }
                }
            }
            CaptureFormat::Cryptofeed => {
                if !line[0].is_ascii_digit() {
                    // Header `<url> <-> <ts>` or sent line `<url> <- <ts>: ..`.
                    self.stats.skipped += 1;
                    return None;
                }
                let sep = line.windows(2).position(|w| w == b": ");
                match sep.and_then(|p| parse_epoch_secs_ns(&line[..p]).map(|ns| (p, ns))) {
                    Some((p, ns)) => {
                        buf.extend_from_slice(&line[p + 2..]);
                        Some(ns)
                    }
                    None => {
                        self.stats.malformed += 1;
                        None
                    }
                }
            }
            CaptureFormat::Frames => {
                buf.extend_from_slice(line);
                Some(clock.now_ns())
            }
            CaptureFormat::CryptofeedJsonl => {
                let st = self.jsonl.as_mut()?;
                let ts = raw_number_field(line, b"\"ts\":").and_then(parse_epoch_secs_ns);
                let excluded = &mut st.excluded;
                let filter = st.filter.as_deref();
                let parsed = st
                    .parser
                    .parse(line, |v| jsonl_record(v, filter, excluded, buf));
                match parsed {
                    Ok(JsonlLine::Frame) => match ts {
                        Some(ts) => Some(ts),
                        None => {
                            buf.clear();
                            self.stats.malformed += 1;
                            None
                        }
                    },
                    Ok(JsonlLine::Skip) => {
                        self.stats.skipped += 1;
                        None
                    }
                    Ok(JsonlLine::Malformed) | Err(_) => {
                        self.stats.malformed += 1;
                        None
                    }
                }
            }
            CaptureFormat::TardisCsv => None,
        }
    }
}

enum JsonlLine {
    Frame,
    Skip,
    Malformed,
}

fn jsonl_record(
    v: Value<'_, '_>,
    filter: Option<&str>,
    excluded: &mut HashSet<String>,
    buf: &mut Vec<u8>,
) -> JsonlLine {
    let Ok(t) = get_str(&v, "t") else {
        return JsonlLine::Malformed;
    };
    let conn = v.get("conn").and_then(|c| c.into_string()).unwrap_or("");
    match t {
        "connect" => {
            if let Some(f) = filter {
                let addr = v.get("addr").and_then(|a| a.into_string()).unwrap_or("");
                if !addr.contains(f) {
                    excluded.insert(conn.to_string());
                }
            }
            JsonlLine::Skip
        }
        "recv" => {
            if excluded.contains(conn) {
                return JsonlLine::Skip;
            }
            match v.get("data").and_then(|d| d.into_string()) {
                Some(d) => {
                    buf.extend_from_slice(d.as_bytes());
                    JsonlLine::Frame
                }
                None => JsonlLine::Malformed,
            }
        }
        _ => JsonlLine::Skip,
    }
}

impl FrameSource for CaptureReader {
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll {
        loop {
            match read_line(&mut *self.input, &mut self.line) {
                Ok(true) => {}
                Ok(false) => return SourcePoll::Done,
                Err(e) => {
                    self.error = Some(e);
                    return SourcePoll::Done;
                }
            }
            self.stats.lines += 1;
            buf.clear();
            if let Some(recv_ns) = self.frame_from_line(buf, clock) {
                self.stats.frames += 1;
                return SourcePoll::Frame { recv_ns };
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Where a venue puts its symbol in frames, for [`capture_symbols`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKey {
    /// The string value of this key, anywhere in the frame (`"s"`,
    /// `"product_id"`, `"sym"`).
    Value(&'static str),
    /// The part after the last `.` of this key's value (`"topic"` →
    /// `publicTrade.BTCUSDT` → `BTCUSDT`).
    LastDotPart(&'static str),
}

fn collect_symbols(v: Value<'_, '_>, keys: &[SymbolKey], out: &mut BTreeSet<String>) {
    if let Some(obj) = v.as_object() {
        for (k, val) in obj.iter() {
            if let Some(s) = val.into_string() {
                for key in keys {
                    let sym = match key {
                        SymbolKey::Value(name) if *name == k => Some(s),
                        SymbolKey::LastDotPart(name) if *name == k => s.rsplit('.').next(),
                        _ => None,
                    };
                    if let Some(sym) = sym.filter(|s| !s.is_empty()) {
                        if !out.contains(sym) {
                            out.insert(sym.to_ascii_uppercase());
                        }
                    }
                }
            } else {
                collect_symbols(val, keys, out);
            }
        }
    } else if let Some(arr) = v.as_array() {
        for val in arr.iter() {
            collect_symbols(val, keys, out);
        }
    }
}

/// The set of venue symbols (upper case) in a capture: a first pass over
/// the file reading the frames' symbol fields (`keys`), or the `symbol`
/// column of a Tardis CSV. Frames that are not JSON are skipped.
///
/// # Errors
/// The file cannot be opened or read, or a Tardis header is wrong.
pub fn capture_symbols(
    path: &Path,
    format: CaptureFormat,
    opts: &CaptureOptions,
    keys: &[SymbolKey],
) -> Result<BTreeSet<String>, CaptureError> {
    let mut out = BTreeSet::new();
    if format == CaptureFormat::TardisCsv {
        let mut r = TardisCsvReader::open(path)?;
        while let Some(sym) = r.next_symbol() {
            if !out.contains(sym) {
                out.insert(sym.to_ascii_uppercase());
            }
        }
        return match r.take_error() {
            Some(e) => Err(e),
            None => Ok(out),
        };
    }
    let mut r = CaptureReader::open(path, format, opts)?;
    let clock = Clock::new();
    let mut frame = Vec::with_capacity(64 * 1024);
    let mut parser = TapeParser::new(256 * 1024);
    while let SourcePoll::Frame { .. } = r.poll_frame(&mut frame, &clock) {
        let _ = parser.parse(&frame, |v| collect_symbols(v, keys, &mut out));
    }
    match r.take_error() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Which Tardis CSV a file is, with its column indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TardisKind {
    /// `id, side, price, amount`.
    Trades {
        id: usize,
        side: usize,
        price: usize,
        amount: usize,
    },
    /// `ask_amount, ask_price, bid_price, bid_amount`.
    Quotes {
        ask_amount: usize,
        ask_price: usize,
        bid_price: usize,
        bid_amount: usize,
    },
}

/// Result of one [`TardisCsvReader::next_tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TardisPoll {
    /// A tick.
    Tick(Tick),
    /// The row's symbol is not in the registry (counted in
    /// `unknown_symbols`).
    Unknown,
    /// The row could not be decoded (counted by the caller).
    Error(DecodeError),
    /// End of file (or an I/O error: see [`TardisCsvReader::take_error`]).
    Done,
}

/// Maximum columns in a Tardis CSV row.
const MAX_COLS: usize = 16;

/// Reads Tardis.dev normalized `trades` or `quotes` CSV files as ticks.
pub struct TardisCsvReader {
    input: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    kind: TardisKind,
    symbol: usize,
    timestamp: usize,
    local_timestamp: usize,
    stats: CaptureStats,
    bytes: Arc<AtomicU64>,
    total_bytes: u64,
    error: Option<io::Error>,
    path: PathBuf,
}

impl std::fmt::Debug for TardisCsvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TardisCsvReader")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Splits a CSV line (no quoting: Tardis fields never contain commas).
fn split_csv(line: &[u8]) -> ([&[u8]; MAX_COLS], usize) {
    let mut cols: [&[u8]; MAX_COLS] = [&[]; MAX_COLS];
    let mut n = 0;
    for f in line.split(|&c| c == b',') {
        if n == MAX_COLS {
            return (cols, MAX_COLS + 1);
        }
        cols[n] = f;
        n += 1;
    }
    (cols, n)
}

impl TardisCsvReader {
    /// Opens a Tardis trades or quotes CSV (gzip or plain) and reads its
    /// header.
    ///
    /// # Errors
    /// The file cannot be opened or read, or the header is not a Tardis
    /// trades/quotes header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let Opened {
            mut input,
            bytes,
            len: total,
        } = open_lines(path)?;
        let mut line = Vec::with_capacity(4096);
        let got = read_line(&mut *input, &mut line).map_err(|err| CaptureError::Read {
            path: path.to_path_buf(),
            lines: 0,
            err,
        })?;
        let header = String::from_utf8_lossy(&line).into_owned();
        let bad = || CaptureError::TardisHeader {
            path: path.to_path_buf(),
            header: header.clone(),
        };
        if !got {
            return Err(bad());
        }
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let col = |n: &str| names.iter().position(|c| *c == n);
        let (Some(symbol), Some(timestamp), Some(local_timestamp)) =
            (col("symbol"), col("timestamp"), col("local_timestamp"))
        else {
            return Err(bad());
        };
        let kind = if let (Some(id), Some(side), Some(price), Some(amount)) =
            (col("id"), col("side"), col("price"), col("amount"))
        {
            TardisKind::Trades {
                id,
                side,
                price,
                amount,
            }
        } else if let (Some(ask_amount), Some(ask_price), Some(bid_price), Some(bid_amount)) = (
            col("ask_amount"),
            col("ask_price"),
            col("bid_price"),
            col("bid_amount"),
        ) {
            TardisKind::Quotes {
                ask_amount,
                ask_price,
                bid_price,
                bid_amount,
            }
        } else {
            return Err(bad());
        };
        if names.len() > MAX_COLS {
            return Err(bad());
        }
        Ok(Self {
            input,
            line,
            kind,
            symbol,
            timestamp,
            local_timestamp,
            stats: CaptureStats {
                lines: 1,
                skipped: 1,
                ..CaptureStats::default()
            },
            bytes,
            total_bytes: total,
            error: None,
            path: path.to_path_buf(),
        })
    }

    /// Whether the file holds trades (else quotes).
    pub fn is_trades(&self) -> bool {
        matches!(self.kind, TardisKind::Trades { .. })
    }

    /// Lines, rows, skipped and malformed lines so far.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// Bytes read from the file so far (shared, for progress bars).
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// Size of the file in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The I/O error that ended the file early, if any.
    pub fn take_error(&mut self) -> Option<CaptureError> {
        self.error.take().map(|err| CaptureError::Read {
            path: self.path.clone(),
            lines: self.stats.lines,
            err,
        })
    }

    /// Reads the next non-empty line; `false` at the end.
    fn next_line(&mut self) -> bool {
        loop {
            match read_line(&mut *self.input, &mut self.line) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    self.error = Some(e);
                    return false;
                }
            }
            self.stats.lines += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                self.stats.skipped += 1;
                continue;
            }
            return true;
        }
    }

    /// The next row's symbol (first pass for [`capture_symbols`]).
    pub fn next_symbol(&mut self) -> Option<&str> {
        if !self.next_line() {
            return None;
        }
        self.stats.frames += 1;
        let (cols, n) = split_csv(&self.line);
        let s = cols.get(self.symbol).filter(|_| self.symbol < n)?;
        std::str::from_utf8(s).ok()
    }

    /// Decodes the next row into a tick for `venue`'s instrument in
    /// `registry`. Allocation-free.
    pub fn next_tick(
        &mut self,
        registry: &InstrumentRegistry,
        venue: Option<VenueId>,
        counters: &FeedCounters,
    ) -> TardisPoll {
        if !self.next_line() {
            return TardisPoll::Done;
        }
        self.stats.frames += 1;
        let (cols, n) = split_csv(&self.line);
        let field = |i: usize, k: &'static str| -> Result<&str, DecodeError> {
            if i >= n {
                return Err(DecodeError::MissingField(k));
            }
            std::str::from_utf8(cols[i]).map_err(|_| DecodeError::MissingField(k))
        };
        let row = || -> Result<Option<Tick>, DecodeError> {
            let sym = field(self.symbol, "symbol")?;
            let Some(inst) = venue
                .and_then(|v| registry.lookup(v, sym.as_bytes()))
                .and_then(|id| registry.get(id))
            else {
                counters.unknown_symbols.inc();
                return Ok(None);
            };
            let us = |i: usize, k: &'static str| -> Result<i64, DecodeError> {
                parse_int(field(i, k)?.as_bytes())
                    .and_then(|v| v.checked_mul(1000))
                    .ok_or(DecodeError::MissingField(k))
            };
            let ts = us(self.timestamp, "timestamp")?;
            let recv = us(self.local_timestamp, "local_timestamp")?;
            let px = |i: usize, k: &'static str| -> Result<i64, DecodeError> {
                let s = field(i, k)?;
                if s.is_empty() {
                    return Ok(0);
                }
                parse_scaled(s, inst.price_precision).map_err(|e| DecodeError::Decimal(k, e))
            };
            let sz = |i: usize, k: &'static str| -> Result<i64, DecodeError> {
                let s = field(i, k)?;
                if s.is_empty() {
                    return Ok(0);
                }
                parse_scaled(s, inst.size_precision).map_err(|e| DecodeError::Decimal(k, e))
            };
            let tick = match self.kind {
                TardisKind::Trades {
                    id,
                    side,
                    price,
                    amount,
                } => {
                    let side = match field(side, "side")? {
                        "buy" => Side::Buy,
                        "sell" => Side::Sell,
                        _ => Side::None,
                    };
                    let p = px(price, "price")?;
                    let q = sz(amount, "amount")?;
                    let (tid, hashed) = id_or_hash(field(id, "id")?);
                    let mut t = Tick::trade(inst.id, ts, recv, p, q, side, tid);
                    if hashed {
                        t.flags |= flags::ID_HASHED;
                    }
                    if p <= 0 || q < 0 {
                        t.flags |= flags::SUSPECT;
                    }
                    t
                }
                TardisKind::Quotes {
                    ask_amount,
                    ask_price,
                    bid_price,
                    bid_amount,
                } => {
                    let bid = px(bid_price, "bid_price")?;
                    let ask = px(ask_price, "ask_price")?;
                    let mut t = Tick::quote(
                        inst.id,
                        ts,
                        recv,
                        bid,
                        sz(bid_amount, "bid_amount")?,
                        ask,
                        sz(ask_amount, "ask_amount")?,
                        0,
                    );
                    if bid > ask && ask > 0 {
                        t.flags |= flags::SUSPECT;
                    }
                    t
                }
            };
            Ok(Some(tick))
        };
        match row() {
            Ok(Some(t)) => TardisPoll::Tick(t),
            Ok(None) => TardisPoll::Unknown,
            Err(e) => TardisPoll::Error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn reader(text: &str, format: CaptureFormat, opts: &CaptureOptions) -> CaptureReader {
        CaptureReader::from_reader(
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            format,
            opts,
        )
    }

    fn frames(r: &mut CaptureReader) -> Vec<(i64, String)> {
        let clock = Clock::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let SourcePoll::Frame { recv_ns } = r.poll_frame(&mut buf, &clock) {
            out.push((recv_ns, String::from_utf8(buf.clone()).unwrap()));
        }
        out
    }

    #[test]
    fn epoch_seconds_are_exact() {
        assert_eq!(
            parse_epoch_secs_ns(b"1628952395.799805"),
            Some(1_628_952_395_799_805_000)
        );
        assert_eq!(
            parse_epoch_secs_ns(b"1626992741.06217"),
            Some(1_626_992_741_062_170_000)
        );
        assert_eq!(
            parse_epoch_secs_ns(b"1626992741.3105128"),
            Some(1_626_992_741_310_512_800)
        );
        assert_eq!(
            parse_epoch_secs_ns(b"1618678132.83"),
            Some(1_618_678_132_830_000_000)
        );
        assert_eq!(
            parse_epoch_secs_ns(b"1618678132"),
            Some(1_618_678_132_000_000_000)
        );
        assert_eq!(
            parse_epoch_secs_ns(b"1.1234567891"),
            Some(1_123_456_789),
            "beyond ns truncated"
        );
        for bad in [
            &b""[..],
            b".5",
            b"1e9",
            b"-1.5",
            b"12a.5",
            b"1.2.3",
            b"999999999999",
        ] {
            assert_eq!(parse_epoch_secs_ns(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hftbacktest_lines() {
        let text =
            "1723161254087896568 {\"a\":1}\n\n1723161254116723068 {\"b\":2}\r\nxyz {\"c\":3}\n1 \n";
        let mut r = reader(text, CaptureFormat::Hftbacktest, &CaptureOptions::default());
        let f = frames(&mut r);
        assert_eq!(
            f,
            [
                (1_723_161_254_087_896_568, "{\"a\":1}".to_string()),
                (1_723_161_254_116_723_068, "{\"b\":2}".to_string()),
                (1, String::new()),
            ]
        );
        assert_eq!(
            r.stats(),
            CaptureStats {
                lines: 5,
                frames: 3,
                skipped: 1,
                malformed: 1
            }
        );
    }

    #[test]
    fn cryptofeed_ws_text_skips_header_and_sent_lines() {
        let text = "wss://ws.kraken.com <-> 1618678132.368463\n\
wss://ws.kraken.com <- 1618678132.83097: {\"event\":\"subscribe\"}\n\
1618678132.831468: {\"connectionID\":1,\"event\":\"systemStatus\"}\n\
1626992741.3105128: {\"x\": \"a: b\"}\n\
\n\
1.x: {}\n";
        let mut r = reader(text, CaptureFormat::Cryptofeed, &CaptureOptions::default());
        let f = frames(&mut r);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, 1_618_678_132_831_468_000);
        assert_eq!(f[0].1, "{\"connectionID\":1,\"event\":\"systemStatus\"}");
        assert_eq!(
            f[1],
            (1_626_992_741_310_512_800, "{\"x\": \"a: b\"}".to_string())
        );
        assert_eq!(r.stats().skipped, 3);
        assert_eq!(r.stats().malformed, 1);
    }

    #[test]
    fn cryptofeed_jsonl_decodes_data_twice_and_filters_connections() {
        let text = r#"{"t":"header","format":2,"exchange":"BYBIT"}
{"t":"connect","conn":"BYBIT.ws.2","ts":1786310818.2235148,"addr":"wss://stream.bybit.com/v5/public/linear"}
{"t":"connect","conn":"BYBIT.ws.3","ts":1786310818.3,"addr":"wss://stream.bybit.com/v5/public/spot"}
{"t":"send","conn":"BYBIT.ws.2","ts":1786310819.228447,"data":"{\"op\":\"subscribe\"}"}
{"t":"recv","conn":"BYBIT.ws.2","ts":1786310819.5,"data":"{\"topic\":\"tickers.BTCUSDT\",\"ts\":1}"}
{"t":"recv","conn":"BYBIT.ws.3","ts":1786310819.25,"data":"{\"topic\":\"tickers.ETHUSDT\"}"}
{"t":"recv","conn":"BYBIT.ws.3","data":"{}"}
{"t":"recv","conn":"BYBIT.ws.3","ts":1786310819.25}
not json
"#;
        let all = frames(&mut reader(
            text,
            CaptureFormat::CryptofeedJsonl,
            &CaptureOptions::default(),
        ));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, 1_786_310_819_500_000_000);
        assert_eq!(all[0].1, r#"{"topic":"tickers.BTCUSDT","ts":1}"#);
        let opts = CaptureOptions {
            conn_filter: Some("/spot".into()),
        };
        let mut r = reader(text, CaptureFormat::CryptofeedJsonl, &opts);
        let spot = frames(&mut r);
        assert_eq!(
            spot,
            [(
                1_786_310_819_250_000_000,
                r#"{"topic":"tickers.ETHUSDT"}"#.to_string()
            )]
        );
        assert_eq!(r.stats().malformed, 3, "no ts, no data, not JSON");
    }

    #[test]
    fn frames_format_and_gzip_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        gz.finish().unwrap();
        let mut r =
            CaptureReader::open(&path, CaptureFormat::Frames, &CaptureOptions::default()).unwrap();
        let f = frames(&mut r);
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].1, "{\"b\":2}");
        assert!(r.bytes_read().load(Ordering::Relaxed) > 0);
        assert!(r.take_error().is_none());
        // A truncated gzip is an error, not a silent end.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.gz");
        std::fs::write(&cut, &bytes[..bytes.len() - 6]).unwrap();
        let mut r =
            CaptureReader::open(&cut, CaptureFormat::Frames, &CaptureOptions::default()).unwrap();
        let _ = frames(&mut r);
        assert!(matches!(r.take_error(), Some(CaptureError::Read { .. })));
        assert!(matches!(
            CaptureReader::open(&path, CaptureFormat::TardisCsv, &CaptureOptions::default()),
            Err(CaptureError::NotFrames(_))
        ));
        assert!(matches!(
            CaptureReader::open(
                &dir.path().join("missing"),
                CaptureFormat::Frames,
                &CaptureOptions::default()
            ),
            Err(CaptureError::Open { .. })
        ));
    }

    #[test]
    fn symbols_first_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(
            &path,
            "{\"data\":{\"s\":\"BTCUSDT\",\"k\":{\"s\":\"BTCUSDT\"}}}\n{\"topic\":\"kline.1.SOLUSDT\",\"data\":[{\"symbol\":\"ethusdt\"}]}\nnot json\n",
        )
        .unwrap();
        let syms = capture_symbols(
            &path,
            CaptureFormat::Frames,
            &CaptureOptions::default(),
            &[
                SymbolKey::Value("s"),
                SymbolKey::Value("symbol"),
                SymbolKey::LastDotPart("topic"),
            ],
        )
        .unwrap();
        let v: Vec<&str> = syms.iter().map(String::as_str).collect();
        assert_eq!(v, ["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    }

    #[test]
    fn tardis_trades_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let trades = dir.path().join("trades.csv");
        std::fs::write(
            &trades,
            "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132\n\
binance-futures,BTCUSDT,1582329602116000,1582329602418420,42377945,sell,9681.92,0.412\n\
binance-futures,ETHUSDT,1582329602116000,1582329602418420,1,sell,1,1\n\
binance-futures,BTCUSDT,x,1582329602418420,42377946,sell,9681.92,0.412\n\
binance-futures,BTCUSDT,1582329602116000,1582329602418420,42377947,sell,9681.921,0.412\n",
        )
        .unwrap();
        let mut reg = InstrumentRegistry::new();
        reg.add("BINANCE-USDM:BTCUSDT", 2, 3, None).unwrap();
        let venue = reg.venue_id("BINANCE-USDM");
        let c = FeedCounters::default();
        let mut r = TardisCsvReader::open(&trades).unwrap();
        assert!(r.is_trades());
        let TardisPoll::Tick(t) = r.next_tick(&reg, venue, &c) else {
            panic!("tick expected")
        };
        assert_eq!((t.price, t.size, t.id), (968_200, 132, 42_377_944));
        assert_eq!(t.ts_event_ns, 1_582_329_602_111_000_000);
        assert_eq!(t.ts_recv_ns, 1_582_329_602_418_379_000);
        assert_eq!(t.side(), Side::Buy);
        let TardisPoll::Tick(t) = r.next_tick(&reg, venue, &c) else {
            panic!("tick expected")
        };
        assert_eq!((t.price, t.side()), (968_192, Side::Sell));
        assert_eq!(r.next_tick(&reg, venue, &c), TardisPoll::Unknown);
        assert_eq!(c.unknown_symbols.get(), 1);
        assert_eq!(
            r.next_tick(&reg, venue, &c),
            TardisPoll::Error(DecodeError::MissingField("timestamp"))
        );
        assert!(matches!(
            r.next_tick(&reg, venue, &c),
            TardisPoll::Error(DecodeError::Decimal("price", _))
        ));
        assert_eq!(r.next_tick(&reg, venue, &c), TardisPoll::Done);

        let quotes = dir.path().join("quotes.csv");
        std::fs::write(
            &quotes,
            "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n\
binance-futures,BTCUSDT,1582329601096000,1582329603502092,0.84,9682,9681.92,0.67\n\
binance-futures,BTCUSDT,1582329601096000,1582329603502092,,,9681.92,0.67\n",
        )
        .unwrap();
        let mut r = TardisCsvReader::open(&quotes).unwrap();
        assert!(!r.is_trades());
        let TardisPoll::Tick(q) = r.next_tick(&reg, venue, &c) else {
            panic!("tick expected")
        };
        assert_eq!(
            (q.price, q.size, q.price2, q.size2),
            (968_192, 670, 968_200, 840)
        );
        let TardisPoll::Tick(q) = r.next_tick(&reg, venue, &c) else {
            panic!("tick expected")
        };
        assert_eq!((q.price2, q.size2), (0, 0), "one-sided book");

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "a,b,c\n1,2,3\n").unwrap();
        assert!(matches!(
            TardisCsvReader::open(&bad),
            Err(CaptureError::TardisHeader { .. })
        ));
        let syms = capture_symbols(
            &trades,
            CaptureFormat::TardisCsv,
            &CaptureOptions::default(),
            &[],
        )
        .unwrap();
        assert_eq!(syms.into_iter().collect::<Vec<_>>(), ["BTCUSDT", "ETHUSDT"]);
    }
}
