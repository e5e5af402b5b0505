//! An owned packet mbuf.

use std::ptr::NonNull;

use sluice_ffi::{rte_mbuf, SLUICE_MBUF_F_RX_RSS_HASH};

use super::Mempool;
use crate::packet::PacketBuf;

/// One owned packet mbuf; dropping it returns it to its pool.
///
/// The frame is the first segment: `data()` is `data_len` bytes from
/// `buf_addr + data_off`. Stages only ever see single-segment mbufs (chains
/// are dropped on rx), and the length-changing operations keep `data_len` and
/// `pkt_len` in step.
///
/// Thread-safety: `Send` (ownership moves between threads with the packet), not
/// `Sync`.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an Mbuf is the sole owner of its mbuf; freeing it from another thread
// is allowed by DPDK (the pool is MP/MC safe). Nothing in it is thread-bound.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must be a valid, non-NULL packet mbuf from a pktmbuf pool that is
    /// owned by the caller and handed over: nothing else may use or free it
    /// afterwards, and its data must not be reachable through another mbuf
    /// (refcnt 1, not attached to or by an indirect mbuf).
    #[inline]
    pub unsafe fn from_raw(p: *mut rte_mbuf) -> Mbuf {
        // SAFETY: the caller promises `p` is non-NULL.
        Mbuf(unsafe { NonNull::new_unchecked(p) })
    }

    /// Gives up ownership; the caller must free or hand over the mbuf.
    #[inline]
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The raw mbuf, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: the mbuf is valid and owned by self for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut rte_mbuf {
        // SAFETY: as in `raw`, and `&mut self` makes this the only access.
        unsafe { self.0.as_mut() }
    }

    /// Number of segments in the chain.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// True when the whole packet is in the first segment.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// The port the mbuf was received on (as set by the PMD).
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Free bytes behind the frame in the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        usize::from(m.buf_len).saturating_sub(usize::from(m.data_off) + usize::from(m.data_len))
    }

    /// Grows the frame by `n` bytes at the tail (contents unspecified). False,
    /// and no change, when the tailroom is short or the mbuf is chained.
    #[inline]
    pub fn append(&mut self, n: usize) -> bool {
        if !self.is_contiguous() || n > self.tailroom() {
            return false;
        }
        let m = self.raw_mut();
        // n <= tailroom <= buf_len (u16), so neither length overflows.
        let n16 = n as u16;
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        true
    }

    /// Appends a copy of `bytes` at the tail (for building frames). False, and
    /// no change, when it does not fit.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> bool {
        let old = self.raw().data_len as usize;
        if !self.append(bytes.len()) {
            return false;
        }
        self.data_mut()[old..].copy_from_slice(bytes);
        true
    }

    /// A deep copy (data and packet metadata) in a fresh mbuf from `pool`, with
    /// the same headroom when it fits. `None` when the pool is empty.
    pub fn copy(&self, pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: self is a valid mbuf we only read; the pool is alive. The shim
        // returns a fresh mbuf (chain) nobody else holds, or NULL.
        let c =
            unsafe { sluice_ffi::sluice_pktmbuf_copy(self.0.as_ptr(), pool.as_ptr(), 0, u32::MAX) };
        // SAFETY: non-NULL results are fresh, exclusively owned mbufs.
        NonNull::new(c).map(|c| unsafe { Mbuf::from_raw(c.as_ptr()) })
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain); it is not used after this.
        unsafe { sluice_ffi::sluice_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl PacketBuf for Mbuf {
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        Mbuf::append(self, n)
    }

    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        let start = data_start(m);
        // SAFETY: DPDK keeps data_off + data_len <= buf_len (and so do all our
        // setters), so the range is inside the mbuf's buffer and initialised
        // (PMD-written, or written through data_mut). The borrow of self keeps
        // the buffer alive and unchanged.
        unsafe { std::slice::from_raw_parts(start, usize::from(m.data_len)) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        let start = data_start(m);
        // SAFETY: as in `data`; `&mut self` and the from_raw contract (no other
        // mbuf shares this buffer) make the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(start, usize::from(m.data_len)) }
    }

    #[inline]
    fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > usize::from(m.data_off) {
            return false;
        }
        // n <= data_off, and data_off + data_len <= buf_len fits u16.
        let n16 = n as u16;
        m.data_off -= n16;
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        true
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > usize::from(m.data_len) {
            return false;
        }
        let n16 = n as u16;
        m.data_off += n16;
        m.data_len -= n16;
        m.pkt_len -= u32::from(n16);
        true
    }

    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        // In a chain the tail is in the last segment; stages never see chains.
        if !self.is_contiguous() {
            return false;
        }
        let m = self.raw_mut();
        if n > usize::from(m.data_len) {
            return false;
        }
        let n16 = n as u16;
        m.data_len -= n16;
        m.pkt_len -= u32::from(n16);
        true
    }

    #[inline]
    fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & SLUICE_MBUF_F_RX_RSS_HASH == 0 {
            return None;
        }
        // SAFETY: the union holds plain integers only: any bit pattern is valid.
        let hash = unsafe { m.__bindgen_anon_2.hash };
        // SAFETY: as above; the PMD sets RX_RSS_HASH after writing `rss`.
        Some(unsafe { hash.rss })
    }
}

/// First byte of the frame: `buf_addr + data_off`.
#[inline]
fn data_start(m: &rte_mbuf) -> *mut u8 {
    // SAFETY: data_off <= buf_len always holds for a valid mbuf, so the offset
    // stays inside the buffer buf_addr points at.
    unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) }
}
