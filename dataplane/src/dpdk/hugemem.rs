//! Memory for the big per-worker tables (flow index and entries) and a prefetch hint.
//!
//! The flow table is looked up at random: with 4 KiB pages, a table of tens of MB
//! misses the TLB on almost every packet, and in a VM each miss is a two-level page walk.
//! [`HugeArray`] maps its memory aligned to 2 MiB and asks the kernel for transparent huge
//! pages (`MADV_HUGEPAGE`, honoured when THP is `always` or `madvise`) *before* the first
//! touch, so the pages fault in huge. It needs no reserved hugepages and no EAL, so unit
//! tests and `--no-huge` runs use it too; where the kernel says no, it is plain memory.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Huge page size the mapping is aligned to.
const HUGE: usize = 2 << 20;

/// A fixed-length array in its own anonymous mapping, backed by transparent huge pages
/// when the kernel allows (see the module docs). Never grows; unmapped on drop.
pub struct HugeArray<T> {
    ptr: NonNull<T>,
    len: usize,
    /// The whole mapping (before alignment), for `munmap`.
    map: *mut libc::c_void,
    map_len: usize,
    /// Whether `madvise(MADV_HUGEPAGE)` was accepted.
    huge: bool,
}

// SAFETY: HugeArray owns its elements exclusively (like Box<[T]>); the raw pointers are
// only an owned allocation, so it is Send/Sync exactly when T is.
unsafe impl<T: Send> Send for HugeArray<T> {}
// SAFETY: as above: shared access only hands out `&[T]`.
unsafe impl<T: Sync> Sync for HugeArray<T> {}

impl<T> HugeArray<T> {
    /// `len` elements, element `i` initialised to `init(i)`.
    ///
    /// # Panics
    /// When the mapping cannot be made (out of address space or memory): called at
    /// start-up only, like the allocations it replaces.
    pub fn new(len: usize, mut init: impl FnMut(usize) -> T) -> Self {
        assert!(std::mem::align_of::<T>() <= HUGE, "HugeArray: alignment above 2 MiB");
        let bytes = len.checked_mul(std::mem::size_of::<T>()).expect("HugeArray: size overflow").max(1);
        let map_len = bytes.checked_add(HUGE).expect("HugeArray: size overflow");
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; the result is checked against MAP_FAILED before use.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "HugeArray: mmap of {map_len} bytes failed: {}", std::io::Error::last_os_error());
        let base = map as usize;
        let aligned = base.next_multiple_of(HUGE);
        // SAFETY: [aligned, aligned + bytes) lies inside the mapping just made (it has
        // HUGE bytes of slack); madvise only changes how the kernel backs it.
        let huge = unsafe { libc::madvise(aligned as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE) } == 0;
        let ptr = aligned as *mut T;
        for i in 0..len {
            // SAFETY: element i is inside the mapping (len elements fit in `bytes`).
            let slot = unsafe { ptr.add(i) };
            // SAFETY: `slot` is aligned (2 MiB base, T-sized steps) and not yet
            // initialised, so `write` (no drop of old contents) is right.
            unsafe { slot.write(init(i)) };
        }
        // SAFETY: `aligned` is a non-zero address inside a successful mapping.
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        HugeArray { ptr, len, map, map_len, huge }
    }

    /// Whether the kernel accepted the huge-page advice for this array.
    pub fn huge_pages_advised(&self) -> bool {
        self.huge
    }
}

impl<T> Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised elements that live as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for HugeArray<T> {
    fn drop(&mut self) {
        // SAFETY: drops the `len` initialised elements exactly once (drop runs once).
        unsafe { std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len)) };
        // SAFETY: unmaps the mapping `new` made (same address and length); nothing refers
        // to it any more.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeArray").field("len", &self.len).field("huge", &self.huge).finish()
    }
}

/// Asks the CPU to start loading the cache line holding `r` (a hint: never faults, never
/// blocks). Used to overlap a burst's table misses instead of taking them one by one.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache; SSE is part of the x86_64 baseline and
    // the address comes from a live reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((r as *const T).cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// The slots of `tags` equal to `tag`, as a bit mask (bit `s` for `tags[s]`): the flow
/// index's bucket scan in a few instructions and no branch (SSE2: two 4-lane compares,
/// the second over lanes 3..7 so both loads stay inside the array).
#[inline(always)]
pub fn match_tags7(tags: &[u32; 7], tag: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the function only needs SSE2, which every x86_64 CPU has (the target's
    // baseline); it reads nothing but the array behind a live reference.
    return unsafe { match_tags7_sse2(tags, tag) };
    #[cfg(not(target_arch = "x86_64"))]
    tags.iter().enumerate().fold(0, |m, (s, t)| m | (u32::from(*t == tag) << s))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn match_tags7_sse2(tags: &[u32; 7], tag: u32) -> u32 {
    use std::arch::x86_64::{__m128i, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_ps, _mm_set1_epi32};
    let (a, b) = (tags[..4].as_ptr().cast::<__m128i>(), tags[3..].as_ptr().cast::<__m128i>());
    // SAFETY: an unaligned 16-byte load of tags[0..4], inside the array.
    let lo = unsafe { _mm_loadu_si128(a) };
    // SAFETY: an unaligned 16-byte load of tags[3..7], inside the array.
    let hi = unsafe { _mm_loadu_si128(b) };
    let t = _mm_set1_epi32(tag as i32);
    let (lo, hi) = (_mm_cmpeq_epi32(lo, t), _mm_cmpeq_epi32(hi, t));
    (_mm_movemask_ps(_mm_castsi128_ps(lo)) as u32) | ((_mm_movemask_ps(_mm_castsi128_ps(hi)) as u32) << 3)
}

/// [`prefetch`] for every cache line of `*r` (for values larger than a line).
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    let p = (r as *const T).cast::<u8>();
    let mut off = 0;
    while off < std::mem::size_of::<T>() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `prefetch`; the address is inside `*r` (off < size_of::<T>()), and
        // a prefetch never dereferences it anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.wrapping_add(off).cast::<i8>())
        };
        off += 64;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_initialised_aligned_and_dropped() {
        use std::rc::Rc;
        let marker = Rc::new(());
        let mut a = HugeArray::new(3000, |i| (i as u64, Rc::clone(&marker)));
        assert_eq!(a.len(), 3000);
        assert_eq!(a.as_ptr() as usize % HUGE, 0);
        assert!(a.iter().enumerate().all(|(i, e)| e.0 == i as u64));
        a[17].0 = 99;
        assert_eq!(a[17].0, 99);
        assert_eq!(Rc::strong_count(&marker), 3001);
        drop(a);
        assert_eq!(Rc::strong_count(&marker), 1);
        let empty: HugeArray<u8> = HugeArray::new(0, |_| 0);
        assert!(empty.is_empty());
        prefetch(&0u64);
    }
}
