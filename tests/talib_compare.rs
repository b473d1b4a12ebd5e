//! Compares the incremental indicators with the real TA-Lib.
//!
//! Runs only when `TALIB_PYTHON` (or `TICKWIRE_TEST_PYTHON`) names a
//! Python interpreter that can
//! `import talib` (e.g. a venv made with `pip install TA-Lib numpy`);
//! otherwise prints "SKIPPED: TALIB_PYTHON not set" and passes. Feeds
//! deterministic random walks through `tools/talib_ref.py` and requires every
//! value to match at <= 1e-9 relative error, with identical first-output
//! indices. Run with `--nocapture` to see the per-indicator error table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tickwire::kernel::indicators::{BollingerBands, Ema, Macd, Rsi, Sma};

const MAX_REL_ERR: f64 = 1e-9;

/// xorshift64* with Box–Muller normals; deterministic across platforms.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Multiplicative random walk rounded to `tick` (so flat bars occur).
fn random_walk(seed: u64, len: usize, start: f64, vol: f64, tick: f64) -> Vec<f64> {
    let mut rng = XorShift(seed);
    let mut p = start;
    (0..len)
        .map(|_| {
            p *= 1.0 + vol * rng.normal();
            let ticks = (p / tick).round();
            // Keep the value the shortest decimal of the rounded tick count.
            format!("{:.*}", decimals(tick), ticks * tick)
                .parse()
                .expect("formatted float parses")
        })
        .collect()
}

fn decimals(tick: f64) -> usize {
    (-tick.log10()).ceil().max(0.0) as usize
}

type Row = BTreeMap<String, f64>;

/// Runs the TA-Lib script on `closes`; one map of present keys per row.
fn talib_rows(python: &str, closes: &[f64]) -> Vec<Row> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/talib_ref.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()));
    let mut csv = String::from("close\n");
    for x in closes {
        // `{:?}` prints the shortest representation that round-trips.
        csv.push_str(&format!("{x:?}\n"));
    }
    let mut stdin = child.stdin.take().expect("stdin piped");
    let writer = std::thread::spawn(move || stdin.write_all(csv.as_bytes()));
    let out = child.wait_with_output().expect("script runs");
    writer.join().expect("writer thread").expect("write closes");
    assert!(
        out.status.success(),
        "talib_ref.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let rows: Vec<Row> = text.lines().map(parse_flat_json).collect();
    assert_eq!(rows.len(), closes.len(), "one output row per input");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.get("i"), Some(&(i as f64)), "row index");
    }
    rows
}

/// Parses `{"key": number, ...}` (the script's output has nothing else).
fn parse_flat_json(line: &str) -> Row {
    let body = line
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a JSON object: {line}"));
    body.split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once(':')
                .unwrap_or_else(|| panic!("bad pair {kv:?}"));
            let key = k.trim().trim_matches('"').to_string();
            let value: f64 = v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad number {v:?}"));
            (key, value)
        })
        .collect()
}

/// Runs the Rust indicators over `closes`, same keys as the script.
fn rust_rows(closes: &[f64]) -> Vec<Row> {
    let mut sma20 = Sma::new(20);
    let mut sma50 = Sma::new(50);
    let mut sma200 = Sma::new(200);
    let mut ema12 = Ema::new(12);
    let mut ema26 = Ema::new(26);
    let mut rsi14 = Rsi::new(14);
    let mut macd = Macd::new(12, 26, 9);
    let mut bb = BollingerBands::new(20, 2.0, 2.0);
    closes
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let mut row = Row::new();
            row.insert("i".into(), i as f64);
            let mut put = |k: &str, v: Option<f64>| {
                if let Some(v) = v {
                    row.insert(k.into(), v);
                }
            };
            put("sma_20", sma20.update(x));
            put("sma_50", sma50.update(x));
            put("sma_200", sma200.update(x));
            put("ema_12", ema12.update(x));
            put("ema_26", ema26.update(x));
            put("rsi_14", rsi14.update(x));
            let m = macd.update(x);
            put("macd", m.map(|m| m.macd));
            put("macd_signal", m.map(|m| m.signal));
            put("macd_hist", m.map(|m| m.hist));
            let b = bb.update(x);
            put("bb_upper", b.map(|b| b.upper));
            put("bb_middle", b.map(|b| b.middle));
            put("bb_lower", b.map(|b| b.lower));
            row
        })
        .collect()
}

#[derive(Default)]
struct Stats {
    first: Option<usize>,
    compared: usize,
    bit_equal: usize,
    max_rel: f64,
}

/// Compares, prints the table and returns the stats per key.
fn compare(name: &str, closes: &[f64], python: &str) -> BTreeMap<String, Stats> {
    let want = talib_rows(python, closes);
    let got = rust_rows(closes);
    let mut stats: BTreeMap<String, Stats> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let keys: std::collections::BTreeSet<&String> = w.keys().chain(g.keys()).collect();
        for key in keys.into_iter().filter(|k| *k != "i") {
            let s = stats.entry(key.clone()).or_default();
            match (w.get(key), g.get(key)) {
                (Some(&a), Some(&b)) => {
                    s.first.get_or_insert(i);
                    s.compared += 1;
                    if a == b {
                        s.bit_equal += 1;
                    }
                    let denom = a.abs().max(b.abs());
                    let rel = if denom == 0.0 {
                        0.0
                    } else {
                        (a - b).abs() / denom
                    };
                    s.max_rel = s.max_rel.max(rel);
                    if rel > MAX_REL_ERR {
                        failures.push(format!("{key}[{i}]: talib {a:?} rust {b:?} rel {rel:e}"));
                    }
                }
                (w, g) => failures.push(format!(
                    "{key}[{i}]: presence differs (talib {w:?}, rust {g:?})"
                )),
            }
        }
    }
    println!("== {name}: {} closes ==", closes.len());
    println!(
        "{:<12} {:>6} {:>8} {:>10} {:>12}",
        "key", "first", "values", "bit-equal", "max rel err"
    );
    for (key, s) in &stats {
        println!(
            "{:<12} {:>6} {:>8} {:>10} {:>12.3e}",
            key,
            s.first.map_or("-".into(), |f| f.to_string()),
            s.compared,
            s.bit_equal,
            s.max_rel
        );
    }
    assert!(
        failures.is_empty(),
        "{name}: {} mismatches, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // Sanity: every indicator produced output, first at TA-Lib's lookback.
    let expected_first = [
        ("sma_20", 19),
        ("sma_50", 49),
        ("sma_200", 199),
        ("ema_12", 11),
        ("ema_26", 25),
        ("rsi_14", 14),
        ("macd", 33),
        ("macd_signal", 33),
        ("macd_hist", 33),
        ("bb_upper", 19),
        ("bb_middle", 19),
        ("bb_lower", 19),
    ];
    for (key, first) in expected_first {
        assert_eq!(stats.get(key).and_then(|s| s.first), Some(first), "{key}");
    }
    stats
}

#[test]
fn matches_real_talib() {
    let Some(python) = ["TALIB_PYTHON", "TICKWIRE_TEST_PYTHON"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    else {
        println!("SKIPPED: TALIB_PYTHON not set");
        return;
    };
    // BTC-like: 3,000 bars around 61837.63 on a 0.01 tick.
    let btc = random_walk(0x7ec_4e11, 3_000, 61_837.63, 0.002, 0.01);
    compare("random walk @61837.63", &btc, &python);
    // A micro-priced instrument on a 1e-8 tick, with many flat bars.
    let micro = random_walk(0xfeed_beef, 3_000, 0.000_123_45, 0.004, 1e-8);
    compare("random walk @0.00012345", &micro, &python);
    // Whole-number prices: every window sum is exact in TA-Lib's plain sum
    // and in our compensated one, so SMA and BBANDS (including the
    // cancellation-free deviation) must be bit-identical too.
    let whole = random_walk(0x1234_5678, 3_000, 61_837.0, 0.002, 1.0);
    let stats = compare("whole-number random walk @61837", &whole, &python);
    for (key, s) in &stats {
        assert_eq!(s.bit_equal, s.compared, "{key} not bit-identical");
    }
}
