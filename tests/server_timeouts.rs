//! Server-side liveness: a subscriber that never answers pings is closed
//! with 4010, one that sends nothing for the idle timeout with 4011. The
//! client (tungstenite, blocking) does not read until the server reports
//! the close in /metrics, so nothing depends on timing.

mod server_support;

use std::time::{Duration, Instant};

use server_support::{TestEngine, http_get};
use tungstenite::Message;

fn closes(addr: &str, reason: &str) -> f64 {
    let (_, m) = http_get(addr, "/metrics").unwrap();
    let series = format!("tickwire_subscriber_closes_total{{reason=\"{reason}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{m}"))
}

fn wait_close_counted(addr: &str, reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while closes(addr, reason) < 1.0 {
        assert!(Instant::now() < deadline, "no {reason} close within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until a close frame; returns its code and how many pings came first.
fn read_close(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
) -> (u16, usize) {
    let mut pings = 0;
    loop {
        match ws.read().expect("read") {
            Message::Ping(_) => pings += 1,
            Message::Close(Some(f)) => return (u16::from(f.code), pings),
            Message::Close(None) => return (0, pings),
            _ => {}
        }
    }
}

#[test]
fn unanswered_pings_close_with_4010() {
    let e = TestEngine::start(
        &["ping_interval_secs = 1", "idle_timeout_secs = 120"],
        200.0,
        120,
        &[],
    );
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", e.addr)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    wait_close_counted(&e.addr, "ping_timeout");
    let (code, pings) = read_close(&mut ws);
    assert_eq!(code, 4010);
    assert!(pings >= 1, "a ping came before the close");
}

#[test]
fn silent_client_closes_with_4011() {
    let e = TestEngine::start(
        &["ping_interval_secs = 0", "idle_timeout_secs = 1"],
        200.0,
        120,
        &[],
    );
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", e.addr)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    wait_close_counted(&e.addr, "idle_timeout");
    let (code, pings) = read_close(&mut ws);
    assert_eq!((code, pings), (4011, 0));
}
