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
use crate::journal::ticks::TickJournal;
use crate::kernel::IndicatorKernel;
use crate::pipeline::{Pipeline, Stages, collect_finished};
use crate::signal::SignalStage;
use crate::telemetry::{Percentiles, Telemetry, fmt_ns, new_histogram};

/// Builds the four stages for `cfg` with the given fan-out sinks, and opens
/// (creating or recovering) the tick journal when it is enabled.
///
/// # Errors
/// Invalid configuration, or a journal that cannot be opened.
pub fn build_stages(
    cfg: &EngineConfig,
    clock: Clock,
    sinks: Vec<Box<dyn EventSink>>,
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
    let stages = build_stages_with(cfg, &registry, clock, source, adapter, live, journal, sinks)
        .map_err(|e| e.to_string())?;
    Ok((stages, registry))
}

/// Builds the stages around a given source, adapter and (optional) tick
/// journal — replays pass `None`. `live` turns on the kernel's wall-clock
/// timer (bars of quiet symbols close on the wall clock); replays pass
/// `false` and stay deterministic.
///
/// # Errors
/// Invalid `kernel.*` configuration.
#[allow(clippy::too_many_arguments)]
pub fn build_stages_with(
    cfg: &EngineConfig,
    registry: &Arc<InstrumentRegistry>,
    clock: Clock,
    source: Box<dyn crate::feed::FrameSource>,
    adapter: Box<dyn crate::feed::Adapter>,
    live: bool,
    journal: Option<TickJournal>,
    sinks: Vec<Box<dyn EventSink>>,
) -> Result<Stages, ConfigError> {
    let mut setup = cfg.kernel_setup()?;
    setup.wall_timer = live;
    Ok(Stages {
        feed: FeedStage::new(source, adapter, clock),
        journal,
        journal_on_error: cfg.journal.on_error,
        kernel: IndicatorKernel::new(registry, &setup),
        signal: SignalStage::new(registry),
        fanout: FanoutStage::new(registry, sinks),
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
    /// CPU time per thread (feed, kernel, signal, fan-out), ns.
    pub thread_cpu_ns: [u64; 4],
    /// Per-stage percentiles, in [`STAGE_NAMES`] order.
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
pub const STAGE_NAMES: [&str; N_STAGES] =
    ["decode", "journal", "kernel", "signal", "fanout", "e2e"];

/// Number of measured stages.
pub const N_STAGES: usize = 6;

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

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
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
        let (stages, registry) = build_stages(&self.cfg, clock, sinks)?;
        let tel = Arc::new(Telemetry::new(registry.len()));
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
            source = ?self.cfg.feed.source,
            venue = %self.cfg.feed.venue,
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
            thread_cpu_ns: [0, 1, 2, 3].map(|i| tel.thread_cpu_ns[i].get()),
            stages: STAGE_NAMES
                .iter()
                .zip(cumulative.iter())
                .map(|(n, h)| (*n, Percentiles::of(h)))
                .collect(),
        })
    }
}
