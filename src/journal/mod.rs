//! Append-only journal of fixed-size records in memory-mapped segment files.
//!
//! A journal is a directory:
//!
//! ```text
//! journal/
//!   00000000000000000000.seg   segment: 4096-byte header page + records
//!   00000000000000100000.seg   named by the global index of its first record
//!   meta.json                  opaque caller bytes (e.g. the instrument table)
//!   writer.lock                flock()ed by the single writer
//! ```
//!
//! Records are `record_size` bytes (a multiple of 8 in 32..=4096; 64 for the
//! 48-byte ticks, 128 for decision events): crc32c, kind, global index,
//! zero-padded payload. The exact layout is in [the `format` module](mod@self::format) and
//! `docs/JOURNAL_FORMAT.md`.
//!
//! # Writing
//!
//! [`JournalWriter::append`] copies the record into the mapping and
//! computes its crc: no allocation, lock or syscall in steady state. On
//! x86_64 with SSE4.2 and `record_size % 16 == 0` the crc uses the `crc32`
//! instruction and the record is written with non-temporal stores (no
//! read-for-ownership, no eviction of the engine's cache); elsewhere plain
//! copies and the `crc32c` crate are used (same bytes on disk).
//! [`JournalWriter::commit`] publishes the records to readers with an
//! `sfence` and one Release store of the segment's `committed_count`;
//! `append` also commits by itself every [`AUTO_COMMIT_EVERY`] records and
//! when it rolls over to a new segment. A background helper thread
//! pre-creates (and fully allocates) the next segment, prefaults pages ahead
//! of the writer with `MADV_POPULATE_WRITE`, and msyncs/unmaps segments the
//! writer has left, so roll-over is a pointer swap. [`Durability`] chooses
//! when data is forced to disk.
//!
//! ```ignore
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use crate::journal::{JournalConfig, JournalReader, JournalWriter}; // path in your crate
//! let cfg = JournalConfig::new(64);
//! let (mut w, report) = JournalWriter::open("/data/ticks", &cfg, b"{}")?;
//! assert!(report.is_clean());
//! w.append(1, &[0u8; 48])?;
//! w.commit();
//!
//! let mut r = JournalReader::open("/data/ticks")?;
//! while let Some(rec) = r.next_record() {
//!     let _ = (rec.kind(), rec.index(), rec.payload());
//! }
//! # Ok(()) }
//! ```
//!
//! # Crash safety
//!
//! * Process crash (panic, SIGKILL): everything appended is in the page
//!   cache. [`JournalWriter::open`] recovers: every committed record is kept,
//!   valid records beyond the committed mark are kept too, a torn record is
//!   cut and zeroed, and appending continues with the next index.
//! * Power loss / kernel crash: only records below a segment's
//!   `durable_count` (advanced after each successful msync) are guaranteed.
//!   Recovery re-validates everything above it and cuts at the first record
//!   that did not reach the disk ([`RecoveryReport::committed_lost`]).
//!
//! # Resources
//!
//! A writer holds `writer.lock` (`flock`), runs one `journal-helper` thread
//! (plus `journal-flusher` with [`Durability::IntervalMs`]), and keeps up
//! to two segments allocated ahead of the data: the active one and the
//! pre-created next one (removed on drop if unused). Segment creation
//! fsyncs the new file and the directory.
//!
//! # Disk full and SIGBUS
//!
//! Writing to a memory-mapped file has no error return: if the filesystem
//! cannot back a dirty page (disk full on a sparse file) or the file was
//! truncated underneath the mapping, the process gets **SIGBUS** and dies.
//! This module avoids the first case by allocating every segment's blocks
//! with `posix_fallocate` when the segment is created, so a full disk shows
//! up as [`JournalError::DiskFull`] / [`AppendError::DiskFull`] at creation
//! time (in the background helper, or in the `append` that needs the next
//! segment), never as SIGBUS. The second case cannot be prevented, as with
//! any memory map (ripgrep documents the same caveat for its mmap search):
//! if another process truncates a segment file while a writer or reader
//! has it mapped, accessing the cut pages raises SIGBUS. Never truncate or
//! rewrite segment files in place; deleting whole old segments (retention)
//! is safe because a mapping keeps the unlinked file alive. On filesystems
//! without fallocate support the protection degrades to a sparse file.
//!
//! # Reading
//!
//! [`JournalReader`] maps segments read-only and returns borrowed
//! [`RecordRef`]s up to the committed mark, following a live writer
//! (possibly in another process) across commits and new segments. It
//! re-reads `committed_count` only when it has consumed the cached value
//! and prefaults the next 4 MiB of records with one `MADV_POPULATE_READ`
//! per window, so sequential replay costs no syscall or page fault per
//! record. Kind, index and (by default) crc of every record are checked. [`verify`] checks a
//! whole journal, [`inspect`] summarises its segments and [`iter_records`]
//! yields owned records.
//!
//! Linux is the target platform (fallocate, MADV_POPULATE_WRITE,
//! SEEK_DATA); other Unix systems build with weaker fallbacks.

mod codec;
mod error;
pub mod events;
pub mod format;
mod reader;
mod recovery;
mod segment;
mod sys;
pub mod ticks;
mod tools;
mod writer;

#[cfg(test)]
mod tests;

pub use self::error::{AppendError, JournalError, VerifyError};
pub use self::format::{HeaderProblem, RecordProblem};
pub use self::reader::{JournalReader, RecordRef, read_meta};
pub use self::recovery::RecoveryReport;
pub use self::tools::{
    InspectReport, Record, RecordIter, SegmentInfo, VerifyReport, inspect, iter_records, verify,
};
pub use self::writer::{AUTO_COMMIT_EVERY, Durability, JournalConfig, JournalWriter, WriterStats};
