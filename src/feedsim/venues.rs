//! Per-venue wire protocol of the simulator: subscribe handling, replies,
//! and encoding of simulated market events in each venue's real format.
//!
//! The market model is the engine's own simulator ([`crate::feed::sim`]),
//! which writes Binance combined-stream JSON; for other venues each frame
//! is parsed back into a [`MarketEvent`] and re-encoded. Formats follow the
//! recorded captures in `shared/data/real` (Bybit v5, Coinbase Advanced
//! Trade) and Polygon's documented stocks WebSocket.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Deserialize;

use super::Venue;

/// One simulated market update, venue-neutral.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MarketEvent<'a> {
    /// A trade.
    Trade {
        /// Venue symbol (`BTCUSDT`, `BTC-USD`, `AAPL`).
        symbol: &'a str,
        /// Trade id.
        id: u64,
        /// Decimal price text.
        price: &'a str,
        /// Decimal size text.
        size: &'a str,
        /// Aggressor bought.
        buy: bool,
        /// Event time, ms.
        ts_ms: i64,
    },
    /// Best bid/offer.
    Quote {
        /// Venue symbol.
        symbol: &'a str,
        /// Update id.
        update_id: u64,
        /// Bid price.
        bid: &'a str,
        /// Bid size.
        bid_size: &'a str,
        /// Ask price.
        ask: &'a str,
        /// Ask size.
        ask_size: &'a str,
    },
}

#[derive(Deserialize)]
struct BinanceEnv<'a> {
    #[serde(borrow)]
    data: BinanceData<'a>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct BinanceData<'a> {
    #[serde(default)]
    e: Option<&'a str>,
    s: &'a str,
    #[serde(default)]
    t: Option<u64>,
    #[serde(default)]
    p: Option<&'a str>,
    #[serde(default)]
    q: Option<&'a str>,
    #[serde(default)]
    T: Option<i64>,
    #[serde(default)]
    m: Option<bool>,
    #[serde(default)]
    u: Option<u64>,
    #[serde(default)]
    b: Option<&'a str>,
    #[serde(default)]
    B: Option<&'a str>,
    #[serde(default)]
    a: Option<&'a str>,
    #[serde(default)]
    A: Option<&'a str>,
}

/// Parses one simulator frame (Binance `trade` or `bookTicker`).
pub(crate) fn parse_sim_frame(frame: &str) -> Option<MarketEvent<'_>> {
    let env: BinanceEnv<'_> = serde_json::from_str(frame).ok()?;
    let d = env.data;
    if d.e == Some("trade") {
        Some(MarketEvent::Trade {
            symbol: d.s,
            id: d.t?,
            price: d.p?,
            size: d.q?,
            buy: !d.m?,
            ts_ms: d.T?,
        })
    } else {
        Some(MarketEvent::Quote {
            symbol: d.s,
            update_id: d.u.unwrap_or(0),
            bid: d.b?,
            bid_size: d.B?,
            ask: d.a?,
            ask_size: d.A?,
        })
    }
}

/// The stream name of a simulator frame (`btcusdt@trade`), read without
/// parsing: the frame starts `{"stream":"<name>",`.
pub(crate) fn binance_stream(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix(r#"{"stream":""#)?;
    rest.split('"').next()
}

/// Whether a frame is a trade (for gap injection).
pub(crate) fn is_trade_frame(frame: &str) -> bool {
    binance_stream(frame).is_some_and(|s| s.ends_with("@trade"))
}

/// `2026-08-09T21:05:48.228568804Z` from ns since the epoch.
pub(crate) fn rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Per-connection protocol state.
#[derive(Debug)]
pub(crate) struct Session {
    venue: Venue,
    /// Subscribed topics in the venue's spelling (Binance stream names,
    /// Bybit topics, Coinbase `channel|product`, Polygon `T.AAPL`).
    subs: BTreeSet<String>,
    authed: bool,
    /// Expected Polygon key (`None` = accept any).
    api_key: Option<String>,
    /// Coinbase `sequence_num` / Polygon `q`.
    seq: u64,
    conn_id: u64,
    /// Close the connection after the replies (failed auth).
    pub close: bool,
}

impl Session {
    pub(crate) fn new(venue: Venue, conn_id: u64, api_key: Option<String>) -> Self {
        Self {
            venue,
            subs: BTreeSet::new(),
            authed: false,
            api_key,
            seq: 0,
            conn_id,
            close: false,
        }
    }

    /// Subscribes from the request path (Binance `?streams=a/b`).
    pub(crate) fn on_path(&mut self, path: &str) {
        if self.venue != Venue::Binance {
            return;
        }
        if let Some((_, q)) = path.split_once('?') {
            for kv in q.split('&') {
                if let Some(v) = kv.strip_prefix("streams=") {
                    for s in v.split('/').filter(|s| !s.is_empty()) {
                        self.subs.insert(s.to_string());
                    }
                }
            }
        }
    }

    /// Messages sent right after the handshake (Polygon's status).
    pub(crate) fn on_open(&mut self, out: &mut Vec<String>) {
        if self.venue == Venue::Polygon {
            out.push(
                r#"[{"ev":"status","status":"connected","message":"Connected Successfully"}]"#
                    .into(),
            );
        }
    }

    /// Whether market data flows (subscribed, and authenticated where the
    /// venue requires it).
    pub(crate) fn active(&self) -> bool {
        !self.subs.is_empty() && (self.venue != Venue::Polygon || self.authed)
    }

    /// Handles a client text message, appending replies. Returns `true`
    /// when it was a subscribe (or Polygon auth).
    pub(crate) fn on_client_text(
        &mut self,
        text: &str,
        now_ns: i64,
        out: &mut Vec<String>,
    ) -> bool {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            out.push(self.error_reply("message is not JSON"));
            return false;
        };
        match self.venue {
            Venue::Binance => {
                let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
                let params: Vec<String> = v
                    .get("params")
                    .and_then(|p| p.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                match v.get("method").and_then(|m| m.as_str()) {
                    Some("SUBSCRIBE") => {
                        self.subs.extend(params);
                        out.push(format!(r#"{{"result":null,"id":{id}}}"#));
                        true
                    }
                    Some("UNSUBSCRIBE") => {
                        for p in params {
                            self.subs.remove(&p);
                        }
                        out.push(format!(r#"{{"result":null,"id":{id}}}"#));
                        false
                    }
                    Some("LIST_SUBSCRIPTIONS") => {
                        let list = serde_json::to_string(&self.subs).unwrap_or_default();
                        out.push(format!(r#"{{"result":{list},"id":{id}}}"#));
                        false
                    }
                    _ => {
                        out.push(format!(
                            r#"{{"error":{{"code":2,"msg":"Invalid request: unknown method"}},"id":{id}}}"#
                        ));
                        false
                    }
                }
            }
            Venue::Bybit => {
                let op = v.get("op").and_then(|o| o.as_str()).unwrap_or("");
                let req_id = v
                    .get("req_id")
                    .and_then(|r| r.as_str())
                    .map(|r| format!(r#","req_id":"{r}""#))
                    .unwrap_or_default();
                let conn = self.conn_id;
                match op {
                    "subscribe" | "unsubscribe" => {
                        let args = v.get("args").and_then(|a| a.as_array());
                        for a in args.into_iter().flatten().filter_map(|x| x.as_str()) {
                            if op == "subscribe" {
                                self.subs.insert(a.to_string());
                            } else {
                                self.subs.remove(a);
                            }
                        }
                        out.push(format!(
                            r#"{{"success":true,"ret_msg":"{op}","conn_id":"feedsim-{conn}"{req_id},"op":"{op}"}}"#
                        ));
                        op == "subscribe"
                    }
                    "ping" => {
                        out.push(format!(
                            r#"{{"success":true,"ret_msg":"pong","conn_id":"feedsim-{conn}"{req_id},"op":"ping"}}"#
                        ));
                        false
                    }
                    _ => {
                        out.push(format!(
                            r#"{{"success":false,"ret_msg":"unknown op '{op}'","conn_id":"feedsim-{conn}"{req_id},"op":"{op}"}}"#
                        ));
                        false
                    }
                }
            }
            Venue::Coinbase => {
                let ty = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
                let channel = v.get("channel").and_then(|c| c.as_str()).unwrap_or("");
                let products: Vec<&str> = v
                    .get("product_ids")
                    .and_then(|p| p.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                match ty {
                    "subscribe" | "unsubscribe" if !channel.is_empty() => {
                        if products.is_empty() {
                            // heartbeats and status need no products
                            let k = format!("{channel}|");
                            if ty == "subscribe" {
                                self.subs.insert(k);
                            } else {
                                self.subs.remove(&k);
                            }
                        }
                        for p in products {
                            let k = format!("{channel}|{p}");
                            if ty == "subscribe" {
                                self.subs.insert(k);
                            } else {
                                self.subs.remove(&k);
                            }
                        }
                        out.push(self.coinbase_subscriptions(now_ns));
                        ty == "subscribe"
                    }
                    _ => {
                        out.push(self.error_reply("expected type subscribe with a channel"));
                        false
                    }
                }
            }
            Venue::Polygon => {
                let action = v.get("action").and_then(|a| a.as_str()).unwrap_or("");
                let params = v.get("params").and_then(|p| p.as_str()).unwrap_or("");
                match action {
                    "auth" => {
                        let ok = self.api_key.as_deref().is_none_or(|k| k == params);
                        if ok {
                            self.authed = true;
                            out.push(r#"[{"ev":"status","status":"auth_success","message":"authenticated"}]"#.into());
                        } else {
                            out.push(r#"[{"ev":"status","status":"auth_failed","message":"authentication failed"}]"#.into());
                            self.close = true;
                        }
                        true
                    }
                    "subscribe" | "unsubscribe" => {
                        if !self.authed {
                            out.push(
                                r#"[{"ev":"status","status":"error","message":"not authorized"}]"#
                                    .into(),
                            );
                            return false;
                        }
                        let mut replies = Vec::new();
                        for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                            if action == "subscribe" {
                                self.subs.insert(p.to_string());
                            } else {
                                self.subs.remove(p);
                            }
                            let verb = if action == "subscribe" {
                                "subscribed to"
                            } else {
                                "unsubscribed to"
                            };
                            replies.push(format!(
                                r#"{{"ev":"status","status":"success","message":"{verb}: {p}"}}"#
                            ));
                        }
                        out.push(format!("[{}]", replies.join(",")));
                        action == "subscribe"
                    }
                    _ => {
                        out.push(
                            r#"[{"ev":"status","status":"error","message":"unknown action"}]"#
                                .into(),
                        );
                        false
                    }
                }
            }
        }
    }

    fn error_reply(&self, msg: &str) -> String {
        match self.venue {
            Venue::Binance => {
                format!(r#"{{"error":{{"code":2,"msg":"Invalid request: {msg}"}},"id":null}}"#)
            }
            Venue::Bybit => format!(r#"{{"success":false,"ret_msg":"{msg}","op":""}}"#),
            Venue::Coinbase => format!(r#"{{"type":"error","message":"{msg}"}}"#),
            Venue::Polygon => format!(r#"[{{"ev":"status","status":"error","message":"{msg}"}}]"#),
        }
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }

    fn coinbase_subscriptions(&mut self, now_ns: i64) -> String {
        let mut by_channel: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for k in &self.subs {
            if let Some((c, p)) = k.split_once('|') {
                let e = by_channel.entry(c).or_default();
                if !p.is_empty() {
                    e.push(p);
                }
            }
        }
        let subs = serde_json::to_string(&by_channel).unwrap_or_else(|_| "{}".into());
        let ts = rfc3339_ns(now_ns);
        let seq = self.next_seq();
        format!(
            r#"{{"channel":"subscriptions","client_id":"","timestamp":"{ts}","sequence_num":{seq},"events":[{{"subscriptions":{subs}}}]}}"#
        )
    }

    /// A heartbeat, when the venue has them and they are subscribed.
    pub(crate) fn heartbeat(&mut self, now_ns: i64, counter: u64) -> Option<String> {
        if self.venue == Venue::Coinbase && self.subs.contains("heartbeats|") {
            let ts = rfc3339_ns(now_ns);
            let seq = self.next_seq();
            return Some(format!(
                r#"{{"channel":"heartbeats","client_id":"","timestamp":"{ts}","sequence_num":{seq},"events":[{{"current_time":"{ts}","heartbeat_counter":{counter}}}]}}"#
            ));
        }
        None
    }

    /// Encodes a simulator frame for this venue into `out` if subscribed.
    /// Returns `false` when the frame is not wanted on this connection.
    pub(crate) fn encode(&mut self, frame: &str, now_ns: i64, out: &mut String) -> bool {
        out.clear();
        if self.venue == Venue::Binance {
            let wanted = binance_stream(frame).is_some_and(|s| self.subs.contains(s));
            if wanted {
                out.push_str(frame);
            }
            return wanted;
        }
        let Some(ev) = parse_sim_frame(frame) else {
            return false;
        };
        match (self.venue, ev) {
            (
                Venue::Bybit,
                MarketEvent::Trade {
                    symbol,
                    id,
                    price,
                    size,
                    buy,
                    ts_ms,
                },
            ) => {
                if !self.subs.contains(&format!("publicTrade.{symbol}")) {
                    return false;
                }
                let side = if buy { "Buy" } else { "Sell" };
                let _ = write!(
                    out,
                    r#"{{"topic":"publicTrade.{symbol}","ts":{ts_ms},"type":"snapshot","data":[{{"i":"{id}","T":{ts_ms},"p":"{price}","v":"{size}","S":"{side}","seq":{id},"s":"{symbol}","BT":false,"RPI":false}}]}}"#
                );
            }
            (
                Venue::Bybit,
                MarketEvent::Quote {
                    symbol,
                    update_id,
                    bid,
                    bid_size,
                    ask,
                    ask_size,
                },
            ) => {
                let ts = now_ns / 1_000_000;
                if self.subs.contains(&format!("orderbook.1.{symbol}")) {
                    let _ = write!(
                        out,
                        r#"{{"topic":"orderbook.1.{symbol}","ts":{ts},"type":"snapshot","data":{{"s":"{symbol}","b":[["{bid}","{bid_size}"]],"a":[["{ask}","{ask_size}"]],"u":{update_id},"seq":{update_id}}},"cts":{ts}}}"#
                    );
                } else if self.subs.contains(&format!("tickers.{symbol}")) {
                    let _ = write!(
                        out,
                        r#"{{"topic":"tickers.{symbol}","type":"delta","data":{{"symbol":"{symbol}","bid1Price":"{bid}","bid1Size":"{bid_size}","ask1Price":"{ask}","ask1Size":"{ask_size}"}},"cs":{update_id},"ts":{ts}}}"#
                    );
                } else {
                    return false;
                }
            }
            (
                Venue::Coinbase,
                MarketEvent::Trade {
                    symbol,
                    id,
                    price,
                    size,
                    buy,
                    ts_ms,
                },
            ) => {
                if !self.subs.contains(&format!("market_trades|{symbol}")) {
                    return false;
                }
                let ts = rfc3339_ns(now_ns);
                let t = rfc3339_ns(ts_ms * 1_000_000);
                let side = if buy { "BUY" } else { "SELL" };
                let seq = self.next_seq();
                let _ = write!(
                    out,
                    r#"{{"channel":"market_trades","client_id":"","timestamp":"{ts}","sequence_num":{seq},"events":[{{"type":"update","trades":[{{"product_id":"{symbol}","trade_id":"{id}","price":"{price}","size":"{size}","time":"{t}","side":"{side}"}}]}}]}}"#
                );
            }
            (
                Venue::Coinbase,
                MarketEvent::Quote {
                    symbol,
                    bid,
                    bid_size,
                    ask,
                    ask_size,
                    ..
                },
            ) => {
                if !self.subs.contains(&format!("ticker|{symbol}")) {
                    return false;
                }
                let ts = rfc3339_ns(now_ns);
                let seq = self.next_seq();
                let _ = write!(
                    out,
                    r#"{{"channel":"ticker","client_id":"","timestamp":"{ts}","sequence_num":{seq},"events":[{{"type":"update","tickers":[{{"type":"ticker","product_id":"{symbol}","price":"{bid}","volume_24_h":"0","low_24_h":"0","high_24_h":"0","low_52_w":"0","high_52_w":"0","price_percent_chg_24_h":"0","best_bid":"{bid}","best_ask":"{ask}","best_bid_quantity":"{bid_size}","best_ask_quantity":"{ask_size}"}}]}}]}}"#
                );
            }
            (
                Venue::Polygon,
                MarketEvent::Trade {
                    symbol,
                    id,
                    price,
                    size,
                    ts_ms,
                    ..
                },
            ) => {
                if !(self.subs.contains(&format!("T.{symbol}")) || self.subs.contains("T.*")) {
                    return false;
                }
                let q = self.next_seq();
                let _ = write!(
                    out,
                    r#"[{{"ev":"T","sym":"{symbol}","x":4,"i":"{id}","z":3,"p":{price},"s":{size},"c":[0],"t":{ts_ms},"q":{q}}}]"#
                );
            }
            (
                Venue::Polygon,
                MarketEvent::Quote {
                    symbol,
                    bid,
                    bid_size,
                    ask,
                    ask_size,
                    ..
                },
            ) => {
                if !(self.subs.contains(&format!("Q.{symbol}")) || self.subs.contains("Q.*")) {
                    return false;
                }
                let q = self.next_seq();
                let t = now_ns / 1_000_000;
                let _ = write!(
                    out,
                    r#"[{{"ev":"Q","sym":"{symbol}","bx":4,"bp":{bid},"bs":{bid_size},"ax":7,"ap":{ask},"as":{ask_size},"c":0,"i":[],"t":{t},"q":{q},"z":3}}]"#
                );
            }
            (Venue::Binance, _) => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255342,"s":"BTCUSDT","t":3735683259,"p":"61837.63","q":"0.00200","T":1723161255341,"m":true,"M":true}}"#;
    const QUOTE: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63","B":"3.78826","a":"61837.64","A":"1.54698"}}"#;

    #[test]
    fn parses_sim_frames() {
        assert_eq!(binance_stream(TRADE), Some("btcusdt@trade"));
        assert!(is_trade_frame(TRADE));
        assert!(!is_trade_frame(QUOTE));
        assert_eq!(
            parse_sim_frame(TRADE),
            Some(MarketEvent::Trade {
                symbol: "BTCUSDT",
                id: 3_735_683_259,
                price: "61837.63",
                size: "0.00200",
                buy: false,
                ts_ms: 1_723_161_255_341
            })
        );
        assert!(matches!(
            parse_sim_frame(QUOTE),
            Some(MarketEvent::Quote {
                update_id: 50_093_239_212,
                ..
            })
        ));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_ns(1_786_309_548_228_568_804),
            "2026-08-09T21:05:48.228568804Z"
        );
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn binance_subscribe_filters_streams() {
        let mut s = Session::new(Venue::Binance, 1, None);
        let mut out = Vec::new();
        assert!(!s.active());
        assert!(s.on_client_text(
            r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":7}"#,
            0,
            &mut out
        ));
        assert_eq!(out, vec![r#"{"result":null,"id":7}"#]);
        assert!(s.active());
        let mut f = String::new();
        assert!(s.encode(TRADE, 0, &mut f));
        assert_eq!(f, TRADE);
        assert!(!s.encode(QUOTE, 0, &mut f), "bookTicker not subscribed");
        let mut p = Session::new(Venue::Binance, 2, None);
        p.on_path("/stream?streams=btcusdt@bookTicker/ethusdt@trade");
        assert!(p.active());
        assert!(p.encode(QUOTE, 0, &mut f));
    }

    #[test]
    fn bybit_coinbase_polygon_encode_valid_json() {
        let mut out = Vec::new();
        let mut f = String::new();
        let mut b = Session::new(Venue::Bybit, 1, None);
        b.on_client_text(
            r#"{"op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.1.BTCUSDT"]}"#,
            0,
            &mut out,
        );
        assert!(out[0].contains(r#""op":"subscribe""#));
        assert!(b.encode(TRADE, 5_000_000, &mut f));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["data"][0]["S"], "Sell");
        assert_eq!(v["data"][0]["p"], "61837.63");
        assert!(b.encode(QUOTE, 5_000_000, &mut f));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["data"]["a"][0][0], "61837.64");
        out.clear();
        b.on_client_text(r#"{"op":"ping"}"#, 0, &mut out);
        assert!(out[0].contains("pong"));

        let mut c = Session::new(Venue::Coinbase, 1, None);
        out.clear();
        c.on_client_text(
            r#"{"type":"subscribe","product_ids":["BTCUSDT"],"channel":"market_trades"}"#,
            0,
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(
            v["events"][0]["subscriptions"]["market_trades"][0],
            "BTCUSDT"
        );
        assert!(c.encode(TRADE, 1_786_309_548_228_568_804, &mut f));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["sequence_num"], 1);
        assert_eq!(v["events"][0]["trades"][0]["side"], "SELL");
        assert!(!c.encode(QUOTE, 0, &mut f), "ticker not subscribed");

        let mut p = Session::new(Venue::Polygon, 1, Some("k".into()));
        out.clear();
        p.on_open(&mut out);
        assert!(out[0].contains("connected"));
        out.clear();
        p.on_client_text(
            r#"{"action":"subscribe","params":"T.BTCUSDT"}"#,
            0,
            &mut out,
        );
        assert!(out[0].contains("not authorized") && !p.active());
        out.clear();
        p.on_client_text(r#"{"action":"auth","params":"wrong"}"#, 0, &mut out);
        assert!(out[0].contains("auth_failed") && p.close);
        let mut p = Session::new(Venue::Polygon, 1, Some("k".into()));
        out.clear();
        p.on_client_text(r#"{"action":"auth","params":"k"}"#, 0, &mut out);
        p.on_client_text(
            r#"{"action":"subscribe","params":"T.BTCUSDT,Q.*"}"#,
            0,
            &mut out,
        );
        assert!(out[0].contains("auth_success"));
        assert!(out[1].contains("subscribed to: T.BTCUSDT"));
        assert!(p.active());
        assert!(p.encode(TRADE, 0, &mut f));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v[0]["ev"], "T");
        assert_eq!(v[0]["p"], 61837.63);
        assert!(p.encode(QUOTE, 0, &mut f));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v[0]["ev"], "Q");
    }
}
