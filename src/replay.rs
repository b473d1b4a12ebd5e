//! Replay input: recorded ticks fed through the normal feed stage.
//!
//! `tickwire replay` runs the stages with [`crate::pipeline::run_inline`]
//! (single thread, deterministic). Its input is either
//!
//! * a **tick journal** directory (instruments from its `meta.json`), or
//! * a **capture** file in any format [`crate::feed::capture`] reads,
//!   decoded by the venue's adapter through [`Importer`] (Tardis CSV rows
//!   become ticks directly).
//!
//! Both yield ticks, not venue frames, so [`TickBatchSource`] hands each
//! batch to the feed stage as one "frame" of 64-byte tick records
//! ([`Tick::to_bytes`]) and [`TickRecordAdapter`] turns them back into
//! ticks: the rest of the pipeline is exactly the live one.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::feed::capture::CaptureFormat;
use crate::feed::import::{ImportStats, ImportVenue, Importer};
use crate::feed::{Adapter, DecodeError, Decoded, FrameSource, SourcePoll};
use crate::journal::ticks::TickReader;
use crate::telemetry::FeedCounters;
use crate::tick::{TICK_BYTES, Tick, flags};

/// Most ticks a journal replay puts in one batch.
const JOURNAL_BATCH: usize = 256;

/// How a replay input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// Still running.
    Running,
    /// A capture was read to its end.
    Capture(ImportStats),
    /// A journal was read up to its last committed tick.
    Journal {
        /// Ticks read.
        ticks: u64,
    },
    /// Reading stopped on an error; output is incomplete.
    Failed(String),
}

enum Input {
    Capture(Option<Box<Importer>>),
    Journal(Box<TickReader>, u64),
}

/// A [`FrameSource`] over recorded ticks (journal or capture); see the
/// module docs.
pub struct TickBatchSource {
    input: Input,
    end: Arc<Mutex<ReplayEnd>>,
    /// `None`: as fast as possible; `Some(x)`: recorded pace × x.
    speed: Option<f64>,
    pending: Vec<u8>,
    pending_recv: i64,
    /// (wall ns, recorded ns) of the first paced batch.
    anchor: Option<(i64, i64)>,
}

impl std::fmt::Debug for TickBatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickBatchSource").finish_non_exhaustive()
    }
}

impl TickBatchSource {
    /// Replays a capture through `importer`. The returned handle tells how
    /// the input ended once the source reports `Done`.
    pub fn capture(importer: Importer) -> (Self, Arc<Mutex<ReplayEnd>>) {
        let end = Arc::new(Mutex::new(ReplayEnd::Running));
        (
            Self {
                input: Input::Capture(Some(Box::new(importer))),
                end: end.clone(),
                speed: None,
                pending: Vec::new(),
                pending_recv: 0,
                anchor: None,
            },
            end,
        )
    }

    /// Replays a journal from its first stored tick.
    pub fn journal(reader: TickReader) -> (Self, Arc<Mutex<ReplayEnd>>) {
        let end = Arc::new(Mutex::new(ReplayEnd::Running));
        (
            Self {
                input: Input::Journal(Box::new(reader), 0),
                end: end.clone(),
                speed: None,
                pending: Vec::new(),
                pending_recv: 0,
                anchor: None,
            },
            end,
        )
    }

    /// Paces the replay: `None` as fast as possible, `Some(1.0)` at the
    /// recorded pace (receive times), `Some(10.0)` ten times faster.
    /// Journals are then replayed one tick per frame so pacing is per tick.
    ///
    /// # Panics
    /// If `speed` is not a positive finite number.
    pub fn with_speed(mut self, speed: Option<f64>) -> Self {
        if let Some(x) = speed {
            assert!(x.is_finite() && x > 0.0, "replay speed must be positive");
        }
        self.speed = speed;
        self
    }

    fn set_end(&self, e: ReplayEnd) {
        if let Ok(mut g) = self.end.lock() {
            *g = e;
        }
    }
}

impl FrameSource for TickBatchSource {
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll {
        let Some(speed) = self.speed else {
            return self.read_batch(buf, usize::MAX);
        };
        if self.pending.is_empty() {
            let mut p = std::mem::take(&mut self.pending);
            let r = self.read_batch(&mut p, 1);
            self.pending = p;
            match r {
                SourcePoll::Frame { recv_ns } => self.pending_recv = recv_ns,
                other => return other,
            }
        }
        let now = clock.now_ns();
        let (wall0, rec0) = *self.anchor.get_or_insert((now, self.pending_recv));
        let due = wall0 + ((self.pending_recv - rec0) as f64 / speed) as i64;
        if now < due {
            return SourcePoll::Idle;
        }
        buf.extend_from_slice(&self.pending);
        self.pending.clear();
        SourcePoll::Frame {
            recv_ns: self.pending_recv,
        }
    }

    fn name(&self) -> &str {
        match self.input {
            Input::Capture(_) => "replay-capture",
            Input::Journal(..) => "replay-journal",
        }
    }
}

impl TickBatchSource {
    /// Reads the next batch (a capture frame's ticks, or up to
    /// `max_journal` journal ticks) into `buf`.
    fn read_batch(&mut self, buf: &mut Vec<u8>, max_journal: usize) -> SourcePoll {
        let mut first_recv = None;
        let mut push = |t: &Tick, buf: &mut Vec<u8>| {
            first_recv.get_or_insert(t.ts_recv_ns);
            buf.extend_from_slice(&t.to_bytes());
        };
        match &mut self.input {
            Input::Capture(slot) => {
                let Some(imp) = slot.as_mut() else {
                    return SourcePoll::Done;
                };
                match imp.next_batch() {
                    Some(ticks) => {
                        for t in ticks {
                            push(t, buf);
                        }
                    }
                    None => {
                        let end = match slot.take().map(|i| i.finish()) {
                            Some(Ok(stats)) => ReplayEnd::Capture(stats),
                            Some(Err(e)) => ReplayEnd::Failed(e.to_string()),
                            None => ReplayEnd::Failed("capture closed twice".into()),
                        };
                        self.set_end(end);
                        return SourcePoll::Done;
                    }
                }
            }
            Input::Journal(reader, count) => {
                for _ in 0..JOURNAL_BATCH.min(max_journal) {
                    match reader.next_tick() {
                        Ok(Some((_, mut t))) => {
                            t.flags |= flags::REPLAYED;
                            *count += 1;
                            push(&t, buf);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let e = ReplayEnd::Failed(e);
                            self.set_end(e);
                            return SourcePoll::Done;
                        }
                    }
                }
                if buf.is_empty() {
                    let ticks = *count;
                    self.set_end(ReplayEnd::Journal { ticks });
                    return SourcePoll::Done;
                }
            }
        }
        SourcePoll::Frame {
            recv_ns: first_recv.unwrap_or(0),
        }
    }
}

/// Decodes the 64-byte tick records [`TickBatchSource`] emits.
#[derive(Debug, Default, Clone, Copy)]
pub struct TickRecordAdapter;

impl Adapter for TickRecordAdapter {
    fn decode(
        &mut self,
        frame: &[u8],
        _recv_ns: i64,
        out: &mut Vec<Tick>,
        _counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError> {
        if frame.len() % TICK_BYTES != 0 {
            return Err(DecodeError::MissingField("tick record"));
        }
        let start = out.len();
        for rec in frame.chunks_exact(TICK_BYTES) {
            if let Some(t) = Tick::from_bytes(rec) {
                out.push(t);
            }
        }
        Ok(Decoded::Data(out.len() - start))
    }
}

/// Guesses a capture's format from its file name: `*.csv[.gz]` → Tardis
/// CSV, `*.jsonl` → cryptofeed JSONL, `*.ws.*` → cryptofeed, `*.gz` →
/// hftbacktest.
pub fn guess_format(path: &Path) -> Option<CaptureFormat> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").map_or(name.as_str(), |n| n);
    if name.ends_with(".csv") {
        Some(CaptureFormat::TardisCsv)
    } else if name.ends_with(".jsonl") || name.ends_with(".jsonl.zst") {
        Some(CaptureFormat::CryptofeedJsonl)
    } else if name.contains(".ws.") {
        Some(CaptureFormat::Cryptofeed)
    } else if path.to_string_lossy().to_ascii_lowercase().ends_with(".gz") {
        Some(CaptureFormat::Hftbacktest)
    } else {
        None
    }
}

/// Guesses the venue of a capture: Tardis CSV from its `exchange` column,
/// cryptofeed files from their name (`BINANCE_FUTURES.ws.1.0`), hftbacktest
/// as Binance spot. `None` when it cannot tell (pass `--venue`).
pub fn guess_venue(path: &Path, format: CaptureFormat) -> Option<ImportVenue> {
    match format {
        CaptureFormat::Hftbacktest => Some(ImportVenue::Binance),
        CaptureFormat::TardisCsv => {
            let exchange = tardis_exchange(path)?;
            match exchange.as_str() {
                "binance" => Some(ImportVenue::Binance),
                "binance-futures" => Some(ImportVenue::BinanceUsdm),
                "coinbase" => Some(ImportVenue::Coinbase),
                _ => None,
            }
        }
        _ => {
            let name = path.file_name()?.to_str()?.to_ascii_uppercase();
            if name.starts_with("BINANCE_FUTURES") {
                Some(ImportVenue::BinanceUsdm)
            } else if name.starts_with("BINANCE") {
                Some(ImportVenue::Binance)
            } else if name.starts_with("COINBASE") {
                Some(ImportVenue::Coinbase)
            } else {
                None
            }
        }
    }
}

/// The `exchange` of a Tardis CSV's first row (gzip or plain).
fn tardis_exchange(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let f = std::fs::File::open(path).ok()?;
    let r: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    let mut lines = r.lines();
    let header = lines.next()?.ok()?;
    let col = header.split(',').position(|c| c.trim() == "exchange")?;
    let row = lines.next()?.ok()?;
    row.split(',')
        .nth(col)
        .map(|s| s.trim().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruments::InstrumentId;
    use crate::tick::Side;

    #[test]
    fn tick_records_round_trip_through_the_adapter() {
        let ticks = [
            Tick::trade(InstrumentId(0), 5, 6, 100, 2, Side::Buy, 7),
            Tick::quote(InstrumentId(1), 8, 9, 99, 1, 101, 1, 3),
        ];
        let mut frame = Vec::new();
        for t in &ticks {
            frame.extend_from_slice(&t.to_bytes());
        }
        let mut out = Vec::new();
        let c = FeedCounters::default();
        assert_eq!(
            TickRecordAdapter.decode(&frame, 0, &mut out, &c),
            Ok(Decoded::Data(2))
        );
        assert_eq!(out, ticks);
        assert!(
            TickRecordAdapter
                .decode(&frame[..10], 0, &mut out, &c)
                .is_err()
        );
    }

    #[test]
    fn formats_and_venues_are_guessed() {
        let p = Path::new;
        assert_eq!(
            guess_format(p("x/btcusdt_20240808.gz")),
            Some(CaptureFormat::Hftbacktest)
        );
        assert_eq!(
            guess_format(p("trades.csv")),
            Some(CaptureFormat::TardisCsv)
        );
        assert_eq!(
            guess_format(p("trades.csv.gz")),
            Some(CaptureFormat::TardisCsv)
        );
        assert_eq!(
            guess_format(p("BYBIT.jsonl")),
            Some(CaptureFormat::CryptofeedJsonl)
        );
        assert_eq!(
            guess_format(p("BINANCE.ws.1.0")),
            Some(CaptureFormat::Cryptofeed)
        );
        assert_eq!(guess_format(p("notes.txt")), None);
        assert_eq!(
            guess_venue(p("BINANCE_FUTURES.ws.1.0"), CaptureFormat::Cryptofeed),
            Some(ImportVenue::BinanceUsdm)
        );
        assert_eq!(
            guess_venue(p("a.gz"), CaptureFormat::Hftbacktest),
            Some(ImportVenue::Binance)
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.csv");
        std::fs::write(
            &f,
            "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\nbinance-futures,BTCUSDT,1,2,3,buy,9682,0.1\n",
        )
        .unwrap();
        assert_eq!(
            guess_venue(&f, CaptureFormat::TardisCsv),
            Some(ImportVenue::BinanceUsdm)
        );
    }
}
