//! Packet tracing (VPP's `trace add` + `show trace`): the next n received packets are
//! recorded with their path through the pipeline stages and the decision at each.
//!
//! Two halves:
//! - [`TraceControl`], shared by the control thread and the workers: one atomic word
//!   (generation, port filter, packets still to trace) and a bounded queue of finished
//!   [`TraceRecord`]s. Control arms it; a worker loads the word once per burst and, only
//!   while it is armed for the burst's port, claims packets one by one (a CAS on the word,
//!   so n packets are traced in all, across workers).
//! - [`Tracer`], owned by a worker's pipeline: one preallocated record that the stages
//!   append [`Step`]s to while `on` is set (one predictable branch per stage when tracing
//!   is off), pushed to the queue when the packet's outcome is known.
//!
//! Nothing here allocates after construction; a full queue loses the record (counted in
//! [`TraceControl::lost`]), never the packet.
//!
//! Thread-safety: `state` is written by control (arm/clear, any time) and by workers
//! (claims, CAS); `records` is a crossbeam ArrayQueue (workers push, control pops).
//! A record carries the generation it was claimed under, so a record of an earlier arming
//! that lands after a clear is recognised and discarded by control.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::flow::{ConnState, Dir};
use crate::l3::{EndpointIdx, VrfIdx};
use crate::policy::Verdict;
use crate::tables::PortIdx;
use crate::wire::MacAddr;
use crate::DropReason;

/// Most packets one arming traces (and records the queue holds).
pub const TRACE_MAX: u32 = 256;
/// Steps a record holds; later steps are counted in [`TraceRecord::steps_lost`].
pub const TRACE_STEPS: usize = 16;
/// Leading frame bytes kept for the header summary.
pub const TRACE_HEAD: usize = 128;

/// Who sent a routed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceSender {
    Endpoint(EndpointIdx),
    /// An uplink (the ingress port).
    Uplink(PortIdx),
}

/// What the MAC learning table did with the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    Refreshed,
    Learned,
    Moved,
    /// Not learned: the table is full.
    Full,
    /// Not moved: a static entry names another port.
    StaticConflict,
}

/// A frame sluice answered itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalAnswer {
    ArpReply,
    NdReply,
    EchoReply,
    DhcpReply,
    /// An ICMP(v6) error back to the sender (the packet becomes the error).
    IcmpError { typ: u8, code: u8 },
}

/// What the flow table did with the packet's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowNote {
    /// No flow table (no policy configured): routed statelessly.
    Stateless,
    /// A cached decision of the current snapshot.
    Hit(Dir),
    /// A known connection whose decision was missing or stale: decided again.
    Redecided { dir: Dir, stale: bool },
    /// A new connection (entered into the table if the decision allows it).
    Miss,
    /// A non-first fragment: follows its first fragment's decision (`known`: one was found).
    Fragment { known: bool },
    /// An ICMP error quoting a connection (`known`: this worker tracks it).
    Related { known: bool },
}

/// Where a FIB lookup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteResult {
    Local,
    Endpoint { endpoint: EndpointIdx, port: PortIdx },
    Gateway { port: PortIdx, mac: MacAddr },
    NoRoute,
    Drop(DropReason),
}

/// The details of one FIB lookup, written by the lookup when tracing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteNote {
    /// The VRF the route was found in (another one than the sender's after a leak).
    pub vrf: VrfIdx,
    /// The route's next hop id in that VRF.
    pub next_hop: u32,
    /// ECMP: (member picked, members).
    pub ecmp: Option<(u16, u16)>,
}

/// One stage's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// L2: the frame entered a bridge domain (`tagged`: it came with an 802.1Q tag).
    Bridge { domain: u32, vid: u16, tagged: bool },
    /// L2: what learning did with the source MAC.
    Learn(Learn),
    /// L2: the destination MAC is known on `port`.
    FdbHit { port: PortIdx },
    /// L2: flooded (`multicast`: broadcast/multicast destination, else unknown unicast).
    Flood { multicast: bool },
    /// L3: the sender and its VRF (`gateway`: through a bridged network's gateway).
    L3In { vrf: VrfIdx, sender: TraceSender, gateway: bool },
    /// L3: the source address is the sender's own (anti-spoofing passed).
    AntiSpoofOk,
    /// L3: answered locally.
    Local(LocalAnswer),
    /// L3: the flow table.
    Flow(FlowNote),
    /// L3: the connection's state after this packet (`valid`: conntrack accepted it).
    Conntrack { state: ConnState, valid: bool },
    /// L3: policy for the connection's original direction (`None`: no policy configured).
    Policy { verdict: Option<Verdict>, dir: Dir },
    /// L3: a FIB lookup.
    Route { note: RouteNote, result: RouteResult },
    /// Outcome: queued for transmission on `port`.
    Tx { port: PortIdx, vlan: Option<u16> },
    /// Outcome: dropped.
    Drop(DropReason),
}

/// One traced packet.
#[derive(Clone, Debug)]
pub struct TraceRecord {
    /// The arming this record belongs to.
    pub generation: u16,
    pub worker: u16,
    /// Rx port and queue.
    pub port: PortIdx,
    pub queue: u16,
    /// Worker time (ms since the worker started).
    pub now_ms: u64,
    pub frame_len: u32,
    /// The first bytes of the frame as received.
    pub head: [u8; TRACE_HEAD],
    pub head_len: u16,
    pub steps: heapless::Vec<Step, TRACE_STEPS>,
    /// Steps that did not fit.
    pub steps_lost: u16,
}

impl TraceRecord {
    fn empty() -> Self {
        TraceRecord {
            generation: 0,
            worker: 0,
            port: 0,
            queue: 0,
            now_ms: 0,
            frame_len: 0,
            head: [0; TRACE_HEAD],
            head_len: 0,
            steps: heapless::Vec::new(),
            steps_lost: 0,
        }
    }

    /// The frame bytes kept.
    pub fn head(&self) -> &[u8] {
        self.head.get(..self.head_len as usize).unwrap_or(&[])
    }
}

const REMAINING_MASK: u64 = 0xffff_ffff;
const PORT_SHIFT: u32 = 32;
const GEN_SHIFT: u32 = 48;

fn pack(generation: u16, port: Option<PortIdx>, remaining: u32) -> u64 {
    let port = port.map_or(0, |p| u64::from(p) + 1) & 0xffff;
    (u64::from(generation) << GEN_SHIFT) | (port << PORT_SHIFT) | u64::from(remaining)
}

/// Whether `state` traces packets from `port`.
#[inline(always)]
fn wants(state: u64, port: PortIdx) -> bool {
    let filter = (state >> PORT_SHIFT) & 0xffff;
    state & REMAINING_MASK != 0 && (filter == 0 || filter == u64::from(port) + 1)
}

/// The trace switch and mailbox shared by control and the workers.
#[derive(Debug)]
pub struct TraceControl {
    state: AtomicU64,
    records: ArrayQueue<TraceRecord>,
    lost: AtomicU64,
}

impl Default for TraceControl {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceControl {
    /// Off, with room for [`TRACE_MAX`] records (allocated here, once).
    pub fn new() -> Self {
        TraceControl { state: AtomicU64::new(0), records: ArrayQueue::new(TRACE_MAX as usize), lost: AtomicU64::new(0) }
    }

    /// Traces the next `count` (at most [`TRACE_MAX`]) packets received on `port` (any
    /// port: `None`). Forgets records of earlier armings. Returns the new generation.
    pub fn arm(&self, count: u32, port: Option<PortIdx>) -> u16 {
        let generation = self.generation().wrapping_add(1);
        // Drop the old records first: once the new state is stored, workers may push
        // records of the new arming, which must not be thrown away.
        while self.records.pop().is_some() {}
        self.state.store(pack(generation, port, count.min(TRACE_MAX)), Ordering::Release);
        generation
    }

    /// Stops tracing and forgets queued records. Returns the new generation.
    pub fn clear(&self) -> u16 {
        let generation = self.generation().wrapping_add(1);
        // Drop the old records first: once the new state is stored, workers may push
        // records of the new arming, which must not be thrown away.
        while self.records.pop().is_some() {}
        self.state.store(pack(generation, None, 0), Ordering::Release);
        generation
    }

    /// The current arming.
    pub fn generation(&self) -> u16 {
        (self.state.load(Ordering::Acquire) >> GEN_SHIFT) as u16
    }

    /// Packets still to be traced.
    pub fn remaining(&self) -> u32 {
        (self.state.load(Ordering::Acquire) & REMAINING_MASK) as u32
    }

    /// Records lost because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether packets from `port` are being traced: the per-burst check (one load).
    #[inline(always)]
    pub fn armed_for(&self, port: PortIdx) -> bool {
        wants(self.state.load(Ordering::Relaxed), port)
    }

    /// Takes one packet of the budget for `port`; returns the generation it belongs to,
    /// or `None` when the budget is spent (or now filters another port).
    pub fn claim(&self, port: PortIdx) -> Option<u16> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if !wants(cur, port) {
                return None;
            }
            match self.state.compare_exchange_weak(cur, cur - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some((cur >> GEN_SHIFT) as u16),
                Err(now) => cur = now,
            }
        }
    }

    /// Hands a finished record to control; a full queue loses it (counted).
    pub fn push(&self, rec: TraceRecord) {
        if self.records.push(rec).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The next finished record (control side).
    pub fn pop(&self) -> Option<TraceRecord> {
        self.records.pop()
    }
}

/// A worker's trace recorder: at most one packet is being traced at a time.
#[derive(Debug)]
pub struct Tracer {
    /// Whether the packet going through the stages now is traced.
    pub on: bool,
    rec: TraceRecord,
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer { on: false, rec: TraceRecord::empty() }
    }
}

impl Tracer {
    /// Appends a stage's decision while a packet is traced; nothing otherwise.
    #[inline(always)]
    pub fn step(&mut self, s: Step) {
        if self.on {
            self.push(s);
        }
    }

    #[cold]
    fn push(&mut self, s: Step) {
        if self.rec.steps.push(s).is_err() {
            self.rec.steps_lost = self.rec.steps_lost.saturating_add(1);
        }
    }

    /// Starts the record of a packet (`frame`: its bytes as received).
    #[cold]
    pub fn begin(&mut self, generation: u16, worker: u16, port: PortIdx, queue: u16, now_ms: u64, frame: &[u8]) {
        let n = frame.len().min(TRACE_HEAD);
        let r = &mut self.rec;
        r.generation = generation;
        r.worker = worker;
        r.port = port;
        r.queue = queue;
        r.now_ms = now_ms;
        r.frame_len = frame.len() as u32;
        if let (Some(dst), Some(src)) = (r.head.get_mut(..n), frame.get(..n)) {
            dst.copy_from_slice(src);
        }
        r.head_len = n as u16;
        r.steps.clear();
        r.steps_lost = 0;
        self.on = true;
    }

    /// Ends the packet's record and hands it to `sink`.
    #[cold]
    pub fn finish(&mut self, sink: &TraceControl) {
        self.on = false;
        sink.push(self.rec.clone());
    }

    /// The record being built (for tests).
    pub fn record(&self) -> &TraceRecord {
        &self.rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_exactly_the_budget_for_the_filtered_port() {
        let t = TraceControl::new();
        assert!(!t.armed_for(0));
        assert_eq!(t.claim(0), None);
        let g = t.arm(3, Some(2));
        assert!(!t.armed_for(1) && t.armed_for(2));
        assert_eq!(t.claim(1), None);
        assert_eq!([t.claim(2), t.claim(2), t.claim(2), t.claim(2)], [Some(g), Some(g), Some(g), None]);
        assert!(!t.armed_for(2));
        let g2 = t.arm(1, None);
        assert_ne!(g, g2);
        assert!(t.armed_for(0) && t.armed_for(7));
        assert_eq!(t.claim(7), Some(g2));
        assert_eq!(t.remaining(), 0);
        t.arm(10_000, None);
        assert_eq!(t.remaining(), TRACE_MAX, "the budget is capped");
        t.clear();
        assert_eq!(t.remaining(), 0);
    }

    #[test]
    fn tracer_records_only_while_on_and_a_full_queue_loses_records() {
        let sink = TraceControl::new();
        let mut tr = Tracer::default();
        tr.step(Step::AntiSpoofOk);
        assert!(tr.record().steps.is_empty(), "off: nothing recorded");
        tr.begin(1, 0, 3, 0, 5, &[0xaa; 200]);
        assert_eq!(tr.record().head().len(), TRACE_HEAD);
        for _ in 0..TRACE_STEPS + 2 {
            tr.step(Step::AntiSpoofOk);
        }
        assert_eq!(tr.record().steps_lost, 2);
        tr.finish(&sink);
        assert!(!tr.on);
        for _ in 0..TRACE_MAX {
            tr.begin(1, 0, 3, 0, 5, &[1, 2, 3]);
            tr.finish(&sink);
        }
        assert_eq!(sink.lost(), 1);
        let r = sink.pop().unwrap();
        assert_eq!((r.port, r.frame_len, r.steps.len()), (3, 200, TRACE_STEPS));
        sink.clear();
        assert!(sink.pop().is_none());
    }
}
