//! Assembles an engine from an [`EngineConfig`]: registry, feeds (sources,
//! adapters, in-process feedsims), stages, pipeline, telemetry reporting. `tickwire run` is a thin wrapper
//! around [`Engine::run`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::config::{ConfigError, EngineConfig, FeedEndpoint, window_name};
use crate::fanout::server::{FeedInfo, Server, ServerSetup};
use crate::fanout::{EventSink, FanoutStage};
use crate::feed::multi::MultiSource;
use crate::feed::sim::SimSource;
use crate::feed::ws::{WsConnSpec, WsSource};
use crate::feed::{AdapterParams, FeedStage, FeedStream, FrameSource, make_adapter};
use crate::feedsim::{FeedSim, FeedSimConfig, Pace, Venue};
use crate::instruments::InstrumentRegistry;
use crate::journal::events::EventJournalSink;
use crate::journal::ticks::TickJournal;
use crate::json::JsonContext;
use crate::kernel::IndicatorKernel;
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
/// keys), and opens (creating or recovering) the tick journal when it is
/// enabled. See [`build_stages_with_secrets`].
///
/// # Errors
/// Invalid configuration, a feed that cannot be set up, or a journal that
/// cannot be opened.
pub fn build_stages(
    cfg: &EngineConfig,
    clock: Clock,
    sinks: Vec<Box<dyn EventSink>>,
) -> Result<(Stages, Arc<InstrumentRegistry>), String> {
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
/// live as long as the feed stage) and opens the tick journal when enabled.
///
/// # Errors
/// Invalid configuration (see [`build_feed`]), or a journal that cannot be
/// opened.
pub fn build_stages_with_secrets(
    cfg: &EngineConfig,
    clock: Clock,
    sinks: Vec<Box<dyn EventSink>>,
    secrets: &FeedSecrets,
) -> Result<(Stages, Arc<InstrumentRegistry>), String> {
    let registry = Arc::new(cfg.registry().map_err(|e| e.to_string())?);
    // Validate the kernel section before touching the journal directory.
    cfg.kernel_setup().map_err(|e| e.to_string())?;
    let journal = if cfg.journal.enabled {
        let (j, rep) = TickJournal::open(&cfg.journal.dir, &cfg.journal, &registry)?;
        if rep.created {
            tracing::info!(dir = %cfg.journal.dir.display(), "journal created");
        } else if rep.is_clean() {
            tracing::info!(dir = %cfg.journal.dir.display(), records = rep.records_kept, next = rep.next_index, "journal reopened");
        } else {
            tracing::warn!(
                dir = %cfg.journal.dir.display(),
                kept = rep.records_kept,
                recovered_uncommitted = rep.recovered_uncommitted,
                committed_lost = rep.committed_lost,
                bytes_cut = rep.bytes_cut,
                first_bad_offset = ?rep.first_bad_offset,
                first_bad_segment = ?rep.first_bad_segment,
                "journal recovered after an unclean stop"
            );
        }
        Some(j)
    } else {
        None
    };
    let mut sinks = sinks;
    if cfg.journal.enabled && cfg.journal.events_enabled {
        let (ej, rep) = EventJournalSink::open(&cfg.journal.events_dir, &cfg.journal, cfg)?;
        if !rep.is_clean() {
            tracing::warn!(dir = %cfg.journal.events_dir.display(), bytes_cut = rep.bytes_cut, "event journal recovered after an unclean stop");
        }
        sinks.push(Box::new(ej));
    }
    let (source, streams) =
        build_feed(cfg, &registry, clock, secrets).map_err(|e| e.to_string())?;
    let feed = FeedStage::with_streams(source, streams, clock);
    let stages = build_stages_with(cfg, &registry, feed, feeds_are_live(cfg), journal, sinks)?;
    Ok((stages, registry))
}

/// Whether every feed's event time follows the wall clock (venue
/// WebSockets, paced simulators), so the kernel may close the bars of quiet
/// symbols on the wall clock. Unpaced simulations run event time far ahead
/// of the wall clock: their bars close by the event-time watermark only,
/// which keeps runs deterministic.
pub fn feeds_are_live(cfg: &EngineConfig) -> bool {
    !cfg.feeds.is_empty()
        && cfg.feeds.iter().all(|f| match f.endpoint() {
            Ok(FeedEndpoint::WebSocket { .. }) => true,
            Ok(FeedEndpoint::Sim | FeedEndpoint::FeedSim { .. }) => f.sim.paced && f.sim.rate > 0.0,
            Err(_) => false,
        })
}

/// Builds the kernel, signal and fan-out stages around a given feed stage
/// and (optional) tick journal — replays pass their own feed and `None`.
/// `live` turns on the kernel's wall-clock timer (see [`feeds_are_live`]);
/// replays pass `false` and stay deterministic.
///
/// # Errors
/// Invalid `kernel.*` or signal configuration.
pub fn build_stages_with(
    cfg: &EngineConfig,
    registry: &Arc<InstrumentRegistry>,
    feed: FeedStage,
    live: bool,
    journal: Option<TickJournal>,
    sinks: Vec<Box<dyn EventSink>>,
) -> Result<Stages, String> {
    let mut setup = cfg.kernel_setup().map_err(|e| e.to_string())?;
    setup.wall_timer = live;
    let mut kernel = IndicatorKernel::new(registry, &setup);
    // Equity sessions (session VWAP, movers) start at the calendar's open.
    let calendars = crate::signal::calendar::Calendars::new(&cfg.calendars, registry, true)?;
    kernel.set_calendars(&calendars);
    Ok(Stages {
        feed,
        journal,
        journal_on_error: cfg.journal.on_error,
        kernel,
        signal: SignalStage::new(cfg, registry).map_err(|e| e.to_string())?,
        fanout: FanoutStage::new(registry, sinks).with_bar_history(cfg.server.bar_history),
    })
}

/// Summary of a finished run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Frames read.
    pub frames: u64,
    /// Ticks decoded.
    pub ticks: u64,
    /// Decode errors (all kinds).
    pub errors: u64,
    /// Ticks appended to the journal.
    pub journal_records: u64,
    /// Journal append failures.
    pub journal_errors: u64,
    /// Ticks consumed by the kernel.
    pub kernel_ticks: u64,
    /// Events consumed by the signal stage.
    pub signal_events: u64,
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
    /// CPU time per thread (feed, kernel, signal, fan-out), ns.
    pub thread_cpu_ns: [u64; 4],
    /// Per-stage percentiles, in [`STAGE_NAMES`] order (`deliver` only
    /// when subscribers were served).
    pub stages: Vec<(&'static str, Percentiles)>,
}

impl RunSummary {
    /// Multi-line human summary.
    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!(
            "tickwire summary: {:.1}s, {} frames, {} ticks ({:.0} ticks/s), {} journaled ({} journal errors), {} events to fan-out, {} bars, {} errors, {} ring-full, {} drops\n",
            secs,
            self.frames,
            self.ticks,
            self.ticks as f64 / secs,
            self.journal_records,
            self.journal_errors,
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
        let cpu: Vec<String> = ["feed", "kernel", "signal", "fanout"]
            .iter()
            .zip(self.thread_cpu_ns)
            .map(|(n, ns)| format!("{n} {:.2}s", ns as f64 / 1e9))
            .collect();
        s.push_str(&format!("  thread CPU: {}\n", cpu.join(", ")));
        s
    }
}

/// Names of the measured stages, in [`Telemetry::stages`] order.
pub const STAGE_NAMES: [&str; N_STAGES] = [
    "decode", "journal", "kernel", "signal", "fanout", "e2e", "deliver",
];

/// Number of measured stages.
pub const N_STAGES: usize = 7;

/// Index of the end-to-end histogram in [`STAGE_NAMES`].
pub const E2E: usize = 5;

/// One interval of measurements handed to a [`RunOptions::observer`].
#[derive(Debug)]
pub struct IntervalSample<'a> {
    /// Interval start, offset from the run's start.
    pub start: Duration,
    /// Interval length.
    pub duration: Duration,
    /// Histograms of this interval, in [`STAGE_NAMES`] order.
    pub stages: Vec<&'a Histogram<u64>>,
    /// Ticks decoded so far (cumulative).
    pub ticks_total: u64,
}

/// Callback receiving each interval's histograms (bench harness: `.hlog`).
pub type IntervalObserver<'o> = Box<dyn FnMut(&IntervalSample<'_>) + 'o>;

/// Options for [`Engine::run_with`].
pub struct RunOptions<'o> {
    /// Fan-out sinks.
    pub sinks: Vec<Box<dyn EventSink>>,
    /// Set to stop ingestion (signal handler, tests).
    pub stop: Arc<AtomicBool>,
    /// Called with every interval's histograms.
    pub observer: Option<IntervalObserver<'o>>,
    /// Sampling interval for the observer (default 1 s).
    pub sample_interval: Duration,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("sinks", &self.sinks.len())
            .field("observer", &self.observer.is_some())
            .field("sample_interval", &self.sample_interval)
            .finish()
    }
}

/// Run-time options of the subscriber server that do not belong in the
/// config file.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Bearer token, read by the caller from the environment variable named
    /// by `server.token_env` (the library reads no environment).
    pub token: Option<String>,
    /// Once listening, write the bound address (`IP:PORT`) to this file
    /// (scripts and tests using port 0).
    pub listen_file: Option<std::path::PathBuf>,
    /// Fail the run when the address cannot be bound (`run --listen`);
    /// otherwise the engine logs an error and runs without the server.
    pub required: bool,
}

/// A configured engine, ready to run.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    secrets: FeedSecrets,
    server: ServerOptions,
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
        Ok(Self {
            cfg,
            secrets,
            server: ServerOptions::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Sets the server's run-time options (token, listen file, required).
    pub fn with_server_options(mut self, opts: ServerOptions) -> Self {
        self.server = opts;
        self
    }

    /// Binds the server (when `[server] enabled`) and attaches it to the
    /// fan-out stage. Logs `listening on ADDR`.
    fn start_server(
        &self,
        stages: &mut Stages,
        tel: &Arc<Telemetry>,
        clock: Clock,
    ) -> Result<(), String> {
        let scfg = &self.cfg.server;
        if !scfg.enabled {
            return Ok(());
        }
        let addr = scfg.listen_addr().map_err(|e| e.to_string())?;
        let windows = self.cfg.window_ns().map_err(|e| e.to_string())?;
        let setup = ServerSetup {
            cfg: scfg.clone(),
            addr,
            token: self.server.token.clone(),
            ctx: JsonContext::for_config(&self.cfg).map_err(|e| e.to_string())?,
            window_names: windows.iter().map(|w| window_name(*w)).collect(),
            tel: tel.clone(),
            clock,
            feeds: self
                .cfg
                .feeds
                .iter()
                .map(|f| FeedInfo {
                    name: f.name.clone(),
                    venue: f.venue.clone(),
                })
                .collect(),
            ring_capacity: self.cfg.pipeline.ring_capacity.next_power_of_two(),
            journal_dir: self
                .cfg
                .journal
                .enabled
                .then(|| self.cfg.journal.dir.clone()),
        };
        match Server::bind(setup) {
            Ok(srv) => {
                let a = srv.local_addr();
                tracing::info!(
                    auth = self.server.token.is_some(),
                    "listening on {a} (subscribers ws://{a}/ws; http://{a}/health, /metrics, /api/v1/status)"
                );
                if let Some(p) = &self.server.listen_file {
                    let tmp = p.with_extension("tmp");
                    std::fs::write(&tmp, format!("{a}\n"))
                        .and_then(|()| std::fs::rename(&tmp, p))
                        .map_err(|e| {
                            format!("cannot write the listen address to {}: {e}", p.display())
                        })?;
                }
                stages.fanout.attach_server(srv);
                Ok(())
            }
            Err(e) if self.server.required => Err(e.to_string()),
            Err(e) => {
                tracing::error!("{e}; running without the subscriber server");
                Ok(())
            }
        }
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
        self.run_with(RunOptions {
            sinks,
            stop,
            observer: None,
            sample_interval: Duration::from_secs(1),
        })
    }

    /// [`run`](Self::run) with an interval observer.
    ///
    /// # Errors
    /// Thread spawn failure or a panicked stage thread.
    pub fn run_with(&self, opts: RunOptions<'_>) -> Result<RunSummary, String> {
        let RunOptions {
            sinks,
            stop,
            mut observer,
            sample_interval,
        } = opts;
        let clock = Clock::new();
        let (mut stages, registry) =
            build_stages_with_secrets(&self.cfg, clock, sinks, &self.secrets)?;
        let tel = Arc::new(Telemetry::new(registry.len()));
        self.start_server(&mut stages, &tel, clock)?;
        let started = Instant::now();
        let (pipeline, done_rx) = Pipeline::spawn(
            stages,
            &self.cfg.pipeline,
            tel.clone(),
            clock,
            stop.clone(),
            &self.cfg.faults,
        )
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
        let mut cumulative: Vec<Histogram<u64>> = (0..N_STAGES).map(|_| new_histogram()).collect();
        let mut since_log: Vec<Histogram<u64>> = (0..N_STAGES).map(|_| new_histogram()).collect();
        let log_every = Duration::from_secs(self.cfg.telemetry.stats_interval_secs.max(1));
        let log_stats = self.cfg.telemetry.stats_interval_secs > 0;
        let sample_every = if observer.is_some() {
            sample_interval.max(Duration::from_millis(10))
        } else {
            log_every
        };
        let deadline = (self.cfg.engine.duration_secs > 0)
            .then(|| started + Duration::from_secs(self.cfg.engine.duration_secs));
        let mut next_sample = started + sample_every;
        let mut next_log = started + log_every;
        let mut last_sample = started;
        let mut last_ticks = 0u64;
        let mut last_log = started;
        loop {
            std::thread::sleep(Duration::from_millis(5));
            let finished = pipeline.is_finished();
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                stop.store(true, Ordering::Relaxed);
            }
            if finished || now >= next_sample {
                next_sample += sample_every;
                let interval: Vec<Histogram<u64>> =
                    tel.stages().iter().map(|st| st.take_interval()).collect();
                for i in 0..N_STAGES {
                    let _ = cumulative[i].add(&interval[i]);
                    let _ = since_log[i].add(&interval[i]);
                }
                if let Some(obs) = observer.as_mut() {
                    obs(&IntervalSample {
                        start: last_sample - started,
                        duration: now - last_sample,
                        stages: interval.iter().collect(),
                        ticks_total: tel.feed.ticks.get(),
                    });
                }
                last_sample = now;
            }
            if log_stats && now >= next_log {
                next_log += log_every;
                let ticks = tel.feed.ticks.get();
                let dt = last_log.elapsed().as_secs_f64().max(1e-9);
                let e2e = Percentiles::of(&since_log[E2E]);
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
                for h in &mut since_log {
                    h.reset();
                }
                tel.kernel.in_ring_max.set(0);
                tel.signal.in_ring_max.set(0);
                tel.fanout.in_ring_max.set(0);
                last_ticks = ticks;
                last_log = Instant::now();
            }
            if finished {
                break;
            }
        }
        pipeline.join()?;
        let _ = collect_finished(&done_rx);
        // Anything published after the last sample (threads flush on exit)
        // becomes a final interval, so observers see every sample.
        let tail: Vec<Histogram<u64>> = tel.stages().iter().map(|st| st.take_interval()).collect();
        if tail.iter().any(|h| !h.is_empty()) {
            for i in 0..N_STAGES {
                let _ = cumulative[i].add(&tail[i]);
            }
            if let Some(obs) = observer.as_mut() {
                obs(&IntervalSample {
                    start: last_sample - started,
                    duration: Instant::now() - last_sample,
                    stages: tail.iter().collect(),
                    ticks_total: tel.feed.ticks.get(),
                });
            }
        }
        Ok(RunSummary {
            elapsed: started.elapsed(),
            frames: tel.feed.frames.get(),
            ticks: tel.feed.ticks.get(),
            errors: tel.feed.decode_errors.get() + tel.feed.decimal_errors.get(),
            journal_records: tel.feed.journal_records.get(),
            journal_errors: tel.feed.journal_errors.get(),
            kernel_ticks: tel.kernel.ticks.get(),
            signal_events: tel.signal.events.get(),
            fanout_events: tel.fanout.market_events.get() + tel.fanout.signal_events.get(),
            bars: tel.kernel.bars.get(),
            ring_full: tel.feed.ring_full.get()
                + tel.kernel.ring_full.get()
                + tel.signal.ring_full.get(),
            drops: tel.feed.drops.get() + tel.kernel.drops.get() + tel.signal.drops.get(),
            reconnects: tel.feed.reconnects.get(),
            gaps: tel.feed.gaps.get(),
            thread_cpu_ns: [0, 1, 2, 3].map(|i| tel.thread_cpu_ns[i].get()),
            stages: tel
                .stages()
                .iter()
                .zip(cumulative.iter())
                // `deliver` only means something when subscribers were served.
                .filter(|(st, h)| st.name != "deliver" || !h.is_empty())
                .map(|(st, h)| (st.name, Percentiles::of(h)))
                .collect(),
        })
    }
}
