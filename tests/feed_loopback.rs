//! Live path over loopback: feedsim (the local exchange simulator) →
//! WebSocket (ws:// and wss:// with a custom CA) → WsSource → adapter →
//! ticks, with injected faults: drops, half frames, refused connections,
//! stalls longer than the watchdog, sequence gaps, garbage frames.
//!
//! Each test drives the feed stage on the test thread (no pipeline), with
//! a deadline so a regression fails instead of hanging. Nothing here
//! asserts on speed.
//!
//! [`Loopback`], [`VenueCase`] and the `pub fn` scenarios are venue-neutral:
//! Binance, Bybit (spot, linear), Coinbase and Polygon run through them
//! with their real adapters; a new adapter plugs in with its own
//! `VenueCase`, e.g.
//!
//! ```text
//! const BYBIT: VenueCase = VenueCase {
//!     adapter: AdapterKind::BybitSpot,
//!     venue: Venue::Bybit,
//!     registry_venue: "BYBIT",
//!     symbols: &[("BTCUSDT", 2, 6, "61837.63"), ("ETHUSDT", 2, 5, "2650.17")],
//!     channels: &["publicTrade", "orderbook.1"],
//!     api_key: None,
//! };
//! #[test] fn bybit_wss_ticks_arrive_decoded() { ticks_arrive_decoded(&BYBIT, true) }
//! #[test] fn bybit_drop() { reconnects_after(&BYBIT, false, Faults { drop_every: 400, ..Faults::default() }, "drop") }
//! ```
//!
//! (Polygon: `api_key: Some("k")` — feedsim then demands that key in
//! `auth`.) `gap_injected_is_reported` applies where the adapter checks
//! trade ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire::clock::Clock;
use tickwire::config::{AdapterKind, EngineConfig, FeedConfig, InstrumentConfig};
use tickwire::engine::{FeedSecrets, build_feed};
use tickwire::feed::{FeedStage, FeedStep};
use tickwire::feedsim::{Faults, FeedSim, FeedSimConfig, Pace, SimSymbol, Venue};
use tickwire::telemetry::{StageRecorder, Telemetry};
use tickwire::tick::{Tick, TickKind, feed_status};

/// What a venue needs to run the loopback scenarios.
pub struct VenueCase {
    /// Engine adapter.
    pub adapter: AdapterKind,
    /// Wire format the simulator speaks.
    pub venue: Venue,
    /// Registry venue name for the instruments.
    pub registry_venue: &'static str,
    /// `(symbol, price precision, size precision, start price)`.
    pub symbols: &'static [(&'static str, u8, u8, &'static str)],
    /// Channels to subscribe (empty = the adapter's defaults).
    pub channels: &'static [&'static str],
    /// API key the simulator demands (Polygon), given to the feed.
    pub api_key: Option<&'static str>,
}

/// Binance spot, two symbols, default channels (trade, bookTicker).
pub const BINANCE: VenueCase = VenueCase {
    adapter: AdapterKind::Binance,
    venue: Venue::Binance,
    registry_venue: "BINANCE",
    symbols: &[("BTCUSDT", 2, 5, "61837.63"), ("ETHUSDT", 2, 4, "2650.17")],
    channels: &[],
    api_key: None,
};

/// Bybit v5 spot: trades and `orderbook.1` (top-of-book levels).
pub const BYBIT_SPOT: VenueCase = VenueCase {
    adapter: AdapterKind::BybitSpot,
    venue: Venue::Bybit,
    registry_venue: "BYBIT",
    symbols: &[("BTCUSDT", 2, 6, "61837.63"), ("ETHUSDT", 2, 5, "2650.17")],
    channels: &[],
    api_key: None,
};

/// Bybit v5 linear: trades and `tickers` (quotes).
pub const BYBIT_LINEAR: VenueCase = VenueCase {
    adapter: AdapterKind::BybitLinear,
    venue: Venue::Bybit,
    registry_venue: "BYBIT-LINEAR",
    symbols: &[("BTCUSDT", 1, 3, "61837.6"), ("ETHUSDT", 2, 2, "2650.17")],
    channels: &[],
    api_key: None,
};

/// Coinbase Advanced Trade: market_trades, ticker, heartbeats.
pub const COINBASE: VenueCase = VenueCase {
    adapter: AdapterKind::Coinbase,
    venue: Venue::Coinbase,
    registry_venue: "COINBASE",
    symbols: &[("BTC-USD", 2, 8, "61837.63"), ("ETH-USD", 2, 8, "2650.17")],
    channels: &[],
    api_key: None,
};

/// Polygon stocks: auth with a key, then T and Q (and A, which feedsim
/// does not generate).
pub const POLYGON: VenueCase = VenueCase {
    adapter: AdapterKind::Polygon,
    venue: Venue::Polygon,
    registry_venue: "POLYGON",
    symbols: &[("AAPL", 2, 0, "182.31"), ("MSFT", 2, 0, "414.20")],
    channels: &[],
    api_key: Some("test-key-123"),
};

/// A running simulator plus the engine's feed stage connected to it.
pub struct Loopback {
    /// The simulator (stats, received messages).
    pub sim: FeedSim,
    /// Feed stage under test.
    pub stage: FeedStage,
    /// Counters.
    pub tel: Telemetry,
    rec: StageRecorder,
    /// Every tick produced so far.
    pub ticks: Vec<Tick>,
    _dir: tempfile::TempDir,
}

/// Starts a simulator for `case` with `faults` (over TLS when `tls`) and a
/// feed stage connected to it; `tweak` adjusts the feed config (watchdog,
/// backoff...). Backoff defaults are short so reconnects are quick.
pub fn loopback(
    case: &VenueCase,
    tls: bool,
    faults: Faults,
    tweak: impl FnOnce(&mut FeedConfig),
) -> Loopback {
    loopback_with(case, tls, faults, |_| {}, tweak)
}

/// [`loopback`] with a hook on the simulator config too.
pub fn loopback_with(
    case: &VenueCase,
    tls: bool,
    faults: Faults,
    sim_tweak: impl FnOnce(&mut FeedSimConfig),
    tweak: impl FnOnce(&mut FeedConfig),
) -> Loopback {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = FeedSimConfig::new(case.venue);
    sc.tls = tls;
    sc.symbols = case
        .symbols
        .iter()
        .map(|(s, p, q, px)| SimSymbol {
            symbol: (*s).into(),
            price_precision: *p,
            size_precision: *q,
            start_price: (*px).into(),
        })
        .collect();
    sc.pace = Pace::Rate(5_000.0);
    sc.sim.trade_ratio = 0.5;
    sc.faults = faults;
    sc.api_key = case.api_key.map(String::from);
    sim_tweak(&mut sc);
    let sim = FeedSim::start(sc).expect("feedsim starts");

    let mut cfg = EngineConfig {
        instruments: case
            .symbols
            .iter()
            .map(|(s, p, q, _)| InstrumentConfig {
                symbol: format!("{}:{s}", case.registry_venue),
                price_precision: *p,
                size_precision: *q,
                sector: None,
                sim_price: None,
            })
            .collect(),
        ..EngineConfig::default()
    };
    let f = &mut cfg.feeds[0];
    f.name = format!("{}-loopback", case.venue.as_str());
    f.adapter = case.adapter;
    f.venue = case.registry_venue.into();
    f.url = sim.url();
    f.channels = case.channels.iter().map(|c| (*c).to_string()).collect();
    f.backoff_initial_ms = 20;
    f.backoff_max_ms = 200;
    f.connect_timeout_ms = 5_000;
    if let Some(pem) = sim.cert_pem() {
        let p = dir.path().join("feedsim-ca.pem");
        std::fs::write(&p, pem).unwrap();
        f.ca_file = Some(p);
    }
    if case.api_key.is_some() {
        f.api_key_env = Some("UNUSED_IN_TESTS".into());
    }
    tweak(f);
    cfg.validate().expect("test config is valid");
    let mut secrets = FeedSecrets::new();
    if let Some(k) = case.api_key {
        secrets.insert(&cfg.feeds[0].name, k.into());
    }
    let registry = Arc::new(cfg.registry().unwrap());
    let clock = Clock::new();
    let (source, streams) = build_feed(&cfg, &registry, clock, &secrets).expect("feed builds");
    let tel = Telemetry::new(registry.len());
    let rec = StageRecorder::new(tel.decode.clone());
    Loopback {
        sim,
        stage: FeedStage::with_streams(source, streams, clock),
        tel,
        rec,
        ticks: Vec::new(),
        _dir: dir,
    }
}

impl Loopback {
    /// Steps the feed until `done` holds; panics with the counters after
    /// `limit`.
    pub fn run_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        loop {
            match self.stage.step(&self.tel.feed, &mut self.rec) {
                FeedStep::Ticks(_) => self.ticks.extend_from_slice(self.stage.ticks()),
                FeedStep::Idle => std::thread::sleep(Duration::from_micros(200)),
                FeedStep::Done => panic!("a WebSocket source never ends"),
            }
            if done(self) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not reached within {limit:?}; {}",
                self.describe()
            );
        }
    }

    /// Counters for failure messages.
    pub fn describe(&self) -> String {
        let c = &self.tel.feed;
        format!(
            "frames {} data {} control {} decode_err {} decimal_err {} ticks {} reconnects {} stale {} gaps {} circuit {}; sim {:?}; subscribes {:?}",
            c.frames.get(),
            c.data_frames.get(),
            c.control.get(),
            c.decode_errors.get(),
            c.decimal_errors.get(),
            c.ticks.get(),
            c.reconnects.get(),
            c.stale.get(),
            c.gaps.get(),
            c.circuit_open.get(),
            self.sim.stats(),
            self.sim.received_subscribes()
        )
    }

    /// Market-data ticks (trades and quotes) seen.
    pub fn market_ticks(&self) -> usize {
        self.ticks
            .iter()
            .filter(|t| {
                matches!(
                    t.kind(),
                    Some(TickKind::Trade | TickKind::Quote | TickKind::BookLevel)
                )
            })
            .count()
    }

    /// Status ticks with `code`.
    pub fn status(&self, code: u64) -> usize {
        self.ticks
            .iter()
            .filter(|t| t.kind() == Some(TickKind::FeedStatus) && t.id == code)
            .count()
    }

    /// Every frame is accounted for exactly once.
    pub fn assert_accounting(&self) {
        let c = &self.tel.feed;
        assert_eq!(
            c.frames.get(),
            c.data_frames.get() + c.control.get() + c.decode_errors.get() + c.decimal_errors.get(),
            "frames = data + control + errors; {}",
            self.describe()
        );
    }

    /// Connection numbers (server side) that sent a subscribe.
    pub fn subscribed_connections(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .sim
            .received_messages()
            .iter()
            .filter(|m| m.subscribe)
            .map(|m| m.conn)
            .collect();
        v.dedup();
        v
    }
}

const LIMIT: Duration = Duration::from_secs(15);
const N_INSTRUMENTS: usize = 2;

/// Scenario (any venue): ticks arrive decoded, status first, no errors.
pub fn ticks_arrive_decoded(case: &VenueCase, tls: bool) {
    let mut lb = loopback(case, tls, Faults::default(), |_| {});
    lb.run_until("500 market ticks", LIMIT, |l| l.market_ticks() >= 500);
    // CONNECTED reported for every instrument of the feed, before data.
    assert_eq!(lb.status(feed_status::CONNECTED), N_INSTRUMENTS);
    assert_eq!(lb.ticks[0].kind(), Some(TickKind::FeedStatus));
    let trades: Vec<&Tick> = lb
        .ticks
        .iter()
        .filter(|t| t.kind() == Some(TickKind::Trade))
        .collect();
    assert!(trades.len() > 100, "{}", lb.describe());
    for t in &trades {
        assert!(t.price > 0 && t.size > 0, "{t:?}");
        assert!((t.instrument.0 as usize) < N_INSTRUMENTS);
        assert!(t.ts_recv_ns > 0 && t.ts_event_ns > 0);
    }
    // Best bid/offer: quotes, or top-of-book levels (Bybit spot orderbook.1).
    let quotes = lb
        .ticks
        .iter()
        .filter(|t| matches!(t.kind(), Some(TickKind::Quote | TickKind::BookLevel)))
        .count();
    assert!(quotes > 100, "{}", lb.describe());
    let c = &lb.tel.feed;
    assert_eq!(c.decode_errors.get() + c.decimal_errors.get(), 0);
    assert_eq!(c.unknown_symbols.get(), 0);
    assert_eq!(c.reconnects.get(), 0);
    assert_eq!(c.gaps.get(), 0, "no faults, no gaps");
    lb.assert_accounting();
    // Subscribed (and authenticated) on the one connection.
    assert_eq!(lb.subscribed_connections(), vec![1]);
    assert_eq!(lb.sim.stats().handshakes, 1);
}

#[test]
fn binance_ws_ticks_arrive_decoded() {
    ticks_arrive_decoded(&BINANCE, false);
}

#[test]
fn binance_wss_custom_ca_ticks_arrive_decoded() {
    ticks_arrive_decoded(&BINANCE, true);
}

#[test]
fn binance_subscribe_names_the_configured_streams() {
    let mut lb = loopback(&BINANCE, false, Faults::default(), |f| {
        f.symbols = Some(vec!["ETHUSDT".into()]);
        f.channels = vec!["trade".into()];
    });
    lb.run_until("50 trades", LIMIT, |l| l.market_ticks() >= 50);
    let subs = lb.sim.received_subscribes();
    assert_eq!(
        subs,
        vec![r#"{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}"#]
    );
    // Only what was subscribed arrives: ETH trades, no quotes, no BTC.
    assert!(
        lb.ticks
            .iter()
            .all(|t| t.kind() == Some(TickKind::FeedStatus)
                || (t.kind() == Some(TickKind::Trade) && t.instrument.0 == 1))
    );
    // Status ticks only for the feed's own instrument.
    assert_eq!(lb.status(feed_status::CONNECTED), 1);
}

/// Scenario (any venue): reconnect and resubscribe after each injected
/// connection fault, data resuming.
pub fn reconnects_after(case: &VenueCase, tls: bool, faults: Faults, what: &str) {
    let mut lb = loopback(case, tls, faults, |_| {});
    // The server records a subscribe when it processes it, a moment after
    // the client's CONNECTED: wait for both.
    lb.run_until(what, LIMIT, |l| {
        l.tel.feed.reconnects.get() >= 2
            && l.market_ticks() >= 1_000
            && l.subscribed_connections().len() >= 3
    });
    let conns = lb.subscribed_connections();
    assert!(
        conns.len() >= 3,
        "a resubscribe on every new connection: {conns:?}; {}",
        lb.describe()
    );
    assert!(lb.status(feed_status::DISCONNECTED) >= 2 * N_INSTRUMENTS);
    assert!(lb.status(feed_status::CONNECTED) >= 3 * N_INSTRUMENTS);
    // Half frames and drops never surface as frames.
    assert_eq!(lb.tel.feed.decode_errors.get(), 0, "{}", lb.describe());
    lb.assert_accounting();
    // Data continues after the last reconnect.
    let last_connect = lb
        .ticks
        .iter()
        .rposition(|t| t.kind() == Some(TickKind::FeedStatus) && t.id == feed_status::CONNECTED)
        .unwrap();
    lb.run_until("data after the reconnect", LIMIT, |l| {
        l.ticks[last_connect..]
            .iter()
            .any(|t| t.kind() == Some(TickKind::Trade))
    });
}

#[test]
fn binance_reconnects_after_drop_every() {
    reconnects_after(
        &BINANCE,
        false,
        Faults {
            drop_every: 400,
            ..Faults::default()
        },
        "2 reconnects after drop-every",
    );
}

#[test]
fn binance_wss_reconnects_after_drop_every() {
    reconnects_after(
        &BINANCE,
        true,
        Faults {
            drop_every: 400,
            ..Faults::default()
        },
        "2 TLS reconnects after drop-every",
    );
}

#[test]
fn binance_reconnects_after_close_mid_frame() {
    reconnects_after(
        &BINANCE,
        false,
        Faults {
            close_mid_frame_after: 300,
            ..Faults::default()
        },
        "2 reconnects after close-mid-frame",
    );
}

#[test]
fn binance_wss_reconnects_after_close_mid_frame() {
    reconnects_after(
        &BINANCE,
        true,
        Faults {
            close_mid_frame_after: 300,
            ..Faults::default()
        },
        "2 TLS reconnects after close-mid-frame",
    );
}

/// Scenario (any venue): see [`binance_connects_once_refusal_ends`].
pub fn connects_once_refusal_ends(case: &VenueCase) {
    let mut lb = loopback(
        case,
        false,
        Faults {
            refuse_for_ms: 800,
            ..Faults::default()
        },
        |f| f.breaker_failures = 100,
    );
    lb.run_until("data after the refusal", LIMIT, |l| l.market_ticks() >= 100);
    // Downstream saw the outage first, then the connection.
    let first_down = lb
        .ticks
        .iter()
        .position(|t| t.id == feed_status::DISCONNECTED && t.kind() == Some(TickKind::FeedStatus));
    let first_up = lb
        .ticks
        .iter()
        .position(|t| t.id == feed_status::CONNECTED && t.kind() == Some(TickKind::FeedStatus));
    assert!(
        first_down.is_some() && first_down < first_up,
        "DISCONNECTED before CONNECTED: {:?} {:?}",
        first_down,
        first_up
    );
    // One DISCONNECTED per outage, however many attempts failed.
    assert_eq!(lb.status(feed_status::DISCONNECTED), N_INSTRUMENTS);
    assert_eq!(
        lb.status(feed_status::CIRCUIT_OPEN),
        0,
        "100 failures needed"
    );
    assert_eq!(lb.tel.feed.reconnects.get(), 0, "first connection");
    assert_eq!(lb.subscribed_connections(), vec![1]);
    lb.assert_accounting();
}

#[test]
fn binance_connects_once_refusal_ends() {
    connects_once_refusal_ends(&BINANCE);
}

/// Scenario (any venue): see [`binance_circuit_opens_while_refused_then_recovers`].
pub fn circuit_opens_while_refused_then_recovers(case: &VenueCase) {
    let mut lb = loopback(
        case,
        false,
        Faults {
            refuse_for_ms: 1_000,
            ..Faults::default()
        },
        |f| {
            f.breaker_failures = 2;
            f.breaker_open_ms = 1_500;
            f.backoff_initial_ms = 1;
            f.backoff_max_ms = 5;
        },
    );
    lb.run_until("data after the breaker's trial", LIMIT, |l| {
        l.market_ticks() >= 50
    });
    assert_eq!(lb.status(feed_status::CIRCUIT_OPEN), N_INSTRUMENTS);
    assert!(lb.tel.feed.circuit_open.get() >= 1);
    assert_eq!(lb.status(feed_status::CONNECTED), N_INSTRUMENTS);
}

#[test]
fn binance_circuit_opens_while_refused_then_recovers() {
    circuit_opens_while_refused_then_recovers(&BINANCE);
}

/// Scenario (any venue): see [`binance_stall_longer_than_watchdog_forces_reconnect`].
pub fn stall_longer_than_watchdog_forces_reconnect(case: &VenueCase) {
    let mut lb = loopback(
        case,
        false,
        Faults {
            stall_ms: 3_000,
            ..Faults::default()
        },
        |f| f.stale_after_ms = 300,
    );
    lb.run_until("stale, reconnect and data again", LIMIT, |l| {
        l.tel.feed.reconnects.get() >= 1 && l.tel.feed.stale.get() >= 1 && l.market_ticks() >= 300
    });
    assert_eq!(lb.tel.feed.stale.get(), 1, "the stall happens once");
    assert_eq!(lb.status(feed_status::STALE), N_INSTRUMENTS);
    let stale_at = lb
        .ticks
        .iter()
        .position(|t| t.kind() == Some(TickKind::FeedStatus) && t.id == feed_status::STALE)
        .unwrap();
    assert!(
        lb.ticks[stale_at..]
            .iter()
            .any(|t| t.kind() == Some(TickKind::Trade)),
        "data resumed on the new connection"
    );
    assert_eq!(lb.subscribed_connections(), vec![1, 2], "resubscribed");
    assert_eq!(lb.sim.stats().stalls, 1);
    lb.assert_accounting();
}

#[test]
fn binance_stall_longer_than_watchdog_forces_reconnect() {
    stall_longer_than_watchdog_forces_reconnect(&BINANCE);
}

/// How a venue's adapter reports an injected gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapStyle {
    /// Trade ids per instrument (Binance): one gap tick per gap, on the
    /// trade's instrument, right before the trade that revealed it.
    TradeIds,
    /// A connection-wide sequence (Coinbase `sequence_num`): one gap (one
    /// counter increment) reported as a gap tick on every instrument.
    ConnectionSequence,
}

/// Scenario: a skipped message is reported as gap ticks + the gap counter.
pub fn gap_injected_is_reported(case: &VenueCase, style: GapStyle) {
    let mut lb = loopback(
        case,
        false,
        Faults {
            gap_every: 40,
            ..Faults::default()
        },
        |_| {},
    );
    lb.run_until("5 gaps", LIMIT, |l| l.tel.feed.gaps.get() >= 5);
    let gaps: Vec<&Tick> = lb
        .ticks
        .iter()
        .filter(|t| t.kind() == Some(TickKind::Gap))
        .collect();
    let per_gap = match style {
        GapStyle::TradeIds => 1,
        GapStyle::ConnectionSequence => N_INSTRUMENTS as u64,
    };
    assert_eq!(gaps.len() as u64, per_gap * lb.tel.feed.gaps.get());
    for g in &gaps {
        assert_eq!(g.size, 1, "one message skipped: {g:?}");
        assert_eq!(g.price, g.id as i64 + 1, "received = expected + 1");
    }
    // Every reported gap was injected (the last injected one may not have
    // been noticed yet).
    assert!(lb.sim.stats().gaps >= lb.tel.feed.gaps.get());
    // Data follows the gap ticks that announce it.
    let i = lb
        .ticks
        .iter()
        .position(|t| t.kind() == Some(TickKind::Gap))
        .unwrap();
    let next = &lb.ticks[i + per_gap as usize];
    assert_ne!(next.kind(), Some(TickKind::Gap));
    if style == GapStyle::TradeIds {
        assert_eq!(next.kind(), Some(TickKind::Trade));
        assert_eq!(next.id as i64, lb.ticks[i].price);
    }
    assert_eq!(lb.tel.feed.reconnects.get(), 0);
    lb.assert_accounting();
}

#[test]
fn binance_gap_injected_is_reported() {
    gap_injected_is_reported(&BINANCE, GapStyle::TradeIds);
}

/// Scenario (any venue): see [`binance_garbage_frames_are_counted_and_feed_continues`].
pub fn garbage_frames_are_counted_and_feed_continues(case: &VenueCase) {
    let mut lb = loopback(
        case,
        false,
        Faults {
            garbage_every: 100,
            ..Faults::default()
        },
        |_| {},
    );
    lb.run_until("5 garbage frames and data after them", LIMIT, |l| {
        l.tel.feed.decode_errors.get() >= 5 && l.market_ticks() >= 700
    });
    let c = &lb.tel.feed;
    let garbage = c.decode_errors.get();
    assert!(garbage <= lb.sim.stats().garbage);
    // Roughly one garbage frame per 100 data frames: never more.
    assert!(
        garbage <= c.data_frames.get() / 100 + 1,
        "{}",
        lb.describe()
    );
    assert_eq!(
        c.reconnects.get(),
        0,
        "garbage does not drop the connection"
    );
    assert_eq!(c.decimal_errors.get(), 0);
    lb.assert_accounting();
}

#[test]
fn binance_garbage_frames_are_counted_and_feed_continues() {
    garbage_frames_are_counted_and_feed_continues(&BINANCE);
}

#[test]
fn binance_prebuilt_pool_laps_keep_ids_and_times_increasing() {
    let mut lb = loopback_with(
        &BINANCE,
        false,
        Faults::default(),
        |sc| {
            sc.pace = Pace::Max;
            sc.pool = 300;
        },
        |_| {},
    );
    lb.run_until("several laps of the pool", LIMIT, |l| {
        l.market_ticks() >= 3_000
    });
    assert_eq!(
        lb.tel.feed.gaps.get(),
        0,
        "ids continue across laps: {}",
        lb.describe()
    );
    assert_eq!(lb.tel.feed.decode_errors.get(), 0);
    // Per instrument, trade ids strictly increase and event times never go back.
    for inst in 0..N_INSTRUMENTS as u32 {
        let trades: Vec<&Tick> = lb
            .ticks
            .iter()
            .filter(|t| t.kind() == Some(TickKind::Trade) && t.instrument.0 == inst)
            .collect();
        assert!(trades.len() > 100);
        for w in trades.windows(2) {
            assert_eq!(w[1].id, w[0].id + 1, "{:?}", w);
            assert!(w[1].ts_event_ns >= w[0].ts_event_ns);
        }
    }
    lb.assert_accounting();
}

// ---- WebSocket client details, against a minimal scripted server ----

use tickwire::feed::ws::{WsConnSpec, WsSource};
use tickwire::feed::{FrameSource, SourceEvent, SourceEventKind, SourcePoll};

/// A one-thread blocking WebSocket server: per connection, runs `script`
/// (which may send and read); records every text message received.
struct ScriptServer {
    addr: std::net::SocketAddr,
    got: Arc<std::sync::Mutex<Vec<(usize, String)>>>,
    _t: std::thread::JoinHandle<()>,
}

fn script_server(
    conns: usize,
    script: impl Fn(usize, &mut tungstenite::WebSocket<std::net::TcpStream>, &dyn Fn(usize, String))
    + Send
    + 'static,
) -> ScriptServer {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let t = std::thread::spawn(move || {
        for n in 0..conns {
            let Ok((s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let Ok(mut ws) = tungstenite::accept(s) else {
                continue;
            };
            let rec = |c: usize, m: String| g.lock().unwrap().push((c, m));
            script(n, &mut ws, &rec);
        }
    });
    ScriptServer { addr, got, _t: t }
}

/// Polls `src` until `done(frames, events)`; returns them.
fn drive(
    src: &mut WsSource,
    what: &str,
    mut done: impl FnMut(&[String], &[SourceEvent]) -> bool,
) -> (Vec<String>, Vec<SourceEvent>) {
    let clock = Clock::new();
    let (mut frames, mut evs) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut buf = Vec::new();
    while !done(&frames, &evs) {
        assert!(
            start.elapsed() < LIMIT,
            "{what}: frames {frames:?} events {evs:?}"
        );
        while let Some(e) = src.next_event() {
            evs.push(e);
        }
        buf.clear();
        match src.poll_frame(&mut buf, &clock) {
            SourcePoll::Frame { recv_ns } => {
                assert!(recv_ns > 0);
                frames.push(String::from_utf8(buf.clone()).unwrap());
            }
            SourcePoll::Idle => std::thread::sleep(Duration::from_micros(300)),
            SourcePoll::Done => panic!("never done"),
        }
    }
    while let Some(e) = src.next_event() {
        evs.push(e);
    }
    (frames, evs)
}

fn spec(url: &str) -> WsConnSpec {
    let mut s = WsConnSpec::new("t", 0, url, None).unwrap();
    s.backoff_initial = Duration::from_millis(5);
    s.backoff_max = Duration::from_millis(20);
    s
}

#[test]
fn ws_ping_gets_a_pong_and_localhost_resolves() {
    let srv = script_server(1, |_, ws, rec| {
        ws.send(tungstenite::Message::Ping(b"are you there".to_vec().into()))
            .unwrap();
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Pong(p)) => {
                    rec(0, format!("pong:{}", String::from_utf8_lossy(&p)));
                    break;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        ws.send(tungstenite::Message::text("after pong")).unwrap();
        let _ = ws.read();
    });
    // `localhost` goes through the resolver thread (and may try ::1 first).
    let url = format!("ws://localhost:{}/", srv.addr.port());
    let mut src = WsSource::new(vec![spec(&url)], Clock::new(), 1).unwrap();
    let (frames, evs) = drive(&mut src, "text after the pong", |f, _| !f.is_empty());
    assert_eq!(frames, vec!["after pong"]);
    assert_eq!(evs[0].kind, SourceEventKind::Connected);
    assert_eq!(
        *srv.got.lock().unwrap(),
        vec![(0, "pong:are you there".to_string())]
    );
    assert_eq!(src.stats().pings, 1);
}

#[test]
fn ws_keepalive_sent_on_interval_and_outgoing_messages_delivered() {
    let srv = script_server(1, |_, ws, rec| {
        let mut n = 0;
        while let Ok(m) = ws.read() {
            if let tungstenite::Message::Text(t) = m {
                rec(0, t.to_string());
                n += 1;
                if n == 4 {
                    ws.send(tungstenite::Message::text("done")).unwrap();
                }
            }
        }
    });
    let mut s = spec(&format!("ws://127.0.0.1:{}/", srv.addr.port()));
    s.keepalive = Some((Duration::from_millis(100), r#"{"op":"ping"}"#.to_string()));
    let mut src = WsSource::new(vec![s], Clock::new(), 1).unwrap();
    drive(&mut src, "connected", |_, e| !e.is_empty());
    src.send(0, &[r#"{"op":"subscribe"}"#.to_string()]);
    src.send(9, &["no such stream".to_string()]);
    let (frames, _) = drive(&mut src, "server saw 4 messages", |f, _| !f.is_empty());
    assert_eq!(frames, vec!["done"]);
    let got: Vec<String> = srv
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(got[0], r#"{"op":"subscribe"}"#);
    assert!(got[1..].iter().all(|m| m == r#"{"op":"ping"}"#), "{got:?}");
}

#[test]
fn ws_rotates_connections_at_max_age() {
    let srv = script_server(3, |n, ws, _| {
        ws.send(tungstenite::Message::text(format!("conn {n}")))
            .unwrap();
        // Hold the connection until the client closes it.
        while ws.read().is_ok() {}
    });
    let mut s = spec(&format!("ws://127.0.0.1:{}/", srv.addr.port()));
    s.max_age = Duration::from_millis(200);
    let mut src = WsSource::new(vec![s], Clock::new(), 1).unwrap();
    let (frames, evs) = drive(&mut src, "three connections", |f, _| f.len() == 3);
    assert_eq!(frames, vec!["conn 0", "conn 1", "conn 2"]);
    let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds[..5],
        [
            SourceEventKind::Connected,
            SourceEventKind::Disconnected,
            SourceEventKind::Connected,
            SourceEventKind::Disconnected,
            SourceEventKind::Connected
        ]
    );
    assert_eq!(src.stats().failures, 0, "rotation is not a failure");
}

#[test]
fn ws_oversized_frame_closes_the_connection() {
    let srv = script_server(2, |n, ws, _| {
        if n == 0 {
            ws.send(tungstenite::Message::text("x".repeat(5_000)))
                .unwrap();
        } else {
            ws.send(tungstenite::Message::text("small")).unwrap();
        }
        while ws.read().is_ok() {}
    });
    let mut s = spec(&format!("ws://127.0.0.1:{}/", srv.addr.port()));
    s.max_frame_bytes = 4_096;
    let mut src = WsSource::new(vec![s], Clock::new(), 1).unwrap();
    let (frames, evs) = drive(
        &mut src,
        "the small frame on the next connection",
        |f, _| !f.is_empty(),
    );
    assert_eq!(frames, vec!["small"], "the 5,000-byte frame was refused");
    assert!(evs.iter().any(|e| e.kind == SourceEventKind::Disconnected));
    assert_eq!(src.stats().failures, 1);
}

#[test]
fn mixed_feeds_sim_ws_and_feedsim_share_one_feed_thread() {
    // Feed 0: a feedsim started by the test, reached over ws:// (BINANCE
    // venue); feed 1: the socket-free simulator (SIM venue);
    // feed 2: an in-process feedsim:// (BINANCE2 venue). The WebSocket
    // feeds are streams 0 and 2: subscribes must reach the right server.
    let sim = FeedSim::start({
        let mut sc = FeedSimConfig::new(Venue::Binance);
        sc.symbols.truncate(1);
        sc.pace = Pace::Rate(2_000.0);
        sc
    })
    .unwrap();
    let inst = |s: &str, pp: u8, sp: u8| InstrumentConfig {
        symbol: s.into(),
        price_precision: pp,
        size_precision: sp,
        sector: None,
        sim_price: Some("100.00".into()),
    };
    let mut cfg = EngineConfig {
        instruments: vec![
            inst("BINANCE:BTCUSDT", 2, 5),
            inst("SIM:ETHUSDT", 2, 4),
            inst("BINANCE2:BTCUSDT", 2, 5),
        ],
        ..EngineConfig::default()
    };
    let base = cfg.feeds[0].clone();
    cfg.feeds = vec![
        FeedConfig {
            name: "ws".into(),
            venue: "BINANCE".into(),
            url: sim.url(),
            ..base.clone()
        },
        FeedConfig {
            name: "local".into(),
            venue: "SIM".into(),
            url: "sim://".into(),
            ..base.clone()
        },
        FeedConfig {
            name: "inproc".into(),
            venue: "BINANCE2".into(),
            url: "feedsim://127.0.0.1:0".into(),
            ..base
        },
    ];
    for f in &mut cfg.feeds {
        f.sim.rate = 2_000.0;
    }
    cfg.validate().unwrap();
    let reg = Arc::new(cfg.registry().unwrap());
    let clock = Clock::new();
    let (source, streams) = build_feed(&cfg, &reg, clock, &FeedSecrets::new()).unwrap();
    let mut stage = FeedStage::with_streams(source, streams, clock);
    let tel = Telemetry::new(reg.len());
    let mut rec = StageRecorder::new(tel.decode.clone());
    let mut per_inst = [0usize; 3];
    let mut status = Vec::new();
    let start = Instant::now();
    while per_inst.iter().any(|n| *n < 100) {
        assert!(
            start.elapsed() < LIMIT,
            "every feed delivers: {per_inst:?}; subscribes {:?}",
            sim.received_subscribes()
        );
        match stage.step(&tel.feed, &mut rec) {
            FeedStep::Ticks(_) => {
                for t in stage.ticks() {
                    match t.kind() {
                        Some(TickKind::Trade | TickKind::Quote) => {
                            per_inst[t.instrument.0 as usize] += 1
                        }
                        Some(TickKind::FeedStatus) => status.push((t.instrument.0, t.id)),
                        _ => {}
                    }
                }
            }
            FeedStep::Idle => std::thread::sleep(Duration::from_micros(200)),
            FeedStep::Done => panic!("WebSocket feeds never end"),
        }
    }
    // The stand-alone server got exactly the BINANCE feed's subscribe.
    assert_eq!(
        sim.received_subscribes(),
        vec![r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@bookTicker"],"id":1}"#]
    );
    // CONNECTED for the two WebSocket feeds' instruments (0 and 2), none for sim://.
    status.sort();
    assert_eq!(
        status,
        vec![(0, feed_status::CONNECTED), (2, feed_status::CONNECTED)]
    );
    assert_eq!(tel.feed.decode_errors.get(), 0);
}

// ---- feedsim's other venues, with a plain blocking client ----

fn client(
    sim: &FeedSim,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let (ws, _) = tungstenite::connect(sim.url()).expect("connect to feedsim");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

fn next_json(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
) -> serde_json::Value {
    loop {
        if let tungstenite::Message::Text(t) = ws.read().expect("a message") {
            return serde_json::from_str(t.as_str()).expect("JSON");
        }
    }
}

#[test]
fn feedsim_polygon_auth_then_subscribe_then_data() {
    let mut sc = FeedSimConfig::new(Venue::Polygon);
    sc.api_key = Some("k123".into());
    let sim = FeedSim::start(sc).unwrap();
    let mut ws = client(&sim);
    assert_eq!(next_json(&mut ws)[0]["status"], "connected");
    ws.send(tungstenite::Message::text(
        r#"{"action":"subscribe","params":"T.AAPL"}"#,
    ))
    .unwrap();
    assert_eq!(next_json(&mut ws)[0]["message"], "not authorized");
    ws.send(tungstenite::Message::text(
        r#"{"action":"auth","params":"k123"}"#,
    ))
    .unwrap();
    assert_eq!(next_json(&mut ws)[0]["status"], "auth_success");
    ws.send(tungstenite::Message::text(
        r#"{"action":"subscribe","params":"T.AAPL,Q.MSFT"}"#,
    ))
    .unwrap();
    let ack = next_json(&mut ws);
    assert_eq!(ack[0]["message"], "subscribed to: T.AAPL");
    assert_eq!(ack[1]["message"], "subscribed to: Q.MSFT");
    let (mut t, mut q) = (0, 0);
    while t < 5 || q < 5 {
        let v = next_json(&mut ws);
        match (v[0]["ev"].as_str().unwrap(), v[0]["sym"].as_str().unwrap()) {
            ("T", "AAPL") => {
                t += 1;
                assert!(v[0]["p"].as_f64().unwrap() > 0.0 && v[0]["t"].as_i64().unwrap() > 0);
            }
            ("Q", "MSFT") => {
                q += 1;
                assert!(v[0]["ap"].as_f64().unwrap() > v[0]["bp"].as_f64().unwrap());
            }
            other => panic!("not subscribed: {other:?}"),
        }
    }
    // Auth and the accepted subscribe count; the refused one does not.
    assert_eq!(
        sim.received_subscribes(),
        vec![
            r#"{"action":"auth","params":"k123"}"#,
            r#"{"action":"subscribe","params":"T.AAPL,Q.MSFT"}"#
        ]
    );
    assert_eq!(sim.received_messages().len(), 3);
}

#[test]
fn feedsim_bybit_and_coinbase_honour_subscribes() {
    let sim = FeedSim::start(FeedSimConfig::new(Venue::Bybit)).unwrap();
    let mut ws = client(&sim);
    ws.send(tungstenite::Message::text(
        r#"{"op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.1.ETHUSDT"],"req_id":"r1"}"#,
    ))
    .unwrap();
    let ack = next_json(&mut ws);
    assert_eq!(
        (ack["success"].as_bool(), ack["req_id"].as_str()),
        (Some(true), Some("r1"))
    );
    for _ in 0..20 {
        let v = next_json(&mut ws);
        let topic = v["topic"].as_str().unwrap();
        assert!(
            topic == "publicTrade.BTCUSDT" || topic == "orderbook.1.ETHUSDT",
            "{v}"
        );
        if topic.starts_with("publicTrade") {
            assert!(matches!(v["data"][0]["S"].as_str(), Some("Buy" | "Sell")));
        }
    }
    drop(ws);
    sim.stop();

    let sim = FeedSim::start(FeedSimConfig::new(Venue::Coinbase)).unwrap();
    let mut ws = client(&sim);
    ws.send(tungstenite::Message::text(
        r#"{"type":"subscribe","product_ids":["ETH-USD"],"channel":"market_trades"}"#,
    ))
    .unwrap();
    let subs = next_json(&mut ws);
    assert_eq!(subs["channel"], "subscriptions");
    let mut last_seq = subs["sequence_num"].as_u64().unwrap();
    for _ in 0..10 {
        let v = next_json(&mut ws);
        assert_eq!(v["channel"], "market_trades");
        assert_eq!(v["events"][0]["trades"][0]["product_id"], "ETH-USD");
        let seq = v["sequence_num"].as_u64().unwrap();
        assert_eq!(seq, last_seq + 1, "sequence_num has no gaps");
        last_seq = seq;
    }
}

// ---- the other venues through their real adapters ----

#[test]
fn bybit_spot_ws_and_wss_ticks_arrive_decoded() {
    ticks_arrive_decoded(&BYBIT_SPOT, false);
    ticks_arrive_decoded(&BYBIT_SPOT, true);
}

#[test]
fn bybit_linear_ws_ticks_arrive_decoded() {
    ticks_arrive_decoded(&BYBIT_LINEAR, false);
}

#[test]
fn coinbase_ws_and_wss_ticks_arrive_decoded() {
    ticks_arrive_decoded(&COINBASE, false);
    ticks_arrive_decoded(&COINBASE, true);
}

#[test]
fn polygon_ws_and_wss_auth_then_ticks_arrive_decoded() {
    ticks_arrive_decoded(&POLYGON, false);
    ticks_arrive_decoded(&POLYGON, true);
}

#[test]
fn other_venues_reconnect_and_resubscribe_after_drops() {
    for case in [&BYBIT_SPOT, &COINBASE, &POLYGON] {
        reconnects_after(
            case,
            false,
            Faults {
                drop_every: 400,
                ..Faults::default()
            },
            case.venue.as_str(),
        );
    }
}

#[test]
fn other_venues_survive_half_frames_garbage_and_stalls() {
    for case in [&BYBIT_SPOT, &COINBASE, &POLYGON] {
        reconnects_after(
            case,
            true,
            Faults {
                close_mid_frame_after: 300,
                ..Faults::default()
            },
            case.venue.as_str(),
        );
        garbage_frames_are_counted_and_feed_continues(case);
        stall_longer_than_watchdog_forces_reconnect(case);
    }
}

#[test]
fn coinbase_sequence_gap_injected_is_reported() {
    gap_injected_is_reported(&COINBASE, GapStyle::ConnectionSequence);
}
