//! Golden test: the same input through the stages single-threaded and
//! through the threaded pipeline gives identical output, every tick once
//! and in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tickwire::clock::Clock;
use tickwire::engine::build_stages;
use tickwire::event::{Event, EventBody};
use tickwire::fanout::CollectSink;
use tickwire::pipeline::{Pipeline, collect_finished, run_inline};
use tickwire::telemetry::Telemetry;

/// Receive times differ between runs (wall clock); everything else must not.
fn normalize(mut evs: Vec<Event>) -> Vec<Event> {
    for e in &mut evs {
        e.recv_ns = 0;
        if let EventBody::Tick(t) = &mut e.body {
            t.ts_recv_ns = 0;
            // Binance spot bookTicker carries no event time; the adapter
            // uses the receive time and flags it.
            if t.has_flag(tickwire::tick::flags::NO_EVENT_TIME) {
                t.ts_event_ns = 0;
            }
        }
    }
    evs
}

fn run_threaded(cfg: &tickwire::config::EngineConfig) -> Vec<Event> {
    let sink = CollectSink::default();
    let store = sink.events.clone();
    let clock = Clock::new();
    let (stages, reg) = build_stages(cfg, clock, vec![Box::new(sink)]).unwrap();
    let tel = Arc::new(Telemetry::new(reg.len()));
    let stop = Arc::new(AtomicBool::new(false));
    let (p, rx) =
        Pipeline::spawn(stages, &cfg.pipeline, tel.clone(), clock, stop, &cfg.faults).unwrap();
    p.join().unwrap();
    let fin = collect_finished(&rx);
    assert!(fin.kernel.is_some() && fin.signal.is_some() && fin.fanout.is_some());
    assert_eq!(tel.feed.drops.get(), 0);
    store.lock().unwrap().clone()
}

fn run_single(cfg: &tickwire::config::EngineConfig) -> Vec<Event> {
    let sink = CollectSink::default();
    let store = sink.events.clone();
    let (stages, reg) = build_stages(cfg, Clock::new(), vec![Box::new(sink)]).unwrap();
    let tel = Telemetry::new(reg.len());
    run_inline(stages, &tel, 1_000_000);
    store.lock().unwrap().clone()
}

#[test]
fn threaded_pipeline_equals_single_threaded_steps() {
    let cfg = common::deterministic_config(50_000);
    let single = normalize(run_single(&cfg));
    // Tiny rings force backpressure on every edge: order and completeness
    // must still hold.
    let mut tight = cfg.clone();
    tight.pipeline.ring_capacity = 4;
    // The fan-out interleaves the kernel's ring (ticks, bars, indicators,
    // anomalies, overview) and the signal stage's ring as they arrive, so
    // compare each stream on its own: each must be identical and in order.
    let split = |evs: &[Event]| -> (Vec<Event>, Vec<Event>) {
        evs.iter().partition(|e| {
            matches!(
                e.body,
                EventBody::Tick(_)
                    | EventBody::Bar(_)
                    | EventBody::Indicators(_)
                    | EventBody::Anomaly(_)
                    | EventBody::Movers(_)
                    | EventBody::Sector(_)
                    | EventBody::Index(_)
            )
        })
    };
    let (single_market, single_decisions) = split(&single);
    assert!(
        !single_decisions.is_empty(),
        "the signal stage emitted decisions"
    );
    for c in [&cfg, &tight] {
        let threaded = normalize(run_threaded(c));
        assert_eq!(single.len(), threaded.len());
        let (market, decisions) = split(&threaded);
        for (what, a, b) in [
            ("market", &single_market, &market),
            ("decision", &single_decisions, &decisions),
        ] {
            assert_eq!(a.len(), b.len(), "{what} event counts");
            if let Some(i) = a.iter().zip(b.iter()).position(|(x, y)| x != y) {
                panic!(
                    "first {what} difference at event {i}: {:?} vs {:?}",
                    a[i], b[i]
                );
            }
        }
    }
    let ticks = single
        .iter()
        .filter(|e| matches!(e.body, EventBody::Tick(_)))
        .count();
    let bars = single
        .iter()
        .filter(|e| matches!(e.body, EventBody::Bar(_)))
        .count();
    assert_eq!(ticks, 50_000, "every simulated message decodes to one tick");
    assert!(
        bars > 50,
        "50 s of simulated time in 1 s and 1 m bars: {bars}"
    );
}

#[test]
fn every_tick_once_and_in_order() {
    let cfg = common::deterministic_config(20_000);
    let evs = run_threaded(&cfg);
    let mut last_ts = i64::MIN;
    let mut ids = std::collections::HashSet::new();
    for e in &evs {
        if let EventBody::Tick(t) = &e.body
            && t.kind == 0
        {
            assert!(
                t.ts_event_ns >= last_ts,
                "event time never goes back in the sim"
            );
            last_ts = t.ts_event_ns;
            assert!(ids.insert((t.instrument, t.id)), "trade seen twice: {t:?}");
        }
    }
    assert!(!ids.is_empty());
}
