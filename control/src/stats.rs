//! Counters as reports: the live rate line, the final summary and `--stats-json`.
//!
//! Control only reads the workers' single-writer counters (see
//! `sluice_dataplane::worker::stats`); it never writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_dataplane::dpdk::{EthPort, QUEUE_STAT_COUNTERS};
use sluice_dataplane::worker::stats::PortCounters;
use sluice_dataplane::worker::{Counter, Shared, WorkerStats};
use sluice_dataplane::DropReason;


use crate::plan::Plan;

/// Drop counts by reason name (only non-zero reasons).
pub type Drops = BTreeMap<String, u64>;

fn drops_of(w: &WorkerStats) -> Drops {
    DropReason::ALL
        .iter()
        .filter_map(|r| match w.drops[*r as usize].get() {
            0 => None,
            n => Some((r.name().to_string(), n)),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct WorkerReport {
    pub id: usize,
    pub core: usize,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub drops: Drops,
    pub mac_learned: u64,
    pub mac_moved: u64,
    pub mac_aged: u64,
    pub fdb_full: u64,
    pub fdb_entries: u64,
    pub flooded: u64,
    pub learn_overflow: u64,
    pub routed: u64,
    pub arp_replies: u64,
    pub nd_replies: u64,
    pub echo_replies: u64,
    pub dhcp_replies: u64,
    pub icmp_errors: u64,
    pub icmp_suppressed: u64,
    /// Connections in the flow table now, and created/expired/evicted/re-decided so far.
    #[serde(default)]
    pub flows: u64,
    /// Most connections the worker's table holds (`flows.max_per_worker`): `flows` over
    /// this is how full it is; at 1.0 every new connection evicts one.
    #[serde(default)]
    pub flows_capacity: u64,
    #[serde(default)]
    pub flows_created: u64,
    #[serde(default)]
    pub flows_expired: u64,
    #[serde(default)]
    pub flows_evicted: u64,
    #[serde(default)]
    pub flows_redecided: u64,
    #[serde(default)]
    pub policy_logged: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    /// Busy cycles per received packet.
    pub cycles_per_packet: f64,
    /// Loop iterations.
    #[serde(default)]
    pub loops: u64,
    /// Packets per second over the show interval (show views only; 0 elsewhere).
    #[serde(default)]
    pub rx_pps: f64,
    #[serde(default)]
    pub tx_pps: f64,
    /// Share of the interval's cycles spent in loops that received packets (show views).
    #[serde(default)]
    pub busy_pct: f64,
}

/// The device's own counters (rte_eth_stats).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct EthdevReport {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// One rx queue of a port: what the workers received from it, and the device's own
/// per-queue counters (`q_ipackets`/`q_ibytes`; zero for drivers that do not keep them,
/// and for queues past the 16 DPDK counts).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct RxQueueReport {
    pub queue: u16,
    /// The worker that polls it (None: not polled).
    pub worker: Option<usize>,
    pub packets: u64,
    pub bytes: u64,
    pub ethdev_packets: u64,
    pub ethdev_bytes: u64,
    /// Packets per second over the show interval (show views only).
    #[serde(default)]
    pub rx_pps: f64,
}

/// One tx queue of a port: queue *i* is worker *i*'s.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct TxQueueReport {
    pub queue: u16,
    pub worker: usize,
    pub packets: u64,
    pub bytes: u64,
    pub ethdev_packets: u64,
    pub ethdev_bytes: u64,
    #[serde(default)]
    pub tx_pps: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PortReport {
    pub name: String,
    pub device: String,
    pub driver: String,
    /// Packets the workers received from / handed to the port.
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Bytes the workers received from / handed to the port.
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
    pub ethdev: EthdevReport,
    #[serde(default)]
    pub rx_queues: Vec<RxQueueReport>,
    #[serde(default)]
    pub tx_queues: Vec<TxQueueReport>,
    /// Packets per second over the show interval (show views only).
    #[serde(default)]
    pub rx_pps: f64,
    #[serde(default)]
    pub tx_pps: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct MempoolReport {
    pub capacity: u32,
    /// Mbufs still out of the pool after every worker stopped and every port closed:
    /// anything but 0 is a leak.
    pub in_use_after_stop: u32,
    /// Mbufs out of the pool now (in rings, bursts and tx buffers; per-lcore caches
    /// count as free). Live reports only.
    #[serde(default)]
    pub in_use: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Totals {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub drops_total: u64,
    pub drops: Drops,
    /// Per second over the show interval (show views only).
    #[serde(default)]
    pub rx_pps: f64,
    #[serde(default)]
    pub tx_pps: f64,
    #[serde(default)]
    pub drop_pps: f64,
}

/// The whole final report (`--stats-json`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Report {
    pub version: String,
    /// From process start until every worker was polling.
    pub startup_ms: f64,
    /// From the workers' start until stop.
    pub duration_s: f64,
    pub totals: Totals,
    pub workers: Vec<WorkerReport>,
    pub ports: Vec<PortReport>,
    pub mempool: MempoolReport,
}

/// Summarises one worker's counters.
pub fn worker_report(id: usize, core: usize, w: &WorkerStats) -> WorkerReport {
    let rx = w.rx_packets.get();
    let busy = w.busy_cycles.get();
    WorkerReport {
        id,
        core,
        rx_packets: rx,
        tx_packets: w.tx_packets.get(),
        drops: drops_of(w),
        mac_learned: w.mac_learned.get(),
        mac_moved: w.mac_moved.get(),
        mac_aged: w.mac_aged.get(),
        fdb_full: w.fdb_full.get(),
        fdb_entries: w.fdb_entries.get(),
        flooded: w.flooded.get(),
        learn_overflow: w.learn_overflow.get(),
        routed: w.routed.get(),
        arp_replies: w.arp_replies.get(),
        nd_replies: w.nd_replies.get(),
        echo_replies: w.echo_replies.get(),
        dhcp_replies: w.dhcp_replies.get(),
        icmp_errors: w.icmp_errors.get(),
        icmp_suppressed: w.icmp_suppressed.get(),
        flows: w.flows.get(),
        flows_created: w.flows_created.get(),
        flows_expired: w.flows_expired.get(),
        flows_evicted: w.flows_evicted.get(),
        flows_redecided: w.flows_redecided.get(),
        policy_logged: w.policy_logged.get(),
        busy_cycles: busy,
        idle_cycles: w.idle_cycles.get(),
        cycles_per_packet: if rx == 0 { 0.0 } else { busy as f64 / rx as f64 },
        loops: w.loops.get(),
        ..Default::default()
    }
}

/// The device's and the workers' counters of port `i` (in plan order), since it was added.
pub fn port_report(i: usize, plan: &Plan, port: &EthPort, shared: &Shared) -> PortReport {
    let s = port.stats();
    let pp = &plan.ports[i];
    let slot = pp.idx as usize;
    let sum = |f: fn(&PortCounters) -> &Counter| -> u64 { shared.stats.iter().filter_map(|w| w.ports.get(slot)).map(|c| f(c).get()).sum() };
    let q = |a: &[u64; QUEUE_STAT_COUNTERS], q: usize| a.get(q).copied().unwrap_or(0);
    let rx_queues = (0..pp.rx_queues)
        .map(|qi| {
            let (packets, bytes) = shared
                .stats
                .iter()
                .filter_map(|w| w.rx_queue(slot, qi as usize))
                .fold((0, 0), |(p, b), c| (p + c.packets.get(), b + c.bytes.get()));
            RxQueueReport {
                queue: qi,
                worker: plan.workers.iter().position(|w| w.rx.contains(&(pp.idx, qi))),
                packets,
                bytes,
                ethdev_packets: q(&s.q_ipackets, qi as usize),
                ethdev_bytes: q(&s.q_ibytes, qi as usize),
                rx_pps: 0.0,
            }
        })
        .collect();
    let tx_queues = shared
        .stats
        .iter()
        .enumerate()
        .filter_map(|(wi, w)| w.ports.get(slot).map(|c| (wi, c)))
        .map(|(wi, c)| TxQueueReport {
            queue: wi as u16,
            worker: wi,
            packets: c.tx_packets.get(),
            bytes: c.tx_bytes.get(),
            ethdev_packets: q(&s.q_opackets, wi),
            ethdev_bytes: q(&s.q_obytes, wi),
            tx_pps: 0.0,
        })
        .collect();
    PortReport {
        name: pp.name.clone(),
        device: pp.device.clone(),
        driver: port.info().map(|d| d.driver).unwrap_or_default(),
        rx_packets: sum(|c| &c.rx_packets),
        tx_packets: sum(|c| &c.tx_packets),
        rx_bytes: sum(|c| &c.rx_bytes),
        tx_bytes: sum(|c| &c.tx_bytes),
        rx_queues,
        tx_queues,
        rx_pps: 0.0,
        tx_pps: 0.0,
        ethdev: EthdevReport {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        },
    }
}

/// Every worker's and port's counters now. `startup_ms`, `duration_s` and the mempool's
/// leak figure are the caller's to fill in.
pub fn report(plan: &Plan, shared: &Shared, ports: &[EthPort]) -> Report {
    let flows_capacity = u64::from(shared.flows.capacity);
    let workers: Vec<_> = plan
        .workers
        .iter()
        .enumerate()
        .map(|(i, wp)| WorkerReport { flows_capacity, ..worker_report(i, wp.core, &shared.stats[i]) })
        .collect();
    Report {
        version: env!("CARGO_PKG_VERSION").into(),
        totals: totals(&workers),
        workers,
        ports: ports.iter().enumerate().map(|(i, p)| port_report(i, plan, p, shared)).collect(),
        mempool: MempoolReport { capacity: shared.pool.capacity(), in_use_after_stop: 0, in_use: shared.pool.in_use() },
        ..Default::default()
    }
}

/// Sums workers into totals.
pub fn totals(workers: &[WorkerReport]) -> Totals {
    let mut t = Totals::default();
    for w in workers {
        t.rx_packets += w.rx_packets;
        t.tx_packets += w.tx_packets;
        for (k, v) in &w.drops {
            *t.drops.entry(k.clone()).or_default() += v;
            t.drops_total += v;
        }
    }
    t
}

/// Rates between two samples of (rx, tx, drops) totals `dt` seconds apart.
pub fn rate_line(prev: (u64, u64, u64), now: (u64, u64, u64), dt: f64) -> String {
    let mpps = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / dt / 1e6;
    format!(
        "rx {:8.3} Mpps  tx {:8.3} Mpps  drop {:8.3} Mpps  (total rx {} tx {} drop {})",
        mpps(prev.0, now.0),
        mpps(prev.1, now.1),
        mpps(prev.2, now.2),
        now.0,
        now.1,
        now.2
    )
}

/// A human summary of the final report.
pub fn summary(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "sluice stopped after {:.2} s (startup {:.0} ms)", r.duration_s, r.startup_ms);
    let _ = writeln!(
        s,
        "  total: rx {} tx {} dropped {} ({:.3} Mpps rx average)",
        r.totals.rx_packets,
        r.totals.tx_packets,
        r.totals.drops_total,
        if r.duration_s > 0.0 { r.totals.rx_packets as f64 / r.duration_s / 1e6 } else { 0.0 }
    );
    for (k, v) in &r.totals.drops {
        let _ = writeln!(s, "    drop {k:<18} {v}");
    }
    for w in &r.workers {
        let _ = writeln!(
            s,
            "  worker {} (cpu {}): rx {} tx {} drops {} learned {} flooded {} routed {} answered {} icmp-errors {} cycles/pkt {:.1}",
            w.id,
            w.core,
            w.rx_packets,
            w.tx_packets,
            w.drops.values().sum::<u64>(),
            w.mac_learned,
            w.flooded,
            w.routed,
            w.arp_replies + w.nd_replies + w.echo_replies + w.dhcp_replies,
            w.icmp_errors,
            w.cycles_per_packet
        );
    }
    for p in &r.ports {
        let _ = writeln!(
            s,
            "  port {} ({}): rx {} tx {} | device ipackets {} opackets {} imissed {} oerrors {}",
            p.name, p.driver, p.rx_packets, p.tx_packets, p.ethdev.ipackets, p.ethdev.opackets, p.ethdev.imissed, p.ethdev.oerrors
        );
    }
    let _ = writeln!(s, "  mempool: {} mbufs, {} in use after stop", r.mempool.capacity, r.mempool.in_use_after_stop);
    s
}
