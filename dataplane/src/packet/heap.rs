//! A plain heap buffer with headroom: the `PacketBuf` of tests and benches.

use super::PacketBuf;

/// Default headroom, the same as DPDK's `RTE_PKTMBUF_HEADROOM`.
pub const DEFAULT_HEADROOM: usize = 128;

/// A frame in a `Vec<u8>` with headroom in front, like an mbuf without DPDK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeapBuf {
    buf: Vec<u8>,
    start: usize,
}

impl HeapBuf {
    /// A buffer holding `frame` behind [`DEFAULT_HEADROOM`] bytes of headroom.
    pub fn new(frame: &[u8]) -> Self {
        Self::with_headroom(frame, DEFAULT_HEADROOM)
    }

    /// A buffer holding `frame` behind `headroom` bytes of headroom.
    pub fn with_headroom(frame: &[u8], headroom: usize) -> Self {
        let mut buf = vec![0u8; headroom + frame.len()];
        buf[headroom..].copy_from_slice(frame);
        HeapBuf { buf, start: headroom }
    }
}

impl PacketBuf for HeapBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
    #[inline]
    fn headroom(&self) -> usize {
        self.start
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        self.buf.resize(self.buf.len() + n, 0);
        true
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.buf.truncate(self.buf.len() - n);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_adj_trim_stay_in_bounds() {
        let mut b = HeapBuf::with_headroom(&[1, 2, 3, 4], 2);
        assert!(b.prepend(2));
        assert_eq!(b.len(), 6);
        assert!(!b.prepend(1), "no headroom left");
        assert!(b.adj(3));
        assert_eq!(b.data(), &[2, 3, 4]);
        assert!(!b.adj(4));
        assert!(b.trim(1));
        assert_eq!(b.data(), &[2, 3]);
        assert!(!b.trim(3));
        assert_eq!(b.headroom(), 3);
        assert!(b.resize(5));
        assert_eq!(b.data(), &[2, 3, 0, 0, 0]);
        assert!(b.resize(1));
        assert_eq!(b.data(), &[2]);
    }
}
