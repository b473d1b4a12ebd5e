//! Error types of the journal.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{HeaderProblem, RecordProblem};

/// Errors of opening, recovering, flushing and reading a journal.
///
/// Every variant says what went wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O error without more context.
    #[error("journal I/O error: {0}")]
    Io(#[from] io::Error),

    /// An I/O error while doing `action` on `path`.
    #[error("journal: could not {action} {path}: {source}")]
    IoAt {
        /// What the journal was doing ("open", "create", "read", "msync", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The journal directory or one of its files is not writable.
    #[error(
        "journal: no permission to write {path} ({source}); fix the owner/permissions of the \
         journal directory, remount the filesystem read-write, or use JournalReader / verify() \
         for read-only access"
    )]
    PermissionDenied {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The underlying error (EACCES, EPERM or EROFS).
        #[source]
        source: io::Error,
    },

    /// Real disk blocks for a new segment could not be allocated.
    #[error(
        "journal: cannot allocate {bytes} bytes for segment {path} ({source}); the disk, the \
         quota or the process file-size limit (RLIMIT_FSIZE) is exhausted: free disk space, \
         move the journal to a larger volume, or lower segment_bytes"
    )]
    DiskFull {
        /// The segment file that could not be allocated.
        path: PathBuf,
        /// Size of the segment file that was requested.
        bytes: u64,
        /// The underlying error (ENOSPC, EDQUOT or EFBIG).
        #[source]
        source: io::Error,
    },

    /// Another writer holds the journal's lock file.
    #[error(
        "journal {dir} is already open for writing (lock file {} is held by another \
         JournalWriter, possibly in another process); only one writer per journal is allowed: \
         stop the other writer or use JournalReader to read",
        dir.join(super::format::LOCK_FILE).display()
    )]
    Locked {
        /// The journal directory.
        dir: PathBuf,
    },

    /// The configuration passed to [`super::JournalWriter::open`] is invalid.
    #[error("journal: invalid configuration: {0}")]
    InvalidConfig(String),

    /// The existing journal uses a different record size than requested.
    #[error(
        "journal {dir} stores {existing}-byte records but the configuration asks for \
         {requested}-byte records; use the journal's record size or a new directory"
    )]
    RecordSizeMismatch {
        /// The journal directory.
        dir: PathBuf,
        /// Record size found in the segment headers.
        existing: u32,
        /// Record size requested.
        requested: u32,
    },

    /// A segment header is invalid.
    #[error(
        "journal segment {path} has an invalid header: {problem}; the file is damaged or not a \
         journal segment: restore it from a backup/replica or move it out of the directory"
    )]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        problem: HeaderProblem,
    },

    /// A committed record failed validation while reading.
    #[error(
        "journal segment {path}: committed record at byte offset {offset} is corrupt: {problem}; \
         run verify() on the journal and restore the segment from a backup/replica"
    )]
    CorruptRecord {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record in the segment file.
        offset: u64,
        /// What is wrong.
        problem: RecordProblem,
    },

    /// A segment file is shorter than its header says (would cause SIGBUS).
    #[error(
        "journal segment {path} is truncated: {actual} bytes but the header needs {expected}; \
         it was cut by another program: restore it from a backup/replica"
    )]
    Truncated {
        /// The segment file.
        path: PathBuf,
        /// Length required by the header.
        expected: u64,
        /// Actual file length.
        actual: u64,
    },

    /// Records are missing between two segments.
    #[error(
        "journal {dir}: records starting at index {expected} are missing (next segment found: \
         {found}); a segment was deleted or the directory was mixed with another journal"
    )]
    Gap {
        /// The journal directory.
        dir: PathBuf,
        /// First missing global index.
        expected: u64,
        /// The segment file found after the gap.
        found: PathBuf,
    },

    /// A segment the reader was positioned in was deleted.
    #[error(
        "journal segment {path} was deleted while being read (retention or manual removal); \
         seek() to a retained index or reopen the reader"
    )]
    SegmentDeleted {
        /// The deleted segment file.
        path: PathBuf,
    },

    /// The requested index was removed from the journal (older segments deleted).
    #[error(
        "journal {dir}: index {index} is no longer stored (oldest retained index is \
         {first_available}); seek to {first_available} or later"
    )]
    IndexRetained {
        /// The journal directory.
        dir: PathBuf,
        /// Requested index.
        index: u64,
        /// Oldest index still stored.
        first_available: u64,
    },
}

impl JournalError {
    /// Wraps an `io::Error` that happened while doing `action` on `path`,
    /// classifying permission and disk-space problems.
    pub(super) fn io_at(action: &'static str, path: &Path, source: io::Error) -> JournalError {
        if is_permission_error(&source) {
            JournalError::PermissionDenied {
                path: path.to_path_buf(),
                source,
            }
        } else {
            JournalError::IoAt {
                action,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// True for EACCES / EPERM / EROFS.
pub(super) fn is_permission_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EROFS)
}

/// True for ENOSPC / EDQUOT / EFBIG (no room for the file).
pub(super) fn is_disk_full_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

/// Error of the hot-path [`super::JournalWriter::append`]. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// `kind` was 0, which is reserved for empty slots.
    /// Nothing was written. Fix: use a kind >= 1.
    #[error("journal append: kind 0 is reserved; use a kind >= 1")]
    KindZero,

    /// The payload does not fit into a record (record_size - 16 bytes).
    /// Nothing was written. Fix: use a journal with a larger record_size.
    #[error("journal append: payload of {len} bytes exceeds the {max}-byte record payload")]
    PayloadTooLarge {
        /// Payload length passed.
        len: usize,
        /// Maximum payload length (record_size - 16).
        max: usize,
    },

    /// The current segment is full and the next one could not be allocated
    /// because the disk (or quota, or RLIMIT_FSIZE) is full. Nothing was
    /// written and the writer is still usable: free space and append again.
    /// [`super::JournalWriter::take_last_error`] gives the path and size.
    #[error(
        "journal append: disk full, the next segment could not be allocated; free space and \
         retry (nothing was written)"
    )]
    DiskFull,

    /// The current segment is full and moving to the next one failed with
    /// another I/O error: creating it (permissions, directory removed, ...)
    /// or, with `Durability::EveryN`, msyncing the full one. Nothing was
    /// written; fix the cause and append again.
    /// [`super::JournalWriter::take_last_error`] gives the detailed
    /// [`JournalError`] (path and OS error).
    #[error("journal append: could not move to the next segment: {0:?} (nothing was written)")]
    Io(io::ErrorKind),

    /// The record WAS appended (its index is `next_index() - 1`) but the
    /// `Durability::EveryN` msync failed, so it may not be on disk yet.
    /// Do not append it again; call `flush()` to retry (it returns the
    /// detailed error), or see [`super::JournalWriter::take_last_error`].
    #[error("journal append: record appended but msync failed: {0:?}; call flush() to retry")]
    FlushFailed(io::ErrorKind),
}

/// Error of [`super::verify`]: names the segment file and, for record
/// problems, the exact byte offset of the first bad record.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The journal directory or a segment could not be read.
    #[error("verify: could not read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A segment header is invalid.
    #[error("verify: segment {segment}: invalid header: {problem}")]
    BadHeader {
        /// The segment file.
        segment: PathBuf,
        /// What is wrong.
        problem: HeaderProblem,
    },
    /// A segment's name does not match its header, or its record size
    /// differs from the other segments.
    #[error("verify: segment {segment}: {reason}")]
    Inconsistent {
        /// The segment file.
        segment: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// A segment file is shorter than its header requires.
    #[error("verify: segment {segment} is truncated: {actual} bytes, header needs {expected}")]
    Truncated {
        /// The segment file.
        segment: PathBuf,
        /// Length required by the header.
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// Records are missing between two segments (or a non-last segment is
    /// not full).
    #[error("verify: segment {segment}: expected first index {expected}, found {found}")]
    Discontinuity {
        /// The segment where continuity breaks.
        segment: PathBuf,
        /// Expected first index (end of the previous segment's records).
        expected: u64,
        /// First index of this segment.
        found: u64,
    },
    /// A committed record is bad.
    #[error(
        "verify: segment {segment}: bad record at byte offset {offset} (index {index}): {problem}"
    )]
    BadRecord {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the first bad record in the segment file.
        offset: u64,
        /// Global index the record should have.
        index: u64,
        /// What is wrong.
        problem: RecordProblem,
    },
}

impl VerifyError {
    /// The segment file the error is about, if any.
    pub fn segment(&self) -> Option<&Path> {
        match self {
            VerifyError::Io { .. } => None,
            VerifyError::BadHeader { segment, .. }
            | VerifyError::Inconsistent { segment, .. }
            | VerifyError::Truncated { segment, .. }
            | VerifyError::Discontinuity { segment, .. }
            | VerifyError::BadRecord { segment, .. } => Some(segment),
        }
    }

    /// Byte offset (within [`VerifyError::segment`]) of the first bad byte
    /// range: the bad record's offset, or 0 for header problems.
    pub fn offset(&self) -> Option<u64> {
        match self {
            VerifyError::BadRecord { offset, .. } => Some(*offset),
            VerifyError::BadHeader { .. } => Some(0),
            _ => None,
        }
    }
}
