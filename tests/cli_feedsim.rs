//! The binaries end to end: `tickwire feedsim` in one process, `tickwire
//! run` in another, over ws:// and wss:// on 127.0.0.1; API keys from the
//! environment.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Kills the child (a feedsim we started) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tickwire feedsim ARGS` and returns it with the URL it printed.
fn feedsim(args: &[&str]) -> (Guard, String) {
    let mut child = bin()
        .arg("feedsim")
        .args(args)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "60",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn feedsim");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("feedsim listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    (Guard(child), url)
}

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"[telemetry]
stats_interval_secs = 0
[[instruments]]
symbol = "BINANCE:BTCUSDT"
price_precision = 2
size_precision = 5
[[instruments]]
symbol = "BINANCE:ETHUSDT"
price_precision = 2
size_precision = 4
[[feeds]]
name = "binance"
adapter = "binance"
venue = "BINANCE"
url = "{url}"
{extra}
"#
    )
}

fn summary_ticks(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tickwire summary:"))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    line.split(" frames, ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn run_reads_a_feedsim_process_over_ws_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    for tls in [false, true] {
        let mut args = vec![
            "--venue",
            "binance",
            "--rate",
            "2000",
            "--symbols",
            "BTCUSDT:2:5,ETHUSDT:2:4",
        ];
        if tls {
            args.extend(["--tls", "--cert-out", pem.to_str().unwrap()]);
        }
        let (_sim, url) = feedsim(&args);
        assert_eq!(url.starts_with("wss://"), tls, "{url}");
        let extra = if tls {
            format!("ca_file = \"{}\"", pem.display())
        } else {
            String::new()
        };
        let cfg = dir.path().join("run.toml");
        std::fs::write(&cfg, config(&url, &extra)).unwrap();
        let out = bin()
            .args([
                "run",
                "--no-journal",
                "--duration",
                "2",
                "--dump",
                "trades",
                "--config",
            ])
            .arg(&cfg)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(summary_ticks(&stderr) > 100, "{stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let trades = stdout
            .lines()
            .filter(|l| l.contains("\"BINANCE:BTCUSDT\""))
            .count();
        assert!(trades > 10, "BTC trades dumped: {trades}\n{stderr}");
    }
}

#[test]
fn missing_api_key_env_is_an_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        config(
            "ws://127.0.0.1:9/stream",
            "api_key_env = \"TICKWIRE_TEST_KEY_THAT_IS_NOT_SET\"",
        ),
    )
    .unwrap();
    let out = bin()
        .args(["run", "--no-journal", "--duration", "1", "--config"])
        .arg(&cfg)
        .env_remove("TICKWIRE_TEST_KEY_THAT_IS_NOT_SET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("TICKWIRE_TEST_KEY_THAT_IS_NOT_SET"), "{e}");

    // Set: the run starts (the venue is down; the engine keeps retrying
    // and stops at --duration) and the key never appears in the output.
    let out = bin()
        .args([
            "run",
            "--no-journal",
            "--duration",
            "1",
            "--log-level",
            "debug",
            "--config",
        ])
        .arg(&cfg)
        .env("TICKWIRE_TEST_KEY_THAT_IS_NOT_SET", "s3cr3t-k3y-value")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(!e.contains("s3cr3t-k3y-value"), "key leaked:\n{e}");
}

#[test]
fn old_feed_section_gets_a_migration_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("old.toml");
    std::fs::write(&cfg, "[feed]\nsource = \"sim\"\nvenue = \"SIM\"\n").unwrap();
    let out = bin().args(["run", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("[[feeds]]"), "{e}");
}
