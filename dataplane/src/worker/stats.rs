//! Per-worker counters.
//!
//! Thread-safety: each `WorkerStats` has exactly one writer, its worker, which updates
//! counters with relaxed load + store (a plain add on x86, no locked instruction). Any
//! thread may read them at any time; a reader sees each counter monotonically but not
//! a consistent snapshot across counters. Padded to a cache line so workers never share
//! one.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::DropReason;

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Sets a gauge. Only the owning worker may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    /// Back to 0. Only while no worker writes it (e.g. a port slot outside every
    /// worker's I/O map, see `Shared::reset_port_counters`).
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per-port counters of one worker. `tx_*` are the counts of this worker's own tx queue
/// on the port (queue number = worker id).
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: Counter,
    pub tx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_bytes: Counter,
}

/// Most ports per-queue counters are kept for (DPDK's `RTE_MAX_ETHPORTS`): port indices
/// at or above it are counted per port only.
pub use crate::tables::MAX_PORTS;
/// Most rx queues per port counted per queue (queues at or above it are counted per
/// port only).
pub const MAX_RX_QUEUES: usize = 32;

/// Counters of one rx queue, as polled by one worker.
#[derive(Debug, Default)]
pub struct QueueCounters {
    pub packets: Counter,
    pub bytes: Counter,
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerStats {
    pub rx_packets: Counter,
    pub tx_packets: Counter,
    pub drops: [Counter; DropReason::COUNT],
    /// Indexed by `PortIdx`.
    pub ports: Box<[PortCounters]>,
    /// Per (port, rx queue) counts of what this worker received: `MAX_PORTS` ×
    /// `MAX_RX_QUEUES`, fixed, so ports and queues may come and go (see [`Self::rx_queue`]).
    pub rx_queues: Box<[QueueCounters]>,
    pub mac_learned: Counter,
    pub mac_moved: Counter,
    pub mac_aged: Counter,
    pub fdb_full: Counter,
    pub flooded: Counter,
    /// Gauge: entries in this worker's MAC table.
    pub fdb_entries: Counter,
    /// Routed packets, local answers and ICMP errors (see `l3::L3Counters`).
    pub routed: Counter,
    pub arp_replies: Counter,
    pub nd_replies: Counter,
    pub echo_replies: Counter,
    pub dhcp_replies: Counter,
    pub icmp_errors: Counter,
    pub icmp_suppressed: Counter,
    /// Gauge: connections in this worker's flow table.
    pub flows: Counter,
    /// Connections created, expired (idle timeout), evicted (table full), re-decided
    /// (after a publish), and matched by a `log` rule.
    pub flows_created: Counter,
    pub flows_expired: Counter,
    pub flows_evicted: Counter,
    pub flows_redecided: Counter,
    pub policy_logged: Counter,
    /// Learn events lost because a peer's inbox was full.
    pub learn_overflow: Counter,
    /// TSC cycles spent in loop iterations that received packets, and in empty ones.
    pub busy_cycles: Counter,
    pub idle_cycles: Counter,
    /// Loop iterations.
    pub loops: Counter,
}

impl WorkerStats {
    pub fn new(n_ports: usize) -> Self {
        WorkerStats {
            rx_packets: Counter::default(),
            tx_packets: Counter::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            ports: (0..n_ports).map(|_| PortCounters::default()).collect(),
            rx_queues: (0..MAX_PORTS * MAX_RX_QUEUES).map(|_| QueueCounters::default()).collect(),
            mac_learned: Counter::default(),
            mac_moved: Counter::default(),
            mac_aged: Counter::default(),
            fdb_full: Counter::default(),
            flooded: Counter::default(),
            fdb_entries: Counter::default(),
            routed: Counter::default(),
            arp_replies: Counter::default(),
            nd_replies: Counter::default(),
            echo_replies: Counter::default(),
            dhcp_replies: Counter::default(),
            icmp_errors: Counter::default(),
            icmp_suppressed: Counter::default(),
            flows: Counter::default(),
            flows_created: Counter::default(),
            flows_expired: Counter::default(),
            flows_evicted: Counter::default(),
            flows_redecided: Counter::default(),
            policy_logged: Counter::default(),
            learn_overflow: Counter::default(),
            busy_cycles: Counter::default(),
            idle_cycles: Counter::default(),
            loops: Counter::default(),
        }
    }

    /// Counts one drop.
    #[inline]
    pub fn drop_one(&self, reason: DropReason) {
        self.drops[reason as usize].add(1);
    }

    /// Zeroes port slot `port`'s counters and its rx queues' (see [`Counter::reset`]).
    pub fn reset_port(&self, port: usize) {
        if let Some(p) = self.ports.get(port) {
            for c in [&p.rx_packets, &p.tx_packets, &p.rx_bytes, &p.tx_bytes] {
                c.reset();
            }
        }
        for q in 0..MAX_RX_QUEUES {
            if let Some(c) = self.rx_queue(port, q) {
                c.packets.reset();
                c.bytes.reset();
            }
        }
    }

    /// The counters of rx queue `queue` of port `port` (None past the fixed maxima).
    #[inline]
    pub fn rx_queue(&self, port: usize, queue: usize) -> Option<&QueueCounters> {
        if port >= MAX_PORTS || queue >= MAX_RX_QUEUES {
            return None;
        }
        self.rx_queues.get(port * MAX_RX_QUEUES + queue)
    }

    /// Total drops over every reason.
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_counters_cover_every_dpdk_port_and_no_more() {
        assert_eq!(MAX_PORTS, crate::dpdk::MAX_PORTS, "sized for RTE_MAX_ETHPORTS");
        let w = WorkerStats::new(2);
        assert!(w.rx_queue(MAX_PORTS - 1, MAX_RX_QUEUES - 1).is_some());
        assert!(w.rx_queue(MAX_PORTS, 0).is_none() && w.rx_queue(0, MAX_RX_QUEUES).is_none());
        w.rx_queue(3, 1).unwrap().packets.add(5);
        assert_eq!(w.rx_queue(3, 1).unwrap().packets.get(), 5);
        assert_eq!(w.rx_queue(1, 3).unwrap().packets.get(), 0, "(port, queue) slots are distinct");
    }
}
