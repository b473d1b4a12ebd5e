//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use tickwire::config::EngineConfig;

/// A deterministic config: the in-process simulator (`sim://`, no sockets)
/// unpaced (1,000 msg/s of event time, as fast as possible) for `messages`
/// messages starting at a fixed event time, 1 s bars (so short runs produce
/// bars).
pub fn deterministic_config(messages: u64) -> EngineConfig {
    let mut cfg = EngineConfig::default();
    let feed = &mut cfg.feeds[0];
    feed.url = "sim://".into();
    feed.sim.rate = 1_000.0;
    feed.sim.paced = false;
    feed.sim.messages = messages;
    feed.sim.start_ns = 1_723_161_240_000_000_000;
    feed.sim.seed = 7;
    cfg.kernel.windows = vec!["1s".into(), "1m".into()];
    // The latency rule reads the wall clock in the threaded pipeline only;
    // off, so single-threaded and threaded runs stay comparable.
    cfg.kernel.anomalies.latency.enabled = false;
    cfg.telemetry.stats_interval_secs = 0;
    cfg.journal.enabled = false;
    cfg
}

/// The recorded data folder beside the checkout, if present.
pub fn real_data_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/real"));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/data/real not found");
        None
    }
}
