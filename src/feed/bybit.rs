//! Bybit v5 public WebSocket adapter (spot and linear): frames → ticks.
//!
//! | topic | ticks |
//! |---|---|
//! | `publicTrade.SYM` | one trade per element of `data` (several per frame), in frame order (chronological). `S` is the taker side. `i` is numeric on spot (→ `id`) and a UUID on linear (→ [`hash_id`], flag [`flags::ID_HASHED`]) |
//! | `orderbook.N.SYM` | book levels; `snapshot` levels carry [`flags::SNAPSHOT`]; a `delta` with `u == 1` is a service-restart snapshot and is flagged the same; size `"0"` deletes; `id` = `u`; event time `cts` (matching engine), else `ts` |
//! | `tickers.SYM` | linear: a full quote built from the last known `bid1Price`/`bid1Size`/`ask1Price`/`ask1Size` (deltas are partial; the adapter keeps the last values per instrument); `id` = `cs`. A delta without any of those fields, and spot tickers (which have no bid/ask), are control |
//! | `kline.I.SYM` | a bar per `confirm:true` element (`price` close, `size` volume, `price2` high, `size2` low, `id` open); frames with only open candles are control |
//! | `{"op":..}` | subscribe acks (spot `ret_msg:"subscribe"` without `req_id`, linear `ret_msg:""` with `req_id`), pongs: control |
//!
//! Symbols are resolved from the topic's last component, once per frame.
//!
//! # Sequence gaps
//! Order-book deltas must have `u == previous u + 1` per instrument (true
//! throughout the recorded capture); a break appends a [`TickKind::Gap`]
//! tick before the levels and counts [`FeedCounters::gaps`]. A snapshot
//! (or `u == 1`) restarts the chain, as does a reconnect.
//!
//! # Spot and linear
//! The two categories are separate WebSocket endpoints with overlapping
//! symbols (`BTCUSDT` is both a spot pair and a perpetual), so they need
//! separate registry venues (by convention `BYBIT` and `BYBIT-LINEAR`) and
//! one adapter per connection, built with its [`BybitCategory`].
//!
//! # Control protocol
//! Subscribe: `{"op":"subscribe","args":["publicTrade.BTCUSDT",...]}`, at
//! most 10 args per message (the spot limit). Keepalive: `{"op":"ping"}`
//! every 20 s ([`Adapter::keepalive`]).

use std::sync::Arc;
use std::time::Duration;

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::parse::{
    MS, SeqTracker, TapeParser, gap_tick, get_i64, get_str, id_or_hash, price, size,
};
use super::{Adapter, AdapterParams, DecodeError, Decoded};
use crate::instruments::{Instrument, InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, TickKind, flags};

/// Which Bybit v5 public endpoint the connection serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BybitCategory {
    /// `wss://stream.bybit.com/v5/public/spot`.
    Spot,
    /// `wss://stream.bybit.com/v5/public/linear` (USDT/USDC perpetuals).
    Linear,
}

impl BybitCategory {
    /// Channels subscribed when [`AdapterParams::channels`] is empty: trades
    /// plus the best bid/offer source (`orderbook.1` on spot, whose tickers
    /// carry no bid/ask; `tickers` on linear).
    pub fn default_channels(self) -> &'static [&'static str] {
        match self {
            Self::Spot => &["publicTrade", "orderbook.1"],
            Self::Linear => &["publicTrade", "tickers"],
        }
    }

    /// The public WebSocket URL of the category.
    pub fn url(self) -> &'static str {
        match self {
            Self::Spot => "wss://stream.bybit.com/v5/public/spot",
            Self::Linear => "wss://stream.bybit.com/v5/public/linear",
        }
    }
}

/// Most `args` in one subscribe request (Bybit spot's limit).
pub const MAX_ARGS_PER_SUBSCRIBE: usize = 10;

/// Application-level ping interval recommended by Bybit.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);

const BID_PX: u8 = 1;
const BID_SZ: u8 = 2;
const ASK_PX: u8 = 4;
const ASK_SZ: u8 = 8;
const BBO_ALL: u8 = BID_PX | BID_SZ | ASK_PX | ASK_SZ;

/// Per-instrument state.
#[derive(Debug, Clone, Copy, Default)]
struct InstState {
    book: SeqTracker,
    /// Last bid price, bid size, ask price, ask size (scaled).
    bbo: [i64; 4],
    /// Which of `bbo` are known (`BID_PX`...).
    seen: u8,
}

/// Decoder for Bybit v5 public frames of one category.
pub struct BybitAdapter {
    registry: Arc<InstrumentRegistry>,
    venue: Option<VenueId>,
    category: BybitCategory,
    symbols: Vec<String>,
    channels: Vec<String>,
    parser: TapeParser,
    state: Vec<InstState>,
}

impl std::fmt::Debug for BybitAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BybitAdapter")
            .field("venue", &self.venue)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

impl BybitAdapter {
    /// An adapter for `params.venue` on the `category` endpoint. Subscribes
    /// to `params.symbols` (all of the venue's instruments when empty) on
    /// `params.channels` ([`BybitCategory::default_channels`] when empty).
    pub fn new(
        registry: Arc<InstrumentRegistry>,
        params: &AdapterParams,
        category: BybitCategory,
    ) -> Self {
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
            category
                .default_channels()
                .iter()
                .map(|c| (*c).to_string())
                .collect()
        } else {
            params.channels.clone()
        };
        let n = registry.len();
        Self {
            registry,
            venue,
            category,
            symbols,
            channels,
            parser: TapeParser::default(),
            state: vec![InstState::default(); n],
        }
    }

    /// The category this adapter decodes.
    pub fn category(&self) -> BybitCategory {
        self.category
    }

    /// Subscribe requests for the configured topics, at most
    /// [`MAX_ARGS_PER_SUBSCRIBE`] topics each.
    pub fn subscribe_messages(&self) -> Vec<String> {
        let topics: Vec<String> = self
            .symbols
            .iter()
            .flat_map(|s| {
                self.channels
                    .iter()
                    .map(move |c| format!("{c}.{}", s.to_ascii_uppercase()))
            })
            .collect();
        topics
            .chunks(MAX_ARGS_PER_SUBSCRIBE)
            .map(|chunk| {
                let args: Vec<String> = chunk.iter().map(|t| format!("\"{t}\"")).collect();
                format!(r#"{{"op":"subscribe","args":[{}]}}"#, args.join(","))
            })
            .collect()
    }
}

impl Adapter for BybitAdapter {
    fn on_connect(&mut self, out: &mut Vec<String>) {
        for s in &mut self.state {
            s.book.reset();
            s.seen = 0;
        }
        out.extend(self.subscribe_messages());
    }

    fn keepalive(&self) -> Option<(Duration, String)> {
        Some((PING_INTERVAL, r#"{"op":"ping"}"#.to_string()))
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
            state: &mut self.state,
            recv_ns,
            counters,
        };
        self.parser
            .parse(frame, |root| decode_value(root, &mut cx, out))?
    }
}

struct Cx<'a> {
    reg: &'a InstrumentRegistry,
    venue: Option<VenueId>,
    state: &'a mut [InstState],
    recv_ns: i64,
    counters: &'a FeedCounters,
}

impl<'a> Cx<'a> {
    fn lookup(&self, sym: &str) -> Option<&'a Instrument> {
        super::parse::lookup_counted(self.reg, self.venue, sym, self.counters)
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
    let Some(topic) = root.get("topic").and_then(|t| t.into_string()) else {
        if root.get("op").is_some() {
            if root.get("success").and_then(|s| s.as_bool()) == Some(false) {
                warn_refused(&root);
            }
            return Ok(Decoded::Control);
        }
        return Err(DecodeError::MissingField("topic"));
    };
    let channel = topic.split('.').next().unwrap_or("");
    let sym = topic.rsplit('.').next().unwrap_or("");
    match channel {
        "publicTrade" => {
            let trades = root
                .get("data")
                .and_then(|d| d.as_array())
                .ok_or(DecodeError::MissingField("data"))?;
            let Some(inst) = cx.lookup(sym) else {
                return Ok(Decoded::Data(0));
            };
            let start = out.len();
            for t in trades.iter() {
                let p = price(inst, get_str(&t, "p")?, "p")?;
                let q = size(inst, get_str(&t, "v")?, "v")?;
                let ts = get_i64(&t, "T")? * MS;
                let side = match get_str(&t, "S")? {
                    "Buy" => Side::Buy,
                    "Sell" => Side::Sell,
                    _ => Side::None,
                };
                let (id, hashed) = id_or_hash(get_str(&t, "i")?);
                let mut tick = Tick::trade(inst.id, ts, cx.recv_ns, p, q, side, id);
                if hashed {
                    tick.flags |= flags::ID_HASHED;
                }
                if p <= 0 || q < 0 {
                    tick.flags |= flags::SUSPECT;
                }
                out.push(tick);
            }
            Ok(Decoded::Data(out.len() - start))
        }
        "orderbook" => {
            let data = root.get("data").ok_or(DecodeError::MissingField("data"))?;
            let Some(inst) = cx.lookup(sym) else {
                return Ok(Decoded::Data(0));
            };
            let u = data
                .get("u")
                .and_then(|x| x.as_u64())
                .ok_or(DecodeError::MissingField("u"))?;
            let ts = root
                .get("cts")
                .or_else(|| root.get("ts"))
                .and_then(|x| x.as_i64())
                .ok_or(DecodeError::MissingField("ts"))?
                * MS;
            let is_snapshot = match get_str(&root, "type")? {
                "snapshot" => true,
                "delta" => u == 1,
                _ => return Err(DecodeError::MissingField("type")),
            };
            let fl = if is_snapshot { flags::SNAPSHOT } else { 0 };
            let start = out.len();
            push_levels(&data, "b", Side::Buy, inst, ts, cx.recv_ns, u, fl, out)?;
            push_levels(&data, "a", Side::Sell, inst, ts, cx.recv_ns, u, fl, out)?;
            if let Some(st) = cx.state.get_mut(inst.id.0 as usize) {
                if is_snapshot {
                    st.book.set(u);
                } else if let Some(exp) = st.book.next_range(u, u) {
                    cx.counters.gaps.inc();
                    out.insert(start, gap_tick(inst.id, ts, cx.recv_ns, exp, u));
                }
            }
            Ok(Decoded::Data(out.len() - start))
        }
        "tickers" => {
            let data = root.get("data").ok_or(DecodeError::MissingField("data"))?;
            if !data.is_object() {
                return Err(DecodeError::MissingField("data"));
            }
            let fields = [
                ("bid1Price", BID_PX),
                ("bid1Size", BID_SZ),
                ("ask1Price", ASK_PX),
                ("ask1Size", ASK_SZ),
            ];
            if fields.iter().all(|(k, _)| data.get(*k).is_none()) {
                // Spot tickers (no bid/ask at all) and linear deltas that
                // only move last/mark/index prices or funding.
                return Ok(Decoded::Control);
            }
            let Some(inst) = cx.lookup(sym) else {
                return Ok(Decoded::Data(0));
            };
            // Parse all four before touching state, so a bad field leaves
            // the last good quote intact.
            let mut vals = [0i64; 4];
            let mut present = 0u8;
            for (i, (k, bit)) in fields.iter().enumerate() {
                if let Some(v) = data.get(*k) {
                    let s = v.into_string().ok_or(DecodeError::MissingField(k))?;
                    // An empty string means "no level" on a thin book.
                    vals[i] = if s.is_empty() {
                        0
                    } else if *bit & (BID_PX | ASK_PX) != 0 {
                        price(inst, s, k)?
                    } else {
                        size(inst, s, k)?
                    };
                    present |= bit;
                }
            }
            let ts = root
                .get("ts")
                .and_then(|x| x.as_i64())
                .ok_or(DecodeError::MissingField("ts"))?
                * MS;
            let seq = root.get("cs").and_then(|x| x.as_u64()).unwrap_or(0);
            let snapshot = root.get("type").and_then(|t| t.into_string()) == Some("snapshot");
            let Some(st) = cx.state.get_mut(inst.id.0 as usize) else {
                return Ok(Decoded::Data(0));
            };
            if snapshot {
                st.seen = 0;
            }
            for (i, (_, bit)) in fields.iter().enumerate() {
                if present & bit != 0 {
                    st.bbo[i] = vals[i];
                }
            }
            st.seen |= present;
            if st.seen != BBO_ALL {
                // A delta before any snapshot: nothing complete to emit yet.
                return Ok(Decoded::Data(0));
            }
            let [bid, bid_sz, ask, ask_sz] = st.bbo;
            let mut q = Tick::quote(inst.id, ts, cx.recv_ns, bid, bid_sz, ask, ask_sz, seq);
            if bid > ask && ask > 0 {
                q.flags |= flags::SUSPECT;
            }
            out.push(q);
            Ok(Decoded::Data(1))
        }
        "kline" => {
            let bars = root
                .get("data")
                .and_then(|d| d.as_array())
                .ok_or(DecodeError::MissingField("data"))?;
            let mut any_final = false;
            for k in bars.iter() {
                any_final |= k.get("confirm").and_then(|c| c.as_bool()) == Some(true);
            }
            if !any_final {
                return Ok(Decoded::Control);
            }
            let Some(inst) = cx.lookup(sym) else {
                return Ok(Decoded::Data(0));
            };
            let start = out.len();
            for k in bars.iter() {
                if k.get("confirm").and_then(|c| c.as_bool()) != Some(true) {
                    continue;
                }
                let open = price(inst, get_str(&k, "open")?, "open")?;
                out.push(Tick {
                    ts_event_ns: get_i64(&k, "start")? * MS,
                    ts_recv_ns: cx.recv_ns,
                    price: price(inst, get_str(&k, "close")?, "close")?,
                    size: size(inst, get_str(&k, "volume")?, "volume")?,
                    price2: price(inst, get_str(&k, "high")?, "high")?,
                    size2: price(inst, get_str(&k, "low")?, "low")?,
                    id: open as u64,
                    instrument: inst.id,
                    kind: TickKind::Bar as u8,
                    side: Side::None as u8,
                    flags: 0,
                });
            }
            Ok(Decoded::Data(out.len() - start))
        }
        // liquidation, allLiquidation, insurance, ...: not normalized.
        _ => Ok(Decoded::Control),
    }
}

#[cold]
#[inline(never)]
fn warn_refused(root: &Value<'_, '_>) {
    let msg = root
        .get("ret_msg")
        .and_then(|m| m.into_string())
        .unwrap_or("");
    tracing::warn!(ret_msg = msg, "bybit refused a request (check topic names)");
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
    let Some(levels) = data.get(key) else {
        return Ok(());
    };
    let levels = levels.as_array().ok_or(DecodeError::MissingField(key))?;
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
    use crate::feed::parse::hash_id;

    fn adapter(category: BybitCategory) -> (BybitAdapter, FeedCounters) {
        let mut r = InstrumentRegistry::new();
        let venue = match category {
            BybitCategory::Spot => "BYBIT",
            BybitCategory::Linear => "BYBIT-LINEAR",
        };
        r.add(&format!("{venue}:BTCUSDT"), 2, 6, None).unwrap();
        r.add(&format!("{venue}:ETHUSDT"), 2, 6, None).unwrap();
        let params = AdapterParams {
            venue: venue.into(),
            ..AdapterParams::default()
        };
        (
            BybitAdapter::new(Arc::new(r), &params, category),
            FeedCounters::default(),
        )
    }

    fn dec(
        a: &mut BybitAdapter,
        c: &FeedCounters,
        f: &str,
    ) -> (Result<Decoded, DecodeError>, Vec<Tick>) {
        let mut out = Vec::new();
        let r = a.decode(f.as_bytes(), 9, &mut out, c);
        (r, out)
    }

    // Frames below are copied from shared/data/real/bybit/BYBIT.jsonl
    // (order-book snapshots shortened to a few levels).

    #[test]
    fn linear_trade_with_uuid_id_is_hashed() {
        let (mut a, c) = adapter(BybitCategory::Linear);
        let f = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310819681,"data":[{"T":1786310819680,"s":"BTCUSDT","S":"Sell","v":"0.004","p":"65114.20","L":"MinusTick","i":"a9188a0a-82bc-50de-be60-03eedbe3cdd7","BT":false,"RPI":false,"seq":753843954913}]}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        let t = out[0];
        assert_eq!(t.kind(), Some(TickKind::Trade));
        assert_eq!((t.price, t.size), (6_511_420, 4_000));
        assert_eq!(t.side(), Side::Sell);
        assert_eq!(t.ts_event_ns, 1_786_310_819_680_000_000);
        assert!(t.has_flag(flags::ID_HASHED));
        assert_eq!(t.id, hash_id("a9188a0a-82bc-50de-be60-03eedbe3cdd7"));
    }

    #[test]
    fn spot_trade_numeric_id_and_multi_trade_frames() {
        let (mut a, c) = adapter(BybitCategory::Spot);
        let f = r#"{"topic":"publicTrade.ETHUSDT","ts":1786310821917,"type":"snapshot","data":[{"i":"2280000001739247417","T":1786310821917,"p":"1923.28","v":"0.04537","S":"Sell","seq":178477362706,"s":"ETHUSDT","BT":false,"RPI":false},{"i":"2280000001739247418","T":1786310821918,"p":"1923.29","v":"0.1","S":"Buy","seq":178477362707,"s":"ETHUSDT","BT":false,"RPI":false}]}"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(2)));
        assert_eq!(out[0].id, 2_280_000_001_739_247_417);
        assert!(!out[0].has_flag(flags::ID_HASHED));
        assert_eq!(out[0].size, 45_370);
        assert_eq!(out[1].side(), Side::Buy);
        assert_eq!(out[1].price, 192_329);
    }

    #[test]
    fn orderbook_snapshot_delta_and_gap() {
        let (mut a, c) = adapter(BybitCategory::Linear);
        let snap = r#"{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1786310818129,"data":{"s":"BTCUSDT","b":[["65114.20","6.054"],["65114.10","0.002"]],"a":[["65114.30","10.470"]],"u":15076952,"seq":753843913800},"cts":1786310818128}"#;
        let (r, out) = dec(&mut a, &c, snap);
        assert_eq!(r, Ok(Decoded::Data(3)));
        assert!(out.iter().all(|t| t.has_flag(flags::SNAPSHOT)));
        assert_eq!(out[0].ts_event_ns, 1_786_310_818_128_000_000, "cts");
        let delta = r#"{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1786310818130,"data":{"s":"BTCUSDT","b":[["65095.30","0.005"],["65093.10","0"]],"a":[["65116.60","0"]],"u":15076953,"seq":753843913870},"cts":1786310818129}"#;
        let (r, out) = dec(&mut a, &c, delta);
        assert_eq!(r, Ok(Decoded::Data(3)));
        assert!(out.iter().all(|t| !t.has_flag(flags::SNAPSHOT)));
        assert_eq!(out[1].size, 0, "size 0 deletes");
        assert_eq!(out[2].side(), Side::Sell);
        assert_eq!(c.gaps.get(), 0);
        // Skip u 15076954.
        let skipped = delta.replace("15076953", "15076955");
        let (r, out) = dec(&mut a, &c, &skipped);
        assert_eq!(r, Ok(Decoded::Data(4)));
        assert_eq!(out[0].kind(), Some(TickKind::Gap));
        assert_eq!(
            (out[0].id, out[0].price, out[0].size),
            (15_076_954, 15_076_955, 1)
        );
        assert_eq!(c.gaps.get(), 1);
        // u = 1: service restart, treated as a snapshot, no gap.
        let restart = delta.replace("15076953", "1");
        let (r, out) = dec(&mut a, &c, &restart);
        assert_eq!(r, Ok(Decoded::Data(3)));
        assert!(out.iter().all(|t| t.has_flag(flags::SNAPSHOT)));
        assert_eq!(c.gaps.get(), 1);
    }

    #[test]
    fn linear_ticker_deltas_merge_into_full_quotes() {
        let (mut a, c) = adapter(BybitCategory::Linear);
        let snap = r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","tickDirection":"ZeroPlusTick","lastPrice":"65114.30","markPrice":"65117.44","bid1Price":"65114.20","bid1Size":"5.954","ask1Price":"65114.30","ask1Size":"10.470"},"cs":753843907769,"ts":1786310817882}"#;
        let (r, out) = dec(&mut a, &c, snap);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(
            (out[0].price, out[0].size, out[0].price2, out[0].size2),
            (6_511_420, 5_954_000, 6_511_430, 10_470_000)
        );
        assert_eq!(out[0].id, 753_843_907_769);
        let partial = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Size":"6.054","ask1Size":"10.486"},"cs":753843907770,"ts":1786310817883}"#;
        let (r, out) = dec(&mut a, &c, partial);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(
            (out[0].price, out[0].size, out[0].price2, out[0].size2),
            (6_511_420, 6_054_000, 6_511_430, 10_486_000)
        );
        assert_eq!(out[0].ts_event_ns, 1_786_310_817_883_000_000);
        let no_bbo = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"65117.50"},"cs":753843907771,"ts":1786310817983}"#;
        assert_eq!(dec(&mut a, &c, no_bbo).0, Ok(Decoded::Control));
        // A delta for an instrument never snapshotted emits nothing yet.
        let eth = partial.replace("BTCUSDT", "ETHUSDT");
        assert_eq!(dec(&mut a, &c, &eth).0, Ok(Decoded::Data(0)));
    }

    #[test]
    fn spot_tickers_kline_and_acks_are_control() {
        let (mut a, c) = adapter(BybitCategory::Spot);
        for f in [
            r#"{"topic":"tickers.BTCUSDT","ts":1786310819126,"type":"snapshot","cs":112488546160,"data":{"symbol":"BTCUSDT","lastPrice":"65140.5","highPrice24h":"65305.6","lowPrice24h":"64727.9","prevPrice24h":"65045.3","volume24h":"2953.835931","turnover24h":"191907024.69597728","price24hPcnt":"0.0015","usdIndexPrice":"65091.459221"}}"#,
            r#"{"type":"snapshot","topic":"kline.1.BTCUSDT","data":[{"start":1786310760000,"end":1786310819999,"interval":"1","open":"65140.4","close":"65140.5","high":"65140.5","low":"65140.4","volume":"0.15318","turnover":"9978.2084389","confirm":false,"timestamp":1786310816562}],"ts":1786310816562}"#,
            r#"{"success":true,"ret_msg":"subscribe","conn_id":"d9avt8shteepr00gfc1g-4zd1x","op":"subscribe"}"#,
            r#"{"success":true,"ret_msg":"","conn_id":"d8bu1olkndm7crnfs1e0-j6akw","req_id":"","op":"subscribe"}"#,
            r#"{"success":false,"ret_msg":"error:handler not found","conn_id":"x","op":"subscribe"}"#,
            r#"{"op":"pong","args":["1786310816562"],"conn_id":"x"}"#,
            r#"{"topic":"liquidation.BTCUSDT","data":{}}"#,
        ] {
            assert_eq!(dec(&mut a, &c, f).0, Ok(Decoded::Control), "{f}");
        }
        let fin = r#"{"type":"snapshot","topic":"kline.1.BTCUSDT","data":[{"start":1786310760000,"end":1786310819999,"interval":"1","open":"65140.4","close":"65140.5","high":"65141.5","low":"65139.4","volume":"0.15318","turnover":"9978.2084389","confirm":true,"timestamp":1786310819999},{"start":1786310820000,"end":1786310879999,"interval":"1","open":"65140.5","close":"65140.5","high":"65140.5","low":"65140.5","volume":"0","turnover":"0","confirm":false,"timestamp":1786310820001}],"ts":1786310820001}"#;
        let (r, out) = dec(&mut a, &c, fin);
        assert_eq!(r, Ok(Decoded::Data(1)));
        let b = out[0];
        assert_eq!(b.kind(), Some(TickKind::Bar));
        assert_eq!(
            (b.id as i64, b.price2, b.size2, b.price),
            (6_514_040, 6_514_150, 6_513_940, 6_514_050)
        );
        assert_eq!(b.size, 153_180);
    }

    #[test]
    fn unknown_symbol_counted_and_bad_frames_never_panic() {
        let (mut a, c) = adapter(BybitCategory::Spot);
        let f = r#"{"topic":"publicTrade.XRPUSDT","type":"snapshot","ts":1,"data":[{"i":"1","T":1,"p":"1","v":"1","S":"Buy","s":"XRPUSDT"}]}"#;
        assert_eq!(dec(&mut a, &c, f).0, Ok(Decoded::Data(0)));
        assert_eq!(c.unknown_symbols.get(), 1);
        for f in [
            "",
            "[]",
            "{}",
            r#"{"topic":5}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":{}}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"i":"1","T":1,"p":"x","v":"1","S":"Buy"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"i":"1","T":1,"p":"1.001","v":"1","S":"Buy"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"p":"1","v":"1","S":"Buy"}]}"#,
            r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"b":[["1"]],"u":2}}"#,
            r#"{"topic":"orderbook.50.BTCUSDT","type":"weird","ts":1,"data":{"b":[],"u":2}}"#,
            r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"u":2}}"#,
            r#"{"topic":"tickers.BTCUSDT","data":{"bid1Price":5}}"#,
            r#"{"topic":"tickers.BTCUSDT","data":[]}"#,
            r#"{"topic":"kline.1.BTCUSDT","data":[{"confirm":true}]}"#,
        ] {
            assert!(dec(&mut a, &c, f).0.is_err(), "{f}");
        }
    }

    #[test]
    fn subscribe_messages_are_chunked_and_keepalive_pings() {
        let mut r = InstrumentRegistry::new();
        for i in 0..6 {
            r.add(&format!("BYBIT:SYM{i}USDT"), 2, 2, None).unwrap();
        }
        let params = AdapterParams {
            venue: "BYBIT".into(),
            ..AdapterParams::default()
        };
        let mut a = BybitAdapter::new(Arc::new(r), &params, BybitCategory::Spot);
        let mut out = Vec::new();
        a.on_connect(&mut out);
        assert_eq!(out.len(), 2, "12 topics in chunks of 10");
        assert!(out[0].starts_with(
            r#"{"op":"subscribe","args":["publicTrade.SYM0USDT","orderbook.1.SYM0USDT","#
        ));
        let v: serde_json::Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(v["args"].as_array().unwrap().len(), 2);
        let (every, msg) = a.keepalive().unwrap();
        assert_eq!(every, Duration::from_secs(20));
        assert_eq!(msg, r#"{"op":"ping"}"#);
    }
}
