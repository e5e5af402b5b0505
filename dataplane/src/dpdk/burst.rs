//! A fixed-capacity array of owned mbufs: the unit of rx and tx.

use std::ptr;

use sluice_ffi::rte_mbuf;

use super::Mbuf;

/// Up to `N` owned mbufs, in order; dropping it frees what it still holds (in
/// bulk).
///
/// It is laid out as the `rte_mbuf *[N]` DPDK's burst calls fill and drain, so
/// rx and tx work on it in place. A stack value: keep one per queue per worker
/// and reuse it.
pub struct Burst<const N: usize> {
    /// `slots[..len]` are valid, exclusively owned mbufs; the rest is spare.
    slots: [*mut rte_mbuf; N],
    len: usize,
}

// SAFETY: a Burst owns its mbufs exactly as `Mbuf` does (which is Send); the raw
// pointers are just the storage DPDK's burst calls want.
unsafe impl<const N: usize> Send for Burst<N> {}

impl<const N: usize> Burst<N> {
    /// An empty burst.
    #[inline]
    pub fn new() -> Self {
        Burst {
            slots: [ptr::null_mut(); N],
            len: 0,
        }
    }

    /// Capacity, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when it holds `N` mbufs.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Adds `m` at the end, or hands it back when full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        match self.slots.get_mut(self.len) {
            Some(slot) => {
                *slot = m.into_raw();
                self.len += 1;
                Ok(())
            }
            None => Err(m),
        }
    }

    /// Takes the last mbuf out.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        let i = self.len.checked_sub(1)?;
        self.len = i;
        // SAFETY: slot i was below len, so it held an owned mbuf; len no longer
        // covers it, so ownership moves out exactly once.
        Some(unsafe { Mbuf::from_raw(self.slots[i]) })
    }

    /// The mbufs held, in order (for stages that loop over a whole burst).
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        let held = &self.slots[..self.len];
        // SAFETY: Mbuf is a repr(transparent) NonNull<rte_mbuf>, which has the
        // layout of *mut rte_mbuf, and every held slot is a non-NULL owned mbuf.
        unsafe { std::slice::from_raw_parts(held.as_ptr().cast::<Mbuf>(), held.len()) }
    }

    /// The mbufs held, writable. Swapping or replacing elements keeps every
    /// slot an owned mbuf, so the burst stays valid.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        let held = &mut self.slots[..self.len];
        // SAFETY: as in `as_slice`; the &mut borrow of self makes it exclusive.
        unsafe { std::slice::from_raw_parts_mut(held.as_mut_ptr().cast::<Mbuf>(), held.len()) }
    }

    /// Takes every mbuf out, in order. Those the iterator is dropped before
    /// reaching are freed.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_, N> {
        let end = self.len;
        // If the Drain is leaked the mbufs leak too, but are never freed twice.
        self.len = 0;
        Drain {
            burst: self,
            pos: 0,
            end,
        }
    }

    /// Frees every mbuf held (one bulk call).
    #[inline]
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: slots[..len] are owned mbufs; after the call len is 0 so
        // they are never touched again. (A burst is never 2^32 mbufs long.)
        unsafe { sluice_ffi::sluice_pktmbuf_free_bulk(self.slots.as_mut_ptr(), self.len as u32) };
        self.len = 0;
    }

    /// Pointer to the first spare slot.
    #[inline]
    pub(super) fn spare_ptr(&mut self) -> *mut *mut rte_mbuf {
        // SAFETY: len <= N, so the pointer is in bounds or one past the end.
        unsafe { self.slots.as_mut_ptr().add(self.len) }
    }

    /// Room for more mbufs.
    #[inline]
    pub(super) fn spare(&self) -> usize {
        N - self.len
    }

    /// Counts `n` more slots, just written by DPDK, as held.
    ///
    /// # Safety
    /// The `n` slots after the held ones must now hold owned mbufs, and
    /// `n <= self.spare()`.
    #[inline]
    pub(super) unsafe fn assume_filled(&mut self, n: usize) {
        self.len += n;
    }

    /// Pointer to the held mbufs, for tx.
    #[inline]
    pub(super) fn held_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.slots.as_mut_ptr()
    }

    /// Forgets the first `n` held mbufs (they have been handed to a PMD) and
    /// moves the rest to the front, in order.
    #[inline]
    pub(super) fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.slots.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<const N: usize> std::fmt::Debug for Burst<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst")
            .field("len", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

/// Iterator from [`Burst::drain`]: yields each mbuf once, in order, and frees
/// any left when dropped.
pub struct Drain<'a, const N: usize> {
    burst: &'a mut Burst<N>,
    pos: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.pos >= self.end {
            return None;
        }
        let p = *self.burst.slots.get(self.pos)?;
        self.pos += 1;
        // SAFETY: slots[pos..end] are the owned mbufs the burst held when the
        // drain started; each is yielded once (pos only grows).
        Some(unsafe { Mbuf::from_raw(p) })
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.pos;
        (n, Some(n))
    }
}

impl<const N: usize> ExactSizeIterator for Drain<'_, N> {}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = self.end.saturating_sub(self.pos);
        let Some(left) = self.burst.slots.get_mut(self.pos..self.end) else {
            return;
        };
        if rest == 0 {
            return;
        }
        // SAFETY: slots[pos..end] are owned mbufs not yet yielded; after this
        // nothing refers to them (the burst's len is already 0).
        unsafe { sluice_ffi::sluice_pktmbuf_free_bulk(left.as_mut_ptr(), rest as u32) };
        self.pos = self.end;
    }
}
