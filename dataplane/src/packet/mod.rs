//! The packet buffer every stage works on, and the per-packet metadata.
//!
//! Stages never see DPDK: they take any [`PacketBuf`]. The DPDK [`crate::dpdk::Mbuf`]
//! implements it for the real switch; [`HeapBuf`] implements it for unit tests, fuzzing
//! and criterion benches. A buffer is one contiguous segment: multi-segment mbufs are
//! dropped before any stage sees them (`DropReason::ChainedMbuf`).

mod heap;

pub use heap::HeapBuf;

/// A frame in a buffer with headroom in front of it.
///
/// Every method is panic-free: an operation that does not fit returns `false` and
/// leaves the buffer unchanged.
pub trait PacketBuf {
    /// The frame bytes.
    fn data(&self) -> &[u8];
    /// The frame bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes in front of the frame.
    fn headroom(&self) -> usize;
    /// Grows the frame by `n` bytes at the front (the new bytes are unspecified).
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end.
    fn trim(&mut self, n: usize) -> bool;
    /// Grows the frame by `n` bytes at the end (the new bytes are unspecified).
    fn append(&mut self, n: usize) -> bool;
    /// Makes the frame exactly `len` bytes long, growing or trimming at the end.
    #[inline]
    fn resize(&mut self, len: usize) -> bool {
        let cur = self.len();
        if len >= cur {
            self.append(len - cur)
        } else {
            self.trim(cur - len)
        }
    }
    /// The receive-side flow hash computed by the NIC (RSS), when it set one.
    fn rss_hash(&self) -> Option<u32> {
        None
    }
    /// Frame length in bytes.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for an empty frame.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
