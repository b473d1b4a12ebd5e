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
    /// The market-data source.
    pub feed: FeedConfig,
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            engine: EngineSection::default(),
            instruments: vec![
                InstrumentConfig::sim("SIM:BTCUSDT", 2, 5, "61837.63", "crypto-major"),
                InstrumentConfig::sim("SIM:ETHUSDT", 2, 4, "2650.17", "crypto-major"),
            ],
            feed: FeedConfig::default(),
            pipeline: PipelineConfig::default(),
            kernel: KernelConfig::default(),
            telemetry: TelemetryConfig::default(),
            journal: JournalSection::default(),
            faults: FaultsConfig::default(),
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

/// Which source the feed thread reads.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The built-in simulated market, emitting Binance combined-stream JSON.
    Sim,
}

/// `[feed]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Source type.
    pub source: SourceKind,
    /// Venue whose instruments the source serves (instrument names are
    /// `VENUE:SYMBOL`).
    pub venue: String,
    /// Simulator settings.
    pub sim: SimConfig,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::Sim,
            venue: "SIM".into(),
            sim: SimConfig::default(),
        }
    }
}

/// `[feed.sim]`: the deterministic simulated market.
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
        if reg.of_venue(&self.feed.venue).next().is_none() {
            return Err(invalid(
                "feed.venue",
                format!(
                    "no instrument uses venue '{}'; add [[instruments]] named {}:SYMBOL",
                    self.feed.venue, self.feed.venue
                ),
            ));
        }
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
        let sim = &self.feed.sim;
        if !(sim.rate >= 0.0 && sim.rate.is_finite()) {
            return Err(invalid(
                "feed.sim.rate",
                "must be ≥ 0 (0 = as fast as possible)",
            ));
        }
        if !(0.0..=1.0).contains(&sim.trade_ratio) {
            return Err(invalid("feed.sim.trade_ratio", "must be between 0 and 1"));
        }
        if sim.start_ns < 0 {
            return Err(invalid("feed.sim.start_ns", "must be ≥ 0 (0 = now)"));
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
        let e = parse("[feed.sim]\ntrade_ratio = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("feed.sim.trade_ratio"), "{e}");
        let e = parse("[feed]\nvenue = \"NOPE\"\n").unwrap_err().to_string();
        assert!(e.contains("feed.venue"), "{e}");
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
