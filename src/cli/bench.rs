//! `tickwire bench` and `tickwire report`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};

use tickwire::bench::{BenchMode, BenchSpec, parse_rate, run_bench};
use tickwire::config::WaitKind;
use tickwire::telemetry::fmt_ns;

use super::{CommonArgs, load_config};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// As fast as possible for N messages or T seconds.
    Throughput,
    /// Fixed offered rate; latency measured from each message's scheduled time.
    Latency,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WaitArg {
    /// Busy-spin.
    Spin,
    /// Yield between polls.
    Yield,
    /// Spin, yield, then park.
    Backoff,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Throughput or latency at an offered rate.
    #[arg(long, value_enum, default_value = "throughput")]
    pub mode: ModeArg,
    /// Offered rate for latency mode (e.g. 10k, 100k, 1M).
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Sweep: comma list of rates; one output subdirectory per rate
    /// (implies --mode latency).
    #[arg(long, value_delimiter = ',', value_name = "RATES")]
    pub rates: Option<Vec<String>>,
    /// Stop after N messages (throughput default: 2,000,000).
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,
    /// Stop after T seconds (latency default: 10).
    #[arg(long, value_name = "SECS")]
    pub seconds: Option<u64>,
    /// Number of simulated symbols SIM:SYM0000USDT... (default: the
    /// config's instruments).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub num_symbols: usize,
    /// Wait strategy for every pipeline thread (default: the config's).
    #[arg(long, value_enum)]
    pub wait: Option<WaitArg>,
    /// Leave every thread unpinned.
    #[arg(long)]
    pub no_pin: bool,
    /// Ring capacity (slots).
    #[arg(long, value_name = "SLOTS")]
    pub ring: Option<usize>,
    /// Interval of the histograms in the .hlog, ms.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub interval_ms: u64,
    /// Keep the run's tick journal (<out>/journal) instead of deleting it.
    #[arg(long)]
    pub keep_journal: bool,
    /// Output directory (created).
    #[arg(long, short = 'o', value_name = "DIR", default_value = "bench-out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Bench output directories (or sweep directories, or .hlog files).
    /// Two inputs add a side-by-side comparison (B/A ratio per percentile).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Report directory (report.md, report.html, *.svg).
    #[arg(long, short = 'o', value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
}

pub fn cmd_bench(a: BenchArgs) -> Result<i32> {
    let cfg = load_config(&a.common)?;
    super::init_tracing(&cfg.engine.log_level);
    let (mode, rates): (BenchMode, Vec<f64>) = match (&a.rates, a.mode) {
        (Some(list), _) => (
            BenchMode::Latency,
            list.iter()
                .map(|r| parse_rate(r))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
        ),
        (None, ModeArg::Latency) => {
            let Some(r) = &a.rate else {
                bail!("--mode latency needs --rate (e.g. --rate 100k) or --rates 10k,100k,1M");
            };
            (
                BenchMode::Latency,
                vec![parse_rate(r).map_err(anyhow::Error::msg)?],
            )
        }
        (None, ModeArg::Throughput) => (BenchMode::Throughput, vec![0.0]),
    };
    let (messages, seconds) = match (a.messages, a.seconds, mode) {
        (Some(m), s, _) => (m, s.unwrap_or(0)),
        (None, Some(s), _) => (0, s),
        (None, None, BenchMode::Throughput) => (2_000_000, 0),
        (None, None, BenchMode::Latency) => (0, 10),
    };
    let sweep = rates.len() > 1;
    for rate in rates {
        let out = if sweep {
            a.out.join(format!("rate-{:09.0}", rate))
        } else {
            a.out.clone()
        };
        let spec = BenchSpec {
            mode,
            rate,
            messages,
            seconds,
            symbols: a.num_symbols,
            wait: a.wait.map(|w| match w {
                WaitArg::Spin => WaitKind::Spin,
                WaitArg::Yield => WaitKind::Yield,
                WaitArg::Backoff => WaitKind::Backoff,
            }),
            pin: !a.no_pin,
            ring_capacity: a.ring,
            interval: Duration::from_millis(a.interval_ms.max(10)),
            out: out.clone(),
            progress: true,
            keep_journal: a.keep_journal,
        };
        let s = run_bench(&cfg, &spec).map_err(anyhow::Error::msg)?;
        let e2e = s.stages.iter().find(|x| x.stage == "e2e");
        eprintln!(
            "{:?} offered {:.0} msg/s: {} msgs in {:.2}s = {:.0} msg/s, ring-full {}, drops {}; e2e p50 {} p99 {} p99.9 {} max {} → {}",
            s.mode,
            s.offered_rate,
            s.messages,
            s.elapsed_s,
            s.achieved_rate,
            s.ring_full,
            s.drops,
            e2e.map_or("-".into(), |x| fmt_ns(x.latency_ns.p50)),
            e2e.map_or("-".into(), |x| fmt_ns(x.latency_ns.p99)),
            e2e.map_or("-".into(), |x| fmt_ns(x.latency_ns.p999)),
            e2e.map_or("-".into(), |x| fmt_ns(x.latency_ns.max)),
            out.display()
        );
    }
    Ok(0)
}

pub fn cmd_report(a: ReportArgs) -> Result<i32> {
    let runs = tickwire::report::write_report(&a.inputs, &a.out).map_err(anyhow::Error::msg)?;
    eprintln!(
        "report for {} run(s) written to {} (report.md, report.html, percentiles.svg, latency_over_time.svg, throughput.svg)",
        runs.len(),
        a.out.display()
    );
    Ok(0)
}
