//! `tickwire journal {inspect, verify, export, tail}` over a journal
//! written by `tickwire run`.

use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run_engine(dir: &std::path::Path, secs: &str) -> u64 {
    let out = bin()
        .args(["run", "--duration", secs, "--journal-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    let line = e
        .lines()
        .find(|l| l.starts_with("tickwire summary:"))
        .unwrap();
    line.split(" ticks (")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn inspect_verify_export_agree_and_corruption_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let ticks = run_engine(&j, "2");
    assert!(ticks > 1000);

    let out = bin().args(["journal", "verify"]).arg(&j).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("({ticks} checked)")));

    let out = bin()
        .args(["journal", "inspect", "--json"])
        .arg(&j)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], ticks);
    let btc = v["instruments"]["SIM:BTCUSDT"]["ticks"].as_u64().unwrap();
    let eth = v["instruments"]["SIM:ETHUSDT"]["ticks"].as_u64().unwrap();
    assert_eq!(btc + eth, ticks);

    let out = bin()
        .args(["journal", "export", "--format", "jsonl"])
        .arg(&j)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, ticks);
    let out = bin()
        .args([
            "journal",
            "export",
            "--format",
            "csv",
            "--symbols",
            "SIM:ETHUSDT",
            "--kinds",
            "trade",
        ])
        .arg(&j)
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "type,symbol,ts_event,ts_recv,price,size,price2,size2,side,id,flags"
    );
    let csv_trades: Vec<&str> = rows.collect();
    let json_trades: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["type"] == "trade" && v["symbol"] == "SIM:ETHUSDT")
        .collect();
    assert_eq!(csv_trades.len(), json_trades.len());
    for (c, j) in csv_trades.iter().zip(&json_trades) {
        let f: Vec<&str> = c.split(',').collect();
        assert_eq!(
            f[4],
            j["price"].as_str().unwrap(),
            "same exact decimal in both formats"
        );
        assert_eq!(f[5], j["size"].as_str().unwrap());
        assert_eq!(f[9], j["trade_id"].as_str().unwrap());
    }
    // Time filter: [from, to) by event time.
    let t0: i64 = json_trades[0]["ts_event"].as_i64().unwrap();
    let out = bin()
        .args([
            "journal",
            "export",
            "--kinds",
            "trades",
            "--symbols",
            "SIM:ETHUSDT",
            "--from",
        ])
        .arg(t0.to_string())
        .arg("--to")
        .arg((t0 + 500_000_000).to_string())
        .arg(&j)
        .output()
        .unwrap();
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    let want = json_trades
        .iter()
        .filter(|v| (t0..t0 + 500_000_000).contains(&v["ts_event"].as_i64().unwrap()))
        .count();
    assert_eq!(n, want);
    let out = bin()
        .args(["journal", "export", "--symbols", "NOPE:X"])
        .arg(&j)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIM:BTCUSDT"));

    // Flip a byte inside record 100 of a copy: verify names the offset.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&j).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "writer.lock" && e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let seg = copy.join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let off = 4096 + 100 * 80 + 30;
    bytes[off] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let out = bin()
        .args(["journal", "verify"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&format!("offset {}", 4096 + 100 * 80)), "{e}");
}

#[test]
fn tail_follows_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("live");
    let tail = bin()
        .args(["journal", "tail", "-n", "1000000000", "--duration", "5"])
        .arg(&j)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ticks = run_engine(&j, "2");
    let out = tail.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut last_trade: std::collections::HashMap<String, u64> = Default::default();
    let mut n = 0u64;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        n += 1;
        if v["type"] == "trade" {
            let id: u64 = v["trade_id"].as_str().unwrap().parse().unwrap();
            let sym = v["symbol"].as_str().unwrap().to_string();
            if let Some(prev) = last_trade.insert(sym, id) {
                assert_eq!(id, prev + 1, "every trade once, in order");
            }
        }
    }
    assert_eq!(n, ticks, "the tail saw every committed tick");
}

#[path = "common/mod.rs"]
mod common;

#[test]
fn export_of_an_imported_real_capture_reproduces_every_trade_string() {
    let Some(real) = common::real_data_dir() else {
        return;
    };
    use std::io::BufRead;
    let gz = real.join("binance-spot/btcusdt_20240808.gz");
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("imported");
    let out = bin()
        .args([
            "journal",
            "import",
            "--format",
            "hftbacktest",
            "--venue",
            "binance",
            "--out",
        ])
        .arg(&j)
        .arg(&gz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .args(["journal", "export", "--format", "jsonl", "--kinds", "trade"])
        .arg(&j)
        .output()
        .unwrap();
    assert!(out.status.success());
    let exported: std::collections::HashMap<String, (String, String)> =
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["trade_id"].as_str().unwrap().to_string(),
                    (
                        v["price"].as_str().unwrap().to_string(),
                        v["size"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect();
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&gz).unwrap(),
    ));
    let mut n = 0;
    for line in reader.lines() {
        let line = line.unwrap();
        let Some((_, frame)) = line.split_once(' ') else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(frame).unwrap();
        if !v["stream"].as_str().is_some_and(|s| s.ends_with("@trade")) {
            continue;
        }
        let d = &v["data"];
        let id = d["t"].as_u64().unwrap().to_string();
        let (p, q) = exported
            .get(&id)
            .unwrap_or_else(|| panic!("trade {id} exported"));
        let norm = tickwire::decimal::normalize_decimal_str;
        assert_eq!(
            norm(p),
            norm(d["p"].as_str().unwrap()),
            "price of trade {id}"
        );
        assert_eq!(
            norm(q),
            norm(d["q"].as_str().unwrap()),
            "size of trade {id}"
        );
        n += 1;
    }
    assert_eq!(n, 9_757, "SOURCES.md: 9,757 trades");
    assert_eq!(exported.len(), 9_757);
}
