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
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per-port counters of one worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: Counter,
    pub tx_packets: Counter,
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerStats {
    pub rx_packets: Counter,
    pub tx_packets: Counter,
    pub drops: [Counter; DropReason::COUNT],
    /// Indexed by `PortIdx`.
    pub ports: Box<[PortCounters]>,
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

    /// Total drops over every reason.
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}
