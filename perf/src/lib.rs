//! Fixtures for the criterion benches (`benches/`); see docs/PERFORMANCE.md.
//!
//! A [`Scenario`] is a bridge topology, a rotation of [`BURSTS`] bursts of [`BURST`]
//! 64-byte frames (60 bytes without FCS), and the MACs learned before timing starts.
//! Two harnesses run it:
//!
//! * [`StageBench`]: the L2 stage alone ([`classify`] on frame bytes: parse, learn
//!   refresh, lookup, decision), no buffers moved;
//! * [`PipelineBench`]: the whole [`Pipeline`] on [`HeapBuf`] bursts into a [`Sink`]
//!   egress that recycles every buffer, so steady state allocates nothing and the
//!   measured time is the pipeline's, not the allocator's.
//!
//! Both time only the processing: [`StageBench::measure`] / [`PipelineBench::measure`]
//! run up to [`BURSTS`] bursts between two clock reads, then put the buffers back into
//! shape outside the timed region (pop the pushed VLAN tag, write the next destination
//! MACs) before the next chunk. Clock overhead is two reads per 1,024 packets.

pub mod stateful;

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_dataplane::l2::{build_l2, classify, egress_vlan, BridgeSpec, Fdb, Ingress, L2Counters, L2Out, LearnEvent, VlanMode};
use sluice_dataplane::packet::{HeapBuf, PacketBuf};
use sluice_dataplane::pipeline::{Egress, Pipeline};
use sluice_dataplane::tables::{PortEntry, PortIdx, Tables};
use sluice_dataplane::wire::ethernet::emit_header;
use sluice_dataplane::wire::{EtherType, EthernetFrame, MacAddr, VlanTag};
use sluice_dataplane::DropReason;

/// Packets per burst (the pipeline's chunk; the worker's `RX_BURST` is two of them).
pub const BURST: usize = 32;
/// Bursts in the rotation: 1,024 frames in flight.
pub const BURSTS: usize = 32;
/// Frame length without FCS: 64 bytes on the wire.
pub const FRAME_LEN: usize = 60;
/// The clock the benches run at. Constant: at line rate the worker's millisecond clock
/// advances once every ~10k packets, so learn refreshes almost never write; a constant
/// clock models that (never writes).
pub const NOW_MS: u64 = 1_000;
/// The default `mac_table_size` of a bridge (control/src/config.rs).
pub const DEFAULT_MAC_TABLE_SIZE: u32 = 8192;
/// VLAN of the VLAN scenario.
pub const VID: u16 = 10;

/// Source MAC number `i` (locally administered unicast).
pub fn src_mac(i: u32) -> MacAddr {
    MacAddr::from_u64(0x0200_1000_0000 | i as u64)
}

/// Destination MAC number `i`.
pub fn dst_mac(i: u32) -> MacAddr {
    MacAddr::from_u64(0x0200_2000_0000 | i as u64)
}

/// A 60-byte IPv4-typed frame (payload bytes are filler: L2 never reads them).
pub fn frame(dst: MacAddr, src: MacAddr, vid: Option<u16>) -> [u8; FRAME_LEN] {
    let mut f = [0x5au8; FRAME_LEN];
    emit_header(&mut f, dst, src, vid.map(VlanTag::with_vid), EtherType::IPV4);
    f
}

/// xorshift64*: a reproducible shuffle without a `rand` dependency.
pub fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Known unicast port 0 -> port 1 of a plain bridge, from `sources` distinct source
    /// MACs (all learned on port 0: every packet refreshes its source and looks up one
    /// destination learned on port 1).
    Unicast { sources: u32 },
    /// Broadcast from port 0 of a 4-port bridge: 3 outputs, 2 copies per packet.
    Flood,
    /// Known unicast from an access port (VLAN 10) to a trunk: every packet gets a tag.
    VlanPush,
    /// `entries` destination MACs learned on port 1; the traffic cycles through all of
    /// them in a shuffled order (one source MAC). The table is sized for the entries:
    /// the default 8192 for 1k, entries + 1024 for more.
    FdbLookup { entries: u32 },
}

impl Scenario {
    /// Short name for benchmark ids.
    pub fn name(&self) -> String {
        match self {
            Scenario::Unicast { sources } => format!("unicast_{}_src", count_name(*sources)),
            Scenario::Flood => "flood_3_ports".into(),
            Scenario::VlanPush => "vlan_push_trunk".into(),
            Scenario::FdbLookup { entries } => format!("fdb_lookup_{}", count_name(*entries)),
        }
    }
}

fn count_name(n: u32) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{}k", n / 1024)
    } else {
        n.to_string()
    }
}

/// A scenario made concrete: tables, ingress port, frames, MACs to learn beforehand.
pub struct Fixture {
    pub scenario: Scenario,
    pub tables: Tables,
    pub in_port: PortIdx,
    /// Where the original buffer of every packet leaves (copies leave elsewhere).
    pub home_port: PortIdx,
    /// `BURSTS * BURST` frames.
    pub frames: Vec<[u8; FRAME_LEN]>,
    /// Learned before timing starts.
    pub learn: Vec<LearnEvent>,
    /// Destination MACs cycled through, written into the frames between chunks.
    pub dst_cycle: Vec<MacAddr>,
    /// The decision every frame must get.
    pub expect: L2Out,
}

impl Fixture {
    pub fn new(scenario: Scenario) -> Fixture {
        let n = BURSTS * BURST;
        let plain = |ports: PortIdx| (0..ports).map(|p| (p, VlanMode::Access(0))).collect::<Vec<_>>();
        let (ports, table_size) = match scenario {
            Scenario::Unicast { .. } => (plain(2), DEFAULT_MAC_TABLE_SIZE),
            Scenario::Flood => (plain(4), DEFAULT_MAC_TABLE_SIZE),
            Scenario::VlanPush => (
                vec![(0, VlanMode::Access(VID)), (1, VlanMode::Trunk { allowed: vec![VID], native: None })],
                DEFAULT_MAC_TABLE_SIZE,
            ),
            Scenario::FdbLookup { entries } => (plain(2), DEFAULT_MAC_TABLE_SIZE.max(entries + 1024)),
        };
        let n_ports = ports.len();
        let spec = BridgeSpec { name: "br0".into(), mac_table_size: table_size, mac_aging_ms: 300_000, ports, static_macs: vec![] };
        let tables = Tables {
            epoch: 1,
            ports: (0..n_ports).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
            l2: build_l2(n_ports, &[spec]).expect("bench topology"),
            l3: Default::default(),
            l2_epoch: 1,
            io: Default::default(),
        };
        let domain = tables.l2.ingress_domain(0, None).expect("port 0 bridged");
        let ev = |mac, port| LearnEvent { domain, mac, port };
        let vlan = None; // every scenario receives untagged frames on port 0
        let mut learn = Vec::new();
        let mut dst_cycle = Vec::new();
        let (frames, home_port, expect) = match scenario {
            Scenario::Unicast { sources } => {
                learn.push(ev(dst_mac(0), 1));
                learn.extend((0..sources).map(|i| ev(src_mac(i), 0)));
                let f = (0..n as u32).map(|i| frame(dst_mac(0), src_mac(i % sources), vlan)).collect();
                (f, 1, L2Out::Unicast(1))
            }
            Scenario::Flood => {
                learn.extend((0..n as u32).map(|i| ev(src_mac(i), 0)));
                let f = (0..n as u32).map(|i| frame(MacAddr::BROADCAST, src_mac(i), vlan)).collect();
                (f, 3, L2Out::Flood)
            }
            Scenario::VlanPush => {
                learn.push(ev(dst_mac(0), 1));
                learn.extend((0..n as u32).map(|i| ev(src_mac(i), 0)));
                let f = (0..n as u32).map(|i| frame(dst_mac(0), src_mac(i), vlan)).collect();
                (f, 1, L2Out::Unicast(1))
            }
            Scenario::FdbLookup { entries } => {
                learn.push(ev(src_mac(0), 0));
                dst_cycle = (0..entries).map(dst_mac).collect();
                shuffle(&mut dst_cycle, 0x9e37_79b9_7f4a_7c15);
                learn.extend(dst_cycle.iter().map(|m| ev(*m, 1)));
                let f = (0..n).map(|i| frame(dst_cycle[i % dst_cycle.len()], src_mac(0), vlan)).collect();
                (f, 1, L2Out::Unicast(1))
            }
        };
        Fixture { scenario, tables, in_port: 0, home_port, frames, learn, dst_cycle, expect }
    }
}

/// The L2 stage alone: `classify` over frame bytes.
pub struct StageBench {
    pub fx: Fixture,
    pub fdb: Fdb,
    pub counters: L2Counters,
    cursor: usize,
}

impl StageBench {
    pub fn new(scenario: Scenario) -> StageBench {
        let fx = Fixture::new(scenario);
        let mut fdb = Fdb::with_capacity(Fdb::capacity_for(&fx.tables.l2));
        fdb.reseed(&fx.tables.l2);
        for ev in &fx.learn {
            let bridge = fx.tables.l2.domains[ev.domain as usize].bridge;
            fdb.learn(bridge, ev.domain, ev.mac, ev.port, NOW_MS);
        }
        assert_eq!(fdb.len(), fx.learn.len(), "every bench MAC fits the table");
        StageBench { cursor: fx.frames.len() % fx.dst_cycle.len().max(1), fx, fdb, counters: L2Counters::default() }
    }

    /// Classifies `bursts` bursts; returns how many frames got the expected decision.
    #[inline]
    pub fn run(&mut self, bursts: usize) -> usize {
        let ingress = Ingress { port: self.fx.in_port, max_frame_len: 1514 };
        let mut ok = 0;
        for f in &self.fx.frames[..bursts * BURST] {
            let d = classify(&self.fx.tables.l2, &mut self.fdb, ingress, black_box(&f[..]), NOW_MS, &mut self.counters, &mut |_| {});
            ok += (black_box(d).out == self.fx.expect) as usize;
        }
        ok
    }

    /// Untimed: the next destinations of the cycle, if the scenario has one.
    pub fn refill(&mut self, bursts: usize) {
        if self.fx.dst_cycle.is_empty() {
            return;
        }
        for f in &mut self.fx.frames[..bursts * BURST] {
            EthernetFrame::new_unchecked(&mut f[..]).set_dst(self.fx.dst_cycle[self.cursor]);
            self.cursor = (self.cursor + 1) % self.fx.dst_cycle.len();
        }
    }

    /// Time for `iters` bursts (criterion `iter_custom`).
    pub fn measure(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let k = left.min(BURSTS as u64) as usize;
            let t0 = Instant::now();
            let ok = self.run(k);
            total += t0.elapsed();
            assert_eq!(ok, k * BURST, "{}: unexpected L2 decision", self.fx.scenario.name());
            self.refill(k);
            left -= k as u64;
        }
        total
    }
}

/// An egress that keeps every buffer: originals come back for the next round, flood
/// copies are reused as the targets of later copies (a LIFO, like a mempool cache).
#[derive(Default)]
pub struct Sink {
    /// Originals (and discarded packets), in the order they left.
    pub back: Vec<HeapBuf>,
    /// Buffers sent to other ports than `home`: the copies.
    pub spares: Vec<HeapBuf>,
    pub home: PortIdx,
    pub sent: u64,
    pub dropped: u64,
    /// Copies that had to allocate (no spare of the right shape): 0 in steady state.
    pub allocated: u64,
}

impl Egress<HeapBuf> for Sink {
    #[inline]
    fn copy(&mut self, pkt: &HeapBuf) -> Option<HeapBuf> {
        match self.spares.pop() {
            Some(mut b) if b.len() == pkt.len() && b.headroom() == pkt.headroom() => {
                b.data_mut().copy_from_slice(pkt.data());
                Some(b)
            }
            _ => {
                self.allocated += 1;
                Some(pkt.clone())
            }
        }
    }
    #[inline]
    fn send(&mut self, port: PortIdx, pkt: HeapBuf) {
        self.sent += 1;
        if port == self.home {
            self.back.push(pkt);
        } else {
            self.spares.push(pkt);
        }
    }
    #[inline]
    fn discard(&mut self, pkt: HeapBuf, _reason: DropReason) {
        self.dropped += 1;
        self.back.push(pkt);
    }
    #[inline]
    fn count_drop(&mut self, _reason: DropReason) {
        self.dropped += 1;
    }
}

/// The whole pipeline on recycled `HeapBuf` bursts.
pub struct PipelineBench {
    pub fx: Fixture,
    pub pipeline: Pipeline,
    pub bursts: Vec<Vec<HeapBuf>>,
    pub sink: Sink,
    cursor: usize,
}

impl PipelineBench {
    /// Builds the scenario, learns its MACs and runs one untimed round, so the timed
    /// rounds find the table warm and the sink stocked with copy targets.
    pub fn new(scenario: Scenario) -> PipelineBench {
        let fx = Fixture::new(scenario);
        let mut pipeline = Pipeline::new(&fx.tables, &sluice_dataplane::flow::FlowConfig::default());
        for ev in &fx.learn {
            pipeline.apply_learn(&fx.tables, *ev, NOW_MS);
        }
        assert_eq!(pipeline.fdb().len(), fx.learn.len(), "every bench MAC fits the table");
        let bursts = fx.frames.chunks(BURST).map(|c| c.iter().map(|f| HeapBuf::new(f)).collect()).collect();
        let sink = Sink { home: fx.home_port, back: Vec::with_capacity(BURSTS * BURST), ..Default::default() };
        let cursor = fx.frames.len() % fx.dst_cycle.len().max(1);
        let mut b = PipelineBench { fx, pipeline, bursts, sink, cursor };
        b.run(BURSTS);
        b.refill(BURSTS);
        b.sink.sent = 0;
        b.sink.allocated = 0;
        b
    }

    /// Runs `bursts` bursts through the pipeline.
    #[inline]
    pub fn run(&mut self, bursts: usize) {
        for burst in &mut self.bursts[..bursts] {
            self.pipeline.process(&self.fx.tables, self.fx.in_port, burst.drain(..), NOW_MS, &mut self.sink, &mut |_| {});
        }
    }

    /// Untimed: puts the originals back into their bursts, undoing the VLAN push and
    /// writing the next destinations of the cycle.
    pub fn refill(&mut self, bursts: usize) {
        assert_eq!(self.sink.dropped, 0, "{}: the pipeline dropped packets", self.fx.scenario.name());
        assert_eq!(self.sink.back.len(), bursts * BURST, "{}: packets went missing", self.fx.scenario.name());
        for (i, mut b) in self.sink.back.drain(..).enumerate() {
            if self.fx.scenario == Scenario::VlanPush {
                debug_assert_eq!(EthernetFrame::new_checked(b.data()).ok().and_then(|f| f.vlan()).map(|t| t.vid()), Some(VID));
                egress_vlan(&mut b, true, false, VID).expect("pop the pushed tag");
            }
            if !self.fx.dst_cycle.is_empty() {
                EthernetFrame::new_unchecked(b.data_mut()).set_dst(self.fx.dst_cycle[self.cursor]);
                self.cursor = (self.cursor + 1) % self.fx.dst_cycle.len();
            }
            self.bursts[i / BURST].push(b);
        }
    }

    /// Time for `iters` bursts (criterion `iter_custom`).
    pub fn measure(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let k = left.min(BURSTS as u64) as usize;
            let t0 = Instant::now();
            self.run(k);
            total += t0.elapsed();
            self.refill(k);
            left -= k as u64;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Scenario; 6] = [
        Scenario::Unicast { sources: 1 },
        Scenario::Unicast { sources: 1024 },
        Scenario::Flood,
        Scenario::VlanPush,
        Scenario::FdbLookup { entries: 1024 },
        Scenario::FdbLookup { entries: 4096 },
    ];

    #[test]
    fn every_stage_scenario_gets_its_decision() {
        for s in ALL {
            let mut b = StageBench::new(s);
            // measure() asserts every decision; run past one full rotation.
            b.measure(BURSTS as u64 * 3 + 5);
            assert_eq!(b.counters.learned, 0, "{}: everything pre-learned", s.name());
        }
    }

    #[test]
    fn every_pipeline_scenario_recycles_without_loss_or_allocation() {
        for s in ALL {
            let mut b = PipelineBench::new(s);
            b.measure(BURSTS as u64 * 2 + 3);
            let fanout = if s == Scenario::Flood { 3 } else { 1 };
            assert_eq!(b.sink.sent, (BURSTS as u64 * 2 + 3) * BURST as u64 * fanout, "{}", s.name());
            assert_eq!(b.sink.allocated, 0, "{}: steady state allocates", s.name());
            assert_eq!(b.pipeline.l2.learned, 0, "{}", s.name());
            // The buffers are back in shape: identical to the fixture's frames (the
            // destination aside, which the cycle rewrites).
            for (buf, f) in b.bursts.iter().flatten().zip(&b.fx.frames) {
                assert_eq!(buf.data()[6..], f[6..], "{}", s.name());
                assert_eq!(buf.headroom(), HeapBuf::new(f).headroom());
            }
        }
    }

    #[test]
    fn vlan_push_really_tags() {
        let mut b = PipelineBench::new(Scenario::VlanPush);
        b.run(1);
        let f = EthernetFrame::new_checked(b.sink.back[0].data()).unwrap();
        assert_eq!(f.vlan().map(|t| t.vid()), Some(VID));
        assert_eq!(b.sink.back[0].len(), FRAME_LEN + 4);
    }

    #[test]
    fn fdb_cycle_visits_every_entry() {
        let mut b = StageBench::new(Scenario::FdbLookup { entries: 4096 });
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            seen.extend(b.fx.frames.iter().map(|f| EthernetFrame::new_unchecked(&f[..]).dst()));
            b.refill(BURSTS);
        }
        assert_eq!(seen.len(), 4096);
    }
}
