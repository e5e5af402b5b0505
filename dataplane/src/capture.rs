//! Live packet capture (dpdk-pdump / ovs-tcpdump style) without stopping traffic.
//!
//! Control starts a capture of one port and direction(s) by filling a free list with
//! preallocated frame buffers and switching the shared state word on. A worker loads the
//! word once per rx burst and once per tx flush; only when it matches does it copy the
//! burst's frames into buffers taken from the free list and queue them for control,
//! which writes them out (pcapng) and gives the buffers back. No free buffer means the
//! copy is not made and counted in [`CaptureControl::drops`] — a capture drop, never a
//! traffic drop: the packet itself is forwarded as usual.
//!
//! Thread-safety: `state` is written by control only (start/stop), read by workers;
//! `free` and `full` are crossbeam ArrayQueues (workers pop free / push full, control the
//! reverse). Workers never allocate or free: buffers are allocated and dropped by control.
//! A frame carries the generation of the capture it was copied for, so a copy made just
//! before a stop is recognised when the next capture runs.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::tables::PortIdx;

/// Most frame buffers one capture uses (its queue depth).
pub const CAPTURE_SLOTS: usize = 1024;
/// Largest frame bytes a buffer keeps (longer frames are truncated, with their length).
pub const CAPTURE_SNAPLEN_MAX: usize = 16384;

/// Which way a captured frame went through its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CaptureDir {
    Rx = 1,
    Tx = 2,
}

/// One copied frame.
#[derive(Debug)]
pub struct CapturedFrame {
    /// The capture it was copied for.
    pub generation: u16,
    pub port: PortIdx,
    pub dir: CaptureDir,
    /// The worker's TSC when copied.
    pub tsc: u64,
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Bytes copied into `data`.
    pub len: u32,
    pub data: Box<[u8]>,
}

impl CapturedFrame {
    /// A buffer keeping up to `snaplen` bytes.
    pub fn with_snaplen(snaplen: usize) -> Box<CapturedFrame> {
        Box::new(CapturedFrame {
            generation: 0,
            port: 0,
            dir: CaptureDir::Rx,
            tsc: 0,
            orig_len: 0,
            len: 0,
            data: vec![0; snaplen.clamp(1, CAPTURE_SNAPLEN_MAX)].into_boxed_slice(),
        })
    }

    /// The copied bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.get(..self.len as usize).unwrap_or(&[])
    }
}

const DIR_SHIFT: u32 = 16;
const GEN_SHIFT: u32 = 32;

/// The capture switch and the buffer queues shared by control and the workers.
#[derive(Debug)]
pub struct CaptureControl {
    /// 0: off; else generation << 32 | directions << 16 | port.
    state: AtomicU64,
    free: ArrayQueue<Box<CapturedFrame>>,
    full: ArrayQueue<Box<CapturedFrame>>,
    drops: AtomicU64,
    copied: AtomicU64,
    /// The generation of the last capture started.
    last_generation: AtomicU64,
}

impl Default for CaptureControl {
    fn default() -> Self {
        Self::new()
    }
}

impl CaptureControl {
    /// Off; the queues are allocated here (empty), the buffers at [`start`](Self::start).
    pub fn new() -> Self {
        CaptureControl {
            state: AtomicU64::new(0),
            // Twice the buffers a capture makes: a worker may still hold a buffer of the
            // previous capture when the next one starts, and a push must never fail on
            // the worker (the buffer would be freed there).
            free: ArrayQueue::new(2 * CAPTURE_SLOTS),
            full: ArrayQueue::new(2 * CAPTURE_SLOTS),
            drops: AtomicU64::new(0),
            copied: AtomicU64::new(0),
            last_generation: AtomicU64::new(0),
        }
    }

    /// Starts capturing `port` in the directions `rx`/`tx` into `slots` buffers of
    /// `snaplen` bytes (control side; allocates). Returns the capture's generation.
    pub fn start(&self, port: PortIdx, rx: bool, tx: bool, slots: usize, snaplen: usize) -> u16 {
        self.stop();
        while self.full.pop().is_some() {}
        while self.free.pop().is_some() {}
        for _ in 0..slots.clamp(1, CAPTURE_SLOTS) {
            let _ = self.free.push(CapturedFrame::with_snaplen(snaplen));
        }
        self.drops.store(0, Ordering::Relaxed);
        self.copied.store(0, Ordering::Relaxed);
        // Never 0, so a running capture's state word is never 0.
        let generation = (self.last_generation.fetch_add(1, Ordering::Relaxed) % 0xffff + 1) as u16;
        let dirs = (u64::from(rx) * CaptureDir::Rx as u64) | (u64::from(tx) * CaptureDir::Tx as u64);
        self.state.store((u64::from(generation) << GEN_SHIFT) | (dirs << DIR_SHIFT) | u64::from(port), Ordering::Release);
        generation
    }

    /// Stops copying (workers see it at their next burst).
    pub fn stop(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// Whether a capture runs.
    pub fn active(&self) -> bool {
        self.state.load(Ordering::Acquire) != 0
    }

    /// The generation to copy `port`'s `dir` frames under, if the running capture wants
    /// them: the per-burst check (one load).
    #[inline(always)]
    pub fn wants(&self, port: PortIdx, dir: CaptureDir) -> Option<u16> {
        let s = self.state.load(Ordering::Relaxed);
        (s != 0 && (s & 0xffff) as PortIdx == port && (s >> DIR_SHIFT) & dir as u64 != 0).then_some((s >> GEN_SHIFT) as u16)
    }

    /// Copies `frames` (worker side): each into a free buffer, queued for control; a
    /// frame without a free buffer is a capture drop.
    #[cold]
    pub fn offer<'a>(&self, generation: u16, port: PortIdx, dir: CaptureDir, tsc: u64, frames: impl Iterator<Item = &'a [u8]>) {
        let (mut copied, mut dropped) = (0u64, 0u64);
        for f in frames {
            let Some(mut b) = self.free.pop() else {
                dropped += 1;
                continue;
            };
            let n = f.len().min(b.data.len());
            if let (Some(dst), Some(src)) = (b.data.get_mut(..n), f.get(..n)) {
                dst.copy_from_slice(src);
            }
            b.generation = generation;
            b.port = port;
            b.dir = dir;
            b.tsc = tsc;
            b.orig_len = f.len() as u32;
            b.len = n as u32;
            // Never full: it has room for twice the buffers there are.
            if let Err(b) = self.full.push(b) {
                let _ = self.free.push(b);
                dropped += 1;
                continue;
            }
            copied += 1;
        }
        if copied > 0 {
            self.copied.fetch_add(copied, Ordering::Relaxed);
        }
        if dropped > 0 {
            self.drops.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// The next copied frame (control side).
    pub fn take(&self) -> Option<Box<CapturedFrame>> {
        self.full.pop()
    }

    /// Returns a buffer to the free list (control side).
    pub fn give_back(&self, b: Box<CapturedFrame>) {
        // While stopped the buffer is not needed any more, nor one of an earlier capture
        // (its snaplen may differ): dropped here, on control.
        let s = self.state.load(Ordering::Acquire);
        if s != 0 && (s >> GEN_SHIFT) as u16 == b.generation {
            let _ = self.free.push(b);
        }
    }

    /// Frames not copied for lack of a free buffer, since the capture started.
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Frames copied since the capture started.
    pub fn copied(&self) -> u64 {
        self.copied.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_the_wanted_port_and_direction_and_counts_drops() {
        let c = CaptureControl::new();
        assert_eq!(c.wants(0, CaptureDir::Rx), None);
        let g = c.start(2, true, false, 2, 4);
        assert_eq!(c.wants(2, CaptureDir::Rx), Some(g));
        assert_eq!(c.wants(2, CaptureDir::Tx), None);
        assert_eq!(c.wants(1, CaptureDir::Rx), None);
        let frames: [&[u8]; 3] = [&[1, 2, 3, 4, 5, 6], &[7], &[8]];
        c.offer(g, 2, CaptureDir::Rx, 99, frames.into_iter());
        assert_eq!((c.copied(), c.drops()), (2, 1), "two buffers: the third frame is a capture drop");
        let a = c.take().unwrap();
        assert_eq!((a.bytes(), a.orig_len, a.tsc, a.generation), (&[1u8, 2, 3, 4][..], 6, 99, g), "truncated to the snaplen");
        c.give_back(a);
        let b = c.take().unwrap();
        assert_eq!(b.bytes(), &[7]);
        assert!(c.take().is_none());
        c.stop();
        assert_eq!(c.wants(2, CaptureDir::Rx), None);
        c.give_back(b);
        let g2 = c.start(2, false, true, 1, 64);
        assert_ne!(g, g2);
        assert_eq!(c.wants(2, CaptureDir::Tx), Some(g2));
        assert_eq!((c.copied(), c.drops()), (0, 0));
    }
}
