//! Binance spot / USD-M adapter: combined-stream frames → ticks.
//!
//! Accepts `{"stream":..,"data":{..}}` envelopes and bare payloads:
//! `trade`, `aggTrade`, `bookTicker` (spot has no `e`/`E`; futures does),
//! `depthUpdate` (spot and futures, `pu` ignored here), `kline` (final bars
//! only), REST depth snapshots (`lastUpdateId`), and subscribe acks
//! (`{"result":null,"id":1}`) as control.
//!
//! Trade ids are checked per instrument (`trade` and `aggTrade` separately):
//! a jump forward appends a [`TickKind::Gap`] tick before the trade and
//! counts it in `counters.gaps`; an id at or below the last one (replay,
//! reconnect to another server) just restarts the check.
//!
//! On connect the adapter subscribes with `{"method":"SUBSCRIBE",...}` to
//! `<symbol>@<channel>` for its configured symbols and channels (default
//! `trade` and `bookTicker`), at most 200 streams per message.
//!
//! Parsing uses simd-json's tape with reused buffers: the frame is copied
//! into a padded scratch buffer (simd-json rewrites its input), the tape is
//! refilled in place, fields are read straight from it. No allocation after
//! warm-up.

use std::sync::Arc;

use simd_json::prelude::*;
use simd_json::tape::{Tape, Value};
use simd_json::{Buffers, INPUT_PADDING, fill_tape_padded};

use super::{Adapter, AdapterParams, DecodeError, Decoded};
use crate::decimal::parse_scaled;
use crate::instruments::{Instrument, InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, TickKind, flags};

/// Decoder for Binance combined-stream frames.
pub struct BinanceAdapter {
    registry: Arc<InstrumentRegistry>,
    venue: Option<VenueId>,
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
    /// Last trade id per instrument id (`trade`, `aggTrade`); 0 = none yet.
    last_trade: Vec<[u64; 2]>,
    /// Stream names to subscribe on connect (`btcusdt@trade`).
    streams: Vec<String>,
    subscribe_id: u64,
}

/// Most streams per SUBSCRIBE message.
const STREAMS_PER_SUBSCRIBE: usize = 200;

impl std::fmt::Debug for BinanceAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceAdapter")
            .field("venue", &self.venue)
            .finish_non_exhaustive()
    }
}

const MS: i64 = 1_000_000;

impl BinanceAdapter {
    /// An adapter resolving symbols against `venue`'s instruments in
    /// `registry`. If no instrument uses the venue, every symbol counts as
    /// unknown.
    pub fn new(registry: Arc<InstrumentRegistry>, venue: &str) -> Self {
        let venue_id = registry.venue_id(venue);
        let n = registry.len();
        Self {
            registry,
            venue: venue_id,
            scratch: Vec::with_capacity(64 * 1024),
            buffers: Buffers::new(64 * 1024),
            tape: Tape(Vec::with_capacity(4096)),
            last_trade: vec![[0; 2]; n],
            streams: Vec::new(),
            subscribe_id: 0,
        }
    }

    /// An adapter for `params.venue` that subscribes to `params.symbols` ×
    /// `params.channels` (default `trade`, `bookTicker`) on connect.
    pub fn with_params(registry: Arc<InstrumentRegistry>, params: &AdapterParams) -> Self {
        let mut a = Self::new(registry, &params.venue);
        let default = ["trade".to_string(), "bookTicker".to_string()];
        let channels: &[String] = if params.channels.is_empty() {
            &default
        } else {
            &params.channels
        };
        for sym in &params.symbols {
            for ch in channels {
                a.streams
                    .push(format!("{}@{}", sym.to_ascii_lowercase(), ch.trim()));
            }
        }
        a
    }
}

fn get_str<'i>(v: &Value<'_, 'i>, k: &'static str) -> Result<&'i str, DecodeError> {
    v.get(k)
        .and_then(|x| x.into_string())
        .ok_or(DecodeError::MissingField(k))
}

fn get_i64(v: &Value<'_, '_>, k: &'static str) -> Result<i64, DecodeError> {
    v.get(k)
        .and_then(|x| x.as_i64())
        .ok_or(DecodeError::MissingField(k))
}

fn price(inst: &Instrument, s: &str, k: &'static str) -> Result<i64, DecodeError> {
    parse_scaled(s, inst.price_precision).map_err(|e| DecodeError::Decimal(k, e))
}

fn size(inst: &Instrument, s: &str, k: &'static str) -> Result<i64, DecodeError> {
    parse_scaled(s, inst.size_precision).map_err(|e| DecodeError::Decimal(k, e))
}

impl Adapter for BinanceAdapter {
    fn on_connect(&mut self, out: &mut Vec<String>) {
        for chunk in self.streams.chunks(STREAMS_PER_SUBSCRIBE) {
            self.subscribe_id += 1;
            let params: Vec<String> = chunk.iter().map(|s| format!("\"{s}\"")).collect();
            out.push(format!(
                r#"{{"method":"SUBSCRIBE","params":[{}],"id":{}}}"#,
                params.join(","),
                self.subscribe_id
            ));
        }
    }

    fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        out: &mut Vec<Tick>,
        counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError> {
        let len = frame.len();
        self.scratch.clear();
        self.scratch.extend_from_slice(frame);
        self.scratch.resize(len + INPUT_PADDING, 0);
        let mut tape: Tape<'_> = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let res = match fill_tape_padded(&mut self.scratch, len, &mut self.buffers, &mut tape) {
            Ok(()) => decode_value(
                tape.as_value(),
                &self.registry,
                self.venue,
                recv_ns,
                out,
                counters,
                &mut self.last_trade,
            ),
            Err(_) => Err(DecodeError::Json),
        };
        self.tape = tape.reset();
        res
    }
}

/// Checks `id` against the last trade id of `inst` (`slot` 0 = trade,
/// 1 = aggTrade) and appends a gap tick when ids were skipped.
#[inline]
#[allow(clippy::too_many_arguments)]
fn check_trade_id(
    last: &mut [[u64; 2]],
    inst: &Instrument,
    slot: usize,
    id: u64,
    ts: i64,
    recv_ns: i64,
    out: &mut Vec<Tick>,
    counters: &FeedCounters,
) {
    let Some(l) = last.get_mut(inst.id.0 as usize).map(|l| &mut l[slot]) else {
        return;
    };
    let expected = l.wrapping_add(1);
    if *l != 0 && id > expected {
        counters.gaps.inc();
        out.push(Tick {
            ts_event_ns: ts,
            ts_recv_ns: recv_ns,
            price: id as i64,
            size: (id - expected).min(i64::MAX as u64) as i64,
            id: expected,
            instrument: inst.id,
            kind: TickKind::Gap as u8,
            ..Tick::default()
        });
    }
    *l = id;
}

#[allow(clippy::too_many_arguments)]
fn decode_value(
    root: Value<'_, '_>,
    reg: &InstrumentRegistry,
    venue: Option<VenueId>,
    recv_ns: i64,
    out: &mut Vec<Tick>,
    counters: &FeedCounters,
    last_trade: &mut [[u64; 2]],
) -> Result<Decoded, DecodeError> {
    if !root.is_object() {
        return Err(DecodeError::Json);
    }
    let data = root.get("data").unwrap_or(root);
    if !data.is_object() {
        return Err(DecodeError::MissingField("data"));
    }
    let lookup = |sym: &str| -> Option<&Instrument> {
        let id = reg.lookup(venue?, sym.as_bytes());
        if id.is_none() {
            counters.unknown_symbols.inc();
        }
        id.and_then(|id| reg.get(id))
    };
    let start = out.len();
    match data.get("e").and_then(|e| e.into_string()) {
        Some("trade") | Some("aggTrade") => {
            let Some(inst) = lookup(get_str(&data, "s")?) else {
                return Ok(Decoded::Data(0));
            };
            let id_key = if data.get("t").is_some() { "t" } else { "a" };
            let id = data
                .get(id_key)
                .and_then(|x| x.as_u64())
                .ok_or(DecodeError::MissingField("t"))?;
            let p = price(inst, get_str(&data, "p")?, "p")?;
            let q = size(inst, get_str(&data, "q")?, "q")?;
            let t_ms = get_i64(&data, "T")?;
            let maker = data
                .get("m")
                .and_then(|x| x.as_bool())
                .ok_or(DecodeError::MissingField("m"))?;
            // m = buyer is the maker, so the aggressor sold.
            let side = if maker { Side::Sell } else { Side::Buy };
            let mut t = Tick::trade(inst.id, t_ms * MS, recv_ns, p, q, side, id);
            if p <= 0 || q < 0 {
                t.flags |= flags::SUSPECT;
            }
            let slot = usize::from(id_key == "a");
            check_trade_id(
                last_trade,
                inst,
                slot,
                id,
                t_ms * MS,
                recv_ns,
                out,
                counters,
            );
            out.push(t);
        }
        Some("bookTicker") | None if data.get("b").is_some_and(|b| b.into_string().is_some()) => {
            let Some(inst) = lookup(get_str(&data, "s")?) else {
                return Ok(Decoded::Data(0));
            };
            let bid = price(inst, get_str(&data, "b")?, "b")?;
            let bid_sz = size(inst, get_str(&data, "B")?, "B")?;
            let ask = price(inst, get_str(&data, "a")?, "a")?;
            let ask_sz = size(inst, get_str(&data, "A")?, "A")?;
            let u = data.get("u").and_then(|x| x.as_u64()).unwrap_or(0);
            let (ts, mut fl) = match data
                .get("T")
                .or_else(|| data.get("E"))
                .and_then(|x| x.as_i64())
            {
                Some(ms) => (ms * MS, 0),
                None => (recv_ns, flags::NO_EVENT_TIME),
            };
            if bid > ask && ask > 0 {
                fl |= flags::SUSPECT;
            }
            let mut t = Tick::quote(inst.id, ts, recv_ns, bid, bid_sz, ask, ask_sz, u);
            t.flags |= fl;
            out.push(t);
        }
        Some("depthUpdate") => {
            let Some(inst) = lookup(get_str(&data, "s")?) else {
                return Ok(Decoded::Data(0));
            };
            let u = data
                .get("u")
                .and_then(|x| x.as_u64())
                .ok_or(DecodeError::MissingField("u"))?;
            let ts = get_i64(&data, "E")? * MS;
            push_levels(&data, "b", Side::Buy, inst, ts, recv_ns, u, 0, out)?;
            push_levels(&data, "a", Side::Sell, inst, ts, recv_ns, u, 0, out)?;
        }
        Some("kline") => {
            let Some(inst) = lookup(get_str(&data, "s")?) else {
                return Ok(Decoded::Data(0));
            };
            let k = data.get("k").ok_or(DecodeError::MissingField("k"))?;
            if k.get("x").and_then(|x| x.as_bool()) != Some(true) {
                return Ok(Decoded::Control);
            }
            let open = price(inst, get_str(&k, "o")?, "o")?;
            let t = Tick {
                ts_event_ns: get_i64(&k, "t")? * MS,
                ts_recv_ns: recv_ns,
                price: price(inst, get_str(&k, "c")?, "c")?,
                size: size(inst, get_str(&k, "v")?, "v")?,
                price2: price(inst, get_str(&k, "h")?, "h")?,
                size2: price(inst, get_str(&k, "l")?, "l")?,
                id: open as u64,
                instrument: inst.id,
                kind: TickKind::Bar as u8,
                side: Side::None as u8,
                flags: 0,
            };
            out.push(t);
        }
        Some(_) => return Ok(Decoded::Control),
        None => {
            if let Some(last) = data.get("lastUpdateId").and_then(|x| x.as_u64()) {
                // REST depth snapshot: no symbol inside; the caller tags it
                // via the stream name if present, else the venue's only
                // instrument is assumed.
                let sym = root
                    .get("stream")
                    .and_then(|s| s.into_string())
                    .and_then(|s| s.split('@').next());
                let inst = match sym {
                    Some(s) => lookup(s),
                    None => venue.and_then(|v| single_instrument(reg, v)),
                };
                let Some(inst) = inst else {
                    return Ok(Decoded::Data(0));
                };
                let ts = data
                    .get("E")
                    .and_then(|x| x.as_i64())
                    .map_or(recv_ns, |ms| ms * MS);
                push_levels(
                    &data,
                    "bids",
                    Side::Buy,
                    inst,
                    ts,
                    recv_ns,
                    last,
                    flags::SNAPSHOT,
                    out,
                )?;
                push_levels(
                    &data,
                    "asks",
                    Side::Sell,
                    inst,
                    ts,
                    recv_ns,
                    last,
                    flags::SNAPSHOT,
                    out,
                )?;
            } else if data.get("result").is_some() || data.get("id").is_some() {
                return Ok(Decoded::Control);
            } else {
                return Err(DecodeError::MissingField("e"));
            }
        }
    }
    Ok(Decoded::Data(out.len() - start))
}

fn single_instrument(reg: &InstrumentRegistry, venue: VenueId) -> Option<&Instrument> {
    let mut it = reg.iter().filter(|i| reg.venue_id(&i.venue) == Some(venue));
    let first = it.next()?;
    if it.next().is_some() {
        None
    } else {
        Some(first)
    }
}

#[allow(clippy::too_many_arguments)]
fn push_levels(
    data: &Value<'_, '_>,
    key: &'static str,
    side: Side,
    inst: &Instrument,
    ts: i64,
    recv_ns: i64,
    id: u64,
    fl: u16,
    out: &mut Vec<Tick>,
) -> Result<(), DecodeError> {
    let levels = data
        .get(key)
        .and_then(|l| l.as_array())
        .ok_or(DecodeError::MissingField(key))?;
    for lvl in levels.iter() {
        let px = lvl
            .get_idx(0)
            .and_then(|x| x.into_string())
            .ok_or(DecodeError::MissingField(key))?;
        let qty = lvl
            .get_idx(1)
            .and_then(|x| x.into_string())
            .ok_or(DecodeError::MissingField(key))?;
        out.push(Tick {
            ts_event_ns: ts,
            ts_recv_ns: recv_ns,
            price: price(inst, px, key)?,
            size: size(inst, qty, key)?,
            price2: 0,
            size2: 0,
            id,
            instrument: inst.id,
            kind: TickKind::BookLevel as u8,
            side: side as u8,
            flags: fl,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> (BinanceAdapter, FeedCounters) {
        let mut r = InstrumentRegistry::new();
        r.add("BINANCE:BTCUSDT", 2, 8, None).unwrap();
        r.add("BINANCE:BNBUSDT", 8, 8, None).unwrap();
        (
            BinanceAdapter::new(Arc::new(r), "BINANCE"),
            FeedCounters::default(),
        )
    }

    fn dec(
        a: &mut BinanceAdapter,
        c: &FeedCounters,
        f: &str,
    ) -> (Result<Decoded, DecodeError>, Vec<Tick>) {
        let mut out = Vec::new();
        let r = a.decode(f.as_bytes(), 7, &mut out, c);
        (r, out)
    }

    #[test]
    fn real_trade_frame() {
        let (mut a, c) = adapter();
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255342,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.00200000","T":1723161255341,"m":true,"M":true}}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        let t = out[0];
        assert_eq!(t.price, 6_183_763);
        assert_eq!(t.size, 200_000);
        assert_eq!(t.id, 3_735_683_259);
        assert_eq!(t.side(), Side::Sell);
        assert_eq!(t.ts_event_ns, 1_723_161_255_341_000_000);
        assert_eq!(t.ts_recv_ns, 7);
    }

    #[test]
    fn spot_book_ticker_without_event_time() {
        let (mut a, c) = adapter();
        let f = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        let t = out[0];
        assert_eq!(t.kind(), Some(TickKind::Quote));
        assert_eq!((t.price, t.price2), (6_183_763, 6_183_764));
        assert_eq!(t.size, 378_826_000);
        assert!(t.has_flag(flags::NO_EVENT_TIME));
        assert_eq!(t.id, 50_093_239_212);
    }

    #[test]
    fn depth_update_levels() {
        let (mut a, c) = adapter();
        let f = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":1,"u":5,"b":[["61737.63000000","0.00000000"],["61730.17000000","1.5"]],"a":[["61837.64000000","1.54698000"]]}}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(3)));
        assert_eq!(out[0].side(), Side::Buy);
        assert_eq!(out[0].size, 0);
        assert_eq!(out[2].side(), Side::Sell);
        assert!(out.iter().all(|t| t.id == 5));
    }

    #[test]
    fn unknown_symbol_is_counted_not_an_error() {
        let (mut a, c) = adapter();
        let f = r#"{"data":{"e":"trade","s":"XRPUSDT","t":1,"p":"1","q":"1","T":1,"m":false}}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(0)));
        assert!(out.is_empty());
        assert_eq!(c.unknown_symbols.get(), 1);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let (mut a, c) = adapter();
        for f in [
            "",
            "{",
            "[1,2]",
            "null",
            r#"{"data":5}"#,
            r#"{"data":{"e":"trade","s":"BTCUSDT"}}"#,
            r#"{"data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1.234","q":"1","T":1,"m":true}}"#,
            r#"{"data":{"e":"trade","s":"BTCUSDT","t":1,"p":"abc","q":"1","T":1,"m":true}}"#,
            r#"{"data":{"e":"depthUpdate","s":"BTCUSDT","u":1,"E":1,"b":[[1]],"a":[]}}"#,
            r#"{"x":1}"#,
        ] {
            let (r, out) = dec(&mut a, &c, f);
            assert!(r.is_err(), "{f} → {r:?}");
            let _ = out;
        }
        let (r, _) = dec(&mut a, &c, r#"{"result":null,"id":1}"#);
        assert_eq!(r, Ok(Decoded::Control));
        // Still decodes after errors (buffers reused correctly).
        let (r, out) = dec(
            &mut a,
            &c,
            r#"{"data":{"e":"aggTrade","s":"BNBUSDT","a":9,"p":"25.35190000","q":"1","T":1,"m":false}}"#,
        );
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(out[0].id, 9);
        assert_eq!(out[0].side(), Side::Buy);
    }

    #[test]
    fn trade_id_gaps_emit_gap_ticks() {
        let (mut a, c) = adapter();
        let tr = |id: u64| {
            format!(
                r#"{{"data":{{"e":"trade","s":"BTCUSDT","t":{id},"p":"1.00","q":"1","T":5,"m":false}}}}"#
            )
        };
        assert_eq!(dec(&mut a, &c, &tr(100)).0, Ok(Decoded::Data(1)));
        assert_eq!(dec(&mut a, &c, &tr(101)).0, Ok(Decoded::Data(1)));
        let (r, out) = dec(&mut a, &c, &tr(104));
        assert_eq!(r, Ok(Decoded::Data(2)));
        assert_eq!(out[0].kind(), Some(TickKind::Gap));
        assert_eq!(out[0].id, 102, "expected id");
        assert_eq!(out[0].price, 104, "received id");
        assert_eq!(out[0].size, 2, "missing ids");
        assert_eq!(out[1].kind(), Some(TickKind::Trade));
        assert_eq!(c.gaps.get(), 1);
        // Going back (replay / new server) restarts the check silently.
        assert_eq!(dec(&mut a, &c, &tr(50)).0, Ok(Decoded::Data(1)));
        assert_eq!(dec(&mut a, &c, &tr(51)).0, Ok(Decoded::Data(1)));
        assert_eq!(c.gaps.get(), 1);
        // aggTrade ids are a separate sequence.
        let agg = r#"{"data":{"e":"aggTrade","s":"BTCUSDT","a":9000,"p":"1.00","q":"1","T":5,"m":false}}"#;
        assert_eq!(dec(&mut a, &c, agg).0, Ok(Decoded::Data(1)));
        assert_eq!(c.gaps.get(), 1);
    }

    #[test]
    fn subscribes_on_every_connect() {
        let mut r = InstrumentRegistry::new();
        r.add("BINANCE:BTCUSDT", 2, 8, None).unwrap();
        let params = AdapterParams {
            venue: "BINANCE".into(),
            symbols: vec!["BTCUSDT".into(), "ethusdt".into()],
            channels: vec![],
            api_key: None,
        };
        let mut a = BinanceAdapter::with_params(Arc::new(r), &params);
        let mut out = Vec::new();
        a.on_connect(&mut out);
        assert_eq!(
            out,
            vec![
                r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@bookTicker","ethusdt@trade","ethusdt@bookTicker"],"id":1}"#
            ]
        );
        out.clear();
        a.on_connect(&mut out);
        assert!(out[0].ends_with(r#""id":2}"#), "{out:?}");
    }

    #[test]
    fn escaped_strings_still_parse() {
        let (mut a, c) = adapter();
        let f =
            r#"{"data":{"e":"trade","s":"BTC\u0055SDT","t":1,"p":"1.00","q":"1","T":1,"m":false}}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(out[0].price, 100);
    }
}
