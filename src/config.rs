//! Engine configuration: one TOML file, validated once at start.
//!
//! Every section and key is documented in `config/default.toml`. Unknown
//! keys are errors (a typo must not silently fall back to a default); each
//! error names the file and the key. Stages take only their own section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::decimal::parse_scaled;
use crate::instruments::InstrumentRegistry;

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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
            feed: FeedConfig::default(),
            pipeline: PipelineConfig::default(),
            kernel: KernelConfig::default(),
            telemetry: TelemetryConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The built-in simulated market, emitting Binance combined-stream JSON.
    Sim,
}

/// `[feed]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
        }
    }
}

/// What a producer does when its output ring is full.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Bar windows, e.g. `["1m", "5m", "15m"]` (units s, m, h; at most 8).
    pub windows: Vec<String>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            windows: vec!["1m".into(), "5m".into(), "15m".into()],
        }
    }
}

/// `[telemetry]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
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

/// `[server]`: the WebSocket + HTTP server on the fan-out thread (one port).
///
/// See `docs/PROTOCOL.md` for the protocol and every limit's effect.
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
        self.window_ns()?;
        self.registry()?;
        self.server.validate()?;
        Ok(())
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
