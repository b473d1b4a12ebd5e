//! Offline tools: `verify`, `inspect` and an owning record iterator.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::{JournalError, VerifyError};
use super::format::{HeaderProblem, META_FILE, check_record, record_offset};
use super::reader::JournalReader;
use super::segment::{RSegment, ReadHeaderError, list_segments, read_header};

/// Result of a successful [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of segment files.
    pub segments: usize,
    /// Trailing segments that are preallocated but unused (left by a writer
    /// that crashed; the next `JournalWriter::open` removes them).
    pub unused_segments: usize,
    /// Record size, if there is a segment.
    pub record_size: Option<u32>,
    /// Global index of the oldest stored record.
    pub first_index: u64,
    /// One past the last committed record.
    pub next_index: u64,
    /// Number of committed records checked (all of them).
    pub records: u64,
    /// Valid records beyond the committed mark of the last segment
    /// (appended but not committed; recovery keeps them).
    pub uncommitted_valid: u64,
}

/// Checks the whole journal in `dir`: every header (magic, version, crc,
/// record size, name/first-index agreement, file length), continuity of
/// indexes across segments, and every committed record (crc, kind != 0,
/// index == position). Stops at the first problem; the error names the
/// segment file and, for records, the byte offset of the first bad record.
///
/// Safe to run on a live journal (only committed records are checked).
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, VerifyError> {
    let dir = dir.as_ref();
    let list = list_segments(dir).map_err(|source| VerifyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut report = VerifyReport {
        segments: list.len(),
        ..VerifyReport::default()
    };
    // (end index of the previous segment, its committed end, record size)
    let mut prev: Option<(u64, u64, u32)> = None;
    for (name_first, path) in list {
        let io_err = |source| VerifyError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io_err)?;
        let info = match read_header(&file) {
            Ok(i) => i,
            Err(ReadHeaderError::Io(e)) => return Err(io_err(e)),
            Err(ReadHeaderError::Problem(problem)) => {
                return Err(VerifyError::BadHeader {
                    segment: path,
                    problem,
                });
            }
        };
        drop(file);
        let hdr = info.hdr;
        if hdr.first_index != name_first {
            return Err(VerifyError::Inconsistent {
                segment: path,
                reason: format!(
                    "file name says first index {name_first}, header says {}",
                    hdr.first_index
                ),
            });
        }
        if let Some((_, _, rs)) = prev {
            if rs != hdr.record_size {
                return Err(VerifyError::Inconsistent {
                    segment: path,
                    reason: format!("record size {} differs from {rs}", hdr.record_size),
                });
            }
        }
        if info.file_len < hdr.file_len() {
            return Err(VerifyError::Truncated {
                segment: path,
                expected: hdr.file_len(),
                actual: info.file_len,
            });
        }
        let seg = match RSegment::open(&path) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(io_err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "segment deleted during verify",
                )));
            }
            Err(e) => {
                return Err(io_err(std::io::Error::other(e.to_string())));
            }
        };
        let committed = seg.committed();
        if committed > hdr.capacity {
            return Err(VerifyError::BadHeader {
                segment: path,
                problem: HeaderProblem::BadCommitted(committed),
            });
        }
        match prev {
            None => {
                report.record_size = Some(hdr.record_size);
                report.first_index = hdr.first_index;
            }
            Some((end, committed_end, _)) => {
                if hdr.first_index != end {
                    return Err(VerifyError::Discontinuity {
                        segment: path,
                        expected: end,
                        found: hdr.first_index,
                    });
                }
                if committed_end != end {
                    // The previous segment is not full: this one (and every
                    // later one) may only be an unused preallocation.
                    if committed != 0 {
                        return Err(VerifyError::Discontinuity {
                            segment: path,
                            expected: committed_end,
                            found: hdr.first_index,
                        });
                    }
                    report.unused_segments += 1;
                    prev = Some((hdr.end_index(), committed_end, hdr.record_size));
                    continue;
                }
            }
        }
        for slot in 0..committed {
            // SAFETY: slot < committed <= capacity: committed records are
            // never modified.
            let rec = unsafe { seg.slot(slot) };
            let index = hdr.first_index + slot;
            if let Err(problem) = check_record(rec, index) {
                return Err(VerifyError::BadRecord {
                    segment: path,
                    offset: record_offset(slot, hdr.record_size),
                    index,
                    problem,
                });
            }
        }
        report.records += committed;
        report.next_index = hdr.first_index + committed;
        if committed < hdr.capacity {
            // Informational: valid but uncommitted records after the mark.
            let mut slot = committed;
            let mut buf = vec![0u8; hdr.record_size as usize];
            while slot < hdr.capacity {
                // A live writer may be writing these slots: copy, then check.
                seg.copy_slot(slot, &mut buf);
                if check_record(&buf, hdr.first_index + slot).is_err() {
                    break;
                }
                slot += 1;
            }
            report.uncommitted_valid = slot - committed;
        }
        prev = Some((
            hdr.end_index(),
            hdr.first_index + committed,
            hdr.record_size,
        ));
    }
    Ok(report)
}

/// Description of one segment file (from its header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Path of the segment file.
    pub path: PathBuf,
    /// Segment sequence number.
    pub segment_no: u64,
    /// Global index of the first slot.
    pub first_index: u64,
    /// Number of slots.
    pub capacity: u64,
    /// Committed records.
    pub committed: u64,
    /// Records known to be flushed to disk.
    pub durable: u64,
    /// Record size in bytes.
    pub record_size: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// File length in bytes.
    pub file_len: u64,
}

/// Summary of a journal directory (headers only; fast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectReport {
    /// The journal directory.
    pub dir: PathBuf,
    /// Record size, if there is a segment.
    pub record_size: Option<u32>,
    /// All segments, oldest first.
    pub segments: Vec<SegmentInfo>,
    /// Total committed records over all segments.
    pub total_records: u64,
    /// Global index of the oldest stored record (if any segment).
    pub first_index: Option<u64>,
    /// One past the last committed record (if any segment).
    pub next_index: Option<u64>,
    /// Length of `meta.json`, if present.
    pub meta_len: Option<u64>,
}

/// Reads every segment header of the journal in `dir` (no record is read).
/// Time ranges can be computed from payloads with [`iter_records`] or a
/// [`JournalReader`].
pub fn inspect(dir: impl AsRef<Path>) -> Result<InspectReport, JournalError> {
    let dir = dir.as_ref();
    let list = list_segments(dir).map_err(|e| JournalError::io_at("list", dir, e))?;
    let mut segments = Vec::with_capacity(list.len());
    for (_, path) in list {
        let Some(seg) = RSegment::open(&path)? else {
            continue; // deleted meanwhile
        };
        let file_len = std::fs::metadata(&path)
            .map_err(|e| JournalError::io_at("stat", &path, e))?
            .len();
        segments.push(SegmentInfo {
            segment_no: seg.hdr.segment_no,
            first_index: seg.hdr.first_index,
            capacity: seg.hdr.capacity,
            committed: seg.committed(),
            durable: seg.durable(),
            record_size: seg.hdr.record_size,
            created_unix_ns: seg.hdr.created_unix_ns,
            file_len,
            path,
        });
    }
    let total_records = segments.iter().map(|s| s.committed).sum();
    let first_index = segments.first().map(|s| s.first_index);
    let next_index = segments
        .iter()
        .rev()
        .find(|s| s.committed > 0)
        .or(segments.first())
        .map(|s| s.first_index + s.committed);
    let meta_len = std::fs::metadata(dir.join(META_FILE)).ok().map(|m| m.len());
    Ok(InspectReport {
        dir: dir.to_path_buf(),
        record_size: segments.first().map(|s| s.record_size),
        segments,
        total_records,
        first_index,
        next_index,
        meta_len,
    })
}

/// An owned record (see [`iter_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Caller-defined payload type.
    pub kind: u32,
    /// Global index.
    pub index: u64,
    /// Full payload area (`record_size - 16` bytes, zero padded).
    pub payload: Vec<u8>,
}

/// Iterator over all committed records of a journal, oldest first; ends
/// when caught up (it does not tail). Allocates one `Vec` per record: use
/// [`JournalReader`] for zero-copy reading.
#[derive(Debug)]
pub struct RecordIter {
    reader: JournalReader,
    done: bool,
}

/// Opens an iterator over every committed record in `dir` (crc-checked).
pub fn iter_records(dir: impl AsRef<Path>) -> Result<RecordIter, JournalError> {
    Ok(RecordIter {
        reader: JournalReader::open(dir)?,
        done: false,
    })
}

impl Iterator for RecordIter {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.try_next_record() {
            Ok(Some(r)) => Some(Ok(Record {
                kind: r.kind(),
                index: r.index(),
                payload: r.payload().to_vec(),
            })),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
