//! Engine configuration: one TOML file, validated once at start.
//!
//! Every section and key is documented in `config/default.toml`. Unknown
//! keys are errors (a typo must not silently fall back to a default); each
//! error names the file and the key. Stages take only their own section.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decimal::parse_scaled;
use crate::event::MAX_MOVERS;
pub use crate::event::Severity;
use crate::instruments::InstrumentRegistry;
use crate::kernel::{
    AnomalyRules, IndexSpec, IndicatorSpec, KernelSetup, OverviewSetup, RuleSetup,
};

/// A configuration problem, with the file and key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read config file {path}: {source} (pass --config PATH, or run from the repository root where config/default.toml lives)"
    )]
    Read {
        /// The path tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("config key '{key}': {message}")]
    Invalid {
        /// Dotted key path, e.g. `pipeline.ring_capacity`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole engine configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Process-wide settings.
    pub engine: EngineSection,
    /// Instruments to intern, in id order.
    pub instruments: Vec<InstrumentConfig>,
    /// The market-data feeds (`[[feeds]]`), all driven by the feed thread.
    pub feeds: Vec<FeedConfig>,
    /// Rings, threads, pinning, wait strategies.
    pub pipeline: PipelineConfig,
    /// Indicator and bar kernel.
    pub kernel: KernelConfig,
    /// Statistics and latency reporting.
    pub telemetry: TelemetryConfig,
    /// The tick journal.
    pub journal: JournalSection,
    /// Deliberate faults for validating the harness (off by default).
    pub faults: FaultsConfig,
    /// Signal stage: strategies, threshold, portfolio bookkeeping.
    pub signal: SignalConfig,
    /// Pre-trade risk limits.
    pub risk: RiskConfig,
    /// Paper broker: cash, fees, slippage, sizing.
    pub broker: BrokerConfig,
    /// Market-hours calendars (which venues trade when).
    pub calendars: Vec<CalendarConfig>,
    /// WebSocket/HTTP subscriber server on the fan-out thread.
    pub server: ServerConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            engine: EngineSection::default(),
            instruments: vec![
                InstrumentConfig::sim("SIM:BTCUSDT", 2, 5, "61837.63", "crypto-major"),
                InstrumentConfig::sim("SIM:ETHUSDT", 2, 4, "2650.17", "crypto-major"),
            ],
            feeds: vec![FeedConfig::default()],
            pipeline: PipelineConfig::default(),
            kernel: KernelConfig::default(),
            telemetry: TelemetryConfig::default(),
            journal: JournalSection::default(),
            faults: FaultsConfig::default(),
            signal: SignalConfig::default(),
            risk: RiskConfig::default(),
            broker: BrokerConfig::default(),
            calendars: CalendarConfig::defaults(),
            server: ServerConfig::default(),
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Default log filter (`error`..`trace`, or a tracing env-filter
    /// directive). `RUST_LOG` and `--log-level` override it.
    pub log_level: String,
    /// Stop after this many seconds; 0 runs until SIGINT/SIGTERM.
    pub duration_secs: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            duration_secs: 0,
        }
    }
}

/// `[[instruments]]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// `VENUE:SYMBOL`.
    pub symbol: String,
    /// Digits after the point for prices.
    pub price_precision: u8,
    /// Digits after the point for sizes.
    pub size_precision: u8,
    /// Sector for market overview.
    #[serde(default)]
    pub sector: Option<String>,
    /// Starting price for the built-in simulator (decimal string).
    #[serde(default)]
    pub sim_price: Option<String>,
}

impl InstrumentConfig {
    fn sim(symbol: &str, pp: u8, sp: u8, price: &str, sector: &str) -> Self {
        Self {
            symbol: symbol.into(),
            price_precision: pp,
            size_precision: sp,
            sector: Some(sector.into()),
            sim_price: Some(price.into()),
        }
    }
}

/// Which decoder (and control protocol) a feed uses.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    /// Binance spot combined streams.
    Binance,
    /// Binance USD-M futures streams.
    BinanceUsdm,
    /// Bybit v5 public spot.
    BybitSpot,
    /// Bybit v5 public linear (USDT perpetuals).
    BybitLinear,
    /// Coinbase Advanced Trade market data.
    Coinbase,
    /// Polygon-style stocks WebSocket (auth, subscribe, T/Q events).
    Polygon,
    /// The built-in simulator's format (Binance combined streams).
    Sim,
}

impl AdapterKind {
    /// The config spelling (`binance_usdm`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binance => "binance",
            Self::BinanceUsdm => "binance_usdm",
            Self::BybitSpot => "bybit_spot",
            Self::BybitLinear => "bybit_linear",
            Self::Coinbase => "coinbase",
            Self::Polygon => "polygon",
            Self::Sim => "sim",
        }
    }

    /// Whether frames are in Binance combined-stream format (what the
    /// built-in `sim://` simulator produces).
    pub fn is_binance_format(self) -> bool {
        matches!(self, Self::Binance | Self::BinanceUsdm | Self::Sim)
    }
}

/// Where a feed's frames come from, parsed from its `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEndpoint {
    /// `sim://`: the built-in simulator, in-process, no sockets.
    Sim,
    /// `ws://` or `wss://`: a WebSocket server (a venue or a feedsim).
    WebSocket {
        /// The URL as configured.
        url: String,
        /// `wss://`.
        tls: bool,
    },
    /// `feedsim://IP:PORT` (`feedsims://` for TLS): start the local
    /// exchange simulator in-process on that address (port 0 = any free
    /// port) and connect to it over `ws://` (`wss://`, trusting its
    /// self-signed certificate).
    FeedSim {
        /// Listen address.
        listen: std::net::SocketAddr,
        /// Serve over TLS.
        tls: bool,
    },
}

impl FeedEndpoint {
    /// Parses a feed URL.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(url: &str) -> Result<Self, String> {
        let u = url.trim();
        if u == "sim://" || u == "sim" {
            return Ok(Self::Sim);
        }
        let parsed = url::Url::parse(u).map_err(|e| {
            format!("'{u}' is not a URL ({e}); use ws://HOST:PORT/PATH, wss://..., feedsim://127.0.0.1:0 or sim://")
        })?;
        match parsed.scheme() {
            s @ ("ws" | "wss") => {
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(format!("'{u}' has no host"));
                }
                Ok(Self::WebSocket {
                    url: u.to_string(),
                    tls: s == "wss",
                })
            }
            s @ ("feedsim" | "feedsims") => {
                let host = parsed.host_str().unwrap_or("127.0.0.1");
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let ip: std::net::IpAddr = host.parse().map_err(|_| {
                    format!(
                        "'{u}': the feedsim listen host must be an IP address such as 127.0.0.1"
                    )
                })?;
                Ok(Self::FeedSim {
                    listen: std::net::SocketAddr::new(ip, parsed.port().unwrap_or(0)),
                    tls: s == "feedsims",
                })
            }
            other => Err(format!(
                "'{u}': unsupported scheme '{other}'; use ws://, wss://, feedsim://, feedsims:// or sim://"
            )),
        }
    }
}

/// One `[[feeds]]` entry: a venue connection (or the simulator) and how it
/// is kept alive.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Unique feed name (logs, metrics).
    pub name: String,
    /// Decoder / control protocol.
    pub adapter: AdapterKind,
    /// Registry venue whose instruments this feed serves (instrument names
    /// are `VENUE:SYMBOL`).
    pub venue: String,
    /// `ws://`, `wss://`, `feedsim://IP:PORT`, `feedsims://IP:PORT` or
    /// `sim://` (see [`FeedEndpoint`]).
    pub url: String,
    /// Venue symbols to subscribe (a subset of the venue's instruments);
    /// `None` = every instrument of the venue.
    pub symbols: Option<Vec<String>>,
    /// Venue channel names; empty = the adapter's defaults.
    pub channels: Vec<String>,
    /// Name of the environment variable holding the API key (read by the
    /// binary at start; the key never appears in config or logs).
    pub api_key_env: Option<String>,
    /// Extra CA certificate(s), PEM, trusted in addition to the webpki
    /// roots (tests, private venues, feedsim over TLS).
    pub ca_file: Option<PathBuf>,
    /// Largest WebSocket frame and message accepted, bytes (Coinbase's L2
    /// snapshot is ~5 MB).
    pub max_frame_bytes: usize,
    /// Stale-feed watchdog: no frame for this long forces a reconnect;
    /// 0 = off.
    pub stale_after_ms: u64,
    /// Reconnect backoff ceiling of the first attempt, ms (doubles per
    /// failed attempt, full jitter).
    pub backoff_initial_ms: u64,
    /// Reconnect backoff cap, ms.
    pub backoff_max_ms: u64,
    /// Consecutive failed attempts that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker waits before one trial attempt, ms.
    pub breaker_open_ms: u64,
    /// Reconnect proactively after this many seconds (Binance drops
    /// connections at 24 h); 0 = never.
    pub max_connection_age_secs: u64,
    /// TCP connect + TLS + WebSocket handshake must finish within this, ms.
    pub connect_timeout_ms: u64,
    /// Simulator settings (`sim://` and `feedsim://` URLs).
    pub sim: SimConfig,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            name: "sim".into(),
            adapter: AdapterKind::Binance,
            venue: "SIM".into(),
            url: "feedsim://127.0.0.1:0".into(),
            symbols: None,
            channels: Vec::new(),
            api_key_env: None,
            ca_file: None,
            max_frame_bytes: 16 << 20,
            stale_after_ms: 10_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            breaker_failures: 10,
            breaker_open_ms: 60_000,
            max_connection_age_secs: 86_100,
            connect_timeout_ms: 10_000,
            sim: SimConfig::default(),
        }
    }
}

impl FeedConfig {
    /// Checks this entry (`i` = its index, for key names) against the
    /// registry.
    ///
    /// # Errors
    /// The first invalid key.
    pub fn validate(&self, i: usize, reg: &InstrumentRegistry) -> Result<(), ConfigError> {
        let key = |k: &str| format!("feeds[{i}].{k}");
        if self.name.trim().is_empty() {
            return Err(invalid(key("name"), "give the feed a non-empty name"));
        }
        let venue = reg.venue_id(&self.venue);
        if reg.of_venue(&self.venue).next().is_none() {
            return Err(invalid(
                key("venue"),
                format!(
                    "no instrument uses venue '{}'; add [[instruments]] named {}:SYMBOL",
                    self.venue, self.venue
                ),
            ));
        }
        if let Some(syms) = &self.symbols {
            if syms.is_empty() {
                return Err(invalid(
                    key("symbols"),
                    "list at least one symbol, or remove the key to use every instrument of the venue",
                ));
            }
            for s in syms {
                let known = venue.and_then(|v| reg.lookup(v, s.as_bytes())).is_some();
                if !known {
                    return Err(invalid(
                        key("symbols"),
                        format!(
                            "'{s}' is not an instrument of venue '{}'; add [[instruments]] symbol = \"{}:{s}\"",
                            self.venue, self.venue
                        ),
                    ));
                }
            }
        }
        let ep = self.endpoint().map_err(|m| invalid(key("url"), m))?;
        if ep == FeedEndpoint::Sim && !self.adapter.is_binance_format() {
            return Err(invalid(
                key("url"),
                format!(
                    "sim:// produces Binance-format frames; adapter '{}' cannot decode them (use feedsim://127.0.0.1:0, which speaks every venue's format)",
                    self.adapter.as_str()
                ),
            ));
        }
        if let Some(v) = &self.api_key_env
            && (v.is_empty() || v.contains('='))
        {
            return Err(invalid(
                key("api_key_env"),
                "must be the NAME of an environment variable (the key itself never goes in config)",
            ));
        }
        if !(1024..=(1 << 30)).contains(&self.max_frame_bytes) {
            return Err(invalid(
                key("max_frame_bytes"),
                "must be between 1024 and 1073741824",
            ));
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(invalid(
                key("backoff_max_ms"),
                "need 1 ≤ backoff_initial_ms ≤ backoff_max_ms",
            ));
        }
        if self.breaker_failures == 0 {
            return Err(invalid(key("breaker_failures"), "must be ≥ 1"));
        }
        if self.connect_timeout_ms == 0 {
            return Err(invalid(key("connect_timeout_ms"), "must be ≥ 1"));
        }
        let sim = &self.sim;
        if !(sim.rate >= 0.0 && sim.rate.is_finite()) {
            return Err(invalid(
                key("sim.rate"),
                "must be ≥ 0 (0 = as fast as possible)",
            ));
        }
        if !(0.0..=1.0).contains(&sim.trade_ratio) {
            return Err(invalid(key("sim.trade_ratio"), "must be between 0 and 1"));
        }
        if sim.start_ns < 0 {
            return Err(invalid(key("sim.start_ns"), "must be ≥ 0 (0 = now)"));
        }
        Ok(())
    }

    /// The venue symbols this feed serves: `symbols` if set, else every
    /// instrument of the venue, in registry order.
    pub fn resolved_symbols(&self, reg: &InstrumentRegistry) -> Vec<String> {
        match &self.symbols {
            Some(s) => s.iter().map(|x| x.to_ascii_uppercase()).collect(),
            None => reg
                .of_venue(&self.venue)
                .map(|i| i.symbol.clone())
                .collect(),
        }
    }

    /// The parsed `url`.
    ///
    /// # Errors
    /// An unsupported or malformed URL.
    pub fn endpoint(&self) -> Result<FeedEndpoint, String> {
        FeedEndpoint::parse(&self.url)
    }
}

/// `[feeds.sim]`: the deterministic simulated market.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// RNG seed; the same seed gives the same message sequence.
    pub seed: u64,
    /// Messages per second across all symbols (sets the event-time spacing);
    /// 0 = as fast as possible with 1 µs event-time spacing.
    pub rate: f64,
    /// `true`: release messages in real time at `rate`; `false`: emit as
    /// fast as possible while event times still follow `rate` (replays of
    /// simulated hours in seconds, deterministic tests).
    pub paced: bool,
    /// Stop after this many messages; 0 = unlimited.
    pub messages: u64,
    /// Fraction of messages that are trades (the rest are bookTicker quotes).
    pub trade_ratio: f64,
    /// Event time of the first message, ns since the Unix epoch; 0 = now.
    pub start_ns: i64,
    /// Paced mode only: stamp each frame's receive time with its *scheduled*
    /// release time instead of the time it was read. Latency then counts
    /// from when the message should have arrived, so a stalled feed thread
    /// shows up in the figures (no coordinated omission). Used by
    /// `tickwire bench --mode latency`.
    pub stamp_scheduled: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            rate: 20_000.0,
            paced: true,
            messages: 0,
            trade_ratio: 0.3,
            start_ns: 0,
            stamp_scheduled: false,
        }
    }
}

/// What a producer does when its output ring is full.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FullPolicy {
    /// Wait (with the thread's wait strategy) until there is room; counted
    /// as a ring-full event. Nothing is lost.
    #[default]
    Backpressure,
    /// Drop the item and count it.
    Drop,
}

/// How an idle thread waits for work.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// Busy-spin: lowest latency, burns a core.
    Spin,
    /// `thread::yield_now` between polls.
    Yield,
    /// Spin, then yield, then park with a short timeout.
    #[default]
    Backoff,
}

/// `[pipeline.threads.*]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ThreadConfig {
    /// Core to pin to; absent = not pinned. A core that does not exist is
    /// warned about and the thread runs unpinned.
    pub core: Option<usize>,
    /// Wait strategy.
    pub wait: WaitKind,
}

impl Default for ThreadConfig {
    fn default() -> Self {
        Self {
            core: None,
            wait: WaitKind::Backoff,
        }
    }
}

/// `[pipeline.threads]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ThreadsConfig {
    /// Feed thread (sources, decode).
    pub feed: ThreadConfig,
    /// Kernel thread (bars, indicators).
    pub kernel: ThreadConfig,
    /// Signal/risk thread.
    pub signal: ThreadConfig,
    /// Fan-out thread.
    pub fanout: ThreadConfig,
}

impl Default for ThreadsConfig {
    fn default() -> Self {
        let on = |core| ThreadConfig {
            core: Some(core),
            wait: WaitKind::Backoff,
        };
        Self {
            feed: on(0),
            kernel: on(1),
            signal: on(1),
            fanout: on(0),
        }
    }
}

/// `[pipeline]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Slots per SPSC ring (rounded up to a power of two ≥ 2).
    pub ring_capacity: usize,
    /// What a producer does on a full ring.
    pub full_policy: FullPolicy,
    /// Backoff: spins before yielding.
    pub backoff_spins: u32,
    /// Backoff: yields before parking.
    pub backoff_yields: u32,
    /// Backoff: park timeout in microseconds.
    pub backoff_park_us: u64,
    /// Per-thread pinning and wait strategy.
    pub threads: ThreadsConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            ring_capacity: 65_536,
            full_policy: FullPolicy::Backpressure,
            backoff_spins: 200,
            backoff_yields: 20,
            backoff_park_us: 50,
            threads: ThreadsConfig::default(),
        }
    }
}

/// `[kernel]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Bar windows, e.g. `["1m", "5m", "15m"]` (units s, m, h; at most 8).
    pub windows: Vec<String>,
    /// Grace after a window's end before a watermark or timer finalizes a
    /// bar that no later trade of its own instrument has closed, ms.
    pub bar_grace_ms: u64,
    /// Event time between provisional bar/indicator emissions per
    /// instrument and window, ms; 0 = never emit (still queryable).
    pub provisional_interval_ms: u64,
    /// Wall time between timer calls of an idle kernel thread (live feeds
    /// only), ms.
    pub timer_interval_ms: u64,
    /// Indicator set computed on every window's bar closes.
    pub indicators: IndicatorsConfig,
    /// Anomaly rules.
    pub anomalies: AnomaliesConfig,
    /// Market overview: movers and sectors.
    pub overview: OverviewConfig,
    /// Composite indices (`[[kernel.indices]]`).
    pub indices: Vec<IndexConfig>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            windows: vec!["1m".into(), "5m".into(), "15m".into()],
            bar_grace_ms: 2_000,
            provisional_interval_ms: 1_000,
            timer_interval_ms: 100,
            indicators: IndicatorsConfig::default(),
            anomalies: AnomaliesConfig::default(),
            overview: OverviewConfig::default(),
            indices: Vec::new(),
        }
    }
}

/// `[kernel.indicators]`: periods from config; JSON keys are named from them
/// (`sma_20`, `ema_12`, `rsi_14`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IndicatorsConfig {
    /// SMA periods.
    pub sma: Vec<usize>,
    /// EMA periods.
    pub ema: Vec<usize>,
    /// RSI periods.
    pub rsi: Vec<usize>,
    /// MACD.
    pub macd: MacdConfig,
    /// Bollinger Bands.
    pub bollinger: BollingerConfig,
    /// Rolling average volume over this many bars (`avg_volume_N`); 0 = off.
    pub avg_volume: usize,
    /// Session VWAP (`session_vwap`) in every snapshot.
    pub session_vwap: bool,
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        Self {
            sma: vec![20, 50, 200],
            ema: vec![12, 26],
            rsi: vec![14],
            macd: MacdConfig::default(),
            bollinger: BollingerConfig::default(),
            avg_volume: 20,
            session_vwap: true,
        }
    }
}

/// `[kernel.indicators.macd]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MacdConfig {
    /// Compute it (keys `macd`, `macd_signal`, `macd_hist`).
    pub enabled: bool,
    /// Fast EMA period.
    pub fast: usize,
    /// Slow EMA period.
    pub slow: usize,
    /// Signal EMA period.
    pub signal: usize,
}

impl Default for MacdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            fast: 12,
            slow: 26,
            signal: 9,
        }
    }
}

/// `[kernel.indicators.bollinger]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BollingerConfig {
    /// Compute them (keys `bb_upper`, `bb_middle`, `bb_lower`).
    pub enabled: bool,
    /// Period.
    pub period: usize,
    /// Band width in standard deviations (both bands).
    pub stddev: f64,
}

impl Default for BollingerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            period: 20,
            stddev: 2.0,
        }
    }
}

/// Default anomaly cooldown per (instrument, rule): 5 minutes.
pub const DEFAULT_COOLDOWN_MS: u64 = 300_000;

/// `[kernel.anomalies]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnomaliesConfig {
    /// Window whose bars the bar-based rules (price spike, volume spike,
    /// RSI) use; absent = the first configured window.
    pub window: Option<String>,
    /// Trade price vs the N-bar average close.
    pub price_spike: PriceSpikeConfig,
    /// Forming bar volume vs the N-bar average volume.
    pub volume_spike: VolumeSpikeConfig,
    /// RSI entering overbought/oversold.
    pub rsi_extreme: RsiExtremeConfig,
    /// Receive → kernel latency.
    pub latency: LatencyConfig,
    /// Sequence gaps reported by adapters.
    pub sequence_gap: FeedRuleConfig,
    /// Stale-feed reports from adapters.
    pub stale_feed: FeedRuleConfig,
    /// Crossed/locked books (adapter reports and crossed quotes).
    pub crossed_book: FeedRuleConfig,
}

impl Default for AnomaliesConfig {
    fn default() -> Self {
        Self {
            window: None,
            price_spike: PriceSpikeConfig::default(),
            volume_spike: VolumeSpikeConfig::default(),
            rsi_extreme: RsiExtremeConfig::default(),
            latency: LatencyConfig::default(),
            sequence_gap: FeedRuleConfig::default(),
            stale_feed: FeedRuleConfig::default(),
            crossed_book: FeedRuleConfig {
                severity: Severity::Critical,
                ..FeedRuleConfig::default()
            },
        }
    }
}

/// `[kernel.anomalies.price_spike]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PriceSpikeConfig {
    /// Rule on.
    pub enabled: bool,
    /// Fires when |price − avg| / avg exceeds this many percent.
    pub threshold_pct: f64,
    /// Bars in the average.
    pub period: usize,
    /// Severity.
    pub severity: Severity,
    /// Per-(instrument, rule) cooldown, ms of event time.
    pub cooldown_ms: u64,
}

impl Default for PriceSpikeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_pct: 5.0,
            period: 20,
            severity: Severity::Warning,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
        }
    }
}

/// `[kernel.anomalies.volume_spike]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeSpikeConfig {
    /// Rule on.
    pub enabled: bool,
    /// Fires when the forming bar's volume exceeds this multiple of the
    /// average.
    pub multiple: f64,
    /// Bars in the average.
    pub period: usize,
    /// Severity.
    pub severity: Severity,
    /// Per-(instrument, rule) cooldown, ms of event time.
    pub cooldown_ms: u64,
}

impl Default for VolumeSpikeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            multiple: 3.0,
            period: 20,
            severity: Severity::Warning,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
        }
    }
}

/// `[kernel.anomalies.rsi_extreme]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RsiExtremeConfig {
    /// Rule on.
    pub enabled: bool,
    /// Fires when RSI moves above this level.
    pub overbought: f64,
    /// Fires when RSI moves below this level.
    pub oversold: f64,
    /// RSI period.
    pub period: usize,
    /// Severity.
    pub severity: Severity,
    /// Per-(instrument, rule) cooldown, ms of event time.
    pub cooldown_ms: u64,
}

impl Default for RsiExtremeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            overbought: 70.0,
            oversold: 30.0,
            period: 14,
            severity: Severity::Info,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
        }
    }
}

/// `[kernel.anomalies.latency]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Rule on (only evaluated by the threaded pipeline, which knows "now").
    pub enabled: bool,
    /// Fires when receive → kernel latency exceeds this, ms.
    pub threshold_ms: u64,
    /// Severity.
    pub severity: Severity,
    /// Per-(instrument, rule) cooldown, ms of event time.
    pub cooldown_ms: u64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_ms: 100,
            severity: Severity::Warning,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
        }
    }
}

/// `[kernel.anomalies.sequence_gap]`, `.stale_feed`, `.crossed_book`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedRuleConfig {
    /// Rule on.
    pub enabled: bool,
    /// Severity.
    pub severity: Severity,
    /// Per-(instrument, rule) cooldown, ms of event time.
    pub cooldown_ms: u64,
}

impl Default for FeedRuleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
        }
    }
}

/// `[kernel.overview]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OverviewConfig {
    /// Entries per movers list (1..=8); 0 = no movers events.
    pub top_n: usize,
    /// Least event time between two evaluations of movers, sectors and
    /// indices, ms (rate limit).
    pub interval_ms: u64,
}

impl Default for OverviewConfig {
    fn default() -> Self {
        Self {
            top_n: 5,
            interval_ms: 1_000,
        }
    }
}

/// `[[kernel.indices]]`: a composite index of weighted constituents.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// Index name (JSON `index`).
    pub name: String,
    /// Constituents.
    pub constituents: Vec<ConstituentConfig>,
}

/// One index constituent.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConstituentConfig {
    /// `VENUE:SYMBOL`, listed in `[[instruments]]`.
    pub symbol: String,
    /// Weight.
    pub weight: f64,
    /// Base price (decimal string); absent = the first trade price seen.
    #[serde(default)]
    pub base: Option<String>,
}

/// `[telemetry]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Seconds between one-line stats logs; 0 disables them.
    pub stats_interval_secs: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            stats_interval_secs: 5,
        }
    }
}

/// When journaled data is forced to disk (like Kafka's flush settings).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum JournalDurability {
    /// The OS writes dirty pages back when it likes (a process crash loses
    /// nothing; a power loss may lose recent ticks).
    #[default]
    None,
    /// A background thread msyncs every `interval_ms`.
    IntervalMs,
    /// msync after every `every_n` ticks (on the feed thread).
    EveryN,
}

/// What the feed does when a journal append fails (disk full, I/O error).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum JournalOnError {
    /// Log, count, stop journaling, keep feeding the pipeline and serving
    /// subscribers.
    #[default]
    Continue,
    /// Log, count, stop reading feeds (nothing unjournaled enters the
    /// pipeline); subscribers keep being served what was already in flight.
    StopIngest,
}

/// `[journal]`: every tick is appended here before the kernel sees it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSection {
    /// Journal ticks at all.
    pub enabled: bool,
    /// Directory (created). `tickwire run --journal-dir` overrides it.
    pub dir: PathBuf,
    /// Segment file size, MiB (each segment is fully allocated on creation).
    pub segment_mb: u64,
    /// Pages prefaulted ahead of the writer, MiB (keeps page faults off the
    /// feed thread).
    pub prefault_mb: u64,
    /// Durability policy.
    pub durability: JournalDurability,
    /// For `interval_ms`: flush period.
    pub interval_ms: u64,
    /// For `every_n`: ticks between flushes.
    pub every_n: u64,
    /// Policy on append failure.
    pub on_error: JournalOnError,
    /// Also keep the event journal (audit trail of decisions and alerts).
    pub events_enabled: bool,
    /// Event journal directory. `tickwire run --journal-dir DIR` sets it to
    /// `DIR/events`.
    pub events_dir: PathBuf,
}

impl Default for JournalSection {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("data/journal"),
            segment_mb: 64,
            prefault_mb: 16,
            durability: JournalDurability::None,
            interval_ms: 100,
            every_n: 4096,
            on_error: JournalOnError::Continue,
            events_enabled: true,
            events_dir: PathBuf::from("data/events"),
        }
    }
}

/// `[server]`: the WebSocket + HTTP server on the fan-out thread (one port).
///
/// See `docs/PROTOCOL.md` for the protocol and every limit's effect.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Serve subscribers and HTTP at all.
    pub enabled: bool,
    /// Address to listen on (`IP:PORT`; port 0 = any free port). `run
    /// --listen` overrides it.
    pub listen: String,
    /// Name of the environment variable holding the bearer token; absent =
    /// no authentication. The token itself never appears in config or logs.
    pub token_env: Option<String>,
    /// Most WebSocket subscribers at once; more upgrades get HTTP 503.
    pub max_clients: usize,
    /// Most open TCP connections (subscribers + HTTP); more are closed at
    /// accept. Must be ≥ `max_clients`.
    pub max_connections: usize,
    /// Most (channel, symbol) subscriptions per client (`"*"` counts one per
    /// instrument).
    pub max_subscriptions: usize,
    /// Largest inbound WebSocket message or frame, bytes (larger: close 1009).
    pub max_message_bytes: usize,
    /// Largest HTTP request head (request line + headers), bytes (larger: 431).
    pub max_header_bytes: usize,
    /// Largest HTTP request body, bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Messages of lossless channels (trades, bars, anomalies, book, replies)
    /// queued per client before it is closed as a slow consumer (code 4008).
    pub max_queued_messages: usize,
    /// Bytes per client the WebSocket layer may hold unsent on top of the
    /// queue (kernel socket buffers come on top of that).
    pub max_write_buffer_bytes: usize,
    /// Close connections with no inbound traffic (requests, frames, pongs)
    /// for this long, seconds.
    pub idle_timeout_secs: u64,
    /// Send a WebSocket ping this often, seconds; a client that has not
    /// answered by the next ping is closed. 0 disables pings.
    pub ping_interval_secs: u64,
    /// After the server starts a close (slow consumer, timeouts, shutdown),
    /// how long it waits for the client to take the close frame, seconds.
    pub close_grace_secs: u64,
    /// Period of `stats` channel messages, milliseconds.
    pub stats_interval_ms: u64,
    /// Final bars kept per instrument and window for REST and snapshots.
    pub bar_history: usize,
    /// `/health` answers 503 when no market data reached the fan-out for
    /// this long, seconds.
    pub health_stale_secs: u64,
    /// Smallest gap between two passes that write queued messages to
    /// sockets, microseconds; 0 = adaptive only (a pass may start once the
    /// previous one's duration has passed again, so writing takes at most
    /// about half the fan-out thread). Raise it to trade latency for fewer
    /// system calls with many subscribers.
    pub flush_interval_us: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            token_env: None,
            max_clients: 2_000,
            max_connections: 2_200,
            max_subscriptions: 10_000,
            max_message_bytes: 65_536,
            max_header_bytes: 8_192,
            max_body_bytes: 65_536,
            max_queued_messages: 8_192,
            max_write_buffer_bytes: 1 << 20,
            idle_timeout_secs: 120,
            ping_interval_secs: 20,
            close_grace_secs: 5,
            stats_interval_ms: 1_000,
            bar_history: 1_000,
            health_stale_secs: 10,
            flush_interval_us: 0,
        }
    }
}

/// `[signal]`: the signal/risk/paper-trading stage (see `docs/SIGNALS.md`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SignalConfig {
    /// Signals weaker than this (strength in [0, 1]) are rejected with rule
    /// `threshold`; a strategy's own `threshold` overrides it.
    pub threshold: f64,
    /// Compute indicator values the strategies need from bar closes when
    /// the kernel does not supply them.
    pub local_indicators: bool,
    /// A signal against the open position also closes it (the order is
    /// the sized quantity plus the position), so positions flip.
    pub reverse_on_opposite: bool,
    /// Seconds of event time between periodic portfolio snapshots; 0 = only
    /// on fills and kill-switch trips.
    pub snapshot_interval_secs: u64,
    /// Seconds of event time between equity-curve samples.
    pub equity_sample_secs: u64,
    /// Equity-curve samples kept in memory (fixed ring).
    pub equity_curve_capacity: usize,
    /// Trades kept in memory (fixed ring; the full log is the fill events).
    pub trade_log_capacity: usize,
    /// The strategies, run together.
    pub strategies: Vec<StrategyConfig>,
}

impl Default for SignalConfig {
    fn default() -> Self {
        Self {
            threshold: 0.2,
            local_indicators: true,
            reverse_on_opposite: true,
            snapshot_interval_secs: 60,
            equity_sample_secs: 1,
            equity_curve_capacity: 86_400,
            trade_log_capacity: 4_096,
            strategies: StrategyConfig::defaults(),
        }
    }
}

/// `[faults]`: deliberate faults, off by default. The bench harness uses
/// them to prove that stalls show up in its latency figures.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Make the feed thread sleep this many ms once (0 = never).
    pub feed_stall_ms: u64,
    /// ...after this many frames.
    pub feed_stall_after_frames: u64,
}

/// Built-in strategy kinds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKindConfig {
    /// Fast/slow moving-average crossover (`fast`, `slow`, `ma`,
    /// `full_strength_pct`).
    MaCrossover,
    /// RSI mean reversion (`period`, `oversold`, `overbought`).
    RsiReversion,
    /// Bollinger breakout/reversion (`period`, `k`, `mode`).
    Bollinger,
}

impl StrategyKindConfig {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaCrossover => "ma_crossover",
            Self::RsiReversion => "rsi_reversion",
            Self::Bollinger => "bollinger",
        }
    }
}

/// Order type a strategy's signals become.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrderTypeConfig {
    /// Market order.
    #[default]
    Market,
    /// Limit order at the signal price improved by `limit_offset_bps`.
    Limit,
}

/// `[[signal.strategies]]`: one strategy. Parameters that do not apply to
/// the kind are errors.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// Unique name (appears in signal events).
    pub name: String,
    /// Kind.
    pub kind: StrategyKindConfig,
    /// Bar window (one of `kernel.windows`); absent = the first window.
    #[serde(default)]
    pub window: Option<String>,
    /// Instruments (`VENUE:SYMBOL`) it trades; empty = all.
    #[serde(default)]
    pub instruments: Vec<String>,
    /// Also evaluate provisional (still forming) bars.
    #[serde(default)]
    pub on_provisional: bool,
    /// Own signal threshold (overrides `signal.threshold`).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Orders are market or limit.
    #[serde(default)]
    pub order_type: OrderTypeConfig,
    /// Limit orders: price improvement from the signal price, bps.
    #[serde(default)]
    pub limit_offset_bps: f64,
    /// MA crossover: fast period (default 12).
    #[serde(default)]
    pub fast: Option<u16>,
    /// MA crossover: slow period (default 26).
    #[serde(default)]
    pub slow: Option<u16>,
    /// MA crossover: `"sma"` or `"ema"` (default ema).
    #[serde(default)]
    pub ma: Option<String>,
    /// MA crossover: swing (% of the slow MA) that gives strength 1
    /// (default 0.1).
    #[serde(default)]
    pub full_strength_pct: Option<f64>,
    /// RSI period (default 14) or Bollinger period (default 20).
    #[serde(default)]
    pub period: Option<u16>,
    /// RSI: oversold level (default 30).
    #[serde(default)]
    pub oversold: Option<f64>,
    /// RSI: overbought level (default 70).
    #[serde(default)]
    pub overbought: Option<f64>,
    /// Bollinger: standard deviations (default 2.0).
    #[serde(default)]
    pub k: Option<f64>,
    /// Bollinger: `"breakout"` or `"reversion"` (default breakout).
    #[serde(default)]
    pub mode: Option<String>,
}

impl StrategyConfig {
    fn base(name: &str, kind: StrategyKindConfig) -> Self {
        Self {
            name: name.into(),
            kind,
            window: None,
            instruments: Vec::new(),
            on_provisional: false,
            threshold: None,
            order_type: OrderTypeConfig::Market,
            limit_offset_bps: 0.0,
            fast: None,
            slow: None,
            ma: None,
            full_strength_pct: None,
            period: None,
            oversold: None,
            overbought: None,
            k: None,
            mode: None,
        }
    }

    /// The three shipped strategies.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self {
                fast: Some(12),
                slow: Some(26),
                ma: Some("ema".into()),
                full_strength_pct: Some(0.1),
                ..Self::base("ema_cross", StrategyKindConfig::MaCrossover)
            },
            Self {
                period: Some(14),
                oversold: Some(30.0),
                overbought: Some(70.0),
                ..Self::base("rsi_reversion", StrategyKindConfig::RsiReversion)
            },
            Self {
                period: Some(20),
                k: Some(2.0),
                mode: Some("breakout".into()),
                ..Self::base("bb_breakout", StrategyKindConfig::Bollinger)
            },
        ]
    }
}

/// `[risk]`: pre-trade limits. A value that reaches its limit rejects;
/// 0 (or an absent entry) disables a limit.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Per-instrument position limit (`"VENUE:SYMBOL" = "quantity"`).
    pub max_position: std::collections::BTreeMap<String, String>,
    /// Largest position notional as % of equity; 0 = off.
    pub max_concentration_pct: f64,
    /// Largest order notional (account currency, decimal); "0" = off.
    pub max_order_notional: String,
    /// Most orders open at once (also the broker's order table size).
    pub max_open_orders: usize,
    /// Today's loss (account currency) that trips the kill switch; "0" = off.
    pub max_daily_loss: String,
    /// Re-arm the kill switch at the next UTC day (else only by operator).
    pub kill_switch_auto_reset: bool,
    /// Reject when the instrument's last tick is this old (event time, ms);
    /// 0 = off.
    pub stale_after_ms: u64,
    /// Allow orders while the instrument's market is closed.
    pub allow_when_closed: bool,
    /// Allow orders in pre-market and after-hours sessions.
    pub allow_extended_hours: bool,
    /// Most orders per instrument within `rate_window_secs`; 0 = off.
    pub max_orders_per_window: usize,
    /// Rate-limit window, seconds of event time.
    pub rate_window_secs: u64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_position: [("SIM:BTCUSDT", "1"), ("SIM:ETHUSDT", "20")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            max_concentration_pct: 50.0,
            max_order_notional: "25000".into(),
            max_open_orders: 16,
            max_daily_loss: "5000".into(),
            kill_switch_auto_reset: false,
            stale_after_ms: 5_000,
            allow_when_closed: false,
            allow_extended_hours: false,
            max_orders_per_window: 10,
            rate_window_secs: 60,
        }
    }
}

/// How orders are sized.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SizingMode {
    /// `broker.quantity` units of every instrument.
    FixedQuantity,
    /// `broker.notional` worth at the current price (rounded down to the
    /// instrument's size precision).
    #[default]
    FixedNotional,
    /// `broker.equity_pct` % of equity worth.
    EquityPct,
}

/// `[broker]`: the paper broker and account.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Starting cash (account currency, decimal).
    pub initial_cash: String,
    /// Slippage on taker fills, basis points.
    pub slippage_bps: f64,
    /// Taker fee, basis points.
    pub taker_fee_bps: f64,
    /// Maker fee, basis points.
    pub maker_fee_bps: f64,
    /// Orders still open after this many seconds (event time) expire.
    pub order_ttl_secs: u64,
    /// Sizing mode.
    pub sizing: SizingMode,
    /// `fixed_quantity`: quantity (decimal, instrument size precision).
    pub quantity: String,
    /// `fixed_notional`: notional per order (account currency).
    pub notional: String,
    /// `equity_pct`: percent of equity per order.
    pub equity_pct: f64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            initial_cash: "100000".into(),
            slippage_bps: 1.0,
            taker_fee_bps: 10.0,
            maker_fee_bps: 2.0,
            order_ttl_secs: 60,
            sizing: SizingMode::FixedNotional,
            quantity: "0.01".into(),
            notional: "1000".into(),
            equity_pct: 1.0,
        }
    }
}

/// Calendar kind.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CalendarKind {
    /// Always open (24/7).
    #[default]
    Continuous,
    /// Sessions in a time zone, Monday to Friday, holidays, early closes.
    Exchange,
}

/// `[[calendars]]`: when the venues listed trade.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// Name (appears in `market_status` events).
    pub name: String,
    /// Kind.
    pub kind: CalendarKind,
    /// Venues (instrument prefixes) this calendar applies to.
    pub venues: Vec<String>,
    /// IANA time zone of the session times.
    pub timezone: String,
    /// Regular session open, local `HH:MM`.
    pub regular_open: String,
    /// Regular session close, local `HH:MM`.
    pub regular_close: String,
    /// Pre-market open (extended hours), local; absent = none.
    pub pre_market_open: Option<String>,
    /// After-hours close (extended hours), local; absent = none.
    pub after_hours_close: Option<String>,
    /// Regular close on early-close days, local.
    pub early_close: Option<String>,
    /// After-hours close on early-close days, local.
    pub early_after_hours_close: Option<String>,
    /// Full-day closures, `YYYY-MM-DD` (update yearly).
    pub holidays: Vec<String>,
    /// Early-close days, `YYYY-MM-DD` (update yearly).
    pub early_closes: Vec<String>,
    /// First year expanded into the session table.
    pub first_year: i32,
    /// Last year expanded (outside the years the market is closed).
    pub last_year: i32,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: CalendarKind::Continuous,
            venues: Vec::new(),
            timezone: "UTC".into(),
            regular_open: "09:30".into(),
            regular_close: "16:00".into(),
            pre_market_open: None,
            after_hours_close: None,
            early_close: None,
            early_after_hours_close: None,
            holidays: Vec::new(),
            early_closes: Vec::new(),
            first_year: 2015,
            last_year: 2035,
        }
    }
}

impl CalendarConfig {
    /// The shipped calendars: crypto 24/7 and US equities (NYSE hours,
    /// NYSE 2026–2027 holidays and early closes).
    pub fn defaults() -> Vec<Self> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        vec![
            Self {
                name: "crypto".into(),
                kind: CalendarKind::Continuous,
                venues: s(&["SIM", "BINANCE", "BYBIT", "COINBASE", "KRAKEN"]),
                ..Self::default()
            },
            Self {
                name: "us_equities".into(),
                kind: CalendarKind::Exchange,
                venues: s(&["POLYGON", "NYSE", "NASDAQ"]),
                timezone: "America/New_York".into(),
                regular_open: "09:30".into(),
                regular_close: "16:00".into(),
                pre_market_open: Some("04:00".into()),
                after_hours_close: Some("20:00".into()),
                early_close: Some("13:00".into()),
                early_after_hours_close: Some("17:00".into()),
                holidays: s(&[
                    "2026-01-01",
                    "2026-01-19",
                    "2026-02-16",
                    "2026-04-03",
                    "2026-05-25",
                    "2026-06-19",
                    "2026-07-03",
                    "2026-09-07",
                    "2026-11-26",
                    "2026-12-25",
                    "2027-01-01",
                    "2027-01-18",
                    "2027-02-15",
                    "2027-03-26",
                    "2027-05-31",
                    "2027-06-18",
                    "2027-07-05",
                    "2027-09-06",
                    "2027-11-25",
                    "2027-12-24",
                ]),
                early_closes: s(&["2026-11-27", "2026-12-24", "2027-11-26"]),
                first_year: 2015,
                last_year: 2035,
            },
        ]
    }
}

impl ServerConfig {
    /// The listen address, resolved.
    ///
    /// # Errors
    /// Not an `IP:PORT` / `host:port` that resolves.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, ConfigError> {
        use std::net::ToSocketAddrs;
        self.listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                invalid(
                    "server.listen",
                    format!(
                        "'{}' is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:8080 (port 0 = any free port)",
                        self.listen
                    ),
                )
            })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        self.listen_addr()?;
        let positive = [
            ("server.max_clients", self.max_clients),
            ("server.max_subscriptions", self.max_subscriptions),
            ("server.max_message_bytes", self.max_message_bytes),
            ("server.max_header_bytes", self.max_header_bytes),
            ("server.max_queued_messages", self.max_queued_messages),
            ("server.bar_history", self.bar_history),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(invalid(k, "must be at least 1"));
            }
        }
        if self.max_connections < self.max_clients {
            return Err(invalid(
                "server.max_connections",
                format!(
                    "must be ≥ server.max_clients ({}): subscribers are connections too",
                    self.max_clients
                ),
            ));
        }
        if self.max_write_buffer_bytes < 4096 {
            return Err(invalid(
                "server.max_write_buffer_bytes",
                "must be at least 4096",
            ));
        }
        if self.stats_interval_ms < 10 {
            return Err(invalid("server.stats_interval_ms", "must be at least 10"));
        }
        if let Some(name) = &self.token_env
            && (name.is_empty() || name.contains('='))
        {
            return Err(invalid(
                "server.token_env",
                "must name an environment variable (e.g. TICKWIRE_TOKEN), or be removed to disable authentication",
            ));
        }
        Ok(())
    }
}

/// Most bar windows a kernel supports.
pub const MAX_WINDOWS: usize = 8;

/// Parses a window length such as `1s`, `90s`, `1m`, `4h` into ns.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_window(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("window '{s}' must be a number followed by s, m or h (e.g. 1m)"))?;
    let mult: i64 = match unit {
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "window '{s}': unit must be s, m or h (e.g. 30s, 1m, 4h)"
            ));
        }
    };
    if n <= 0 || n > 24 * 3600 * 1_000_000_000 / mult {
        return Err(format!("window '{s}' must be between 1s and 24h"));
    }
    Ok(n * mult)
}

/// Renders a window length in ns back to its shortest name (`60e9` → `1m`).
pub fn window_name(ns: i64) -> String {
    if ns % 3_600_000_000_000 == 0 {
        format!("{}h", ns / 3_600_000_000_000)
    } else if ns % 60_000_000_000 == 0 {
        format!("{}m", ns / 60_000_000_000)
    } else {
        format!("{}s", ns / 1_000_000_000)
    }
}

impl EngineConfig {
    /// Reads and validates a TOML file.
    ///
    /// # Errors
    /// Missing file, syntax error, unknown key, or an invalid value.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates TOML text (`path` is only used in messages).
    ///
    /// # Errors
    /// Syntax error, unknown key, or an invalid value.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        if let Ok(v) = text.parse::<toml::Table>()
            && v.contains_key("feed")
        {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: "the [feed] section was replaced by a [[feeds]] list: rename [feed] to [[feeds]] and [feed.sim] to [feeds.sim], and set `url` (see config/default.toml)".into(),
            });
        }
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every cross-field rule; called by `load` and after CLI overrides.
    ///
    /// # Errors
    /// The first invalid key found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.instruments.is_empty() {
            return Err(invalid(
                "instruments",
                "at least one [[instruments]] entry is required",
            ));
        }
        let reg = self.registry()?;
        for (i, inst) in self.instruments.iter().enumerate() {
            if let Some(p) = &inst.sim_price {
                match parse_scaled(p, inst.price_precision) {
                    Ok(v) if v > 0 => {}
                    _ => {
                        return Err(invalid(
                            format!("instruments[{i}].sim_price"),
                            format!(
                                "'{p}' must be a positive decimal with at most {} fraction digits",
                                inst.price_precision
                            ),
                        ));
                    }
                }
            }
        }
        if self.feeds.is_empty() {
            return Err(invalid("feeds", "at least one [[feeds]] entry is required"));
        }
        for (i, f) in self.feeds.iter().enumerate() {
            f.validate(i, &reg)?;
            if self.feeds[..i].iter().any(|g| g.name == f.name) {
                return Err(invalid(
                    format!("feeds[{i}].name"),
                    format!("feed name '{}' is used twice; names must be unique", f.name),
                ));
            }
        }
        let p = &self.pipeline;
        if p.ring_capacity < 2 || p.ring_capacity > (1 << 26) {
            return Err(invalid(
                "pipeline.ring_capacity",
                "must be between 2 and 67108864",
            ));
        }
        if p.backoff_park_us == 0 || p.backoff_park_us > 1_000_000 {
            return Err(invalid(
                "pipeline.backoff_park_us",
                "must be between 1 and 1000000",
            ));
        }
        let j = &self.journal;
        if j.segment_mb == 0 || j.segment_mb > 16 * 1024 {
            return Err(invalid("journal.segment_mb", "must be between 1 and 16384"));
        }
        if j.durability == JournalDurability::IntervalMs && j.interval_ms == 0 {
            return Err(invalid(
                "journal.interval_ms",
                "must be ≥ 1 with durability = \"interval_ms\"",
            ));
        }
        if j.durability == JournalDurability::EveryN && j.every_n == 0 {
            return Err(invalid(
                "journal.every_n",
                "must be ≥ 1 with durability = \"every_n\"",
            ));
        }
        self.window_ns()?;
        self.registry()?;
        self.kernel_setup()?;
        self.server.validate()?;
        self.validate_calendars()?;
        crate::signal::SignalStage::check_config(self, &reg)?;
        Ok(())
    }

    /// Checks `[[calendars]]` without expanding them (the signal stage
    /// checks its own sections when it is built).
    fn validate_calendars(&self) -> Result<(), ConfigError> {
        for (i, c) in self.calendars.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(invalid(
                    format!("calendars[{i}].name"),
                    "give the calendar a name",
                ));
            }
            if self.calendars[..i].iter().any(|o| o.name == c.name) {
                return Err(invalid(
                    format!("calendars[{i}].name"),
                    format!("'{}' is used twice", c.name),
                ));
            }
        }
        Ok(())
    }

    /// The validated kernel setup: windows, grace, provisional interval,
    /// indicator periods, anomaly rules, overview and indices. `wall_timer`
    /// is left `false`; the engine turns it on for live sources.
    ///
    /// # Errors
    /// The first invalid `kernel.*` key.
    pub fn kernel_setup(&self) -> Result<KernelSetup, ConfigError> {
        const MS: i64 = 1_000_000;
        const DAY_MS: u64 = 86_400_000;
        let k = &self.kernel;
        let windows_ns = self.window_ns()?;
        let ms = |key: &str, v: u64, min: u64| -> Result<i64, ConfigError> {
            if v < min || v > DAY_MS {
                return Err(invalid(
                    format!("kernel.{key}"),
                    format!("must be between {min} and {DAY_MS} ms"),
                ));
            }
            Ok(v as i64 * MS)
        };
        let i = &k.indicators;
        let indicators = IndicatorSpec {
            sma: i.sma.clone(),
            ema: i.ema.clone(),
            rsi: i.rsi.clone(),
            macd: i
                .macd
                .enabled
                .then_some((i.macd.fast, i.macd.slow, i.macd.signal)),
            bollinger: i
                .bollinger
                .enabled
                .then_some((i.bollinger.period, i.bollinger.stddev)),
            avg_volume: (i.avg_volume > 0).then_some(i.avg_volume),
            session_vwap: i.session_vwap,
        };
        indicators
            .check()
            .map_err(|m| invalid("kernel.indicators", m))?;

        let a = &k.anomalies;
        let window = match &a.window {
            None => 0,
            Some(w) => {
                let ns = parse_window(w).map_err(|m| invalid("kernel.anomalies.window", m))?;
                windows_ns.iter().position(|x| *x == ns).ok_or_else(|| {
                    invalid(
                        "kernel.anomalies.window",
                        format!("window '{w}' is not in kernel.windows"),
                    )
                })?
            }
        };
        let rule = |key: &str, enabled: bool, severity: Severity, cd: u64| {
            ms(&format!("anomalies.{key}.cooldown_ms"), cd, 0).map(|cooldown_ns| RuleSetup {
                enabled,
                severity,
                cooldown_ns,
            })
        };
        let period = |key: &str, p: usize| {
            if (1..=crate::kernel::indicators::MAX_PERIOD).contains(&p) {
                Ok(p)
            } else {
                Err(invalid(
                    format!("kernel.anomalies.{key}.period"),
                    "must be between 1 and 100000",
                ))
            }
        };
        let ps = &a.price_spike;
        if !(ps.threshold_pct > 0.0 && ps.threshold_pct.is_finite()) {
            return Err(invalid(
                "kernel.anomalies.price_spike.threshold_pct",
                "must be a positive percentage, e.g. 5.0",
            ));
        }
        let vs = &a.volume_spike;
        if !(vs.multiple > 0.0 && vs.multiple.is_finite()) {
            return Err(invalid(
                "kernel.anomalies.volume_spike.multiple",
                "must be a positive number, e.g. 3.0",
            ));
        }
        let rs = &a.rsi_extreme;
        if !(0.0..=100.0).contains(&rs.oversold)
            || !(0.0..=100.0).contains(&rs.overbought)
            || rs.oversold >= rs.overbought
        {
            return Err(invalid(
                "kernel.anomalies.rsi_extreme",
                "need 0 <= oversold < overbought <= 100",
            ));
        }
        let lat = &a.latency;
        let rules = AnomalyRules {
            window,
            price_spike: rule("price_spike", ps.enabled, ps.severity, ps.cooldown_ms)?,
            price_spike_fraction: ps.threshold_pct / 100.0,
            price_spike_period: period("price_spike", ps.period)?,
            volume_spike: rule("volume_spike", vs.enabled, vs.severity, vs.cooldown_ms)?,
            volume_multiple: vs.multiple,
            volume_period: period("volume_spike", vs.period)?,
            rsi: rule("rsi_extreme", rs.enabled, rs.severity, rs.cooldown_ms)?,
            rsi_overbought: rs.overbought,
            rsi_oversold: rs.oversold,
            rsi_period: period("rsi_extreme", rs.period)?,
            latency: rule("latency", lat.enabled, lat.severity, lat.cooldown_ms)?,
            latency_threshold_ns: ms("anomalies.latency.threshold_ms", lat.threshold_ms, 1)?,
            sequence_gap: rule(
                "sequence_gap",
                a.sequence_gap.enabled,
                a.sequence_gap.severity,
                a.sequence_gap.cooldown_ms,
            )?,
            stale_feed: rule(
                "stale_feed",
                a.stale_feed.enabled,
                a.stale_feed.severity,
                a.stale_feed.cooldown_ms,
            )?,
            crossed_book: rule(
                "crossed_book",
                a.crossed_book.enabled,
                a.crossed_book.severity,
                a.crossed_book.cooldown_ms,
            )?,
        };

        if k.overview.top_n > MAX_MOVERS {
            return Err(invalid(
                "kernel.overview.top_n",
                format!("must be between 0 and {MAX_MOVERS}"),
            ));
        }
        let reg = self.registry()?;
        let mut indices: Vec<IndexSpec> = Vec::new();
        for (n, ix) in k.indices.iter().enumerate() {
            let key = format!("kernel.indices[{n}]");
            if ix.name.trim().is_empty() || indices.iter().any(|o| o.name == ix.name) {
                return Err(invalid(
                    format!("{key}.name"),
                    "give every index a unique, non-empty name",
                ));
            }
            if ix.constituents.is_empty() {
                return Err(invalid(
                    format!("{key}.constituents"),
                    "list at least one {symbol = \"VENUE:SYMBOL\", weight = 1.0}",
                ));
            }
            let mut cons = Vec::new();
            for (c, con) in ix.constituents.iter().enumerate() {
                let ckey = format!("{key}.constituents[{c}]");
                let id = reg.lookup_key(&con.symbol).ok_or_else(|| {
                    invalid(
                        format!("{ckey}.symbol"),
                        format!("'{}' is not in [[instruments]]", con.symbol),
                    )
                })?;
                if !con.weight.is_finite() {
                    return Err(invalid(format!("{ckey}.weight"), "must be a finite number"));
                }
                let pp = reg.get(id).map_or(0, |i| i.price_precision);
                let base = match &con.base {
                    None => 0,
                    Some(b) => match parse_scaled(b, pp) {
                        Ok(v) if v > 0 => v,
                        _ => {
                            return Err(invalid(
                                format!("{ckey}.base"),
                                format!(
                                    "'{b}' must be a positive decimal with at most {pp} fraction digits"
                                ),
                            ));
                        }
                    },
                };
                cons.push((id, con.weight, base));
            }
            indices.push(IndexSpec {
                name: ix.name.clone(),
                constituents: cons,
            });
        }
        Ok(KernelSetup {
            windows_ns,
            bar_grace_ns: ms("bar_grace_ms", k.bar_grace_ms, 0)?,
            provisional_interval_ns: ms("provisional_interval_ms", k.provisional_interval_ms, 0)?,
            wall_timer: false,
            timer_interval_ns: ms("timer_interval_ms", k.timer_interval_ms, 1)?,
            indicators,
            rules,
            overview: OverviewSetup {
                top_n: k.overview.top_n,
                interval_ns: ms("overview.interval_ms", k.overview.interval_ms, 0)?,
                indices,
            },
        })
    }

    /// The configured bar windows in ns, validated.
    ///
    /// # Errors
    /// An unparsable, duplicate or excess window.
    pub fn window_ns(&self) -> Result<Vec<i64>, ConfigError> {
        if self.kernel.windows.is_empty() || self.kernel.windows.len() > MAX_WINDOWS {
            return Err(invalid(
                "kernel.windows",
                format!("list 1 to {MAX_WINDOWS} windows, e.g. [\"1m\", \"5m\"]"),
            ));
        }
        let mut out = Vec::new();
        for w in &self.kernel.windows {
            let ns = parse_window(w).map_err(|m| invalid("kernel.windows", m))?;
            if out.contains(&ns) {
                return Err(invalid(
                    "kernel.windows",
                    format!("window '{w}' is listed twice"),
                ));
            }
            out.push(ns);
        }
        Ok(out)
    }

    /// Builds the instrument registry.
    ///
    /// # Errors
    /// A bad or duplicate instrument.
    pub fn registry(&self) -> Result<InstrumentRegistry, ConfigError> {
        let mut reg = InstrumentRegistry::new();
        for (i, inst) in self.instruments.iter().enumerate() {
            reg.add(
                &inst.symbol,
                inst.price_precision,
                inst.size_precision,
                inst.sector.clone(),
            )
            .map_err(|e| invalid(format!("instruments[{i}].symbol"), e.to_string()))?;
        }
        Ok(reg)
    }

    /// Keeps only the named instruments (`--symbols`), in the given order.
    /// A name not in the config is added with default precision (8/8).
    ///
    /// # Errors
    /// An empty list or a malformed name.
    pub fn select_symbols(&mut self, names: &[String]) -> Result<(), ConfigError> {
        if names.is_empty() {
            return Err(invalid("--symbols", "give at least one VENUE:SYMBOL"));
        }
        let mut out = Vec::new();
        for n in names {
            let found = self
                .instruments
                .iter()
                .find(|i| i.symbol.eq_ignore_ascii_case(n))
                .cloned();
            out.push(found.unwrap_or_else(|| InstrumentConfig {
                symbol: n.clone(),
                price_precision: 8,
                size_precision: 8,
                sector: None,
                sim_price: None,
            }));
        }
        self.instruments = out;
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<EngineConfig, ConfigError> {
        EngineConfig::from_toml_str(s, Path::new("test.toml"))
    }

    #[test]
    fn shipped_default_file_matches_builtin_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let cfg = EngineConfig::load(&path).expect("config/default.toml must load");
        assert_eq!(cfg, EngineConfig::default());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("").unwrap(), EngineConfig::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("[pipeline]\nring_capacty = 8\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ring_capacty"), "{e}");
        assert!(e.contains("test.toml"), "{e}");
        let e = parse("[nope]\n").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("[pipeline]\nring_capacity = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.ring_capacity"), "{e}");
        let e = parse("[pipeline]\nfull_policy = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("full_policy") || e.contains("maybe"), "{e}");
        let e = parse("[kernel]\nwindows = [\"1x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kernel.windows"), "{e}");
        let e = parse("[kernel]\nwindows = [\"1m\", \"60s\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
        let e = parse("[[feeds]]\n[feeds.sim]\ntrade_ratio = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("feeds[0].sim.trade_ratio"), "{e}");
        let e = parse("[[feeds]]\nvenue = \"NOPE\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("feeds[0].venue"), "{e}");
        let e = parse(
            "[[instruments]]\nsymbol = \"SIM:X\"\nprice_precision = 2\nsize_precision = 2\nsim_price = \"1.234\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("instruments[0].sim_price"), "{e}");
        let e = parse("[[instruments]]\nsymbol = \"X\"\nprice_precision = 2\nsize_precision = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("instruments[0].symbol"), "{e}");
    }

    #[test]
    fn kernel_section_parses_and_validates() {
        let cfg = parse(
            r#"
[kernel]
windows = ["1s", "1m"]
bar_grace_ms = 500
provisional_interval_ms = 0
[kernel.indicators]
sma = [10]
ema = []
rsi = [7, 14]
avg_volume = 0
[kernel.indicators.macd]
enabled = false
[kernel.anomalies]
window = "1m"
[kernel.anomalies.price_spike]
threshold_pct = 2.5
severity = "critical"
cooldown_ms = 1000
[kernel.overview]
top_n = 3
[[kernel.indices]]
name = "MAJ"
constituents = [{ symbol = "SIM:BTCUSDT", weight = 0.6 }, { symbol = "sim:ethusdt", weight = 0.4, base = "2650.17" }]
"#,
        )
        .unwrap();
        let k = cfg.kernel_setup().unwrap();
        assert_eq!(k.windows_ns, [1_000_000_000, 60_000_000_000]);
        assert_eq!(k.bar_grace_ns, 500_000_000);
        assert_eq!(k.provisional_interval_ns, 0);
        assert_eq!(
            k.indicators.slot_names(),
            [
                "sma_10",
                "rsi_7",
                "rsi_14",
                "bb_upper",
                "bb_middle",
                "bb_lower",
                "session_vwap"
            ]
        );
        assert_eq!(k.rules.window, 1);
        assert_eq!(k.rules.price_spike_fraction, 0.025);
        assert_eq!(k.rules.price_spike.severity, Severity::Critical);
        assert_eq!(k.rules.price_spike.cooldown_ns, 1_000_000_000);
        assert_eq!(k.rules.volume_spike.cooldown_ns, 300_000_000_000);
        assert_eq!(k.overview.top_n, 3);
        let ix = &k.overview.indices[0];
        assert_eq!(ix.name, "MAJ");
        assert_eq!(ix.constituents[1].0, crate::instruments::InstrumentId(1));
        assert_eq!(ix.constituents[1].2, 265_017);
        assert_eq!(ix.constituents[0].2, 0);
    }

    #[test]
    fn kernel_errors_name_the_key() {
        for (toml, key) in [
            ("[kernel.indicators]\nsma = [0]\n", "kernel.indicators"),
            (
                "[kernel.indicators]\nsma = [1,2,3,4,5,6]\n",
                "kernel.indicators",
            ),
            (
                "[kernel.anomalies]\nwindow = \"4h\"\n",
                "kernel.anomalies.window",
            ),
            (
                "[kernel.anomalies.price_spike]\nthreshold_pct = 0.0\n",
                "kernel.anomalies.price_spike.threshold_pct",
            ),
            (
                "[kernel.anomalies.rsi_extreme]\noversold = 80.0\n",
                "kernel.anomalies.rsi_extreme",
            ),
            ("[kernel.overview]\ntop_n = 9\n", "kernel.overview.top_n"),
            (
                "[kernel]\ntimer_interval_ms = 0\n",
                "kernel.timer_interval_ms",
            ),
            (
                "[[kernel.indices]]\nname = \"X\"\nconstituents = [{symbol = \"SIM:NOPE\", weight = 1.0}]\n",
                "kernel.indices[0].constituents[0].symbol",
            ),
            (
                "[[kernel.indices]]\nname = \"X\"\nconstituents = [{symbol = \"SIM:BTCUSDT\", weight = 1.0, base = \"1.234\"}]\n",
                "kernel.indices[0].constituents[0].base",
            ),
        ] {
            let e = parse(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
        let e = parse("[kernel.anomalies.latency]\nseverity = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("loud") || e.contains("severity"), "{e}");
    }

    #[test]
    fn signal_sections_are_validated() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        let e = err("[[signal.strategies]]\nname = \"x\"\nkind = \"rsi_reversion\"\nfast = 3\n");
        assert!(e.contains("signal.strategies[0].fast"), "{e}");
        let e = err("[[signal.strategies]]\nname = \"x\"\nkind = \"bollinger\"\nwindow = \"7m\"\n");
        assert!(e.contains("signal.strategies[0].window"), "{e}");
        let e = err(
            "[[signal.strategies]]\nname = \"x\"\nkind = \"ma_crossover\"\nfast = 30\nslow = 10\n",
        );
        assert!(e.contains("signal.strategies[0].fast"), "{e}");
        let e = err("[[signal.strategies]]\nname = \"x\"\nkind = \"nope\"\n");
        assert!(e.contains("nope"), "{e}");
        let e = err("[signal]\nthreshold = 1.5\n");
        assert!(e.contains("signal.threshold"), "{e}");
        let e = err("[signal]\nbogus = 1\n");
        assert!(e.contains("bogus"), "{e}");
        let e = err("[risk]\nmax_open_orders = 0\n");
        assert!(e.contains("risk.max_open_orders"), "{e}");
        let e = err("[risk.max_position]\n\"SIM:BTCUSDT\" = \"0.000001\"\n");
        assert!(e.contains("risk.max_position"), "{e}");
        let e = err("[broker]\ninitial_cash = \"abc\"\n");
        assert!(e.contains("broker.initial_cash"), "{e}");
        let e = err("[[calendars]]\nname = \"x\"\nkind = \"exchange\"\ntimezone = \"Mars/Base\"\n");
        assert!(e.contains("calendars") && e.contains("Mars/Base"), "{e}");
        let e = err("[[calendars]]\nname = \"x\"\nkind = \"exchange\"\nregular_open = \"9:30\"\n");
        assert!(e.contains("HH:MM"), "{e}");
        // A valid custom setup loads.
        let c = parse(
            "[[signal.strategies]]\nname = \"s\"\nkind = \"ma_crossover\"\nma = \"sma\"\nfast = 5\nslow = 20\nwindow = \"5m\"\norder_type = \"limit\"\nlimit_offset_bps = 2.5\n[broker]\nsizing = \"equity_pct\"\nequity_pct = 2.0\n",
        )
        .unwrap();
        assert_eq!(c.signal.strategies.len(), 1);
        assert_eq!(c.broker.sizing, SizingMode::EquityPct);
    }

    #[test]
    fn feeds_list_parses_and_validates() {
        let c = parse(
            r#"
[[feeds]]
name = "a"
url = "sim://"
[feeds.sim]
rate = 5.0
[[feeds]]
name = "b"
adapter = "binance_usdm"
url = "wss://fstream.binance.com/stream"
symbols = ["btcusdt"]
channels = ["aggTrade"]
api_key_env = "X_KEY"
stale_after_ms = 0
"#,
        )
        .unwrap();
        assert_eq!(c.feeds.len(), 2);
        assert_eq!(c.feeds[0].endpoint(), Ok(FeedEndpoint::Sim));
        assert_eq!(c.feeds[0].sim.rate, 5.0);
        assert_eq!(c.feeds[1].adapter, AdapterKind::BinanceUsdm);
        assert_eq!(
            c.feeds[1].endpoint(),
            Ok(FeedEndpoint::WebSocket {
                url: "wss://fstream.binance.com/stream".into(),
                tls: true
            })
        );
        let reg = c.registry().unwrap();
        assert_eq!(c.feeds[1].resolved_symbols(&reg), vec!["BTCUSDT"]);
        assert_eq!(
            c.feeds[0].resolved_symbols(&reg),
            vec!["BTCUSDT", "ETHUSDT"]
        );
        assert_eq!(
            FeedEndpoint::parse("feedsims://127.0.0.1:9443"),
            Ok(FeedEndpoint::FeedSim {
                listen: "127.0.0.1:9443".parse().unwrap(),
                tls: true
            })
        );

        let cases: &[(&str, &str)] = &[
            (
                "[[feeds]]\nname = \"x\"\n[[feeds]]\nname = \"x\"\n",
                "feeds[1].name",
            ),
            ("[[feeds]]\nurl = \"http://x\"\n", "feeds[0].url"),
            (
                "[[feeds]]\nurl = \"feedsim://localhost:1\"\n",
                "feeds[0].url",
            ),
            (
                "[[feeds]]\nurl = \"sim://\"\nadapter = \"coinbase\"\n",
                "feeds[0].url",
            ),
            ("[[feeds]]\nsymbols = [\"DOGEUSDT\"]\n", "feeds[0].symbols"),
            ("[[feeds]]\nsymbols = []\n", "feeds[0].symbols"),
            (
                "[[feeds]]\napi_key_env = \"K=abc\"\n",
                "feeds[0].api_key_env",
            ),
            (
                "[[feeds]]\nmax_frame_bytes = 10\n",
                "feeds[0].max_frame_bytes",
            ),
            (
                "[[feeds]]\nbackoff_initial_ms = 10\nbackoff_max_ms = 5\n",
                "feeds[0].backoff_max_ms",
            ),
            (
                "[[feeds]]\nbreaker_failures = 0\n",
                "feeds[0].breaker_failures",
            ),
            ("[[feeds]]\nadapter = \"kraken\"\n", "kraken"),
            ("feeds = []\n", "feeds"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?} → {e}");
        }
        let e = parse("[feed]\nvenue = \"SIM\"\n").unwrap_err().to_string();
        assert!(e.contains("[[feeds]]") && e.contains("test.toml"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = EngineConfig::load(Path::new("/nonexistent/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("1s"), Ok(1_000_000_000));
        assert_eq!(parse_window("15m"), Ok(900_000_000_000));
        assert_eq!(parse_window("4h"), Ok(14_400_000_000_000));
        assert!(parse_window("0m").is_err());
        assert!(parse_window("m").is_err());
        assert!(parse_window("25h").is_err());
        assert_eq!(window_name(60_000_000_000), "1m");
        assert_eq!(window_name(90_000_000_000), "90s");
        assert_eq!(window_name(7_200_000_000_000), "2h");
    }

    #[test]
    fn symbol_selection() {
        let mut c = EngineConfig::default();
        c.select_symbols(&["sim:ethusdt".into()]).unwrap();
        assert_eq!(c.instruments.len(), 1);
        assert_eq!(c.instruments[0].size_precision, 4);
        c.select_symbols(&["SIM:DOGEUSDT".into()]).unwrap();
        assert_eq!(c.instruments[0].price_precision, 8);
        assert!(c.select_symbols(&[]).is_err());
    }
}
