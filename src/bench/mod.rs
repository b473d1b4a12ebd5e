//! The bench harness behind `tickwire bench`.
//!
//! Drives the full pipeline (the same threads, rings and stages as
//! `tickwire run`) from a source and writes, into an output directory:
//! - `latency.hlog`: HdrHistogram interval log (V2 compressed histograms,
//!   one per stage per interval, tagged `decode`, `kernel`, `signal`,
//!   `fanout`, `e2e`) — the standard format HdrHistogram tools read;
//! - `summary.json`: machine facts, config, source, offered and achieved
//!   rates, ring-full events, drops, CPU time per thread, and percentiles
//!   p50/p90/p99/p99.9/p99.99/max per stage.
//!
//! Modes:
//! - **throughput**: the simulator unpaced, as fast as the pipeline takes it,
//!   for N messages or T seconds;
//! - **latency**: messages released on a fixed schedule at an offered rate
//!   (Poisson arrivals), each stamped with its *scheduled* time, so
//!   end-to-end latency counts from when a message was due: a stall anywhere
//!   (including the feed thread itself) shows up instead of being hidden by
//!   coordinated omission.
//!
//! A sweep runs a list of rates, one output subdirectory per rate.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use serde::{Deserialize, Serialize};

use crate::config::{EngineConfig, InstrumentConfig, WaitKind};
use crate::engine::{Engine, IntervalSample, RunOptions, RunSummary, STAGE_NAMES};
use crate::telemetry::Percentiles;

/// Throughput or latency-at-rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchMode {
    /// As fast as possible.
    Throughput,
    /// Fixed offered rate, scheduled timestamps.
    Latency,
}

/// What one bench run does.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Mode.
    pub mode: BenchMode,
    /// Offered rate, msgs/s (latency mode).
    pub rate: f64,
    /// Stop after this many messages (0 = use `seconds`).
    pub messages: u64,
    /// Stop after this many seconds (0 = use `messages`).
    pub seconds: u64,
    /// Number of simulated symbols (0 = those in the config).
    pub symbols: usize,
    /// Wait strategy for every pipeline thread (None = config's).
    pub wait: Option<WaitKind>,
    /// Pin threads (false = leave every thread unpinned).
    pub pin: bool,
    /// Ring capacity (None = config's).
    pub ring_capacity: Option<usize>,
    /// Histogram interval for the `.hlog`.
    pub interval: Duration,
    /// Output directory.
    pub out: PathBuf,
    /// Show a progress bar (terminal only).
    pub progress: bool,
    /// Keep the run's journal (`<out>/journal`) instead of deleting it.
    pub keep_journal: bool,
}

/// Facts about the machine, recorded in every summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// tickwire version.
    pub tickwire_version: String,
}

impl Machine {
    /// Reads the facts of this machine.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            tickwire_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Percentiles of one stage, as written in `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageSummary {
    /// Stage name.
    pub stage: String,
    /// Percentiles, ns.
    pub latency_ns: Percentiles,
    /// Events through the stage per second of run time.
    pub rate_per_s: f64,
}

/// The `summary.json` of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchSummary {
    /// Unix time the run started, ns.
    pub started_unix_ns: i64,
    /// Machine facts.
    pub machine: Machine,
    /// Mode.
    pub mode: BenchMode,
    /// Source description.
    pub source: String,
    /// Offered rate (latency mode), msgs/s; 0 for throughput.
    pub offered_rate: f64,
    /// Ticks decoded.
    pub messages: u64,
    /// Run time, s.
    pub elapsed_s: f64,
    /// Ticks decoded per second.
    pub achieved_rate: f64,
    /// Ring-full events.
    pub ring_full: u64,
    /// Drops.
    pub drops: u64,
    /// Decode errors.
    pub errors: u64,
    /// CPU seconds per thread.
    pub thread_cpu_s: std::collections::BTreeMap<String, f64>,
    /// Per stage.
    pub stages: Vec<StageSummary>,
    /// The engine configuration used.
    pub config: serde_json::Value,
}

/// Builds the engine config a spec asks for, from a base config.
///
/// # Errors
/// The resulting config is invalid.
pub fn bench_config(base: &EngineConfig, spec: &BenchSpec) -> Result<EngineConfig, String> {
    let mut cfg = base.clone();
    cfg.telemetry.stats_interval_secs = 0;
    cfg.engine.duration_secs = spec.seconds;
    // The bench drives the in-process simulator (sim://, no sockets): one
    // feed, receive times stampable at the scheduled release time.
    cfg.feeds.truncate(1);
    let feed = cfg
        .feeds
        .first_mut()
        .ok_or("the config has no [[feeds]] entry")?;
    feed.url = "sim://".into();
    let sim = &mut feed.sim;
    sim.messages = spec.messages;
    match spec.mode {
        BenchMode::Throughput => {
            sim.rate = 0.0;
            sim.paced = false;
            sim.stamp_scheduled = false;
        }
        BenchMode::Latency => {
            if spec.rate <= 0.0 {
                return Err("latency mode needs --rate > 0 (msgs/s)".into());
            }
            sim.rate = spec.rate;
            sim.paced = true;
            sim.stamp_scheduled = true;
        }
    }
    if spec.symbols > 0 {
        let venue = cfg.feeds[0].venue.clone();
        cfg.feeds[0].symbols = None;
        cfg.instruments = (0..spec.symbols)
            .map(|i| InstrumentConfig {
                symbol: format!("{venue}:SYM{i:04}USDT"),
                price_precision: 2,
                size_precision: 5,
                sector: Some(format!("sector-{}", i % 4)),
                sim_price: Some(format!("{}.00", 100 + 37 * i)),
            })
            .collect();
    }
    if let Some(w) = spec.wait {
        for t in [
            &mut cfg.pipeline.threads.feed,
            &mut cfg.pipeline.threads.kernel,
            &mut cfg.pipeline.threads.signal,
            &mut cfg.pipeline.threads.fanout,
        ] {
            t.wait = w;
        }
    }
    if !spec.pin {
        for t in [
            &mut cfg.pipeline.threads.feed,
            &mut cfg.pipeline.threads.kernel,
            &mut cfg.pipeline.threads.signal,
            &mut cfg.pipeline.threads.fanout,
        ] {
            t.core = None;
        }
    }
    if let Some(r) = spec.ring_capacity {
        cfg.pipeline.ring_capacity = r;
    }
    if cfg.journal.enabled {
        // Journal into the output directory; removed after the run unless
        // the caller keeps it (see `run_bench`).
        cfg.journal.dir = spec.out.join("journal");
        cfg.journal.events_dir = spec.out.join("journal").join("events");
    }
    if spec.messages == 0 && spec.seconds == 0 {
        return Err("give --messages N or --seconds T".into());
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Runs one bench and writes `summary.json` and `latency.hlog` into
/// `spec.out`. Returns the summary.
///
/// # Errors
/// I/O errors on the output directory, config errors, pipeline failure.
pub fn run_bench(base: &EngineConfig, spec: &BenchSpec) -> Result<BenchSummary, String> {
    let cfg = bench_config(base, spec)?;
    if cfg.journal.enabled && cfg.journal.dir.join("meta.json").exists() {
        // A previous run's journal in the same output directory.
        let _ = std::fs::remove_dir_all(&cfg.journal.dir);
    }
    std::fs::create_dir_all(&spec.out)
        .map_err(|e| format!("cannot create {}: {e}", spec.out.display()))?;
    let hlog_path = spec.out.join("latency.hlog");
    let file = File::create(&hlog_path)
        .map_err(|e| format!("cannot write {}: {e}", hlog_path.display()))?;
    let mut out = BufWriter::new(file);
    let start_time = SystemTime::now();
    let started_unix_ns = crate::clock::wall_now_ns();
    let mut serializer = V2DeflateSerializer::new();
    let mut write_err: Option<String> = None;
    let progress = progress_bar(spec);
    let summary: RunSummary = {
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "tickwire bench {:?} rate={} (latencies in ns)",
                spec.mode, spec.rate
            ))
            .with_start_time(start_time)
            .with_base_time(start_time)
            .with_max_value_divisor(1.0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| format!("writing {}: {e}", hlog_path.display()))?;
        let engine = Engine::new(cfg.clone()).map_err(|e| e.to_string())?;
        let target = spec.messages;
        let pb = progress.clone();
        let observer = Box::new(|s: &IntervalSample<'_>| {
            for (name, h) in STAGE_NAMES.iter().zip(s.stages.iter()) {
                if h.is_empty() {
                    continue;
                }
                if let Err(e) = writer.write_histogram(h, s.start, s.duration, Tag::new(name)) {
                    write_err.get_or_insert(format!("writing {}: {e:?}", hlog_path.display()));
                }
            }
            if let Some(pb) = &pb {
                if target > 0 {
                    pb.set_position(s.ticks_total);
                } else {
                    pb.set_position(s.start.as_secs() + s.duration.as_secs());
                }
            }
        });
        engine.run_with(RunOptions {
            sinks: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            observer: Some(observer),
            sample_interval: spec.interval,
        })?
    };
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if cfg.journal.enabled && !spec.keep_journal {
        let _ = std::fs::remove_dir_all(&cfg.journal.dir);
    }
    out.flush()
        .map_err(|e| format!("writing {}: {e}", hlog_path.display()))?;
    if let Some(e) = write_err {
        return Err(e);
    }
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let counts = [
        summary.frames,
        summary.journal_records,
        summary.kernel_ticks,
        summary.signal_events,
        summary.fanout_events,
        summary.fanout_events,
    ];
    let bench = BenchSummary {
        started_unix_ns,
        machine: Machine::detect(),
        mode: spec.mode,
        source: format!(
            "sim (Binance wire format, {} symbols, seed {})",
            cfg.instruments.len(),
            cfg.feeds.first().map_or(0, |f| f.sim.seed)
        ),
        offered_rate: if spec.mode == BenchMode::Latency {
            spec.rate
        } else {
            0.0
        },
        messages: summary.ticks,
        elapsed_s: secs,
        achieved_rate: summary.ticks as f64 / secs,
        ring_full: summary.ring_full,
        drops: summary.drops,
        errors: summary.errors,
        thread_cpu_s: ["feed", "kernel", "signal", "fanout"]
            .iter()
            .zip(summary.thread_cpu_ns)
            .map(|(n, ns)| (n.to_string(), ns as f64 / 1e9))
            .collect(),
        stages: summary
            .stages
            .iter()
            .zip(counts)
            .map(|((name, p), n)| StageSummary {
                stage: name.to_string(),
                latency_ns: *p,
                rate_per_s: n as f64 / secs,
            })
            .collect(),
        config: serde_json::to_value(&cfg).unwrap_or(serde_json::Value::Null),
    };
    let path = spec.out.join("summary.json");
    let text = serde_json::to_string_pretty(&bench).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(bench)
}

fn progress_bar(spec: &BenchSpec) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !spec.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let (len, unit) = if spec.messages > 0 {
        (spec.messages, "msgs")
    } else {
        (spec.seconds, "s")
    };
    let pb = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} {{bar:40}} {{pos}}/{{len}} {unit} ({{elapsed}})"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    Some(pb)
}

/// Reads a `summary.json`.
///
/// # Errors
/// Missing or malformed file.
pub fn read_summary(dir: &Path) -> Result<BenchSummary, String> {
    let p = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

/// Parses a rate such as `100000`, `100k`, `1.5M`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1e3),
        Some('m' | 'M') => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("rate '{s}' must be a number, optionally with k or M (e.g. 100k)"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("rate '{s}' must be positive"));
    }
    Ok(v * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("10k"), Ok(10_000.0));
        assert_eq!(parse_rate("1M"), Ok(1_000_000.0));
        assert_eq!(parse_rate("2500"), Ok(2500.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-5").is_err());
    }

    #[test]
    fn config_for_modes() {
        let base = EngineConfig::default();
        let mut spec = BenchSpec {
            mode: BenchMode::Latency,
            rate: 0.0,
            messages: 0,
            seconds: 1,
            symbols: 10,
            wait: Some(WaitKind::Yield),
            pin: false,
            ring_capacity: Some(1024),
            interval: Duration::from_secs(1),
            out: PathBuf::from("/tmp/x"),
            progress: false,
            keep_journal: false,
        };
        assert!(bench_config(&base, &spec).unwrap_err().contains("--rate"));
        spec.rate = 5000.0;
        let c = bench_config(&base, &spec).unwrap();
        assert!(c.feeds[0].sim.paced && c.feeds[0].sim.stamp_scheduled);
        assert_eq!(c.feeds[0].url, "sim://");
        assert_eq!(c.instruments.len(), 10);
        assert_eq!(c.pipeline.threads.kernel.core, None);
        assert_eq!(c.pipeline.threads.kernel.wait, WaitKind::Yield);
        assert_eq!(c.pipeline.ring_capacity, 1024);
        spec.mode = BenchMode::Throughput;
        let c = bench_config(&base, &spec).unwrap();
        assert!(!c.feeds[0].sim.paced);
        spec.seconds = 0;
        assert!(bench_config(&base, &spec).is_err());
    }
}
