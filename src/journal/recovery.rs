//! Crash recovery of the journal tail (run by `JournalWriter::open`).
//!
//! Algorithm (see also `docs/JOURNAL_FORMAT.md`, "Recovery"):
//!
//! 1. Remove leftover `*.seg.tmp` files (interrupted segment creation).
//! 2. Read every segment header; check magic/crc/version, record size,
//!    file length, and that each segment starts where the previous one ends.
//! 3. Find the first segment whose `durable_count` is below its capacity
//!    (everything before it is known to be full and on disk). Scan from its
//!    durable mark (never above its committed mark) forward, across segment
//!    boundaries, keeping every record that is valid (crc OK, kind != 0,
//!    index == expected). After a process crash every committed record is
//!    still in the page cache, so the scan always reaches at least the
//!    committed mark; after a power loss it stops at the first record that
//!    did not reach the disk.
//! 4. At the first invalid slot: zero it and every non-zero slot after it in
//!    that segment (the torn/corrupt tail), publish committed = kept, flush,
//!    then set durable = kept. Segments after the cut are removed (empty
//!    preallocated ones) or renamed to `*.seg.orphaned` (ones with data).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::error::JournalError;
use super::format::{
    HEADER_SIZE, ORPHAN_SUFFIX, RecordProblem, SEGMENT_TMP_SUFFIX, check_record, is_all_zero,
    record_offset,
};
use super::segment::{HeaderInfo, WSegment, header_error, list_segments, read_header};
use super::sys;

/// What [`super::JournalWriter::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// True if the journal was created (no segment existed).
    pub created: bool,
    /// Number of segment files after recovery.
    pub segments: usize,
    /// Global index of the oldest stored record.
    pub first_index: u64,
    /// Index the next append will get.
    pub next_index: u64,
    /// Number of records stored in the journal after recovery
    /// (`next_index - first_index`), all committed.
    pub records_kept: u64,
    /// Valid records found beyond the committed mark (appended but not yet
    /// committed when the writer stopped) that were kept and are now committed.
    pub recovered_uncommitted: u64,
    /// Records below an old committed mark that failed validation and were
    /// cut. Always 0 after a process crash; non-zero only after a power loss
    /// (pages that never reached the disk) or on-disk corruption of the tail.
    pub committed_lost: u64,
    /// Bytes of non-empty record slots that were zeroed (torn/corrupt tail).
    pub bytes_cut: u64,
    /// Byte offset, within [`RecoveryReport::first_bad_segment`], of the first
    /// non-empty invalid record slot (the start of the cut), if any.
    pub first_bad_offset: Option<u64>,
    /// Segment file containing [`RecoveryReport::first_bad_offset`].
    pub first_bad_segment: Option<PathBuf>,
    /// Why the first bad record was rejected.
    pub first_bad_problem: Option<RecordProblem>,
    /// Files removed: interrupted `*.seg.tmp` creations and unused
    /// preallocated segments beyond the end of the data.
    pub removed_files: Vec<PathBuf>,
    /// Segments beyond the cut point that still contained data, renamed to
    /// `*.seg.orphaned` for inspection (only after power loss/corruption).
    pub orphaned_files: Vec<PathBuf>,
    /// True if `meta.json` existed with different bytes and was replaced.
    pub meta_replaced: bool,
}

impl RecoveryReport {
    /// True if nothing had to be cut, lost, removed or orphaned.
    pub fn is_clean(&self) -> bool {
        self.committed_lost == 0
            && self.bytes_cut == 0
            && self.first_bad_offset.is_none()
            && self.orphaned_files.is_empty()
    }
}

/// Result of recovery: the active segment and the slot to append at.
pub(super) struct Recovered {
    pub active: WSegment,
    pub pos: u64,
    pub report: RecoveryReport,
}

fn journal_io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
    move |e| JournalError::io_at(action, path, e)
}

/// Recovers (or creates) the journal in `dir`. Must be called with the
/// writer lock held and before any other thread uses the segments.
pub(super) fn recover(
    dir: &Path,
    record_size: u32,
    new_capacity: u64,
) -> Result<Recovered, JournalError> {
    let mut report = RecoveryReport::default();

    // 1. Leftovers of interrupted segment creation / meta replacement.
    for entry in fs::read_dir(dir).map_err(journal_io("list", dir))? {
        let entry = entry.map_err(journal_io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(SEGMENT_TMP_SUFFIX) || name == super::writer::META_TMP {
            let p = entry.path();
            fs::remove_file(&p).map_err(journal_io("remove leftover", &p))?;
            report.removed_files.push(p);
        }
    }

    // 2. Headers.
    let list = list_segments(dir).map_err(journal_io("list", dir))?;
    if list.is_empty() {
        let active = WSegment::create(dir, 0, 0, new_capacity, record_size)?;
        report.created = true;
        report.segments = 1;
        return Ok(Recovered {
            active,
            pos: 0,
            report,
        });
    }
    let mut infos: Vec<(PathBuf, HeaderInfo)> = Vec::with_capacity(list.len());
    for (name_first, path) in list {
        let file = fs::File::open(&path).map_err(journal_io("open segment", &path))?;
        let info = read_header(&file).map_err(|e| header_error(&path, e))?;
        if info.hdr.first_index != name_first {
            return Err(JournalError::io_at(
                "validate",
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "file name says first index {name_first} but the header says {}",
                        info.hdr.first_index
                    ),
                ),
            ));
        }
        if info.hdr.record_size != record_size {
            return Err(JournalError::RecordSizeMismatch {
                dir: dir.to_path_buf(),
                existing: info.hdr.record_size,
                requested: record_size,
            });
        }
        if info.file_len < info.hdr.file_len() {
            return Err(JournalError::Truncated {
                path,
                expected: info.hdr.file_len(),
                actual: info.file_len,
            });
        }
        if let Some((_, prev)) = infos.last() {
            if prev.hdr.end_index() != info.hdr.first_index {
                return Err(JournalError::Gap {
                    dir: dir.to_path_buf(),
                    expected: prev.hdr.end_index(),
                    found: path,
                });
            }
        }
        infos.push((path, info));
    }
    let n = infos.len();

    // 3. Where to start scanning.
    let trusted = |i: &HeaderInfo| i.durable.min(i.committed).min(i.hdr.capacity);
    let start = infos
        .iter()
        .position(|(_, i)| trusted(i) < i.hdr.capacity)
        .unwrap_or(n - 1);
    let mut i = start;
    let mut slot = trusted(&infos[i].1);
    let (mut seg, _) = WSegment::open(&infos[i].0)?;
    loop {
        let info = infos[i].1;
        let cap = info.hdr.capacity;
        while slot < cap {
            // SAFETY: slot < capacity; recovery runs with the writer lock
            // held and before the segment is shared with any thread.
            let rec = unsafe { seg.slot(slot) };
            if check_record(rec, info.hdr.first_index + slot).is_err() {
                break;
            }
            slot += 1;
        }
        let old_committed = info.committed.min(cap);
        if slot == cap && i + 1 < n {
            // Full segment: publish and make durable, continue with the next.
            report.recovered_uncommitted += cap - old_committed;
            seg.committed().store(cap, Ordering::Release);
            seg.flush_and_mark(cap)
                .map_err(journal_io("msync", &seg.path))?;
            i += 1;
            slot = 0;
            seg = WSegment::open(&infos[i].0)?.0;
            continue;
        }
        if slot >= old_committed {
            report.recovered_uncommitted += slot - old_committed;
        } else {
            report.committed_lost += old_committed - slot;
        }
        break;
    }

    // 4. Cut the tail of segment i at `slot`.
    let cap = seg.hdr.capacity;
    if slot < cap {
        // SAFETY: slot < capacity; exclusive access as above.
        let rec = unsafe { seg.slot(slot) };
        if let Err(problem) = check_record(rec, seg.hdr.first_index + slot) {
            if problem != RecordProblem::Empty {
                report.first_bad_offset = Some(record_offset(slot, seg.hdr.record_size));
                report.first_bad_segment = Some(seg.path.clone());
                report.first_bad_problem = Some(problem);
            }
        }
        report.bytes_cut = zero_tail(&seg, slot);
    }
    seg.committed().store(slot, Ordering::Release);
    seg.durable().store(
        seg.durable().load(Ordering::Acquire).min(slot),
        Ordering::Release,
    );
    seg.flush_upto(cap)
        .map_err(journal_io("msync", &seg.path))?;
    seg.durable().store(slot, Ordering::Release);
    seg.flush_upto(0).map_err(journal_io("msync", &seg.path))?;

    // 5. Segments beyond the cut.
    let mut changed_dir = false;
    for (path, info) in infos.iter().skip(i + 1) {
        report.committed_lost += info.committed.min(info.hdr.capacity);
        let empty = info.committed == 0 && first_slot_empty(path, info)?;
        if empty {
            fs::remove_file(path).map_err(journal_io("remove unused segment", path))?;
            report.removed_files.push(path.clone());
        } else {
            let mut orphan = path.clone().into_os_string();
            orphan.push(&ORPHAN_SUFFIX[".seg".len()..]);
            let orphan = PathBuf::from(orphan);
            fs::rename(path, &orphan).map_err(journal_io("rename orphaned segment", path))?;
            report.orphaned_files.push(orphan);
        }
        changed_dir = true;
    }
    if changed_dir {
        sys::fsync_dir(dir).map_err(journal_io("fsync", dir))?;
    }

    report.segments = i + 1;
    report.first_index = infos[0].1.hdr.first_index;
    report.next_index = seg.hdr.first_index + slot;
    report.records_kept = report.next_index - report.first_index;
    Ok(Recovered {
        active: seg,
        pos: slot,
        report,
    })
}

/// True if slot 0 of the segment at `path` is all zero.
fn first_slot_empty(path: &Path, info: &HeaderInfo) -> Result<bool, JournalError> {
    use std::os::unix::fs::FileExt;
    let file = fs::File::open(path).map_err(journal_io("open segment", path))?;
    let mut buf = vec![0u8; info.hdr.record_size as usize];
    file.read_exact_at(&mut buf, HEADER_SIZE as u64)
        .map_err(journal_io("read", path))?;
    Ok(is_all_zero(&buf))
}

/// Zeroes every non-zero slot from `from` to the end of `seg`, visiting only
/// ranges that may hold data (SEEK_DATA/SEEK_HOLE). Returns the number of
/// bytes of non-empty slots zeroed.
fn zero_tail(seg: &WSegment, from: u64) -> u64 {
    let rs = u64::from(seg.hdr.record_size);
    let cap = seg.hdr.capacity;
    let mut cut = 0u64;
    let start = record_offset(from, seg.hdr.record_size);
    for (a, b) in sys::data_ranges(&seg.file, start, seg.hdr.file_len()) {
        let first = ((a - HEADER_SIZE as u64) / rs).max(from);
        let last = (b - HEADER_SIZE as u64).div_ceil(rs).min(cap);
        for s in first..last {
            // SAFETY: s < capacity; recovery has exclusive access to the
            // segment and these slots are beyond the committed mark.
            let zero = is_all_zero(unsafe { seg.slot(s) });
            if !zero {
                // SAFETY: as above; the slice from `slot` is no longer alive.
                unsafe { seg.zero_slot(s) };
                cut += rs;
            }
        }
    }
    cut
}
