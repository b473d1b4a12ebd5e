//! `GET /metrics` in Prometheus text format 0.0.4: validated by `promtool
//! check metrics` (Debian package `prometheus`; tools/test.sh installs it)
//! and checked for the figures a run must produce, with a subscriber
//! connected through tungstenite's blocking client.

mod server_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use server_support::{TestEngine, have, http_get};

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
}

#[test]
fn metrics_pass_promtool_and_report_the_run() {
    let e = TestEngine::start(&[], 4000.0, 120, &[]);
    e.wait_healthy();

    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", e.addr)).expect("connect");
    ws.send(tungstenite::Message::text(
        r#"{"op":"subscribe","channels":["trades","quotes"],"symbols":["*"]}"#,
    ))
    .unwrap();
    let mut trades = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while trades < 50 {
        assert!(Instant::now() < deadline, "no trades within 30 s");
        if let tungstenite::Message::Text(t) = ws.read().unwrap()
            && t.contains("\"type\":\"trade\"")
        {
            trades += 1;
        }
    }
    // The subscriber latency histogram is published on the next server pass.
    std::thread::sleep(Duration::from_millis(300));

    let (code, m) = http_get(&e.addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        value(
            &m,
            "tickwire_messages_total{feed=\"sim\",symbol=\"SIM:BTCUSDT\"}"
        ) > 0.0
    );
    assert!(
        value(
            &m,
            "tickwire_messages_total{feed=\"sim\",symbol=\"SIM:ETHUSDT\"}"
        ) > 0.0
    );
    assert_eq!(
        value(
            &m,
            "tickwire_decode_errors_total{feed=\"sim\",kind=\"frame\"}"
        ),
        0.0
    );
    assert_eq!(
        value(&m, "tickwire_sequence_gaps_total{symbol=\"SIM:BTCUSDT\"}"),
        0.0
    );
    assert_eq!(value(&m, "tickwire_ring_capacity"), 65536.0);
    assert_eq!(value(&m, "tickwire_drops_total{stage=\"feed\"}"), 0.0);
    assert_eq!(value(&m, "tickwire_subscribers"), 1.0);
    assert_eq!(value(&m, "tickwire_subscriptions"), 4.0);
    assert!(value(&m, "tickwire_subscriber_messages_total") >= 50.0);
    assert_eq!(
        value(&m, "tickwire_http_responses_total{code=\"101\"}"),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "tickwire_subscriber_closes_total{reason=\"slow_consumer\"}"
        ),
        0.0
    );
    assert!(value(&m, "tickwire_stage_latency_seconds_count{stage=\"kernel\"}") > 0.0);
    let p99 = value(
        &m,
        "tickwire_stage_latency_seconds{stage=\"kernel\",quantile=\"0.99\"}",
    );
    assert!(p99 > 0.0 && p99 < 60.0, "{p99}");
    assert!(value(&m, "tickwire_e2e_latency_seconds_count{path=\"fanout\"}") > 0.0);
    assert!(
        value(
            &m,
            "tickwire_e2e_latency_seconds_count{path=\"subscriber\"}"
        ) >= 50.0
    );
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        value(
            &m,
            &format!("tickwire_e2e_latency_seconds{{path=\"subscriber\",quantile=\"{q}\"}}"),
        );
    }

    ws.close(None).unwrap();
    // Drive the close handshake to its end (bounded by the server's answer).
    while ws.read().is_ok() {}
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = http_get(&e.addr, "/metrics").unwrap();
        if value(
            &m,
            "tickwire_subscriber_closes_total{reason=\"client_close\"}",
        ) == 1.0
        {
            assert_eq!(value(&m, "tickwire_subscribers"), 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "close not counted:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    }

    if !have("promtool") {
        println!(
            "SKIPPED (promtool part): promtool not found; apt-get install prometheus (tools/test.sh does)"
        );
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}\n{}\n{m}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
