//! HTTP side of the server over loopback: REST endpoints through curl (a
//! third-party client), keep-alive, status codes and content types, bearer
//! token, and malformed or oversized requests over raw TCP (the server
//! answers 4xx, closes that connection, and keeps serving others).

mod server_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use server_support::{TestEngine, curl, have, http_get, raw_request};

/// curl → (status, content type, body).
fn get(e: &TestEngine, args: &[&str], path: &str) -> (u16, String, String) {
    let url = e.url(path);
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-w", "\n%{http_code} %{content_type}", &url]);
    let out = curl(&a);
    assert!(out.status.success(), "curl {path}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, meta) = text.rsplit_once('\n').unwrap();
    let (code, ct) = meta.split_once(' ').unwrap();
    (code.parse().unwrap(), ct.to_string(), body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn rest_endpoints_over_curl() {
    if !have("curl") {
        println!("SKIPPED: curl not found (apt-get install curl)");
        return;
    }
    let e = TestEngine::start(&["bar_history = 5"], 4000.0, 120, &[]);
    e.wait_healthy();

    let (code, ct, body) = get(&e, &[], "/health");
    assert_eq!((code, ct.as_str()), (200, "application/json"), "{body}");
    let h = json(&body);
    assert_eq!(h["type"], "health");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["journal"], "disabled");
    assert_eq!(h["feeds"][0]["name"], "sim");
    assert_eq!(h["feeds"][0]["venue"], "SIM");
    assert!(h["feeds"][0]["ticks"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(h["rings"]["capacity"], 65536);

    let (code, _, body) = get(&e, &[], "/api/v1/status");
    assert_eq!(code, 200);
    let s = json(&body);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["counters"]["ticks"].as_u64().unwrap() > 0, "{s}");
    let names: Vec<&str> = s["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "trades",
            "quotes",
            "book",
            "bars.1s",
            "bars.1m",
            "anomalies",
            "stats",
            "signals",
            "orders",
            "fills",
            "portfolio",
            "market_status",
            "indicators",
            "movers",
            "sectors",
            "indices"
        ]
    );
    assert_eq!(s["channels"][1]["delivery"], "conflated");
    assert_eq!(s["channels"][0]["delivery"], "lossless");
    assert_eq!(s["channels"][6]["scope"], "global");

    let (code, _, body) = get(&e, &[], "/api/v1/symbols");
    assert_eq!(code, 200);
    let syms = json(&body);
    assert_eq!(syms["symbols"][0]["symbol"], "SIM:BTCUSDT");
    assert_eq!(syms["symbols"][0]["price_precision"], 2);
    assert_eq!(syms["symbols"][1]["symbol"], "SIM:ETHUSDT");

    // Symbols are case-insensitive and may be percent-encoded.
    let (code, _, body) = get(&e, &[], "/api/v1/latest/sim%3Abtcusdt");
    assert_eq!(code, 200, "{body}");
    let l = json(&body);
    assert_eq!(l["symbol"], "SIM:BTCUSDT");
    assert_eq!(l["trade"]["type"], "trade");
    assert_eq!(l["trade"]["symbol"], "SIM:BTCUSDT");
    assert_eq!(l["quote"]["type"], "quote");

    // Final 1 s bars appear; wait (bounded) for at least three.
    let deadline = Instant::now() + Duration::from_secs(30);
    let bars = loop {
        let (code, _, body) = get(&e, &[], "/api/v1/bars/SIM:BTCUSDT?window=1s&limit=2");
        assert_eq!(code, 200, "{body}");
        let b = json(&body);
        let n = b["bars"].as_array().unwrap().len();
        let (_, _, all) = get(&e, &[], "/api/v1/bars/SIM:BTCUSDT?window=1s");
        if json(&all)["bars"].as_array().unwrap().len() >= 3 {
            assert_eq!(n, 2, "limit=2: {b}");
            break b;
        }
        assert!(Instant::now() < deadline, "no bars after 30 s: {b}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(bars["window"], "1s");
    assert_eq!(bars["bars"][0]["final"], true);
    assert!(bars["bars"][1]["start"].as_i64() > bars["bars"][0]["start"].as_i64());
    assert_eq!(
        bars["bars"][1]["start"].as_i64().unwrap() - bars["bars"][0]["start"].as_i64().unwrap(),
        1_000_000_000
    );
    // History is bounded by server.bar_history.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = get(&e, &[], "/api/v1/bars/SIM:BTCUSDT?window=1s&limit=5");
        let n = json(&body)["bars"].as_array().unwrap().len();
        if n == 5 {
            break;
        }
        assert!(n < 5 && Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, _, body) = get(&e, &[], "/api/v1/bars/SIM:BTCUSDT?window=1s&limit=6");
    assert_eq!(code, 400, "{body}");
    let (_, _, body) = get(&e, &[], "/api/v1/latest/SIM:BTCUSDT");
    assert_eq!(json(&body)["bars"]["1s"]["type"], "bar");

    for (path, code, err) in [
        ("/api/v1/bars/SIM:BTCUSDT?window=7m", 400, "unknown_window"),
        ("/api/v1/bars/SIM:BTCUSDT?limit=0", 400, "bad_request"),
        ("/api/v1/bars/SIM:BTCUSDT?limit=abc", 400, "bad_request"),
        ("/api/v1/latest/SIM:NOPE", 404, "unknown_symbol"),
        ("/api/v1/bars/NOPE", 404, "unknown_symbol"),
        ("/nope", 404, "not_found"),
        ("/api/v1", 404, "not_found"),
        ("/ws", 426, "bad_request"),
    ] {
        let (c, ct, body) = get(&e, &[], path);
        assert_eq!(
            (c, ct.as_str()),
            (code, "application/json"),
            "{path}: {body}"
        );
        let v = json(&body);
        assert_eq!(v["type"], "error", "{path}");
        assert_eq!(v["code"], err, "{path}: {body}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }

    // Wrong method: 405 with Allow.
    let out = curl(&[
        "-i",
        "-X",
        "POST",
        "--data",
        "x=1",
        &e.url("/api/v1/status"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 405 "), "{text}");
    assert!(text.contains("Allow: GET, HEAD\r\n"), "{text}");
    assert!(text.contains("\"code\":\"method_not_allowed\""), "{text}");

    // HEAD: headers only.
    let out = curl(&["-I", &e.url("/api/v1/symbols")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("Content-Length: "), "{text}");

    // Keep-alive: curl reuses one connection for two requests.
    let out = curl(&[
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects}\n",
        &e.url("/health"),
        &e.url("/api/v1/symbols"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n0\n");

    let (code, _, body) = get(&e, &[], "/api/v1/performance");
    assert_eq!(code, 200);
    let p = json(&body);
    assert_eq!(p["unit"], "ns");
    assert!(
        p["since_start"]["kernel"]["count"].as_u64().unwrap() > 0,
        "{p}"
    );
    assert!(
        p["since_start"]["kernel"]["p99"].as_u64().unwrap() > 0,
        "{p}"
    );
}

#[test]
fn malformed_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let e = TestEngine::start(
        &[
            "max_header_bytes = 1024",
            "max_body_bytes = 100",
            "idle_timeout_secs = 1",
        ],
        500.0,
        120,
        &[],
    );
    // A connection that never finishes its request stays open meanwhile.
    let mut lazy = TcpStream::connect(&e.addr).unwrap();
    lazy.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();

    let cases: [(&[u8], u16); 5] = [
        (b"\x16\x03\x01garbage that is not http\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n", 400),
        (
            b"POST /api/v1/status HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n",
            413,
        ),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            501,
        ),
        (&[b'A'; 3000], 431),
    ];
    for (req, want) in cases {
        let raw = raw_request(&e.addr, req).expect("connect");
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {want} ")),
            "{:?} → {text}",
            String::from_utf8_lossy(&req[..req.len().min(40)])
        );
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.contains("\"type\":\"error\""), "{text}");
    }
    // Head too large (a valid start, then endless headers) → 431.
    let mut big = b"GET /health HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(20)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    let raw = raw_request(&e.addr, &big).unwrap();
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // Two pipelined requests on one connection get two answers in order.
    let raw = raw_request(
        &e.addr,
        b"GET /api/v1/symbols HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let first = text.find("HTTP/1.1 200 OK").expect("first answer");
    let second = text.find("HTTP/1.1 404 Not Found").expect("second answer");
    assert!(first < second, "{text}");

    // Others are still served.
    let (code, body) = http_get(&e.addr, "/api/v1/symbols").unwrap();
    assert_eq!(code, 200, "{body}");

    // The idle connection is closed by the server (idle_timeout_secs = 1);
    // bounded wait.
    lazy.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let n = lazy.read_to_end(&mut buf);
    assert!(n.is_ok(), "server closed the idle connection: {n:?}");
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    assert!(e.log().contains("bad HTTP request"), "{}", e.log());
}

#[test]
fn bearer_token_protects_rest_and_metrics_but_not_health() {
    if !have("curl") {
        println!("SKIPPED: curl not found (apt-get install curl)");
        return;
    }
    let token = "s3cret-token";
    let e = TestEngine::start(
        &["token_env = \"TW_HTTP_TEST_TOKEN\""],
        500.0,
        120,
        &[("TW_HTTP_TEST_TOKEN", token)],
    );
    let auth = format!("Authorization: Bearer {token}");
    for path in ["/api/v1/status", "/metrics", "/api/v1/symbols"] {
        let out = curl(&["-i", &e.url(path)]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("HTTP/1.1 401 "), "{path}: {text}");
        assert!(text.contains("WWW-Authenticate: Bearer\r\n"), "{text}");
        assert!(text.contains("\"code\":\"not_authenticated\""), "{text}");
        let (code, _, _) = get(&e, &["-H", "Authorization: Bearer nope"], path);
        assert_eq!(code, 401, "{path}");
        let (code, _, _) = get(&e, &["-H", &auth], path);
        assert_eq!(code, 200, "{path}");
        let (code, _, _) = get(&e, &[], &format!("{path}?token={token}"));
        assert_eq!(code, 200, "{path}");
    }
    let (code, _, _) = get(&e, &[], "/health");
    assert!(code == 200 || code == 503, "health is public: {code}");
    // Refusals are counted; the token never appears in the log.
    let (_, _, m) = get(&e, &["-H", &auth], "/metrics");
    let refused: f64 = m
        .lines()
        .find(|l| l.starts_with("tickwire_connections_refused_total{reason=\"unauthorized\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(refused >= 6.0, "{m}");
    assert!(!e.log().contains(token));
    assert!(e.log().contains("auth=true"), "{}", e.log());
}

#[test]
fn missing_token_variable_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\ntoken_env = \"TW_SURELY_UNSET_VAR\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args([
            "run",
            "--no-journal",
            "--duration",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&cfg)
        .env_remove("TW_SURELY_UNSET_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TW_SURELY_UNSET_VAR") && err.contains("export"),
        "{err}"
    );
}

#[test]
fn explicit_listen_address_in_use_fails_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--no-journal", "--duration", "5", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn market_overview_decision_and_indicator_endpoints() {
    if !have("curl") {
        println!("SKIPPED: curl not found (apt-get install curl)");
        return;
    }
    let e = TestEngine::start(&[], 4000.0, 120, &[]);
    e.wait_healthy();
    // Movers/sectors are published every kernel.overview.interval_ms of
    // event time and the first portfolio snapshot on the first event: poll
    // until they appear (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, _, body) = get(&e, &[], "/api/v1/movers");
        assert_eq!(code, 200, "{body}");
        let m = json(&body);
        assert_eq!(m["type"], "movers");
        let (_, _, pbody) = get(&e, &[], "/api/v1/portfolio");
        let p = json(&pbody);
        if !m["items"].as_array().unwrap().is_empty() && !p["items"].as_array().unwrap().is_empty()
        {
            assert_eq!(m["items"][0]["type"], "movers");
            assert_eq!(p["items"][0]["type"], "portfolio");
            assert!(p["items"][0]["cash"].is_string(), "{pbody}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "movers/portfolio never appeared: {body} {pbody}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _, body) = get(&e, &[], "/api/v1/sectors");
    assert_eq!(code, 200);
    let s = json(&body);
    assert!(
        s["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["type"] == "sector"),
        "{body}"
    );
    let (code, _, body) = get(&e, &[], "/api/v1/signals?limit=5");
    assert_eq!(code, 200);
    let s = json(&body);
    assert!(s["items"].as_array().unwrap().len() <= 5);
    let (code, _, body) = get(&e, &[], "/api/v1/signals?limit=0");
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = get(&e, &[], "/api/v1/indicators/SIM:BTCUSDT?window=1s");
    assert_eq!(code, 200, "{body}");
    let i = json(&body);
    assert_eq!(
        (i["symbol"].as_str(), i["window"].as_str()),
        (Some("SIM:BTCUSDT"), Some("1s"))
    );
    let (code, _, _) = get(&e, &[], "/api/v1/indicators/SIM:BTCUSDT?window=7m");
    assert_eq!(code, 400);
    let (code, _, _) = get(&e, &[], "/api/v1/indicators/NOPE:X");
    assert_eq!(code, 404);
}

#[test]
fn ticks_endpoint_answers_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "--duration",
            "6",
            "--listen",
            "127.0.0.1:0",
            "--listen-file",
        ])
        .arg(&addr_file)
        .arg("--journal-dir")
        .arg(dir.path().join("j"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file)
            && s.ends_with('\n')
        {
            break s.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no listen address");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(1500));
    let (code, body) = http_get(&addr, "/api/v1/ticks/SIM:ETHUSDT?limit=50").expect("answer");
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    let ticks = v["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 50, "{body}");
    assert!(ticks.iter().all(|t| t["symbol"] == "SIM:ETHUSDT"));
    let ts: Vec<i64> = ticks
        .iter()
        .map(|t| t["ts_recv"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    // A time filter that excludes everything.
    let (code, body) = http_get(&addr, "/api/v1/ticks/SIM:ETHUSDT?from=1&to=2").unwrap();
    assert_eq!(code, 200);
    assert!(json(&body)["ticks"].as_array().unwrap().is_empty());
    let (code, _) = http_get(&addr, "/api/v1/ticks/SIM:ETHUSDT?limit=0").unwrap();
    assert_eq!(code, 400);
    let (code, _) = http_get(&addr, "/api/v1/ticks/NOPE:X").unwrap();
    assert_eq!(code, 404);
    let _ = child.wait();
}
