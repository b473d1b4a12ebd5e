//! Polygon-style US stocks WebSocket adapter: frames → ticks.
//!
//! Every frame is a JSON array of events, each with `ev`:
//!
//! | `ev` | ticks |
//! |---|---|
//! | `T` | trade: `sym`, `p` price, `s` size, `t` SIP time (ms), `i` trade id (a string; numeric ids are kept, others hashed with [`flags::ID_HASHED`]). Polygon gives no aggressor side: [`Side::None`] |
//! | `Q` | quote: `bp`/`bs` bid, `ap`/`as` ask, `t` (ms), `q` sequence → `id` |
//! | `A`, `AM` | second / minute aggregate → bar: `o`,`h`,`l`,`c`,`v`, event time `s` (window start, ms) |
//! | `status` | control; drives the login (below) |
//!
//! Other events (LULD, imbalances...) are ignored; a frame with no data
//! event is control.
//!
//! # Login
//! The server speaks first: `[{"ev":"status","status":"connected"}]`. The
//! adapter then queues `{"action":"auth","params":"<API_KEY>"}` (see
//! [`Adapter::take_outgoing`]); on `auth_success` it queues
//! `{"action":"subscribe","params":"T.AAPL,Q.AAPL,A.AAPL"}` (symbols ×
//! channels, channels default to `T`, `Q`, `A`). `auth_failed` is logged
//! with the server's message. The API key is never logged and is redacted
//! from `Debug`.
//!
//! # Prices are JSON numbers
//! Polygon sends `"p":192.31`, not a string. simd-json yields an `f64`;
//! [`number_scaled`] renders it with the shortest round-trip representation
//! into a stack buffer and parses that text exactly (see its docs for why
//! this is exact for venue prices). Integers (`"s":100`) never touch a
//! float.
//!
//! No sequence-gap detection: Polygon's `q` is a per-ticker SIP sequence
//! that is increasing but not contiguous.

use std::sync::Arc;

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::parse::{MS, TapeParser, get_i64, get_str, id_or_hash, number_scaled};
use super::{Adapter, AdapterParams, DecodeError, Decoded};
use crate::instruments::{Instrument, InstrumentRegistry, VenueId};
use crate::telemetry::FeedCounters;
use crate::tick::{Side, Tick, TickKind, flags};

/// Channels subscribed when [`AdapterParams::channels`] is empty: trades,
/// quotes, per-second aggregates.
pub const DEFAULT_CHANNELS: [&str; 3] = ["T", "Q", "A"];

/// Real-time stocks cluster.
pub const URL: &str = "wss://socket.polygon.io/stocks";

/// Decoder and login state machine for a Polygon stocks connection.
pub struct PolygonAdapter {
    registry: Arc<InstrumentRegistry>,
    venue: Option<VenueId>,
    symbols: Vec<String>,
    channels: Vec<String>,
    api_key: Option<String>,
    parser: TapeParser,
    pending: Vec<String>,
    authenticated: bool,
}

impl std::fmt::Debug for PolygonAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolygonAdapter")
            .field("venue", &self.venue)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

/// Login progress signalled by a `status` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Connected,
    AuthSuccess,
    AuthFailed,
    Other,
}

impl PolygonAdapter {
    /// An adapter for `params.venue` that logs in with `params.api_key` and
    /// subscribes to `params.symbols` (all of the venue's instruments when
    /// empty) on `params.channels` ([`DEFAULT_CHANNELS`] when empty).
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
            api_key: params.api_key.clone(),
            parser: TapeParser::default(),
            pending: Vec::new(),
            authenticated: false,
        }
    }

    /// Whether the server accepted the API key on this connection.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// `{"action":"subscribe","params":"T.AAPL,Q.AAPL,A.AAPL"}`, or `None`
    /// when there is nothing to subscribe.
    pub fn subscribe_message(&self) -> Option<String> {
        let params: Vec<String> = self
            .symbols
            .iter()
            .flat_map(|s| {
                self.channels
                    .iter()
                    .map(move |c| format!("{c}.{}", s.to_ascii_uppercase()))
            })
            .collect();
        if params.is_empty() {
            return None;
        }
        let params = serde_json::to_string(&params.join(",")).ok()?;
        Some(format!(r#"{{"action":"subscribe","params":{params}}}"#))
    }

    #[cold]
    #[inline(never)]
    fn on_status(&mut self, status: Status, message: &str) {
        match status {
            Status::Connected => match &self.api_key {
                Some(key) => {
                    if let Ok(k) = serde_json::to_string(key) {
                        self.pending
                            .push(format!(r#"{{"action":"auth","params":{k}}}"#));
                    }
                }
                None => tracing::warn!(
                    "polygon connected but no API key is configured; set the key's environment variable"
                ),
            },
            Status::AuthSuccess => {
                self.authenticated = true;
                if let Some(m) = self.subscribe_message() {
                    self.pending.push(m);
                }
            }
            Status::AuthFailed => {
                self.authenticated = false;
                tracing::warn!(
                    message,
                    "polygon rejected the API key (check the key and plan)"
                );
            }
            Status::Other => {}
        }
    }
}

impl Adapter for PolygonAdapter {
    fn on_connect(&mut self, out: &mut Vec<String>) {
        // The server speaks first; the login starts on its `connected`.
        let _ = out;
        self.authenticated = false;
        self.pending.clear();
    }

    fn take_outgoing(&mut self, out: &mut Vec<String>) {
        out.append(&mut self.pending);
    }

    fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        out: &mut Vec<Tick>,
        counters: &FeedCounters,
    ) -> Result<Decoded, DecodeError> {
        let cx = Cx {
            reg: &self.registry,
            venue: self.venue,
            recv_ns,
            counters,
        };
        // At most a few status events per frame; collected without
        // allocation and acted on after the tape is released.
        let mut statuses: [(Status, [u8; 64], usize); 2] = [(Status::Other, [0; 64], 0); 2];
        let mut n_status = 0usize;
        let res = self.parser.parse(frame, |root| {
            decode_value(root, &cx, out, &mut |st, msg| {
                if n_status < statuses.len() {
                    let b = msg.as_bytes();
                    let n = b.len().min(64);
                    statuses[n_status].0 = st;
                    statuses[n_status].1[..n].copy_from_slice(&b[..n]);
                    statuses[n_status].2 = n;
                    n_status += 1;
                }
            })
        })?;
        for (st, msg, n) in statuses.iter().take(n_status) {
            let msg = std::str::from_utf8(&msg[..*n]).unwrap_or("");
            self.on_status(*st, msg);
        }
        res
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
}

fn px(v: &Value<'_, '_>, inst: &Instrument, k: &'static str) -> Result<i64, DecodeError> {
    number_scaled(
        v.get(k).ok_or(DecodeError::MissingField(k))?,
        inst.price_precision,
        k,
    )
}

fn sz(v: &Value<'_, '_>, inst: &Instrument, k: &'static str) -> Result<i64, DecodeError> {
    number_scaled(
        v.get(k).ok_or(DecodeError::MissingField(k))?,
        inst.size_precision,
        k,
    )
}

fn decode_value(
    root: Value<'_, '_>,
    cx: &Cx<'_>,
    out: &mut Vec<Tick>,
    on_status: &mut dyn FnMut(Status, &str),
) -> Result<Decoded, DecodeError> {
    let events = root.as_array().ok_or(DecodeError::Json)?;
    let start = out.len();
    let mut data_events = 0usize;
    for e in events.iter() {
        match get_str(&e, "ev")? {
            "status" => {
                let st = match get_str(&e, "status")? {
                    "connected" => Status::Connected,
                    "auth_success" => Status::AuthSuccess,
                    "auth_failed" => Status::AuthFailed,
                    _ => Status::Other,
                };
                let msg = e.get("message").and_then(|m| m.into_string()).unwrap_or("");
                on_status(st, msg);
            }
            "T" => {
                data_events += 1;
                let Some(inst) = cx.lookup(get_str(&e, "sym")?) else {
                    continue;
                };
                let p = px(&e, inst, "p")?;
                let q = sz(&e, inst, "s")?;
                let ts = get_i64(&e, "t")? * MS;
                let (id, hashed) = match e.get("i") {
                    Some(i) => match (i.into_string(), i.as_u64()) {
                        (Some(s), _) => id_or_hash(s),
                        (None, Some(n)) => (n, false),
                        (None, None) => return Err(DecodeError::MissingField("i")),
                    },
                    None => return Err(DecodeError::MissingField("i")),
                };
                let mut t = Tick::trade(inst.id, ts, cx.recv_ns, p, q, Side::None, id);
                if hashed {
                    t.flags |= flags::ID_HASHED;
                }
                if p <= 0 || q < 0 {
                    t.flags |= flags::SUSPECT;
                }
                out.push(t);
            }
            "Q" => {
                data_events += 1;
                let Some(inst) = cx.lookup(get_str(&e, "sym")?) else {
                    continue;
                };
                let bid = px(&e, inst, "bp")?;
                let bid_sz = sz(&e, inst, "bs")?;
                let ask = px(&e, inst, "ap")?;
                let ask_sz = sz(&e, inst, "as")?;
                let ts = get_i64(&e, "t")? * MS;
                let seq = e.get("q").and_then(|q| q.as_u64()).unwrap_or(0);
                let mut t = Tick::quote(inst.id, ts, cx.recv_ns, bid, bid_sz, ask, ask_sz, seq);
                if bid > ask && ask > 0 {
                    t.flags |= flags::SUSPECT;
                }
                out.push(t);
            }
            "A" | "AM" => {
                data_events += 1;
                let Some(inst) = cx.lookup(get_str(&e, "sym")?) else {
                    continue;
                };
                let open = px(&e, inst, "o")?;
                out.push(Tick {
                    ts_event_ns: get_i64(&e, "s")? * MS,
                    ts_recv_ns: cx.recv_ns,
                    price: px(&e, inst, "c")?,
                    size: sz(&e, inst, "v")?,
                    price2: px(&e, inst, "h")?,
                    size2: px(&e, inst, "l")?,
                    id: open as u64,
                    instrument: inst.id,
                    kind: TickKind::Bar as u8,
                    side: Side::None as u8,
                    flags: 0,
                });
            }
            _ => {}
        }
    }
    if data_events == 0 {
        return Ok(Decoded::Control);
    }
    Ok(Decoded::Data(out.len() - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k3y-SECRET-123";

    fn adapter(key: Option<&str>) -> (PolygonAdapter, FeedCounters) {
        let mut r = InstrumentRegistry::new();
        r.add("POLYGON:AAPL", 4, 0, None).unwrap();
        r.add("POLYGON:AMZN", 4, 0, None).unwrap();
        let params = AdapterParams {
            venue: "POLYGON".into(),
            symbols: vec!["AAPL".into()],
            api_key: key.map(str::to_owned),
            ..AdapterParams::default()
        };
        (
            PolygonAdapter::new(Arc::new(r), &params),
            FeedCounters::default(),
        )
    }

    fn dec(
        a: &mut PolygonAdapter,
        c: &FeedCounters,
        f: &str,
    ) -> (Result<Decoded, DecodeError>, Vec<Tick>) {
        let mut out = Vec::new();
        let r = a.decode(f.as_bytes(), 5, &mut out, c);
        (r, out)
    }

    #[test]
    fn login_state_machine_queues_auth_then_subscribe() {
        let (mut a, c) = adapter(Some(KEY));
        let mut sent = Vec::new();
        a.on_connect(&mut sent);
        assert!(sent.is_empty(), "server speaks first");
        let (r, _) = dec(
            &mut a,
            &c,
            r#"[{"ev":"status","status":"connected","message":"Connected Successfully"}]"#,
        );
        assert_eq!(r, Ok(Decoded::Control));
        a.take_outgoing(&mut sent);
        assert_eq!(sent, [format!(r#"{{"action":"auth","params":"{KEY}"}}"#)]);
        sent.clear();
        a.take_outgoing(&mut sent);
        assert!(sent.is_empty(), "queue drained");
        assert!(!a.is_authenticated());
        let (r, _) = dec(
            &mut a,
            &c,
            r#"[{"ev":"status","status":"auth_success","message":"authenticated"}]"#,
        );
        assert_eq!(r, Ok(Decoded::Control));
        assert!(a.is_authenticated());
        a.take_outgoing(&mut sent);
        assert_eq!(
            sent,
            [r#"{"action":"subscribe","params":"T.AAPL,Q.AAPL,A.AAPL"}"#]
        );
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(KEY), "{dbg}");
        assert!(dbg.contains("redacted"));
        // Reconnect: login starts over.
        a.on_connect(&mut sent);
        assert!(!a.is_authenticated());
    }

    #[test]
    fn auth_failed_and_missing_key_queue_nothing() {
        let (mut a, c) = adapter(None);
        let (r, _) = dec(&mut a, &c, r#"[{"ev":"status","status":"connected"}]"#);
        assert_eq!(r, Ok(Decoded::Control));
        let mut sent = Vec::new();
        a.take_outgoing(&mut sent);
        assert!(sent.is_empty());
        let (mut a, c) = adapter(Some(KEY));
        let (r, _) = dec(
            &mut a,
            &c,
            r#"[{"ev":"status","status":"auth_failed","message":"authentication failed"}]"#,
        );
        assert_eq!(r, Ok(Decoded::Control));
        a.take_outgoing(&mut sent);
        assert!(sent.is_empty());
        assert!(!a.is_authenticated());
    }

    // Event layouts follow Polygon's public docs and the client-python
    // mock server; prices are the AAPL NBBO values of the REST capture in
    // shared/data/real/polygon/AAPL.json (2022-05-10).

    #[test]
    fn trades_quotes_and_aggregates() {
        let (mut a, c) = adapter(Some(KEY));
        let f = r#"[{"ev":"T","sym":"AAPL","i":"5096","x":10,"p":155.87,"s":300,"c":[14,41],"t":1652191872800,"q":19288684,"z":3},{"ev":"Q","sym":"AAPL","bx":19,"bp":155.85,"bs":4,"ax":15,"ap":155.87,"as":3,"c":1,"t":1652191872800,"q":19288684,"z":3},{"ev":"A","sym":"AAPL","v":5400,"av":61324012,"op":154.93,"vw":155.8612,"o":155.85,"c":155.87,"h":155.9,"l":155.8,"a":155.2,"z":54,"s":1652191872000,"e":1652191873000}]"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(3)));
        let t = out[0];
        assert_eq!(t.kind(), Some(TickKind::Trade));
        assert_eq!((t.price, t.size, t.id), (1_558_700, 300, 5096));
        assert_eq!(t.side(), Side::None);
        assert_eq!(t.ts_event_ns, 1_652_191_872_800_000_000);
        let q = out[1];
        assert_eq!(
            (q.price, q.size, q.price2, q.size2, q.id),
            (1_558_500, 4, 1_558_700, 3, 19_288_684)
        );
        let b = out[2];
        assert_eq!(b.kind(), Some(TickKind::Bar));
        assert_eq!(
            (b.id as i64, b.price2, b.size2, b.price, b.size),
            (1_558_500, 1_559_000, 1_558_000, 1_558_700, 5400)
        );
        assert_eq!(b.ts_event_ns, 1_652_191_872_000_000_000);
    }

    #[test]
    fn mixed_frames_unknown_symbols_and_hashed_ids() {
        let (mut a, c) = adapter(Some(KEY));
        let f = r#"[{"ev":"status","status":"success","message":"subscribed to: T.AAPL"},{"ev":"T","sym":"MSFT","i":"1","x":4,"p":1.5,"s":1,"t":1,"q":1},{"ev":"T","sym":"AMZN","i":"a1b","x":4,"p":161.87,"s":100,"t":1651684192717,"q":4009434,"z":3},{"ev":"LULD","T":"AAPL"}]"#;
        let (r, out) = dec(&mut a, &c, f);
        assert_eq!(r, Ok(Decoded::Data(1)));
        assert_eq!(c.unknown_symbols.get(), 1);
        assert!(out[0].has_flag(flags::ID_HASHED));
        assert_eq!(out[0].price, 1_618_700);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let (mut a, c) = adapter(Some(KEY));
        for f in [
            "",
            "{}",
            "[1]",
            r#"[{"x":1}]"#,
            r#"[{"ev":"T","sym":"AAPL","p":"x","s":1,"t":1,"i":"1"}]"#,
            r#"[{"ev":"T","sym":"AAPL","p":1.00001,"s":1,"t":1,"i":"1"}]"#,
            r#"[{"ev":"T","sym":"AAPL","p":1e300,"s":1,"t":1,"i":"1"}]"#,
            r#"[{"ev":"T","sym":"AAPL","p":1,"s":1,"t":1}]"#,
            r#"[{"ev":"Q","sym":"AAPL","bp":1,"bs":1,"ap":1,"t":1}]"#,
            r#"[{"ev":"A","sym":"AAPL","o":1,"h":1,"l":1,"c":1,"v":1}]"#,
            r#"[{"ev":"status"}]"#,
        ] {
            assert!(dec(&mut a, &c, f).0.is_err(), "{f}");
        }
    }
}
