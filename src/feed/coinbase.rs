//! Coinbase Advanced Trade WebSocket adapter
//! (`wss://advanced-trade-ws.coinbase.com`): frames → ticks.
//!
//! Every frame is `{"channel":..,"timestamp":..,"sequence_num":..,"events":[..]}`.
//!
//! | channel | ticks |
//! |---|---|
//! | `market_trades` | one trade per element of `events[].trades`. A frame lists trades **newest first**; they are emitted oldest first. `snapshot` events (the last trades, sent on subscribe) carry [`flags::SNAPSHOT`] so a consumer can skip history it already has after a reconnect. `side` is the **maker's** side (checked on the recorded capture: `SELL` prints trade at the best ask), so the aggressor is the opposite. Event time = the trade's `time` |
//! | `ticker` | a quote per element of `events[].tickers` from `best_bid`/`best_bid_quantity`/`best_ask`/`best_ask_quantity`; event time = the frame `timestamp`; `id` = `sequence_num` |
//! | `l2_data` (subscribed as `level2`) | a book level per element of `events[].updates` (`side` `bid`/`offer`, `price_level`, `new_quantity`, 0 deletes); `snapshot` levels carry [`flags::SNAPSHOT`] (the snapshot is one frame of several MB); event time = the update's `event_time`; `id` = `sequence_num` |
//! | `heartbeats`, `subscriptions`, `candles`, `status`, errors | control. Candles are 5-minute bars without a "final" marker, so they are not turned into bars (the kernel builds its own) |
//!
//! # Sequence gaps
//! `sequence_num` counts every message of a connection (all channels, from
//! 0). A break appends one [`TickKind::Gap`] tick per instrument of the
//! venue (the loss may concern any of them) before the frame's data and
//! counts one gap in [`FeedCounters::gaps`]. The chain restarts on every
//! (re)connect.
//!
//! Timestamps are RFC 3339 (`2026-08-09T21:05:42.514318Z`, 0–9 fraction
//! digits, trailing zeros dropped) and parsed to ns by
//! [`parse_rfc3339_ns`] without allocation. The heartbeat's `current_time`
//! (Go `time.String()`) is ignored.

use std::sync::Arc;

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::parse::{SeqTracker, TapeParser, gap_tick, get_str, id_or_hash, price, size};
use super::{Adapter, AdapterParams, DecodeError, Decoded};
use crate::instruments::{Instrument, InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, TickKind, flags};

/// Channels subscribed when [`AdapterParams::channels`] is empty.
/// `heartbeats` keeps quiet subscriptions open.
pub const DEFAULT_CHANNELS: [&str; 3] = ["market_trades", "ticker", "heartbeats"];

/// Public market-data endpoint.
pub const URL: &str = "wss://advanced-trade-ws.coinbase.com";

/// Decoder for Coinbase Advanced Trade frames of one connection.
pub struct CoinbaseAdapter {
    registry: Arc<InstrumentRegistry>,
    venue: Option<VenueId>,
    symbols: Vec<String>,
    channels: Vec<String>,
    parser: TapeParser,
    seq: SeqTracker,
}

impl std::fmt::Debug for CoinbaseAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoinbaseAdapter")
            .field("venue", &self.venue)
            .finish_non_exhaustive()
    }
}

impl CoinbaseAdapter {
    /// An adapter for `params.venue`. Subscribes to `params.symbols` (all of
    /// the venue's instruments when empty) on `params.channels`
    /// ([`DEFAULT_CHANNELS`] when empty; `level2` for the book).
    pub fn new(registry: Arc<InstrumentRegistry>, params: &AdapterParams) -> Self {
        let venue = registry.venue_id(&params.venue);
        let symbols = if params.symbols.is_empty() {
            registry
                .of_venue(&params.venue)
                .map(|i| i.symbol.clone())
                .collect()
        } else {
            params.symbols.clone()
        };
        let channels = if params.channels.is_empty() {
            DEFAULT_CHANNELS.iter().map(|c| (*c).to_string()).collect()
        } else {
            params.channels.clone()
        };
        Self {
            registry,
            venue,
            symbols,
            channels,
            // The level2 snapshot is ~5 MB; start large enough for typical
            // frames and let the snapshot grow the buffers once.
            parser: TapeParser::new(256 * 1024),
            seq: SeqTracker::default(),
        }
    }

    /// One subscribe request per channel:
    /// `{"type":"subscribe","product_ids":["BTC-USD",...],"channel":"market_trades"}`.
    pub fn subscribe_messages(&self) -> Vec<String> {
        if self.symbols.is_empty() {
            return Vec::new();
        }
        let ids: Vec<String> = self
            .symbols
            .iter()
            .map(|s| format!("\"{}\"", s.to_ascii_uppercase()))
            .collect();
        let ids = ids.join(",");
        self.channels
            .iter()
            .map(|c| format!(r#"{{"type":"subscribe","product_ids":[{ids}],"channel":"{c}"}}"#))
            .collect()
    }
}

impl Adapter for CoinbaseAdapter {
    fn on_connect(&mut self, out: &mut Vec<String>) {
        self.seq.reset();
        out.extend(self.subscribe_messages());
    }

    fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        out: &mut Vec<Tick>,
        counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError> {
        let reg = &self.registry;
        let venue = self.venue;
        let seq = &mut self.seq;
        self.parser.parse(frame, |root| {
            let start = out.len();
            let cx = Cx {
                reg,
                venue,
                recv_ns,
                counters,
            };
            let res = decode_value(root, &cx, out)?;
            // Sequence check only for frames that decoded: a dropped frame
            // leaves a hole that the next frame reports.
            if let Some(n) = root.get("sequence_num").and_then(|s| s.as_u64()) {
                if let Some(exp) = seq.next_range(n, n) {
                    let ts = root
                        .get("timestamp")
                        .and_then(|t| t.into_string())
                        .and_then(|t| parse_rfc3339_ns(t.as_bytes()))
                        .unwrap_or(recv_ns);
                    return Ok(cx.gap(out, start, ts, exp, n, res));
                }
            }
            Ok(res)
        })?
    }
}

struct Cx<'a> {
    reg: &'a InstrumentRegistry,
    venue: Option<VenueId>,
    recv_ns: i64,
    counters: &'a FeedCounters,
}

impl<'a> Cx<'a> {
    fn lookup(&self, sym: &str) -> Option<&'a Instrument> {
        super::parse::lookup_counted(self.reg, self.venue, sym, self.counters)
    }

    /// Inserts one gap tick per venue instrument at `at`.
    #[cold]
    #[inline(never)]
    fn gap(
        &self,
        out: &mut Vec<Tick>,
        at: usize,
        ts: i64,
        exp: u64,
        got: u64,
        res: Decoded,
    ) -> Decoded {
        self.counters.gaps.inc();
        let Some(venue) = self.venue else {
            return res;
        };
        let gaps: Vec<Tick> = self
            .reg
            .iter()
            .filter(|i| self.reg.venue_id(&i.venue) == Some(venue))
            .map(|i| gap_tick(i.id, ts, self.recv_ns, exp, got))
            .collect();
        let n = gaps.len();
        out.splice(at..at, gaps);
        match res {
            Decoded::Data(k) => Decoded::Data(k + n),
            Decoded::Control if n > 0 => Decoded::Data(n),
            Decoded::Control => Decoded::Control,
        }
    }
}

fn events<'t, 'i>(root: &Value<'t, 'i>) -> Result<simd_json::tape::Array<'t, 'i>, DecodeError> {
    root.get("events")
        .and_then(|e| e.as_array())
        .ok_or(DecodeError::MissingField("events"))
}

fn ts_field(v: &Value<'_, '_>, k: &'static str) -> Result<i64, DecodeError> {
    parse_rfc3339_ns(get_str(v, k)?.as_bytes()).ok_or(DecodeError::MissingField(k))
}

/// A decimal that may be an empty string (no level on that side).
fn price_or_zero(inst: &Instrument, s: &str, k: &'static str) -> Result<i64, DecodeError> {
    if s.is_empty() {
        Ok(0)
    } else {
        price(inst, s, k)
    }
}

fn size_or_zero(inst: &Instrument, s: &str, k: &'static str) -> Result<i64, DecodeError> {
    if s.is_empty() {
        Ok(0)
    } else {
        size(inst, s, k)
    }
}

fn decode_value(
    root: Value<'_, '_>,
    cx: &Cx<'_>,
    out: &mut Vec<Tick>,
) -> Result<Decoded, DecodeError> {
    if !root.is_object() {
        return Err(DecodeError::Json);
    }
    let Some(channel) = root.get("channel").and_then(|c| c.into_string()) else {
        if root.get("type").and_then(|t| t.into_string()) == Some("error") {
            warn_error(&root);
            return Ok(Decoded::Control);
        }
        return Err(DecodeError::MissingField("channel"));
    };
    let start = out.len();
    match channel {
        "market_trades" => {
            for ev in events(&root)?.iter() {
                let snapshot = ev.get("type").and_then(|t| t.into_string()) == Some("snapshot");
                let trades = ev
                    .get("trades")
                    .and_then(|t| t.as_array())
                    .ok_or(DecodeError::MissingField("trades"))?;
                let ev_start = out.len();
                for t in trades.iter() {
                    let Some(inst) = cx.lookup(get_str(&t, "product_id")?) else {
                        continue;
                    };
                    let p = price(inst, get_str(&t, "price")?, "price")?;
                    let q = size(inst, get_str(&t, "size")?, "size")?;
                    let ts = ts_field(&t, "time")?;
                    // `side` is the maker order's side.
                    let side = match get_str(&t, "side")? {
                        "BUY" => Side::Sell,
                        "SELL" => Side::Buy,
                        _ => Side::None,
                    };
                    let (id, hashed) = id_or_hash(get_str(&t, "trade_id")?);
                    let mut tick = Tick::trade(inst.id, ts, cx.recv_ns, p, q, side, id);
                    if hashed {
                        tick.flags |= flags::ID_HASHED;
                    }
                    if snapshot {
                        tick.flags |= flags::SNAPSHOT;
                    }
                    if p <= 0 || q < 0 {
                        tick.flags |= flags::SUSPECT;
                    }
                    out.push(tick);
                }
                // Newest first on the wire; chronological in the output.
                out[ev_start..].reverse();
            }
        }
        "ticker" => {
            let ts = ts_field(&root, "timestamp")?;
            let seq = root
                .get("sequence_num")
                .and_then(|s| s.as_u64())
                .unwrap_or(0);
            for ev in events(&root)?.iter() {
                let tickers = ev
                    .get("tickers")
                    .and_then(|t| t.as_array())
                    .ok_or(DecodeError::MissingField("tickers"))?;
                for t in tickers.iter() {
                    let Some(inst) = cx.lookup(get_str(&t, "product_id")?) else {
                        continue;
                    };
                    let bid = price_or_zero(inst, get_str(&t, "best_bid")?, "best_bid")?;
                    let bid_sz =
                        size_or_zero(inst, get_str(&t, "best_bid_quantity")?, "best_bid_quantity")?;
                    let ask = price_or_zero(inst, get_str(&t, "best_ask")?, "best_ask")?;
                    let ask_sz =
                        size_or_zero(inst, get_str(&t, "best_ask_quantity")?, "best_ask_quantity")?;
                    let mut q = Tick::quote(inst.id, ts, cx.recv_ns, bid, bid_sz, ask, ask_sz, seq);
                    if bid > ask && ask > 0 {
                        q.flags |= flags::SUSPECT;
                    }
                    out.push(q);
                }
            }
        }
        "l2_data" => {
            let seq = root
                .get("sequence_num")
                .and_then(|s| s.as_u64())
                .unwrap_or(0);
            for ev in events(&root)?.iter() {
                let fl = match ev.get("type").and_then(|t| t.into_string()) {
                    Some("snapshot") => flags::SNAPSHOT,
                    _ => 0,
                };
                let Some(inst) = cx.lookup(get_str(&ev, "product_id")?) else {
                    continue;
                };
                let updates = ev
                    .get("updates")
                    .and_then(|u| u.as_array())
                    .ok_or(DecodeError::MissingField("updates"))?;
                for u in updates.iter() {
                    let side = match get_str(&u, "side")? {
                        "bid" => Side::Buy,
                        "offer" | "ask" => Side::Sell,
                        _ => return Err(DecodeError::MissingField("side")),
                    };
                    out.push(Tick {
                        ts_event_ns: ts_field(&u, "event_time")?,
                        ts_recv_ns: cx.recv_ns,
                        price: price(inst, get_str(&u, "price_level")?, "price_level")?,
                        size: size(inst, get_str(&u, "new_quantity")?, "new_quantity")?,
                        price2: 0,
                        size2: 0,
                        id: seq,
                        instrument: inst.id,
                        kind: TickKind::BookLevel as u8,
                        side: side as u8,
                        flags: fl,
                    });
                }
            }
        }
        _ => return Ok(Decoded::Control),
    }
    Ok(Decoded::Data(out.len() - start))
}

#[cold]
#[inline(never)]
fn warn_error(root: &Value<'_, '_>) {
    let msg = root
        .get("message")
        .and_then(|m| m.into_string())
        .unwrap_or("");
    tracing::warn!(
        message = msg,
        "coinbase sent an error (check product ids and channels)"
    );
}

/// Parses an RFC 3339 UTC timestamp to ns since the Unix epoch.
///
/// Accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with `T`, `t` or a
/// space as separator and 0–9 fraction digits (further digits are
/// truncated). `None` on anything else or out of range. No allocation, no
/// floats.
///
/// ```
/// use tickwire::feed::coinbase::parse_rfc3339_ns;
/// assert_eq!(parse_rfc3339_ns(b"2026-08-09T21:05:42.514318Z"), Some(1_786_309_542_514_318_000));
/// ```
pub fn parse_rfc3339_ns(s: &[u8]) -> Option<i64> {
    fn num(s: &[u8], from: usize, len: usize) -> Option<i64> {
        let d = s.get(from..from + len)?;
        let mut v = 0i64;
        for &c in d {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = num(s, 0, 4)?;
    let month = num(s, 5, 2)?;
    let day = num(s, 8, 2)?;
    let hour = num(s, 11, 2)?;
    let min = num(s, 14, 2)?;
    let sec = num(s, 17, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(&c) = s.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            if digits < 9 {
                frac_ns = frac_ns * 10 + i64::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        while digits < 9 {
            frac_ns *= 10;
            digits += 1;
        }
    }
    let offset_s = match s.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = num(&[*h1, *h2], 0, 2)?;
            let mm = num(&[*m1, *m2], 0, 2)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let o = hh * 3600 + mm * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> (CoinbaseAdapter, FeedCounters) {
        let mut r = InstrumentRegistry::new();
        r.add("COINBASE:BTC-USD", 2, 8, None).unwrap();
        r.add("COINBASE:ETH-USD", 2, 8, None).unwrap();
        let params = AdapterParams {
            venue: "COINBASE".into(),
            ..AdapterParams::default()
        };
        (
            CoinbaseAdapter::new(Arc::new(r), &params),
            FeedCounters::default(),
        )
    }

    fn dec(
        a: &mut CoinbaseAdapter,
        c: &FeedCounters,
        f: &str,
    ) -> (Result<Decoded, DecodeError>, Vec<Tick>) {
        let mut out = Vec::new();
        let r = a.decode(f.as_bytes(), 11, &mut out, c);
        (r, out)
    }

    #[test]
    fn rfc3339_strings_from_the_capture() {
        // 1786309542 = 2026-08-09T21:05:42Z.
        let base = 1_786_309_542_000_000_000i64;
        assert_eq!(
            parse_rfc3339_ns(b"2026-08-09T21:05:42.514318Z"),
            Some(base + 514_318_000)
        );
        assert_eq!(
            parse_rfc3339_ns(b"2026-08-09T21:05:48.228568804Z"),
            Some(base + 6_000_000_000 + 228_568_804)
        );
        // Trailing zeros dropped by the venue: 6 → 5 digits.
        assert_eq!(
            parse_rfc3339_ns(b"2026-08-09T21:05:38.50436Z"),
            Some(base - 4_000_000_000 + 504_360_000)
        );
        assert_eq!(parse_rfc3339_ns(b"2026-08-09T21:05:42Z"), Some(base));
        assert_eq!(
            parse_rfc3339_ns(b"2026-08-09T23:05:42.5+02:00"),
            Some(base + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns(b"2026-08-09T21:05:42.1234567891Z"),
            Some(base + 123_456_789),
            "digits beyond ns are truncated"
        );
        assert_eq!(parse_rfc3339_ns(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns(b"2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns(b"1969-12-31T23:59:59.5Z"),
            Some(-500_000_000)
        );
        for bad in [
            &b""[..],
            b"2026-08-09",
            b"2026-08-09T21:05:42",
            b"2026-08-09T21:05:42.Z",
            b"2026-13-09T21:05:42Z",
            b"2026-08-09T24:05:42Z",
            b"2026-08-09X21:05:42Z",
            b"2026-08-09T21:05:42.5+0200",
            b"2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.260485341",
            b"20a6-08-09T21:05:42Z",
        ] {
            assert_eq!(
                parse_rfc3339_ns(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    // Frames below are copied from shared/data/real/coinbase/COINBASE.jsonl
    // (arrays shortened).

    #[test]
    fn market_trades_come_out_oldest_first_with_aggressor_side() {
        let (mut a, c) = adapter();
        let f = r#"{"channel":"market_trades","timestamp":"2026-08-09T21:05:48.228568804Z","sequence_num":0,"events":[{"type":"snapshot","trades":[{"product_id":"BTC-USD","trade_id":"1068572090","price":"65083.67","size":"0.002186","time":"2026-08-09T21:05:42.514318Z","side":"SELL"},{"product_id":"BTC-USD","trade_id":"1068572089","price":"65083.67","size":"0.00064389","time":"2026-08-09T21:05:41.139922Z","side":"SELL"},{"product_id":"BTC-USD","trade_id":"1068572088","price":"65083.66","size":"0.00007299","time":"2026-08-09T21:05:38.50436Z","side":"BUY"}]}]}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(3)));
        let ids: Vec<u64> = out.iter().map(|t| t.id).collect();
        assert_eq!(ids, [1_068_572_088, 1_068_572_089, 1_068_572_090]);
        assert!(out.windows(2).all(|w| w[0].ts_event_ns <= w[1].ts_event_ns));
        assert_eq!(out[0].side(), Side::Sell, "maker BUY → aggressor sold");
        assert_eq!(out[2].side(), Side::Buy);
        assert_eq!(out[1].size, 64_389);
        assert_eq!(out[0].price, 6_508_366);
        assert!(out.iter().all(|t| t.has_flag(flags::SNAPSHOT)));
        let upd = r#"{"channel":"market_trades","timestamp":"2026-08-09T21:05:48.251397169Z","sequence_num":1,"events":[{"type":"update","trades":[{"product_id":"BTC-USD","trade_id":"1068572091","price":"65083.67","size":"0.01034361","time":"2026-08-09T21:05:48.167634Z","side":"SELL"}]}]}"#;
        let (r, out) = dec(&mut a, &c, upd);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert!(!out[0].has_flag(flags::SNAPSHOT));
        assert_eq!(out[0].ts_event_ns, 1_786_309_548_167_634_000);
    }

    #[test]
    fn ticker_becomes_quote() {
        let (mut a, c) = adapter();
        let f = r#"{"channel":"ticker","timestamp":"2026-08-09T21:05:48.298032046Z","sequence_num":10,"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"ETH-USD","price":"1919.41","volume_24_h":"19975.95927439","low_24_h":"1911.04","high_24_h":"1925","low_52_w":"1505","high_52_w":"4955.9","price_percent_chg_24_h":"0.02501394006035","best_bid":"1919.44","best_ask":"1919.49","best_bid_quantity":"0.02858092","best_ask_quantity":"0.07814824"}]}]}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        let q = out[0];
        assert_eq!(q.kind(), Some(TickKind::Quote));
        assert_eq!(
            (q.price, q.size, q.price2, q.size2),
            (191_944, 2_858_092, 191_949, 7_814_824)
        );
        assert_eq!(q.id, 10);
        assert_eq!(q.ts_event_ns, 1_786_309_548_298_032_046);
    }

    #[test]
    fn l2_snapshot_and_update_levels() {
        let (mut a, c) = adapter();
        let snap = r#"{"channel":"l2_data","timestamp":"2026-08-09T21:05:48.483587501Z","sequence_num":13,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2026-08-09T21:05:48.170326Z","price_level":"65083.66","new_quantity":"0.20371215"},{"side":"offer","event_time":"2026-08-09T21:05:48.170326Z","price_level":"65083.67","new_quantity":"0.24290402"}]}]}"#;
        let (r, out) = dec(&mut a, &c, snap);
        assert_eq!(r, Ok(Decoded::Data(2)));
        assert!(
            out.iter()
                .all(|t| t.has_flag(flags::SNAPSHOT) && t.id == 13)
        );
        assert_eq!(out[1].side(), Side::Sell);
        let upd = r#"{"channel":"l2_data","timestamp":"2026-08-09T21:05:48.505350477Z","sequence_num":14,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2026-08-09T21:05:48.210883Z","price_level":"65062.5","new_quantity":"0.00583"},{"side":"bid","event_time":"2026-08-09T21:05:48.210883Z","price_level":"65061.91","new_quantity":"0"}]}]}"#;
        let (r, out) = dec(&mut a, &c, upd);
        assert_eq!(r, Ok(Decoded::Data(2)));
        assert!(!out[0].has_flag(flags::SNAPSHOT));
        assert_eq!(out[1].size, 0);
        assert_eq!(out[0].ts_event_ns, 1_786_309_548_210_883_000);
        assert_eq!(c.gaps.get(), 0);
    }

    #[test]
    fn sequence_gap_emits_gap_ticks_for_the_venue() {
        let (mut a, c) = adapter();
        let hb = |n: u64| {
            format!(
                r#"{{"channel":"heartbeats","timestamp":"2026-08-09T21:05:48.856364007Z","sequence_num":{n},"events":[{{"current_time":"2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.260485341","heartbeat_counter":41691}}]}}"#
            )
        };
        assert_eq!(dec(&mut a, &c, &hb(35)).0, Ok(Decoded::Control));
        assert_eq!(dec(&mut a, &c, &hb(36)).0, Ok(Decoded::Control));
        let (r, out) = dec(&mut a, &c, &hb(40));
        assert_eq!(r, Ok(Decoded::Data(2)), "one gap tick per instrument");
        assert!(out.iter().all(|t| t.kind() == Some(TickKind::Gap)));
        assert_eq!((out[0].id, out[0].price, out[0].size), (37, 40, 3));
        assert_eq!(c.gaps.get(), 1);
        // Reconnect restarts the chain at 0.
        let mut msgs = Vec::new();
        a.on_connect(&mut msgs);
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            msgs[0],
            r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"market_trades"}"#
        );
        assert_eq!(dec(&mut a, &c, &hb(0)).0, Ok(Decoded::Control));
        assert_eq!(c.gaps.get(), 1);
    }

    #[test]
    fn control_unknown_and_malformed() {
        let (mut a, c) = adapter();
        for f in [
            r#"{"channel":"subscriptions","timestamp":"2026-08-09T21:05:48.228846629Z","sequence_num":2,"events":[{"subscriptions":{"market_trades":["BTC-USD","ETH-USD"]}}]}"#,
            r#"{"channel":"candles","timestamp":"2026-08-09T21:05:51.491081826Z","sequence_num":3,"events":[{"type":"update","candles":[{"start":"1786309500","high":"1919.6","low":"1919.27","open":"1919.58","close":"1919.41","volume":"36.36630914","product_id":"ETH-USD"}]}]}"#,
            r#"{"type":"error","message":"failure to subscribe"}"#,
        ] {
            assert_eq!(dec(&mut a, &c, f).0, Ok(Decoded::Control), "{f}");
        }
        let unknown = r#"{"channel":"market_trades","timestamp":"2026-08-09T21:05:48.251397169Z","sequence_num":4,"events":[{"type":"update","trades":[{"product_id":"SOL-USD","trade_id":"1","price":"1","size":"1","time":"2026-08-09T21:05:48.167634Z","side":"SELL"}]}]}"#;
        assert_eq!(dec(&mut a, &c, unknown).0, Ok(Decoded::Data(0)));
        assert_eq!(c.unknown_symbols.get(), 1);
        for f in [
            "",
            "[]",
            "{}",
            r#"{"channel":"ticker","events":[]}"#,
            r#"{"channel":"ticker","timestamp":"yesterday","events":[]}"#,
            r#"{"channel":"market_trades","events":{}}"#,
            r#"{"channel":"market_trades","events":[{"trades":[{"product_id":"BTC-USD","trade_id":"1","price":"1.001","size":"1","time":"2026-08-09T21:05:48Z","side":"SELL"}]}]}"#,
            r#"{"channel":"market_trades","events":[{"trades":[{"product_id":"BTC-USD","trade_id":"1","price":"1","size":"1","time":"now","side":"SELL"}]}]}"#,
            r#"{"channel":"l2_data","events":[{"product_id":"BTC-USD","updates":[{"side":"up","event_time":"2026-08-09T21:05:48Z","price_level":"1","new_quantity":"1"}]}]}"#,
            r#"{"channel":"l2_data","events":[{"product_id":"BTC-USD"}]}"#,
        ] {
            assert!(dec(&mut a, &c, f).0.is_err(), "{f}");
        }
    }
}
