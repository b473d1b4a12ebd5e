//! Journal disk faults under a running engine: the file-size limit of the
//! running process is lowered (`prlimit`), so the next journal segment
//! cannot be allocated — what a full disk looks like to the writer. The
//! error is reported and counted, the configured policy is followed, the
//! engine keeps running and exits cleanly, and what was journaled verifies.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn summary_counts(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tickwire summary:"))
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let ticks: u64 = line
        .split(" ticks (")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let journaled: u64 = line
        .split(" journaled (")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let errors: u64 = line
        .split(" journal errors)")
        .next()
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (ticks, journaled, errors)
}

/// Runs the engine for 4 s with 1 MiB segments, lowers its file-size limit
/// once the journal exists, returns (exit ok, stderr, journal dir).
fn run_with_disk_fault(policy: &str) -> Option<(bool, String, tempfile::TempDir)> {
    if Command::new("prlimit").arg("--version").output().is_err() {
        println!("SKIPPED: prlimit not found (util-linux)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[journal]\nsegment_mb = 1\nprefault_mb = 0\non_error = \"{policy}\"\n[server]\nenabled = false\n"),
    )
    .unwrap();
    let jdir = dir.path().join("j");
    // SIGXFSZ ignored (inherited through exec), so exceeding the limit is
    // an EFBIG error for the writer rather than a kill.
    let script = format!(
        "trap '' XFSZ; exec '{}' run --duration 4 --config '{}' --journal-dir '{}'",
        env!("CARGO_BIN_EXE_tickwire"),
        cfg.display(),
        jdir.display()
    );
    let child = Command::new("bash")
        .args(["-c", &script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !jdir.join("meta.json").exists() {
        assert!(Instant::now() < deadline, "journal never created");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = Command::new("prlimit")
        .args(["--pid", &child.id().to_string(), "--fsize=500000"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    ))
}

#[test]
fn disk_full_with_continue_policy_keeps_ingesting_without_journal() {
    let Some((ok, err, dir)) = run_with_disk_fault("continue") else {
        return;
    };
    assert!(ok, "{err}");
    assert!(
        err.contains("journal append failed") && err.contains("DiskFull"),
        "{err}"
    );
    assert!(
        err.contains("journaling disabled, ingest continues"),
        "{err}"
    );
    let (ticks, journaled, errors) = summary_counts(&err);
    assert_eq!(errors, 1, "{err}");
    assert!(
        journaled > 0 && ticks > journaled + 1000,
        "ingest went on: {ticks} ticks, {journaled} journaled"
    );
    let rep = tickwire::journal::verify(dir.path().join("j")).expect("what was journaled verifies");
    assert_eq!(rep.records, journaled);
}

#[test]
fn disk_full_with_stop_ingest_policy_stops_reading_feeds() {
    let Some((ok, err, dir)) = run_with_disk_fault("stop_ingest") else {
        return;
    };
    assert!(ok, "{err}");
    assert!(err.contains("ingest stopped"), "{err}");
    let (ticks, journaled, errors) = summary_counts(&err);
    assert_eq!(errors, 1);
    // Only the frame whose append failed was decoded but not journaled.
    assert!(
        ticks >= journaled && ticks - journaled <= 64,
        "{ticks} ticks, {journaled} journaled"
    );
    let rep = tickwire::journal::verify(dir.path().join("j")).expect("journal verifies");
    assert_eq!(rep.records, journaled);
}
