//! Tests of the journal. Child-process tests re-execute this test binary
//! with `--exact <helper test> --ignored`; helper names are derived from
//! `module_path!()` so they keep working when the module moves to another
//! crate (as long as it stays at `<crate>::journal`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::codec;
use super::format::{
    HEADER_SIZE, OFF_COMMITTED, OFF_DURABLE, REC_OFF_PAYLOAD, SegmentHeader, record_crc,
    record_offset, segment_file_name,
};
use super::*;

const CRASH_DIR_ENV: &str = "TICKWIRE_JOURNAL_CRASH_DIR";
const CRASH_MODE_ENV: &str = "TICKWIRE_JOURNAL_CRASH_MODE";
const CRASH_MAX_ENV: &str = "TICKWIRE_JOURNAL_CRASH_MAX";
const CRASH_SEED_ENV: &str = "TICKWIRE_JOURNAL_CRASH_SEED";
const FSIZE_DIR_ENV: &str = "TICKWIRE_JOURNAL_FSIZE_DIR";
const TMPFS_DIR_ENV: &str = "TICKWIRE_JOURNAL_TMPFS_DIR";
const RO_DIR_ENV: &str = "TICKWIRE_JOURNAL_RO_DIR";
const CRASH_RS: u32 = 64;
const CRASH_SEG_RECORDS: u64 = 1500;

// ---------------------------------------------------------------- helpers

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    let s = std::env::var("TICKWIRE_JOURNAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(super::format::now_unix_ns);
    eprintln!("seed = {s} (set TICKWIRE_JOURNAL_SEED to reproduce)");
    s
}

/// Deterministic kind of the record with `index`.
fn kind_for(index: u64) -> u32 {
    1 + (index % 7) as u32
}

/// Deterministic payload length of the record with `index` (0..=max).
fn len_for(index: u64, max: usize) -> usize {
    (index % (max as u64 + 1)) as usize
}

/// Fills `buf` with the deterministic payload bytes of `index`.
fn fill_payload(index: u64, buf: &mut [u8]) {
    let mut x = index ^ 0xD1B5_4A32_D192_ED03;
    for chunk in buf.chunks_mut(8) {
        let v = splitmix(&mut x).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn payload_for(index: u64, max: usize) -> Vec<u8> {
    let mut v = vec![0u8; len_for(index, max)];
    fill_payload(index, &mut v);
    v
}

/// Asserts that `payload` (the full padded area) holds the deterministic
/// payload of `index` followed by zeros.
fn check_payload(index: u64, kind: u32, payload: &[u8]) {
    let max = payload.len();
    let want = payload_for(index, max);
    assert_eq!(kind, kind_for(index), "kind of record {index}");
    assert_eq!(
        &payload[..want.len()],
        &want[..],
        "payload of record {index}"
    );
    assert!(
        payload[want.len()..].iter().all(|&b| b == 0),
        "padding of record {index}"
    );
}

fn small_cfg(record_size: u32, seg_records: u64) -> JournalConfig {
    JournalConfig {
        segment_bytes: seg_records * u64::from(record_size),
        record_size,
        durability: Durability::None,
        prefault_ahead_bytes: 64 << 10,
    }
}

/// Appends deterministic records until `next_index() == upto`, committing
/// every `batch`.
fn append_det(w: &mut JournalWriter, upto: u64, batch: u64) {
    let max = w.max_payload();
    let mut buf = vec![0u8; max];
    while w.next_index() < upto {
        let i = w.next_index();
        let len = len_for(i, max);
        fill_payload(i, &mut buf[..len]);
        assert_eq!(w.append(kind_for(i), &buf[..len]).unwrap(), i);
        if (i + 1) % batch == 0 {
            w.commit();
        }
    }
    w.commit();
}

/// Reads every committed record and checks it against the deterministic
/// payloads; returns the number of records.
fn check_det(dir: &Path, first: u64) -> u64 {
    let mut r = JournalReader::open(dir).unwrap();
    let mut expect = first;
    while let Some(rec) = r.next_record() {
        assert_eq!(rec.index(), expect);
        check_payload(rec.index(), rec.kind(), rec.payload());
        expect += 1;
    }
    assert!(r.error().is_none(), "reader error: {:?}", r.error());
    expect - first
}

fn seg_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(segment_file_name(first))
}

fn write_u64_at(path: &Path, off: u64, v: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&v.to_le_bytes(), off).unwrap();
}

fn read_at(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let f = fs::File::open(path).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off).unwrap();
    b
}

fn write_at(path: &Path, off: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Builds a record image with a correct crc.
fn make_record(rs: u32, kind: u32, index: u64, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; rs as usize];
    r[4..8].copy_from_slice(&kind.to_le_bytes());
    r[8..16].copy_from_slice(&index.to_le_bytes());
    r[16..16 + payload.len()].copy_from_slice(payload);
    let crc = record_crc(&r);
    r[0..4].copy_from_slice(&crc.to_le_bytes());
    r
}

/// Test path of a helper test in this module, independent of the crate name.
fn helper_test_name(name: &str) -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{module}::{name}")
}

/// A command re-executing this test binary to run one ignored helper test.
fn helper_command(name: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut c = Command::new(exe);
    c.args([
        "--exact",
        &helper_test_name(name),
        "--nocapture",
        "--ignored",
        "--test-threads=1",
    ]);
    c
}

// ---------------------------------------------------------------- format

#[test]
fn header_round_trip_and_validation() {
    let h = SegmentHeader {
        record_size: 64,
        created_unix_ns: 123,
        segment_no: 7,
        first_index: 1000,
        capacity: 500,
    };
    let mut page = vec![0u8; HEADER_SIZE];
    page[..64].copy_from_slice(&h.encode());
    assert_eq!(SegmentHeader::decode(&page).unwrap(), h);
    let mut bad = page.clone();
    bad[0] ^= 1;
    assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::BadMagic));
    let mut bad = page.clone();
    bad[33] ^= 1; // first_index
    assert!(matches!(
        SegmentHeader::decode(&bad),
        Err(HeaderProblem::BadCrc { .. })
    ));
    // Counters are outside the crc.
    let mut ok = page.clone();
    ok[OFF_COMMITTED] = 9;
    assert!(SegmentHeader::decode(&ok).is_ok());
    assert_eq!(
        format::parse_segment_file_name("00000000000000001000.seg"),
        Some(1000)
    );
    assert_eq!(
        format::parse_segment_file_name("0000000000000001000.seg"),
        None
    );
    assert_eq!(
        format::parse_segment_file_name("00000000000000001000.seg.tmp"),
        None
    );
    assert_eq!(segment_file_name(42), "00000000000000000042.seg");
}

#[test]
fn config_and_append_argument_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for rs in [0u32, 16, 33, 4104, 8192] {
        let e = JournalWriter::open(tmp.path().join("x"), &small_cfg(rs, 10), b"").unwrap_err();
        assert!(matches!(e, JournalError::InvalidConfig(_)), "{rs}: {e}");
    }
    let dir = tmp.path().join("j");
    let (mut w, rep) = JournalWriter::open(&dir, &small_cfg(64, 10), b"").unwrap();
    assert!(rep.created);
    assert_eq!(w.append(0, b"x"), Err(AppendError::KindZero));
    assert_eq!(
        w.append(1, &[0u8; 49]),
        Err(AppendError::PayloadTooLarge { len: 49, max: 48 })
    );
    assert_eq!(w.append(1, &[7u8; 48]), Ok(0));
    assert_eq!(w.next_index(), 1);
    drop(w);
    let e = JournalWriter::open(&dir, &small_cfg(128, 10), b"").unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::RecordSizeMismatch {
                existing: 64,
                requested: 128,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn fast_crc_matches_crc32c_crate() {
    assert_eq!(
        codec::crc32c_fast(b"123456789"),
        0xE306_9283,
        "check value in the format doc"
    );
    let mut x = 7u64;
    let data: Vec<u8> = (0..5000).map(|_| splitmix(&mut x) as u8).collect();
    for len in 0..300 {
        for start in 0..9 {
            let d = &data[start..start + len];
            assert_eq!(
                codec::crc32c_fast(d),
                crc32c::crc32c(d),
                "len {len} start {start}"
            );
        }
    }
}

#[test]
fn streaming_and_portable_writers_produce_identical_files() {
    for rs in [32u32, 64, 72, 128, 4096] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let cfg = small_cfg(rs, 50);
        let (mut wa, _) = JournalWriter::open(&a, &cfg, b"").unwrap();
        let (mut wb, _) = JournalWriter::open(&b, &cfg, b"").unwrap();
        wb.force_portable_writes();
        append_det(&mut wa, 120, 9);
        append_det(&mut wb, 120, 9);
        drop((wa, wb));
        for first in [0u64, 50, 100] {
            let len = fs::metadata(seg_path(&a, first)).unwrap().len();
            let ra = read_at(
                &seg_path(&a, first),
                HEADER_SIZE as u64,
                len as usize - HEADER_SIZE,
            );
            let rb = read_at(
                &seg_path(&b, first),
                HEADER_SIZE as u64,
                len as usize - HEADER_SIZE,
            );
            assert!(ra == rb, "record bytes differ for rs {rs}, segment {first}");
        }
        assert_eq!(check_det(&a, 0), 120);
    }
}

// ---------------------------------------------------------------- round trip

#[test]
fn round_trip_across_rollover_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let cfg = small_cfg(64, 100);
    let (mut w, rep) = JournalWriter::open(&dir, &cfg, b"{\"instruments\":[]}").unwrap();
    assert!(rep.created && rep.is_clean());
    append_det(&mut w, 1234, 37);
    assert_eq!(w.stats().rollovers, 12);
    drop(w);

    let v = verify(&dir).unwrap();
    assert_eq!(
        (v.records, v.first_index, v.next_index, v.segments),
        (1234, 0, 1234, 13)
    );
    let ins = inspect(&dir).unwrap();
    assert_eq!(
        ins.segments.len(),
        13,
        "unused pre-created segment removed at drop"
    );
    assert_eq!(ins.total_records, 1234);
    assert_eq!(ins.next_index, Some(1234));
    assert_eq!(ins.record_size, Some(64));
    assert!(
        ins.segments.iter().all(|s| s.durable == s.committed),
        "{ins:?}"
    );
    assert_eq!(check_det(&dir, 0), 1234);
    let owned: Vec<Record> = iter_records(&dir).unwrap().map(Result::unwrap).collect();
    assert_eq!(owned.len(), 1234);
    check_payload(1233, owned[1233].kind, &owned[1233].payload);

    // Reopen: clean recovery, continue indexes, meta unchanged.
    let (mut w, rep) = JournalWriter::open(&dir, &cfg, b"{\"instruments\":[]}").unwrap();
    assert!(
        !rep.created && rep.is_clean() && !rep.meta_replaced,
        "{rep:?}"
    );
    assert_eq!(
        (rep.next_index, rep.records_kept, rep.recovered_uncommitted),
        (1234, 1234, 0)
    );
    assert_eq!(w.next_index(), 1234);
    append_det(&mut w, 1300, 1000);
    drop(w);
    assert_eq!(check_det(&dir, 0), 1300);
    assert_eq!(read_meta(&dir).unwrap(), b"{\"instruments\":[]}");

    // Different meta is replaced atomically and reported.
    let (w, rep) = JournalWriter::open(&dir, &cfg, b"v2").unwrap();
    assert!(rep.meta_replaced);
    drop(w);
    assert_eq!(read_meta(&dir).unwrap(), b"v2");
    assert!(!dir.join("meta.json.tmp").exists());
}

#[test]
fn full_active_segment_keeps_precreated_next_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let cfg = small_cfg(64, 50);
    let (mut w, _) = JournalWriter::open(&dir, &cfg, b"").unwrap();
    append_det(&mut w, 200, 10); // exactly 4 full segments
    drop(w);
    // The next segment (index 200) may or may not have been pre-created in
    // time; either way the journal is valid and reopens at 200.
    let v = verify(&dir).unwrap();
    assert_eq!(v.next_index, 200);
    let (mut w, rep) = JournalWriter::open(&dir, &cfg, b"").unwrap();
    assert!(rep.is_clean(), "{rep:?}");
    assert_eq!(w.next_index(), 200);
    append_det(&mut w, 260, 7);
    drop(w);
    assert_eq!(check_det(&dir, 0), 260);
    assert_eq!(verify(&dir).unwrap().records, 260);
}

#[test]
fn event_journal_128_byte_records_pad_payloads() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_cfg(128, 33);
    let (mut w, _) = JournalWriter::open(tmp.path(), &cfg, b"").unwrap();
    assert_eq!(w.max_payload(), 112);
    append_det(&mut w, 500, 13);
    drop(w);
    assert_eq!(check_det(tmp.path(), 0), 500);
    assert_eq!(verify(tmp.path()).unwrap().record_size, Some(128));
}

#[test]
fn second_writer_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_cfg(64, 100);
    let (w, _) = JournalWriter::open(tmp.path(), &cfg, b"").unwrap();
    let e = JournalWriter::open(tmp.path(), &cfg, b"").unwrap_err();
    assert!(matches!(e, JournalError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("already open for writing"));
    drop(w);
    JournalWriter::open(tmp.path(), &cfg, b"").unwrap();
}

#[test]
fn unused_precreated_segment_is_removed_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(tmp.path(), &small_cfg(64, 100), b"").unwrap();
    append_det(&mut w, 10, 5);
    let next = seg_path(tmp.path(), 100);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !next.exists() {
        assert!(
            Instant::now() < deadline,
            "helper never pre-created the next segment"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(w);
    assert!(!next.exists());
    assert_eq!(inspect(tmp.path()).unwrap().segments.len(), 1);
}

// ---------------------------------------------------------------- durability

fn wait_durable(dir: &Path, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ins = inspect(dir).unwrap();
        let last = &ins.segments[0];
        if last.durable >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "durable never reached {want}: {ins:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn durability_modes_advance_durable_mark() {
    let tmp = tempfile::tempdir().unwrap();
    // EveryN(10): synchronous msync every 10 records.
    let d1 = tmp.path().join("every");
    let mut cfg = small_cfg(64, 1000);
    cfg.durability = Durability::EveryN(10);
    let (mut w, _) = JournalWriter::open(&d1, &cfg, b"").unwrap();
    append_det(&mut w, 25, 1000);
    let ins = inspect(&d1).unwrap();
    assert_eq!(ins.segments[0].durable, 20);
    assert_eq!(ins.segments[0].committed, 25);
    drop(w);
    assert_eq!(inspect(&d1).unwrap().segments[0].durable, 25);

    // IntervalMs(5): the background flusher catches up without flush().
    let d2 = tmp.path().join("interval");
    cfg.durability = Durability::IntervalMs(5);
    let (mut w, _) = JournalWriter::open(&d2, &cfg, b"").unwrap();
    append_det(&mut w, 300, 1000);
    // Only whole pages the writer has left are flushed in the background.
    let page = super::sys::page_size() as u64;
    let full_pages = ((HEADER_SIZE as u64 + 300 * 64) / page * page - HEADER_SIZE as u64) / 64;
    wait_durable(&d2, full_pages);
    assert!(inspect(&d2).unwrap().segments[0].durable <= 300);
    w.flush().unwrap();
    assert_eq!(inspect(&d2).unwrap().segments[0].durable, 300);
    drop(w);

    // None: only flush() (or drop) advances it.
    let d3 = tmp.path().join("none");
    cfg.durability = Durability::None;
    let (mut w, _) = JournalWriter::open(&d3, &cfg, b"").unwrap();
    append_det(&mut w, 40, 1000);
    assert_eq!(inspect(&d3).unwrap().segments[0].durable, 0);
    w.flush().unwrap();
    assert_eq!(inspect(&d3).unwrap().segments[0].durable, 40);
}

// ---------------------------------------------------------------- recovery / corruption

#[test]
fn torn_tail_is_cut_and_uncommitted_valid_records_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = small_cfg(64, 100);
    let (mut w, _) = JournalWriter::open(dir, &cfg, b"").unwrap();
    append_det(&mut w, 10, 100);
    drop(w);
    let seg = seg_path(dir, 0);
    // Simulate a crash: records 10 and 11 were appended but not committed,
    // record 12 is torn (bad crc) and slot 13 holds garbage.
    let r10 = make_record(64, kind_for(10), 10, &payload_for(10, 48));
    let r11 = make_record(64, kind_for(11), 11, &payload_for(11, 48));
    let mut r12 = make_record(64, kind_for(12), 12, &payload_for(12, 48));
    r12[40] ^= 0xFF;
    write_at(&seg, record_offset(10, 64), &r10);
    write_at(&seg, record_offset(11, 64), &r11);
    write_at(&seg, record_offset(12, 64), &r12);
    write_at(&seg, record_offset(13, 64), &[0xAB; 64]);
    write_u64_at(&seg, OFF_DURABLE as u64, 0); // as if never flushed

    // verify only judges committed records: still valid, 2 uncommitted.
    let v = verify(dir).unwrap();
    assert_eq!((v.records, v.uncommitted_valid), (10, 2));

    let (mut w, rep) = JournalWriter::open(dir, &cfg, b"").unwrap();
    assert_eq!(rep.recovered_uncommitted, 2, "{rep:?}");
    assert_eq!(rep.committed_lost, 0);
    assert_eq!(rep.first_bad_offset, Some(record_offset(12, 64)));
    assert_eq!(rep.first_bad_segment.as_deref(), Some(seg.as_path()));
    assert!(matches!(
        rep.first_bad_problem,
        Some(RecordProblem::CrcMismatch { .. })
    ));
    assert_eq!(rep.bytes_cut, 128);
    assert_eq!(w.next_index(), 12);
    assert_eq!(
        read_at(&seg, record_offset(12, 64), 128),
        vec![0u8; 128],
        "tail zeroed"
    );
    append_det(&mut w, 20, 3);
    drop(w);
    assert_eq!(check_det(dir, 0), 20);
    assert_eq!(verify(dir).unwrap().records, 20);
}

/// Writes 3 full segments of 100 records and 50 records in the 4th.
fn corruption_fixture(dir: &Path) {
    let (mut w, _) = JournalWriter::open(dir, &small_cfg(64, 100), b"m").unwrap();
    append_det(&mut w, 350, 25);
    drop(w);
}

#[test]
fn verify_reports_exact_first_bad_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    corruption_fixture(&orig);
    assert_eq!(verify(&orig).unwrap().records, 350);
    type Corrupt = fn(&mut Vec<u8>);
    let cases: Vec<(u64, u64, &str, Corrupt)> = vec![
        (100, 37, "payload byte", |r| r[20] ^= 0x01),
        (200, 0, "crc byte", |r| r[3] ^= 0x80),
        (300, 49, "last committed record", |r| r[63] ^= 0x10),
        (0, 99, "kind zero with valid crc", |r| {
            r[4..8].copy_from_slice(&0u32.to_le_bytes());
            let c = record_crc(r);
            r[0..4].copy_from_slice(&c.to_le_bytes());
        }),
        (100, 5, "wrong index with valid crc", |r| {
            r[8..16].copy_from_slice(&7u64.to_le_bytes());
            let c = record_crc(r);
            r[0..4].copy_from_slice(&c.to_le_bytes());
        }),
    ];
    for (n, (seg_first, slot, what, corrupt)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("c{n}"));
        copy_dir(&orig, &dir);
        let seg = seg_path(&dir, seg_first);
        let off = record_offset(slot, 64);
        let mut rec = read_at(&seg, off, 64);
        corrupt(&mut rec);
        write_at(&seg, off, &rec);
        let e = verify(&dir).unwrap_err();
        assert_eq!(e.segment(), Some(seg.as_path()), "{what}: {e}");
        assert_eq!(e.offset(), Some(off), "{what}: {e}");
        match &e {
            VerifyError::BadRecord { index, .. } => assert_eq!(*index, seg_first + slot),
            other => panic!("{what}: unexpected {other}"),
        }
        assert!(e.to_string().contains(&format!("byte offset {off}")), "{e}");
        // The reader stops at the bad record with an error, never returns it.
        let mut r = JournalReader::open(&dir).unwrap();
        let mut n = 0;
        while r.next_record().is_some() {
            n += 1;
        }
        assert_eq!(n, seg_first + slot, "{what}");
        assert!(
            matches!(r.error(), Some(JournalError::CorruptRecord { .. })),
            "{what}"
        );
    }

    // Two corruptions: the first one is reported.
    let dir = tmp.path().join("two");
    copy_dir(&orig, &dir);
    write_at(&seg_path(&dir, 200), record_offset(10, 64) + 30, &[0xEE]);
    write_at(&seg_path(&dir, 100), record_offset(90, 64) + 30, &[0xEE]);
    let e = verify(&dir).unwrap_err();
    assert_eq!(e.segment(), Some(seg_path(&dir, 100).as_path()));
    assert_eq!(e.offset(), Some(record_offset(90, 64)));

    // Header corruption: reported at offset 0 of that segment; the writer
    // refuses to open instead of guessing.
    let dir = tmp.path().join("hdr");
    copy_dir(&orig, &dir);
    write_at(&seg_path(&dir, 100), 35, &[0x55]);
    let e = verify(&dir).unwrap_err();
    assert!(matches!(e, VerifyError::BadHeader { .. }), "{e}");
    assert_eq!(e.segment(), Some(seg_path(&dir, 100).as_path()));
    assert_eq!(e.offset(), Some(0));
    let e = JournalWriter::open(&dir, &small_cfg(64, 100), b"m").unwrap_err();
    assert!(matches!(e, JournalError::BadHeader { .. }), "{e}");
}

#[test]
fn recovery_cuts_at_first_bad_record_and_keeps_everything_before() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    corruption_fixture(&orig);
    let cfg = small_cfg(64, 100);

    // Corruption in the tail segment, which was never flushed (durable 0,
    // e.g. a power loss after the header page reached disk).
    let dir = tmp.path().join("tail");
    copy_dir(&orig, &dir);
    let seg = seg_path(&dir, 300);
    let off = record_offset(17, 64);
    write_at(&seg, off + 25, &[0x42 ^ read_at(&seg, off + 25, 1)[0]]);
    write_u64_at(&seg, OFF_DURABLE as u64, 0);
    assert_eq!(verify(&dir).unwrap_err().offset(), Some(off));
    let (mut w, rep) = JournalWriter::open(&dir, &cfg, b"m").unwrap();
    assert_eq!(rep.first_bad_offset, Some(off), "{rep:?}");
    assert_eq!(rep.first_bad_segment.as_deref(), Some(seg.as_path()));
    assert_eq!(rep.committed_lost, 50 - 17);
    assert_eq!(rep.records_kept, 317);
    assert_eq!(rep.bytes_cut, (50 - 17) * 64);
    assert!(!rep.is_clean());
    assert_eq!(w.next_index(), 317);
    append_det(&mut w, 330, 4);
    drop(w);
    assert_eq!(verify(&dir).unwrap().records, 330);
    assert_eq!(check_det(&dir, 0), 330);

    // Corruption in a middle segment that is not known to be durable:
    // recovery scans from there, cuts, and orphans the later segments.
    let dir = tmp.path().join("middle");
    copy_dir(&orig, &dir);
    let seg = seg_path(&dir, 100);
    let off = record_offset(60, 64);
    write_at(&seg, off + 50, &[0x42 ^ read_at(&seg, off + 50, 1)[0]]);
    write_u64_at(&seg, OFF_DURABLE as u64, 0);
    for s in [200, 300] {
        write_u64_at(&seg_path(&dir, s), OFF_DURABLE as u64, 0);
    }
    let (w, rep) = JournalWriter::open(&dir, &cfg, b"m").unwrap();
    assert_eq!(rep.first_bad_offset, Some(off), "{rep:?}");
    assert_eq!(rep.records_kept, 160);
    assert_eq!(rep.committed_lost, 40 + 100 + 50);
    assert_eq!(rep.orphaned_files.len(), 2, "{rep:?}");
    assert!(rep.orphaned_files.iter().all(|p| p.exists()));
    assert_eq!(w.next_index(), 160);
    drop(w);
    assert_eq!(check_det(&dir, 0), 160);
    let v = verify(&dir).unwrap();
    assert_eq!((v.segments, v.next_index), (2, 160));
}

// ---------------------------------------------------------------- live tail

#[test]
fn live_tail_in_thread_sees_every_committed_record_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    const N: u64 = 30_000;
    let (mut w, _) = JournalWriter::open(&dir, &small_cfg(64, 700), b"").unwrap();
    // Upper bound of what may be visible: raised *before* appending a batch.
    let allowed = Arc::new(AtomicU64::new(0));
    let allowed_r = Arc::clone(&allowed);
    let dir_r = dir.clone();
    let reader = std::thread::spawn(move || {
        let mut r = JournalReader::open(&dir_r).unwrap();
        let mut expect = 0u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut polls_caught_up = 0u64;
        while expect < N {
            match r.next_record() {
                Some(rec) => {
                    assert_eq!(rec.index(), expect);
                    assert!(
                        rec.index() < allowed_r.load(Ordering::SeqCst),
                        "read past commit"
                    );
                    check_payload(rec.index(), rec.kind(), rec.payload());
                    expect += 1;
                }
                None => {
                    if let Some(e) = r.take_error() {
                        panic!("reader error: {e}");
                    }
                    assert!(Instant::now() < deadline, "tail stuck at {expect}");
                    polls_caught_up += 1;
                    std::thread::yield_now();
                }
            }
        }
        polls_caught_up
    });
    let mut rng = seed();
    let mut buf = [0u8; 48];
    while w.next_index() < N {
        let batch = (1 + splitmix(&mut rng) % 200).min(N - w.next_index());
        // Records of this batch may become visible early through the
        // implicit commit at a segment roll-over, never beyond it.
        allowed.store(w.next_index() + batch, Ordering::SeqCst);
        for _ in 0..batch {
            let i = w.next_index();
            let len = len_for(i, 48);
            fill_payload(i, &mut buf[..len]);
            w.append(kind_for(i), &buf[..len]).unwrap();
        }
        w.commit();
        if splitmix(&mut rng) % 8 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let polls = reader.join().unwrap();
    eprintln!(
        "reader was caught up {polls} times; writer stats {:?}",
        w.stats()
    );
    assert!(w.stats().rollovers >= 40);
}

#[test]
fn live_tail_of_writer_in_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    fs::create_dir_all(&dir).unwrap();
    const N: u64 = 20_000;
    let mut child = helper_command("crash_writer_child")
        .env(CRASH_DIR_ENV, &dir)
        .env(CRASH_MODE_ENV, "none")
        .env(CRASH_MAX_ENV, N.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut r = JournalReader::open(&dir).unwrap();
    let mut expect = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while expect < N {
        match r.next_record() {
            Some(rec) => {
                assert_eq!(rec.index(), expect);
                check_payload(rec.index(), rec.kind(), rec.payload());
                expect += 1;
            }
            None => {
                if let Some(e) = r.take_error() {
                    panic!("reader error: {e}");
                }
                assert!(Instant::now() < deadline, "tail stuck at {expect}");
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(r.next_record().is_none());
    assert_eq!(verify(&dir).unwrap().records, N);
}

#[test]
fn reader_waits_for_first_segment_and_seeks_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    fs::create_dir_all(&dir).unwrap();
    // Opened before any segment exists: waits for the first one.
    let mut r = JournalReader::open(&dir).unwrap();
    assert!(r.next_record().is_none() && r.error().is_none());
    assert_eq!(r.record_size(), None);
    let (mut w, _) = JournalWriter::open(&dir, &small_cfg(64, 100), b"").unwrap();
    append_det(&mut w, 250, 10);
    assert_eq!(r.next_record().unwrap().index(), 0);
    assert_eq!(r.record_size(), Some(64));

    r.seek(150).unwrap();
    assert_eq!(r.next_record().unwrap().index(), 150);
    r.seek(20).unwrap();
    let rec = r.next_record().unwrap();
    check_payload(20, rec.kind(), rec.payload());
    r.seek(249).unwrap();
    assert_eq!(r.next_record().unwrap().index(), 249);
    assert!(r.next_record().is_none());
    // Beyond the end, in a segment that does not exist yet.
    r.seek(420).unwrap();
    assert!(r.next_record().is_none() && r.error().is_none());
    assert_eq!(r.next_index(), 420);
    append_det(&mut w, 419, 10);
    assert!(r.next_record().is_none(), "419 < 420");
    append_det(&mut w, 450, 10);
    let mut seen = Vec::new();
    while let Some(rec) = r.next_record() {
        check_payload(rec.index(), rec.kind(), rec.payload());
        seen.push(rec.index());
    }
    assert_eq!(seen, (420..450).collect::<Vec<_>>());
    // Appended but not committed: invisible.
    w.append(1, b"uncommitted").unwrap();
    assert!(r.next_record().is_none());
    w.commit();
    assert_eq!(r.next_record().unwrap().index(), 450);
}

// ---------------------------------------------------------------- deleted segments

#[test]
fn reader_reports_deleted_segments_instead_of_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (mut w, _) = JournalWriter::open(&dir, &small_cfg(64, 100), b"").unwrap();
    append_det(&mut w, 350, 50);

    // A gap: segment 100 deleted while the reader is in segment 0.
    let mut r = JournalReader::open(&dir).unwrap();
    for _ in 0..60 {
        r.next_record().unwrap();
    }
    fs::remove_file(seg_path(&dir, 100)).unwrap();
    let mut n = 60;
    while r.next_record().is_some() {
        n += 1;
    }
    assert_eq!(n, 100, "the mapped segment stays readable after unlink");
    assert!(
        matches!(r.error(), Some(JournalError::Gap { expected: 100, .. })),
        "{:?}",
        r.error()
    );

    // Seeking into deleted (retained-away) data.
    r.seek(210).unwrap();
    fs::remove_file(seg_path(&dir, 0)).unwrap();
    let e = r.seek(5).unwrap_err();
    assert!(matches!(
        e,
        JournalError::IndexRetained {
            index: 5,
            first_available: 200,
            ..
        }
    ));
    r.seek(250).unwrap();
    assert_eq!(r.next_record().unwrap().index(), 250);

    // The active segment deleted while the reader is caught up on it.
    while r.next_record().is_some() {}
    assert!(r.error().is_none());
    fs::remove_file(seg_path(&dir, 300)).unwrap();
    let mut polls = 0;
    while r.error().is_none() {
        assert!(r.next_record().is_none());
        polls += 1;
        assert!(polls < 10_000, "deletion never detected");
    }
    assert!(matches!(
        r.error(),
        Some(JournalError::SegmentDeleted { .. })
    ));
    drop(w);
}

// ---------------------------------------------------------------- crash safety (SIGKILL)

/// Helper run as a child process by the crash tests: appends deterministic
/// records in random batches, commits, and prints `COMMITTED <next_index>`
/// after each commit. Does nothing unless TICKWIRE_JOURNAL_CRASH_DIR is set.
#[test]
#[ignore = "helper: executed as a child process by crash_safety_sigkill_child_writer"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return;
    };
    let mode = std::env::var(CRASH_MODE_ENV).unwrap_or_default();
    let max: u64 = std::env::var(CRASH_MAX_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    let mut rng: u64 = std::env::var(CRASH_SEED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut cfg = small_cfg(CRASH_RS, CRASH_SEG_RECORDS);
    cfg.durability = match mode.as_str() {
        "every" => Durability::EveryN(97),
        "interval" => Durability::IntervalMs(1),
        _ => Durability::None,
    };
    let (mut w, _) = JournalWriter::open(&dir, &cfg, b"crash-meta").unwrap();
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut buf = vec![0u8; w.max_payload()];
    let started = Instant::now();
    while w.next_index() < max && started.elapsed() < Duration::from_secs(60) {
        let batch = 1 + splitmix(&mut rng) % 300;
        for _ in 0..batch.min(max - w.next_index()) {
            let i = w.next_index();
            let len = len_for(i, buf.len());
            fill_payload(i, &mut buf[..len]);
            w.append(kind_for(i), &buf[..len]).unwrap();
        }
        w.commit();
        writeln!(out, "COMMITTED {}", w.next_index()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn crash_safety_sigkill_child_writer() {
    // 60 in the suite; tools/journal_crash_soak.sh raises it.
    let kills: u32 = std::env::var("TICKWIRE_JOURNAL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let mut rng = seed();
    let cfg = small_cfg(CRASH_RS, CRASH_SEG_RECORDS);
    let mut last_known = 0u64;
    let (mut torn, mut kept_uncommitted, mut cut_bytes) = (0, 0, 0);
    for iter in 0..kills {
        let mode = ["none", "interval", "every"][iter as usize % 3];
        let mut child = helper_command("crash_writer_child")
            .env(CRASH_DIR_ENV, &dir)
            .env(CRASH_MODE_ENV, mode)
            .env(CRASH_SEED_ENV, splitmix(&mut rng).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let pump = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("COMMITTED ").and_then(|n| n.parse().ok()) {
                    let _ = tx.send(n);
                }
            }
        });
        // Kill at a random moment: sometimes before the first commit (even
        // during the child's own recovery), usually after a random number
        // of commits plus a random delay.
        let mut committed = 0u64;
        if splitmix(&mut rng) % 5 != 0 {
            let want = 1 + splitmix(&mut rng) % 30;
            for _ in 0..want {
                match rx.recv_timeout(Duration::from_secs(120)) {
                    Ok(n) => committed = committed.max(n),
                    Err(e) => panic!("child stopped reporting commits: {e:?}"),
                }
            }
        }
        std::thread::sleep(Duration::from_micros(splitmix(&mut rng) % 3000));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "child finished before being killed: {status}"
        );
        pump.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            committed = committed.max(n); // printed before the kill landed
        }
        assert!(committed >= last_known.min(committed));

        // Recover in this process.
        let (mut w, rep) = JournalWriter::open(&dir, &cfg, b"crash-meta").unwrap();
        assert_eq!(rep.committed_lost, 0, "iteration {iter}: {rep:?}");
        assert!(rep.orphaned_files.is_empty(), "iteration {iter}: {rep:?}");
        assert!(
            w.next_index() >= committed,
            "iteration {iter}: lost committed records: next {} < committed {committed}",
            w.next_index()
        );
        assert!(w.next_index() >= last_known);
        if rep.first_bad_offset.is_some() {
            torn += 1;
        }
        kept_uncommitted += rep.recovered_uncommitted;
        cut_bytes += rep.bytes_cut;
        let v = verify(&dir).unwrap_or_else(|e| panic!("iteration {iter}: verify: {e}"));
        assert_eq!(v.next_index, w.next_index());
        assert_eq!(v.unused_segments, 0);
        // Every record up to the recovered end (which includes everything
        // committed) holds its deterministic payload.
        assert_eq!(check_det(&dir, 0), w.next_index(), "iteration {iter}");
        // Appends continue with the next index.
        let next = w.next_index();
        append_det(&mut w, next + 3, 1);
        assert_eq!(w.next_index(), next + 3);
        last_known = w.next_index();
        drop(w);
        assert_eq!(verify(&dir).unwrap().next_index, last_known);
    }
    eprintln!(
        "{kills} kills: {last_known} records, {torn} torn tails cut, {kept_uncommitted} \
         uncommitted records kept, {cut_bytes} bytes cut"
    );
    assert!(last_known > 0);
}

// ---------------------------------------------------------------- disk full / read-only

/// Helper child: lowers RLIMIT_FSIZE so segment allocation fails like a full
/// disk, then checks open and roll-over errors and recovery of the writer.
#[test]
#[ignore = "helper: executed as a child process by disk_full_is_an_error_not_a_crash"]
fn fsize_limit_child() {
    let Ok(dir) = std::env::var(FSIZE_DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    // Prepare a journal with small (256 KiB) segments before the limit.
    let small = small_cfg(64, 4096);
    let (mut w, _) = JournalWriter::open(dir.join("b"), &small, b"").unwrap();
    append_det(&mut w, 100, 10);
    drop(w);

    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions;
    // without it exceeding RLIMIT_FSIZE would kill the process with SIGXFSZ.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) }, 0);
    let saved = lim;
    lim.rlim_cur = 1 << 20;
    // SAFETY: `lim` is a valid rlimit; lowering the soft limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);

    // 1. A new journal whose first segment cannot be allocated.
    let big = small_cfg(64, 65536); // 4 MiB segments
    let e = JournalWriter::open(dir.join("a"), &big, b"").unwrap_err();
    assert!(matches!(e, JournalError::DiskFull { .. }), "{e}");
    assert!(e.to_string().contains("free disk space"), "{e}");
    let leftovers: Vec<_> = fs::read_dir(dir.join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".seg"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    println!("OPEN_DISKFULL ok: {e}");

    // 2. Roll-over into a segment that cannot be allocated.
    let (mut w, _) = JournalWriter::open(dir.join("b"), &big, b"").unwrap();
    append_det(&mut w, 4096, 100); // fills the existing 256 KiB segment
    let before = w.next_index();
    assert_eq!(w.append(1, b"x"), Err(AppendError::DiskFull));
    assert_eq!(
        w.append(1, b"x"),
        Err(AppendError::DiskFull),
        "retry is safe"
    );
    assert_eq!(w.next_index(), before, "nothing appended");
    assert!(matches!(
        w.take_last_error(),
        Some(JournalError::DiskFull { .. })
    ));
    assert_eq!(
        check_det(&dir.join("b"), 0),
        4096,
        "earlier records intact and readable"
    );
    // Space comes back: appending resumes with the same index.
    // SAFETY: `saved` is the valid original limit (soft <= hard).
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &saved) }, 0);
    append_det(&mut w, 4200, 10);
    drop(w);
    assert_eq!(check_det(&dir.join("b"), 0), 4200);
    assert_eq!(verify(dir.join("b")).unwrap().records, 4200);
    println!("ROLLOVER_DISKFULL ok");
}

#[test]
fn disk_full_is_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let out = helper_command("fsize_limit_child")
        .env(FSIZE_DIR_ENV, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("OPEN_DISKFULL ok"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ROLLOVER_DISKFULL ok"),
        "{stdout}\n{stderr}"
    );
}

/// Helper child: mounts a 2 MiB tmpfs in a private mount namespace (needs
/// CAP_SYS_ADMIN; prints SKIP otherwise) and checks that a 4 MiB segment
/// fails with a real ENOSPC -> `JournalError::DiskFull`.
#[test]
#[ignore = "helper: executed as a child process by real_enospc_on_small_tmpfs"]
fn tmpfs_enospc_child() {
    let Ok(dir) = std::env::var(TMPFS_DIR_ENV) else {
        return;
    };
    let mnt = std::ffi::CString::new(dir.clone()).unwrap();
    // SAFETY: unshare has no memory-safety preconditions; it detaches this
    // thread (and threads it spawns later) into a private mount namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        println!("SKIP unshare: {}", std::io::Error::last_os_error());
        return;
    }
    let root = c"/";
    let none = c"none";
    let tmpfs = c"tmpfs";
    let opts = c"size=2m";
    // SAFETY: all pointers are valid NUL-terminated strings (or null data).
    let rc = unsafe {
        libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        println!("SKIP make-private: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: as above; `opts` is the NUL-terminated tmpfs option string.
    let rc = unsafe {
        libc::mount(
            tmpfs.as_ptr(),
            mnt.as_ptr(),
            tmpfs.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        println!("SKIP mount: {}", std::io::Error::last_os_error());
        return;
    }
    let e = JournalWriter::open(Path::new(&dir).join("j"), &small_cfg(64, 65536), b"").unwrap_err();
    match &e {
        JournalError::DiskFull { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{e}")
        }
        other => panic!("expected DiskFull, got {other}"),
    }
    // A segment that fits works.
    let (mut w, _) =
        JournalWriter::open(Path::new(&dir).join("k"), &small_cfg(64, 1024), b"").unwrap();
    append_det(&mut w, 100, 10);
    drop(w);
    println!("TMPFS_ENOSPC ok: {e}");
}

#[test]
fn real_enospc_on_small_tmpfs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = helper_command("tmpfs_enospc_child")
        .env(TMPFS_DIR_ENV, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    if stdout.contains("SKIP") {
        eprintln!("real ENOSPC test skipped (no CAP_SYS_ADMIN): {stdout}");
        return;
    }
    assert!(stdout.contains("TMPFS_ENOSPC ok"), "{stdout}\n{stderr}");
}

fn read_only_checks(base: &Path) {
    let cfg = small_cfg(64, 100);
    // Existing journal in a read-only directory with read-only files.
    let e = JournalWriter::open(base.join("ro"), &cfg, b"").unwrap_err();
    assert!(matches!(e, JournalError::PermissionDenied { .. }), "{e}");
    assert!(e.to_string().contains("no permission"), "{e}");
    // A new journal below a read-only directory.
    let e = JournalWriter::open(base.join("ro").join("sub"), &cfg, b"").unwrap_err();
    assert!(matches!(e, JournalError::PermissionDenied { .. }), "{e}");
    // Reading still works.
    assert_eq!(check_det(&base.join("ro"), 0), 30);
    assert_eq!(verify(base.join("ro")).unwrap().records, 30);
}

/// Helper child: drops root privileges (if root) and runs `read_only_checks`.
#[test]
#[ignore = "helper: executed as a child process by read_only_directory_is_a_clear_error"]
fn read_only_child() {
    let Ok(dir) = std::env::var(RO_DIR_ENV) else {
        return;
    };
    // SAFETY: plain syscalls without memory arguments.
    unsafe {
        if libc::geteuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
            println!(
                "SKIP cannot drop privileges: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
    }
    read_only_checks(Path::new(&dir));
    println!("READ_ONLY ok");
}

#[test]
fn read_only_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ro = tmp.path().join("ro");
    let (mut w, _) = JournalWriter::open(&ro, &small_cfg(64, 100), b"").unwrap();
    append_det(&mut w, 30, 10);
    drop(w);
    for e in fs::read_dir(&ro).unwrap() {
        fs::set_permissions(e.unwrap().path(), fs::Permissions::from_mode(0o444)).unwrap();
    }
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // Root ignores permission bits: check as an unprivileged child.
        let out = helper_command("read_only_child")
            .env(RO_DIR_ENV, tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "child failed: {}\n{stdout}\n{stderr}",
            out.status
        );
        if stdout.contains("SKIP") {
            eprintln!("read-only test skipped: {stdout}");
        } else {
            assert!(stdout.contains("READ_ONLY ok"), "{stdout}\n{stderr}");
        }
    } else {
        read_only_checks(tmp.path());
    }
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------- proptest

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append(u32, Vec<u8>),
        Commit,
        Reopen,
    }

    fn ops(max_payload: usize) -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            8 => (1u32..=u32::MAX, proptest::collection::vec(any::<u8>(), 0..=max_payload))
                .prop_map(|(k, p)| Op::Append(k, p)),
            1 => Just(Op::Commit),
            1 => Just(Op::Reopen),
        ];
        proptest::collection::vec(op, 0..250)
    }

    fn case() -> impl Strategy<Value = (u32, u64, Vec<Op>)> {
        prop_oneof![Just(32u32), Just(64), Just(128), Just(72)]
            .prop_flat_map(|rs| (Just(rs), 1u64..40, ops(rs as usize - REC_OFF_PAYLOAD)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn random_record_sequences_round_trip((rs, seg_records, ops) in case()) {
            let tmp = tempfile::tempdir().unwrap();
            let cfg = small_cfg(rs, seg_records);
            let (mut w, _) = JournalWriter::open(tmp.path(), &cfg, b"p").unwrap();
            let mut model: Vec<(u32, Vec<u8>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Append(kind, payload) => {
                        prop_assert_eq!(w.append(kind, &payload).unwrap(), model.len() as u64);
                        model.push((kind, payload));
                    }
                    Op::Commit => w.commit(),
                    Op::Reopen => {
                        drop(w);
                        let (w2, rep) = JournalWriter::open(tmp.path(), &cfg, b"p").unwrap();
                        prop_assert!(rep.is_clean());
                        prop_assert_eq!(rep.next_index, model.len() as u64);
                        w = w2;
                    }
                }
            }
            drop(w);
            let v = verify(tmp.path()).unwrap();
            prop_assert_eq!(v.records, model.len() as u64);
            let got: Vec<Record> = iter_records(tmp.path()).unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(got.len(), model.len());
            for (i, (rec, (kind, payload))) in got.iter().zip(&model).enumerate() {
                prop_assert_eq!(rec.index, i as u64);
                prop_assert_eq!(rec.kind, *kind);
                prop_assert_eq!(&rec.payload[..payload.len()], &payload[..]);
                prop_assert!(rec.payload[payload.len()..].iter().all(|&b| b == 0));
            }
        }
    }
}

// ---------------------------------------------------------------- micro-measurement

/// Prints ns/append and read rates. Run in release:
/// `cargo test --release -- --ignored --nocapture bench_append_and_read`
/// (TICKWIRE_JOURNAL_BENCH_N records per run, default 10M;
/// TICKWIRE_JOURNAL_BENCH_DIR to choose the filesystem).
#[test]
#[ignore = "micro-measurement; run explicitly in release mode"]
fn bench_append_and_read() {
    let n: u64 = std::env::var("TICKWIRE_JOURNAL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let base = std::env::var_os("TICKWIRE_JOURNAL_BENCH_DIR").map(PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let seg = 256u64 << 20;
    let hot_n = (seg / 64 - 1).min(n);
    let runs: [(&str, u64, Durability, u64); 4] = [
        // Whole segment prefaulted by open(): the pure hot-path cost.
        (
            "hot: 1 segment prefaulted at open",
            hot_n,
            Durability::None,
            seg,
        ),
        (
            "sustained: None, prefault 4 MiB",
            n,
            Durability::None,
            4 << 20,
        ),
        (
            "sustained: None, prefault 64 MiB",
            n,
            Durability::None,
            64 << 20,
        ),
        (
            "sustained: IntervalMs(10), prefault 64 MiB",
            n,
            Durability::IntervalMs(10),
            64 << 20,
        ),
    ];
    for (name, count, durability, prefault) in runs {
        let dir = tmp.path().join("bench");
        let cfg = JournalConfig {
            segment_bytes: seg,
            record_size: 64,
            durability,
            prefault_ahead_bytes: prefault,
        };
        let (mut w, _) = JournalWriter::open(&dir, &cfg, b"").unwrap();
        let payload = [0x5Au8; 48];
        let mut batch_ns: Vec<u64> = vec![1; (count / 64) as usize]; // pre-touched
        let mut nb = 0;
        let usage = || {
            // SAFETY: getrusage writes into the zero-initialised struct.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `ru` is a valid, writable rusage struct.
            unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
            (ru.ru_minflt + ru.ru_majflt, ru.ru_nivcsw)
        };
        let (faults0, preempt0) = usage();
        let t0 = Instant::now();
        let mut t_batch = t0;
        for i in 0..count {
            w.append(1 + (i & 3) as u32, &payload).unwrap();
            if i % 64 == 63 {
                w.commit();
                let now = Instant::now();
                batch_ns[nb] = (now - t_batch).as_nanos() as u64;
                nb += 1;
                t_batch = now;
            }
        }
        w.commit();
        let el = t0.elapsed();
        let (faults1, preempt1) = usage();
        batch_ns.sort_unstable();
        let pct = |p: f64| batch_ns[((batch_ns.len() - 1) as f64 * p) as usize] as f64 / 64.0;
        eprintln!(
            "append [{name}]: {count} x 64 B: {:.1} ns/append mean ({:.0} MB/s); per-record in \
             64-record batches: p50 {:.1} ns, p99 {:.1} ns, p99.99 {:.1} ns, max batch {:.1} us; \
             appender thread: {} page faults, {} involuntary context switches; {:?}",
            el.as_nanos() as f64 / count as f64,
            (count * 64) as f64 / el.as_secs_f64() / 1e6,
            pct(0.5),
            pct(0.99),
            pct(0.9999),
            *batch_ns.last().unwrap() as f64 / 1e3,
            faults1 - faults0,
            preempt1 - preempt0,
            w.stats()
        );
        drop(w);
        for crc in [true, false] {
            let mut r = JournalReader::open(&dir).unwrap();
            r.set_verify_crc(crc);
            let t0 = Instant::now();
            let mut sum = 0u64;
            let mut got = 0u64;
            while let Some(rec) = r.next_record() {
                sum = sum.wrapping_add(u64::from(rec.payload()[0]) + rec.index());
                got += 1;
            }
            let el = t0.elapsed();
            assert_eq!(got, count);
            eprintln!(
                "read   [{name}] crc={crc}: {:.1} ns/record, {:.1} M records/s (checksum {sum})",
                el.as_nanos() as f64 / count as f64,
                count as f64 / el.as_secs_f64() / 1e6
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
