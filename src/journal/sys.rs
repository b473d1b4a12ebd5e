//! Thin OS helpers: block allocation, prefaulting, file locks, sparse-file
//! scanning and directory fsync. Linux gets the full behaviour; other Unix
//! systems get documented fallbacks.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use memmap2::{Advice, MmapRaw};

/// Allocates real disk blocks for `[0, len)` of `file` so that a later write
/// through a shared mapping cannot hit ENOSPC (which would raise SIGBUS).
///
/// Returns the OS error (ENOSPC, EDQUOT, EFBIG, ...) if the blocks cannot be
/// allocated. Filesystems without fallocate support fall back to a sparse
/// file (no ENOSPC protection).
pub(super) fn allocate(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        loop {
            // SAFETY: posix_fallocate only operates on the file descriptor,
            // which `file` keeps open for the duration of the call.
            let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
            match rc {
                0 => return Ok(()),
                libc::EINTR => continue,
                // Filesystem cannot preallocate: keep the (sparse) file.
                libc::EOPNOTSUPP | libc::EINVAL => return Ok(()),
                err => return Err(io::Error::from_raw_os_error(err)),
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, len);
        Ok(())
    }
}

/// Prefaults the page tables of `[offset, offset + len)` of `map` for
/// writing (MADV_POPULATE_WRITE, Linux >= 5.14), falling back to
/// MADV_WILLNEED (readahead only). Errors are ignored: this is a hint.
pub(super) fn populate_write(map: &MmapRaw, offset: usize, len: usize) {
    let end = offset.saturating_add(len).min(map.len());
    if offset >= end {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        if map
            .advise_range(Advice::PopulateWrite, offset, end - offset)
            .is_ok()
        {
            return;
        }
    }
    let _ = map.advise_range(Advice::WillNeed, offset, end - offset);
}

/// Prefaults the page tables of `[offset, offset + len)` of `map` for
/// reading (MADV_POPULATE_READ, Linux >= 5.14), falling back to
/// MADV_WILLNEED. Errors are ignored: this is a hint.
pub(super) fn populate_read(map: &MmapRaw, offset: usize, len: usize) {
    let end = offset.saturating_add(len).min(map.len());
    if offset >= end {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        if map
            .advise_range(Advice::PopulateRead, offset, end - offset)
            .is_ok()
        {
            return;
        }
    }
    let _ = map.advise_range(Advice::WillNeed, offset, end - offset);
}

/// The system page size (4096 if it cannot be determined).
pub(super) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let v = if v > 0 { v as usize } else { 4096 };
    PAGE.store(v, Ordering::Relaxed);
    v
}

/// Tries to take an exclusive `flock` on `file` without blocking.
/// Returns `Ok(false)` if another open file description holds it.
pub(super) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock only operates on the descriptor, which `file` keeps open.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Releases a `flock` taken with [`try_lock_exclusive`]. Done explicitly
/// (not just by closing) because a child forked by another thread may still
/// hold a duplicate of the descriptor until it execs, which would keep the
/// lock of the shared open file description alive.
pub(super) fn unlock(file: &File) {
    // SAFETY: flock only operates on the descriptor, which `file` keeps open.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// Byte ranges of `[from, to)` of `file` that may contain data, using
/// SEEK_DATA / SEEK_HOLE. Unallocated or unwritten (fallocated) ranges
/// without cached pages are skipped. Falls back to the whole range if the
/// filesystem does not support the calls.
pub(super) fn data_ranges(file: &File, from: u64, to: u64) -> Vec<(u64, u64)> {
    let whole = vec![(from, to)];
    if from >= to {
        return Vec::new();
    }
    #[cfg(target_os = "linux")]
    {
        let fd = file.as_raw_fd();
        let mut out = Vec::new();
        let mut off = from;
        while off < to {
            let Ok(o) = libc::off_t::try_from(off) else {
                return whole;
            };
            // SAFETY: lseek only operates on the descriptor, which `file` keeps open.
            let data = unsafe { libc::lseek(fd, o, libc::SEEK_DATA) };
            if data < 0 {
                return match io::Error::last_os_error().raw_os_error() {
                    Some(libc::ENXIO) => out,
                    _ => whole,
                };
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
            if hole < 0 {
                return whole;
            }
            let (data, hole) = (data as u64, hole as u64);
            if data >= to {
                break;
            }
            out.push((data.max(from), hole.min(to)));
            if hole <= data {
                return whole;
            }
            off = hole;
        }
        out
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        whole
    }
}

/// fsyncs a directory so that renames/creations/removals in it are durable.
pub(super) fn fsync_dir(dir: &Path) -> io::Result<()> {
    let d = File::open(dir)?;
    match d.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r,
    }
}
