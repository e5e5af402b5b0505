//! The burst pipeline: runs a received burst through the stages and hands each packet
//! to an [`Egress`] (transmit on a port, or drop with a reason).
//!
//! A packet picked by the packet trace ([`crate::trace`]) runs through the same stages
//! with its decisions recorded; the others pay one check per burst and per stage.
//!
//! A burst from a bridge port goes through the L2 stage ([`classify`]); a burst from an
//! endpoint port or an uplink through the routing path: the established-connection fast
//! path ([`fast`]) when stateful, else, or when it declines, the full path
//! ([`forward::process`]: local answers, conntrack, policy, routing). Tunnel decap, NAT
//! and encap will slot in there. The pipeline is
//! generic over the buffer type and the egress, so it runs in unit tests and criterion
//! benches on [`crate::packet::HeapBuf`] exactly as it runs on DPDK mbufs in a worker.

use std::sync::Arc;

use crate::l2::stage::{Ingress, L2Counters, L2Decision};
use crate::l2::{classify, egress_vlan, Fdb, FdbEvent, L2Out, LearnEvent, NO_DOMAIN};
use crate::flow::{FlowConfig, FlowTable};
use crate::l3::{fast, forward, L3Out, L3State, PortRole};
use crate::packet::PacketBuf;
use crate::tables::{PortIdx, Tables};
use crate::trace::{Learn, Step, TraceControl};
use crate::DropReason;

/// Where the pipeline puts packets. Implemented by the worker's tx buffers, and by
/// collectors in tests.
pub trait Egress<B: PacketBuf> {
    /// A deep copy of `pkt` for one more output (flooding). `None`: no buffer left.
    fn copy(&mut self, pkt: &B) -> Option<B>;
    /// Queues `pkt` for transmission on `port`. Takes ownership; never blocks.
    fn send(&mut self, port: PortIdx, pkt: B);
    /// Drops `pkt`, counting `reason`.
    fn discard(&mut self, pkt: B, reason: DropReason);
    /// Counts a drop of a packet that never became a buffer (a flood copy that could
    /// not be made).
    fn count_drop(&mut self, reason: DropReason);
}

/// How many packets ahead of the one being processed its entry is prefetched (the index
/// lines of the whole chunk are requested before any packet of it is processed).
const PREFETCH_AHEAD: usize = 4;
/// Packets parsed (and their index lines requested) before the first of them is processed
/// (a full rx burst is two chunks: 64 at once measured no better, see docs/PERFORMANCE.md).
const CHUNK: usize = 32;

/// Per-worker pipeline state: the MAC table and the epoch it was seeded for, and the
/// routing stage's state.
#[derive(Debug)]
pub struct Pipeline {
    fdb: Fdb,
    /// The L2 epoch the MAC table was seeded for.
    epoch: u64,
    /// Learning events so far (owned by this worker; published by the worker loop).
    pub l2: L2Counters,
    /// Routing-stage state and counters (and the packet trace recorder).
    pub l3: L3State,
    /// Where traced packets' records go (`None`: never traced).
    trace_sink: Option<Arc<TraceControl>>,
    /// This worker's id, for trace records.
    trace_worker: u16,
    /// The rx queue of the burst being processed, for trace records (set by the worker).
    pub rx_queue: u16,
    /// Whether packets of decided connections take the fast path ([`fast`]). Always on
    /// but in the tests that hold it to the full path's results.
    pub fast_path: bool,
}

impl Pipeline {
    /// State for `tables` with a connection table sized by `flows`, allocated once at
    /// full size.
    pub fn new(tables: &Tables, flows: &FlowConfig) -> Self {
        let mut fdb = Fdb::with_capacity(Fdb::capacity_for(&tables.l2));
        fdb.reseed(&tables.l2);
        let mut l3 = L3State::new(flows);
        l3.epoch = tables.epoch;
        Pipeline { fdb, epoch: tables.l2_epoch, l2: L2Counters::default(), l3, trace_sink: None, trace_worker: 0, rx_queue: 0, fast_path: true }
    }

    /// Adopts a newly published snapshot: relearns MACs only if the L2 tables changed;
    /// connections decided under the old snapshot are re-decided on their next packet.
    #[inline]
    pub fn sync(&mut self, tables: &Tables) {
        if tables.l2_epoch != self.epoch {
            self.fdb.reseed(&tables.l2);
            self.epoch = tables.l2_epoch;
        }
        self.l3.epoch = tables.epoch;
    }

    /// Expires idle connections, touching at most `budget` entries; call every loop.
    #[inline]
    pub fn expire(&mut self, now_ms: u64, budget: u32) -> u32 {
        if self.l3.flows.is_empty() {
            return 0;
        }
        self.l3.flows.expire(now_ms, budget)
    }

    /// The learning table (for inspection and aging).
    pub fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    /// Ages the learning table; call about once a second.
    pub fn age(&mut self, now_ms: u64) -> usize {
        self.fdb.age(now_ms)
    }

    /// Applies a MAC another worker learned.
    pub fn apply_learn(&mut self, tables: &Tables, ev: LearnEvent, now_ms: u64) {
        let Some(dom) = tables.l2.domains.get(ev.domain as usize) else { return };
        if self.fdb.learn(dom.bridge, ev.domain, ev.mac, ev.port, now_ms) == FdbEvent::Full {
            self.l2.fdb_full += 1;
        }
    }

    /// Connects the packet trace: traced packets' records go to `sink`, marked with
    /// `worker`. Without it (unit tests, benches) nothing is ever traced.
    pub fn attach_trace(&mut self, sink: Arc<TraceControl>, worker: u16) {
        self.trace_sink = Some(sink);
        self.trace_worker = worker;
    }

    /// Runs one received burst from `in_port` through the pipeline.
    ///
    /// `tables` must be the snapshot last passed to [`sync`](Self::sync). Whether the
    /// burst's packets may be traced is read once here; a traced packet runs through a
    /// copy of the per-packet code that records the L2 decisions and the outcome (the L3
    /// stages record into `self.l3.trace` while it is on).
    #[inline]
    pub fn process<B, E, I>(
        &mut self,
        tables: &Tables,
        in_port: PortIdx,
        pkts: I,
        now_ms: u64,
        egress: &mut E,
        on_learn: &mut impl FnMut(LearnEvent),
    ) where
        B: PacketBuf,
        E: Egress<B>,
        I: IntoIterator<Item = B>,
    {
        let ingress = Ingress { port: in_port, max_frame_len: tables.ports.get(in_port as usize).map_or(0, |p| p.max_frame_len) };
        let traced = self.trace_sink.as_ref().is_some_and(|t| t.armed_for(in_port));
        // A port is either switched (L2) or routed (L3): decided once per burst.
        if !matches!(tables.l3.port_role.get(in_port as usize), None | Some(PortRole::None)) {
            if !traced {
                return self.process_l3(tables, ingress, pkts, now_ms, egress);
            }
            for pkt in pkts {
                if traced && self.trace_begin(in_port, pkt.data(), now_ms) {
                    let mut rec = Recorder::new(egress);
                    self.route_one::<B, _, true>(tables, ingress, pkt, now_ms, &mut rec);
                    self.trace_end(rec.outs);
                } else {
                    self.route_one::<B, E, false>(tables, ingress, pkt, now_ms, egress);
                }
            }
            return;
        }
        for pkt in pkts {
            if traced && self.trace_begin(in_port, pkt.data(), now_ms) {
                let mut rec = Recorder::new(egress);
                self.switch_one::<B, _, true>(tables, ingress, pkt, now_ms, &mut rec, on_learn);
                self.trace_end(rec.outs);
            } else {
                self.switch_one::<B, E, false>(tables, ingress, pkt, now_ms, egress, on_learn);
            }
        }
    }
}

impl Pipeline {
    /// The routing path for a burst from an endpoint port or an uplink.
    fn process_l3<B, E, I>(&mut self, tables: &Tables, ingress: Ingress, pkts: I, now_ms: u64, egress: &mut E)
    where
        B: PacketBuf,
        E: Egress<B>,
        I: IntoIterator<Item = B>,
    {
        if !tables.l3.stateful {
            return self.route_stateless(tables, ingress, pkts, now_ms, egress);
        }
        // The loop below is compiled once per role of the ingress port (`fast::ByRole`):
        // an uplink's burst carries no endpoint state through it.
        match fast::Port::new(&tables.l3, ingress).by_role() {
            fast::ByRole::Uplink(port) => self.stateful_burst(tables, ingress, port, pkts, now_ms, egress),
            fast::ByRole::Endpoints(port) => self.stateful_burst(tables, ingress, port, pkts, now_ms, egress),
            fast::ByRole::None => {
                for pkt in pkts {
                    self.route_full(tables, ingress, pkt, now_ms, egress);
                }
            }
        }
    }

    /// The stateful routing path for a burst from `port`.
    #[inline(always)]
    fn stateful_burst<B, E, I, S>(&mut self, tables: &Tables, ingress: Ingress, port: fast::Port<'_, S>, pkts: I, now_ms: u64, egress: &mut E)
    where
        B: PacketBuf,
        E: Egress<B>,
        I: IntoIterator<Item = B>,
        S: fast::Senders,
    {
        // A big flow table misses the cache on nearly every lookup: two dependent misses
        // (index line, then entry) per packet. Taken packet after packet they queue up;
        // so do a small table's L2 hits, the replay's frames having pushed it out of L1
        // (below 8,192 connections the lookup once went packet by packet, and a quarter of a
        // 1k-flow run's samples waited in it: in chunks, December 7, 1k flows 21.0 / 21.8
        // / 21.3 -> 23.1 / 22.7 / 23.3 Mpps, one flow unchanged).
        // In two passes instead: the first parses a chunk of up to 32 packets (the fast
        // path's parse, done once per packet) and requests each one's index line; the
        // second processes them in order, requesting the entry D packets ahead (its index
        // line is there by then). The index requests sit a parse apart (~100
        // instructions), so several are in flight inside the core's window at once; in
        // the software pipeline this replaced (VPP / l3fwd style: packet i+2D parsed and
        // its index line requested while packet i is processed), each was a whole
        // packet's work (~700 instructions) from the next, and the stall after it stayed
        // whatever the distance. Measured December 6 (system runs, alternating): 64k flows
        // +7-15 %, 1M flows +8-13 %. The entry prefetch reads the index line for the
        // entry's id and leaves it with the parse as the lookup's hint, so the lookup
        // checks that entry's key and reads the index line no second time (1M flows
        // another +9 %, 64k +3 %).
        let mut pkts = pkts.into_iter();
        loop {
            // The parse stays in its slot for the second pass (the fast path reads it there,
            // by reference: moved out with the packet, it was copied to the stack first).
            let mut chunk: [(Option<B>, Option<fast::Parsed>); CHUNK] = std::array::from_fn(|_| (None, None));
            let mut n = 0;
            for slot in chunk.iter_mut() {
                let Some(pkt) = pkts.next() else { break };
                let p = port.parse(pkt.data());
                if let Some(f) = &p {
                    self.l3.flows.prefetch_index(f.hash);
                }
                *slot = (Some(pkt), p);
                n += 1;
            }
            for j in 0..PREFETCH_AHEAD.min(n) {
                request_entry(&self.l3.flows, chunk.get_mut(j));
            }
            for j in 0..n {
                request_entry(&self.l3.flows, chunk.get_mut(j + PREFETCH_AHEAD));
                if let Some((slot, p)) = chunk.get_mut(j) {
                    if let Some(pkt) = slot.take() {
                        self.route_stateful(tables, ingress, pkt, p.as_ref(), now_ms, egress);
                    }
                }
            }
            if n < CHUNK {
                return;
            }
        }
    }

    /// The routing path for a burst when nothing is tracked: every frame through the full
    /// path (out of line, apart from the stateful loop's registers).
    #[inline(never)]
    fn route_stateless<B, E, I>(&mut self, tables: &Tables, ingress: Ingress, pkts: I, now_ms: u64, egress: &mut E)
    where
        B: PacketBuf,
        E: Egress<B>,
        I: IntoIterator<Item = B>,
    {
        for pkt in pkts {
            self.route_one::<B, E, false>(tables, ingress, pkt, now_ms, egress);
        }
    }

    /// One frame of the stateful routing path: the fast path when it is a decided
    /// connection's (`p`: its parse), else the full path.
    #[inline(always)]
    fn route_stateful<B: PacketBuf, E: Egress<B>>(
        &mut self,
        tables: &Tables,
        ingress: Ingress,
        mut pkt: B,
        p: Option<&fast::Parsed>,
        now_ms: u64,
        egress: &mut E,
    ) {
        if let Some(p) = p.filter(|_| self.fast_path) {
            if let Some(out) = fast::hit(&tables.l3, &mut self.l3, p, pkt.data_mut(), now_ms) {
                self.l3_egress(pkt, p.tagged(), out, egress);
                return;
            }
        }
        self.route_full(tables, ingress, pkt, now_ms, egress);
    }

    /// [`route_one`](Self::route_one) for a frame the fast path did not take, out of
    /// line: the full path's code stays out of the burst loop's registers.
    #[inline(never)]
    fn route_full<B: PacketBuf, E: Egress<B>>(&mut self, tables: &Tables, ingress: Ingress, pkt: B, now_ms: u64, egress: &mut E) {
        self.route_one::<B, E, false>(tables, ingress, pkt, now_ms, egress);
    }

    /// One frame from a bridge port. `TRACED`: record the L2 decisions.
    #[inline(always)]
    fn switch_one<B: PacketBuf, E: Egress<B>, const TRACED: bool>(
        &mut self,
        tables: &Tables,
        ingress: Ingress,
        mut pkt: B,
        now_ms: u64,
        egress: &mut E,
        on_learn: &mut impl FnMut(LearnEvent),
    ) {
        let in_port = ingress.port;
        let before = self.l2;
        let d = classify(&tables.l2, &mut self.fdb, ingress, pkt.data(), now_ms, &mut self.l2, on_learn);
        if TRACED {
            self.trace_l2(tables, &d, before, pkt.data());
        }
        // A bridged network's gateway sits in its domain: frames for it are routed or
        // answered instead of switched.
        if !matches!(d.out, L2Out::Drop(_)) {
            if let Some(vrf) = tables.l2.domains.get(d.domain as usize).and_then(|dom| dom.gateway) {
                if let Some(out) = forward::process_bridged(&tables.l3, &mut self.l3, vrf, in_port, &mut pkt, now_ms) {
                    self.l3_egress(pkt, d.ingress_tagged, out, egress);
                    return;
                }
            }
        }
        match d.out {
            L2Out::Drop(reason) => egress.discard(pkt, reason),
            L2Out::Unicast(port) => {
                let Some(dom) = tables.l2.domains.get(d.domain as usize) else {
                    egress.discard(pkt, DropReason::NotBridged);
                    return;
                };
                match tables.l2.egress_tagged(port, dom.vid) {
                    // The MAC was learned on a port that has since left the domain.
                    None => egress.discard(pkt, DropReason::NoOutput),
                    Some(tagged) => match egress_vlan(&mut pkt, d.ingress_tagged, tagged, dom.vid) {
                        Ok(()) => egress.send(port, pkt),
                        Err(r) => egress.discard(pkt, r),
                    },
                }
            }
            L2Out::Flood => {
                let Some(dom) = tables.l2.domains.get(d.domain as usize) else {
                    egress.discard(pkt, DropReason::NotBridged);
                    return;
                };
                let mut outs = dom.members.iter().filter(|m| m.port != in_port);
                let Some(mut cur) = outs.next() else {
                    egress.discard(pkt, DropReason::NoOutput);
                    return;
                };
                // Every output but the last gets a copy; the last takes the original.
                for next in outs {
                    match egress.copy(&pkt) {
                        Some(mut c) => match egress_vlan(&mut c, d.ingress_tagged, cur.tagged, dom.vid) {
                            Ok(()) => egress.send(cur.port, c),
                            Err(r) => egress.discard(c, r),
                        },
                        None => egress.count_drop(DropReason::CopyFailed),
                    }
                    cur = next;
                }
                match egress_vlan(&mut pkt, d.ingress_tagged, cur.tagged, dom.vid) {
                    Ok(()) => egress.send(cur.port, pkt),
                    Err(r) => egress.discard(pkt, r),
                }
            }
        }
    }

    /// One frame from an endpoint port or an uplink (the routing stage records its own
    /// decisions into `self.l3.trace`).
    #[inline(always)]
    fn route_one<B: PacketBuf, E: Egress<B>, const TRACED: bool>(
        &mut self,
        tables: &Tables,
        ingress: Ingress,
        mut pkt: B,
        now_ms: u64,
        egress: &mut E,
    ) {
        let tagged = pkt.data().get(12..14) == Some(&[0x81, 0x00]);
        if !ingress.fits(pkt.len(), tagged) {
            egress.discard(pkt, DropReason::Oversize);
            return;
        }
        let out = forward::process(&tables.l3, &mut self.l3, ingress.port, &mut pkt, now_ms);
        self.l3_egress(pkt, tagged, out, egress);
    }

    /// Sends (or drops) what the routing stage decided. Its rewrites keep the ingress L2
    /// layout, so the tag is adjusted here for the egress port.
    #[inline(always)]
    fn l3_egress<B: PacketBuf, E: Egress<B>>(&mut self, mut pkt: B, ingress_tagged: bool, out: L3Out, egress: &mut E) {
        match out {
            L3Out::Tx { port, vlan } => match egress_vlan(&mut pkt, ingress_tagged, vlan.is_some(), vlan.unwrap_or(0)) {
                Ok(()) => egress.send(port, pkt),
                Err(r) => egress.discard(pkt, r),
            },
            L3Out::Drop(r) => egress.discard(pkt, r),
        }
    }

    /// Claims one packet of the trace budget and starts its record.
    #[cold]
    #[inline(never)]
    fn trace_begin(&mut self, port: PortIdx, frame: &[u8], now_ms: u64) -> bool {
        let Some(sink) = &self.trace_sink else { return false };
        let Some(generation) = sink.claim(port) else { return false };
        self.l3.trace.begin(generation, self.trace_worker, port, self.rx_queue, now_ms, frame);
        true
    }

    /// Adds the outcome to the packet's record and hands the record over.
    #[cold]
    #[inline(never)]
    fn trace_end(&mut self, outs: heapless::Vec<Step, OUTCOMES>) {
        for s in outs {
            self.l3.trace.step(s);
        }
        if let Some(sink) = &self.trace_sink {
            self.l3.trace.finish(sink);
        } else {
            self.l3.trace.on = false;
        }
    }

    /// The L2 stage's decision on a traced frame.
    #[cold]
    #[inline(never)]
    fn trace_l2(&mut self, tables: &Tables, d: &L2Decision, before: L2Counters, frame: &[u8]) {
        let t = &mut self.l3.trace;
        if d.domain != NO_DOMAIN {
            let vid = tables.l2.domains.get(d.domain as usize).map_or(0, |dom| dom.vid);
            t.step(Step::Bridge { domain: d.domain, vid, tagged: d.ingress_tagged });
            let now = self.l2;
            let learn = if now.learned != before.learned {
                Learn::Learned
            } else if now.moved != before.moved {
                Learn::Moved
            } else if now.fdb_full != before.fdb_full {
                Learn::Full
            } else if now.static_conflict != before.static_conflict {
                Learn::StaticConflict
            } else {
                Learn::Refreshed
            };
            t.step(Step::Learn(learn));
        }
        match d.out {
            L2Out::Unicast(port) => t.step(Step::FdbHit { port }),
            L2Out::Flood => t.step(Step::Flood { multicast: frame.first().is_some_and(|b| b & 1 == 1) }),
            L2Out::Drop(_) => {}
        }
    }
}

/// Requests the flow entry of the parsed packet in a chunk's `slot` (none if the slot is
/// past the chunk or the packet had no parse) and leaves the id the index named as the
/// packet's lookup hint.
#[inline(always)]
fn request_entry<B, A: Copy + Default>(flows: &FlowTable<A>, slot: Option<&mut (Option<B>, Option<fast::Parsed>)>) {
    if let Some((Some(_), Some(f))) = slot {
        f.hint = flows.prefetch_entry(f.hash);
    }
}

/// Outcomes one traced packet may have (one per flooded copy).
const OUTCOMES: usize = 8;

/// An [`Egress`] that notes where a traced packet went, then passes it on.
struct Recorder<'e, E> {
    inner: &'e mut E,
    outs: heapless::Vec<Step, OUTCOMES>,
}

impl<'e, E> Recorder<'e, E> {
    fn new(inner: &'e mut E) -> Self {
        Recorder { inner, outs: heapless::Vec::new() }
    }
}

impl<B: PacketBuf, E: Egress<B>> Egress<B> for Recorder<'_, E> {
    fn copy(&mut self, pkt: &B) -> Option<B> {
        self.inner.copy(pkt)
    }

    fn send(&mut self, port: PortIdx, pkt: B) {
        let d = pkt.data();
        let vlan = (d.get(12..14) == Some(&[0x81, 0x00]))
            .then(|| d.get(14..16).map(|v| u16::from_be_bytes([v[0], v[1]]) & 0x0fff))
            .flatten();
        let _ = self.outs.push(Step::Tx { port, vlan });
        self.inner.send(port, pkt);
    }

    fn discard(&mut self, pkt: B, reason: DropReason) {
        let _ = self.outs.push(Step::Drop(reason));
        self.inner.discard(pkt, reason);
    }

    fn count_drop(&mut self, reason: DropReason) {
        let _ = self.outs.push(Step::Drop(reason));
        self.inner.count_drop(reason);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trace_tests;
