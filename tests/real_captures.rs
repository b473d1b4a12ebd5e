//! Every recorded capture in `../shared/data/real` that the venue adapters
//! cover decodes with zero errors, with the message counts of SOURCES.md,
//! exact decimal round trips for every trade, and no sequence gaps where
//! the capture is contiguous.
//!
//! Frames are read with the capture readers and decoded with the same
//! adapters `journal import` and the live feed use; the raw frame is parsed
//! independently with serde_json to know what each frame should yield.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tickwire::clock::Clock;
use tickwire::decimal::{format_scaled, normalize_decimal_str};
use tickwire::feed::capture::{CaptureFormat, CaptureReader, TardisCsvReader, TardisPoll};
use tickwire::feed::import::{AUTO_PRECISION, ImportVenue, registry_for_import};
use tickwire::feed::{DecodeError, Decoded, FrameSource, SourcePoll};
use tickwire::instruments::InstrumentRegistry;
use tickwire::telemetry::FeedCounters;
use tickwire::tick::{Side, Tick, TickKind, flags};

fn data_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/real"));
    if p.is_dir() {
        Some(p)
    } else {
        println!("SKIPPED: ../shared/data/real not found");
        None
    }
}

/// Decodes every frame of a capture, calling `check` with the raw frame,
/// the decode result and the ticks. Returns the registry and counters.
fn for_each_frame(
    path: &Path,
    format: CaptureFormat,
    venue: ImportVenue,
    mut check: impl FnMut(&InstrumentRegistry, &[u8], Result<Decoded, DecodeError>, &[Tick]),
) -> (InstrumentRegistry, FeedCounters) {
    let (reg, _) = registry_for_import(path, format, venue, None).expect("registry");
    let reg = Arc::new(reg);
    let mut reader =
        CaptureReader::open(path, format, &venue.capture_options()).expect("open capture");
    let mut adapter = venue.adapter(reg.clone());
    let counters = FeedCounters::default();
    let clock = Clock::new();
    let mut frame = Vec::new();
    let mut ticks = Vec::new();
    while let SourcePoll::Frame { recv_ns } = reader.poll_frame(&mut frame, &clock) {
        ticks.clear();
        let res = adapter.decode(&frame, recv_ns, &mut ticks, &counters);
        counters.frames.inc();
        check(&reg, &frame, res, &ticks);
    }
    assert!(
        reader.take_error().is_none(),
        "read error in {}",
        path.display()
    );
    assert_eq!(
        reader.stats().malformed,
        0,
        "malformed lines in {}",
        path.display()
    );
    ((*reg).clone(), counters)
}

/// `normalize(original) == normalize(format_scaled(parsed))`.
fn assert_round_trip(original: &str, parsed: i64, what: &str) {
    assert_eq!(
        normalize_decimal_str(original),
        normalize_decimal_str(format_scaled(parsed, AUTO_PRECISION).as_str()),
        "{what}: '{original}' did not round-trip"
    );
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} in {v}"))
}

fn no_gaps(ticks: &[Tick]) {
    assert!(
        ticks.iter().all(|t| t.kind() != Some(TickKind::Gap)),
        "unexpected gap tick"
    );
}

// ---------------------------------------------------------------- Binance

#[derive(Debug, Default, PartialEq, Eq)]
struct BinanceCounts {
    trade: u64,
    agg_trade: u64,
    book_ticker: u64,
    depth: u64,
    kline: u64,
    kline_final: u64,
    snapshot: u64,
}

fn check_binance(path: &Path, format: CaptureFormat, venue: ImportVenue) -> BinanceCounts {
    let mut n = BinanceCounts::default();
    let mut last_trade_id: BTreeMap<u32, u64> = BTreeMap::new();
    let (_, c) = for_each_frame(path, format, venue, |_, raw, res, ticks| {
        let v: Value = serde_json::from_slice(raw).expect("frame is JSON");
        no_gaps(ticks);
        let stream = v["stream"].as_str().unwrap_or("");
        let d = if v.get("data").is_some() {
            &v["data"]
        } else {
            &v
        };
        if stream.ends_with("@trade") || stream.ends_with("@aggTrade") {
            assert_eq!(res, Ok(Decoded::Data(1)), "{stream}");
            let t = ticks[0];
            assert_eq!(t.kind(), Some(TickKind::Trade));
            assert_round_trip(s(d, "p"), t.price, "trade price");
            assert_round_trip(s(d, "q"), t.size, "trade size");
            let id_key = if stream.ends_with("@trade") { "t" } else { "a" };
            assert_eq!(t.id, d[id_key].as_u64().unwrap());
            let maker = d["m"].as_bool().unwrap();
            assert_eq!(t.side(), if maker { Side::Sell } else { Side::Buy });
            assert_eq!(t.ts_event_ns, d["T"].as_i64().unwrap() * 1_000_000);
            // Independent contiguity check of the ids.
            if let Some(prev) = last_trade_id.insert(t.instrument.0, t.id) {
                assert_eq!(t.id, prev + 1, "trade ids contiguous");
            }
            if id_key == "t" {
                n.trade += 1;
            } else {
                n.agg_trade += 1;
            }
        } else if stream.ends_with("@bookTicker") {
            assert_eq!(res, Ok(Decoded::Data(1)));
            let q = ticks[0];
            assert_eq!(q.kind(), Some(TickKind::Quote));
            assert_round_trip(s(d, "b"), q.price, "bid");
            assert_round_trip(s(d, "B"), q.size, "bid size");
            assert_round_trip(s(d, "a"), q.price2, "ask");
            assert_round_trip(s(d, "A"), q.size2, "ask size");
            n.book_ticker += 1;
        } else if stream.contains("@depth") {
            let levels = d["b"].as_array().unwrap().len() + d["a"].as_array().unwrap().len();
            assert_eq!(res, Ok(Decoded::Data(levels)));
            assert!(ticks.iter().all(|t| t.kind() == Some(TickKind::BookLevel)
                && !t.has_flag(flags::SNAPSHOT)
                && t.id == d["u"].as_u64().unwrap()));
            n.depth += 1;
        } else if stream.contains("@kline") {
            if d["k"]["x"].as_bool() == Some(true) {
                assert_eq!(res, Ok(Decoded::Data(1)));
                let b = ticks[0];
                assert_eq!(b.kind(), Some(TickKind::Bar));
                assert_round_trip(s(&d["k"], "c"), b.price, "close");
                assert_round_trip(s(&d["k"], "o"), b.id as i64, "open");
                n.kline_final += 1;
            } else {
                assert_eq!(res, Ok(Decoded::Control));
            }
            n.kline += 1;
        } else if d.get("lastUpdateId").is_some() {
            let levels = d["bids"].as_array().unwrap().len() + d["asks"].as_array().unwrap().len();
            assert_eq!(res, Ok(Decoded::Data(levels)));
            assert!(ticks.iter().all(|t| t.has_flag(flags::SNAPSHOT)));
            n.snapshot += 1;
        } else {
            panic!("unexpected frame {v}");
        }
    });
    assert_eq!(c.decode_errors.get(), 0);
    assert_eq!(c.decimal_errors.get(), 0);
    assert_eq!(c.unknown_symbols.get(), 0);
    assert_eq!(
        c.gaps.get(),
        0,
        "Binance trade ids and depth chains are contiguous"
    );
    n
}

#[test]
fn binance_spot_hftbacktest_gz() {
    let Some(dir) = data_dir() else { return };
    let n = check_binance(
        &dir.join("binance-spot/btcusdt_20240808.gz"),
        CaptureFormat::Hftbacktest,
        ImportVenue::Binance,
    );
    assert_eq!(
        n,
        BinanceCounts {
            trade: 9_757,
            book_ticker: 28_040,
            depth: 3_451,
            snapshot: 1,
            ..BinanceCounts::default()
        }
    );
}

#[test]
fn binance_usdm_hftbacktest_gz() {
    let Some(dir) = data_dir() else { return };
    let n = check_binance(
        &dir.join("binance-usdm/btcusdt_20240808.gz"),
        CaptureFormat::Hftbacktest,
        ImportVenue::BinanceUsdm,
    );
    assert_eq!(
        n,
        BinanceCounts {
            trade: 21_313,
            book_ticker: 66_089,
            depth: 6_551,
            snapshot: 1,
            ..BinanceCounts::default()
        }
    );
}

#[test]
fn binance_cryptofeed_ws_captures() {
    let Some(dir) = data_dir() else { return };
    let spot = check_binance(
        &dir.join("binance-spot/BINANCE.ws.1.0"),
        CaptureFormat::Cryptofeed,
        ImportVenue::Binance,
    );
    assert_eq!(
        spot,
        BinanceCounts {
            agg_trade: 28,
            book_ticker: 412,
            depth: 546,
            kline: 17,
            kline_final: 2,
            ..BinanceCounts::default()
        }
    );
    let usdm = check_binance(
        &dir.join("binance-usdm/BINANCE_FUTURES.ws.1.0"),
        CaptureFormat::Cryptofeed,
        ImportVenue::BinanceUsdm,
    );
    assert_eq!(
        usdm,
        BinanceCounts {
            agg_trade: 91,
            book_ticker: 613,
            depth: 764,
            kline: 67,
            kline_final: 4,
            ..BinanceCounts::default()
        }
    );
}

// ---------------------------------------------------------------- Bybit

#[derive(Debug, Default, PartialEq, Eq)]
struct BybitCounts {
    trade_frames: u64,
    trades: u64,
    book_snapshot: u64,
    book_delta: u64,
    ticker_snapshot: u64,
    ticker_delta: u64,
    quotes: u64,
    kline: u64,
    bars: u64,
    acks: u64,
}

fn check_bybit(path: &Path, venue: ImportVenue) -> BybitCounts {
    let mut n = BybitCounts::default();
    let (_, c) = for_each_frame(
        path,
        CaptureFormat::CryptofeedJsonl,
        venue,
        |_, raw, res, ticks| {
            let v: Value = serde_json::from_slice(raw).expect("frame is JSON");
            no_gaps(ticks);
            let topic = v["topic"].as_str().unwrap_or("");
            let kind = topic.split('.').next().unwrap_or("");
            match kind {
                "publicTrade" => {
                    let trades = v["data"].as_array().unwrap();
                    assert_eq!(res, Ok(Decoded::Data(trades.len())));
                    for (t, raw) in ticks.iter().zip(trades) {
                        assert_eq!(t.kind(), Some(TickKind::Trade));
                        assert_round_trip(s(raw, "p"), t.price, "trade price");
                        assert_round_trip(s(raw, "v"), t.size, "trade size");
                        let numeric = s(raw, "i").bytes().all(|b| b.is_ascii_digit());
                        assert_eq!(t.has_flag(flags::ID_HASHED), !numeric);
                        assert_eq!(
                            venue == ImportVenue::Bybit,
                            numeric,
                            "spot ids numeric, linear UUIDs"
                        );
                        let side = if s(raw, "S") == "Buy" {
                            Side::Buy
                        } else {
                            Side::Sell
                        };
                        assert_eq!(t.side(), side);
                    }
                    n.trade_frames += 1;
                    n.trades += trades.len() as u64;
                }
                "orderbook" => {
                    let d = &v["data"];
                    let levels = d["b"].as_array().map_or(0, Vec::len)
                        + d["a"].as_array().map_or(0, Vec::len);
                    assert_eq!(res, Ok(Decoded::Data(levels)));
                    let snap = s(&v, "type") == "snapshot";
                    assert!(ticks.iter().all(|t| t.has_flag(flags::SNAPSHOT) == snap));
                    if snap {
                        n.book_snapshot += 1;
                    } else {
                        n.book_delta += 1;
                    }
                }
                "tickers" => {
                    if s(&v, "type") == "snapshot" {
                        n.ticker_snapshot += 1;
                    } else {
                        n.ticker_delta += 1;
                    }
                    match res {
                        Ok(Decoded::Data(1)) => {
                            let q = ticks[0];
                            assert_eq!(q.kind(), Some(TickKind::Quote));
                            // Fields present in this frame must be in the quote.
                            let d = &v["data"];
                            for (k, val) in [
                                ("bid1Price", q.price),
                                ("bid1Size", q.size),
                                ("ask1Price", q.price2),
                                ("ask1Size", q.size2),
                            ] {
                                if let Some(x) = d[k].as_str() {
                                    assert_round_trip(x, val, k);
                                }
                            }
                            assert!(q.price < q.price2, "not crossed");
                            n.quotes += 1;
                        }
                        Ok(Decoded::Control) => {}
                        other => panic!("tickers frame → {other:?}"),
                    }
                }
                "kline" => {
                    let finals = v["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|k| k["confirm"].as_bool() == Some(true))
                        .count();
                    if finals == 0 {
                        assert_eq!(res, Ok(Decoded::Control));
                    } else {
                        assert_eq!(res, Ok(Decoded::Data(finals)));
                    }
                    n.kline += 1;
                    n.bars += finals as u64;
                }
                "" => {
                    assert_eq!(s(&v, "op"), "subscribe");
                    assert_eq!(res, Ok(Decoded::Control));
                    n.acks += 1;
                }
                _ => panic!("unexpected topic {topic}"),
            }
        },
    );
    assert_eq!(c.decode_errors.get(), 0);
    assert_eq!(c.decimal_errors.get(), 0);
    assert_eq!(c.unknown_symbols.get(), 0);
    assert_eq!(c.gaps.get(), 0, "order-book u is contiguous in the capture");
    n
}

#[test]
fn bybit_v5_spot_and_linear() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("bybit/BYBIT.jsonl");
    let linear = check_bybit(&path, ImportVenue::BybitLinear);
    // SOURCES.md: linear 4+1,594 orderbook, 4+754 tickers, 102
    // publicTrade, 71 kline, 17 acks. Quotes: the 4 snapshots plus the 634
    // deltas that carry a bid1/ask1 field (120 deltas only move other
    // fields). Bars: 4 confirmed klines.
    assert_eq!(
        linear,
        BybitCounts {
            trade_frames: 102,
            trades: 327,
            book_snapshot: 4,
            book_delta: 1_594,
            ticker_snapshot: 4,
            ticker_delta: 754,
            quotes: 638,
            kline: 71,
            bars: 4,
            acks: 17,
        }
    );
    let spot = check_bybit(&path, ImportVenue::Bybit);
    // Spot: 2+548 orderbook, 81 tickers (snapshot only, no bid/ask: no
    // quotes), 18 publicTrade, 25 kline, 7 acks.
    assert_eq!(
        spot,
        BybitCounts {
            trade_frames: 18,
            trades: 20,
            book_snapshot: 2,
            book_delta: 548,
            ticker_snapshot: 81,
            ticker_delta: 0,
            quotes: 0,
            kline: 25,
            bars: 2,
            acks: 7,
        }
    );
    assert_eq!(linear.trades + spot.trades, 347, "SOURCES.md: 347 trades");
}

// ---------------------------------------------------------------- Coinbase

#[test]
fn coinbase_advanced_trade() {
    let Some(dir) = data_dir() else { return };
    let mut channels: BTreeMap<String, u64> = BTreeMap::new();
    let mut snapshot_trades = Vec::new();
    let mut update_trades = 0u64;
    let mut update_trade_frames = 0u64;
    let mut expected_seq = 0u64;
    let (_, c) = for_each_frame(
        &dir.join("coinbase/COINBASE.jsonl"),
        CaptureFormat::CryptofeedJsonl,
        ImportVenue::Coinbase,
        |_, raw, res, ticks| {
            let v: Value = serde_json::from_slice(raw).expect("frame is JSON");
            no_gaps(ticks);
            assert_eq!(
                v["sequence_num"].as_u64(),
                Some(expected_seq),
                "no gaps 0..1029"
            );
            expected_seq += 1;
            let ch = s(&v, "channel").to_string();
            let events = v["events"].as_array().unwrap();
            let ty = events[0]["type"].as_str().unwrap_or("");
            *channels.entry(format!("{ch}/{ty}")).or_default() += 1;
            match ch.as_str() {
                "market_trades" => {
                    let mut raws: Vec<&Value> = Vec::new();
                    for e in events {
                        let mut ts: Vec<&Value> = e["trades"].as_array().unwrap().iter().collect();
                        ts.reverse(); // newest first on the wire
                        if ty == "snapshot" {
                            snapshot_trades.push(ts.len());
                        }
                        raws.extend(ts);
                    }
                    assert_eq!(res, Ok(Decoded::Data(raws.len())));
                    for (t, r) in ticks.iter().zip(&raws) {
                        assert_round_trip(s(r, "price"), t.price, "trade price");
                        assert_round_trip(s(r, "size"), t.size, "trade size");
                        assert_eq!(t.id.to_string(), s(r, "trade_id"));
                        assert_eq!(t.has_flag(flags::SNAPSHOT), ty == "snapshot");
                    }
                    assert!(ticks.windows(2).all(|w| w[0].instrument != w[1].instrument
                        || w[0].ts_event_ns <= w[1].ts_event_ns));
                    if ty == "update" {
                        update_trades += raws.len() as u64;
                        update_trade_frames += 1;
                    }
                }
                "ticker" => {
                    let n: usize = events
                        .iter()
                        .map(|e| e["tickers"].as_array().unwrap().len())
                        .sum();
                    assert_eq!(res, Ok(Decoded::Data(n)));
                    let t = &events[0]["tickers"][0];
                    assert_round_trip(s(t, "best_bid"), ticks[0].price, "best_bid");
                    assert_round_trip(
                        s(t, "best_ask_quantity"),
                        ticks[0].size2,
                        "best_ask_quantity",
                    );
                }
                "l2_data" => {
                    let n: usize = events
                        .iter()
                        .map(|e| e["updates"].as_array().unwrap().len())
                        .sum();
                    assert_eq!(res, Ok(Decoded::Data(n)));
                    assert!(
                        ticks
                            .iter()
                            .all(|t| t.has_flag(flags::SNAPSHOT) == (ty == "snapshot"))
                    );
                }
                "heartbeats" | "subscriptions" | "candles" => {
                    assert_eq!(res, Ok(Decoded::Control));
                }
                other => panic!("unexpected channel {other}"),
            }
        },
    );
    assert_eq!(c.decode_errors.get(), 0);
    assert_eq!(c.decimal_errors.get(), 0);
    assert_eq!(c.unknown_symbols.get(), 0);
    assert_eq!(c.gaps.get(), 0);
    assert_eq!(snapshot_trades, [100, 100]);
    assert_eq!((update_trade_frames, update_trades), (57, 79));
    let get = |k: &str| channels.get(k).copied().unwrap_or(0);
    assert_eq!((get("ticker/snapshot"), get("ticker/update")), (2, 158));
    assert_eq!((get("l2_data/snapshot"), get("l2_data/update")), (2, 773));
    assert_eq!(get("heartbeats/"), 25);
    assert_eq!(get("subscriptions/"), 5);
    assert_eq!((get("candles/snapshot"), get("candles/update")), (2, 4));
    assert_eq!(expected_seq, 1_030);
}

// ---------------------------------------------------------------- Tardis

#[test]
fn tardis_csv_trades_and_quotes() {
    let Some(dir) = data_dir() else { return };
    for (file, want_trades) in [("trades.csv", true), ("quotes.csv", false)] {
        let path = dir.join("tardis-binance-futures").join(file);
        let (reg, _) = registry_for_import(
            &path,
            CaptureFormat::TardisCsv,
            ImportVenue::BinanceUsdm,
            None,
        )
        .unwrap();
        let venue = reg.venue_id("BINANCE-USDM");
        let c = FeedCounters::default();
        let mut r = TardisCsvReader::open(&path).unwrap();
        assert_eq!(r.is_trades(), want_trades);
        // The raw rows, to compare every value.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rows = text.lines().skip(1);
        let mut n = 0u64;
        let mut prev_id = None;
        loop {
            let t = match r.next_tick(&reg, venue, &c) {
                TardisPoll::Tick(t) => t,
                TardisPoll::Done => break,
                other => panic!("{file}: {other:?}"),
            };
            let row: Vec<&str> = rows.next().unwrap().split(',').collect();
            if want_trades {
                // exchange,symbol,timestamp,local_timestamp,id,side,price,amount
                assert_round_trip(row[6], t.price, "price");
                assert_round_trip(row[7], t.size, "amount");
                assert_eq!(t.id.to_string(), row[4]);
                if let Some(p) = prev_id {
                    assert_eq!(t.id, p + 1, "ids 42377944..42387942 without gaps");
                }
                prev_id = Some(t.id);
                assert_eq!(t.ts_event_ns, row[2].parse::<i64>().unwrap() * 1000);
            } else {
                // ...,ask_amount,ask_price,bid_price,bid_amount
                assert_round_trip(row[4], t.size2, "ask_amount");
                assert_round_trip(row[5], t.price2, "ask_price");
                assert_round_trip(row[6], t.price, "bid_price");
                assert_round_trip(row[7], t.size, "bid_amount");
                assert!(t.price < t.price2, "none crossed");
            }
            assert_eq!(t.ts_recv_ns, row[3].parse::<i64>().unwrap() * 1000);
            n += 1;
        }
        assert_eq!(n, 9_999, "{file}");
        assert_eq!(prev_id, want_trades.then_some(42_387_942));
        assert_eq!(c.unknown_symbols.get(), 0);
        assert!(r.take_error().is_none());
    }
}

// ---------------------------------------------------------------- CLI

#[test]
fn cli_journal_import_binance_spot() {
    let Some(dir) = data_dir() else { return };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["journal", "import"])
        .arg(dir.join("binance-spot/btcusdt_20240808.gz"))
        .args(["--format", "hftbacktest", "--venue", "binance"])
        .output()
        .expect("run tickwire");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let count = |label: &str| -> u64 {
        stderr
            .lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix(label)
                    .filter(|rest| rest.starts_with(' '))
                    .map(|rest| rest.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no '{label}' line in: {stderr}"))
    };
    assert_eq!(count("trade"), 9_757);
    assert_eq!(count("quote"), 28_040);
    assert_eq!(count("frames"), 41_249);
    assert_eq!(count("decode errors"), 0);
    assert_eq!(count("gaps"), 0);
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let mut trades = 0u64;
    let mut lines = 0u64;
    let mut first_trade = None;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        lines += 1;
        if v["type"] == "trade" {
            trades += 1;
            first_trade.get_or_insert(v);
        }
    }
    assert_eq!(trades, 9_757);
    assert_eq!(lines, count("ticks"));
    // The EVENTS.md example trade, at the auto precision of 8.
    let t = first_trade.unwrap();
    assert_eq!(t["symbol"], "BINANCE:BTCUSDT");
    assert_eq!(t["ts_event"], 1_723_161_255_342_000_000i64);
    assert_eq!(t["ts_recv"], 1_723_161_254_087_896_568i64);
    assert_eq!(
        normalize_decimal_str(t["price"].as_str().unwrap()),
        "61837.63"
    );
    assert_eq!(normalize_decimal_str(t["size"].as_str().unwrap()), "0.02");
    assert_eq!(t["side"], "sell");
    assert_eq!(t["trade_id"], "3735683259");
}
