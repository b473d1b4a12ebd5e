//! On-disk format: constants, byte offsets and header/record encoding.
//!
//! Everything is little-endian. See `docs/JOURNAL_FORMAT.md` for the prose
//! description; the constants here are the normative offsets.
//!
//! Segment file layout:
//!
//! ```text
//! offset  size  field
//! 0       8     magic              b"TWJRNL\0\x01"
//! 8       4     version            u32 = 1
//! 12      4     record_size        u32, multiple of 8 in 32..=4096
//! 16      8     created_unix_ns    u64, wall clock at segment creation
//! 24      8     segment_no         u64, 0,1,2,... in creation order
//! 32      8     first_index        u64, global index of slot 0
//! 40      8     capacity_records   u64, number of record slots (> 0)
//! 48      4     header_crc         u32, crc32c of bytes 0..48
//! 52      12    reserved           zero
//! 64      8     committed_count    u64 (atomic): slots [0, committed) are published
//! 72      8     durable_count      u64 (atomic): slots [0, durable) were flushed to disk
//! 80      4016  reserved           zero
//! 4096    ...   capacity_records * record_size bytes of records
//! ```
//!
//! Record layout (record_size bytes, starting at `4096 + slot * record_size`):
//!
//! ```text
//! 0   4   crc32c (Castagnoli) over bytes 4..record_size
//! 4   4   kind  u32 (0 = empty/unused, never valid)
//! 8   8   index u64 (global position in the journal = first_index + slot)
//! 16  ..  payload, zero padded to record_size - 16 bytes
//! ```

use std::fmt;

/// Magic bytes at offset 0 of every segment file.
pub const MAGIC: [u8; 8] = *b"TWJRNL\0\x01";
/// Format version stored at [`OFF_VERSION`].
pub const FORMAT_VERSION: u32 = 1;
/// Size of the header page that precedes the records of a segment.
pub const HEADER_SIZE: usize = 4096;

/// Offset of the 8-byte magic.
pub const OFF_MAGIC: usize = 0;
/// Offset of the `u32` format version.
pub const OFF_VERSION: usize = 8;
/// Offset of the `u32` record size.
pub const OFF_RECORD_SIZE: usize = 12;
/// Offset of the `u64` creation time (nanoseconds since the Unix epoch).
pub const OFF_CREATED_UNIX_NS: usize = 16;
/// Offset of the `u64` segment sequence number.
pub const OFF_SEGMENT_NO: usize = 24;
/// Offset of the `u64` global index of the segment's first record slot.
pub const OFF_FIRST_INDEX: usize = 32;
/// Offset of the `u64` number of record slots in the segment.
pub const OFF_CAPACITY: usize = 40;
/// Offset of the `u32` crc32c over header bytes `0..HEADER_CRC_COVERS`.
pub const OFF_HEADER_CRC: usize = 48;
/// Number of leading header bytes covered by the header crc (the static fields).
pub const HEADER_CRC_COVERS: usize = 48;
/// Offset of the atomic `u64` committed record count (writer: Release store,
/// readers: Acquire load). 64-byte aligned so it sits on its own cache line.
pub const OFF_COMMITTED: usize = 64;
/// Offset of the atomic `u64` durable record count: slots below it are known
/// to have been flushed (msync) to stable storage. Recovery trusts only these.
pub const OFF_DURABLE: usize = 72;

/// Offset of the record crc inside a record.
pub const REC_OFF_CRC: usize = 0;
/// Offset of the record kind inside a record.
pub const REC_OFF_KIND: usize = 4;
/// Offset of the record index inside a record.
pub const REC_OFF_INDEX: usize = 8;
/// Offset of the payload inside a record (also the per-record overhead).
pub const REC_OFF_PAYLOAD: usize = 16;

/// Smallest allowed record size in bytes.
pub const MIN_RECORD_SIZE: u32 = 32;
/// Largest allowed record size in bytes.
pub const MAX_RECORD_SIZE: u32 = 4096;

/// File extension of segment files (`NNNNNNNNNNNNNNNNNNNN.seg`).
pub const SEGMENT_EXT: &str = "seg";
/// Suffix of a segment file that is still being created (never read).
pub const SEGMENT_TMP_SUFFIX: &str = ".seg.tmp";
/// Suffix given by recovery to a segment that lies beyond a cut point but
/// still contained data (kept for forensics, ignored by readers).
pub const ORPHAN_SUFFIX: &str = ".seg.orphaned";
/// Name of the sidecar metadata file.
pub const META_FILE: &str = "meta.json";
/// Name of the writer lock file (held with `flock(LOCK_EX)` by the writer).
pub const LOCK_FILE: &str = "writer.lock";

/// Returns true if `record_size` is a valid record size (multiple of 8 in
/// [`MIN_RECORD_SIZE`]`..=`[`MAX_RECORD_SIZE`]).
pub fn valid_record_size(record_size: u32) -> bool {
    (MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&record_size) && record_size % 8 == 0
}

/// File name of the segment whose first record has global index `first_index`.
pub fn segment_file_name(first_index: u64) -> String {
    format!("{first_index:020}.{SEGMENT_EXT}")
}

/// Parses a segment file name (`20 digits` + `.seg`) into its first index.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Total file length of a segment with `capacity` slots of `record_size` bytes.
pub fn segment_file_len(capacity: u64, record_size: u32) -> u64 {
    HEADER_SIZE as u64 + capacity * u64::from(record_size)
}

/// Byte offset (in the segment file) of record slot `slot`.
pub fn record_offset(slot: u64, record_size: u32) -> u64 {
    HEADER_SIZE as u64 + slot * u64::from(record_size)
}

/// The static (crc-protected) fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Record size in bytes.
    pub record_size: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Segment sequence number (0 for the first segment ever created).
    pub segment_no: u64,
    /// Global index of slot 0.
    pub first_index: u64,
    /// Number of record slots.
    pub capacity: u64,
}

/// Why a header (or the dynamic counters next to it) is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The file is shorter than the 4096-byte header page.
    TooShort,
    /// Bytes 0..8 are not [`MAGIC`].
    BadMagic,
    /// Unsupported format version.
    BadVersion(u32),
    /// Header crc does not match the static fields.
    BadCrc {
        /// Crc stored at [`OFF_HEADER_CRC`].
        stored: u32,
        /// Crc computed over bytes 0..48.
        computed: u32,
    },
    /// Record size is not a multiple of 8 in 32..=4096.
    BadRecordSize(u32),
    /// Capacity is zero or `first_index + capacity` overflows.
    BadCapacity(u64),
    /// committed_count is larger than the capacity.
    BadCommitted(u64),
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::TooShort => write!(f, "file is shorter than the 4096-byte header"),
            HeaderProblem::BadMagic => write!(f, "bad magic (not a tickwire journal segment)"),
            HeaderProblem::BadVersion(v) => write!(f, "unsupported format version {v}"),
            HeaderProblem::BadCrc { stored, computed } => write!(
                f,
                "header crc mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            HeaderProblem::BadRecordSize(s) => write!(f, "invalid record size {s}"),
            HeaderProblem::BadCapacity(c) => write!(f, "invalid capacity {c}"),
            HeaderProblem::BadCommitted(c) => {
                write!(f, "committed_count {c} is larger than the capacity")
            }
        }
    }
}

fn le_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[off..off + 4]);
    u32::from_le_bytes(b)
}

fn le_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}

impl SegmentHeader {
    /// Encodes the static fields and the header crc into the first 64 bytes
    /// of a header page (the rest of the page, including the counters, is zero).
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
        b[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[OFF_RECORD_SIZE..OFF_RECORD_SIZE + 4].copy_from_slice(&self.record_size.to_le_bytes());
        b[OFF_CREATED_UNIX_NS..OFF_CREATED_UNIX_NS + 8]
            .copy_from_slice(&self.created_unix_ns.to_le_bytes());
        b[OFF_SEGMENT_NO..OFF_SEGMENT_NO + 8].copy_from_slice(&self.segment_no.to_le_bytes());
        b[OFF_FIRST_INDEX..OFF_FIRST_INDEX + 8].copy_from_slice(&self.first_index.to_le_bytes());
        b[OFF_CAPACITY..OFF_CAPACITY + 8].copy_from_slice(&self.capacity.to_le_bytes());
        let crc = crc32c::crc32c(&b[..HEADER_CRC_COVERS]);
        b[OFF_HEADER_CRC..OFF_HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates the static fields from the start of a header page.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if buf.len() < OFF_DURABLE + 8 {
            return Err(HeaderProblem::TooShort);
        }
        if buf[OFF_MAGIC..OFF_MAGIC + 8] != MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        let stored = le_u32(buf, OFF_HEADER_CRC);
        let computed = crc32c::crc32c(&buf[..HEADER_CRC_COVERS]);
        if stored != computed {
            return Err(HeaderProblem::BadCrc { stored, computed });
        }
        let version = le_u32(buf, OFF_VERSION);
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::BadVersion(version));
        }
        let record_size = le_u32(buf, OFF_RECORD_SIZE);
        if !valid_record_size(record_size) {
            return Err(HeaderProblem::BadRecordSize(record_size));
        }
        let first_index = le_u64(buf, OFF_FIRST_INDEX);
        let capacity = le_u64(buf, OFF_CAPACITY);
        if capacity == 0
            || first_index.checked_add(capacity).is_none()
            || capacity.checked_mul(u64::from(record_size)).is_none()
        {
            return Err(HeaderProblem::BadCapacity(capacity));
        }
        Ok(SegmentHeader {
            record_size,
            created_unix_ns: le_u64(buf, OFF_CREATED_UNIX_NS),
            segment_no: le_u64(buf, OFF_SEGMENT_NO),
            first_index,
            capacity,
        })
    }

    /// Global index one past the last slot of this segment.
    pub fn end_index(&self) -> u64 {
        self.first_index + self.capacity
    }

    /// Expected file length of this segment.
    pub fn file_len(&self) -> u64 {
        segment_file_len(self.capacity, self.record_size)
    }
}

/// Reads the committed and durable counters from a header page snapshot
/// (non-atomic; only for files not being written, e.g. during recovery).
pub fn header_counters(buf: &[u8]) -> (u64, u64) {
    (le_u64(buf, OFF_COMMITTED), le_u64(buf, OFF_DURABLE))
}

/// What is wrong with a record slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordProblem {
    /// The slot is all zero bytes (never written, or zeroed by recovery).
    Empty,
    /// The stored crc does not match the record contents.
    CrcMismatch {
        /// Crc stored in bytes 0..4.
        stored: u32,
        /// Crc computed over bytes 4..record_size.
        computed: u32,
    },
    /// The kind field is 0 (reserved) although the slot is not empty.
    KindZero,
    /// The index field is not the slot's global position.
    IndexMismatch {
        /// Index the slot must carry.
        expected: u64,
        /// Index found in the slot.
        found: u64,
    },
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordProblem::Empty => write!(f, "record slot is empty (all zero)"),
            RecordProblem::CrcMismatch { stored, computed } => write!(
                f,
                "record crc mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            RecordProblem::KindZero => write!(f, "record kind is 0 (reserved)"),
            RecordProblem::IndexMismatch { expected, found } => {
                write!(f, "record index is {found}, expected {expected}")
            }
        }
    }
}

/// Returns true if every byte of `buf` is zero.
pub fn is_all_zero(buf: &[u8]) -> bool {
    let (head, body, tail) = {
        // SAFETY: u64 has no invalid bit patterns and align_to only
        // reinterprets the correctly aligned middle part of the slice.
        unsafe { buf.align_to::<u64>() }
    };
    head.iter().all(|&b| b == 0) && body.iter().all(|&w| w == 0) && tail.iter().all(|&b| b == 0)
}

/// Computes the crc32c a record must carry (over bytes 4..record_size).
#[inline]
pub fn record_crc(record: &[u8]) -> u32 {
    super::codec::crc32c_fast(&record[REC_OFF_KIND..])
}

/// Fully validates one record slot that must hold global index `expected`.
pub fn check_record(record: &[u8], expected: u64) -> Result<(), RecordProblem> {
    let stored = le_u32(record, REC_OFF_CRC);
    let kind = le_u32(record, REC_OFF_KIND);
    let index = le_u64(record, REC_OFF_INDEX);
    if stored == 0 && kind == 0 && index == 0 && is_all_zero(record) {
        return Err(RecordProblem::Empty);
    }
    let computed = record_crc(record);
    if stored != computed {
        return Err(RecordProblem::CrcMismatch { stored, computed });
    }
    if kind == 0 {
        return Err(RecordProblem::KindZero);
    }
    if index != expected {
        return Err(RecordProblem::IndexMismatch {
            expected,
            found: index,
        });
    }
    Ok(())
}

/// Decodes `(kind, index)` from a record without validating it.
#[inline]
pub fn record_kind_index(record: &[u8]) -> (u32, u64) {
    (le_u32(record, REC_OFF_KIND), le_u64(record, REC_OFF_INDEX))
}

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
