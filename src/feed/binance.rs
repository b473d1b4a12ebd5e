//! Binance spot / USD-M adapter: combined-stream frames → ticks.
//!
//! Accepts `{"stream":..,"data":{..}}` envelopes and bare payloads:
//! `trade`, `aggTrade`, `bookTicker` (spot has no `e`/`E`; USD-M does),
//! `depthUpdate` (spot and USD-M), `kline` (final bars only; open bars are
//! control), REST depth snapshots (`lastUpdateId`), and subscribe acks
//! (`{"result":null,"id":1}`) as control.
//!
//! # Spot and USD-M
//! One adapter serves both markets; the differences are detected per frame,
//! so no market parameter is needed:
//! - `depthUpdate` with `pu` (USD-M) is chained by `pu == previous u`;
//!   without `pu` (spot) by `U == previous u + 1`. USD-M depth carries `T`
//!   (transaction time), used as the event time when present, else `E`.
//! - USD-M `trade` carries `X`. Only `X:"MARKET"` trades become trade ticks.
//!   `INSURANCE_FUND`, `ADL` and `NA` prints are liquidation transfers at
//!   bankruptcy prices, not price discovery: they would distort bars and
//!   VWAP, so they are decoded as **control** messages (counted in
//!   `control`, never emitted). Whether they share the trade-id sequence is
//!   not documented, so such a print advances the trade-id chain only when
//!   its id is exactly the next one — either way no false gap is reported.
//!
//! # Sequence gaps
//! Per instrument the adapter checks that `trade` ids (`t`) and `aggTrade`
//! ids (`a`) are contiguous and that depth diffs chain (see above). On a
//! break it appends a [`TickKind::Gap`] tick *before* the frame's data ticks
//! and counts it in [`FeedCounters::gaps`]. The first message of each chain
//! is never a gap. Depth chains restart on every (re)connect
//! ([`Adapter::on_connect`]); trade-id chains do not, so trades missed
//! while disconnected show up as a gap. The REST snapshot does not touch
//! the depth chain: diffs received before it may already cover its
//! `lastUpdateId` (both recorded captures show this), and aligning snapshot
//! and diffs is the book builder's job.
//!
//! Parsing uses simd-json's tape with reused buffers ([`TapeParser`]). No
//! allocation after warm-up, except the rare gap tick inserted in front of
//! an already decoded depth frame (an in-place shift).

use std::sync::Arc;

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::parse::{MS, SeqTracker, TapeParser, gap_tick, get_i64, get_str, get_u64, price, size};
use super::{Adapter, AdapterParams, DecodeError, Decoded};
use crate::instruments::{Instrument, InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, TickKind, flags};

/// Channels subscribed when [`AdapterParams::channels`] is empty.
pub const DEFAULT_CHANNELS: [&str; 2] = ["trade", "bookTicker"];

/// Per-instrument sequence state.
#[derive(Debug, Clone, Copy, Default)]
struct Chains {
    trade: SeqTracker,
    agg: SeqTracker,
    depth: SeqTracker,
}

/// Decoder for Binance combined-stream frames (spot and USD-M).
pub struct BinanceAdapter {
    registry: Arc<InstrumentRegistry>,
    venue: Option<VenueId>,
    symbols: Vec<String>,
    channels: Vec<String>,
    parser: TapeParser,
    chains: Vec<Chains>,
}

impl std::fmt::Debug for BinanceAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceAdapter")
            .field("venue", &self.venue)
            .field("symbols", &self.symbols.len())
            .finish_non_exhaustive()
    }
}

impl BinanceAdapter {
    /// An adapter resolving symbols against `venue`'s instruments in
    /// `registry`, subscribing to every instrument of the venue with the
    /// default channels. If no instrument uses the venue, every symbol
    /// counts as unknown.
    pub fn new(registry: Arc<InstrumentRegistry>, venue: &str) -> Self {
        Self::with_params(
            registry,
            &AdapterParams {
                venue: venue.to_string(),
                ..AdapterParams::default()
            },
        )
    }

    /// An adapter for `params.venue`. Subscribes to `params.symbols` (all of
    /// the venue's instruments when empty) on `params.channels`
    /// ([`DEFAULT_CHANNELS`] when empty; any Binance stream suffix works:
    /// `aggTrade`, `depth@100ms`, `kline_1m`, ...).
    pub fn with_params(registry: Arc<InstrumentRegistry>, params: &AdapterParams) -> Self {
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
        let n = registry.len();
        Self {
            registry,
            venue,
            symbols,
            channels,
            parser: TapeParser::default(),
            chains: vec![Chains::default(); n],
        }
    }

    /// The combined-stream `SUBSCRIBE` request for the configured symbols
    /// and channels: `{"method":"SUBSCRIBE","params":["btcusdt@trade",...],"id":1}`.
    /// `None` when there is nothing to subscribe.
    pub fn subscribe_message(&self) -> Option<String> {
        if self.symbols.is_empty() || self.channels.is_empty() {
            return None;
        }
        let mut s = String::from(r#"{"method":"SUBSCRIBE","params":["#);
        let mut first = true;
        for sym in &self.symbols {
            for ch in &self.channels {
                if !first {
                    s.push(',');
                }
                first = false;
                s.push('"');
                s.push_str(&sym.to_ascii_lowercase());
                s.push('@');
                s.push_str(ch);
                s.push('"');
            }
        }
        s.push_str(r#"],"id":1}"#);
        Some(s)
    }
}

impl Adapter for BinanceAdapter {
    fn on_connect(&mut self, out: &mut Vec<String>) {
        for c in &mut self.chains {
            c.depth.reset();
        }
        if let Some(m) = self.subscribe_message() {
            out.push(m);
        }
    }

    fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        out: &mut Vec<Tick>,
        counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError> {
        let mut cx = Cx {
            reg: &self.registry,
            venue: self.venue,
            chains: &mut self.chains,
            recv_ns,
            counters,
        };
        self.parser
            .parse(frame, |root| decode_value(root, &mut cx, out))?
    }
}

/// Decode context: what `decode_value` needs besides the tape.
struct Cx<'a> {
    reg: &'a InstrumentRegistry,
    venue: Option<VenueId>,
    chains: &'a mut [Chains],
    recv_ns: i64,
    counters: &'a FeedCounters,
}

impl<'a> Cx<'a> {
    fn lookup(&self, sym: &str) -> Option<&'a Instrument> {
        super::parse::lookup_counted(self.reg, self.venue, sym, self.counters)
    }

    fn chains(&mut self, inst: &Instrument) -> Option<&mut Chains> {
        self.chains.get_mut(inst.id.0 as usize)
    }

    /// Records a gap: counts it and inserts the gap tick at `at`.
    #[cold]
    fn gap(&self, out: &mut Vec<Tick>, at: usize, inst: &Instrument, ts: i64, exp: u64, got: u64) {
        self.counters.gaps.inc();
        out.insert(at, gap_tick(inst.id, ts, self.recv_ns, exp, got));
    }
}

fn decode_value(
    root: Value<'_, '_>,
    cx: &mut Cx<'_>,
    out: &mut Vec<Tick>,
) -> Result<Decoded, DecodeError> {
    if !root.is_object() {
        return Err(DecodeError::Json);
    }
    let recv_ns = cx.recv_ns;
    let data = root.get("data").unwrap_or(root);
    if !data.is_object() {
        return Err(DecodeError::MissingField("data"));
    }
    let start = out.len();
    match data.get("e").and_then(|e| e.into_string()) {
        Some(ev @ ("trade" | "aggTrade")) => {
            let Some(inst) = cx.lookup(get_str(&data, "s")?) else {
                return Ok(Decoded::Data(0));
            };
            let is_agg = ev == "aggTrade";
            let id = if is_agg {
                get_u64(&data, "a")?
            } else {
                get_u64(&data, "t")?
            };
            let p = price(inst, get_str(&data, "p")?, "p")?;
            let q = size(inst, get_str(&data, "q")?, "q")?;
            let ts = get_i64(&data, "T")? * MS;
            let maker = data
                .get("m")
                .and_then(|x| x.as_bool())
                .ok_or(DecodeError::MissingField("m"))?;
            // USD-M execution type: only MARKET prints are market trades.
            if let Some(x) = data.get("X").and_then(|x| x.into_string()) {
                if x != "MARKET" {
                    if let Some(c) = cx.chains(inst) {
                        if c.trade.is_next(id) {
                            c.trade.set(id);
                        }
                    }
                    return Ok(Decoded::Control);
                }
            }
            // m = buyer is the maker, so the aggressor sold.
            let side = if maker { Side::Sell } else { Side::Buy };
            let mut t = Tick::trade(inst.id, ts, recv_ns, p, q, side, id);
            if p <= 0 || q < 0 {
                t.flags |= flags::SUSPECT;
            }
            out.push(t);
            let gap = cx.chains(inst).and_then(|c| {
                if is_agg {
                    c.agg.next_range(id, id)
                } else {
                    c.trade.next_range(id, id)
                }
            });
            if let Some(exp) = gap {
                cx.gap(out, start, inst, ts, exp, id);
            }
        }
        Some("bookTicker") | None if data.get("b").is_some_and(|b| b.into_string().is_some()) => {
            let Some(inst) = cx.lookup(get_str(&data, "s")?) else {
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
            let Some(inst) = cx.lookup(get_str(&data, "s")?) else {
                return Ok(Decoded::Data(0));
            };
            let u = get_u64(&data, "u")?;
            let first = data.get("U").and_then(|x| x.as_u64());
            let pu = data.get("pu").and_then(|x| x.as_u64());
            let ts = match data.get("T").and_then(|x| x.as_i64()) {
                Some(ms) => ms * MS,
                None => get_i64(&data, "E")? * MS,
            };
            push_levels(&data, "b", Side::Buy, inst, ts, recv_ns, u, 0, out)?;
            push_levels(&data, "a", Side::Sell, inst, ts, recv_ns, u, 0, out)?;
            let gap = cx.chains(inst).and_then(|c| match (pu, first) {
                (Some(pu), _) => c.depth.next_linked(pu, u).map(|e| (e, pu)),
                (None, Some(first)) => c.depth.next_range(first, u).map(|e| (e, first)),
                (None, None) => None,
            });
            if let Some((exp, got)) = gap {
                cx.gap(out, start, inst, ts, exp, got);
            }
        }
        Some("kline") => {
            let Some(inst) = cx.lookup(get_str(&data, "s")?) else {
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
                // REST depth snapshot: no symbol inside; the stream name
                // tags it if present, else the venue's only instrument is
                // assumed.
                let sym = root
                    .get("stream")
                    .and_then(|s| s.into_string())
                    .and_then(|s| s.split('@').next());
                let inst = match sym {
                    Some(s) => cx.lookup(s),
                    None => cx.venue.and_then(|v| single_instrument(cx.reg, v)),
                };
                let Some(inst) = inst else {
                    return Ok(Decoded::Data(0));
                };
                let ts = data
                    .get("T")
                    .or_else(|| data.get("E"))
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
    fn escaped_strings_still_parse() {
        let (mut a, c) = adapter();
        let f =
            r#"{"data":{"e":"trade","s":"BTC\u0055SDT","t":1,"p":"1.00","q":"1","T":1,"m":false}}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(out[0].price, 100);
    }

    #[test]
    fn trade_id_gaps_are_detected_per_instrument() {
        let (mut a, c) = adapter();
        let t = |sym: &str, id: u64| {
            format!(
                r#"{{"stream":"x@trade","data":{{"e":"trade","E":1,"s":"{sym}","t":{id},"p":"1.00","q":"1","T":1723161255342,"m":false}}}}"#
            )
        };
        assert_eq!(dec(&mut a, &c, &t("BTCUSDT", 100)).0, Ok(Decoded::Data(1)));
        assert_eq!(dec(&mut a, &c, &t("BNBUSDT", 7)).0, Ok(Decoded::Data(1)));
        assert_eq!(dec(&mut a, &c, &t("BTCUSDT", 101)).0, Ok(Decoded::Data(1)));
        let (r, out) = dec(&mut a, &c, &t("BTCUSDT", 105));
        assert_eq!(r, Ok(Decoded::Data(2)));
        let g = out[0];
        assert_eq!(g.kind(), Some(TickKind::Gap));
        assert_eq!((g.id, g.price, g.size), (102, 105, 3));
        assert_eq!(g.ts_event_ns, 1_723_161_255_342_000_000);
        assert_eq!(out[1].id, 105);
        assert_eq!(c.gaps.get(), 1);
        assert_eq!(dec(&mut a, &c, &t("BNBUSDT", 8)).0, Ok(Decoded::Data(1)));
        // aggTrade ids form their own chain.
        let agg = |id: u64| {
            format!(
                r#"{{"stream":"ftmusdt@aggTrade","data":{{"e":"aggTrade","E":1628952396573,"s":"BTCUSDT","a":{id},"p":"0.34","q":"99.90000000","f":38248910,"l":38248910,"T":1628952396572,"m":true,"M":true}}}}"#
            )
        };
        assert_eq!(dec(&mut a, &c, &agg(31_718_372)).0, Ok(Decoded::Data(1)));
        assert_eq!(dec(&mut a, &c, &agg(31_718_373)).0, Ok(Decoded::Data(1)));
        assert_eq!(dec(&mut a, &c, &agg(31_718_375)).0, Ok(Decoded::Data(2)));
        assert_eq!(c.gaps.get(), 2);
    }

    #[test]
    fn spot_depth_chain_u_follows_previous_u() {
        let (mut a, c) = adapter();
        // Real consecutive diffs from the hftbacktest spot capture.
        let d1 = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"]],"a":[["61837.64000000","1.54698000"]]}}"#;
        let d2 = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#;
        let d3 = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255408,"s":"BTCUSDT","U":50093239210,"u":50093239224,"b":[],"a":[["61837.64000000","1.60520000"]]}}"#;
        assert_eq!(dec(&mut a, &c, d1).0, Ok(Decoded::Data(2)));
        assert_eq!(dec(&mut a, &c, d2).0, Ok(Decoded::Data(3)));
        assert_eq!(c.gaps.get(), 0);
        let (r, out) = dec(&mut a, &c, d3);
        assert_eq!(r, Ok(Decoded::Data(2)));
        assert_eq!(out[0].kind(), Some(TickKind::Gap));
        assert_eq!(
            (out[0].id, out[0].price, out[0].size),
            (50_093_239_208, 50_093_239_210, 2)
        );
        assert_eq!(out[1].kind(), Some(TickKind::BookLevel));
        assert_eq!(c.gaps.get(), 1);
        // A reconnect restarts the chain: no gap for the first diff after it.
        let mut msgs = Vec::new();
        a.on_connect(&mut msgs);
        assert_eq!(dec(&mut a, &c, d1).0, Ok(Decoded::Data(2)));
        assert_eq!(c.gaps.get(), 1);
    }

    #[test]
    fn usdm_depth_chain_uses_pu_and_transaction_time() {
        let (mut a, c) = adapter();
        let d = |pu: u64, u: u64| {
            format!(
                r#"{{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":{},"u":{u},"pu":{pu},"b":[["58710.20","0.014"]],"a":[]}}}}"#,
                pu + 69
            )
        };
        let (r, out) = dec(&mut a, &c, &d(5_123_107_831_937, 5_123_107_837_557));
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(out[0].ts_event_ns, 1_723_161_256_298_000_000, "T, not E");
        // U is not previous u + 1 on futures; only pu matters.
        assert_eq!(
            dec(&mut a, &c, &d(5_123_107_837_557, 5_123_107_838_000)).0,
            Ok(Decoded::Data(1))
        );
        assert_eq!(c.gaps.get(), 0);
        let (r, out) = dec(&mut a, &c, &d(5_123_107_838_001, 5_123_107_839_000));
        assert_eq!(r, Ok(Decoded::Data(2)));
        assert_eq!(
            (out[0].id, out[0].price),
            (5_123_107_838_000, 5_123_107_838_001)
        );
        assert_eq!(c.gaps.get(), 1);
    }

    #[test]
    fn usdm_frames_and_non_market_trades() {
        let (mut a, c) = adapter();
        let bt = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}"#;
        let (r, out) = dec(&mut a, &c, bt);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert!(!out[0].has_flag(flags::NO_EVENT_TIME));
        assert_eq!(out[0].ts_event_ns, 1_723_161_256_313_000_000);
        let tr = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#;
        let (r, out) = dec(&mut a, &c, tr);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(
            (out[0].price, out[0].size, out[0].side()),
            (6_180_030, 600_000, Side::Buy)
        );
        // An insurance-fund print is control; taking the next id keeps the chain.
        let ins = tr
            .replace("MARKET", "INSURANCE_FUND")
            .replace("5266583935", "5266583936");
        assert_eq!(dec(&mut a, &c, &ins).0, Ok(Decoded::Control));
        let next = tr.replace("5266583935", "5266583937");
        assert_eq!(dec(&mut a, &c, &next).0, Ok(Decoded::Data(1)));
        // An ADL print from another id space leaves the chain alone.
        let adl = tr.replace("MARKET", "ADL").replace("5266583935", "17");
        assert_eq!(dec(&mut a, &c, &adl).0, Ok(Decoded::Control));
        let next = tr.replace("5266583935", "5266583938");
        assert_eq!(dec(&mut a, &c, &next).0, Ok(Decoded::Data(1)));
        assert_eq!(c.gaps.get(), 0);
        // Open klines are control, final ones bars.
        let open = r#"{"stream":"ftmusdt@kline_1m","data":{"e":"kline","E":1628952396573,"s":"BTCUSDT","k":{"t":1628952360000,"T":1628952419999,"s":"BTCUSDT","i":"1m","f":38248833,"L":38248910,"o":"0.34064000","c":"0.33993000","h":"0.34070000","l":"0.33934000","v":"208601.00000000","n":78,"x":false,"q":"70846.76968900","V":"156046.30000000","Q":"52984.16932200","B":"0"}}}"#;
        assert_eq!(dec(&mut a, &c, open).0, Ok(Decoded::Control));
        let (mut a8, c8) = {
            let mut r = InstrumentRegistry::new();
            r.add("BINANCE:FTMUSDT", 8, 8, None).unwrap();
            (
                BinanceAdapter::new(Arc::new(r), "BINANCE"),
                FeedCounters::default(),
            )
        };
        let fin = open
            .replace("\"x\":false", "\"x\":true")
            .replace("BTCUSDT", "FTMUSDT");
        let (r, out) = dec(&mut a8, &c8, &fin);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(
            (out[0].id as i64, out[0].price, out[0].price2, out[0].size2),
            (34_064_000, 33_993_000, 34_070_000, 33_934_000)
        );
    }

    #[test]
    fn subscribe_message_from_params() {
        let mut r = InstrumentRegistry::new();
        r.add("BINANCE:BTCUSDT", 2, 8, None).unwrap();
        r.add("BINANCE:ETHUSDT", 2, 8, None).unwrap();
        let r = Arc::new(r);
        let mut a = BinanceAdapter::new(r.clone(), "BINANCE");
        let mut out = Vec::new();
        a.on_connect(&mut out);
        assert_eq!(
            out,
            [
                r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@bookTicker","ethusdt@trade","ethusdt@bookTicker"],"id":1}"#
            ]
        );
        let p = AdapterParams {
            venue: "BINANCE".into(),
            symbols: vec!["BTCUSDT".into()],
            channels: vec!["depth@100ms".into(), "aggTrade".into()],
            api_key: None,
        };
        let a = BinanceAdapter::with_params(r.clone(), &p);
        assert_eq!(
            a.subscribe_message().as_deref(),
            Some(
                r#"{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@aggTrade"],"id":1}"#
            )
        );
        let none = BinanceAdapter::new(r, "KRAKEN");
        assert_eq!(none.subscribe_message(), None);
    }
}
