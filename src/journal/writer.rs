//! The journal writer: hot-path append, commit, durability and background
//! helper threads (segment pre-creation, prefaulting, flushing).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec;
use super::error::{AppendError, JournalError};
use super::format::{
    HEADER_SIZE, LOCK_FILE, MAX_RECORD_SIZE, META_FILE, MIN_RECORD_SIZE, REC_OFF_PAYLOAD,
    record_offset, valid_record_size,
};
use super::recovery::{self, RecoveryReport};
use super::segment::WSegment;
use super::sys;

/// Temporary name used while replacing `meta.json`.
pub(super) const META_TMP: &str = "meta.json.tmp";

/// `append` publishes the committed count by itself after this many
/// uncommitted records.
pub const AUTO_COMMIT_EVERY: u32 = 1024;

/// How often the background helper looks at the writer position while the
/// writer is moving (it backs off to [`HELPER_IDLE_WAIT`] when idle).
const HELPER_BUSY_WAIT: Duration = Duration::from_millis(1);
const HELPER_IDLE_WAIT: Duration = Duration::from_millis(20);
/// Prefaulting is done in steps of this size so shutdown stays responsive.
const PREFAULT_STEP: usize = 1 << 20;

/// When committed records are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Never msync explicitly: the OS writes dirty pages back on its own
    /// schedule (typically within ~30 s). A process crash loses nothing that
    /// was appended; a power loss or kernel crash may lose recent records.
    None,
    /// A background thread msyncs the committed records every `n`
    /// milliseconds (0 is treated as 1). The appender is never blocked by
    /// it. To keep page faults off the hot path it only flushes whole pages
    /// the writer has finished, so a power loss loses at most about the
    /// last interval plus one page of records.
    IntervalMs(u64),
    /// `append` commits and msyncs synchronously after every `n` records
    /// (0 is treated as 1). Slow (one msync per `n` records) but bounds the
    /// loss on power failure to fewer than `n` records.
    EveryN(u64),
}

/// Configuration of a [`JournalWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// Size of the record area of new segments in bytes; rounded down to a
    /// multiple of `record_size` (at least one record). Each segment file is
    /// `4096 + capacity * record_size` bytes and is fully allocated on disk
    /// when created. Existing segments keep their own size.
    pub segment_bytes: u64,
    /// Record size in bytes: a multiple of 8 in 32..=4096. The payload
    /// capacity is `record_size - 16`. Must match an existing journal.
    pub record_size: u32,
    /// When data is forced to disk.
    pub durability: Durability,
    /// How far ahead of the write position a background thread prefaults
    /// pages (MADV_POPULATE_WRITE) so `append` does not take page faults.
    /// 0 disables prefaulting.
    pub prefault_ahead_bytes: u64,
}

impl JournalConfig {
    /// Defaults for `record_size`: 256 MiB segments, [`Durability::None`],
    /// 32 MiB prefault window (the helper thread wakes every millisecond, so
    /// the window must cover what the writer can produce while the helper
    /// waits for a CPU; 4 MiB was too small on a loaded 2-core machine).
    pub fn new(record_size: u32) -> JournalConfig {
        JournalConfig {
            segment_bytes: 256 << 20,
            record_size,
            durability: Durability::None,
            prefault_ahead_bytes: 32 << 20,
        }
    }

    /// Number of record slots of a new segment:
    /// `max(1, segment_bytes / record_size)`.
    pub fn capacity_records(&self) -> u64 {
        (self.segment_bytes / u64::from(self.record_size.max(1))).max(1)
    }

    fn validate(&self) -> Result<(), JournalError> {
        if !valid_record_size(self.record_size) {
            return Err(JournalError::InvalidConfig(format!(
                "record_size {} must be a multiple of 8 between {MIN_RECORD_SIZE} and \
                 {MAX_RECORD_SIZE}",
                self.record_size
            )));
        }
        let cap = self.capacity_records();
        if cap
            .checked_mul(u64::from(self.record_size))
            .and_then(|b| b.checked_add(4096))
            .is_none()
            || usize::try_from(super::format::segment_file_len(cap, self.record_size)).is_err()
        {
            return Err(JournalError::InvalidConfig(format!(
                "segment_bytes {} is too large for this platform",
                self.segment_bytes
            )));
        }
        Ok(())
    }
}

impl Default for JournalConfig {
    /// `JournalConfig::new(64)` (the tick journal).
    fn default() -> JournalConfig {
        JournalConfig::new(64)
    }
}

/// Counters describing the writer's background machinery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Number of segment roll-overs.
    pub rollovers: u64,
    /// Roll-overs where the next segment was not pre-created in time and
    /// `append` had to create it itself (a stall of one file creation).
    pub inline_creates: u64,
    /// Errors hit by the background threads (failed msync or segment
    /// pre-creation). The writer keeps working; see
    /// [`JournalWriter::flush`] for a synchronous, reported flush.
    pub background_errors: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared between the writer and its helper threads.
struct Shared {
    dir: PathBuf,
    record_size: u32,
    new_capacity: u64,
    prefault_ahead: u64,
    /// File offset of the committed write position in the active segment
    /// (Relaxed; only a hint for prefaulting).
    write_offset: AtomicU64,
    shutdown: AtomicBool,
    background_errors: AtomicU64,
    /// Held while a segment is being created (helper or writer).
    create_lock: Mutex<()>,
    state: Mutex<State>,
    /// Wakes the helper (roll-over, shutdown).
    helper_cv: Condvar,
    /// Wakes the flusher (shutdown).
    flusher_cv: Condvar,
}

struct State {
    active: Arc<WSegment>,
    /// Pre-created next segment, if ready.
    next: Option<Arc<WSegment>>,
    /// Segments the writer has left; synced to disk and unmapped by the helper.
    retired: Vec<Arc<WSegment>>,
    /// The helper's last pre-creation failed; it waits for the next roll-over.
    next_failed: bool,
    /// Incremented at each roll-over.
    generation: u64,
}

/// Flushes retired segments in `list` and removes the flushed ones from the
/// shared state. Returns the first error.
fn sync_retired(shared: &Shared, list: Vec<Arc<WSegment>>) -> io::Result<()> {
    let mut first_err = None;
    let mut done = Vec::with_capacity(list.len());
    for seg in &list {
        match seg.flush_and_mark(seg.hdr.capacity) {
            Ok(()) => done.push(seg.hdr.segment_no),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    lock(&shared.state)
        .retired
        .retain(|s| !done.contains(&s.hdr.segment_no));
    // `list` is dropped here: for segments already removed from the state
    // this is the last reference, so munmap happens on this (non-hot) thread.
    drop(list);
    first_err.map_or(Ok(()), Err)
}

fn helper_main(shared: Arc<Shared>) {
    let mut pf_gen = u64::MAX;
    let mut pf_upto = 0usize;
    let mut last_offset = u64::MAX;
    let mut wait = HELPER_BUSY_WAIT;
    loop {
        let (active, generation, retired, need_next) = {
            let st = lock(&shared.state);
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            (
                Arc::clone(&st.active),
                st.generation,
                st.retired.clone(),
                st.next.is_none() && !st.next_failed,
            )
        };

        // 1. Make left segments durable and unmap them (off the hot path).
        if !retired.is_empty() && sync_retired(&shared, retired).is_err() {
            shared.background_errors.fetch_add(1, Ordering::Relaxed);
        }

        // 2. Pre-create the next segment so roll-over is a pointer swap.
        if need_next {
            let create = lock(&shared.create_lock);
            let (first, segment_no, still_needed) = {
                let st = lock(&shared.state);
                (
                    st.active.end_index(),
                    st.active.hdr.segment_no + 1,
                    st.next.is_none() && !st.next_failed,
                )
            };
            if still_needed && !shared.shutdown.load(Ordering::Acquire) {
                match WSegment::create(
                    &shared.dir,
                    first,
                    segment_no,
                    shared.new_capacity,
                    shared.record_size,
                ) {
                    Ok(seg) => {
                        let seg = Arc::new(seg);
                        lock(&shared.state).next = Some(Arc::clone(&seg));
                        drop(create);
                        // Prefault its first pages (and the header page the
                        // commits write) without holding the lock: the
                        // writer may already be using it, which is fine.
                        seg.populate(0, HEADER_SIZE + shared.prefault_ahead as usize);
                    }
                    Err(_) => {
                        shared.background_errors.fetch_add(1, Ordering::Relaxed);
                        lock(&shared.state).next_failed = true;
                    }
                }
            }
        }

        // 3. Prefault ahead of the writer.
        let offset = shared.write_offset.load(Ordering::Relaxed);
        if shared.prefault_ahead > 0 {
            if generation != pf_gen {
                pf_gen = generation;
                pf_upto = 0;
            }
            let off = offset as usize;
            let target = off
                .saturating_add(shared.prefault_ahead as usize)
                .min(active.map_len());
            pf_upto = pf_upto.max(off);
            while pf_upto < target && !shared.shutdown.load(Ordering::Relaxed) {
                let step = (target - pf_upto).min(PREFAULT_STEP);
                active.populate(pf_upto, step);
                pf_upto += step;
            }
        }
        drop(active);

        // 4. Sleep: short while the writer moves, longer when idle.
        wait = if offset != last_offset {
            last_offset = offset;
            HELPER_BUSY_WAIT
        } else {
            (wait * 2).min(HELPER_IDLE_WAIT)
        };
        let st = lock(&shared.state);
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        // A roll-over since the start of this round means new work (a
        // retired segment, a next segment to create): no sleep. Failed work
        // is retried after the sleep, never in a tight loop.
        if st.generation == generation {
            drop(
                shared
                    .helper_cv
                    .wait_timeout(st, wait)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }
}

fn flusher_main(shared: Arc<Shared>, interval: Duration) {
    let mut flushed_seg = u64::MAX;
    let mut flushed = 0u64;
    let mut deadline = Instant::now() + interval;
    loop {
        let active = {
            let mut st = lock(&shared.state);
            loop {
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = shared
                    .flusher_cv
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            Arc::clone(&st.active)
        };
        deadline = Instant::now() + interval;
        if active.hdr.segment_no != flushed_seg {
            flushed_seg = active.hdr.segment_no;
            flushed = active.durable().load(Ordering::Acquire);
        }
        let committed = active.committed().load(Ordering::Acquire);
        if committed > flushed {
            match active.flush_full_pages(flushed, committed) {
                Ok(durable) => flushed = durable,
                Err(_) => {
                    shared.background_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Appends fixed-size records to a journal directory.
///
/// Single writer per directory (enforced with a `flock` on `writer.lock`).
/// See the module documentation for the format, durability and the SIGBUS
/// caveat of memory-mapped files.
pub struct JournalWriter {
    // Hot fields first.
    /// Start of the record area of the active segment.
    base: *mut u8,
    /// Next slot to write in the active segment.
    pos: u64,
    /// Slots in the active segment.
    capacity: u64,
    next_index: u64,
    record_size: usize,
    uncommitted: u32,
    /// Records are written with non-temporal stores (x86_64, rs % 16 == 0).
    nt: bool,
    flush_every: u64,
    since_flush: u64,
    active: Arc<WSegment>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    dir: PathBuf,
    stats: WriterStats,
    last_error: Option<JournalError>,
    _lock: LockGuard,
}

// SAFETY: `base` points into the mapping owned by `active` (an Arc that moves
// with the writer); nothing in the writer is tied to the creating thread. The
// writer is not `Sync`: all mutation goes through `&mut self`.
unsafe impl Send for JournalWriter {}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.dir)
            .field("segment", &self.active.path)
            .field("next_index", &self.next_index)
            .field("record_size", &self.record_size)
            .finish_non_exhaustive()
    }
}

/// Fails with [`JournalError::PermissionDenied`] if the process may not
/// create files in `dir` (read-only directory or filesystem): the writer
/// must be able to create segments later, so this is reported at open.
fn check_writable(dir: &Path) -> Result<(), JournalError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        JournalError::InvalidConfig(format!(
            "journal path {} contains a NUL byte",
            dir.display()
        ))
    })?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) };
    if rc == 0 {
        return Ok(());
    }
    Err(JournalError::io_at(
        "write into",
        dir,
        io::Error::last_os_error(),
    ))
}

/// The held writer lock; released explicitly on drop (see [`sys::unlock`]).
struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        sys::unlock(&self.0);
    }
}

fn open_lock(dir: &Path) -> Result<LockGuard, JournalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io_at("create lock file", &path, e))?;
    match sys::try_lock_exclusive(&file) {
        Ok(true) => Ok(LockGuard(file)),
        Ok(false) => Err(JournalError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(JournalError::io_at("lock", &path, e)),
    }
}

/// Atomically writes `meta.json` (write tmp, fsync, rename, fsync dir) unless
/// it already holds `meta`. Returns true if an existing different file was
/// replaced.
fn write_meta(dir: &Path, meta: &[u8]) -> Result<bool, JournalError> {
    let path = dir.join(META_FILE);
    let existing = match fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(JournalError::io_at("read", &path, e)),
    };
    if existing.as_deref() == Some(meta) {
        return Ok(false);
    }
    let tmp = dir.join(META_TMP);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(meta)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        sys::fsync_dir(dir)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        JournalError::io_at("write", &path, e)
    })?;
    Ok(existing.is_some())
}

impl JournalWriter {
    /// Opens (creating if missing) the journal in `dir` for appending.
    ///
    /// A new journal gets segment 0 and `meta.json` = `meta`. An existing
    /// journal is recovered first (see [`RecoveryReport`]): valid records
    /// beyond the committed mark are kept, the torn/corrupt tail is zeroed,
    /// and appending resumes after the last valid record. If the stored
    /// `meta.json` differs from `meta` it is replaced atomically and
    /// [`RecoveryReport::meta_replaced`] is set.
    ///
    /// Errors: invalid config, [`JournalError::Locked`] (another writer),
    /// [`JournalError::PermissionDenied`] (read-only directory or files),
    /// [`JournalError::DiskFull`] (first segment cannot be allocated),
    /// [`JournalError::RecordSizeMismatch`], or header/continuity problems
    /// that recovery must not repair silently.
    pub fn open(
        dir: impl AsRef<Path>,
        config: &JournalConfig,
        meta: &[u8],
    ) -> Result<(JournalWriter, RecoveryReport), JournalError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| JournalError::io_at("create directory", &dir, e))?;
        check_writable(&dir)?;
        let lock_file = open_lock(&dir)?;
        let new_capacity = config.capacity_records();
        let recovered = recovery::recover(&dir, config.record_size, new_capacity)?;
        let mut report = recovered.report;
        report.meta_replaced = write_meta(&dir, meta)?;

        let active = Arc::new(recovered.active);
        let pos = recovered.pos;
        let prefault_ahead = config.prefault_ahead_bytes.min(usize::MAX as u64 / 2);
        // Prefault the first window synchronously (cold path).
        if prefault_ahead > 0 {
            let off = record_offset(pos, config.record_size) as usize;
            active.populate(0, HEADER_SIZE);
            active.populate(off, prefault_ahead as usize);
        }
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            record_size: config.record_size,
            new_capacity,
            prefault_ahead,
            write_offset: AtomicU64::new(record_offset(pos, config.record_size)),
            shutdown: AtomicBool::new(false),
            background_errors: AtomicU64::new(0),
            create_lock: Mutex::new(()),
            state: Mutex::new(State {
                active: Arc::clone(&active),
                next: None,
                retired: Vec::with_capacity(16), // roll-over pushes without allocating
                next_failed: false,
                generation: 0,
            }),
            helper_cv: Condvar::new(),
            flusher_cv: Condvar::new(),
        });
        let mut threads = Vec::with_capacity(2);
        let spawn_err = |e| JournalError::io_at("spawn journal thread for", &dir, e);
        let s = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("journal-helper".into())
                .spawn(move || helper_main(s))
                .map_err(spawn_err)?,
        );
        let flush_every = match config.durability {
            Durability::EveryN(n) => n.max(1),
            _ => 0,
        };
        let mut writer = JournalWriter {
            base: active.records_base(),
            pos,
            capacity: active.hdr.capacity,
            next_index: active.hdr.first_index + pos,
            record_size: config.record_size as usize,
            uncommitted: 0,
            nt: codec::nt_supported(config.record_size as usize),
            flush_every,
            since_flush: 0,
            active,
            shared,
            threads,
            dir,
            stats: WriterStats::default(),
            last_error: None,
            _lock: lock_file,
        };
        if let Durability::IntervalMs(ms) = config.durability {
            let s = Arc::clone(&writer.shared);
            let interval = Duration::from_millis(ms.max(1));
            // On failure `writer` is dropped, which stops the helper thread.
            let t = std::thread::Builder::new()
                .name("journal-flusher".into())
                .spawn(move || flusher_main(s, interval))
                .map_err(|e| JournalError::io_at("spawn journal thread for", &writer.dir, e))?;
            writer.threads.push(t);
        }
        Ok((writer, report))
    }

    /// Appends one record and returns its global index.
    ///
    /// Hot path: a copy into the mapped segment plus a crc32c; no
    /// allocation, lock or syscall except at segment roll-over (a pointer
    /// swap to the pre-created next segment), every [`AUTO_COMMIT_EVERY`]
    /// records (a store) and, with [`Durability::EveryN`], the msync.
    /// Payloads shorter than `record_size - 16` are zero padded.
    ///
    /// The record becomes visible to readers at the next [`commit`]
    /// (called automatically every [`AUTO_COMMIT_EVERY`] records).
    ///
    /// [`commit`]: JournalWriter::commit
    #[inline]
    pub fn append(&mut self, kind: u32, payload: &[u8]) -> Result<u64, AppendError> {
        if kind == 0 {
            return Err(AppendError::KindZero);
        }
        let rs = self.record_size;
        let max = rs - REC_OFF_PAYLOAD;
        if payload.len() > max {
            return Err(AppendError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        if self.pos == self.capacity {
            self.roll_over()?;
        }
        let index = self.next_index;
        // SAFETY: pos < capacity, so the record [base + pos*rs, +rs) lies in
        // the mapping kept alive by `self.active`. Slots at or beyond the
        // committed mark are written only by this writer (single writer,
        // enforced by the lock file) and read by nobody until `commit`
        // publishes them (sfence + Release store). payload.len() <= max was
        // checked. For the NT path, `nt` is only set when the CPU has SSE4.2
        // and rs % 16 == 0, and base is page aligned + 4096, so every record
        // start is 16-byte aligned.
        unsafe {
            let rec = self.base.add(self.pos as usize * rs);
            #[cfg(target_arch = "x86_64")]
            if self.nt {
                codec::write_record_nt(rec, rs, kind, index, payload);
            } else {
                codec::write_record_portable(rec, rs, kind, index, payload);
            }
            #[cfg(not(target_arch = "x86_64"))]
            codec::write_record_portable(rec, rs, kind, index, payload);
        }
        self.pos += 1;
        self.next_index = index + 1;
        self.uncommitted += 1;
        if self.uncommitted >= AUTO_COMMIT_EVERY {
            self.commit();
        }
        if self.flush_every != 0 {
            self.since_flush += 1;
            if self.since_flush >= self.flush_every {
                self.since_flush = 0;
                self.commit();
                if let Err(e) = self.active.flush_and_mark(self.pos) {
                    let kind = e.kind();
                    self.last_error = Some(JournalError::io_at("msync", &self.active.path, e));
                    return Err(AppendError::FlushFailed(kind));
                }
            }
        }
        Ok(index)
    }

    /// Publishes every appended record to readers: a Release store of the
    /// active segment's committed_count (no syscall). Call once per batch.
    #[inline]
    pub fn commit(&mut self) {
        if self.nt {
            // Non-temporal stores are not ordered by the Release store.
            codec::store_fence();
        }
        self.active.committed().store(self.pos, Ordering::Release);
        self.shared.write_offset.store(
            (HEADER_SIZE + self.pos as usize * self.record_size) as u64,
            Ordering::Relaxed,
        );
        self.uncommitted = 0;
    }

    #[cold]
    #[inline(never)]
    fn roll_over(&mut self) -> Result<(), AppendError> {
        self.commit();
        if self.flush_every != 0 {
            // EveryN: the tail of the full segment must be durable before
            // moving on (at most n-1 records are dirty).
            if let Err(e) = self.active.flush_and_mark(self.pos) {
                let kind = e.kind();
                self.last_error = Some(JournalError::io_at("msync", &self.active.path, e));
                return Err(AppendError::Io(kind));
            }
        }
        let first = self.active.end_index();
        let next = {
            let _create = lock(&self.shared.create_lock);
            let ready = lock(&self.shared.state).next.take();
            match ready {
                Some(seg) if seg.hdr.first_index == first => seg,
                _ => {
                    self.stats.inline_creates += 1;
                    match WSegment::create(
                        &self.dir,
                        first,
                        self.active.hdr.segment_no + 1,
                        self.shared.new_capacity,
                        self.shared.record_size,
                    ) {
                        Ok(seg) => Arc::new(seg),
                        Err(e) => {
                            let err = match &e {
                                JournalError::DiskFull { .. } => AppendError::DiskFull,
                                JournalError::IoAt { source, .. }
                                | JournalError::PermissionDenied { source, .. } => {
                                    AppendError::Io(source.kind())
                                }
                                _ => AppendError::Io(io::ErrorKind::Other),
                            };
                            self.last_error = Some(e);
                            return Err(err);
                        }
                    }
                }
            }
        };
        let old = std::mem::replace(&mut self.active, Arc::clone(&next));
        {
            let mut st = lock(&self.shared.state);
            st.active = next;
            // The helper syncs and unmaps it; the writer keeps no reference.
            st.retired.push(old);
            st.next_failed = false;
            st.generation += 1;
        }
        self.shared.helper_cv.notify_one();
        self.base = self.active.records_base();
        self.pos = 0;
        self.capacity = self.active.hdr.capacity;
        self.shared
            .write_offset
            .store(HEADER_SIZE as u64, Ordering::Relaxed);
        self.stats.rollovers += 1;
        Ok(())
    }

    /// Commits, then synchronously msyncs every committed record (left
    /// segments not yet synced by the helper, then the active segment) and
    /// advances the durable marks. When it returns `Ok`, everything
    /// appended so far is on stable storage.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.commit();
        let retired = lock(&self.shared.state).retired.clone();
        if !retired.is_empty() {
            let paths: Vec<PathBuf> = retired.iter().map(|s| s.path.clone()).collect();
            sync_retired(&self.shared, retired)
                .map_err(|e| JournalError::io_at("msync", &paths[0], e))?;
        }
        self.active
            .flush_and_mark(self.pos)
            .map_err(|e| JournalError::io_at("msync", &self.active.path, e))
    }

    /// Test hook: use the portable (plain store) record writer.
    #[cfg(test)]
    pub(super) fn force_portable_writes(&mut self) {
        self.commit();
        self.nt = false;
    }

    /// Global index the next appended record will get.
    #[inline]
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Record size of the journal in bytes.
    pub fn record_size(&self) -> u32 {
        self.record_size as u32
    }

    /// Maximum payload length (`record_size - 16`).
    pub fn max_payload(&self) -> usize {
        self.record_size - REC_OFF_PAYLOAD
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters of roll-overs and background work.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            background_errors: self.shared.background_errors.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// Takes the detailed error behind the last [`AppendError::DiskFull`],
    /// [`AppendError::Io`] or [`AppendError::FlushFailed`] (file path,
    /// sizes, OS error), for logging.
    pub fn take_last_error(&mut self) -> Option<JournalError> {
        self.last_error.take()
    }
}

impl Drop for JournalWriter {
    /// Commits, stops the helper threads, flushes everything and removes an
    /// unused pre-created segment. Never panics; errors go to stderr.
    fn drop(&mut self) {
        self.commit();
        {
            let _st = lock(&self.shared.state);
            self.shared.shutdown.store(true, Ordering::Release);
        }
        self.shared.helper_cv.notify_all();
        self.shared.flusher_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Err(e) = self.flush() {
            let _ = writeln!(io::stderr(), "tickwire journal: final flush failed: {e}");
        }
        // A pre-created next segment is kept only if the active one is full
        // (it then is the next active segment; a reader may already map it).
        let next = lock(&self.shared.state).next.take();
        if let Some(next) = next {
            if self.pos < self.capacity {
                let path = next.path.clone();
                drop(next);
                if fs::remove_file(&path).is_ok() {
                    let _ = sys::fsync_dir(&self.dir);
                }
            }
        }
    }
}
