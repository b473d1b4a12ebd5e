//! Fan-out serialization: one event → its EVENTS.md JSON (the work the
//! fan-out thread does once per event, shared by every subscriber), with a
//! serde_json baseline serializing an equivalent struct in the same group.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use tickwire::config::EngineConfig;
use tickwire::event::{Bar, Event, EventBody};
use tickwire::instruments::InstrumentId;
use tickwire::json::{JsonContext, write_event};
use tickwire::tick::{Side, Tick};

#[derive(Serialize)]
struct TradeJson<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    symbol: &'a str,
    ts_event: i64,
    ts_recv: i64,
    price: String,
    size: String,
    side: &'a str,
    trade_id: String,
}

fn bench(c: &mut Criterion) {
    let cfg = EngineConfig::default();
    let ctx = JsonContext::for_config(&cfg).unwrap();
    let trade = Event {
        recv_ns: 1_723_161_254_087_896_568,
        body: EventBody::Tick(Tick::trade(
            InstrumentId(0),
            1_723_161_255_342_000_000,
            1_723_161_254_087_896_568,
            6_183_763,
            2_000,
            Side::Sell,
            3_735_683_259,
        )),
    };
    let bar = Event {
        recv_ns: 0,
        body: EventBody::Bar(Bar {
            instrument: InstrumentId(0),
            window_idx: 0,
            is_final: true,
            trades: 412,
            window_ns: 60_000_000_000,
            start_ns: 1_723_161_240_000_000_000,
            open: 6_183_763,
            high: 6_185_000,
            low: 6_183_001,
            close: 6_184_210,
            volume: 1_234_567,
            buy_volume: 1_000_000,
            sell_volume: 234_567,
            vwap: 61840.1234,
        }),
    };
    let mut g = c.benchmark_group("fanout_serialize");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(1024);
    g.bench_function("trade_write_event", |b| {
        b.iter(|| {
            buf.clear();
            write_event(&mut buf, &ctx, black_box(&trade));
            buf.len()
        })
    });
    g.bench_function("bar_write_event", |b| {
        b.iter(|| {
            buf.clear();
            write_event(&mut buf, &ctx, black_box(&bar));
            buf.len()
        })
    });
    g.bench_function("baseline_trade_serde_json", |b| {
        b.iter(|| {
            let t = TradeJson {
                ty: "trade",
                symbol: "SIM:BTCUSDT",
                ts_event: black_box(1_723_161_255_342_000_000),
                ts_recv: 1_723_161_254_087_896_568,
                price: "61837.63".to_string(),
                size: "0.02000".to_string(),
                side: "sell",
                trade_id: 3_735_683_259u64.to_string(),
            };
            serde_json::to_vec(&t).map(|v| v.len()).unwrap_or(0)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
