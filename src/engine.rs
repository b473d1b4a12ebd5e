//! Assembles an engine from an [`EngineConfig`]: registry, source, adapter,
//! stages, pipeline, telemetry reporting. `tickwire run` is a thin wrapper
//! around [`Engine::run`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::config::{ConfigError, EngineConfig, SourceKind};
use crate::fanout::{EventSink, FanoutStage};
use crate::feed::FeedStage;
use crate::feed::binance::BinanceAdapter;
use crate::feed::sim::SimSource;
use crate::instruments::InstrumentRegistry;
use crate::kernel::IndicatorKernel;
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
    let (source, live): (Box<dyn crate::feed::FrameSource>, bool) = match cfg.feed.source {
        SourceKind::Sim => {
            let prices: Vec<(String, String)> = cfg
                .instruments
                .iter()
                .filter_map(|i| i.sim_price.clone().map(|p| (i.symbol.clone(), p)))
                .collect();
            (
                Box::new(SimSource::new(
                    &registry,
                    &cfg.feed.venue,
                    &prices,
                    cfg.feed.sim.clone(),
                )),
                // Unpaced simulation runs event time far ahead of the wall
                // clock: its bars close by the event-time watermark only,
                // which keeps runs deterministic.
                cfg.feed.sim.paced,
            )
        }
    };
    let adapter = Box::new(BinanceAdapter::new(registry.clone(), &cfg.feed.venue));
    let stages = build_stages_with(cfg, &registry, clock, source, adapter, live, sinks)?;
    Ok((stages, registry))
}

/// Builds the stages around a given source and adapter (replays, tests).
/// `live` turns on the kernel's wall-clock timer (bars of quiet symbols
/// close on the wall clock); replays pass `false` and stay deterministic.
///
/// # Errors
/// Invalid `kernel.*` configuration.
pub fn build_stages_with(
    cfg: &EngineConfig,
    registry: &Arc<InstrumentRegistry>,
    clock: Clock,
    source: Box<dyn crate::feed::FrameSource>,
    adapter: Box<dyn crate::feed::Adapter>,
    live: bool,
    sinks: Vec<Box<dyn EventSink>>,
) -> Result<Stages, ConfigError> {
    let mut setup = cfg.kernel_setup()?;
    setup.wall_timer = live;
    Ok(Stages {
        feed: FeedStage::new(source, adapter, clock),
        kernel: IndicatorKernel::new(registry, &setup),
        signal: SignalStage::new(registry),
        fanout: FanoutStage::new(registry, sinks),
    })
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
}

impl Engine {
    /// An engine for `cfg` (validated).
    ///
    /// # Errors
    /// Invalid configuration.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self { cfg })
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
        let (stages, registry) =
            build_stages(&self.cfg, clock, sinks).map_err(|e| e.to_string())?;
        let tel = Arc::new(Telemetry::new(registry.len()));
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
