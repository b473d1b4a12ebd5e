//! `tickwire replay`: argument errors, determinism, and a journal replay
//! equal to the replay of the capture it was imported from.

mod common;

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn replay(args: &[&str]) -> (bool, String, String) {
    let out = bin()
        .arg("replay")
        .args(args)
        .output()
        .expect("run tickwire");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let (ok, _, err) = replay(&["/nonexistent/capture.gz"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, _, err) = replay(&["Cargo.toml"]);
    assert!(!ok && err.contains("--format"), "{err}");
    let (ok, _, err) = replay(&["Cargo.toml", "--format", "nope"]);
    assert!(!ok && err.contains("hftbacktest"), "{err}");
    let (ok, _, err) = replay(&[
        "Cargo.toml",
        "--format",
        "hftbacktest",
        "--dump",
        "bars,nope",
    ]);
    assert!(
        !ok && err.contains("nope") && err.contains("indicators"),
        "{err}"
    );
    let (ok, _, err) = replay(&["Cargo.toml", "--format", "hftbacktest", "--windows", "1x"]);
    assert!(!ok && err.contains("kernel.windows"), "{err}");
    let (ok, _, err) = replay(&[
        "Cargo.toml",
        "--format",
        "hftbacktest",
        "--venue",
        "nowhere",
    ]);
    assert!(!ok && err.contains("binance-usdm"), "{err}");
}

#[test]
fn journal_replay_equals_capture_replay_and_is_deterministic() {
    let Some(dir) = common::real_data_dir() else {
        return;
    };
    let cap = dir.join("binance-spot/btcusdt_20240808.gz");
    let tmp = tempfile::tempdir().unwrap();
    let jdir = tmp.path().join("journal");
    let out = bin()
        .args(["journal", "import"])
        .arg(&cap)
        .args(["--format", "hftbacktest", "--venue", "binance", "--out"])
        .arg(&jdir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = ["--windows", "1s,1m", "--dump", "all,provisional", "--flush"];
    let cap_s = cap.to_str().unwrap();
    let (ok, a, err) = replay(&[&[cap_s][..], &args[..]].concat());
    assert!(ok, "{err}");
    let (ok, b, err) = replay(&[&[cap_s][..], &args[..]].concat());
    assert!(ok, "{err}");
    assert!(a == b, "two replays of the same capture differ");
    let (ok, c, err) = replay(&[&[jdir.to_str().unwrap()][..], &args[..]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("163887 journal ticks"), "{err}");
    assert!(a == c, "journal replay differs from the capture replay");
    // Everything the kernel makes is there, each line valid JSON.
    let mut types = std::collections::BTreeMap::new();
    for line in a.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let final_ = v.get("final").and_then(|f| f.as_bool());
        *types
            .entry(format!(
                "{}{}",
                v["type"].as_str().unwrap(),
                match final_ {
                    Some(false) => "/provisional",
                    _ => "",
                }
            ))
            .or_insert(0u64) += 1;
    }
    for t in [
        "trade",
        "quote",
        "book_level",
        "bar",
        "bar/provisional",
        "indicators",
        "indicators/provisional",
        "anomaly",
        "movers",
    ] {
        assert!(types.get(t).copied().unwrap_or(0) > 0, "no {t}: {types:?}");
    }
    assert_eq!(types["trade"], 9_757, "every trade of the capture");
}

#[test]
fn decisions_replay_byte_identical_on_a_real_capture() {
    let Some(real) = common::real_data_dir() else {
        return;
    };
    let gz = real.join("binance-usdm/btcusdt_20240808.gz");
    let gz = gz.to_str().unwrap();
    let args = [
        gz,
        "--format",
        "hftbacktest,jsonl",
        "--venue",
        "binance-usdm",
        "--windows",
        "1s",
        "--dump",
        "signals,orders,fills,portfolio,market_status",
    ];
    let (ok1, a, e1) = replay(&args);
    let (ok2, b, _) = replay(&args);
    assert!(ok1 && ok2, "{e1}");
    assert_eq!(
        a, b,
        "two replays of the same capture give identical decisions"
    );
    let types: std::collections::BTreeSet<String> = a
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["type"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        types.contains("signal"),
        "strategies fired on 345 one-second bars: {types:?}"
    );
    assert!(types.contains("portfolio"), "{types:?}");
}

#[test]
fn paced_replay_holds_messages_until_their_recorded_time() {
    let Some(real) = common::real_data_dir() else {
        return;
    };
    let gz = real.join("binance-spot/btcusdt_20240808.gz");
    let gz = gz.to_str().unwrap();
    // Recorded span from the capture's receive times (first field per line).
    use std::io::BufRead;
    let rd = std::io::BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(gz).unwrap(),
    ));
    let recv: Vec<i64> = rd
        .lines()
        .map(|l| l.unwrap().split(' ').next().unwrap().parse().unwrap())
        .collect();
    let span_ns = recv.last().unwrap() - recv.first().unwrap();
    let speed = 100.0;
    let base = ["--venue", "binance", "--dump", "trades,bars"];
    let (ok1, fast, _) = replay(&[&[gz, "--speed", "max"][..], &base[..]].concat());
    let t0 = std::time::Instant::now();
    let (ok2, paced, _) = replay(&[&[gz, "--speed", "100"][..], &base[..]].concat());
    let elapsed = t0.elapsed().as_nanos() as f64;
    assert!(ok1 && ok2);
    assert_eq!(fast, paced, "pacing changes timing, not output");
    // A lower bound: the last frame cannot be released before its recorded
    // offset / speed (the process may take longer, never less).
    assert!(
        elapsed >= span_ns as f64 / speed,
        "paced replay took {elapsed} ns, the recorded span / 100 is {} ns",
        span_ns as f64 / speed
    );
    let (ok, _, err) = replay(&[gz, "--speed", "fast"]);
    assert!(!ok && err.contains("--speed"), "{err}");
}
