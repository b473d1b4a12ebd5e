//! Record encoding for the hot path: crc32c with the SSE4.2 instruction
//! and record writes with non-temporal (streaming) stores on x86_64, with
//! portable fallbacks (the `crc32c` crate and plain copies) elsewhere.
//!
//! Non-temporal stores bypass the cache: the journal does not evict the
//! engine's working set, and no read-for-ownership of the destination line
//! is needed. They are weakly ordered, so the writer issues `sfence`
//! ([`store_fence`]) before every Release store of the committed count.

use super::format::{REC_OFF_INDEX, REC_OFF_KIND, REC_OFF_PAYLOAD};

/// crc32c (Castagnoli) of `data`; identical to `crc32c::crc32c`, but uses
/// the SSE4.2 `crc32` instruction inline when the CPU has it (the crate's
/// generic path costs ~4x more for 60-byte inputs).
#[inline]
pub fn crc32c_fast(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU supports SSE4.2 (checked just above).
            return unsafe { x86::crc32c_sse42(data) };
        }
    }
    crc32c::crc32c(data)
}

/// True if [`write_record_nt`] may be used for `record_size` on this CPU.
pub fn nt_supported(record_size: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        record_size % 16 == 0 && std::is_x86_feature_detected!("sse4.2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = record_size;
        false
    }
}

/// Orders all earlier (including non-temporal) stores before later stores.
/// Must precede the Release store that publishes records written with
/// [`write_record_nt`]. No-op on other architectures.
#[inline]
pub fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    x86::sfence();
}

/// Writes a complete record (kind, index, payload, zero padding, crc) with
/// plain stores, then computes the crc over the written bytes.
///
/// # Safety
/// `dst` must be valid for writes of `rs` bytes, `rs >= 16`, and
/// `payload.len() <= rs - 16`. Nobody else may access the range meanwhile.
#[inline]
pub unsafe fn write_record_portable(
    dst: *mut u8,
    rs: usize,
    kind: u32,
    index: u64,
    payload: &[u8],
) {
    // SAFETY: the caller guarantees `dst..dst+rs` is valid, exclusive, and
    // large enough for the header and the payload plus padding.
    unsafe {
        dst.add(REC_OFF_KIND)
            .cast::<[u8; 4]>()
            .write_unaligned(kind.to_le_bytes());
        dst.add(REC_OFF_INDEX)
            .cast::<[u8; 8]>()
            .write_unaligned(index.to_le_bytes());
        let p = dst.add(REC_OFF_PAYLOAD);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), p, payload.len());
        let max = rs - REC_OFF_PAYLOAD;
        if payload.len() < max {
            std::ptr::write_bytes(p.add(payload.len()), 0, max - payload.len());
        }
        let crc = crc32c_fast(std::slice::from_raw_parts(
            dst.add(REC_OFF_KIND),
            rs - REC_OFF_KIND,
        ));
        dst.cast::<[u8; 4]>().write_unaligned(crc.to_le_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
pub use self::x86::write_record_nt;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, _mm_crc32_u8, _mm_crc32_u32, _mm_crc32_u64, _mm_loadu_si128, _mm_set_epi64x,
        _mm_setzero_si128, _mm_sfence, _mm_stream_si128,
    };

    #[inline]
    fn le_u64(b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        u64::from_le_bytes(a)
    }

    /// `sfence`.
    #[inline]
    #[allow(unused_unsafe)] // the intrinsic is a safe fn on newer toolchains
    pub(super) fn sfence() {
        // SAFETY: sfence has no preconditions; SSE is part of the x86_64 baseline.
        unsafe { _mm_sfence() }
    }

    /// crc32c of `data` with the SSE4.2 instruction.
    ///
    /// # Safety
    /// The CPU must support SSE4.2.
    #[target_feature(enable = "sse4.2")]
    #[allow(unused_unsafe)] // the intrinsics are safe fns on newer toolchains
    pub(super) unsafe fn crc32c_sse42(data: &[u8]) -> u32 {
        let mut c = u64::from(!0u32);
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            // SAFETY: SSE4.2 is enabled for this function (caller contract).
            c = unsafe { _mm_crc32_u64(c, le_u64(w)) };
        }
        let mut c = c as u32;
        let mut rest = words.remainder();
        if rest.len() >= 4 {
            let v = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            // SAFETY: as above.
            c = unsafe { _mm_crc32_u32(c, v) };
            rest = &rest[4..];
        }
        for &b in rest {
            // SAFETY: as above.
            c = unsafe { _mm_crc32_u8(c, b) };
        }
        !c
    }

    /// Writes a complete record with 16-byte non-temporal stores, computing
    /// the crc from the inputs (the destination is never read).
    ///
    /// # Safety
    /// The CPU must support SSE4.2; `dst` must be 16-byte aligned and valid
    /// for writes of `rs` bytes; `rs % 16 == 0`, `rs >= 32`;
    /// `payload.len() <= rs - 16`; nobody else may access the range
    /// meanwhile. The caller must issue [`super::store_fence`] before
    /// publishing the record.
    #[target_feature(enable = "sse4.2")]
    #[allow(unused_unsafe)] // some intrinsics are safe fns on newer toolchains
    pub unsafe fn write_record_nt(dst: *mut u8, rs: usize, kind: u32, index: u64, payload: &[u8]) {
        let n = payload.len();
        let pad_words = (rs - 16) / 8;
        // crc over kind | index | payload | zero padding (bytes 4..rs).
        // Intrinsic calls: SSE4.2 is enabled for this function (caller
        // contract) and SSE2 is baseline; pointers are justified per call.
        // SAFETY: see above (no pointer arguments).
        let mut c = u64::from(unsafe { _mm_crc32_u32(!0u32, kind) });
        // SAFETY: see above.
        c = unsafe { _mm_crc32_u64(c, index) };
        let full = n / 8;
        for w in payload.chunks_exact(8) {
            // SAFETY: see above.
            c = unsafe { _mm_crc32_u64(c, le_u64(w)) };
        }
        let mut done = full;
        if n % 8 != 0 {
            let mut t = [0u8; 8];
            t[..n % 8].copy_from_slice(&payload[full * 8..]);
            // SAFETY: see above.
            c = unsafe { _mm_crc32_u64(c, u64::from_le_bytes(t)) };
            done += 1;
        }
        for _ in done..pad_words {
            // SAFETY: see above.
            c = unsafe { _mm_crc32_u64(c, 0) };
        }
        let crc = !(c as u32);

        let lo = (u64::from(kind) << 32) | u64::from(crc);
        // SAFETY: see above (no pointer arguments).
        let head = unsafe { _mm_set_epi64x(index as i64, lo as i64) };
        // SAFETY: dst is 16-byte aligned and valid for rs >= 16 bytes.
        unsafe { _mm_stream_si128(dst.cast::<__m128i>(), head) };
        let mut off = 0;
        while off + 16 <= rs - 16 {
            let v = if off + 16 <= n {
                // SAFETY: payload[off..off+16] is in bounds (unaligned load).
                unsafe { _mm_loadu_si128(payload.as_ptr().add(off).cast::<__m128i>()) }
            } else if off >= n {
                // SAFETY: no pointer arguments.
                unsafe { _mm_setzero_si128() }
            } else {
                let mut t = [0u8; 16];
                t[..n - off].copy_from_slice(&payload[off..]);
                // SAFETY: `t` is a 16-byte local buffer (unaligned load).
                unsafe { _mm_loadu_si128(t.as_ptr().cast::<__m128i>()) }
            };
            // SAFETY: 16 + off + 16 <= rs, and dst + 16 + off is 16-aligned
            // because dst is and off is a multiple of 16.
            unsafe { _mm_stream_si128(dst.add(16 + off).cast::<__m128i>(), v) };
            off += 16;
        }
    }
}
