//! Zero-copy, poll-style journal reader that can tail a live journal.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::JournalError;
use super::format::{
    META_FILE, REC_OFF_PAYLOAD, RecordProblem, record_crc, record_kind_index, record_offset,
    segment_file_name,
};
use super::segment::{RSegment, list_segments};

/// When caught up, check whether the current segment file was deleted every
/// this many polls (one fstat).
const DELETE_CHECK_EVERY: u32 = 64;
/// When the next segment file does not exist yet, list the directory to
/// detect a gap every this many polls.
const GAP_CHECK_EVERY: u32 = 64;
/// The reader prefaults (MADV_POPULATE_READ) this many bytes of records
/// ahead of its position, so sequential replay takes one madvise per
/// window instead of a page fault per page.
const READ_AHEAD_BYTES: u64 = 4 << 20;

/// Reads `meta.json` of the journal in `dir` (the bytes passed to
/// [`super::JournalWriter::open`]).
pub fn read_meta(dir: impl AsRef<Path>) -> Result<Vec<u8>, JournalError> {
    let path = dir.as_ref().join(META_FILE);
    fs::read(&path).map_err(|e| JournalError::io_at("read", &path, e))
}

/// One record borrowed from the reader's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    kind: u32,
    index: u64,
    payload: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Caller-defined payload type (never 0).
    #[inline]
    pub fn kind(&self) -> u32 {
        self.kind
    }

    /// Global index of the record.
    #[inline]
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The full payload area (`record_size - 16` bytes): the appended
    /// payload followed by zero padding. The caller knows its payload length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// The oldest stored record.
    Earliest,
    /// A specific global index.
    Index(u64),
}

/// Reads committed records in index order, following new commits and new
/// segments of a live journal (tailing).
///
/// `next_record` returns `None` when caught up; the caller sleeps (or spins)
/// and calls again. Records are never returned past the committed mark.
/// Each record's kind and index are checked (and its crc, unless disabled
/// with [`JournalReader::set_verify_crc`]); a bad record or a vanished
/// segment makes `next_record` return `None` and sets [`JournalReader::error`].
/// Use [`JournalReader::try_next_record`] to get errors directly.
///
/// SIGBUS: segments are memory-mapped; if another program truncates a
/// segment file while it is mapped, touching the cut pages raises SIGBUS.
/// See the module documentation.
#[derive(Debug)]
pub struct JournalReader {
    // Hot fields first.
    base: *const u8,
    pos: u64,
    /// Slots the fast path may read without checking: min(cached committed
    /// count, prefaulted window end).
    limit: u64,
    /// End (slot) of the prefaulted window in the current segment.
    populated: u64,
    capacity: u64,
    next_index: u64,
    record_size: usize,
    verify_crc: bool,
    seg: Option<RSegment>,
    target: Target,
    idle_polls: u32,
    dir: PathBuf,
    error: Option<JournalError>,
}

// SAFETY: `base` points into the mapping owned by `seg`, which moves with the
// reader; no thread-affine state. Not `Sync` (all access is `&mut self`).
unsafe impl Send for JournalReader {}

impl JournalReader {
    /// Opens the journal in `dir` for reading, positioned at the oldest
    /// stored record. The directory must exist; it may not contain any
    /// segment yet (the reader then waits for the first one).
    pub fn open(dir: impl AsRef<Path>) -> Result<JournalReader, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        let md = fs::metadata(&dir).map_err(|e| JournalError::io_at("open journal", &dir, e))?;
        if !md.is_dir() {
            return Err(JournalError::io_at(
                "open journal",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let mut r = JournalReader {
            base: std::ptr::null(),
            pos: 0,
            limit: 0,
            populated: 0,
            capacity: 0,
            next_index: 0,
            record_size: 0,
            verify_crc: true,
            seg: None,
            target: Target::Earliest,
            idle_polls: 0,
            dir,
            error: None,
        };
        r.resolve_target()?;
        Ok(r)
    }

    /// Enables/disables the per-record crc check (default on). Kind and
    /// index are always checked. `verify()` checks everything regardless.
    pub fn set_verify_crc(&mut self, on: bool) {
        self.verify_crc = on;
    }

    /// Index of the record the next successful `next_record` returns.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Record size, once a segment has been opened.
    pub fn record_size(&self) -> Option<u32> {
        (self.record_size != 0).then_some(self.record_size as u32)
    }

    /// The error that made `next_record` return `None`, if any.
    pub fn error(&self) -> Option<&JournalError> {
        self.error.as_ref()
    }

    /// Takes (clears) the stored error.
    pub fn take_error(&mut self) -> Option<JournalError> {
        self.error.take()
    }

    /// Positions the reader so the next record returned has global index
    /// `index`. Seeking beyond the end is allowed: the reader then waits for
    /// the record to be written. Fails with [`JournalError::IndexRetained`]
    /// if `index` is older than the oldest stored segment.
    pub fn seek(&mut self, index: u64) -> Result<(), JournalError> {
        self.error = None;
        if let Some(seg) = &self.seg {
            if index >= seg.hdr.first_index && index < seg.hdr.end_index() {
                self.pos = index - seg.hdr.first_index;
                self.limit = 0;
                self.populated = 0;
                self.next_index = index;
                return Ok(());
            }
        }
        self.clear_segment();
        self.target = Target::Index(index);
        self.next_index = index;
        self.resolve_target().map(|_| ())
    }

    /// Returns the next committed record, or `None` when caught up or on
    /// error (see [`JournalReader::error`]).
    #[inline]
    pub fn next_record(&mut self) -> Option<RecordRef<'_>> {
        match self.advance() {
            Ok(Some(p)) => Some(self.make_ref(p)),
            Ok(None) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Like [`JournalReader::next_record`] but returns errors directly.
    #[inline]
    pub fn try_next_record(&mut self) -> Result<Option<RecordRef<'_>>, JournalError> {
        match self.advance()? {
            Some(p) => Ok(Some(self.make_ref(p))),
            None => Ok(None),
        }
    }

    #[inline]
    fn make_ref(&self, rec: *const u8) -> RecordRef<'_> {
        let rs = self.record_size;
        // SAFETY: `rec` was returned by `advance` for a committed slot of the
        // current segment, whose mapping lives as long as `self` is not
        // mutated (the returned borrow is tied to `self`); committed records
        // are never modified.
        let bytes = unsafe { std::slice::from_raw_parts(rec, rs) };
        let (kind, index) = record_kind_index(bytes);
        RecordRef {
            kind,
            index,
            payload: &bytes[REC_OFF_PAYLOAD..],
        }
    }

    /// Moves to the next committed record and returns a pointer to it.
    #[inline]
    fn advance(&mut self) -> Result<Option<*const u8>, JournalError> {
        if self.pos >= self.limit && !self.refill()? {
            return Ok(None);
        }
        let rs = self.record_size;
        // SAFETY: pos < limit <= committed count (Acquire-loaded from this
        // segment's header) <= capacity, and the mapping covers all
        // `capacity` slots (file length checked at open). The slot's bytes
        // were written before the writer's Release store of the committed
        // count and are never modified afterwards.
        let rec = unsafe { self.base.add(self.pos as usize * rs) };
        // SAFETY: same slot as above.
        let bytes = unsafe { std::slice::from_raw_parts(rec, rs) };
        let (kind, index) = record_kind_index(bytes);
        let problem = if index != self.next_index {
            Some(RecordProblem::IndexMismatch {
                expected: self.next_index,
                found: index,
            })
        } else if kind == 0 {
            Some(RecordProblem::KindZero)
        } else if self.verify_crc {
            let stored = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let computed = record_crc(bytes);
            (stored != computed).then_some(RecordProblem::CrcMismatch { stored, computed })
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(self.corrupt(problem));
        }
        self.pos += 1;
        self.next_index += 1;
        Ok(Some(rec))
    }

    #[cold]
    fn corrupt(&self, problem: RecordProblem) -> JournalError {
        let (path, rs) = match &self.seg {
            Some(s) => (s.path.clone(), s.hdr.record_size),
            None => (self.dir.clone(), 0),
        };
        JournalError::CorruptRecord {
            path,
            offset: record_offset(self.pos, rs),
            problem,
        }
    }

    fn clear_segment(&mut self) {
        self.seg = None;
        self.base = std::ptr::null();
        self.pos = 0;
        self.limit = 0;
        self.populated = 0;
        self.capacity = 0;
    }

    fn install(&mut self, seg: RSegment, slot: u64) -> Result<(), JournalError> {
        let rs = seg.hdr.record_size as usize;
        if self.record_size != 0 && rs != self.record_size {
            return Err(JournalError::RecordSizeMismatch {
                dir: self.dir.clone(),
                existing: seg.hdr.record_size,
                requested: self.record_size as u32,
            });
        }
        self.record_size = rs;
        self.base = seg.records_base();
        self.capacity = seg.hdr.capacity;
        self.pos = slot;
        self.limit = 0;
        self.populated = 0;
        self.next_index = seg.hdr.first_index + slot;
        self.seg = Some(seg);
        self.idle_polls = 0;
        Ok(())
    }

    /// Finds and opens the segment for `self.target`. Ok(false) if it does
    /// not exist yet.
    fn resolve_target(&mut self) -> Result<bool, JournalError> {
        let list =
            list_segments(&self.dir).map_err(|e| JournalError::io_at("list", &self.dir, e))?;
        let Some((oldest, _)) = list.first() else {
            return Ok(false);
        };
        let (want, slot_of) = match self.target {
            Target::Earliest => (*oldest, None),
            Target::Index(i) => {
                if i < *oldest {
                    return Err(JournalError::IndexRetained {
                        dir: self.dir.clone(),
                        index: i,
                        first_available: *oldest,
                    });
                }
                (i, Some(i))
            }
        };
        // Last segment starting at or before `want`.
        let Some((first, path)) = list.iter().rev().find(|(f, _)| *f <= want) else {
            return Ok(false);
        };
        let Some(seg) = RSegment::open(path)? else {
            return Ok(false); // deleted between listing and opening: retry later
        };
        if want >= seg.hdr.end_index() {
            // Beyond the newest segment: wait until it exists.
            return Ok(false);
        }
        let slot = slot_of.map_or(0, |i| i - first);
        self.install(seg, slot)?;
        Ok(true)
    }

    /// Slow path when the cached committed count is exhausted: reload it,
    /// move to the next segment, or report caught up.
    #[cold]
    #[inline(never)]
    fn refill(&mut self) -> Result<bool, JournalError> {
        loop {
            let Some(seg) = &self.seg else {
                if self.resolve_target()? {
                    continue;
                }
                return Ok(false);
            };
            let committed = seg.committed();
            if committed > self.capacity {
                return Err(JournalError::BadHeader {
                    path: seg.path.clone(),
                    problem: super::format::HeaderProblem::BadCommitted(committed),
                });
            }
            if self.pos < committed {
                if self.pos >= self.populated {
                    let ahead = (READ_AHEAD_BYTES / self.record_size as u64).max(1);
                    let end = self.capacity.min(self.pos + ahead);
                    seg.populate_slots(self.pos, end);
                    self.populated = end;
                }
                self.limit = committed.min(self.populated);
                self.idle_polls = 0;
                return Ok(true);
            }
            if self.pos >= self.capacity {
                // Segment exhausted: move to the next one if it exists.
                let next_first = seg.hdr.end_index();
                let path = self.dir.join(segment_file_name(next_first));
                match RSegment::open(&path)? {
                    Some(next) => {
                        if next.hdr.first_index != next_first {
                            return Err(JournalError::Gap {
                                dir: self.dir.clone(),
                                expected: next_first,
                                found: path,
                            });
                        }
                        self.install(next, 0)?;
                        continue;
                    }
                    None => {
                        self.idle_polls = self.idle_polls.wrapping_add(1);
                        if self.idle_polls % GAP_CHECK_EVERY == 1 {
                            self.check_gap(next_first)?;
                        }
                        return Ok(false);
                    }
                }
            }
            // Caught up inside a segment the writer has not finished.
            self.idle_polls = self.idle_polls.wrapping_add(1);
            if self.idle_polls % DELETE_CHECK_EVERY == 0 {
                let deleted = seg
                    .is_deleted()
                    .map_err(|e| JournalError::io_at("stat", &seg.path, e))?;
                if deleted {
                    return Err(JournalError::SegmentDeleted {
                        path: seg.path.clone(),
                    });
                }
            }
            return Ok(false);
        }
    }

    /// Errors if the segment starting at `expected` is missing although a
    /// later segment exists (records were deleted).
    fn check_gap(&self, expected: u64) -> Result<(), JournalError> {
        let list =
            list_segments(&self.dir).map_err(|e| JournalError::io_at("list", &self.dir, e))?;
        if let Some((_, path)) = list.into_iter().find(|(f, _)| *f > expected) {
            return Err(JournalError::Gap {
                dir: self.dir.clone(),
                expected,
                found: path,
            });
        }
        Ok(())
    }
}
