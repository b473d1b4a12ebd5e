//! `tickwire replay`: recorded ticks (a journal or a capture) through the
//! stages, single-threaded and deterministic, events to stdout as JSON
//! lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;

use tickwire::clock::Clock;
use tickwire::config::{EngineConfig, InstrumentConfig};
use tickwire::engine::build_stages_with;
use tickwire::fanout::{DUMP_ITEMS, DumpFilter, EventSink, JsonLinesSink};
use tickwire::feed::FeedStage;
use tickwire::feed::capture::CaptureFormat;
use tickwire::feed::import::{ImportVenue, Importer, RegistrySource, registry_for_import};
use tickwire::instruments::InstrumentRegistry;
use tickwire::journal::ticks::TickReader;
use tickwire::json::JsonContext;
use tickwire::pipeline::run_inline_with;
use tickwire::replay::{ReplayEnd, TickBatchSource, TickRecordAdapter, guess_format, guess_venue};
use tickwire::telemetry::Telemetry;

/// Arguments of `tickwire replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A tick journal directory (written by `run` or `journal import`), or
    /// a capture file (gzip is detected).
    input: PathBuf,
    /// Formats, comma-separated or repeated: the capture format
    /// (hftbacktest, cryptofeed, cryptofeed-jsonl, tardis-csv, frames;
    /// default from the file name) and/or the output format (jsonl, the
    /// only one: one JSON object per line).
    #[arg(long, value_name = "FORMAT", value_delimiter = ',')]
    format: Vec<String>,
    /// Venue whose adapter decodes a capture: binance, binance-usdm, bybit,
    /// bybit-linear, coinbase, polygon. Default: binance for hftbacktest,
    /// the exchange column of a Tardis CSV, the file name of a cryptofeed
    /// capture.
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
    /// Bar windows for this run, overriding the config (e.g. 1s,1m,4h;
    /// units s, m, h).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    windows: Option<Vec<String>>,
    /// Config file (TOML): kernel settings, and instrument precisions and
    /// sectors. A capture's symbols the config does not list for the venue
    /// are registered at precision 8/8. Default: built-in defaults.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Pace: `max` (as fast as possible, the default), `1` (the recorded
    /// pace, from receive times), or a factor such as `10` (ten times
    /// faster) or `0.5`.
    #[arg(long, value_name = "max|FACTOR", default_value = "max")]
    speed: String,
    /// At the end of the input, finalize the bars still open (their windows
    /// never ended in event time, so by default they are not emitted).
    #[arg(long)]
    flush: bool,
    /// Log filter for stderr (error, warn, info, ...).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    log_level: String,
}

/// `--speed`: `max` → `None`, a positive number → `Some(factor)`.
fn parse_speed(s: &str) -> Result<Option<f64>> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
        _ => bail!("--speed '{s}': use max, 1 (recorded pace) or a positive factor such as 10"),
    }
}

/// The capture format named in `--format`, if any.
fn input_format(list: &[String]) -> Result<Option<CaptureFormat>> {
    let mut found = None;
    for f in list.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
        if f.eq_ignore_ascii_case("jsonl") {
            continue;
        }
        let Some(fmt) = CaptureFormat::parse(f) else {
            bail!(
                "--format '{f}': known capture formats are {}, and the output format jsonl",
                CaptureFormat::ALL.map(CaptureFormat::name).join(", ")
            );
        };
        if found.replace(fmt).is_some() {
            bail!("--format: give one capture format and/or jsonl");
        }
    }
    Ok(found)
}

/// Config instruments for `registry`, keeping the config's sectors.
fn instruments_of(registry: &InstrumentRegistry, cfg: &EngineConfig) -> Vec<InstrumentConfig> {
    registry
        .iter()
        .map(|i| InstrumentConfig {
            symbol: i.key.clone(),
            price_precision: i.price_precision,
            size_precision: i.size_precision,
            sector: i.sector.clone().or_else(|| {
                cfg.instruments
                    .iter()
                    .find(|c| c.symbol.eq_ignore_ascii_case(&i.key))
                    .and_then(|c| c.sector.clone())
            }),
            sim_price: None,
        })
        .collect()
}

/// Runs the replay; returns the exit code.
pub fn cmd_replay(a: ReplayArgs) -> Result<i32> {
    super::init_tracing(&a.log_level);
    let filter = DumpFilter::parse(&a.dump)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--dump accepts: {DUMP_ITEMS}"))?;
    let fmt = input_format(&a.format)?;
    let mut cfg = match &a.config {
        Some(p) => EngineConfig::load(p)?,
        None => EngineConfig::default(),
    };
    if let Some(w) = &a.windows {
        cfg.kernel.windows = w.clone();
    }
    // Refuse bad windows before reading the input.
    cfg.window_ns()?;
    cfg.journal.enabled = false;

    let speed = parse_speed(&a.speed)?;
    let (source, registry, end): (TickBatchSource, Arc<InstrumentRegistry>, _) = if a.input.is_dir()
    {
        let reader = TickReader::open(&a.input)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{} is not a readable tick journal", a.input.display()))?;
        let registry = Arc::new(reader.registry.clone());
        let (src, end) = TickBatchSource::journal(reader);
        (src.with_speed(speed), registry, end)
    } else if a.input.is_file() {
        let format = match fmt.or_else(|| guess_format(&a.input)) {
            Some(f) => f,
            None => bail!(
                "cannot tell the format of {} from its name; pass --format ({})",
                a.input.display(),
                CaptureFormat::ALL.map(CaptureFormat::name).join(", ")
            ),
        };
        let venue = match &a.venue {
            Some(v) => ImportVenue::parse(v).with_context(|| {
                format!(
                    "--venue '{v}': known venues are {}",
                    ImportVenue::ALL.map(ImportVenue::name).join(", ")
                )
            })?,
            None => guess_venue(&a.input, format).with_context(|| {
                format!(
                    "cannot tell the venue of {}; pass --venue ({})",
                    a.input.display(),
                    ImportVenue::ALL.map(ImportVenue::name).join(", ")
                )
            })?,
        };
        let configured = match &a.config {
            Some(_) => Some(cfg.registry()?),
            None => None,
        };
        let (registry, how) = registry_for_import(&a.input, format, venue, configured.as_ref())?;
        if let RegistrySource::Auto(n) = how {
            tracing::info!(symbols = n, "capture symbols registered at precision 8/8");
        }
        let registry = Arc::new(registry);
        let imp = Importer::open(&a.input, format, venue, registry.clone())
            .with_context(|| format!("opening {}", a.input.display()))?;
        let (src, end) = TickBatchSource::capture(imp);
        (src.with_speed(speed), registry, end)
    } else {
        bail!("input {} does not exist", a.input.display());
    };

    cfg.instruments = instruments_of(&registry, &cfg);
    // The replay brings its own feed; the config's feeds only need to pass
    // validation: one socket-free feed on the replayed venue.
    let mut feed_cfg = EngineConfig::default()
        .feeds
        .into_iter()
        .next()
        .context("the built-in config has no feed template")?;
    if let Some(first) = registry.iter().next() {
        feed_cfg.venue = first.venue.clone();
    }
    feed_cfg.url = "sim://".into();
    feed_cfg.symbols = None;
    cfg.feeds = vec![feed_cfg];
    cfg.validate()?;
    let setup = cfg.kernel_setup()?;
    let ctx = JsonContext::for_kernel((*registry).clone(), &setup);
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let sinks: Vec<Box<dyn EventSink>> = vec![Box::new(JsonLinesSink::new(ctx, filter, out))];
    let feed = FeedStage::new(Box::new(source), Box::new(TickRecordAdapter), Clock::new());
    let stages =
        build_stages_with(&cfg, &registry, feed, false, None, sinks).map_err(anyhow::Error::msg)?;
    let tel = Telemetry::new(registry.len());
    let stages = run_inline_with(stages, &tel, u64::MAX, a.flush);
    let k = stages.kernel.stats();
    let end = end.lock().map(|g| g.clone()).unwrap_or(ReplayEnd::Running);
    let input = match &end {
        ReplayEnd::Capture(s) => format!(
            "{} frames, {} decode errors, {} decimal errors, {} unknown symbols, {} malformed lines",
            s.frames, s.decode_errors, s.decimal_errors, s.unknown_symbols, s.malformed_lines
        ),
        ReplayEnd::Journal { ticks } => format!("{ticks} journal ticks"),
        ReplayEnd::Failed(e) => format!("stopped early: {e}"),
        ReplayEnd::Running => "input did not finish".into(),
    };
    eprintln!(
        "tickwire replay: {input}; {} ticks, {} bars, {} indicator snapshots, {} anomalies ({} suppressed by cooldown), {} late trades",
        k.ticks, k.bars, k.indicator_snapshots, k.anomalies, k.anomalies_suppressed, k.late_trades,
    );
    if let ReplayEnd::Failed(e) = end {
        bail!(
            "reading {} failed: {e}; the output above is incomplete",
            display(&a.input)
        );
    }
    Ok(0)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
