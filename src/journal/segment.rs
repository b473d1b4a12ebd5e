//! Segment files: creation, read-write mapping (writer/recovery) and
//! read-only mapping (readers, verify, inspect).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use memmap2::{MmapOptions, MmapRaw};

use super::error::{JournalError, is_disk_full_error};
use super::format::{
    HEADER_SIZE, HeaderProblem, OFF_COMMITTED, OFF_DURABLE, SEGMENT_TMP_SUFFIX, SegmentHeader,
    header_counters, parse_segment_file_name, segment_file_name,
};
use super::sys;

/// Lists the segment files of `dir` as `(first_index, path)`, sorted by index.
/// Files that are not named like segments are ignored.
pub(super) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(parse_segment_file_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(first, _)| *first);
    Ok(out)
}

/// Static header plus counters, read with `pread` (no mapping).
#[derive(Debug, Clone, Copy)]
pub(super) struct HeaderInfo {
    /// Static fields.
    pub hdr: SegmentHeader,
    /// committed_count at the time of reading.
    pub committed: u64,
    /// durable_count at the time of reading.
    pub durable: u64,
    /// File length.
    pub file_len: u64,
}

/// Error of [`read_header`]: either I/O or a header problem.
pub(super) enum ReadHeaderError {
    /// The file could not be read.
    Io(io::Error),
    /// The header is invalid.
    Problem(HeaderProblem),
}

/// Reads and validates the header of an open segment file.
pub(super) fn read_header(file: &File) -> Result<HeaderInfo, ReadHeaderError> {
    let file_len = file.metadata().map_err(ReadHeaderError::Io)?.len();
    if file_len < HEADER_SIZE as u64 {
        return Err(ReadHeaderError::Problem(HeaderProblem::TooShort));
    }
    let mut buf = [0u8; OFF_DURABLE + 8];
    file.read_exact_at(&mut buf, 0)
        .map_err(ReadHeaderError::Io)?;
    let hdr = SegmentHeader::decode(&buf).map_err(ReadHeaderError::Problem)?;
    let (committed, durable) = header_counters(&buf);
    Ok(HeaderInfo {
        hdr,
        committed,
        durable,
        file_len,
    })
}

/// Converts a [`ReadHeaderError`] for `path` into a [`JournalError`].
pub(super) fn header_error(path: &Path, e: ReadHeaderError) -> JournalError {
    match e {
        ReadHeaderError::Io(source) => JournalError::io_at("read segment header", path, source),
        ReadHeaderError::Problem(problem) => JournalError::BadHeader {
            path: path.to_path_buf(),
            problem,
        },
    }
}

fn map_len(path: &Path, len: u64) -> Result<usize, JournalError> {
    usize::try_from(len).map_err(|_| {
        JournalError::io_at(
            "map",
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "segment larger than address space",
            ),
        )
    })
}

/// Returns a reference to the atomic `u64` counter at `off` of a mapping.
///
/// # Safety
/// `map` must be at least `off + 8` bytes long, `off` must be a multiple of
/// 8, and the location must only ever be accessed atomically while shared.
unsafe fn counter(map: &MmapRaw, off: usize) -> &AtomicU64 {
    debug_assert!(off % 8 == 0 && off + 8 <= map.len());
    // SAFETY: the caller guarantees bounds and that the location is accessed
    // atomically only; the mapping is page aligned, so `off % 8 == 0` makes
    // the pointer 8-aligned, and the reference cannot outlive `map`.
    unsafe { AtomicU64::from_ptr(map.as_mut_ptr().add(off).cast::<u64>()) }
}

/// A segment mapped read-write (shared) for the writer and recovery.
#[derive(Debug)]
pub(super) struct WSegment {
    map: MmapRaw,
    /// The open file (kept for fstat/lseek).
    pub file: File,
    /// Path of the segment file.
    pub path: PathBuf,
    /// Static header fields.
    pub hdr: SegmentHeader,
}

impl WSegment {
    /// Creates segment `first_index` in `dir`: writes a `.seg.tmp` file,
    /// sizes it (`set_len`), allocates real blocks (`posix_fallocate`),
    /// writes the header, fsyncs, then renames it into place and fsyncs the
    /// directory. A failure leaves no `.seg` file behind.
    pub fn create(
        dir: &Path,
        first_index: u64,
        segment_no: u64,
        capacity: u64,
        record_size: u32,
    ) -> Result<WSegment, JournalError> {
        let path = dir.join(segment_file_name(first_index));
        let tmp = dir.join(format!("{first_index:020}{SEGMENT_TMP_SUFFIX}"));
        if path.exists() {
            return Err(JournalError::io_at(
                "create segment",
                &path,
                io::Error::new(io::ErrorKind::AlreadyExists, "segment file already exists"),
            ));
        }
        let hdr = SegmentHeader {
            record_size,
            created_unix_ns: super::format::now_unix_ns(),
            segment_no,
            first_index,
            capacity,
        };
        let len = hdr.file_len();
        let mlen = map_len(&path, len)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| JournalError::io_at("create segment", &tmp, e))?;
        let result = (|| -> Result<MmapRaw, (&'static str, io::Error)> {
            file.set_len(len).map_err(|e| ("size", e))?;
            sys::allocate(&file, len).map_err(|e| ("allocate", e))?;
            file.write_all_at(&hdr.encode(), 0)
                .map_err(|e| ("write header of", e))?;
            file.sync_all().map_err(|e| ("fsync", e))?;
            let map = MmapOptions::new()
                .len(mlen)
                .map_raw(&file)
                .map_err(|e| ("map", e))?;
            fs::rename(&tmp, &path).map_err(|e| ("rename", e))?;
            Ok(map)
        })();
        match result {
            Ok(map) => {
                // Best effort: the segment is complete either way; an fsync
                // failure here only weakens power-loss durability of the name.
                let _ = sys::fsync_dir(dir);
                Ok(WSegment {
                    map,
                    file,
                    path,
                    hdr,
                })
            }
            Err((action, source)) => {
                drop(file);
                let _ = fs::remove_file(&tmp);
                if is_disk_full_error(&source) {
                    Err(JournalError::DiskFull {
                        path,
                        bytes: len,
                        source,
                    })
                } else {
                    Err(JournalError::io_at(action, &tmp, source))
                }
            }
        }
    }

    /// Opens an existing segment read-write. The caller validates the
    /// header fields against the journal (record size, continuity).
    pub fn open(path: &Path) -> Result<(WSegment, HeaderInfo), JournalError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| JournalError::io_at("open segment for writing", path, e))?;
        let info = read_header(&file).map_err(|e| header_error(path, e))?;
        let need = info.hdr.file_len();
        if info.file_len < need {
            return Err(JournalError::Truncated {
                path: path.to_path_buf(),
                expected: need,
                actual: info.file_len,
            });
        }
        let map = MmapOptions::new()
            .len(map_len(path, need)?)
            .map_raw(&file)
            .map_err(|e| JournalError::io_at("map", path, e))?;
        Ok((
            WSegment {
                map,
                file,
                path: path.to_path_buf(),
                hdr: info.hdr,
            },
            info,
        ))
    }

    /// The header's committed_count (writer: Release store; readers: Acquire load).
    pub fn committed(&self) -> &AtomicU64 {
        // SAFETY: the mapping spans the whole header page (len >= 4096 was
        // checked), OFF_COMMITTED is 8-aligned, and this field is only ever
        // accessed through atomics once the segment is shared.
        unsafe { counter(&self.map, OFF_COMMITTED) }
    }

    /// The header's durable_count (slots known to be flushed to disk).
    pub fn durable(&self) -> &AtomicU64 {
        // SAFETY: as for `committed`: in bounds, aligned, atomic-only access.
        unsafe { counter(&self.map, OFF_DURABLE) }
    }

    /// Pointer to the first record slot (start of the mapping + 4096).
    pub fn records_base(&self) -> *mut u8 {
        // SAFETY: the mapping is at least HEADER_SIZE + one record long
        // (capacity > 0 is validated), so the offset stays inside it.
        unsafe { self.map.as_mut_ptr().add(HEADER_SIZE) }
    }

    /// The bytes of slot `slot`.
    ///
    /// # Safety
    /// `slot < capacity`, and nobody may write the slot while the returned
    /// slice is alive (true during recovery, which holds the writer lock
    /// before any thread or reader of this process shares the segment).
    pub unsafe fn slot(&self, slot: u64) -> &[u8] {
        let rs = self.hdr.record_size as usize;
        // SAFETY: slot < capacity keeps the range inside the mapping; the
        // caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.records_base().add(slot as usize * rs), rs) }
    }

    /// Zeroes slot `slot`.
    ///
    /// # Safety
    /// `slot < capacity`, and no other reference to the slot may be alive
    /// and no reader may be reading it (recovery only: the slot is beyond
    /// the committed mark).
    pub unsafe fn zero_slot(&self, slot: u64) {
        let rs = self.hdr.record_size as usize;
        // SAFETY: in bounds as above; exclusivity guaranteed by the caller.
        unsafe { std::ptr::write_bytes(self.records_base().add(slot as usize * rs), 0, rs) }
    }

    /// Global index one past the last slot.
    pub fn end_index(&self) -> u64 {
        self.hdr.end_index()
    }

    /// Length of the mapping (= expected file length).
    pub fn map_len(&self) -> usize {
        self.map.len()
    }

    /// Synchronously flushes (msync MS_SYNC) the header page and slots
    /// `[0, upto)`. Only dirty pages are written.
    pub fn flush_upto(&self, upto: u64) -> io::Result<()> {
        let end = (HEADER_SIZE as u64
            + upto.min(self.hdr.capacity) * u64::from(self.hdr.record_size))
            as usize;
        self.map.flush_range(0, end.min(self.map.len()))
    }

    /// Flushes slots `[0, upto)` and then raises durable_count to `upto`.
    pub fn flush_and_mark(&self, upto: u64) -> io::Result<()> {
        self.flush_upto(upto)?;
        self.durable().fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Background flush that never touches the page the writer is filling
    /// (nor the header page): msyncs only the whole pages of records between
    /// the page containing slot `from` and the last page boundary at or below
    /// slot `to`, then raises durable_count to the number of records that
    /// lie completely below that boundary. Returns that number.
    ///
    /// Leaving the writer's current page (and the header page) dirty avoids
    /// write-protecting them, which would make the next store take a page
    /// fault. durable_count reaches the disk with the header page later
    /// (kernel writeback, explicit flush or drop); a stale on-disk value
    /// only makes recovery validate more records.
    pub fn flush_full_pages(&self, from: u64, to: u64) -> io::Result<u64> {
        let page = sys::page_size() as u64;
        let rs = u64::from(self.hdr.record_size);
        let to = to.min(self.hdr.capacity);
        let end = (HEADER_SIZE as u64 + to * rs) / page * page;
        if end <= HEADER_SIZE as u64 {
            return Ok(self.durable().load(Ordering::Acquire));
        }
        let start = ((HEADER_SIZE as u64 + from * rs) / page * page).max(HEADER_SIZE as u64);
        if end > start {
            self.map
                .flush_range(start as usize, (end - start) as usize)?;
        }
        let slots = (end - HEADER_SIZE as u64) / rs;
        self.durable().fetch_max(slots, Ordering::AcqRel);
        Ok(slots)
    }

    /// Prefaults `[offset, offset + len)` of the mapping for writing.
    pub fn populate(&self, offset: usize, len: usize) {
        sys::populate_write(&self.map, offset, len);
    }
}

/// A segment mapped read-only (readers, verify, iterators).
#[derive(Debug)]
pub(super) struct RSegment {
    map: MmapRaw,
    file: File,
    /// Path of the segment file.
    pub path: PathBuf,
    /// Static header fields.
    pub hdr: SegmentHeader,
}

impl RSegment {
    /// Opens and maps a segment read-only. Returns `Ok(None)` if the file
    /// does not exist.
    pub fn open(path: &Path) -> Result<Option<RSegment>, JournalError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(JournalError::io_at("open segment", path, e)),
        };
        let info = read_header(&file).map_err(|e| header_error(path, e))?;
        let need = info.hdr.file_len();
        if info.file_len < need {
            return Err(JournalError::Truncated {
                path: path.to_path_buf(),
                expected: need,
                actual: info.file_len,
            });
        }
        let map = MmapOptions::new()
            .len(map_len(path, need)?)
            .map_raw_read_only(&file)
            .map_err(|e| JournalError::io_at("map", path, e))?;
        Ok(Some(RSegment {
            map,
            file,
            path: path.to_path_buf(),
            hdr: info.hdr,
        }))
    }

    /// Acquire-loads committed_count.
    #[inline]
    pub fn committed(&self) -> u64 {
        // SAFETY: in bounds (len >= 4096), 8-aligned, and the writer only
        // accesses the field atomically. Loads of <= pointer-sized atomics
        // with Relaxed ordering are allowed on read-only memory; the Acquire
        // fence below gives the Acquire semantics.
        let v = unsafe { counter(&self.map, OFF_COMMITTED) }.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        v
    }

    /// Loads durable_count.
    pub fn durable(&self) -> u64 {
        // SAFETY: as for `committed`.
        unsafe { counter(&self.map, OFF_DURABLE) }.load(Ordering::Relaxed)
    }

    /// Pointer to the first record slot.
    #[inline]
    pub fn records_base(&self) -> *const u8 {
        // SAFETY: the mapping is at least HEADER_SIZE + one record long.
        unsafe { self.map.as_ptr().add(HEADER_SIZE) }
    }

    /// The bytes of slot `slot`.
    ///
    /// # Safety
    /// `slot < capacity`, and the slot must not be written while the slice
    /// is alive: either `slot < committed()` (committed records are never
    /// modified) or no writer is active.
    pub unsafe fn slot(&self, slot: u64) -> &[u8] {
        let rs = self.hdr.record_size as usize;
        // SAFETY: in bounds; immutability guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(self.records_base().add(slot as usize * rs), rs) }
    }

    /// Copies slot `slot` (which may be concurrently written by a writer in
    /// another mapping) into `buf`. Panics if `slot >= capacity` or `buf`
    /// is not `record_size` long.
    pub fn copy_slot(&self, slot: u64, buf: &mut [u8]) {
        let rs = self.hdr.record_size as usize;
        assert!(slot < self.hdr.capacity && buf.len() == rs);
        // SAFETY: slot < capacity keeps the source inside the mapping; no
        // reference to the source bytes is created (the bytes may change
        // under us through the writer's mapping; a torn copy is tolerated
        // by the caller, which validates the crc).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.records_base().add(slot as usize * rs),
                buf.as_mut_ptr(),
                rs,
            )
        };
    }

    /// Prefaults slots `[from, to)` for reading (one madvise call).
    pub fn populate_slots(&self, from: u64, to: u64) {
        let rs = u64::from(self.hdr.record_size);
        let a = HEADER_SIZE as u64 + from * rs;
        let b = HEADER_SIZE as u64 + to * rs;
        sys::populate_read(&self.map, a as usize, (b - a) as usize);
    }

    /// True if the file was unlinked (fstat reports no links).
    pub fn is_deleted(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.nlink() == 0)
    }
}
