//! The polling worker: one pinned thread that owns its rx queues, one tx queue on every
//! port, its pipeline state and its counters, and runs each burst to completion.
//!
//! Loop (DPDK l3fwd style): load the published tables, apply MACs learned by peers,
//! then for each owned rx queue: rx burst → pipeline → per-port tx buffers, flushed at
//! the end of the burst. A full tx queue drops and counts (`tx_full`); nothing blocks.
//! On stop: flush what is buffered, free every mbuf it holds, unregister from DPDK.
//!
//! Which queues a worker polls and sends on is not fixed at start: it comes from the
//! published snapshot's I/O map (`Tables::io`), reloaded with the tables when the epoch
//! moves, between bursts. After switching, the worker stores the epoch in its
//! `Shared::seen` slot; at that point its tx buffers are empty (they are flushed after
//! every burst), so control knows that no worker still touches a port that the
//! snapshot dropped and may stop, close and detach it (quiescent-state reclamation).

pub mod dump;
pub mod stats;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use crate::capture::{CaptureControl, CaptureDir};
use crate::dpdk::{self, Burst, Mbuf, Mempool, PortId, RxQueue, TxQueue};
use crate::flow::FlowConfig;
use crate::l2::LearnEvent;
use crate::l3::conn::FlowAction;
use crate::pipeline::{Egress, Pipeline};
use crate::tables::{PortIdx, TablesHandle, WorkerIo};
use crate::trace::TraceControl;
use crate::DropReason;
pub use dump::{DumpCursor, FlowDump, FlowSummary, DUMP_BUDGET, DUMP_QUEUE};
pub use stats::{Counter, QueueCounters, WorkerStats, MAX_PORTS, MAX_RX_QUEUES};

/// Packets per rx burst. 64 rather than testpmd's and OVS's 32: a loaded queue pays the
/// loop's per-burst work (stats, snapshot epoch, aging, dumps) half as often, and the
/// pipeline takes the burst in chunks of 32 anyway (December 7: 64k flows, six pairs of
/// system runs, median 13.27 vs 12.86 Mpps; 1k flows a tie). An idle queue returns what
/// it has, so latency at low load does not change.
pub const RX_BURST: usize = 64;
/// Packets buffered per output port before a forced flush.
pub const TX_BUFFER: usize = 64;
/// Learn events a worker's inbox holds.
pub const LEARN_INBOX: usize = 4096;
/// How often a worker ages its MAC table.
const AGING_INTERVAL_MS: u64 = 1000;
/// Flow entries an idle-timeout sweep may touch per loop (bounds the loop's latency).
const EXPIRE_BUDGET: u32 = 64;

/// What one worker is. Its queues come from the published I/O map (`Tables::io`).
#[derive(Debug)]
pub struct WorkerSpec {
    /// Worker index (also its tx queue number on every port, and its entry in the
    /// I/O map).
    pub id: usize,
    /// CPU to pin to; `None` leaves the thread unpinned.
    pub core: Option<usize>,
}

/// State shared by all workers and the control thread.
#[derive(Debug)]
pub struct Shared {
    pub tables: Arc<TablesHandle>,
    pub running: AtomicBool,
    pub pool: Mempool,
    /// One learn-event inbox per worker.
    pub inboxes: Box<[ArrayQueue<LearnEvent>]>,
    /// One counter block per worker.
    pub stats: Box<[CachePadded<WorkerStats>]>,
    /// Each worker's flow table size and timeouts (fixed while running).
    pub flows: FlowConfig,
    /// The epoch of the snapshot each worker runs on (`u64::MAX` once it has stopped):
    /// a worker stores it after switching, with its tx buffers empty.
    pub seen: Box<[CachePadded<AtomicU64>]>,
    /// The packet trace switch and its records (`sluice trace`).
    pub trace: Arc<TraceControl>,
    /// The live capture switch and its frame queues (`sluice capture`).
    pub capture: CaptureControl,
    /// One flow-dump mailbox per worker (`show flows`, see [`dump`]).
    pub dumps: Box<[FlowDump<FlowAction>]>,
}

impl Shared {
    /// Shared state for `n_workers`; per-port counters are sized for [`MAX_PORTS`]
    /// slots so ports can come and go while running.
    pub fn new(tables: Arc<TablesHandle>, pool: Mempool, n_workers: usize, flows: FlowConfig) -> Self {
        Shared {
            flows,
            tables,
            running: AtomicBool::new(true),
            pool,
            inboxes: (0..n_workers).map(|_| ArrayQueue::new(LEARN_INBOX)).collect(),
            stats: (0..n_workers).map(|_| CachePadded::new(WorkerStats::new(MAX_PORTS))).collect(),
            seen: (0..n_workers).map(|_| CachePadded::new(AtomicU64::new(0))).collect(),
            trace: Arc::new(TraceControl::new()),
            capture: CaptureControl::new(),
            dumps: (0..n_workers).map(|_| FlowDump::new(DUMP_QUEUE)).collect(),
        }
    }

    /// Waits (polling, at most `timeout`) until every worker runs on `epoch` or a later
    /// snapshot, or has stopped. True when they all have: from then on no worker polls
    /// or sends on a port that the snapshot `epoch` left out, and none holds an mbuf
    /// bound for it.
    pub fn wait_quiescent(&self, epoch: u64, timeout: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            if self.seen.iter().all(|s| s.load(Ordering::Acquire) >= epoch) {
                return true;
            }
            if t0.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Zeroes every worker's counters of port slot `slot`. Only for a slot outside every
    /// worker's I/O map (a removal completed, the new port not yet published): no worker
    /// writes its counters then.
    pub fn reset_port_counters(&self, slot: PortIdx) {
        for w in self.stats.iter() {
            w.reset_port(slot as usize);
        }
    }

    /// Asks every worker to stop after its current burst.
    pub fn stop(&self) {
        self.running.store(false, Ordering::Release);
    }
}

/// The worker's tx side: a buffer per output port.
struct TxSide<'a> {
    bufs: &'a mut [Burst<TX_BUFFER>],
    /// Bit p: buffer p may hold packets (so a flush looks at the ports used, not all
    /// `MAX_PORTS` buffers).
    pending: u32,
    /// DPDK port id by `PortIdx`, from the I/O map.
    queues: &'a [Option<u16>],
    /// This worker's tx queue index on every port.
    queue: u16,
    pool: &'a Mempool,
    stats: &'a WorkerStats,
    capture: &'a CaptureControl,
}

impl TxSide<'_> {
    /// Sends what `port`'s buffer holds; what the queue does not take is dropped.
    #[inline]
    fn flush(&mut self, port: usize) {
        let Some(buf) = self.bufs.get_mut(port) else { return };
        if buf.is_empty() {
            return;
        }
        let Some(&Some(dev)) = self.queues.get(port) else {
            // Not (or no longer) a port of this snapshot: never reached, `send` refuses it.
            let n = buf.len();
            buf.clear();
            self.stats.drops[DropReason::PortDown as usize].add(n as u64);
            return;
        };
        let bytes = burst_bytes(buf.as_slice());
        capture(self.capture, port as PortIdx, CaptureDir::Tx, buf.as_slice());
        let sent = TxQueue { port: PortId(dev), queue: self.queue }.tx_burst(buf);
        let unsent = buf.len();
        if sent > 0 {
            self.stats.tx_packets.add(sent as u64);
            if let Some(pc) = self.stats.ports.get(port) {
                pc.tx_packets.add(sent as u64);
                let unsent_bytes = if unsent > 0 { burst_bytes(buf.as_slice()) } else { 0 };
                pc.tx_bytes.add(bytes.saturating_sub(unsent_bytes));
            }
        }
        if unsent > 0 {
            self.stats.drops[DropReason::TxFull as usize].add(unsent as u64);
            buf.clear();
        }
    }

    fn flush_all(&mut self) {
        while self.pending != 0 {
            let p = self.pending.trailing_zeros() as usize;
            self.pending &= self.pending - 1;
            self.flush(p);
        }
    }
}

impl Egress<Mbuf> for TxSide<'_> {
    #[inline]
    fn copy(&mut self, pkt: &Mbuf) -> Option<Mbuf> {
        pkt.copy(self.pool)
    }

    #[inline]
    fn send(&mut self, port: PortIdx, pkt: Mbuf) {
        let p = port as usize;
        let (Some(buf), Some(Some(_))) = (self.bufs.get_mut(p), self.queues.get(p)) else {
            self.stats.drop_one(DropReason::PortDown);
            return;
        };
        // Never full here: a buffer is flushed as soon as it fills.
        if let Err(m) = buf.push(pkt) {
            drop(m);
            self.stats.drop_one(DropReason::TxFull);
        }
        let full = buf.is_full();
        // `p` < MAX_PORTS <= 32 (`bufs` has that many slots).
        self.pending |= 1u32 << (p & 31);
        if full {
            self.flush(p);
        }
    }

    #[inline]
    fn discard(&mut self, pkt: Mbuf, reason: DropReason) {
        drop(pkt);
        self.stats.drop_one(reason);
    }

    #[inline]
    fn count_drop(&mut self, reason: DropReason) {
        self.stats.drop_one(reason);
    }
}

/// Bytes in a burst (frame lengths).
#[inline]
fn burst_bytes(pkts: &[Mbuf]) -> u64 {
    pkts.iter().map(|m| u64::from(m.pkt_len())).sum()
}

/// Runs a worker until `shared.running` turns false. Call on the worker's own thread.
pub fn run(spec: WorkerSpec, shared: &Shared) -> Result<(), dpdk::DpdkError> {
    if let Some(core) = spec.core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            tracing::warn!(worker = spec.id, core, "could not pin worker thread");
        }
    }
    let lcore = dpdk::register_thread()?;
    let stats: &WorkerStats = &shared.stats[spec.id];
    let seen = &shared.seen[spec.id];
    let tx_queue = spec.id as u16;
    let mut tables = shared.tables.load_full();
    let mut pipeline = Pipeline::new(&tables, &shared.flows);
    pipeline.attach_trace(Arc::clone(&shared.trace), spec.id as u16);
    // Ready: the pipeline (flow table and all) is built and the next thing is polling. The
    // launcher waits for this before it counts the switch as forwarding.
    seen.store(tables.epoch, Ordering::Release);
    tracing::info!(worker = spec.id, core = ?spec.core, lcore, rx_queues = tables.io.workers.get(spec.id).map_or(0, |w| w.rx.len()), "worker started");
    let mut flow_stats_seen = pipeline.l3.flows.stats();
    // One buffer per possible port slot: ports come and go with the I/O map.
    const { assert!(MAX_PORTS <= 32, "TxSide::pending has a bit per port") };
    let mut tx_bufs: Vec<Burst<TX_BUFFER>> = (0..MAX_PORTS).map(|_| Burst::new()).collect();
    let mut rx_burst: Burst<RX_BURST> = Burst::new();
    // Time in ms from the TSC the loop reads anyway (no clock call per loop).
    let tsc_per_ms = (dpdk::tsc_hz() / 1000).max(1);
    let start_tsc = dpdk::tsc();
    let mut next_aging_ms = AGING_INTERVAL_MS;
    let inbox = &shared.inboxes[spec.id];
    let peers: Vec<&ArrayQueue<LearnEvent>> =
        shared.inboxes.iter().enumerate().filter(|(i, _)| *i != spec.id).map(|(_, q)| q).collect();
    let mut l2_seen = pipeline.l2;
    let mut l3_seen = pipeline.l3.counters;
    let mut loop_start = start_tsc;
    // A snapshot without an entry for this worker gives it nothing to poll.
    let no_io = WorkerIo::default();
    let mut dump = DumpCursor::default();

    while shared.running.load(Ordering::Relaxed) {
        // One load per loop; a new snapshot re-seeds per-worker state.
        if shared.tables.epoch() != tables.epoch {
            tables = shared.tables.load_full();
            pipeline.sync(&tables);
            // Between bursts every tx buffer is empty: from here on this worker only
            // touches the ports of the new I/O map. Tell control.
            seen.store(tables.epoch, Ordering::Release);
        }
        let io = tables.io.workers.get(spec.id).unwrap_or(&no_io);
        let now_ms = loop_start.wrapping_sub(start_tsc) / tsc_per_ms;
        while let Some(ev) = inbox.pop() {
            pipeline.apply_learn(&tables, ev, now_ms);
        }

        let mut got = 0usize;
        for a in io.rx.iter() {
            let (port, rxq) = (a.port, RxQueue { port: PortId(a.dev), queue: a.queue });
            let n = rxq.rx_burst(&mut rx_burst);
            if n == 0 {
                continue;
            }
            got += n;
            stats.rx_packets.add(n as u64);
            let bytes = burst_bytes(rx_burst.as_slice());
            if let Some(pc) = stats.ports.get(port as usize) {
                pc.rx_packets.add(n as u64);
                pc.rx_bytes.add(bytes);
            }
            if let Some(qc) = stats.rx_queue(port as usize, rxq.queue as usize) {
                qc.packets.add(n as u64);
                qc.bytes.add(bytes);
            }
            capture(&shared.capture, port, CaptureDir::Rx, rx_burst.as_slice());
            pipeline.rx_queue = rxq.queue;
            let mut tx = TxSide { bufs: &mut tx_bufs, pending: 0, queues: &io.tx, queue: tx_queue, pool: &shared.pool, stats, capture: &shared.capture };
            let pkts = rx_burst.drain().filter_map(|m| {
                if m.is_contiguous() {
                    Some(m)
                } else {
                    stats.drop_one(DropReason::ChainedMbuf);
                    None
                }
            });
            pipeline.process(&tables, port, pkts, now_ms, &mut tx, &mut |ev| {
                for q in &peers {
                    if q.push(ev).is_err() {
                        stats.learn_overflow.add(1);
                    }
                }
            });
            tx.flush_all();
        }

        let expired = pipeline.expire(now_ms, EXPIRE_BUDGET);
        if let Some(d) = shared.dumps.get(spec.id) {
            dump.step(d, &pipeline.l3.flows, DUMP_BUDGET, now_ms);
        }
        if now_ms >= next_aging_ms || expired > 0 {
            let f = pipeline.l3.flows.stats();
            stats.flows_expired.add(f.expired - flow_stats_seen.expired);
            stats.flows_evicted.add(f.evicted - flow_stats_seen.evicted);
            stats.flows.set(pipeline.l3.flows.len() as u64);
            flow_stats_seen = f;
        }
        if now_ms >= next_aging_ms {
            next_aging_ms = now_ms + AGING_INTERVAL_MS;
            let aged = pipeline.age(now_ms);
            stats.mac_aged.add(aged as u64);
            stats.fdb_entries.set(pipeline.fdb().len() as u64);
        }
        if pipeline.l2 != l2_seen {
            let l2 = pipeline.l2;
            stats.mac_learned.add(l2.learned - l2_seen.learned);
            stats.mac_moved.add(l2.moved - l2_seen.moved);
            stats.fdb_full.add(l2.fdb_full - l2_seen.fdb_full);
            stats.flooded.add(l2.flooded - l2_seen.flooded);
            stats.fdb_entries.set(pipeline.fdb().len() as u64);
            l2_seen = l2;
        }
        if pipeline.l3.counters != l3_seen {
            let (c, s) = (pipeline.l3.counters, l3_seen);
            stats.routed.add(c.routed - s.routed);
            stats.arp_replies.add(c.arp_replies - s.arp_replies);
            stats.nd_replies.add(c.nd_replies - s.nd_replies);
            stats.echo_replies.add(c.echo_replies - s.echo_replies);
            stats.dhcp_replies.add(c.dhcp_replies - s.dhcp_replies);
            stats.icmp_errors.add(c.icmp_errors - s.icmp_errors);
            stats.icmp_suppressed.add(c.icmp_suppressed - s.icmp_suppressed);
            stats.flows_created.add(c.flows_created - s.flows_created);
            stats.flows_redecided.add(c.flows_redecided - s.flows_redecided);
            stats.policy_logged.add(c.policy_logged - s.policy_logged);
            stats.flows.set(pipeline.l3.flows.len() as u64);
            l3_seen = c;
        }
        let now_tsc = dpdk::tsc();
        let spent = now_tsc.wrapping_sub(loop_start);
        loop_start = now_tsc;
        if got > 0 {
            stats.busy_cycles.add(spent);
        } else {
            stats.idle_cycles.add(spent);
        }
        stats.loops.add(1);
    }

    // Drain: send what is buffered, then free everything this worker still holds.
    let io = tables.io.workers.get(spec.id).map_or(&[][..], |w| &w.tx[..]);
    let mut tx = TxSide { bufs: &mut tx_bufs, pending: u32::MAX, queues: io, queue: tx_queue, pool: &shared.pool, stats, capture: &shared.capture };
    tx.flush_all();
    rx_burst.clear();
    drop(tx_bufs);
    seen.store(u64::MAX, Ordering::Release);
    dpdk::unregister_thread();
    tracing::info!(worker = spec.id, "worker stopped");
    Ok(())
}

/// Copies a burst to the live capture when one wants this port and direction: one
/// atomic load per burst when none does. Called as frames arrive (rx) and just before
/// they are handed to the tx queue (tx).
#[inline(always)]
fn capture(c: &CaptureControl, port: PortIdx, dir: CaptureDir, pkts: &[Mbuf]) {
    if let Some(generation) = c.wants(port, dir) {
        c.offer(generation, port, dir, dpdk::tsc(), pkts.iter().map(crate::packet::PacketBuf::data));
    }
}
