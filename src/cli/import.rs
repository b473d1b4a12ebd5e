//! `tickwire journal import`: decode a recorded capture with the venue
//! adapters and write normalized ticks.
//!
//! Output: a tick journal (`--out DIR`) or JSON lines (the EVENTS.md
//! schema, `json::write_tick`) on stdout (`--out -`). The decode loop is
//! `tickwire::feed::import`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use tickwire::config::EngineConfig;
use tickwire::feed::capture::CaptureFormat;
use tickwire::feed::import::{ImportVenue, Importer, RegistrySource, registry_for_import};
use tickwire::journal::ticks::TickJournal;
use tickwire::json::{JsonContext, write_tick};

/// Arguments of `journal import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Capture file to import (gzip is detected and decompressed).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Capture format: hftbacktest (`<recv_ns> <frame>` lines), cryptofeed
    /// (ws text capture), cryptofeed-jsonl (corpus v2), tardis-csv (trades
    /// or quotes), frames (one raw frame per line).
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = PossibleValuesParser::new(CaptureFormat::ALL.map(CaptureFormat::name))
            .try_map(|s| CaptureFormat::parse(&s).ok_or("unknown format"))
    )]
    format: CaptureFormat,
    /// Venue whose adapter decodes the frames. Instruments are named
    /// BINANCE, BINANCE-USDM, BYBIT, BYBIT-LINEAR, COINBASE or POLYGON:SYMBOL.
    #[arg(
        long,
        value_name = "VENUE",
        value_parser = PossibleValuesParser::new(ImportVenue::ALL.map(ImportVenue::name))
            .try_map(|s| ImportVenue::parse(&s).ok_or("unknown venue"))
    )]
    venue: ImportVenue,
    /// Config file (TOML) whose [[instruments]] for the venue give the
    /// precisions. Default: config/default.toml if present. When it lists
    /// no instrument of the venue, the capture's symbols are registered at
    /// precision 8/8.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where the ticks go: a journal directory (created, or appended to when
    /// it holds a journal with the same instruments), or `-` for JSON lines
    /// on stdout.
    #[arg(long, value_name = "DIR|-", default_value = "-")]
    out: String,
}

fn load_registry(
    config: Option<&Path>,
) -> Result<Option<tickwire::instruments::InstrumentRegistry>> {
    let cfg = match config {
        Some(p) => EngineConfig::load(p)?,
        None => {
            let p = Path::new("config/default.toml");
            if p.exists() {
                EngineConfig::load(p)?
            } else {
                return Ok(None);
            }
        }
    };
    Ok(Some(cfg.registry()?))
}

/// Runs `journal import`; returns the exit code.
pub fn cmd_import(a: ImportArgs) -> Result<i32> {
    super::init_tracing("warn");
    let configured = load_registry(a.config.as_deref())?;
    let (registry, source) = registry_for_import(&a.file, a.format, a.venue, configured.as_ref())?;
    let venue = a.venue.registry_venue();
    match source {
        RegistrySource::Config(n) => eprintln!("import: {n} {venue} instruments from the config"),
        RegistrySource::Auto(n) => {
            let names: Vec<&str> = registry
                .of_venue(venue)
                .map(|i| i.symbol.as_str())
                .collect();
            eprintln!(
                "import: {n} symbols found in the capture, registered at precision 8/8: {}",
                names.join(", ")
            );
        }
    }
    let registry = Arc::new(registry);
    let mut imp = Importer::open(&a.file, a.format, a.venue, registry.clone())
        .with_context(|| format!("importing {}", a.file.display()))?;

    let (bytes, total) = imp.progress();
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::default_bar()
        .template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style);
    }

    let mut journal = if a.out == "-" {
        None
    } else {
        let sec = tickwire::config::JournalSection::default();
        let (j, rep) =
            TickJournal::open(Path::new(&a.out), &sec, &registry).map_err(anyhow::Error::msg)?;
        if !rep.created {
            eprintln!(
                "import: appending to the existing journal {} (next index {})",
                a.out, rep.next_index
            );
        }
        Some(j)
    };
    let ctx = JsonContext::new((*registry).clone(), &[]);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = Vec::with_capacity(512);
    let mut batches = 0u64;
    let mut closed = false;
    let mut journaled = 0u64;
    while let Some(ticks) = imp.next_batch() {
        batches += 1;
        if batches % 1024 == 0 {
            bar.set_position(bytes.load(Ordering::Relaxed));
        }
        if let Some(j) = journal.as_mut() {
            for t in ticks {
                j.append(t)
                    .map_err(|e| anyhow::anyhow!("journal {}: append failed: {e:?}", a.out))?;
            }
            j.commit();
            journaled += ticks.len() as u64;
            continue;
        }
        if closed {
            continue;
        }
        for t in ticks {
            line.clear();
            write_tick(&mut line, &ctx, t);
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    // The reader went away (`| head`): keep counting, stop writing.
                    closed = true;
                    break;
                }
                return Err(e).context("writing ticks to stdout");
            }
        }
    }
    if let Some(mut j) = journal.take() {
        j.flush()
            .map_err(|e| anyhow::anyhow!("journal {}: {e}", a.out))?;
        eprintln!("import: {journaled} ticks written to the journal {}", a.out);
    } else if !closed {
        if let Err(e) = out.flush() {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("writing ticks to stdout");
            }
        }
    }
    bar.finish_and_clear();
    let stats = imp
        .finish()
        .with_context(|| format!("importing {}", a.file.display()))?;
    eprintln!("import: {} as {} ({})", a.file.display(), a.venue, a.format);
    eprint!("{}", stats.render());
    Ok(0)
}
