//! Helpers for the server tests: start the `tickwire` binary on a loopback
//! port 0, find third-party clients (Python `websockets`, curl, promtool),
//! make raw HTTP requests. Everything is bounded in time; engines are
//! killed when the handle drops.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running engine process.
pub struct TestEngine {
    child: Option<Child>,
    /// `IP:PORT` it listens on.
    pub addr: String,
    dir: tempfile::TempDir,
}

/// Server keys every test engine gets unless the test overrides them.
const BASE_SERVER: &[(&str, &str)] = &[
    ("stats_interval_ms", "200"),
    ("close_grace_secs", "30"),
    ("health_stale_secs", "30"),
];

impl TestEngine {
    /// Starts `tickwire run` with the simulator at `sim_rate` msg/s for at
    /// most `duration_secs`, `[server]` keys from `server` (`key = value`
    /// TOML lines), and extra environment variables. Waits until the
    /// listen address is known.
    pub fn start(server: &[&str], sim_rate: f64, duration_secs: u64, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut lines: Vec<String> = server.iter().map(|s| s.to_string()).collect();
        for (k, v) in BASE_SERVER {
            if !server
                .iter()
                .any(|l| l.split('=').next().map(str::trim) == Some(k))
            {
                lines.push(format!("{k} = {v}"));
            }
        }
        let cfg = format!(
            "[engine]\nduration_secs = {duration_secs}\n\n[[feeds]]\nname = \"sim\"\nurl = \"sim://\"\n[feeds.sim]\nrate = {sim_rate:.1}\n\n[kernel]\nwindows = [\"1s\", \"1m\"]\n\n[journal]\nenabled = false\n\n[telemetry]\nstats_interval_secs = 0\n\n[server]\n{}\n",
            lines.join("\n")
        );
        let cfg_path = dir.path().join("engine.toml");
        std::fs::write(&cfg_path, cfg).expect("write config");
        let addr_path = dir.path().join("addr");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickwire"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", "--config"])
            .arg(&cfg_path)
            .args(["--listen", "127.0.0.1:0", "--listen-file"])
            .arg(&addr_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn tickwire");
        let mut e = Self {
            child: Some(child),
            addr: String::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_path)
                && s.ends_with('\n')
            {
                e.addr = s.trim().to_string();
                break;
            }
            if let Some(c) = e.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("tickwire exited early ({st}):\n{}", e.log());
            }
            assert!(
                Instant::now() < deadline,
                "no listen address after 30 s:\n{}",
                e.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        e
    }

    /// The engine's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits (bounded) until `/health` answers 200: data is flowing.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((200, _)) = http_get(&self.addr, "/health") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/health not 200 after 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to end by itself (bounded); returns its stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let c = self.child.as_mut().expect("running");
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return (st, self.log());
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                panic!("tickwire did not exit within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw HTTP/1.1 GET (Connection: close) → (status, body). `None` when the
/// connection fails.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let raw = raw_request(addr, req.as_bytes())?;
    parse_response(&raw)
}

/// Sends raw bytes, reads until the server closes (bounded: 10 s).
pub fn raw_request(addr: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(bytes).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Some(out)
}

/// Splits a raw HTTP response into status and body.
pub fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The Python interpreter with `websockets`: `TICKWIRE_TEST_PYTHON`, else
/// `.venv/bin/python` in the repository. Prints SKIPPED and returns `None`
/// when neither can import websockets (tools/test.sh sets it up).
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("TICKWIRE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(p)
    } else {
        println!(
            "SKIPPED: no Python with websockets at {} (set TICKWIRE_TEST_PYTHON or run tools/test.sh --setup)",
            p.display()
        );
        None
    }
}

/// Runs a scenario of tests/clients/ws_scenarios.py; returns its JSON report.
pub fn scenario(py: &Path, name: &str, addr: &str, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ws_scenarios.py");
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let mut child = Command::new(py)
        .arg(&script)
        .arg(name)
        .arg(addr)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .expect("spawn python");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scenario {name} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "scenario {name} failed ({status}):\n{err}\n{out}"
    );
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("scenario {name}: {e}\n{out}\n{err}"))
}

/// Whether a command exists on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs curl with a 10 s limit.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl")
}
