//! Assembles an engine from an [`EngineConfig`]: registry, source, adapter,
//! stages, pipeline, telemetry reporting. `tickwire run` is a thin wrapper
//! around [`Engine::run`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::config::{ConfigError, EngineConfig, SourceKind, window_name};
use crate::fanout::server::{FeedInfo, Server, ServerSetup};
use crate::fanout::{EventSink, FanoutStage};
use crate::feed::FeedStage;
use crate::feed::binance::BinanceAdapter;
use crate::feed::sim::SimSource;
use crate::instruments::InstrumentRegistry;
use crate::json::JsonContext;
use crate::kernel::{IndicatorKernel, KernelSetup};
use crate::pipeline::{Pipeline, Stages, collect_finished};
use crate::signal::SignalStage;
use crate::telemetry::{Percentiles, Telemetry, fmt_ns, new_histogram};

/// Builds the four stages for `cfg` with the given fan-out sinks.
///
/// # Errors
/// Invalid configuration.
pub fn build_stages(
    cfg: &EngineConfig,
    clock: Clock,
    sinks: Vec<Box<dyn EventSink>>,
) -> Result<(Stages, Arc<InstrumentRegistry>), ConfigError> {
    let registry = Arc::new(cfg.registry()?);
    let windows = cfg.window_ns()?;
    let source: Box<dyn crate::feed::FrameSource> = match cfg.feed.source {
        SourceKind::Sim => {
            let prices: Vec<(String, String)> = cfg
                .instruments
                .iter()
                .filter_map(|i| i.sim_price.clone().map(|p| (i.symbol.clone(), p)))
                .collect();
            Box::new(SimSource::new(
                &registry,
                &cfg.feed.venue,
                &prices,
                cfg.feed.sim.clone(),
            ))
        }
    };
    let adapter = Box::new(BinanceAdapter::new(registry.clone(), &cfg.feed.venue));
    let stages = Stages {
        feed: FeedStage::new(source, adapter, clock),
        kernel: IndicatorKernel::new(
            &registry,
            &KernelSetup {
                windows_ns: windows,
            },
        ),
        signal: SignalStage::new(&registry),
        fanout: FanoutStage::new(&registry, sinks).with_bar_history(cfg.server.bar_history),
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
    /// Per-stage percentiles (decode, kernel, signal, fanout, e2e, and
    /// deliver when subscribers were served).
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
    server: ServerOptions,
}

impl Engine {
    /// An engine for `cfg` (validated).
    ///
    /// # Errors
    /// Invalid configuration.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            server: ServerOptions::default(),
        })
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
        registry: &InstrumentRegistry,
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
            ctx: JsonContext::new(registry.clone(), &windows),
            window_names: windows.iter().map(|w| window_name(*w)).collect(),
            tel: tel.clone(),
            clock,
            feeds: vec![FeedInfo {
                name: format!("{:?}", self.cfg.feed.source).to_ascii_lowercase(),
                venue: self.cfg.feed.venue.clone(),
            }],
            ring_capacity: self.cfg.pipeline.ring_capacity.next_power_of_two(),
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
        let clock = Clock::new();
        let (mut stages, registry) =
            build_stages(&self.cfg, clock, sinks).map_err(|e| e.to_string())?;
        let tel = Arc::new(Telemetry::new(registry.len()));
        self.start_server(&mut stages, &registry, &tel, clock)?;
        let started = Instant::now();
        let (pipeline, done_rx) =
            Pipeline::spawn(stages, &self.cfg.pipeline, tel.clone(), clock, stop.clone())
                .map_err(|e| format!("cannot start pipeline threads: {e}"))?;
        tracing::info!(
            instruments = registry.len(),
            source = ?self.cfg.feed.source,
            venue = %self.cfg.feed.venue,
            "tickwire running; Ctrl-C stops"
        );
        let mut cumulative: Vec<Histogram<u64>> =
            tel.stages().iter().map(|_| new_histogram()).collect();
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
                        "stats: {:.0} msg/s, e2e p50 {} p99 {} p99.9 {}, ring max {}/{}/{}, errors {}, ring-full {}, drops {}",
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

/// Takes every stage's interval histogram, adds it to `cumulative`, and
/// returns the interval percentiles (in [`Telemetry::stages`] order).
fn take_intervals(tel: &Telemetry, cumulative: &mut [Histogram<u64>]) -> [Percentiles; 6] {
    let mut out = [Percentiles::default(); 6];
    for (i, st) in tel.stages().iter().enumerate() {
        let h = st.take_interval();
        out[i] = Percentiles::of(&h);
        let _ = cumulative[i].add(&h);
    }
    out
}
