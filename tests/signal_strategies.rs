//! Each built-in strategy on constructed series: signals exactly on the bar
//! where the crossing happens, none elsewhere.

use tickwire::instruments::InstrumentId;
use tickwire::signal::events::SignalReason;
use tickwire::signal::local::LocalIndicators;
use tickwire::signal::strategies::{
    BollingerMode, BollingerStrategy, MaCrossover, MaKind, RsiReversion,
};
use tickwire::signal::strategy::{
    IndicatorKey, IndicatorValues, SignalDraft, Strategy, StrategyInput, bb_k_milli,
};
use tickwire::tick::Side;

const M: i64 = 60_000_000_000;

fn input(i: usize, is_final: bool, price: f64, ind: IndicatorValues) -> StrategyInput {
    StrategyInput {
        instrument: InstrumentId(0),
        window_idx: 0,
        is_final,
        start_ns: i as i64 * M,
        end_ns: (i as i64 + 1) * M,
        close: (price * 100.0).round() as i64,
        price,
        ind,
    }
}

/// Runs final bars through `s`; returns (bar index, side, reason) of signals.
fn run(
    s: &mut dyn Strategy,
    bars: impl Iterator<Item = (f64, IndicatorValues)>,
) -> Vec<(usize, Side, SignalReason)> {
    bars.enumerate()
        .filter_map(|(i, (p, ind))| {
            s.on_bar(&input(i, true, p, ind))
                .map(|d: SignalDraft| (i, d.side, d.reason))
        })
        .collect()
}

fn ma_values(fast: f64, slow: f64) -> IndicatorValues {
    let mut v = IndicatorValues::default();
    v.set(IndicatorKey::Ema(3), fast);
    v.set(IndicatorKey::Ema(5), slow);
    v
}

#[test]
fn ma_crossover_signals_exactly_at_the_crossings() {
    let mut s = MaCrossover::new(3, 5, MaKind::Ema, 0.1, 1);
    // fast - slow: -3 -2 -1 0 +1 +2 +1 0 -1 -2 0 -1 +0.5
    let diffs = [
        -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 1.0, 0.0, -1.0, -2.0, 0.0, -1.0, 0.5,
    ];
    let got = run(
        &mut s,
        diffs.iter().map(|d| (100.0, ma_values(100.0 + d, 100.0))),
    );
    assert_eq!(
        got,
        vec![
            (4, Side::Buy, SignalReason::MaCrossUp),
            (8, Side::Sell, SignalReason::MaCrossDown),
            (12, Side::Buy, SignalReason::MaCrossUp),
        ]
    );
}

#[test]
fn ma_crossover_touch_is_not_a_cross_and_first_bar_only_sets_side() {
    let mut s = MaCrossover::new(3, 5, MaKind::Ema, 0.1, 1);
    let diffs = [1.0, 0.0, 1.0, 0.0, 0.0, 2.0];
    let got = run(
        &mut s,
        diffs.iter().map(|d| (100.0, ma_values(100.0 + d, 100.0))),
    );
    assert!(got.is_empty(), "{got:?}");
    // Missing values: no signal, no state change.
    assert!(
        s.on_bar(&input(9, true, 100.0, IndicatorValues::default()))
            .is_none()
    );
}

#[test]
fn ma_crossover_strength_and_values() {
    let mut s = MaCrossover::new(3, 5, MaKind::Ema, 1.0, 1);
    assert!(
        s.on_bar(&input(0, true, 100.0, ma_values(99.5, 100.0)))
            .is_none()
    );
    let d = s
        .on_bar(&input(1, true, 100.0, ma_values(100.25, 100.0)))
        .expect("cross");
    // swing = (0.5 + 0.25) / 100 = 0.75 % of 1 % → 0.75
    assert!((d.strength - 0.75).abs() < 1e-12, "{}", d.strength);
    assert_eq!(d.values[0], 100.25);
    assert_eq!(d.values[1], 100.0);
    assert_eq!(d.values[2], 0.0);
}

#[test]
fn provisional_cross_signals_once_per_bar() {
    let mut s = MaCrossover::new(3, 5, MaKind::Ema, 0.1, 1);
    assert!(
        s.on_bar(&input(0, true, 100.0, ma_values(99.0, 100.0)))
            .is_none()
    );
    // Provisional updates of bar 1: crosses up on the second one.
    assert!(
        s.on_bar(&input(1, false, 100.0, ma_values(99.5, 100.0)))
            .is_none()
    );
    let d = s.on_bar(&input(1, false, 100.0, ma_values(100.5, 100.0)));
    assert_eq!(d.map(|d| d.side), Some(Side::Buy));
    // Same bar, still crossed: no repeat; final of the same bar: no repeat.
    assert!(
        s.on_bar(&input(1, false, 100.0, ma_values(100.7, 100.0)))
            .is_none()
    );
    assert!(
        s.on_bar(&input(1, true, 100.0, ma_values(100.6, 100.0)))
            .is_none()
    );
    // Next bar crossing down is a new signal.
    let d = s.on_bar(&input(2, true, 100.0, ma_values(99.0, 100.0)));
    assert_eq!(d.map(|d| d.side), Some(Side::Sell));
}

/// SMA crossover computed end to end from closes (local indicators), checked
/// against a brute-force recomputation of the averages.
#[test]
fn sma_crossover_from_closes_matches_brute_force() {
    let closes: Vec<f64> = (0..120)
        .map(|i| 100.0 + 10.0 * ((i as f64) * 0.21).sin() + (i % 7) as f64 * 0.3)
        .collect();
    let (fast, slow) = (4usize, 9usize);
    let mut s = MaCrossover::new(fast as u16, slow as u16, MaKind::Sma, 0.1, 1);
    let mut local = LocalIndicators::new(1, &[s.needs()]);
    let mut got = Vec::new();
    for (i, c) in closes.iter().enumerate() {
        let mut inp = input(i, true, *c, IndicatorValues::default());
        local.fill(&mut inp);
        if let Some(d) = s.on_bar(&inp) {
            got.push((i, d.side));
        }
    }
    // Brute force: sign of mean(last fast) - mean(last slow), zeros skipped.
    let mean = |i: usize, n: usize| closes[i + 1 - n..=i].iter().sum::<f64>() / n as f64;
    let mut want = Vec::new();
    let mut last = 0i8;
    for i in slow - 1..closes.len() {
        let d = mean(i, fast) - mean(i, slow);
        let sgn = if d > 1e-9 {
            1
        } else if d < -1e-9 {
            -1
        } else {
            0
        };
        if sgn != 0 {
            if last != 0 && sgn != last {
                want.push((i, if sgn > 0 { Side::Buy } else { Side::Sell }));
            }
            last = sgn;
        }
    }
    assert!(want.len() >= 4, "series has crossings: {want:?}");
    assert_eq!(got, want);
}

#[test]
fn rsi_signals_on_entering_the_zones() {
    let mut s = RsiReversion::new(14, 30.0, 70.0, 1);
    let rsi = [
        50.0, 40.0, 31.0, 30.0, 29.0, 25.0, 35.0, 71.0, 72.0, 69.0, 75.0, 70.0,
    ];
    let got = run(
        &mut s,
        rsi.iter().map(|r| {
            let mut v = IndicatorValues::default();
            v.set(IndicatorKey::Rsi(14), *r);
            (100.0, v)
        }),
    );
    assert_eq!(
        got,
        vec![
            (4, Side::Buy, SignalReason::RsiOversold),
            (7, Side::Sell, SignalReason::RsiOverbought),
            (10, Side::Sell, SignalReason::RsiOverbought),
        ]
    );
}

#[test]
fn rsi_strength_grows_with_depth() {
    let mut s = RsiReversion::new(14, 30.0, 70.0, 1);
    let mut v = IndicatorValues::default();
    v.set(IndicatorKey::Rsi(14), 40.0);
    assert!(s.on_bar(&input(0, true, 1.0, v)).is_none());
    v.set(IndicatorKey::Rsi(14), 15.0);
    let d = s.on_bar(&input(1, true, 1.0, v)).unwrap();
    // 0.5 + 0.5 * (30 - 15) / 30 = 0.75
    assert!((d.strength - 0.75).abs() < 1e-12);
    assert_eq!(d.values[0], 15.0);
    assert_eq!(d.values[1], 30.0);
}

fn bands() -> IndicatorValues {
    let mut v = IndicatorValues::default();
    let k = bb_k_milli(2.0);
    v.set(IndicatorKey::BbUpper(20, k), 110.0);
    v.set(IndicatorKey::BbMiddle(20, k), 100.0);
    v.set(IndicatorKey::BbLower(20, k), 90.0);
    v
}

#[test]
fn bollinger_breakout_and_reversion_signal_on_entering_a_zone() {
    let closes = [
        100.0, 105.0, 111.0, 112.0, 105.0, 89.0, 88.0, 95.0, 115.0, 110.0,
    ];
    let mut b = BollingerStrategy::new(20, 2.0, BollingerMode::Breakout, 1);
    let got = run(&mut b, closes.iter().map(|c| (*c, bands())));
    assert_eq!(
        got,
        vec![
            (2, Side::Buy, SignalReason::BbAboveUpper),
            (5, Side::Sell, SignalReason::BbBelowLower),
            (8, Side::Buy, SignalReason::BbAboveUpper),
        ]
    );
    let mut r = BollingerStrategy::new(20, 2.0, BollingerMode::Reversion, 1);
    let got = run(&mut r, closes.iter().map(|c| (*c, bands())));
    assert_eq!(
        got,
        vec![
            (2, Side::Sell, SignalReason::BbAboveUpper),
            (5, Side::Buy, SignalReason::BbBelowLower),
            (8, Side::Sell, SignalReason::BbAboveUpper),
        ]
    );
    // A series that starts above the band does not signal on its first bar.
    let mut b = BollingerStrategy::new(20, 2.0, BollingerMode::Breakout, 1);
    let got = run(&mut b, [120.0, 121.0].iter().map(|c| (*c, bands())));
    assert!(got.is_empty());
}

#[test]
fn strategies_keep_instruments_apart() {
    let mut s = RsiReversion::new(14, 30.0, 70.0, 2);
    let mk = |inst: u32, i: usize, r: f64| {
        let mut v = IndicatorValues::default();
        v.set(IndicatorKey::Rsi(14), r);
        let mut x = input(i, true, 1.0, v);
        x.instrument = InstrumentId(inst);
        x
    };
    assert!(s.on_bar(&mk(0, 0, 50.0)).is_none());
    // Instrument 1 has no history: its first value only sets state.
    assert!(s.on_bar(&mk(1, 0, 20.0)).is_none());
    assert!(s.on_bar(&mk(0, 1, 20.0)).is_some());
    // Unknown instrument: ignored, no panic.
    assert!(s.on_bar(&mk(7, 1, 20.0)).is_none());
}
