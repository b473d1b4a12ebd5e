//! The subscriber protocol: the channel table, client requests, and the
//! subscription index that routes an event to exactly its subscribers.
//!
//! # Adding a channel
//! Add one [`ChannelDef`] line to [`CHANNELS`]: name, delivery (lossless or
//! conflated), scope (per symbol or global), what a new subscriber's
//! snapshot is, and the predicate that picks the channel's events. The
//! server, the error messages (`known: ...`), `/api/v1/status` and
//! `docs/PROTOCOL.md`'s rules follow the table.

use std::collections::HashMap;

use serde::Deserialize;

use crate::event::{Event, EventBody};
use crate::instruments::{InstrumentId, InstrumentRegistry};
use crate::tick::TickKind;

/// What happens to a channel's messages when a client is slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every message is delivered in order; a client whose queue overflows
    /// is closed with [`close_code::SLOW_CONSUMER`].
    Lossless,
    /// Only the newest pending message per (channel, symbol) is kept: a
    /// slow client skips intermediate values and is never closed for it.
    Conflated,
}

impl Delivery {
    /// `lossless` or `conflated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lossless => "lossless",
            Self::Conflated => "conflated",
        }
    }
}

/// Whether a channel is keyed by symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One stream per instrument; requests name symbols (or `"*"`).
    Symbol,
    /// One stream for the engine; `symbols` is ignored.
    Global,
}

/// What a new subscriber receives right after subscribing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshot {
    /// Nothing (book levels: there is no book state yet).
    None,
    /// The instrument's latest trade.
    LatestTrade,
    /// The instrument's latest quote.
    LatestQuote,
    /// The instrument's latest anomaly.
    LatestAnomaly,
    /// The last final bar of the channel's window.
    LastBar,
    /// The latest `stats` message.
    Stats,
}

/// Which events belong to a channel.
#[derive(Debug, Clone, Copy)]
pub enum Selector {
    /// Events for which the function returns `true`.
    Events(fn(&Event) -> bool),
    /// Final bars of each configured window: expands to one channel per
    /// window, named `<name>.<window>` (`bars.1m`).
    FinalBars,
    /// Produced by the server itself (periodic `stats`).
    Server,
}

/// One row of the channel table.
#[derive(Debug, Clone, Copy)]
pub struct ChannelDef {
    /// Name clients subscribe to (a prefix for [`Selector::FinalBars`]).
    pub name: &'static str,
    /// Slow-client policy.
    pub delivery: Delivery,
    /// Keyed by symbol or global.
    pub scope: Scope,
    /// Snapshot sent after subscribe.
    pub snapshot: Snapshot,
    /// Which events it carries.
    pub selector: Selector,
}

fn is_trade(ev: &Event) -> bool {
    tick_kind(ev) == Some(TickKind::Trade)
}
fn is_quote(ev: &Event) -> bool {
    tick_kind(ev) == Some(TickKind::Quote)
}
fn is_book(ev: &Event) -> bool {
    tick_kind(ev) == Some(TickKind::BookLevel)
}
fn is_anomaly(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Anomaly(_))
        || matches!(tick_kind(ev), Some(TickKind::Gap | TickKind::FeedStatus))
}
fn is_final_indicators(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Indicators(s) if s.is_final)
}
fn is_movers(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Movers(_))
}
fn is_sector(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Sector(_))
}
fn is_index(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Index(_))
}
fn tick_kind(ev: &Event) -> Option<TickKind> {
    match &ev.body {
        EventBody::Tick(t) => t.kind(),
        _ => None,
    }
}
fn is_signal(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Signal(_) | EventBody::SignalRejected(_))
}
fn is_order(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Order(_))
}
fn is_fill(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Fill(_))
}
fn is_portfolio(ev: &Event) -> bool {
    matches!(ev.body, EventBody::Portfolio(_))
}
fn is_market_status(ev: &Event) -> bool {
    matches!(ev.body, EventBody::MarketStatus(_))
}

/// The channel table. Adding a channel is one row here.
pub const CHANNELS: &[ChannelDef] = &[
    ChannelDef {
        name: "trades",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::LatestTrade,
        selector: Selector::Events(is_trade),
    },
    ChannelDef {
        name: "quotes",
        delivery: Delivery::Conflated,
        scope: Scope::Symbol,
        snapshot: Snapshot::LatestQuote,
        selector: Selector::Events(is_quote),
    },
    ChannelDef {
        name: "book",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_book),
    },
    ChannelDef {
        name: "bars",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::LastBar,
        selector: Selector::FinalBars,
    },
    ChannelDef {
        name: "anomalies",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::LatestAnomaly,
        selector: Selector::Events(is_anomaly),
    },
    ChannelDef {
        name: "stats",
        delivery: Delivery::Conflated,
        scope: Scope::Global,
        snapshot: Snapshot::Stats,
        selector: Selector::Server,
    },
    ChannelDef {
        name: "signals",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_signal),
    },
    ChannelDef {
        name: "orders",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_order),
    },
    ChannelDef {
        name: "fills",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_fill),
    },
    ChannelDef {
        name: "portfolio",
        delivery: Delivery::Conflated,
        scope: Scope::Global,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_portfolio),
    },
    ChannelDef {
        name: "market_status",
        delivery: Delivery::Lossless,
        scope: Scope::Global,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_market_status),
    },
    ChannelDef {
        name: "indicators",
        delivery: Delivery::Lossless,
        scope: Scope::Symbol,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_final_indicators),
    },
    ChannelDef {
        name: "movers",
        delivery: Delivery::Lossless,
        scope: Scope::Global,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_movers),
    },
    ChannelDef {
        name: "sectors",
        delivery: Delivery::Lossless,
        scope: Scope::Global,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_sector),
    },
    ChannelDef {
        name: "indices",
        delivery: Delivery::Lossless,
        scope: Scope::Global,
        snapshot: Snapshot::None,
        selector: Selector::Events(is_index),
    },
];

/// Index of a channel in a [`ChannelTable`].
pub type ChannelId = u16;

/// A concrete channel (bar families expanded per window).
#[derive(Debug, Clone)]
pub struct Channel {
    /// Full name (`trades`, `bars.1m`).
    pub name: String,
    /// The table row it comes from.
    pub def: ChannelDef,
    /// Window index for bar channels.
    pub window: Option<u8>,
}

/// The channels of one engine: [`CHANNELS`] with bar families expanded for
/// the configured windows.
#[derive(Debug, Clone)]
pub struct ChannelTable {
    channels: Vec<Channel>,
    by_name: HashMap<String, ChannelId>,
    /// First bar channel id (bar channel of window w = base + w).
    bars_base: Option<ChannelId>,
    stats: Option<ChannelId>,
    known: String,
}

impl ChannelTable {
    /// Expands [`CHANNELS`] for `window_names` (kernel order, e.g. `1m`).
    pub fn new(window_names: &[String]) -> Self {
        let mut channels = Vec::new();
        let mut bars_base = None;
        let mut stats = None;
        for def in CHANNELS {
            match def.selector {
                Selector::FinalBars => {
                    bars_base = Some(channels.len() as ChannelId);
                    for (w, wn) in window_names.iter().enumerate() {
                        channels.push(Channel {
                            name: format!("{}.{}", def.name, wn),
                            def: *def,
                            window: Some(w as u8),
                        });
                    }
                }
                Selector::Server => {
                    if def.snapshot == Snapshot::Stats {
                        stats = Some(channels.len() as ChannelId);
                    }
                    channels.push(Channel {
                        name: def.name.to_string(),
                        def: *def,
                        window: None,
                    });
                }
                Selector::Events(_) => channels.push(Channel {
                    name: def.name.to_string(),
                    def: *def,
                    window: None,
                }),
            }
        }
        let by_name = channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i as ChannelId))
            .collect();
        let known = channels
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            channels,
            by_name,
            bars_base,
            stats,
            known,
        }
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether there are none (never, with the built-in table).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The channel with this id.
    pub fn get(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.get(usize::from(id))
    }

    /// All channels, id order.
    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter()
    }

    /// Looks a channel up by its exact name.
    pub fn lookup(&self, name: &str) -> Option<ChannelId> {
        self.by_name.get(name).copied()
    }

    /// `trades, quotes, ...` for error messages.
    pub fn known(&self) -> &str {
        &self.known
    }

    /// The `stats` channel, if the table has one.
    pub fn stats(&self) -> Option<ChannelId> {
        self.stats
    }

    /// The channel an event belongs to, or `None` (e.g. provisional bars).
    #[inline]
    pub fn classify(&self, ev: &Event) -> Option<ChannelId> {
        if let EventBody::Bar(b) = &ev.body {
            let base = self.bars_base?;
            let id = base + ChannelId::from(b.window_idx);
            let c = self.channels.get(usize::from(id))?;
            return (b.is_final && c.window == Some(b.window_idx)).then_some(id);
        }
        for (i, c) in self.channels.iter().enumerate() {
            if let Selector::Events(f) = c.def.selector
                && f(ev)
            {
                return Some(i as ChannelId);
            }
        }
        None
    }
}

/// WebSocket close codes the server uses (RFC 6455 and private 4xxx).
pub mod close_code {
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol violation (bad framing).
    pub const PROTOCOL: u16 = 1002;
    /// Text frame with invalid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Inbound message or frame above `server.max_message_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// A lossless channel overflowed the client's queue.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No pong to the server's ping within `server.ping_interval_secs`.
    pub const PING_TIMEOUT: u16 = 4010;
    /// No inbound traffic for `server.idle_timeout_secs`.
    pub const IDLE_TIMEOUT: u16 = 4011;
}

/// Error codes of `{"type":"error","code":...}` replies.
pub mod error_code {
    /// The message is not JSON.
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// JSON, but not a request object of the documented shape.
    pub const BAD_REQUEST: &str = "bad_request";
    /// `op` is not one of the known operations.
    pub const UNKNOWN_OP: &str = "unknown_op";
    /// A channel name is not in the table.
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    /// A symbol is not configured.
    pub const UNKNOWN_SYMBOL: &str = "unknown_symbol";
    /// The subscription would exceed `server.max_subscriptions`.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    /// The message exceeded `server.max_message_bytes` (sent before close 1009).
    pub const MESSAGE_TOO_LARGE: &str = "message_too_large";
    /// Binary frames are not part of the protocol.
    pub const UNSUPPORTED_MESSAGE: &str = "unsupported_message";
    /// Missing or wrong bearer token (HTTP 401).
    pub const NOT_AUTHENTICATED: &str = "not_authenticated";
    /// Too many subscribers (HTTP 503).
    pub const TOO_MANY_CLIENTS: &str = "too_many_clients";
    /// Unknown HTTP path (404).
    pub const NOT_FOUND: &str = "not_found";
    /// Known path, wrong method (405).
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// Unknown bar window in a REST query.
    pub const UNKNOWN_WINDOW: &str = "unknown_window";
}

/// A protocol-level error reply: code and human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError {
    /// One of [`error_code`].
    pub code: &'static str,
    /// What was wrong and what to do.
    pub message: String,
}

impl ProtoError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawRequest {
    op: Option<String>,
    channels: Option<Vec<String>>,
    symbols: Option<Vec<String>>,
}

/// A parsed, validated client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Subscribe to every (channel, symbol) pair.
    Subscribe(Selection),
    /// Unsubscribe from every pair.
    Unsubscribe(Selection),
    /// Answered with `{"type":"pong"}`.
    Ping,
}

/// Channels × symbols named by a (un)subscribe request, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Channel ids, request order, deduplicated.
    pub channels: Vec<ChannelId>,
    /// Instruments (`"*"` expanded), request order, deduplicated.
    pub instruments: Vec<InstrumentId>,
    /// Symbols as acknowledged: registry keys, or `*`.
    pub symbol_names: Vec<String>,
}

impl Selection {
    /// The (channel, instrument) pairs; global channels pair with instrument 0.
    pub fn pairs<'a>(
        &'a self,
        table: &'a ChannelTable,
    ) -> impl Iterator<Item = (ChannelId, InstrumentId)> + 'a {
        self.channels.iter().flat_map(move |&c| {
            let global = table.get(c).is_some_and(|ch| ch.def.scope == Scope::Global);
            let insts: &[InstrumentId] = if global {
                &[InstrumentId(0)]
            } else {
                &self.instruments
            };
            insts.iter().map(move |&i| (c, i))
        })
    }
}

/// Parses and validates one text message from a client.
///
/// # Errors
/// A [`ProtoError`] with the code to send back; nothing is applied.
pub fn parse_request(
    text: &[u8],
    table: &ChannelTable,
    registry: &InstrumentRegistry,
) -> Result<Request, ProtoError> {
    let raw: RawRequest = serde_json::from_slice(text).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            ProtoError::new(
                error_code::BAD_REQUEST,
                format!(
                    "request must be an object like {{\"op\":\"subscribe\",\"channels\":[\"trades\"],\"symbols\":[\"*\"]}}: {e}"
                ),
            )
        } else {
            ProtoError::new(
                error_code::MALFORMED_JSON,
                format!("message is not valid JSON: {e}"),
            )
        }
    })?;
    let op = raw.op.as_deref().ok_or_else(|| {
        ProtoError::new(
            error_code::BAD_REQUEST,
            "missing \"op\"; use subscribe, unsubscribe or ping",
        )
    })?;
    match op {
        "ping" => Ok(Request::Ping),
        "subscribe" | "unsubscribe" => {
            let sel = resolve(raw.channels, raw.symbols, table, registry)?;
            Ok(if op == "subscribe" {
                Request::Subscribe(sel)
            } else {
                Request::Unsubscribe(sel)
            })
        }
        other => Err(ProtoError::new(
            error_code::UNKNOWN_OP,
            format!(
                "op '{}' is not known; known: subscribe, unsubscribe, ping",
                truncate(other)
            ),
        )),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn resolve(
    channels: Option<Vec<String>>,
    symbols: Option<Vec<String>>,
    table: &ChannelTable,
    registry: &InstrumentRegistry,
) -> Result<Selection, ProtoError> {
    let channels = channels.unwrap_or_default();
    if channels.is_empty() {
        return Err(ProtoError::new(
            error_code::BAD_REQUEST,
            format!(
                "\"channels\" must list at least one channel; known: {}",
                table.known()
            ),
        ));
    }
    let mut ch_ids = Vec::with_capacity(channels.len());
    for name in &channels {
        let id = table.lookup(name).ok_or_else(|| {
            ProtoError::new(
                error_code::UNKNOWN_CHANNEL,
                format!(
                    "channel '{}' does not exist; known: {}",
                    truncate(name),
                    table.known()
                ),
            )
        })?;
        if !ch_ids.contains(&id) {
            ch_ids.push(id);
        }
    }
    let keyed = ch_ids
        .iter()
        .any(|&c| table.get(c).is_some_and(|ch| ch.def.scope == Scope::Symbol));
    let symbols = symbols.unwrap_or_default();
    let mut insts = Vec::new();
    let mut names = Vec::new();
    if keyed {
        if symbols.is_empty() {
            return Err(ProtoError::new(
                error_code::BAD_REQUEST,
                "\"symbols\" must list at least one VENUE:SYMBOL, or \"*\" for all",
            ));
        }
        for s in &symbols {
            if s == "*" {
                for i in registry.iter() {
                    if !insts.contains(&i.id) {
                        insts.push(i.id);
                    }
                }
                names.push("*".to_string());
                continue;
            }
            let id = registry.lookup_key(s).ok_or_else(|| {
                ProtoError::new(
                    error_code::UNKNOWN_SYMBOL,
                    format!(
                        "symbol '{}' is not configured; GET /api/v1/symbols lists them (VENUE:SYMBOL), or use \"*\"",
                        truncate(s)
                    ),
                )
            })?;
            if !insts.contains(&id) {
                insts.push(id);
            }
            if let Some(i) = registry.get(id)
                && !names.contains(&i.key)
            {
                names.push(i.key.clone());
            }
        }
    }
    Ok(Selection {
        channels: ch_ids,
        instruments: insts,
        symbol_names: names,
    })
}

/// One subscriber of a (channel, instrument) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sub {
    /// Client slot id.
    pub client: u32,
    /// The client's conflation slot for this stream, or [`NO_SLOT`].
    pub slot: u32,
}

/// [`Sub::slot`] of lossless streams.
pub const NO_SLOT: u32 = u32::MAX;

/// Subscription index: (channel, instrument) → subscribers, so routing an
/// event costs O(its subscribers), never O(all clients).
#[derive(Debug, Clone)]
pub struct Router {
    n_inst: usize,
    lists: Vec<Vec<Sub>>,
}

impl Router {
    /// An empty index for `n_channels` × `n_inst`.
    pub fn new(n_channels: usize, n_inst: usize) -> Self {
        let n_inst = n_inst.max(1);
        Self {
            n_inst,
            lists: vec![Vec::new(); n_channels * n_inst],
        }
    }

    /// The flat key of a stream.
    #[inline]
    pub fn key(&self, ch: ChannelId, inst: InstrumentId) -> usize {
        usize::from(ch) * self.n_inst + inst.0 as usize
    }

    /// Subscribers of a stream key.
    #[inline]
    pub fn subs(&self, key: usize) -> &[Sub] {
        self.lists.get(key).map_or(&[], Vec::as_slice)
    }

    /// Adds a subscriber to a key.
    pub fn add(&mut self, key: usize, sub: Sub) {
        if let Some(l) = self.lists.get_mut(key) {
            l.push(sub);
        }
    }

    /// Removes a client from a key (order of the others may change).
    pub fn remove(&mut self, key: usize, client: u32) {
        if let Some(l) = self.lists.get_mut(key)
            && let Some(pos) = l.iter().position(|s| s.client == client)
        {
            l.swap_remove(pos);
        }
    }

    /// The (channel, instrument) of a key.
    pub fn split(&self, key: usize) -> (ChannelId, InstrumentId) {
        (
            (key / self.n_inst) as ChannelId,
            InstrumentId((key % self.n_inst) as u32),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Bar;
    use crate::tick::{Side, Tick};

    fn setup() -> (ChannelTable, InstrumentRegistry) {
        let mut r = InstrumentRegistry::new();
        r.add("SIM:AAA", 2, 2, None).unwrap();
        r.add("SIM:BBB", 2, 2, None).unwrap();
        (ChannelTable::new(&["1m".into(), "5m".into()]), r)
    }

    #[test]
    fn table_expands_bars_and_lists_known() {
        let (t, _) = setup();
        assert_eq!(
            t.known(),
            "trades, quotes, book, bars.1m, bars.5m, anomalies, stats, signals, orders, fills, portfolio, market_status, indicators, movers, sectors, indices"
        );
        assert!(t.lookup("bars.5m").is_some());
        assert!(t.lookup("bars").is_none());
        assert_eq!(t.get(t.stats().unwrap()).unwrap().name, "stats");
    }

    #[test]
    fn classifies_events() {
        let (t, _) = setup();
        let tr = Event {
            recv_ns: 1,
            body: EventBody::Tick(Tick::trade(InstrumentId(1), 1, 1, 100, 1, Side::Buy, 9)),
        };
        assert_eq!(t.classify(&tr), t.lookup("trades"));
        let q = Event {
            recv_ns: 1,
            body: EventBody::Tick(Tick::quote(InstrumentId(0), 1, 1, 99, 1, 101, 1, 3)),
        };
        assert_eq!(t.classify(&q), t.lookup("quotes"));
        let mut b = Bar {
            window_idx: 1,
            is_final: true,
            ..Bar::default()
        };
        let bar = |b: Bar| Event {
            recv_ns: 1,
            body: EventBody::Bar(b),
        };
        assert_eq!(t.classify(&bar(b)), t.lookup("bars.5m"));
        b.is_final = false;
        assert_eq!(t.classify(&bar(b)), None);
        b.is_final = true;
        b.window_idx = 7;
        assert_eq!(t.classify(&bar(b)), None);
    }

    #[test]
    fn parses_requests_and_errors() {
        let (t, r) = setup();
        let p = |s: &str| parse_request(s.as_bytes(), &t, &r);
        assert_eq!(p(r#"{"op":"ping"}"#), Ok(Request::Ping));
        let Ok(Request::Subscribe(sel)) =
            p(r#"{"op":"subscribe","channels":["trades","stats"],"symbols":["sim:bbb","*"]}"#)
        else {
            panic!()
        };
        assert_eq!(sel.instruments, vec![InstrumentId(1), InstrumentId(0)]);
        assert_eq!(sel.symbol_names, vec!["SIM:BBB", "*"]);
        // trades × 2 symbols + stats × 1.
        assert_eq!(sel.pairs(&t).count(), 3);
        let code = |s: &str| p(s).unwrap_err().code;
        assert_eq!(code("{nope"), error_code::MALFORMED_JSON);
        assert_eq!(code("[1,2]"), error_code::BAD_REQUEST);
        assert_eq!(code(r#"{"op":"dance"}"#), error_code::UNKNOWN_OP);
        assert_eq!(code(r#"{"channels":[]}"#), error_code::BAD_REQUEST);
        let e = p(r#"{"op":"subscribe","channels":["x"],"symbols":["*"]}"#).unwrap_err();
        assert_eq!(e.code, error_code::UNKNOWN_CHANNEL);
        assert_eq!(
            e.message,
            "channel 'x' does not exist; known: trades, quotes, book, bars.1m, bars.5m, anomalies, stats, signals, orders, fills, portfolio, market_status, indicators, movers, sectors, indices"
        );
        assert_eq!(
            code(r#"{"op":"subscribe","channels":["trades"],"symbols":["SIM:ZZZ"]}"#),
            error_code::UNKNOWN_SYMBOL
        );
        assert_eq!(
            code(r#"{"op":"subscribe","channels":["trades"]}"#),
            error_code::BAD_REQUEST
        );
        // Global channels need no symbols.
        assert!(p(r#"{"op":"unsubscribe","channels":["stats"]}"#).is_ok());
    }

    #[test]
    fn router_add_remove() {
        let mut rt = Router::new(3, 2);
        let k = rt.key(2, InstrumentId(1));
        assert_eq!(rt.split(k), (2, InstrumentId(1)));
        rt.add(k, Sub { client: 5, slot: 0 });
        rt.add(
            k,
            Sub {
                client: 6,
                slot: NO_SLOT,
            },
        );
        assert_eq!(rt.subs(k).len(), 2);
        rt.remove(k, 5);
        assert_eq!(
            rt.subs(k),
            &[Sub {
                client: 6,
                slot: NO_SLOT
            }]
        );
        rt.remove(k, 42);
        assert_eq!(rt.subs(k).len(), 1);
        assert!(rt.subs(999).is_empty());
    }
}
