//! Determinism: the single-threaded pipeline over the deterministic
//! simulator, run twice with the same config, writes byte-identical
//! decision dumps (signals, orders, fills, portfolio, market status), and
//! the dump is not trivially empty.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use tickwire::clock::Clock;
use tickwire::config::EngineConfig;
use tickwire::engine::build_stages;
use tickwire::fanout::{DumpFilter, EventSink, JsonLinesSink};
use tickwire::json::JsonContext;
use tickwire::pipeline::run_inline;
use tickwire::telemetry::Telemetry;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config() -> EngineConfig {
    let mut cfg = common::deterministic_config(60_000);
    // Strategies on the 1 s bars, a low threshold and a short stale limit
    // so that a minute of simulated market exercises every path.
    for s in &mut cfg.signal.strategies {
        s.window = Some("1s".into());
    }
    cfg.signal.strategies[0].fast = Some(3);
    cfg.signal.strategies[0].slow = Some(8);
    cfg.signal.strategies[1].period = Some(5);
    cfg.signal.strategies[2].period = Some(8);
    cfg.signal.threshold = 0.05;
    cfg.signal.snapshot_interval_secs = 10;
    cfg.risk.max_orders_per_window = 3;
    cfg.risk.rate_window_secs = 10;
    cfg
}

fn dump(cfg: &EngineConfig) -> (Vec<u8>, tickwire::signal::SignalStats) {
    let out = Shared::default();
    let ctx = JsonContext::for_config(cfg).unwrap();
    let filter = DumpFilter::parse("signals,orders,fills,portfolio,market_status").unwrap();
    let sinks: Vec<Box<dyn EventSink>> =
        vec![Box::new(JsonLinesSink::new(ctx, filter, out.clone()))];
    let (stages, reg) = build_stages(cfg, Clock::new(), sinks).unwrap();
    let tel = Telemetry::new(reg.len());
    let st = run_inline(stages, &tel, 1_000);
    let stats = st.signal.stats();
    drop(st);
    let bytes = out.0.lock().unwrap().clone();
    (bytes, stats)
}

#[test]
fn two_runs_give_identical_decision_dumps() {
    let cfg = config();
    let (a, stats) = dump(&cfg);
    let (b, _) = dump(&cfg);
    assert_eq!(a.len(), b.len(), "dump lengths differ");
    assert!(a == b, "dumps differ");
    let text = String::from_utf8(a).unwrap();
    let count = |ty: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{{\"type\":\"{ty}\"")))
            .count()
    };
    eprintln!(
        "signals {} rejected {} orders {} fills {} portfolio {} market_status {}",
        count("signal"),
        count("signal_rejected"),
        count("order"),
        count("fill"),
        count("portfolio"),
        count("market_status")
    );
    if std::env::var("SHOW_DUMP").is_ok() {
        for l in text.lines().take(60) {
            eprintln!("{l}");
        }
    }
    assert!(count("signal") > 0, "no signals:\n{text}");
    assert!(count("order") > 0, "no orders");
    assert!(count("fill") > 0, "no fills");
    assert!(count("portfolio") > 0, "no portfolio snapshots");
    assert_eq!(count("market_status"), 1, "crypto: one initial status");
    assert_eq!(stats.signals as usize, count("signal"));
    assert_eq!(stats.fills as usize, count("fill"));
    // Every line is valid JSON with the schema's basics.
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON");
        assert!(v["type"].is_string());
        assert!(v["ts_event"].is_i64(), "{l}");
        assert!(!l.contains("null") && !l.contains("NaN"), "{l}");
    }
}
