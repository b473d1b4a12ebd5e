//! Signal stage cost per kernel event, with the three shipped strategies and
//! every risk check enabled: the events are a recorded kernel output (ticks
//! and 1 s bars of the deterministic simulator), replayed through one stage.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use tickwire::clock::Clock;
use tickwire::config::EngineConfig;
use tickwire::engine::build_stages;
use tickwire::event::{Event, EventBody};
use tickwire::feed::FeedStep;
use tickwire::signal::SignalStage;
use tickwire::telemetry::{StageRecorder, Telemetry};

fn config() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    let feed = &mut cfg.feeds[0];
    feed.url = "sim://".into();
    feed.sim.rate = 1_000.0;
    feed.sim.paced = false;
    feed.sim.start_ns = 1_723_161_240_000_000_000;
    feed.sim.seed = 7;
    cfg.journal.enabled = false;
    cfg.kernel.windows = vec!["1s".into(), "1m".into()];
    cfg.telemetry.stats_interval_secs = 0;
    // The three shipped strategies on 1 s bars (short periods so they fire).
    for s in &mut cfg.signal.strategies {
        s.window = Some("1s".into());
    }
    cfg.signal.strategies[0].fast = Some(3);
    cfg.signal.strategies[0].slow = Some(8);
    cfg.signal.strategies[1].period = Some(5);
    cfg.signal.strategies[2].period = Some(8);
    cfg.signal.threshold = 0.05;
    // Every risk rule on (the defaults enable all of them).
    cfg.risk.max_orders_per_window = 3;
    cfg.risk.rate_window_secs = 10;
    cfg
}

/// Kernel output for `n` simulated messages.
fn kernel_events(cfg: &EngineConfig, n: usize) -> Vec<Event> {
    let (mut st, reg) = build_stages(cfg, Clock::new(), Vec::new()).expect("config");
    let tel = Telemetry::new(reg.len());
    let mut rec = StageRecorder::new(tel.decode.clone());
    let mut out = Vec::with_capacity(64);
    let mut evs = Vec::with_capacity(n + n / 4);
    while evs.len() < n {
        match st.feed.step(&tel.feed, &mut rec) {
            FeedStep::Ticks(_) => {
                for t in st.feed.ticks() {
                    st.kernel.step(t, &mut out);
                    evs.append(&mut out);
                }
            }
            _ => break,
        }
    }
    evs
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let evs = kernel_events(&cfg, 200_000);
    let bars = evs
        .iter()
        .filter(|e| matches!(e.body, EventBody::Bar(_)))
        .count();
    let reg = cfg.registry().expect("registry");
    let mut g = c.benchmark_group("signal_stage");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(5));
    g.warm_up_time(std::time::Duration::from_secs(1));
    // Each iteration: a fresh stage (built outside the timing) processes the
    // whole recorded sequence, so every pass sees new bars, fresh crossings,
    // orders and risk checks, exactly like a live run.
    let mut last = None;
    g.bench_function(
        format!(
            "step_per_event_3_strategies_all_risk ({} events, {bars} bars)",
            evs.len()
        ),
        |b| {
            b.iter_batched(
                || {
                    (
                        SignalStage::new(&cfg, &reg).expect("stage"),
                        Vec::<Event>::with_capacity(256),
                    )
                },
                |(mut stage, mut out)| {
                    let mut decisions = 0u64;
                    for ev in &evs {
                        stage.step(std::hint::black_box(ev), &mut out);
                        decisions += out.len() as u64;
                        out.clear();
                    }
                    last = Some((stage.stats(), decisions));
                    stage
                },
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();
    if let Some((s, decisions)) = last {
        eprintln!(
            "signal bench: {} events per pass ({bars} bars); per pass: {} signals, {} rejected, {} orders, {} fills, {decisions} decision events",
            evs.len(),
            s.signals,
            s.rejected,
            s.orders,
            s.fills
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
