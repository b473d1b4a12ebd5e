//! The kernel against independent references on real recorded trades.
//!
//! For each capture in `../shared/data/real` (Binance spot and USD-M
//! hftbacktest gz, Tardis Binance-futures trades CSV), runs
//! `tickwire replay <file> --format F --venue V --windows 1s,1m --dump
//! bars,indicators --flush` and
//! compares its JSON lines with:
//!
//! * `tools/bars_ref.py` — pandas resample of the same trades read straight
//!   from the file: open/high/low/close/volume/buy/sell volume and trade
//!   count exact (decimal strings compared as decimals), VWAP within 1e-12
//!   relative, `avg_volume_20` and `session_vwap` within 1e-9;
//! * `tools/talib_ref.py` — the real TA-Lib on the emitted final closes:
//!   every indicator key present exactly where TA-Lib has a value (so the
//!   first-output index is the same) and within 1e-9 relative error.
//!
//! Needs a Python with TA-Lib, numpy and pandas named by
//! `TICKWIRE_TEST_PYTHON`; prints "SKIPPED: TICKWIRE_TEST_PYTHON not set"
//! otherwise. Run with `--nocapture` to see the error tables.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const MAX_REL_ERR: f64 = 1e-9;
const VWAP_REL_ERR: f64 = 1e-12;
const TA_KEYS: [&str; 12] = [
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
];

fn python() -> Option<String> {
    match std::env::var("TICKWIRE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!("SKIPPED: TICKWIRE_TEST_PYTHON not set");
            None
        }
    }
}

fn tool(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join(name)
}

/// Runs a command with optional stdin; panics with its stderr on failure.
fn run(mut cmd: Command, stdin: Option<String>) -> String {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let dbg = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {dbg}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin piped");
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes())
        } else {
            Ok(())
        }
    });
    let out = child.wait_with_output().expect("command runs");
    writer.join().expect("writer").expect("write stdin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{dbg} failed: {stderr}");
    if !stderr.is_empty() {
        eprintln!("{stderr}");
    }
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// `"61837.63000000"` and `"61837.63"` are the same decimal.
fn dec_norm(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn rel_err(a: f64, b: f64) -> f64 {
    let d = a.abs().max(b.abs());
    if d == 0.0 { 0.0 } else { (a - b).abs() / d }
}

/// One (symbol, window) series of our output.
#[derive(Default)]
struct Series {
    bars: Vec<Value>,
    indicators: HashMap<i64, Value>,
}

fn bare_symbol(v: &Value) -> String {
    let s = v["symbol"].as_str().expect("symbol");
    s.split_once(':').map_or(s, |(_, b)| b).to_string()
}

#[derive(Default)]
struct KeyStats {
    first: Option<usize>,
    values: usize,
    bit_equal: usize,
    max_rel: f64,
}

fn check_dataset(file: &str, format: &str, venue: &str, windows: &[&str]) {
    let Some(py) = python() else { return };
    let Some(dir) = common::real_data_dir() else {
        return;
    };
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "{} missing from the data folder",
        path.display()
    );

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    cmd.arg("replay")
        .arg(&path)
        .args(["--format", format, "--venue", venue])
        .args(["--windows", &windows.join(",")])
        .args(["--dump", "bars,indicators", "--flush"]);
    let ours = json_lines(&run(cmd, None));
    let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
    for v in &ours {
        let key = (bare_symbol(v), v["window"].as_str().unwrap().to_string());
        assert_eq!(v["final"], true, "only final events requested: {v}");
        let s = series.entry(key).or_default();
        match v["type"].as_str().unwrap() {
            "bar" => s.bars.push(v.clone()),
            "indicators" => {
                let start = v["start"].as_i64().unwrap();
                assert!(
                    s.indicators.insert(start, v.clone()).is_none(),
                    "twice: {v}"
                );
            }
            t => panic!("unexpected type {t}"),
        }
    }

    let mut cmd = Command::new(&py);
    cmd.arg(tool("bars_ref.py")).args(["--format", format]);
    for w in windows {
        cmd.args(["--window", w]);
    }
    cmd.arg(&path);
    let mut reference: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for v in json_lines(&run(cmd, None)) {
        let key = (
            v["symbol"].as_str().unwrap().to_string(),
            v["window"].as_str().unwrap().to_string(),
        );
        reference.entry(key).or_default().push(v);
    }
    assert_eq!(
        series.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "same (symbol, window) series"
    );

    let mut failures: Vec<String> = Vec::new();
    for ((sym, win), s) in &series {
        let want = &reference[&(sym.clone(), win.clone())];
        let name = format!("{file} {sym} {win}");
        // --- Bars against pandas.
        if s.bars.len() != want.len() {
            failures.push(format!(
                "{name}: {} bars vs pandas {}",
                s.bars.len(),
                want.len()
            ));
            continue;
        }
        let mut vwap_max = 0.0f64;
        let mut extra_max: BTreeMap<&str, f64> = BTreeMap::new();
        for (i, (g, w)) in s.bars.iter().zip(want).enumerate() {
            for k in ["start", "end", "trades"] {
                if g[k] != w[k] {
                    failures.push(format!("{name} bar {i}: {k} {} vs {}", g[k], w[k]));
                }
            }
            for k in [
                "open",
                "high",
                "low",
                "close",
                "volume",
                "buy_volume",
                "sell_volume",
            ] {
                let (a, b) = (g[k].as_str().unwrap(), w[k].as_str().unwrap());
                if dec_norm(a) != dec_norm(b) {
                    failures.push(format!("{name} bar {i}: {k} {a} vs {b}"));
                }
            }
            let e = rel_err(g["vwap"].as_f64().unwrap(), w["vwap"].as_f64().unwrap());
            vwap_max = vwap_max.max(e);
            if e > VWAP_REL_ERR {
                failures.push(format!("{name} bar {i}: vwap rel err {e:e}"));
            }
            let start = g["start"].as_i64().unwrap();
            if let Some(ind) = s.indicators.get(&start) {
                for k in ["avg_volume_20", "session_vwap"] {
                    match (
                        ind.get(k).and_then(Value::as_f64),
                        w.get(k).and_then(Value::as_f64),
                    ) {
                        (Some(a), Some(b)) => {
                            let e = rel_err(a, b);
                            let m = extra_max.entry(k).or_default();
                            *m = m.max(e);
                            if e > MAX_REL_ERR {
                                failures.push(format!("{name} bar {i}: {k} {a} vs {b}"));
                            }
                        }
                        (None, None) => {}
                        (a, b) => failures.push(format!(
                            "{name} bar {i}: {k} presence differs ({a:?} vs {b:?})"
                        )),
                    }
                }
            }
        }
        println!(
            "== {name}: {} bars equal to pandas; vwap max rel err {vwap_max:.3e}; {}",
            s.bars.len(),
            extra_max
                .iter()
                .map(|(k, v)| format!("{k} max rel err {v:.3e}"))
                .collect::<Vec<_>>()
                .join(", ")
        );

        // --- Indicators against TA-Lib on the same closes.
        let mut csv = String::from("close\n");
        for b in &s.bars {
            csv.push_str(b["close"].as_str().unwrap());
            csv.push('\n');
        }
        let mut cmd = Command::new(&py);
        cmd.arg(tool("talib_ref.py"));
        let rows = json_lines(&run(cmd, Some(csv)));
        assert_eq!(rows.len(), s.bars.len());
        let mut stats: BTreeMap<&str, KeyStats> = BTreeMap::new();
        for (i, (bar, row)) in s.bars.iter().zip(&rows).enumerate() {
            let ta_has_any = TA_KEYS.iter().any(|k| row.get(*k).is_some());
            let start = bar["start"].as_i64().unwrap();
            let ind = s.indicators.get(&start);
            if ind.is_some() != ta_has_any {
                failures.push(format!(
                    "{name} bar {i}: indicators event {} but TA-Lib has {}",
                    if ind.is_some() { "present" } else { "absent" },
                    if ta_has_any { "values" } else { "none" }
                ));
                continue;
            }
            let Some(ind) = ind else { continue };
            for k in TA_KEYS {
                let st = stats.entry(k).or_default();
                match (
                    ind.get(k).and_then(Value::as_f64),
                    row.get(k).and_then(Value::as_f64),
                ) {
                    (Some(a), Some(b)) => {
                        st.first.get_or_insert(i);
                        st.values += 1;
                        if a == b {
                            st.bit_equal += 1;
                        }
                        let e = rel_err(a, b);
                        st.max_rel = st.max_rel.max(e);
                        if e > MAX_REL_ERR {
                            failures.push(format!(
                                "{name} bar {i}: {k} ours {a:?} TA-Lib {b:?} rel {e:e}"
                            ));
                        }
                    }
                    (None, None) => {}
                    (a, b) => failures.push(format!(
                        "{name} bar {i}: {k} presence differs (ours {a:?}, TA-Lib {b:?})"
                    )),
                }
            }
        }
        println!(
            "   {:<12} {:>6} {:>7} {:>10} {:>12}",
            "key", "first", "values", "bit-equal", "max rel err"
        );
        for k in TA_KEYS {
            let st = &stats.get(k).map_or((None, 0, 0, 0.0), |s| {
                (s.first, s.values, s.bit_equal, s.max_rel)
            });
            println!(
                "   {:<12} {:>6} {:>7} {:>10} {:>12.3e}",
                k,
                st.0.map_or("-".into(), |f| f.to_string()),
                st.1,
                st.2,
                st.3
            );
        }
        // TA-Lib's first-output indices, where the series is long enough.
        let expect_first = [
            ("sma_20", 19),
            ("ema_12", 11),
            ("rsi_14", 14),
            ("macd", 33),
            ("bb_upper", 19),
            ("sma_200", 199),
        ];
        for (k, first) in expect_first {
            let got = stats.get(k).and_then(|s| s.first);
            let want = (s.bars.len() > first).then_some(first);
            if got != want {
                failures.push(format!(
                    "{name}: {k} first output at {got:?}, want {want:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(15)]
    );
}

#[test]
fn binance_spot_trades_match_pandas_and_talib() {
    check_dataset(
        "binance-spot/btcusdt_20240808.gz",
        "hftbacktest",
        "binance",
        &["1s", "1m"],
    );
}

#[test]
fn binance_usdm_trades_match_pandas_and_talib() {
    check_dataset(
        "binance-usdm/btcusdt_20240808.gz",
        "hftbacktest",
        "binance-usdm",
        &["1s", "1m"],
    );
}

#[test]
fn tardis_trades_match_pandas_and_talib() {
    check_dataset(
        "tardis-binance-futures/trades.csv",
        "tardis-csv",
        "binance-usdm",
        &["1s", "1m"],
    );
}
