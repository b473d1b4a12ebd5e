//! Kernel behaviour tests: bars and their finality, indicators on bar
//! closes, provisional updates, anomaly rules with cooldowns, overview.

use super::*;
use crate::event::{AnomalyRule, MoversList, Severity};
use crate::instruments::InstrumentId;
use crate::kernel::indicators::{Ema, Rsi, Sma};
use crate::tick::Side;

const S: i64 = 1_000_000_000;
/// A whole minute in 2024 (UTC-aligned), the test's time origin.
const T0: i64 = 1_723_161_240 * S;

fn registry() -> InstrumentRegistry {
    let mut r = InstrumentRegistry::new();
    r.add("SIM:AAA", 2, 3, Some("tech".into())).unwrap();
    r.add("SIM:BBB", 2, 3, Some("tech".into())).unwrap();
    r.add("SIM:CCC", 2, 3, Some("energy".into())).unwrap();
    r
}

/// 1 s bars only, no provisional emission, no overview, rules on 1 s bars.
fn setup() -> KernelSetup {
    let mut s = KernelSetup::with_windows(vec![S]);
    s.provisional_interval_ns = 0;
    s.overview.top_n = 0;
    s
}

/// Price in cents, size in thousandths.
fn trade(inst: u32, ts: i64, cents: i64, size: i64) -> Tick {
    Tick::trade(InstrumentId(inst), ts, ts, cents, size, Side::Buy, 0)
}

fn run(k: &mut IndicatorKernel, ticks: &[Tick]) -> Vec<Event> {
    let mut out = Vec::new();
    for t in ticks {
        k.step(t, &mut out);
    }
    out
}

fn bars(evs: &[Event]) -> Vec<Bar> {
    evs.iter()
        .filter_map(|e| match e.body {
            EventBody::Bar(b) if b.is_final => Some(b),
            _ => None,
        })
        .collect()
}

fn snaps(evs: &[Event], final_only: bool) -> Vec<IndicatorSnapshot> {
    evs.iter()
        .filter_map(|e| match e.body {
            EventBody::Indicators(s) if s.is_final || !final_only => Some(s),
            _ => None,
        })
        .collect()
}

fn anomalies(evs: &[Event]) -> Vec<crate::event::Anomaly> {
    evs.iter()
        .filter_map(|e| match e.body {
            EventBody::Anomaly(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// One trade per second for instrument 0 at the given closes (cents).
fn one_per_second(closes: &[i64], size: i64) -> Vec<Tick> {
    closes
        .iter()
        .enumerate()
        .map(|(i, c)| trade(0, T0 + i as i64 * S + 1, *c, size))
        .collect()
}

#[test]
fn every_final_bar_updates_indicators_like_the_standalone_ones() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup());
    let closes: Vec<i64> = (0..260)
        .map(|i| 10_000 + ((i * 37) % 23) as i64 * 5 - i as i64)
        .collect();
    let evs = run(&mut k, &one_per_second(&closes, 1_000));
    let b = bars(&evs);
    // The last bar is still forming.
    assert_eq!(b.len(), closes.len() - 1);
    let sn = snaps(&evs, true);
    let mut sma20 = Sma::new(20);
    let mut sma200 = Sma::new(200);
    let mut ema12 = Ema::new(12);
    let mut rsi = Rsi::new(14);
    let names = IndicatorSpec::default().slot_names();
    let slot = |n: &str| names.iter().position(|x| x == n).unwrap();
    let mut j = 0;
    for (i, bar) in b.iter().enumerate() {
        assert_eq!(bar.start_ns, T0 + i as i64 * S);
        assert_eq!(bar.close, closes[i]);
        let x = closes[i] as f64 / 100.0;
        let (a, c, e, r) = (
            sma20.update(x),
            sma200.update(x),
            ema12.update(x),
            rsi.update(x),
        );
        if i < 11 {
            // Nothing before the shortest lookback (EMA 12).
            assert!(sn.iter().all(|s| s.start_ns != bar.start_ns));
            continue;
        }
        let s = sn[j];
        j += 1;
        assert_eq!(s.start_ns, bar.start_ns);
        assert_eq!(s.get(slot("sma_20")), a);
        assert_eq!(s.get(slot("sma_200")), c);
        assert_eq!(s.get(slot("ema_12")), e);
        assert_eq!(s.get(slot("rsi_14")), r);
        // Session VWAP with all sizes equal = mean of all prices so far.
        let mean = closes[..=i].iter().sum::<i64>() as f64 / (i + 1) as f64 / 100.0;
        let vwap = s.get(slot("session_vwap")).unwrap();
        assert!((vwap - mean).abs() < 1e-9, "{vwap} vs {mean}");
        assert_eq!(s.get(slot("avg_volume_20")), (i >= 19).then_some(1.0));
    }
    assert_eq!(j, sn.len());
    // Indicator snapshots follow their bar directly.
    for (n, e) in evs.iter().enumerate() {
        if let EventBody::Indicators(s) = e.body {
            let EventBody::Bar(b) = evs[n - 1].body else {
                panic!("snapshot not after its bar")
            };
            assert_eq!(b.start_ns, s.start_ns);
        }
    }
    assert_eq!(k.stats().bars, b.len() as u64);
    assert_eq!(k.stats().indicator_snapshots, sn.len() as u64);
}

#[test]
fn watermark_closes_quiet_instruments_after_grace_and_late_trades_are_counted() {
    let reg = registry();
    let mut s = setup();
    s.bar_grace_ns = 2 * S;
    let mut k = IndicatorKernel::new(&reg, &s);
    let mut out = Vec::new();
    k.step(&trade(0, T0 + 100, 10_000, 1), &mut out);
    // Instrument 1 trades on; A's bar [T0, T0+1s) must wait for end + grace.
    k.step(&trade(1, T0 + 2 * S + 500, 20_000, 1), &mut out);
    assert!(bars(&out).is_empty(), "watermark T0+0.5s < end");
    k.step(&trade(1, T0 + 3 * S - 1, 20_000, 1), &mut out);
    assert!(bars(&out).is_empty());
    k.step(&trade(1, T0 + 3 * S, 20_000, 1), &mut out);
    let b = bars(&out);
    assert_eq!(b.len(), 2, "A's bar and B's first bar closed: {b:?}");
    // The tick's own roll first, then what the watermark closed.
    assert_eq!(
        (b[0].instrument, b[0].start_ns),
        (InstrumentId(1), T0 + 2 * S)
    );
    assert_eq!((b[1].instrument, b[1].start_ns), (InstrumentId(0), T0));
    assert_eq!(k.stats().bars_by_watermark, 1);
    // A trade for A's closed window is late; one for the next window is
    // within grace (watermark T0+1s) and opens a bar.
    out.clear();
    k.step(&trade(0, T0 + 200, 10_100, 1), &mut out);
    assert_eq!(k.stats().late_trades, 1);
    k.step(&trade(0, T0 + S + 10, 10_100, 1), &mut out);
    assert_eq!(k.stats().late_trades, 1);
    assert_eq!(k.provisional_bar(0, 0).unwrap().start_ns, T0 + S);
    // B moves the watermark to T0+3s: A's bar closes; a trade in a window
    // the watermark passed is late even though A never had a bar there.
    k.step(&trade(1, T0 + 5 * S, 20_000, 1), &mut out);
    assert_eq!(bars(&out).last().unwrap().start_ns, T0 + S);
    assert_eq!(k.watermark_ns(), T0 + 3 * S);
    k.step(&trade(0, T0 + 2 * S + 10, 10_100, 1), &mut out);
    assert_eq!(k.stats().late_trades, 2);
    k.step(&trade(0, T0 + 3 * S + 10, 10_100, 1), &mut out);
    assert_eq!(k.stats().late_trades, 2);
    assert_eq!(k.provisional_bar(0, 0).unwrap().start_ns, T0 + 3 * S);
}

#[test]
fn timer_and_flush_close_bars() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup());
    let mut out = Vec::new();
    k.step(&trade(0, T0 + 100, 10_000, 1), &mut out);
    assert_eq!(k.on_timer(T0 + S + 2 * S - 1, &mut out), 0);
    assert_eq!(k.on_timer(T0 + S + 2 * S, &mut out), 1);
    assert_eq!(bars(&out).len(), 1);
    out.clear();
    k.step(&trade(0, T0 + 5 * S, 10_000, 1), &mut out);
    k.flush_until(i64::MAX, 0, &mut out);
    assert_eq!(bars(&out)[0].start_ns, T0 + 5 * S);
    assert!(k.provisional_bar(0, 0).is_none());
}

#[test]
fn provisional_updates_are_rate_limited_and_equal_the_peek() {
    let reg = registry();
    let mut s = setup();
    s.provisional_interval_ns = S / 2;
    s.windows_ns = vec![10 * S];
    let mut k = IndicatorKernel::new(&reg, &s);
    let mut out = Vec::new();
    // 40 bars of 10 s with a trade every 100 ms.
    for i in 0..4_000i64 {
        k.step(&trade(0, T0 + i * S / 10, 10_000 + (i % 37), 1), &mut out);
    }
    let prov: Vec<Bar> = out
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Bar(b) if !b.is_final => Some(b),
            _ => None,
        })
        .collect();
    // One every 0.5 s of event time: 20 per 10 s bar.
    assert_eq!(prov.len(), 800);
    assert_eq!(k.stats().provisional_bars, 800);
    let ps = snaps(&out, false)
        .into_iter()
        .filter(|s| !s.is_final)
        .count();
    assert!(
        ps > 0 && ps < 800,
        "provisional indicators after lookback: {ps}"
    );
    // The query equals what a final close at the forming bar's close gives.
    let p = k.provisional_indicators(0, 0).unwrap();
    assert!(!p.is_final);
    let bar = k.provisional_bar(0, 0).unwrap();
    k.flush_until(i64::MAX, 0, &mut out);
    let last = *snaps(&out, true).last().unwrap();
    assert_eq!(last.start_ns, bar.start_ns);
    for i in 0..13 {
        assert_eq!(p.values[i].to_bits(), last.values[i].to_bits(), "slot {i}");
    }
}

#[test]
fn nothing_is_emitted_provisionally_when_disabled() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup());
    let evs = run(&mut k, &one_per_second(&[100; 50], 1));
    assert!(
        evs.iter()
            .all(|e| !matches!(e.body, EventBody::Bar(b) if !b.is_final))
    );
    assert!(k.provisional_bar(0, 0).is_some());
    assert!(k.provisional_indicators(0, 0).is_some());
}

fn rules_only(rule: AnomalyRule) -> KernelSetup {
    let mut s = setup();
    let r = &mut s.rules;
    for x in AnomalyRule::ALL {
        let on = x == rule
            || (rule == AnomalyRule::RsiOverbought && x == AnomalyRule::RsiOversold)
            || (rule == AnomalyRule::RsiOversold && x == AnomalyRule::RsiOverbought);
        let setup = match x {
            AnomalyRule::PriceSpike => &mut r.price_spike,
            AnomalyRule::VolumeSpike => &mut r.volume_spike,
            AnomalyRule::RsiOverbought | AnomalyRule::RsiOversold => &mut r.rsi,
            AnomalyRule::Latency => &mut r.latency,
            AnomalyRule::SequenceGap => &mut r.sequence_gap,
            AnomalyRule::StaleFeed => &mut r.stale_feed,
            AnomalyRule::CrossedBook => &mut r.crossed_book,
        };
        setup.enabled = on;
        setup.cooldown_ns = 60 * S;
    }
    s
}

#[test]
fn price_spike_fires_respects_cooldown_and_stays_quiet() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::PriceSpike));
    // 21 bars at 100.00 (the 21st stays open), then spikes.
    let mut ticks = one_per_second(&[10_000; 21], 1);
    let t = T0 + 20 * S + 500;
    ticks.push(trade(0, t, 10_500, 1)); // exactly 5 %: not above
    ticks.push(trade(0, t + 1, 10_501, 1)); // 5.01 %: fires
    ticks.push(trade(0, t + 2, 9_000, 1)); // -10 % within cooldown
    ticks.push(trade(0, t + 61 * S, 9_000, 1)); // after cooldown: fires
    let a = anomalies(&run(&mut k, &ticks));
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].rule, AnomalyRule::PriceSpike);
    assert_eq!(a[0].severity, Severity::Warning);
    assert_eq!(a[0].a, 10_501);
    assert!((a[0].reference - 100.0).abs() < 1e-12);
    assert!((a[0].value - 0.0501).abs() < 1e-9);
    assert_eq!(a[0].ts_event_ns, t + 1);
    assert!(a[1].value < -0.05);
    assert_eq!(k.stats().anomalies_suppressed, 1);

    // Quiet: ±2 % around the average never fires.
    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::PriceSpike));
    let closes: Vec<i64> = (0..300).map(|i| 10_000 + (i % 5 - 2) * 100).collect();
    assert!(anomalies(&run(&mut k, &one_per_second(&closes, 1))).is_empty());
}

#[test]
fn volume_spike_fires_on_the_forming_bar_and_respects_cooldown() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::VolumeSpike));
    let mut ticks = one_per_second(&[10_000; 21], 1_000); // avg volume 1.000
    let t = T0 + 20 * S;
    // The 21st bar (start t) already holds 1.000.
    ticks.push(trade(0, t + 10, 10_000, 1_000)); // forming: 2.000
    ticks.push(trade(0, t + 20, 10_000, 1_000)); // 3.000: not above 3×
    ticks.push(trade(0, t + 30, 10_000, 1)); // 3.001: fires
    ticks.push(trade(0, t + 40, 10_000, 5_000)); // still spiking: cooldown
    let a = anomalies(&run(&mut k, &ticks));
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].rule, AnomalyRule::VolumeSpike);
    assert_eq!(a[0].a, 3_001, "bar volume in size units");
    assert_eq!(a[0].start_ns, t);
    assert!((a[0].reference - 1.0).abs() < 1e-12);
    assert!((a[0].value - 3.001).abs() < 1e-9, "{}", a[0].value);
    assert!(k.stats().anomalies_suppressed >= 1);

    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::VolumeSpike));
    let ticks: Vec<Tick> = (0..300)
        .map(|i| trade(0, T0 + i * S + 1, 10_000, 1_000 + (i % 3) * 500))
        .collect();
    assert!(anomalies(&run(&mut k, &ticks)).is_empty());
}

#[test]
fn rsi_extremes_fire_on_crossing_with_cooldown() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::RsiOverbought));
    // Alternating moves keep RSI near 50, then a rally, a drop back into
    // the neutral zone and a second rally inside the cooldown, then after.
    let mut closes = Vec::new();
    let mut p = 10_000;
    for i in 0..40 {
        p += if i % 2 == 0 { 10 } else { -10 };
        closes.push(p);
    }
    let rally = |closes: &mut Vec<i64>, p: &mut i64, n: usize, d: i64| {
        for _ in 0..n {
            *p += d;
            closes.push(*p);
        }
    };
    rally(&mut closes, &mut p, 10, 30); // overbought
    for i in 0..12 {
        p += if i % 2 == 0 { -60 } else { 20 };
        closes.push(p); // back to neutral
    }
    let second = closes.len();
    rally(&mut closes, &mut p, 10, 30); // overbought again, within 60 s
    for i in 0..90 {
        p += if i % 2 == 0 { -40 } else { 40 };
        closes.push(p);
    }
    rally(&mut closes, &mut p, 20, -30); // oversold, later
    closes.push(p);
    let evs = run(&mut k, &one_per_second(&closes, 1));
    let a = anomalies(&evs);
    let rules: Vec<AnomalyRule> = a.iter().map(|x| x.rule).collect();
    assert_eq!(
        rules,
        [AnomalyRule::RsiOverbought, AnomalyRule::RsiOversold],
        "{a:?}"
    );
    assert!(a[0].value > 70.0 && a[0].reference <= 70.0);
    assert_eq!(a[0].severity, Severity::Info);
    assert!(a[1].value < 30.0);
    assert!(a[0].start_ns < T0 + second as i64 * S);
    assert!(
        k.stats().anomalies_suppressed >= 1,
        "second rally suppressed"
    );

    // Alternating series: never extreme.
    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::RsiOverbought));
    let closes: Vec<i64> = (0..200).map(|i| 10_000 + (i % 2) * 10).collect();
    assert!(anomalies(&run(&mut k, &one_per_second(&closes, 1))).is_empty());
}

#[test]
fn latency_rule_needs_a_clock_and_respects_cooldown() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &rules_only(AnomalyRule::Latency));
    let mut out = Vec::new();
    let t = trade(0, T0, 10_000, 1);
    k.step(&t, &mut out); // no clock: not evaluated
    k.step_at(&t, T0 + 50_000_000, &mut out); // 50 ms: fine
    k.step_at(&t, T0 + 150_000_000, &mut out); // 150 ms: fires
    let t2 = trade(0, T0 + 10 * S, 10_000, 1);
    k.step_at(&t2, T0 + 10 * S + 200_000_000, &mut out); // cooldown
    let t3 = trade(0, T0 + 61 * S, 10_000, 1);
    k.step_at(&t3, T0 + 61 * S + 101_000_000, &mut out); // fires
    let a = anomalies(&out);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].rule, AnomalyRule::Latency);
    assert_eq!(a[0].a, 150_000_000);
    assert_eq!(a[0].b, 100_000_000);
    assert_eq!(a[1].a, 101_000_000);
}

#[test]
fn feed_side_anomalies_become_events_with_cooldown() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup());
    let mut out = Vec::new();
    let gap = Tick {
        ts_event_ns: T0,
        ts_recv_ns: T0,
        id: 100,
        price: 105,
        size: 5,
        instrument: InstrumentId(1),
        kind: TickKind::Gap as u8,
        ..Tick::default()
    };
    k.step(&gap, &mut out);
    k.step(
        &Tick {
            ts_event_ns: T0 + S,
            ..gap
        },
        &mut out,
    ); // cooldown
    let status = |code: u64, ts: i64| Tick {
        ts_event_ns: ts,
        ts_recv_ns: ts,
        id: code,
        size: 3,
        instrument: InstrumentId(2),
        kind: TickKind::FeedStatus as u8,
        ..Tick::default()
    };
    k.step(&status(feed_status::CONNECTED, T0), &mut out);
    k.step(&status(feed_status::STALE, T0), &mut out);
    k.step(&status(feed_status::CROSSED, T0), &mut out);
    // A crossed quote on another instrument; a normal one does nothing.
    k.step(
        &Tick::quote(InstrumentId(0), T0, T0, 10_001, 1, 10_000, 1, 1),
        &mut out,
    );
    k.step(
        &Tick::quote(InstrumentId(0), T0, T0, 9_999, 1, 10_000, 1, 2),
        &mut out,
    );
    let a = anomalies(&out);
    let got: Vec<(u32, AnomalyRule)> = a.iter().map(|x| (x.instrument.0, x.rule)).collect();
    assert_eq!(
        got,
        [
            (1, AnomalyRule::SequenceGap),
            (2, AnomalyRule::StaleFeed),
            (2, AnomalyRule::CrossedBook),
            (0, AnomalyRule::CrossedBook),
        ]
    );
    assert_eq!((a[0].a, a[0].b, a[0].c), (100, 105, 5));
    assert_eq!(a[2].severity, Severity::Critical);
    assert_eq!((a[3].a, a[3].b), (10_001, 10_000));
    assert_eq!(k.stats().anomalies, 4);
    assert_eq!(k.stats().anomalies_suppressed, 1);
}

#[test]
fn a_realistic_quiet_stream_raises_nothing() {
    // Small random-ish moves and volumes on three instruments.
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup());
    let mut out = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut px = [10_000i64, 20_000, 5_000];
    for i in 0..30_000i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let inst = (x % 3) as usize;
        // Mean-reverting ±1 tick.
        let base = [10_000, 20_000, 5_000][inst];
        px[inst] += if px[inst] > base { -1 } else { 1 } * ((x >> 8) % 2) as i64;
        k.step(
            &trade(
                inst as u32,
                T0 + i * 30_000_000,
                px[inst],
                1 + ((x >> 16) % 3) as i64,
            ),
            &mut out,
        );
        out.retain(|e| matches!(e.body, EventBody::Anomaly(a) if a.rule != AnomalyRule::RsiOverbought && a.rule != AnomalyRule::RsiOversold));
    }
    assert!(anomalies(&out).is_empty(), "{:?}", anomalies(&out));
    assert!(k.stats().bars > 2_000);
}

#[test]
fn movers_sectors_and_indices() {
    let reg = registry();
    let mut s = setup();
    s.overview = OverviewSetup {
        top_n: 2,
        interval_ns: S,
        indices: vec![IndexSpec {
            name: "IDX".into(),
            constituents: vec![(InstrumentId(0), 0.5, 10_000), (InstrumentId(2), 0.5, 0)],
        }],
    };
    let mut k = IndicatorKernel::new(&reg, &s);
    let mut out = Vec::new();
    // Session opens: A 100.00, B 200.00, C 50.00.
    k.step(&trade(0, T0, 10_000, 1_000), &mut out);
    k.step(&trade(1, T0 + 1, 20_000, 1_000), &mut out);
    k.step(&trade(2, T0 + 2, 5_000, 1_000), &mut out);
    // Only the first trade evaluated (interval 1 s): A is most active.
    let movers: Vec<Movers> = out
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Movers(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(movers.len(), 1);
    assert_eq!(movers[0].list, MoversList::MostActive);
    out.clear();
    // A +10 %, B −5 %, C +2 %; C trades a lot.
    k.step(&trade(0, T0 + 2 * S, 11_000, 1), &mut out);
    k.step(&trade(1, T0 + 2 * S + 1, 19_000, 1), &mut out);
    k.step(&trade(2, T0 + 2 * S + 2, 5_100, 100_000), &mut out);
    k.step(&trade(2, T0 + 4 * S, 5_100, 1), &mut out);
    let mut g = None;
    let mut l = None;
    let mut act = None;
    let mut sectors = Vec::new();
    let mut idx = Vec::new();
    for e in &out {
        match e.body {
            EventBody::Movers(m) if m.list == MoversList::Gainers => g = Some(m),
            EventBody::Movers(m) if m.list == MoversList::Losers => l = Some(m),
            EventBody::Movers(m) => act = Some(m),
            EventBody::Sector(x) => sectors.push(x),
            EventBody::Index(x) => idx.push(x),
            _ => {}
        }
    }
    let g: Vec<(u32, f64)> = g.unwrap().entries().map(|(i, v)| (i.0, v)).collect();
    assert_eq!(g.len(), 2);
    assert_eq!((g[0].0, g[1].0), (0, 2));
    assert!((g[0].1 - 10.0).abs() < 1e-9 && (g[1].1 - 2.0).abs() < 1e-9);
    let l: Vec<u32> = l.unwrap().entries().map(|(i, _)| i.0).collect();
    assert_eq!(l, [1]);
    let act: Vec<(u32, f64)> = act.unwrap().entries().map(|(i, v)| (i.0, v)).collect();
    assert_eq!(act[0].0, 2);
    // C: 50·1 + 51·100 + 51·0.001 quote units.
    assert!(
        (act[0].1 - (50.0 + 5_100.0 + 0.051)).abs() < 1e-9,
        "{act:?}"
    );
    // Sector tech = avg(+10, −5) = 2.5; energy = +2.
    let tech = sectors.iter().rev().find(|x| x.sector == 0).unwrap();
    assert!((tech.change_pct - 2.5).abs() < 1e-9 && tech.members == 2);
    let energy = sectors.iter().rev().find(|x| x.sector == 1).unwrap();
    assert!((energy.change_pct - 2.0).abs() < 1e-9);
    // Index = 100 · (0.5 · 110/100 + 0.5 · 51/50) = 106.
    let last = idx.last().unwrap();
    assert!((last.value - 106.0).abs() < 1e-9, "{idx:?}");
    assert_eq!(k.movers()[0].len, 2);
    assert_eq!(k.session(2).unwrap().open, 5_000);
}

#[test]
fn bad_trades_and_unknown_instruments_are_counted() {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup());
    let mut out = Vec::new();
    k.step(&trade(0, T0, 0, 1), &mut out);
    k.step(&trade(0, T0, 100, -1), &mut out);
    k.step(&trade(9, T0, 100, 1), &mut out);
    assert_eq!(k.stats().bad_trades, 2);
    assert_eq!(k.stats().bad_instrument, 1);
    assert_eq!(out.len(), 3, "ticks are still forwarded");
    assert!(k.provisional_bar(0, 0).is_none());
}
