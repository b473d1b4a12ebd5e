//! The binary: `tickwire run` on the default config, and config errors.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn summary_ticks(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tickwire summary:"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    // "... N frames, M ticks (..."
    let after = line.split(" frames, ").nth(1).expect("frames field");
    after
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .expect("tick count")
}

#[test]
fn run_default_config_for_3s_exits_0_with_messages() {
    let jdir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "--duration", "3", "--journal-dir"])
        .arg(jdir.path())
        .output()
        .expect("run tickwire");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let ticks = summary_ticks(&stderr);
    assert!(
        ticks > 1_000,
        "default sim runs at 20k msg/s: {ticks}\n{stderr}"
    );
    assert!(stderr.contains("e2e"), "latency summary printed:\n{stderr}");
    assert!(
        stderr.contains(&format!("{ticks} journaled (0 journal errors)")),
        "every tick journaled:\n{stderr}"
    );
    // The journal holds them: verify with the journal module.
    let report = tickwire::journal::verify(jdir.path()).expect("journal verifies");
    assert_eq!(report.records, ticks);
}

#[test]
fn dump_writes_events_md_json_lines() {
    let out = bin()
        .args([
            "run",
            "--no-journal",
            "--duration",
            "2",
            "--dump",
            "trades,quotes",
        ])
        .output()
        .expect("run tickwire");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut trades = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        let ty = v["type"].as_str().unwrap();
        assert!(ty == "trade" || ty == "quote", "{line}");
        assert!(v["symbol"].as_str().unwrap().starts_with("SIM:"));
        if ty == "trade" {
            trades += 1;
            assert!(v["price"].is_string() && v["size"].is_string(), "{line}");
        }
    }
    assert!(trades > 100, "{trades}");
}

#[test]
fn sigterm_drains_and_exits_0() {
    let child = bin()
        .args(["run", "--no-journal"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY-free: use the kill command to send SIGTERM.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(summary_ticks(&stderr) > 0);
}

#[test]
fn config_errors_name_the_key_and_exit_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[pipeline]\nring_capacty = 8\n").unwrap();
    let out = bin()
        .args(["run", "--no-journal", "--duration", "1", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("ring_capacty") && e.contains("bad.toml"), "{e}");

    let out = bin()
        .args(["run", "--config", "/nonexistent/tickwire.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tickwire.toml"));

    let bad2 = dir.path().join("bad2.toml");
    std::fs::write(&bad2, "[kernel]\nwindows = [\"7x\"]\n").unwrap();
    let out = bin().args(["run", "--config"]).arg(&bad2).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel.windows"));
}

#[test]
fn symbols_override_selects_instruments() {
    let out = bin()
        .args([
            "run",
            "--no-journal",
            "--duration",
            "1",
            "--symbols",
            "SIM:ETHUSDT",
            "--dump",
            "trades",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().count() > 10);
    assert!(stdout.lines().all(|l| l.contains("\"SIM:ETHUSDT\"")));
}

#[test]
fn missing_core_warns_and_runs_unpinned() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cores.toml");
    std::fs::write(
        &cfg,
        "[pipeline.threads.kernel]\ncore = 4096\nwait = \"yield\"\n[pipeline.threads.fanout]\nwait = \"spin\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["run", "--no-journal", "--duration", "1", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("core does not exist"), "{e}");
    assert!(summary_ticks(&e) > 0);
}
