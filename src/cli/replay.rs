//! `tickwire replay`: a recorded capture through the stages, single-threaded
//! and deterministic, events to stdout as JSON lines.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use clap::Args;

use tickwire::clock::Clock;
use tickwire::config::{EngineConfig, InstrumentConfig};
use tickwire::engine::build_stages_with;
use tickwire::fanout::{DUMP_ITEMS, DumpFilter, EventSink, JsonLinesSink};
use tickwire::feed::binance::BinanceAdapter;
use tickwire::feed::{Adapter, FrameSource};
use tickwire::json::JsonContext;
use tickwire::kernel::replay_input::{
    CaptureFormat, HftbacktestSource, ReaderStats, TardisTradeAdapter, TardisTradesSource,
    scan_symbols,
};
use tickwire::pipeline::run_inline_with;
use tickwire::telemetry::Telemetry;

/// Arguments of `tickwire replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture file: hftbacktest collector gz (Binance frames) or Tardis
    /// trades CSV. (The journal and the cryptofeed captures come with the
    /// feed capture readers.)
    input: PathBuf,
    /// Formats, comma-separated or repeated: the input format (hftbacktest
    /// or tardis-csv; default from the file name: .gz → hftbacktest, .csv →
    /// tardis-csv) and/or the output format (jsonl, the only one: one JSON
    /// object per line).
    #[arg(long, value_name = "FORMAT", value_delimiter = ',')]
    format: Vec<String>,
    /// Venue the capture's symbols belong to (instrument names VENUE:SYMBOL).
    /// Default: BINANCE for hftbacktest, the CSV's exchange for Tardis.
    #[arg(long, value_name = "VENUE")]
    venue: Option<String>,
    /// What to write, comma-separated: trades, quotes, book, bars,
    /// indicators, anomalies, movers, sectors, indices, feed_status,
    /// provisional, all.
    #[arg(
        long,
        value_name = "ITEMS",
        default_value = "bars,indicators,anomalies,movers"
    )]
    dump: String,
    /// Bar windows for this run, overriding the config (e.g. 1s,1m,4h).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    windows: Option<Vec<String>>,
    /// Config file (TOML) for kernel settings and instrument precisions.
    /// Symbols in the capture that the config does not list are added with
    /// precision 8/8.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// At the end of the input, finalize the bars still open (their windows
    /// never ended in event time, so by default they are not emitted).
    #[arg(long)]
    flush: bool,
    /// Log filter for stderr (error, warn, info, ...).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    log_level: String,
}

/// Runs the replay; returns the exit code.
pub fn cmd_replay(a: ReplayArgs) -> Result<i32> {
    super::init_tracing(&a.log_level);
    let filter = DumpFilter::parse(&a.dump)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--dump accepts: {DUMP_ITEMS}"))?;
    let mut input_format = None;
    for f in a.format.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
        if f == "jsonl" || f == "json" {
            continue;
        }
        if input_format.is_some() {
            bail!("--format: give one input format (hftbacktest or tardis-csv) and/or jsonl");
        }
        input_format = Some(CaptureFormat::parse(f).map_err(anyhow::Error::msg)?);
    }
    let format = match input_format {
        Some(f) => f,
        None => CaptureFormat::detect(&a.input).with_context(|| {
            format!(
                "cannot tell the format of {} from its name; pass --format hftbacktest or --format tardis-csv",
                a.input.display()
            )
        })?,
    };
    if !a.input.is_file() {
        bail!(
            "input {} does not exist or is not a file",
            a.input.display()
        );
    }
    let mut cfg = match &a.config {
        Some(p) => EngineConfig::load(p)?,
        None => {
            let mut c = EngineConfig::default();
            c.instruments.clear();
            c
        }
    };
    if let Some(w) = &a.windows {
        cfg.kernel.windows = w.clone();
    }
    let scan = scan_symbols(&a.input, format).map_err(anyhow::Error::msg)?;
    if scan.symbols.is_empty() {
        bail!(
            "{} holds no symbols this reader understands",
            a.input.display()
        );
    }
    let venue = a
        .venue
        .clone()
        .or(scan.venue.clone())
        .unwrap_or_else(|| format.default_venue().to_string())
        .to_ascii_uppercase();
    for sym in &scan.symbols {
        let key = format!("{venue}:{sym}");
        if !cfg
            .instruments
            .iter()
            .any(|i| i.symbol.eq_ignore_ascii_case(&key))
        {
            cfg.instruments.push(InstrumentConfig {
                symbol: key,
                price_precision: 8,
                size_precision: 8,
                sector: None,
                sim_price: None,
            });
        }
    }
    cfg.feed.venue = venue.clone();
    cfg.validate()?;
    let registry = Arc::new(cfg.registry()?);
    let setup = cfg.kernel_setup()?;
    let ctx = JsonContext::for_kernel((*registry).clone(), &setup);
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let sinks: Vec<Box<dyn EventSink>> = vec![Box::new(JsonLinesSink::new(ctx, filter, out))];
    let stats = Arc::new(ReaderStats::default());
    let (source, adapter): (Box<dyn FrameSource>, Box<dyn Adapter>) = match format {
        CaptureFormat::Hftbacktest => (
            Box::new(
                HftbacktestSource::open(&a.input, stats.clone())
                    .with_context(|| format!("opening {}", a.input.display()))?,
            ),
            Box::new(BinanceAdapter::new(registry.clone(), &venue)),
        ),
        CaptureFormat::TardisCsv => (
            Box::new(
                TardisTradesSource::open(&a.input, stats.clone()).map_err(anyhow::Error::msg)?,
            ),
            Box::new(TardisTradeAdapter::new(registry.clone(), &venue)),
        ),
    };
    let stages = build_stages_with(
        &cfg,
        &registry,
        Clock::new(),
        source,
        adapter,
        false,
        None,
        sinks,
    )?;
    let tel = Telemetry::new(registry.len());
    let stages = run_inline_with(stages, &tel, u64::MAX, a.flush);
    let k = stages.kernel.stats();
    eprintln!(
        "tickwire replay: {} lines ({} malformed), {} frames, {} ticks, {} decode errors, {} bars, {} indicator snapshots, {} anomalies ({} suppressed by cooldown), {} late trades",
        stats.lines.load(Ordering::Relaxed),
        stats.bad_lines.load(Ordering::Relaxed),
        tel.feed.frames.get(),
        tel.feed.ticks.get(),
        tel.feed.decode_errors.get() + tel.feed.decimal_errors.get(),
        k.bars,
        k.indicator_snapshots,
        k.anomalies,
        k.anomalies_suppressed,
        k.late_trades,
    );
    if stats.io_errors.load(Ordering::Relaxed) > 0 {
        bail!(
            "reading {} stopped early on an I/O or decompression error; output is incomplete",
            a.input.display()
        );
    }
    Ok(0)
}
