//! Decode cost per message, per venue and message type, on real frames
//! (copied from the captures in shared/data/real).
//!
//! Each group has three functions over the same frames:
//! - `adapter`: the venue adapter's full decode into ticks (parse, symbol
//!   lookup, exact decimals, sequence checks);
//! - `simd_tape`: baseline, a bare simd-json tape parse with reused buffers
//!   (`fill_tape_padded` via `TapeParser`, which the adapters use too);
//! - `serde_typed`: control, `serde_json::from_slice` into a typed struct
//!   with borrowed strings (no decimal parsing).
//!
//! Frames cycle through 4096 variants with consecutive ids/sequence
//! numbers, so the adapters' gap detection sees a contiguous stream (one
//! wrap-around gap per 4096 messages) as in production.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;

use tickwire::feed::parse::TapeParser;
use tickwire::feed::{Adapter, AdapterParams};
use tickwire::instruments::InstrumentRegistry;
use tickwire::telemetry::FeedCounters;
use tickwire::tick::Tick;

const N: usize = 4096;

const BINANCE_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":ID,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
const BINANCE_BOOK_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":ID,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
const BINANCE_DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255408,"s":"BTCUSDT","U":FIRST,"u":LAST,"b":[["61837.63000000","3.78826000"],["61820.99000000","0.00000000"],["61771.97000000","0.00100000"],["61727.02000000","0.00000000"],["61726.65000000","0.03726000"]],"a":[["61837.64000000","1.60520000"],["61838.04000000","0.00000000"],["61860.34000000","0.05017000"],["61862.50000000","0.00000000"],["61865.86000000","0.00000000"],["61927.01000000","1.82577000"],["61946.20000000","0.00100000"],["62144.86000000","0.00000000"],["62212.01000000","0.00100000"],["62525.00000000","0.00020000"],["63100.00000000","2.65627000"]]}}"#;
const BYBIT_TRADE: &str = r#"{"topic":"publicTrade.SOLUSDT","type":"snapshot","ts":1786310834644,"data":[{"T":1786310834644,"s":"SOLUSDT","S":"Sell","v":"77.3","p":"77.300","L":"ZeroMinusTick","i":"a86bc51e-f76b-5a6e-a3bc-b704d30d78e3","BT":false,"RPI":false,"seq":272903643928},{"T":1786310834644,"s":"SOLUSDT","S":"Sell","v":"0.1","p":"77.300","L":"ZeroMinusTick","i":"d1198ebf-ad2b-58ea-b3df-b2a51839e0ed","BT":false,"RPI":false,"seq":272903643928},{"T":1786310834644,"s":"SOLUSDT","S":"Sell","v":"27.3","p":"77.300","L":"ZeroMinusTick","i":"1eb72605-61c8-5e2b-87f3-e653278c951b","BT":false,"RPI":false,"seq":ID}]}"#;
const COINBASE_TICKER: &str = r#"{"channel":"ticker","timestamp":"2026-08-09T21:05:48.298032046Z","sequence_num":ID,"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"ETH-USD","price":"1919.41","volume_24_h":"19975.95927439","low_24_h":"1911.04","high_24_h":"1925","low_52_w":"1505","high_52_w":"4955.9","price_percent_chg_24_h":"0.02501394006035","best_bid":"1919.44","best_ask":"1919.49","best_bid_quantity":"0.02858092","best_ask_quantity":"0.07814824"}]}]}"#;

fn variants(template: &str, first_id: u64) -> Vec<Vec<u8>> {
    (0..N as u64)
        .map(|i| {
            template
                .replace("ID", &(first_id + i).to_string())
                .replace("FIRST", &(first_id + 17 * i).to_string())
                .replace("LAST", &(first_id + 17 * i + 16).to_string())
                .into_bytes()
        })
        .collect()
}

// ----- serde_json typed controls (borrowed strings, no decimal parsing)

#[derive(Deserialize)]
struct BTrade<'a> {
    #[serde(rename = "s")]
    _s: &'a str,
    #[serde(rename = "t")]
    _t: u64,
    #[serde(rename = "p")]
    _p: &'a str,
    #[serde(rename = "q")]
    _q: &'a str,
    #[serde(rename = "T")]
    _ts: i64,
    #[serde(rename = "m")]
    _m: bool,
}

#[derive(Deserialize)]
struct BTradeEnv<'a> {
    #[serde(borrow, rename = "data")]
    _data: BTrade<'a>,
}

#[derive(Deserialize)]
struct BBookTicker<'a> {
    #[serde(rename = "u")]
    _u: u64,
    #[serde(rename = "s")]
    _s: &'a str,
    #[serde(rename = "b")]
    _b: &'a str,
    #[serde(rename = "B")]
    _bq: &'a str,
    #[serde(rename = "a")]
    _a: &'a str,
    #[serde(rename = "A")]
    _aq: &'a str,
}

#[derive(Deserialize)]
struct BBookTickerEnv<'a> {
    #[serde(borrow, rename = "data")]
    _data: BBookTicker<'a>,
}

#[derive(Deserialize)]
struct BDepth<'a> {
    #[serde(rename = "s")]
    _s: &'a str,
    #[serde(rename = "U")]
    _first: u64,
    #[serde(rename = "u")]
    _last: u64,
    #[serde(borrow, rename = "b")]
    _b: Vec<[&'a str; 2]>,
    #[serde(borrow, rename = "a")]
    _a: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
struct BDepthEnv<'a> {
    #[serde(borrow, rename = "data")]
    _data: BDepth<'a>,
}

#[derive(Deserialize)]
struct YTrade<'a> {
    #[serde(rename = "T")]
    _ts: i64,
    #[serde(rename = "s")]
    _s: &'a str,
    #[serde(rename = "S")]
    _side: &'a str,
    #[serde(rename = "v")]
    _v: &'a str,
    #[serde(rename = "p")]
    _p: &'a str,
    #[serde(rename = "i")]
    _i: &'a str,
}

#[derive(Deserialize)]
struct YTradeEnv<'a> {
    #[serde(rename = "topic")]
    _topic: &'a str,
    #[serde(borrow, rename = "data")]
    _data: Vec<YTrade<'a>>,
}

#[derive(Deserialize)]
struct CTicker<'a> {
    #[serde(rename = "product_id")]
    _product: &'a str,
    #[serde(rename = "best_bid")]
    _bid: &'a str,
    #[serde(rename = "best_ask")]
    _ask: &'a str,
    #[serde(rename = "best_bid_quantity")]
    _bid_q: &'a str,
    #[serde(rename = "best_ask_quantity")]
    _ask_q: &'a str,
}

#[derive(Deserialize)]
struct CEvent<'a> {
    #[serde(borrow, rename = "tickers")]
    _tickers: Vec<CTicker<'a>>,
}

#[derive(Deserialize)]
struct CTickerEnv<'a> {
    #[serde(rename = "timestamp")]
    _ts: &'a str,
    #[serde(rename = "sequence_num")]
    _seq: u64,
    #[serde(borrow, rename = "events")]
    _events: Vec<CEvent<'a>>,
}

fn registry(venue: &str, symbols: &[&str]) -> Arc<InstrumentRegistry> {
    let mut r = InstrumentRegistry::new();
    for s in symbols {
        r.add(&format!("{venue}:{s}"), 8, 8, None)
            .expect("valid instrument");
    }
    Arc::new(r)
}

fn params(venue: &str) -> AdapterParams {
    AdapterParams {
        venue: venue.into(),
        ..AdapterParams::default()
    }
}

fn group<T: for<'de> Deserialize<'de>>(
    c: &mut Criterion,
    name: &str,
    frames: &[Vec<u8>],
    mut adapter: Box<dyn Adapter>,
) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    let counters = FeedCounters::default();
    let mut out: Vec<Tick> = Vec::with_capacity(4096);
    let mut i = 0usize;
    g.bench_function("adapter", |b| {
        b.iter(|| {
            let f = &frames[i % N];
            i += 1;
            out.clear();
            black_box(adapter.decode(black_box(f), 0, &mut out, &counters))
        })
    });
    let mut parser = TapeParser::default();
    let mut i = 0usize;
    g.bench_function("simd_tape", |b| {
        b.iter(|| {
            let f = &frames[i % N];
            i += 1;
            black_box(parser.parse(black_box(f), |v| v.is_object()))
        })
    });
    let mut i = 0usize;
    g.bench_function("serde_typed", |b| {
        b.iter(|| {
            let f = &frames[i % N];
            i += 1;
            black_box(serde_json::from_slice::<T>(black_box(f)).is_ok())
        })
    });
    g.finish();
    assert_eq!(
        counters.decode_errors.get(),
        0,
        "{name}: frames must decode"
    );
    assert_eq!(
        counters.decimal_errors.get(),
        0,
        "{name}: frames must decode"
    );
}

/// `group` needs `for<'de> Deserialize<'de>`; these unit wrappers
/// deserialize the borrowing structs above for any input lifetime.
macro_rules! typed {
    ($name:ident, $ty:ident) => {
        struct $name;
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $ty::deserialize(d).map(|v| {
                    black_box(&v);
                    $name
                })
            }
        }
    };
}

typed!(BTradeT, BTradeEnv);
typed!(BBookTickerT, BBookTickerEnv);
typed!(BDepthT, BDepthEnv);
typed!(YTradeT, YTradeEnv);
typed!(CTickerT, CTickerEnv);

fn decode(c: &mut Criterion) {
    let bin = registry("BINANCE", &["BTCUSDT"]);
    let binance = || -> Box<dyn Adapter> {
        Box::new(tickwire::feed::binance::BinanceAdapter::with_params(
            bin.clone(),
            &params("BINANCE"),
        ))
    };
    group::<BTradeT>(
        c,
        "binance_trade",
        &variants(BINANCE_TRADE, 3_735_683_259),
        binance(),
    );
    group::<BBookTickerT>(
        c,
        "binance_bookTicker",
        &variants(BINANCE_BOOK_TICKER, 50_093_239_212),
        binance(),
    );
    group::<BDepthT>(
        c,
        "binance_depth",
        &variants(BINANCE_DEPTH, 50_093_239_208),
        binance(),
    );
    let bybit = tickwire::feed::bybit::BybitAdapter::new(
        registry("BYBIT-LINEAR", &["SOLUSDT"]),
        &params("BYBIT-LINEAR"),
        tickwire::feed::bybit::BybitCategory::Linear,
    );
    group::<YTradeT>(
        c,
        "bybit_publicTrade",
        &variants(BYBIT_TRADE, 272_903_643_928),
        Box::new(bybit),
    );
    let coinbase = tickwire::feed::coinbase::CoinbaseAdapter::new(
        registry("COINBASE", &["ETH-USD"]),
        &params("COINBASE"),
    );
    group::<CTickerT>(
        c,
        "coinbase_ticker",
        &variants(COINBASE_TICKER, 10),
        Box::new(coinbase),
    );
}

criterion_group!(benches, decode);
criterion_main!(benches);
