//! Command-line interface: one binary, subcommands.

mod bench;
mod feedsim;
mod import;
mod journal;
mod replay;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use tickwire::config::EngineConfig;
use tickwire::engine::{Engine, FeedSecrets, ServerOptions};
use tickwire::fanout::{DumpFilter, EventSink, JsonLinesSink};
use tickwire::json::JsonContext;

/// tickwire: a low-latency, single-process market-data engine.
///
/// Feeds → decode → bars/indicators → signals/risk → journal and subscribers,
/// on pinned threads connected by SPSC rings, every stage measured.
#[derive(Debug, Parser)]
#[command(name = "tickwire", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine (default config: an in-process feedsim over ws://
    /// decoded by the real Binance adapter, no API keys).
    ///
    /// Logs a stats line every few seconds and a latency summary on exit.
    /// Stops on Ctrl-C / SIGTERM (a second Ctrl-C forces exit) or after
    /// --duration seconds, draining every ring first.
    Run(RunArgs),
    /// Benchmark the full pipeline: throughput, or latency at offered rates
    /// (coordinated-omission-free); writes summary.json and latency.hlog.
    Bench(bench::BenchArgs),
    /// Turn bench outputs into Markdown/HTML tables and SVG plots; two
    /// inputs are compared side by side.
    Report(bench::ReportArgs),
    /// Inspect, verify, export and tail tick journals.
    #[command(subcommand)]
    Journal(journal::JournalCmd),
    /// Replay a recorded capture through the stages (single thread,
    /// deterministic) and write events as JSON lines to stdout.
    ///
    /// Example: tickwire replay btcusdt_20240808.gz --windows 1s,1m
    /// --dump bars,indicators
    Replay(replay::ReplayArgs),
    /// Local exchange simulator: serves a venue's real WebSocket protocol
    /// (generated market or a recorded capture) on 127.0.0.1, with fault
    /// injection, for tests and benches.
    Feedsim(Box<feedsim::FeedsimArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Config file (TOML). Default: config/default.toml if present, else
    /// the built-in defaults (identical to the shipped file).
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Only these instruments, comma-separated VENUE:SYMBOL (unlisted ones
    /// get precision 8/8).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    symbols: Option<Vec<String>>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// such as `tickwire=debug`. Overrides the config; RUST_LOG overrides both.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Stop after this many seconds (0 = run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Simulator message rate per second (0 = as fast as possible).
    #[arg(long, value_name = "MSGS")]
    sim_rate: Option<f64>,
    /// Journal directory (overrides journal.dir).
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// Do not journal ticks in this run.
    #[arg(long, conflicts_with = "journal_dir")]
    no_journal: bool,
    /// Serve subscribers and HTTP on this address (IP:PORT; port 0 = any
    /// free port), overriding [server] listen. The run fails if it cannot
    /// be bound.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Once listening, write the bound address (IP:PORT) to this file.
    #[arg(long, value_name = "PATH")]
    listen_file: Option<PathBuf>,
    /// Write events to stdout as JSON lines: comma list of trades, quotes,
    /// book, bars, indicators, anomalies, movers, sectors, indices,
    /// feed_status, signals, orders, fills, portfolio, market_status,
    /// provisional, or all. Logs go to stderr.
    #[arg(long, value_name = "ITEMS")]
    dump: Option<String>,
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    install_panic_hook();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Bench(a) => bench::cmd_bench(a),
        Command::Report(a) => bench::cmd_report(a),
        Command::Journal(c) => journal::cmd_journal(c),
        Command::Replay(a) => replay::cmd_replay(a),
        Command::Feedsim(a) => feedsim::cmd_feedsim(*a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// A panicking pipeline thread ends the process: a half-running engine is
/// worse than a stopped one.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("error: a tickwire thread panicked; exiting (this is a bug, please report it)");
        std::process::exit(101);
    }));
}

pub(crate) fn init_tracing(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

pub(crate) fn load_config(common: &CommonArgs) -> Result<EngineConfig> {
    let mut cfg = match &common.config {
        Some(p) => EngineConfig::load(p)?,
        None => {
            let p = Path::new("config/default.toml");
            if p.exists() {
                EngineConfig::load(p)?
            } else {
                EngineConfig::default()
            }
        }
    };
    if let Some(syms) = &common.symbols {
        cfg.select_symbols(syms)?;
    }
    if let Some(l) = &common.log_level {
        cfg.engine.log_level = l.clone();
    }
    Ok(cfg)
}

/// Reads each feed's API key from the environment variable its config
/// names (the library reads no environment itself).
fn read_api_keys(cfg: &EngineConfig) -> Result<FeedSecrets> {
    let mut secrets = FeedSecrets::new();
    for f in &cfg.feeds {
        if let Some(var) = &f.api_key_env {
            match std::env::var(var) {
                Ok(k) if !k.is_empty() => secrets.insert(&f.name, k),
                _ => bail!(
                    "feed '{}': environment variable {var} (api_key_env) is not set; export it before starting, or remove api_key_env",
                    f.name
                ),
            }
        }
    }
    Ok(secrets)
}

fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping terminates at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(stop)
}

fn cmd_run(a: RunArgs) -> Result<i32> {
    let mut cfg = load_config(&a.common)?;
    if let Some(d) = a.duration {
        cfg.engine.duration_secs = d;
    }
    if let Some(r) = a.sim_rate {
        if !(r >= 0.0 && r.is_finite()) {
            bail!("--sim-rate must be ≥ 0 (0 = as fast as possible)");
        }
        for f in &mut cfg.feeds {
            f.sim.rate = r;
        }
    }
    if let Some(d) = &a.journal_dir {
        cfg.journal.dir = d.clone();
        cfg.journal.events_dir = d.join("events");
        cfg.journal.enabled = true;
    }
    if a.no_journal {
        cfg.journal.enabled = false;
        cfg.journal.events_enabled = false;
    }
    let explicit_listen = a.listen.is_some() || a.listen_file.is_some();
    if let Some(l) = &a.listen {
        cfg.server.listen = l.clone();
        cfg.server.enabled = true;
    }
    cfg.validate()?;
    init_tracing(&cfg.engine.log_level);
    let token = match (&cfg.server.token_env, cfg.server.enabled) {
        (Some(var), true) => match std::env::var(var) {
            Ok(t) if !t.is_empty() => Some(t),
            _ => bail!(
                "server.token_env names the environment variable {var}, but it is not set or empty: export {var}=<token>, or remove server.token_env to serve without authentication"
            ),
        },
        _ => None,
    };
    let server_opts = ServerOptions {
        token,
        listen_file: a.listen_file.clone(),
        required: explicit_listen,
    };
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    if let Some(items) = &a.dump {
        let filter = DumpFilter::parse(items).map_err(anyhow::Error::msg)?;
        let ctx = JsonContext::for_config(&cfg)?;
        let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
        sinks.push(Box::new(JsonLinesSink::new(ctx, filter, out)));
    }
    let secrets = read_api_keys(&cfg)?;
    let engine = Engine::with_secrets(cfg, secrets)?.with_server_options(server_opts);
    let stop = stop_flag()?;
    let summary = engine.run(sinks, stop).map_err(anyhow::Error::msg)?;
    eprint!("{}", summary.render());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
