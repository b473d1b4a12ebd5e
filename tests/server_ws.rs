//! WebSocket subscribers over loopback with a third-party client (Python
//! `websockets`, scripts in tests/clients/): subscribe, snapshot, live
//! events in order, unsubscribe, every error code, 1009 on oversize,
//! bearer token, max clients, slow consumers (4008), shutdown (1001).
//!
//! Each test starts the `tickwire` binary on port 0 with the simulator.
//! Skips (printing SKIPPED) only when no Python with `websockets` exists.

mod server_support;

use std::time::Duration;

use serde_json::json;
use server_support::{TestEngine, python, scenario};

#[test]
fn subscribe_snapshot_order_unsubscribe_errors_bars_oversize() {
    let Some(py) = python() else { return };
    let e = TestEngine::start(
        &["max_subscriptions = 5", "max_message_bytes = 4096"],
        4000.0,
        120,
        &[],
    );
    e.wait_healthy();
    // Let the first trades of both symbols happen, so snapshots exist.
    std::thread::sleep(Duration::from_millis(500));

    let r = scenario(&py, "flow", &e.addr, &[]);
    assert_eq!(
        r["ack"],
        json!({"type":"subscribed","channels":["trades","quotes"],"symbols":["SIM:BTCUSDT"]})
    );
    // Snapshot right after the ack: latest trade, then latest quote.
    assert_eq!(r["first_two_types"], json!(["trade", "quote"]), "{r}");
    // The snapshot trade is the latest: live trades continue it without a
    // gap or a duplicate (the simulator numbers trades 1, 2, 3, ...).
    let ids = r["trade_ids"].as_array().unwrap();
    assert!(ids.len() >= 60, "{r}");
    assert_eq!(r["trade_ids_consecutive"], true, "{r}");
    assert!(r["quotes"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["symbols"], json!(["SIM:BTCUSDT"]), "{r}");
    assert_eq!(r["types"], json!(["quote", "trade"]), "{r}");
    assert_eq!(r["pong"], json!({"type":"pong"}));
    assert_eq!(
        r["unsub_ack"],
        json!({"type":"unsubscribed","channels":["trades"],"symbols":["SIM:BTCUSDT"]})
    );
    assert_eq!(r["after_unsub_trades"], 0, "{r}");
    assert!(r["after_unsub_quotes"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["star_ack"]["symbols"], json!(["*"]));
    assert_eq!(r["star_symbols"], json!(["SIM:BTCUSDT", "SIM:ETHUSDT"]));

    let r = scenario(&py, "errors", &e.addr, &[]);
    assert_eq!(
        r["codes"],
        json!({
            "malformed": "malformed_json",
            "not_object": "bad_request",
            "missing_op": "bad_request",
            "unknown_op": "unknown_op",
            "unknown_channel": "unknown_channel",
            "unknown_symbol": "unknown_symbol",
            "no_symbols": "bad_request",
            "too_many": "too_many_subscriptions",
            "binary": "unsupported_message",
        }),
        "{r}"
    );
    assert_eq!(
        r["unknown_channel_message"],
        "channel 'nope' does not exist; known: trades, quotes, book, bars.1s, bars.1m, anomalies, stats, signals, orders, fills, portfolio, market_status, indicators, movers, sectors, indices"
    );
    assert_eq!(r["still_alive"], true);

    let r = scenario(&py, "bars", &e.addr, &[]);
    assert_eq!(r["ack"]["channels"], json!(["bars.1s"]));
    assert_eq!(r["types"], json!(["bar", "bar", "bar"]), "{r}");
    assert_eq!(r["windows"], json!(["1s", "1s", "1s"]), "{r}");
    assert_eq!(r["final"], json!([true, true, true]), "{r}");
    let starts: Vec<i64> = r["starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1] > w[0] && (w[1] - w[0]) % 1_000_000_000 == 0),
        "{r}"
    );

    let r = scenario(&py, "oversize", &e.addr, &["5000"]);
    assert_eq!(r["error_code"], "message_too_large", "{r}");
    assert_eq!(r["close_code"], 1009, "{r}");
    assert_eq!(r["other_client_pong"], "pong", "{r}");
}

#[test]
fn bearer_token_is_required_when_configured() {
    let Some(py) = python() else { return };
    let token = "t0k3n-for-tests";
    let e = TestEngine::start(
        &["token_env = \"TICKWIRE_TEST_TOKEN\""],
        1000.0,
        120,
        &[("TICKWIRE_TEST_TOKEN", token)],
    );
    let r = scenario(&py, "auth", &e.addr, &[token]);
    assert_eq!(
        r,
        json!({"none":401,"wrong":401,"wrong_query":401,"header":"pong","query":"pong"})
    );
    // The token is never logged.
    assert!(!e.log().contains(token), "{}", e.log());
}

#[test]
fn too_many_clients_are_refused_with_503() {
    let Some(py) = python() else { return };
    let e = TestEngine::start(&["max_clients = 3"], 1000.0, 120, &[]);
    let r = scenario(&py, "max_clients", &e.addr, &["3"]);
    assert_eq!(r["connected"], 3, "{r}");
    assert_eq!(r["extra"], 503, "{r}");
    assert!(
        r["extra_body"]
            .as_str()
            .unwrap()
            .contains("too_many_clients"),
        "{r}"
    );
    assert_eq!(r["after_close"], "accepted", "{r}");
    assert!(e.log().contains("server.max_clients reached"));
}

#[test]
fn never_reading_client_is_closed_4008_while_others_keep_receiving() {
    let Some(py) = python() else { return };
    let e = TestEngine::start(
        &[
            "max_queued_messages = 2048",
            "max_write_buffer_bytes = 65536",
            "ping_interval_secs = 0",
        ],
        20_000.0,
        180,
        &[],
    );
    e.wait_healthy();
    let r = scenario(&py, "slow", &e.addr, &[]);
    assert_eq!(r["slow_closed_seen_by_server"], true, "{r}");
    assert_eq!(r["slow_close_code"], 4008, "{r}");
    assert_eq!(r["slow_close_reason"], "slow consumer", "{r}");
    assert!(r["slow_read_before_close"].as_u64().unwrap() > 0, "{r}");
    // The normal client got every trade of its symbol, in order, before
    // and after the slow client was dropped.
    assert_eq!(r["normal_consecutive"], true, "{r}");
    assert!(
        r["normal_trades_after_slow_close"].as_u64().unwrap() >= 200,
        "{r}"
    );
}

#[test]
fn shutdown_closes_subscribers_with_1001() {
    let Some(py) = python() else { return };
    let mut e = TestEngine::start(&[], 1000.0, 4, &[]);
    let r = scenario(&py, "shutdown", &e.addr, &[]);
    assert_eq!(r["ack"]["channels"], json!(["stats"]));
    assert_eq!(r["close_code"], 1001, "{r}");
    let (st, log) = e.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{log}");
    assert!(log.contains("listening on 127.0.0.1:"), "{log}");
}
