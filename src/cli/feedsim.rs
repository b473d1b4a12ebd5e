//! `tickwire feedsim`: the local exchange simulator as a command.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use tickwire::feedsim::{CaptureFormat, FeedSim, FeedSimConfig, Pace, SimSymbol, Venue};

#[derive(Debug, Args)]
pub(super) struct FeedsimArgs {
    /// Wire format: binance, bybit, coinbase or polygon.
    #[arg(long, default_value = "binance", value_name = "VENUE")]
    venue: String,
    /// Listen address; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: SocketAddr,
    /// Serve wss:// with a self-signed certificate generated at start.
    #[arg(long)]
    tls: bool,
    /// Write the certificate (PEM) here so clients can trust it (--tls).
    #[arg(long, value_name = "PATH")]
    cert_out: Option<PathBuf>,
    /// Messages per second per connection (before subscription filtering).
    #[arg(long, value_name = "N", conflicts_with_all = ["max", "pace"])]
    rate: Option<f64>,
    /// `recorded`: serve a capture at its recorded receive times.
    #[arg(long, value_name = "recorded")]
    pace: Option<String>,
    /// As fast as the socket takes it.
    #[arg(long)]
    max: bool,
    /// Serve this recorded capture (frames verbatim) instead of the generator.
    #[arg(long, value_name = "FILE", requires = "format")]
    capture: Option<PathBuf>,
    /// Capture format: hftbacktest, cryptofeed, cryptofeed-jsonl or frames.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Symbols, comma-separated SYMBOL[:PRICE_PREC:SIZE_PREC[:START_PRICE]]
    /// (default: ten liquid symbols of the venue).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    symbols: Option<Vec<String>>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of generated messages that are trades.
    #[arg(long, default_value_t = 0.3, value_name = "0..1")]
    trade_ratio: f64,
    /// Stop generating after this many messages (0 = no limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    messages: u64,
    /// Fault: close the TCP connection after every N data messages.
    #[arg(long, default_value_t = 0, value_name = "N")]
    drop_every: u64,
    /// Fault: stop sending for T ms (once, or every --stall-every messages).
    #[arg(long, default_value_t = 0, value_name = "T")]
    stall_ms: u64,
    /// Stall after every K messages instead of once.
    #[arg(long, default_value_t = 0, value_name = "K")]
    stall_every: u64,
    /// Fault: send a non-JSON text frame after every N data messages.
    #[arg(long, default_value_t = 0, value_name = "N")]
    garbage_every: u64,
    /// Fault: after N data messages (default 1000) write half a frame and
    /// close the TCP socket.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1000")]
    close_mid_frame: Option<u64>,
    /// Fault: refuse connections for T ms after start.
    #[arg(long, default_value_t = 0, value_name = "T")]
    refuse_for_ms: u64,
    /// Fault: skip every N-th trade (a trade-id gap).
    #[arg(long, default_value_t = 0, value_name = "N")]
    gap_every: u64,
    /// With --max (Binance generator): pre-generate N frames per connection
    /// and serve them in a loop as pre-encoded WebSocket frames (times and
    /// trade ids patched forward each lap), so the simulator costs almost
    /// no CPU and a loopback bench measures the client. Faults are off.
    #[arg(long, default_value_t = 0, value_name = "N", requires = "max")]
    pool: usize,
    /// Polygon: the API key `auth` must carry (default: accept any).
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Stop after this many seconds (0 = until Ctrl-C / SIGTERM).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    duration: u64,
    /// Log filter (error..trace).
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    log_level: String,
}

pub(super) fn cmd_feedsim(a: FeedsimArgs) -> Result<i32> {
    super::init_tracing(&a.log_level);
    let venue: Venue = a.venue.parse().map_err(anyhow::Error::msg)?;
    let mut cfg = FeedSimConfig::new(venue);
    cfg.listen = a.listen;
    cfg.tls = a.tls;
    if a.cert_out.is_some() && !a.tls {
        bail!("--cert-out needs --tls");
    }
    cfg.cert_out = a.cert_out;
    if let Some(list) = &a.symbols {
        cfg.symbols = list
            .iter()
            .map(|s| SimSymbol::parse(s))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
    }
    if !(0.0..=1.0).contains(&a.trade_ratio) {
        bail!("--trade-ratio must be between 0 and 1");
    }
    cfg.sim.seed = a.seed;
    cfg.sim.trade_ratio = a.trade_ratio;
    cfg.messages = a.messages;
    cfg.pace = match (a.rate, a.pace.as_deref(), a.max) {
        (_, _, true) => Pace::Max,
        (_, Some("recorded"), _) => {
            if a.capture.is_none() {
                bail!("--pace recorded needs --capture FILE --format F");
            }
            Pace::Recorded
        }
        (_, Some(p), _) => {
            bail!("--pace '{p}': the only pace is 'recorded' (or use --rate N / --max)")
        }
        (Some(r), None, false) => {
            if !(r > 0.0 && r.is_finite()) {
                bail!("--rate must be > 0 (or use --max)");
            }
            Pace::Rate(r)
        }
        (None, None, false) => Pace::Rate(20_000.0),
    };
    if let Some(path) = a.capture {
        let fmt: CaptureFormat = a
            .format
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(anyhow::Error::msg)?;
        cfg.capture = Some((path, fmt));
    }
    cfg.faults.drop_every = a.drop_every;
    cfg.faults.stall_ms = a.stall_ms;
    cfg.faults.stall_every = a.stall_every;
    cfg.faults.garbage_every = a.garbage_every;
    cfg.faults.close_mid_frame_after = a.close_mid_frame.unwrap_or(0);
    cfg.faults.refuse_for_ms = a.refuse_for_ms;
    cfg.faults.gap_every = a.gap_every;
    cfg.api_key = a.api_key;
    cfg.pool = a.pool;

    let stop = super::stop_flag()?;
    let sim = FeedSim::start(cfg)?;
    println!(
        "feedsim listening on {} (venue {}, port {})",
        sim.url(),
        venue.as_str(),
        sim.local_addr().port()
    );
    let _ = std::io::stdout().flush();
    let started = Instant::now();
    let deadline = (a.duration > 0).then(|| started + Duration::from_secs(a.duration));
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = sim.stats();
    sim.stop();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "feedsim summary: {:.1}s, {} connections, {} data messages ({:.0}/s), {} subscribes, {} garbage, {} gaps, {} drops, {} mid-frame closes, {} stalls",
        secs,
        st.connections,
        st.data_messages,
        st.data_messages as f64 / secs,
        st.subscribes,
        st.garbage,
        st.gaps,
        st.drops,
        st.mid_frame_closes,
        st.stalls
    );
    Ok(0)
}
