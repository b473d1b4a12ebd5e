//! Capture readers used by `tickwire replay` until the feed's capture
//! readers and the journal land.
//!
//! **Temporary: to be replaced by `feed::capture` readers at merge.** Only
//! what the kernel's reference tests need:
//!
//! * hftbacktest collector gz (`<local_recv_ns> <raw Binance frame>` per
//!   line, gzip): frames go to the Binance adapter unchanged, with the
//!   recorded receive time;
//! * Tardis trades CSV (`exchange,symbol,timestamp,local_timestamp,id,side,
//!   price,amount`, µs since the epoch): each row becomes one trade tick
//!   through [`TardisTradeAdapter`].
//!
//! Both implement [`FrameSource`], so a replay runs the normal feed stage.
//! Malformed lines are counted in [`ReaderStats`] and skipped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::GzDecoder;

use crate::clock::Clock;
use crate::decimal::parse_scaled;
use crate::feed::{Adapter, DecodeError, Decoded, FrameSource, SourcePoll};
use crate::instruments::{InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, flags};

/// Capture formats this reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// hftbacktest collector gz (Binance combined-stream frames).
    Hftbacktest,
    /// Tardis.dev trades CSV.
    TardisCsv,
}

impl CaptureFormat {
    /// Parses a `--format` value.
    ///
    /// # Errors
    /// Names the accepted values; formats of the upcoming capture readers
    /// are refused with a pointer to them.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "hftbacktest" => Ok(Self::Hftbacktest),
            "tardis-csv" | "tardis" => Ok(Self::TardisCsv),
            "cryptofeed" | "cryptofeed-jsonl" | "frames" => Err(format!(
                "format '{s}' is not readable by this build yet (it comes with the feed capture readers); use hftbacktest or tardis-csv"
            )),
            other => Err(format!(
                "unknown format '{other}'; known: hftbacktest, tardis-csv"
            )),
        }
    }

    /// Guesses the format from the file name (`.gz` → hftbacktest, `.csv`
    /// → Tardis CSV).
    pub fn detect(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".gz") {
            Some(Self::Hftbacktest)
        } else if name.ends_with(".csv") {
            Some(Self::TardisCsv)
        } else {
            None
        }
    }

    /// The venue replayed ticks are registered under by default.
    pub fn default_venue(self) -> &'static str {
        match self {
            Self::Hftbacktest => "BINANCE",
            Self::TardisCsv => "BINANCE_FUTURES",
        }
    }
}

/// Counters shared between a reader and whoever drives it.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Lines read.
    pub lines: AtomicU64,
    /// Lines skipped as malformed.
    pub bad_lines: AtomicU64,
    /// 1 if reading stopped on an I/O or decompression error.
    pub io_errors: AtomicU64,
}

/// Opens `path` for line reading, gunzipping when `gz`.
fn open_lines(path: &Path, gz: bool) -> std::io::Result<Box<dyn BufRead + Send>> {
    let f = File::open(path)?;
    Ok(if gz {
        Box::new(BufReader::with_capacity(1 << 16, GzDecoder::new(f)))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, f))
    })
}

/// Reads the next line into `line` (cleared first, newline stripped).
/// `Ok(false)` at the end.
fn next_line(r: &mut dyn BufRead, line: &mut String) -> std::io::Result<bool> {
    line.clear();
    if r.read_line(line)? == 0 {
        return Ok(false);
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(true)
}

/// hftbacktest collector gz source: one frame per line.
pub struct HftbacktestSource {
    reader: Box<dyn BufRead + Send>,
    line: String,
    stats: Arc<ReaderStats>,
}

impl std::fmt::Debug for HftbacktestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HftbacktestSource").finish_non_exhaustive()
    }
}

impl HftbacktestSource {
    /// Opens a gz capture.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path, stats: Arc<ReaderStats>) -> std::io::Result<Self> {
        Ok(Self {
            reader: open_lines(path, true)?,
            line: String::with_capacity(64 * 1024),
            stats,
        })
    }
}

impl FrameSource for HftbacktestSource {
    fn poll_frame(&mut self, buf: &mut Vec<u8>, _clock: &Clock) -> SourcePoll {
        loop {
            match next_line(&mut *self.reader, &mut self.line) {
                Ok(true) => {}
                Ok(false) => return SourcePoll::Done,
                Err(_) => {
                    self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                    return SourcePoll::Done;
                }
            }
            self.stats.lines.fetch_add(1, Ordering::Relaxed);
            if self.line.trim().is_empty() {
                continue;
            }
            let parsed = self
                .line
                .split_once(' ')
                .and_then(|(ns, frame)| ns.parse::<i64>().ok().map(|ns| (ns, frame)));
            match parsed {
                Some((recv_ns, frame)) => {
                    buf.extend_from_slice(frame.as_bytes());
                    return SourcePoll::Frame { recv_ns };
                }
                None => {
                    self.stats.bad_lines.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn name(&self) -> &str {
        "hftbacktest-gz"
    }
}

/// Column positions of a Tardis trades CSV, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TardisColumns {
    symbol: usize,
    timestamp: usize,
    local_timestamp: usize,
    id: usize,
    side: usize,
    price: usize,
    amount: usize,
}

impl TardisColumns {
    fn from_header(h: &str) -> Result<Self, String> {
        let cols: Vec<&str> = h.split(',').map(str::trim).collect();
        let find = |name: &str| {
            cols.iter().position(|c| *c == name).ok_or_else(|| {
                format!(
                    "Tardis trades CSV header lacks '{name}' (want exchange,symbol,timestamp,local_timestamp,id,side,price,amount)"
                )
            })
        };
        Ok(Self {
            symbol: find("symbol")?,
            timestamp: find("timestamp")?,
            local_timestamp: find("local_timestamp")?,
            id: find("id")?,
            side: find("side")?,
            price: find("price")?,
            amount: find("amount")?,
        })
    }
}

/// Tardis trades CSV source. Each row is handed to [`TardisTradeAdapter`]
/// normalized as `symbol,timestamp_us,id,side,price,amount`, with the
/// `local_timestamp` as receive time.
pub struct TardisTradesSource {
    reader: Box<dyn BufRead + Send>,
    line: String,
    cols: TardisColumns,
    stats: Arc<ReaderStats>,
}

impl std::fmt::Debug for TardisTradesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TardisTradesSource")
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl TardisTradesSource {
    /// Opens a CSV (gzipped if the name ends in `.gz`) and reads its header.
    ///
    /// # Errors
    /// The file cannot be read or its header lacks a needed column.
    pub fn open(path: &Path, stats: Arc<ReaderStats>) -> Result<Self, String> {
        let gz = path.extension().is_some_and(|e| e == "gz");
        let mut reader =
            open_lines(path, gz).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut line = String::with_capacity(256);
        if !next_line(&mut *reader, &mut line)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        {
            return Err(format!("{} is empty", path.display()));
        }
        let cols = TardisColumns::from_header(&line)?;
        Ok(Self {
            reader,
            line,
            cols,
            stats,
        })
    }
}

impl FrameSource for TardisTradesSource {
    fn poll_frame(&mut self, buf: &mut Vec<u8>, _clock: &Clock) -> SourcePoll {
        loop {
            match next_line(&mut *self.reader, &mut self.line) {
                Ok(true) => {}
                Ok(false) => return SourcePoll::Done,
                Err(_) => {
                    self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                    return SourcePoll::Done;
                }
            }
            self.stats.lines.fetch_add(1, Ordering::Relaxed);
            if self.line.trim().is_empty() {
                continue;
            }
            let mut f: [&str; 16] = [""; 16];
            let mut n = 0;
            for (i, part) in self.line.split(',').enumerate() {
                if i < f.len() {
                    f[i] = part.trim();
                    n = i + 1;
                }
            }
            let c = self.cols;
            let max = [
                c.symbol,
                c.timestamp,
                c.local_timestamp,
                c.id,
                c.side,
                c.price,
                c.amount,
            ]
            .into_iter()
            .max()
            .unwrap_or(0);
            let recv_us = f[c.local_timestamp].parse::<i64>();
            match recv_us {
                Ok(us) if max < n => {
                    for (k, col) in [c.symbol, c.timestamp, c.id, c.side, c.price, c.amount]
                        .into_iter()
                        .enumerate()
                    {
                        if k > 0 {
                            buf.push(b',');
                        }
                        buf.extend_from_slice(f[col].as_bytes());
                    }
                    return SourcePoll::Frame {
                        recv_ns: us.saturating_mul(1_000),
                    };
                }
                _ => {
                    self.stats.bad_lines.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn name(&self) -> &str {
        "tardis-trades-csv"
    }
}

/// Decodes the rows [`TardisTradesSource`] produces into trade ticks.
#[derive(Debug)]
pub struct TardisTradeAdapter {
    registry: Arc<InstrumentRegistry>,
    venue: Option<VenueId>,
}

impl TardisTradeAdapter {
    /// Resolves symbols against `venue` in `registry`.
    pub fn new(registry: Arc<InstrumentRegistry>, venue: &str) -> Self {
        let venue = registry.venue_id(venue);
        Self { registry, venue }
    }
}

/// FNV-1a, for non-numeric trade ids.
fn hash_id(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Adapter for TardisTradeAdapter {
    fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        out: &mut Vec<Tick>,
        counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError> {
        let text = std::str::from_utf8(frame).map_err(|_| DecodeError::Json)?;
        let mut it = text.split(',');
        let mut next = |k: &'static str| it.next().ok_or(DecodeError::MissingField(k));
        let sym = next("symbol")?;
        let ts_us: i64 = next("timestamp")?
            .parse()
            .map_err(|_| DecodeError::MissingField("timestamp"))?;
        let id_s = next("id")?;
        let side = match next("side")? {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            _ => Side::None,
        };
        let px = next("price")?;
        let qty = next("amount")?;
        let Some(inst) = self
            .venue
            .and_then(|v| self.registry.lookup(v, sym.as_bytes()))
            .and_then(|id| self.registry.get(id))
        else {
            counters.unknown_symbols.inc();
            return Ok(Decoded::Data(0));
        };
        let price =
            parse_scaled(px, inst.price_precision).map_err(|e| DecodeError::Decimal("price", e))?;
        let size = parse_scaled(qty, inst.size_precision)
            .map_err(|e| DecodeError::Decimal("amount", e))?;
        let (id, hashed) = match id_s.parse::<u64>() {
            Ok(v) => (v, 0),
            Err(_) => (hash_id(id_s), flags::ID_HASHED),
        };
        let mut t = Tick::trade(
            inst.id,
            ts_us.saturating_mul(1_000),
            recv_ns,
            price,
            size,
            side,
            id,
        );
        t.flags |= flags::REPLAYED | hashed;
        out.push(t);
        Ok(Decoded::Data(1))
    }
}

/// What a pre-scan of a capture found: the symbols it trades or quotes, and
/// the venue it names (Tardis `exchange`, upper case), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Venue symbols, upper case, in order of first appearance.
    pub symbols: Vec<String>,
    /// Venue named inside the file (Tardis `exchange`), upper case with
    /// `-` → `_`.
    pub venue: Option<String>,
}

/// Reads the whole capture once to list its symbols (the registry is fixed
/// before the replay starts).
///
/// # Errors
/// Unreadable file or header.
pub fn scan_symbols(path: &Path, format: CaptureFormat) -> Result<ScanResult, String> {
    let mut res = ScanResult::default();
    let add = |s: &str, res: &mut ScanResult| {
        let s = s.to_ascii_uppercase();
        if !s.is_empty() && !res.symbols.contains(&s) {
            res.symbols.push(s);
        }
    };
    let err = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    match format {
        CaptureFormat::Hftbacktest => {
            let mut r = open_lines(path, true).map_err(err)?;
            let mut line = String::new();
            while next_line(&mut *r, &mut line).map_err(err)? {
                if let Some(i) = line.find("\"stream\":\"") {
                    let rest = &line[i + 10..];
                    if let Some(end) = rest.find(['@', '"']) {
                        add(&rest[..end], &mut res);
                    }
                }
            }
        }
        CaptureFormat::TardisCsv => {
            let gz = path.extension().is_some_and(|e| e == "gz");
            let mut r = open_lines(path, gz).map_err(err)?;
            let mut line = String::new();
            if !next_line(&mut *r, &mut line).map_err(err)? {
                return Err(format!("{} is empty", path.display()));
            }
            let cols = TardisColumns::from_header(&line)?;
            let exch = line.split(',').position(|c| c.trim() == "exchange");
            while next_line(&mut *r, &mut line).map_err(err)? {
                let f: Vec<&str> = line.split(',').map(str::trim).collect();
                if let Some(s) = f.get(cols.symbol) {
                    add(s, &mut res);
                }
                if res.venue.is_none()
                    && let Some(v) = exch.and_then(|i| f.get(i))
                    && !v.is_empty()
                {
                    res.venue = Some(v.to_ascii_uppercase().replace('-', "_"));
                }
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn formats_parse_and_detect() {
        assert_eq!(
            CaptureFormat::parse("hftbacktest"),
            Ok(CaptureFormat::Hftbacktest)
        );
        assert_eq!(
            CaptureFormat::parse("tardis-csv"),
            Ok(CaptureFormat::TardisCsv)
        );
        assert!(
            CaptureFormat::parse("cryptofeed")
                .unwrap_err()
                .contains("not readable")
        );
        assert!(CaptureFormat::parse("nope").unwrap_err().contains("known"));
        assert_eq!(
            CaptureFormat::detect(Path::new("/x/btcusdt_20240808.gz")),
            Some(CaptureFormat::Hftbacktest)
        );
        assert_eq!(
            CaptureFormat::detect(Path::new("trades.csv")),
            Some(CaptureFormat::TardisCsv)
        );
        assert_eq!(CaptureFormat::detect(Path::new("x.ws.1.0")), None);
    }

    #[test]
    fn tardis_rows_become_trades() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        let mut f = File::create(&p).unwrap();
        writeln!(
            f,
            "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
        )
        .unwrap();
        writeln!(
            f,
            "binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132"
        )
        .unwrap();
        writeln!(f, "garbage").unwrap();
        writeln!(
            f,
            "binance-futures,BTCUSDT,1582329602116000,1582329602418420,abc,sell,9681.5,0.412"
        )
        .unwrap();
        drop(f);
        let scan = scan_symbols(&p, CaptureFormat::TardisCsv).unwrap();
        assert_eq!(scan.symbols, ["BTCUSDT"]);
        assert_eq!(scan.venue.as_deref(), Some("BINANCE_FUTURES"));

        let mut reg = InstrumentRegistry::new();
        reg.add("BINANCE_FUTURES:BTCUSDT", 8, 8, None).unwrap();
        let reg = Arc::new(reg);
        let stats = Arc::new(ReaderStats::default());
        let mut src = TardisTradesSource::open(&p, stats.clone()).unwrap();
        let mut ad = TardisTradeAdapter::new(reg, "BINANCE_FUTURES");
        let counters = FeedCounters::default();
        let clock = Clock::new();
        let mut ticks = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match src.poll_frame(&mut buf, &clock) {
                SourcePoll::Frame { recv_ns } => {
                    ad.decode(&buf, recv_ns, &mut ticks, &counters).unwrap();
                }
                SourcePoll::Done => break,
                SourcePoll::Idle => unreachable!(),
            }
        }
        assert_eq!(stats.bad_lines.load(Ordering::Relaxed), 1);
        assert_eq!(ticks.len(), 2);
        assert_eq!(ticks[0].ts_event_ns, 1_582_329_602_111_000_000);
        assert_eq!(ticks[0].ts_recv_ns, 1_582_329_602_418_379_000);
        assert_eq!(ticks[0].price, 968_200_000_000);
        assert_eq!(ticks[0].size, 13_200_000);
        assert_eq!(ticks[0].side(), Side::Buy);
        assert_eq!(ticks[0].id, 42_377_944);
        assert_eq!(ticks[1].side(), Side::Sell);
        assert!(ticks[1].has_flag(flags::ID_HASHED));
    }
}
