//! Assembles an engine from an [`EngineConfig`]: registry, source, adapter,
//! stages, pipeline, telemetry reporting. `tickwire run` is a thin wrapper
//! around [`Engine::run`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::config::{ConfigError, EngineConfig, FeedEndpoint};
use crate::fanout::{EventSink, FanoutStage};
use crate::feed::multi::MultiSource;
use crate::feed::sim::SimSource;
use crate::feed::ws::{WsConnSpec, WsSource};
use crate::feed::{AdapterParams, FeedStage, FeedStream, FrameSource, make_adapter};
use crate::feedsim::{FeedSim, FeedSimConfig, Pace, Venue};
use crate::instruments::InstrumentRegistry;
use crate::kernel::{IndicatorKernel, KernelSetup};
use crate::pipeline::{Pipeline, Stages, collect_finished};
use crate::signal::SignalStage;
use crate::telemetry::{Percentiles, Telemetry, fmt_ns, new_histogram};

/// API keys by feed name, read by the binary from the environment
/// variables named in config (`api_key_env`). Never printed: `Debug` shows
/// only the feed names.
#[derive(Clone, Default)]
pub struct FeedSecrets {
    keys: Vec<(String, String)>,
}

impl std::fmt::Debug for FeedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSecrets")
            .field(
                "feeds",
                &self.keys.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FeedSecrets {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the key of feed `feed`.
    pub fn insert(&mut self, feed: &str, key: String) {
        self.keys.retain(|(n, _)| n != feed);
        self.keys.push((feed.to_string(), key));
    }

    /// The key of feed `feed`, if any.
    pub fn get(&self, feed: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(n, _)| n == feed)
            .map(|(_, k)| k.as_str())
    }
}

/// Builds the four stages for `cfg` with the given fan-out sinks (no API
/// keys). See [`build_stages_with_secrets`].
///
/// # Errors
/// Invalid configuration.
pub fn build_stages(
    cfg: &EngineConfig,
    clock: Clock,
    sinks: Vec<Box<dyn EventSink>>,
) -> Result<(Stages, Arc<InstrumentRegistry>), ConfigError> {
    build_stages_with_secrets(cfg, clock, sinks, &FeedSecrets::default())
}

fn feed_err(i: usize, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("feeds[{i}].{key}"),
        message: message.into(),
    }
}

/// Builds the feed source (simulators, one WebSocket source for every
/// ws/wss/feedsim feed, combined) and one stream per `[[feeds]]` entry.
///
/// # Errors
/// An adapter not built in, a bad URL or CA file, a feedsim that cannot
/// start, or a poller that cannot be created.
pub fn build_feed(
    cfg: &EngineConfig,
    registry: &Arc<InstrumentRegistry>,
    clock: Clock,
    secrets: &FeedSecrets,
) -> Result<(Box<dyn FrameSource>, Vec<FeedStream>), ConfigError> {
    let prices: Vec<(String, String)> = cfg
        .instruments
        .iter()
        .filter_map(|i| i.sim_price.clone().map(|p| (i.symbol.clone(), p)))
        .collect();
    // (source, its stream → stage stream map)
    let mut sims: Vec<(Box<dyn FrameSource>, Vec<u32>)> = Vec::new();
    let mut ws_map: Vec<u32> = Vec::new();
    let mut specs = Vec::new();
    let mut feedsims = Vec::new();
    let mut streams = Vec::new();
    for (i, f) in cfg.feeds.iter().enumerate() {
        let symbols = f.resolved_symbols(registry);
        let params = AdapterParams {
            venue: f.venue.clone(),
            symbols: symbols.clone(),
            channels: f.channels.clone(),
            api_key: secrets.get(&f.name).map(str::to_string),
        };
        let adapter = make_adapter(f.adapter, registry.clone(), &params)
            .map_err(|e| feed_err(i, "adapter", e.to_string()))?;
        let keepalive = adapter.keepalive();
        let venue_id = registry.venue_id(&f.venue);
        let instruments = symbols
            .iter()
            .filter_map(|s| venue_id.and_then(|v| registry.lookup(v, s.as_bytes())))
            .collect();
        let endpoint = f.endpoint().map_err(|m| feed_err(i, "url", m))?;
        let stream = i as u32;
        match endpoint {
            FeedEndpoint::Sim => {
                // Only this feed's symbols: a registry holding just them.
                let mut sub = InstrumentRegistry::new();
                for inst in registry.of_venue(&f.venue) {
                    if symbols.iter().any(|s| s.eq_ignore_ascii_case(&inst.symbol)) {
                        let _ = sub.add(&inst.key, inst.price_precision, inst.size_precision, None);
                    }
                }
                sims.push((
                    Box::new(SimSource::new(&sub, &f.venue, &prices, f.sim.clone())),
                    vec![stream],
                ));
            }
            FeedEndpoint::WebSocket { url, .. } => {
                let local = ws_map.len() as u32;
                ws_map.push(stream);
                let mut spec = WsConnSpec::from_feed_config(f, local, &url, None)
                    .map_err(|e| feed_err(i, "url", e.to_string()))?;
                spec.keepalive = keepalive;
                specs.push(spec);
            }
            FeedEndpoint::FeedSim { listen, tls } => {
                let venue = Venue::for_adapter(f.adapter);
                let mut sc = FeedSimConfig::new(venue);
                sc.listen = listen;
                sc.tls = tls;
                sc.symbols =
                    FeedSimConfig::symbols_from_registry(registry, &f.venue, &symbols, &prices);
                sc.sim = f.sim.clone();
                sc.messages = f.sim.messages;
                sc.pace = if f.sim.rate > 0.0 && f.sim.paced {
                    Pace::Rate(f.sim.rate)
                } else {
                    Pace::Max
                };
                let sim = FeedSim::start(sc).map_err(|e| feed_err(i, "url", e.to_string()))?;
                let local = ws_map.len() as u32;
                ws_map.push(stream);
                let mut spec = WsConnSpec::from_feed_config(
                    f,
                    local,
                    &sim.url(),
                    sim.cert_pem().map(str::as_bytes),
                )
                .map_err(|e| feed_err(i, "url", e.to_string()))?;
                spec.keepalive = keepalive;
                tracing::info!(feed = %f.name, url = %sim.url(), venue = venue.as_str(), "started in-process feedsim");
                specs.push(spec);
                feedsims.push(sim);
            }
        }
        streams.push(FeedStream {
            name: f.name.clone(),
            adapter,
            instruments,
        });
    }
    if !specs.is_empty() {
        let seed = cfg.feeds.first().map_or(1, |f| f.sim.seed);
        let mut ws = WsSource::new(specs, clock, seed).map_err(|e| ConfigError::Invalid {
            key: "feeds".into(),
            message: e.to_string(),
        })?;
        for s in feedsims {
            ws.attach(Box::new(s));
        }
        sims.push((Box::new(ws), ws_map));
    }
    let identity = |m: &[u32]| m.iter().enumerate().all(|(i, g)| *g == i as u32);
    let source: Box<dyn FrameSource> = if sims.len() == 1 && identity(&sims[0].1) {
        sims.pop()
            .map(|(s, _)| s)
            .ok_or_else(|| ConfigError::Invalid {
                key: "feeds".into(),
                message: "no feed".into(),
            })?
    } else {
        Box::new(MultiSource::new(sims))
    };
    Ok((source, streams))
}

/// Builds the four stages for `cfg` with the given fan-out sinks; API keys
/// from `secrets`. Starts in-process feedsims for `feedsim://` feeds (they
/// live as long as the feed stage).
///
/// # Errors
/// Invalid configuration (see [`build_feed`]).
pub fn build_stages_with_secrets(
    cfg: &EngineConfig,
    clock: Clock,
    sinks: Vec<Box<dyn EventSink>>,
    secrets: &FeedSecrets,
) -> Result<(Stages, Arc<InstrumentRegistry>), ConfigError> {
    let registry = Arc::new(cfg.registry()?);
    let windows = cfg.window_ns()?;
    let (source, streams) = build_feed(cfg, &registry, clock, secrets)?;
    let stages = Stages {
        feed: FeedStage::with_streams(source, streams, clock),
        kernel: IndicatorKernel::new(
            &registry,
            &KernelSetup {
                windows_ns: windows,
            },
        ),
        signal: SignalStage::new(&registry),
        fanout: FanoutStage::new(&registry, sinks),
    };
    Ok((stages, registry))
}

/// Summary of a finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Frames read.
    pub frames: u64,
    /// Ticks decoded.
    pub ticks: u64,
    /// Decode errors (all kinds).
    pub errors: u64,
    /// Events delivered to the fan-out.
    pub fanout_events: u64,
    /// Final bars.
    pub bars: u64,
    /// Ring-full events, all rings.
    pub ring_full: u64,
    /// Drops, all rings.
    pub drops: u64,
    /// Feed reconnects (after drops, stale feeds, rotations).
    pub reconnects: u64,
    /// Sequence gaps reported by adapters.
    pub gaps: u64,
    /// Per-stage percentiles (decode, kernel, signal, fanout, e2e).
    pub stages: Vec<(&'static str, Percentiles)>,
}

impl RunSummary {
    /// Multi-line human summary.
    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!(
            "tickwire summary: {:.1}s, {} frames, {} ticks ({:.0} ticks/s), {} events to fan-out, {} bars, {} errors, {} ring-full, {} drops\n",
            secs,
            self.frames,
            self.ticks,
            self.ticks as f64 / secs,
            self.fanout_events,
            self.bars,
            self.errors,
            self.ring_full,
            self.drops
        );
        if self.reconnects > 0 || self.gaps > 0 {
            s.push_str(&format!(
                "  feeds: {} reconnects, {} sequence gaps\n",
                self.reconnects, self.gaps
            ));
        }
        s.push_str("  stage      count        p50        p99      p99.9        max\n");
        for (name, p) in &self.stages {
            s.push_str(&format!(
                "  {:<8} {:>7} {:>10} {:>10} {:>10} {:>10}\n",
                name,
                p.count,
                fmt_ns(p.p50),
                fmt_ns(p.p99),
                fmt_ns(p.p999),
                fmt_ns(p.max)
            ));
        }
        s
    }
}

/// A configured engine, ready to run.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    secrets: FeedSecrets,
}

impl Engine {
    /// An engine for `cfg` (validated).
    ///
    /// # Errors
    /// Invalid configuration.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        Self::with_secrets(cfg, FeedSecrets::default())
    }

    /// An engine for `cfg` (validated) with API keys for its feeds.
    ///
    /// # Errors
    /// Invalid configuration.
    pub fn with_secrets(cfg: EngineConfig, secrets: FeedSecrets) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self { cfg, secrets })
    }

    /// Runs until `stop` is set, the configured duration passes, or the
    /// source ends; then drains every ring and returns the summary. Logs a
    /// stats line every `telemetry.stats_interval_secs`.
    ///
    /// # Errors
    /// Thread spawn failure or a panicked stage thread.
    pub fn run(
        &self,
        sinks: Vec<Box<dyn EventSink>>,
        stop: Arc<AtomicBool>,
    ) -> Result<RunSummary, String> {
        let clock = Clock::new();
        let (stages, registry) = build_stages_with_secrets(&self.cfg, clock, sinks, &self.secrets)
            .map_err(|e| e.to_string())?;
        let tel = Arc::new(Telemetry::new(registry.len()));
        let started = Instant::now();
        let (pipeline, done_rx) =
            Pipeline::spawn(stages, &self.cfg.pipeline, tel.clone(), clock, stop.clone())
                .map_err(|e| format!("cannot start pipeline threads: {e}"))?;
        tracing::info!(
            instruments = registry.len(),
            feeds = %self
                .cfg
                .feeds
                .iter()
                .map(|f| format!("{} ({} {})", f.name, f.adapter.as_str(), f.url))
                .collect::<Vec<_>>()
                .join(", "),
            "tickwire running; Ctrl-C stops"
        );
        let mut cumulative: Vec<Histogram<u64>> = (0..5).map(|_| new_histogram()).collect();
        let interval = Duration::from_secs(self.cfg.telemetry.stats_interval_secs.max(1));
        let log_stats = self.cfg.telemetry.stats_interval_secs > 0;
        let deadline = (self.cfg.engine.duration_secs > 0)
            .then(|| started + Duration::from_secs(self.cfg.engine.duration_secs));
        let mut next_report = Instant::now() + interval;
        let mut last_ticks = 0u64;
        let mut last_at = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(20));
            if pipeline.is_finished() {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::Relaxed);
            }
            if Instant::now() >= next_report {
                next_report += interval;
                let intervals = take_intervals(&tel, &mut cumulative);
                if log_stats {
                    let ticks = tel.feed.ticks.get();
                    let dt = last_at.elapsed().as_secs_f64().max(1e-9);
                    let e2e = intervals[4];
                    tracing::info!(
                        "stats: {:.0} msg/s, e2e p50 {} p99 {} p99.9 {}, ring max {}/{}/{}, errors {}, ring-full {}, drops {}, reconnects {}, gaps {}",
                        (ticks - last_ticks) as f64 / dt,
                        fmt_ns(e2e.p50),
                        fmt_ns(e2e.p99),
                        fmt_ns(e2e.p999),
                        tel.kernel.in_ring_max.get(),
                        tel.signal.in_ring_max.get(),
                        tel.fanout.in_ring_max.get(),
                        tel.feed.decode_errors.get() + tel.feed.decimal_errors.get(),
                        tel.feed.ring_full.get()
                            + tel.kernel.ring_full.get()
                            + tel.signal.ring_full.get(),
                        tel.feed.drops.get() + tel.kernel.drops.get() + tel.signal.drops.get(),
                        tel.feed.reconnects.get(),
                        tel.feed.gaps.get(),
                    );
                    tel.kernel.in_ring_max.set(0);
                    tel.signal.in_ring_max.set(0);
                    tel.fanout.in_ring_max.set(0);
                    last_ticks = ticks;
                    last_at = Instant::now();
                }
            }
        }
        pipeline.join()?;
        let _ = collect_finished(&done_rx);
        take_intervals(&tel, &mut cumulative);
        let names = ["decode", "kernel", "signal", "fanout", "e2e"];
        Ok(RunSummary {
            elapsed: started.elapsed(),
            frames: tel.feed.frames.get(),
            ticks: tel.feed.ticks.get(),
            errors: tel.feed.decode_errors.get() + tel.feed.decimal_errors.get(),
            fanout_events: tel.fanout.market_events.get() + tel.fanout.signal_events.get(),
            bars: tel.kernel.bars.get(),
            ring_full: tel.feed.ring_full.get()
                + tel.kernel.ring_full.get()
                + tel.signal.ring_full.get(),
            drops: tel.feed.drops.get() + tel.kernel.drops.get() + tel.signal.drops.get(),
            reconnects: tel.feed.reconnects.get(),
            gaps: tel.feed.gaps.get(),
            stages: names
                .iter()
                .zip(cumulative.iter())
                .map(|(n, h)| (*n, Percentiles::of(h)))
                .collect(),
        })
    }
}

/// Takes every stage's interval histogram, adds it to `cumulative`, and
/// returns the interval percentiles (decode, kernel, signal, fanout, e2e).
fn take_intervals(tel: &Telemetry, cumulative: &mut [Histogram<u64>]) -> [Percentiles; 5] {
    let mut out = [Percentiles::default(); 5];
    for (i, st) in tel.stages().iter().enumerate() {
        let h = st.take_interval();
        out[i] = Percentiles::of(&h);
        let _ = cumulative[i].add(&h);
    }
    out
}
