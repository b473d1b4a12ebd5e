//! The bench harness: summary.json and .hlog are valid, the report reads
//! them back with the same percentiles, and an injected stall shows up in
//! the coordinated-omission-corrected latency.

mod common;

use std::path::Path;
use std::time::Duration;

use tickwire::bench::{BenchMode, BenchSpec, read_summary, run_bench};
use tickwire::config::EngineConfig;
use tickwire::engine::E2E;
use tickwire::report::{load_run, run_percentiles, write_report};

fn spec(mode: BenchMode, rate: f64, messages: u64, seconds: u64, out: &Path) -> BenchSpec {
    BenchSpec {
        mode,
        rate,
        messages,
        seconds,
        symbols: 4,
        wait: None,
        pin: false,
        ring_capacity: None,
        interval: Duration::from_millis(200),
        out: out.to_path_buf(),
        progress: false,
        keep_journal: false,
    }
}

#[test]
fn short_run_writes_summary_and_hlog_that_the_report_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let base = EngineConfig::default();
    let sa = run_bench(&base, &spec(BenchMode::Throughput, 0.0, 100_000, 0, &a)).unwrap();
    let sb = run_bench(&base, &spec(BenchMode::Latency, 5_000.0, 0, 2, &b)).unwrap();
    assert_eq!(sa.messages, 100_000);
    assert_eq!(sa.drops, 0);
    assert!(sb.messages > 1_000, "{}", sb.messages);
    assert_eq!(sb.offered_rate, 5_000.0);

    // summary.json round-trips and names every stage.
    let back = read_summary(&a).unwrap();
    let names: Vec<_> = back.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(
        names,
        ["decode", "journal", "kernel", "signal", "fanout", "e2e"]
    );
    assert_eq!(back.config["feeds"][0]["sim"]["messages"], 100_000);
    assert!(back.machine.cores >= 1);

    // The report's percentiles (from the .hlog) equal the summary's.
    for (dir, sum) in [(&a, &sa), (&b, &sb)] {
        let run = load_run(dir).unwrap();
        for st in &sum.stages {
            let p = run_percentiles(&run, &st.stage).expect("stage in hlog");
            assert_eq!(p, st.latency_ns, "stage {} in {}", st.stage, dir.display());
        }
        let e2e = &run.intervals["e2e"];
        assert!(e2e.len() >= 2, "several intervals");
        let total: u64 = e2e.iter().map(|i| i.p.count).sum();
        assert_eq!(total, sum.stages[E2E].latency_ns.count);
    }

    let out = dir.path().join("report");
    let runs = write_report(&[a.clone(), b.clone()], &out).unwrap();
    assert_eq!(runs.len(), 2);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Comparison"), "{md}");
    let p50 = tickwire::telemetry::fmt_ns(sa.stages[E2E].latency_ns.p50);
    assert!(
        md.contains(&p50),
        "report shows the summary's e2e p50 {p50}:\n{md}"
    );
    for f in ["percentiles.svg", "latency_over_time.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{f}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("<svg"));
}

#[test]
fn injected_feed_stall_shows_in_corrected_latency_only() {
    let stall_ms = 400;
    let mut base = EngineConfig::default();
    base.faults.feed_stall_ms = stall_ms;
    base.faults.feed_stall_after_frames = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let corrected = run_bench(
        &base,
        &spec(BenchMode::Latency, 10_000.0, 0, 2, &dir.path().join("c")),
    )
    .unwrap();
    // Same run, but receive times stamped when read (what a naive harness
    // does): the feed thread's stall delays reading, so it is invisible.
    let mut naive_cfg = base.clone();
    naive_cfg.journal.enabled = false;
    naive_cfg.feeds[0].sim.stamp_scheduled = false;
    let s = spec(BenchMode::Latency, 10_000.0, 0, 2, &dir.path().join("n"));
    let mut cfg = tickwire::bench::bench_config(&naive_cfg, &s).unwrap();
    cfg.feeds[0].sim.stamp_scheduled = false;
    let naive = tickwire::engine::Engine::new(cfg)
        .unwrap()
        .run(
            Vec::new(),
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )
        .unwrap();
    let c_max = corrected.stages[E2E].latency_ns.max;
    let n_max = naive.stages[E2E].1.max;
    let stall_ns = stall_ms * 1_000_000;
    // Messages due at the start of the stall wait for all of it.
    assert!(
        c_max >= stall_ns * 9 / 10,
        "corrected max {c_max} ns must include the {stall_ms} ms stall"
    );
    assert!(
        n_max < c_max / 2,
        "naive max {n_max} ns hides the stall that corrected max {c_max} ns shows"
    );
}
