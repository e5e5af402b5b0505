//! The immutable snapshot that control builds and publishes to the workers.
//!
//! Thread-safety: a `Tables` is never mutated after publication. Control builds a new
//! one and swaps it into the shared [`TablesHandle`]; a worker loads the pointer once per
//! loop iteration and compares `epoch` to notice a change (it then re-seeds its own
//! per-worker state, such as static MAC entries). No lock is taken on either side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::l2::L2Tables;
use crate::l3::L3Tables;

/// Index of a port's slot in [`Tables::ports`] (not the DPDK port id). A port keeps its
/// slot while others are added and removed; a freed slot is reused only after the removal
/// completed. Slots are below [`MAX_PORTS`].
pub type PortIdx = u16;

/// Most port slots (DPDK's `RTE_MAX_ETHPORTS`); per-port counters are sized for it.
pub const MAX_PORTS: usize = 32;

/// What the dataplane knows about one port. An empty slot has an empty name and a
/// `max_frame_len` of 0.
#[derive(Clone, Debug, Default)]
pub struct PortEntry {
    /// Operator-given name.
    pub name: String,
    /// Largest untagged frame accepted on ingress (MTU + 14); a tag adds 4.
    pub max_frame_len: u32,
}

/// One published generation of everything the workers read.
#[derive(Debug, Default)]
pub struct Tables {
    /// Generation number; strictly increases with every publish.
    pub epoch: u64,
    /// Ports by [`PortIdx`].
    pub ports: Box<[PortEntry]>,
    /// Bridges, bridge domains and port VLAN modes.
    pub l2: L2Tables,
    /// Generation of `l2`: moves only when the L2 tables differ from the previous
    /// snapshot's, so publishing routes or endpoints keeps the workers' learned MACs.
    pub l2_epoch: u64,
    /// Networks (VRFs), endpoints, uplinks.
    pub l3: L3Tables,
    /// Which queues each worker polls and sends on under this snapshot.
    pub io: IoMap,
}

/// Where every worker receives and sends, published with the tables so that adding or
/// removing a port (or moving nothing at all) is one more snapshot.
///
/// Thread-safety: immutable once published, like the rest of [`Tables`]. A worker reads
/// its own [`WorkerIo`] from the snapshot it holds; an rx queue appears in exactly one
/// worker's list, and a worker's tx queue on a port is the worker's index, so no queue
/// is ever used by two threads. Control only stops or closes a port after every worker
/// has acknowledged a snapshot whose map no longer names it (see
/// `worker::Shared::wait_quiescent`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoMap {
    /// By worker index.
    pub workers: Box<[WorkerIo]>,
}

/// One worker's share of the [`IoMap`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerIo {
    /// Rx queues to poll, in order.
    pub rx: Box<[RxAssign]>,
    /// DPDK port id behind each [`PortIdx`] this worker may send to (its tx queue there
    /// is the worker's index); `None`: no port in that slot (sending there drops as
    /// `port_down`).
    pub tx: Box<[Option<u16>]>,
}

/// One rx queue a worker polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxAssign {
    /// The port's slot in [`Tables::ports`].
    pub port: PortIdx,
    /// Its DPDK port id.
    pub dev: u16,
    /// Queue index on the device.
    pub queue: u16,
}

/// The shared slot that holds the current [`Tables`] (RCU by `arc-swap`).
///
/// Workers hold an `Arc` of the snapshot they use and poll [`epoch`](Self::epoch) (one
/// relaxed-cost load) once per loop; only when it moved do they load the new snapshot.
/// Publishing is for one writer (the control thread) at a time.
#[derive(Debug)]
pub struct TablesHandle {
    slot: ArcSwap<Tables>,
    epoch: AtomicU64,
}

impl TablesHandle {
    pub fn new(t: Tables) -> Self {
        let epoch = AtomicU64::new(t.epoch);
        TablesHandle { slot: ArcSwap::from_pointee(t), epoch }
    }
    /// The epoch of the newest published snapshot.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
    /// The current snapshot.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Tables>> {
        self.slot.load()
    }
    /// The current snapshot as an owned `Arc` (for holding across bursts).
    pub fn load_full(&self) -> Arc<Tables> {
        self.slot.load_full()
    }
    /// Publishes `t`, giving it the next epoch (and the next L2 epoch if its L2 tables
    /// changed). Workers see it on their next loop.
    pub fn publish(&self, mut t: Tables) -> u64 {
        let old = self.slot.load();
        let epoch = old.epoch + 1;
        t.epoch = epoch;
        t.l2_epoch = if t.l2 == old.l2 && old.epoch != 0 { old.l2_epoch } else { old.l2_epoch + 1 };
        drop(old);
        self.slot.store(Arc::new(t));
        // After the store: a worker that sees the new epoch finds the new snapshot.
        self.epoch.store(epoch, Ordering::Release);
        epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bumps_epoch_and_swaps_snapshot() {
        let h = TablesHandle::new(Tables::default());
        let held = h.load_full();
        assert_eq!((h.epoch(), held.epoch), (0, 0));
        let t = Tables { ports: vec![PortEntry { name: "p".into(), max_frame_len: 1514 }].into(), ..Default::default() };
        assert_eq!(h.publish(t), 1);
        assert_eq!(h.epoch(), 1);
        assert_eq!(h.load().ports.len(), 1);
        assert_eq!(held.ports.len(), 0, "a reader's snapshot never changes under it");
        let l2_epoch = h.load().l2_epoch;
        h.publish(Tables::default());
        assert_eq!(h.load().l2_epoch, l2_epoch, "same L2 tables: same L2 epoch");
        let mut t = Tables::default();
        t.l2.port_vlan = vec![crate::l2::PortVlan::Unbridged].into();
        h.publish(t);
        assert_eq!(h.load().l2_epoch, l2_epoch + 1, "changed L2 tables: next L2 epoch");
    }
}
