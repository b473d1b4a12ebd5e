//! The event journal holds every decision the engine emitted, as the same
//! JSON objects subscribers see, and reads back through `journal export`.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tickwire::engine::Engine;
use tickwire::fanout::CollectSink;
use tickwire::journal::events::{EventReader, is_audited};
use tickwire::json::{JsonContext, write_event};

#[test]
fn every_decision_is_journaled_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::deterministic_config(60_000);
    cfg.journal.enabled = true;
    cfg.journal.dir = dir.path().join("ticks");
    cfg.journal.events_dir = dir.path().join("events");
    cfg.journal.segment_mb = 1; // several event segments
    for s in &mut cfg.signal.strategies {
        s.window = Some("1s".into());
    }
    cfg.signal.strategies[0].fast = Some(3);
    cfg.signal.strategies[0].slow = Some(8);
    cfg.signal.strategies[1].period = Some(5);
    cfg.signal.strategies[2].period = Some(8);
    let sink = CollectSink::default();
    let store = sink.events.clone();
    let engine = Engine::new(cfg.clone()).unwrap();
    engine
        .run(vec![Box::new(sink)], Arc::new(AtomicBool::new(false)))
        .unwrap();
    let ctx = JsonContext::for_config(&cfg).unwrap();
    let want: Vec<String> = store
        .lock()
        .unwrap()
        .iter()
        .filter(|e| is_audited(e))
        .map(|e| {
            let mut b = Vec::new();
            write_event(&mut b, &ctx, e);
            String::from_utf8(b).unwrap()
        })
        .collect();
    let mut rd = EventReader::open(&cfg.journal.events_dir).unwrap();
    let mut got = Vec::new();
    while let Some(j) = rd.next_json().unwrap() {
        got.push(String::from_utf8(j).unwrap());
    }
    assert!(
        want.iter().any(|j| j.contains("\"type\":\"fill\"")),
        "the run made fills"
    );
    assert!(want.iter().any(|j| j.contains("\"type\":\"signal\"")));
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got, want,
        "same objects, same order as the fan-out saw them"
    );
    tickwire::journal::verify(&cfg.journal.events_dir).expect("event journal verifies");

    // The CLI exports the same lines.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["journal", "export", "--kinds", "fill"])
        .arg(&cfg.journal.events_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let fills: Vec<&String> = want
        .iter()
        .filter(|j| j.contains("\"type\":\"fill\""))
        .collect();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        fills.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
}
