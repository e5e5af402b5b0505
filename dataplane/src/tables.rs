//! The immutable snapshot that control builds and publishes to the workers.
//!
//! Thread-safety: a `Tables` is never mutated after publication. Control builds a new
//! one and swaps it into the shared [`TablesHandle`]; a worker loads the pointer once per
//! loop iteration and compares `epoch` to notice a change (it then re-seeds its own
//! per-worker state, such as static MAC entries). No lock is taken on either side.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::l2::L2Tables;

/// Dense index of a port in [`Tables::ports`] (not the DPDK port id).
pub type PortIdx = u16;

/// What the dataplane knows about one port.
#[derive(Clone, Debug)]
pub struct PortEntry {
    /// Operator-given name.
    pub name: String,
    /// Largest untagged frame accepted on ingress (MTU + 14); a tag adds 4.
    pub max_frame_len: u32,
}

/// One published generation of everything the workers read.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// Generation number; strictly increases with every publish.
    pub epoch: u64,
    /// Ports by [`PortIdx`].
    pub ports: Box<[PortEntry]>,
    /// Bridges, bridge domains and port VLAN modes.
    pub l2: L2Tables,
}

/// The shared slot that holds the current [`Tables`] (RCU by `arc-swap`).
#[derive(Debug)]
pub struct TablesHandle(ArcSwap<Tables>);

impl TablesHandle {
    pub fn new(t: Tables) -> Self {
        TablesHandle(ArcSwap::from_pointee(t))
    }
    /// The current snapshot. Cheap; call once per burst.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Tables>> {
        self.0.load()
    }
    /// The current snapshot as an owned `Arc` (for holding across bursts).
    pub fn load_full(&self) -> Arc<Tables> {
        self.0.load_full()
    }
    /// Publishes `t`, giving it the next epoch. Workers see it on their next burst.
    pub fn publish(&self, mut t: Tables) -> u64 {
        let epoch = self.0.load().epoch + 1;
        t.epoch = epoch;
        self.0.store(Arc::new(t));
        epoch
    }
}
