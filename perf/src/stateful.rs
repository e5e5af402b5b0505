//! The stateful routing path without DPDK: the topology of `scripts/bench.sh --policy`
//! (an uplink, one endpoint behind it, conntrack + a NetworkPolicy of `rules` rules on
//! the endpoint) fed with UDP frames of `flows` established connections. It measures
//! what the system benchmark cannot separate
//! on a noisy VM: the worker's own cost per packet (parse, flow lookup, conntrack
//! accounting, rewrite) and how it grows with the table, without the pcap PMD's copies.
//!
//! Every frame is one connection's next packet: the first round (untimed, in `new`)
//! creates the connections, every timed one hits them, in creation order or (`shuffled`)
//! in a fixed random order. Creation order is what a pcap replay gives, and it flatters
//! the table: entries are handed out one after the other, so the replay walks them
//! sequentially and the hardware prefetcher streams them; shuffled, every entry is a
//! random access, as with real traffic. Frames are restored to their
//! original bytes (TTL, checksum, MACs) outside the timed region, so every round sees the
//! same input; `measure` checks that every packet was routed and none dropped.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use sluice_dataplane::flow::FlowConfig;
use sluice_dataplane::l2::build_l2;
use sluice_dataplane::l3::{build_l3, EndpointSpec, L3Spec, NetMode, NetworkSpec, UplinkSpec};
use sluice_dataplane::packet::{HeapBuf, PacketBuf};
use sluice_dataplane::pipeline::Pipeline;
use sluice_dataplane::policy::{
    IpBlock, IpNet, LabelSelector, Labels, NetworkPolicy, Peer, PolicyEndpoint, PolicyPort, PolicyRule, PolicySpec,
    PolicyTables, PortSpec, PROTO_UDP,
};
use sluice_dataplane::tables::{PortEntry, PortIdx, Tables};
use sluice_dataplane::wire::ethernet::emit_header;
use sluice_dataplane::wire::{ipv4, EtherType, MacAddr};

use crate::{Sink, BURST, FRAME_LEN, NOW_MS};

/// The uplink's MAC (frames arrive addressed to it).
const UPLINK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const ENDPOINT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 0x0a]);
const ENDPOINT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
/// The allowed destination port (the policy's last rule).
const DPORT: u16 = 5001;
const UPLINK: PortIdx = 0;
const ENDPOINT: PortIdx = 1;

fn selector(app: &str) -> LabelSelector {
    LabelSelector { match_labels: Labels::from([("app".to_string(), app.to_string())]), match_expressions: vec![] }
}

/// bench.sh's policy: `rules - 1` ingress rules allowing UDP 6000+k from 172.16.x/28
/// blocks, then one allowing UDP 5001 from 10.0.0.0/8 (the traffic's).
fn policy(rules: usize) -> PolicySpec {
    let block = |addr: u32, len: u8| IpBlock { cidr: IpNet { addr: u128::from(addr), len, v6: false }, except: vec![] };
    let rule = |b: IpBlock, port: u16| PolicyRule {
        peers: vec![Peer { ip_block: Some(b), ..Default::default() }],
        ports: vec![PolicyPort { proto: PROTO_UDP, port: PortSpec::Range(port, port) }],
    };
    let mut ingress: Vec<PolicyRule> = (0..rules.saturating_sub(1))
        .map(|k| rule(block(0xac10_0000 + (k as u32) * 16, 28), 6000 + (k % 50_000) as u16))
        .collect();
    ingress.push(rule(block(0x0a00_0000, 8), DPORT));
    PolicySpec {
        endpoints: vec![PolicyEndpoint { namespace: "default".into(), labels: selector("web").match_labels, named_ports: vec![] }],
        policies: vec![NetworkPolicy {
            name: "web".into(),
            namespace: "default".into(),
            pod_selector: selector("web"),
            ingress,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn tables(rules: usize) -> Tables {
    let spec = L3Spec {
        networks: vec![NetworkSpec {
            name: "bench".into(),
            id: 1,
            mode: NetMode::Routed,
            subnets4: vec![(Ipv4Addr::new(10, 1, 0, 0), 24), (Ipv4Addr::new(192, 0, 2, 0), 24)],
            subnets6: vec![],
            gateway_mac: MacAddr([2, 0, 0, 0, 0xff, 1]),
            gateway_v4: Some(Ipv4Addr::new(10, 1, 0, 1)),
            gateway_v6: None,
            dhcp: None,
            flow_limit: None,
        }],
        endpoints: vec![EndpointSpec {
            name: "web".into(),
            network: 0,
            port: ENDPOINT,
            vlan: None,
            mac: ENDPOINT_MAC,
            ipv4: vec![ENDPOINT_IP],
            ipv6: vec![],
            allowed: vec![],
        }],
        uplinks: vec![UplinkSpec {
            port: UPLINK,
            network: 0,
            mac: UPLINK_MAC,
            vlan: None,
            ipv4: Some(Ipv4Addr::new(192, 0, 2, 2)),
            ipv6: None,
        }],
        routes: vec![],
    };
    let mut l3 = build_l3(2, &spec).expect("bench topology");
    l3.policy = PolicyTables::compile(&policy(rules)).expect("bench policy");
    l3.stateful = true;
    Tables {
        epoch: 1,
        ports: (0..2).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
        l2: build_l2(2, &[]).expect("no bridges"),
        l3,
        l2_epoch: 1,
        io: Default::default(),
    }
}

/// Connection `i`'s frame: UDP from 10.128.0.0 + i, port 1024 + i % 64k, to the
/// endpoint's port 5001 (no UDP checksum, as IPv4 allows), TTL 64.
pub fn udp_frame(i: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let l2 = emit_header(&mut f, UPLINK_MAC, MacAddr([2, 0, 0, 0, 0xaa, 1]), None, EtherType::IPV4);
    let payload = (FRAME_LEN - l2 - 20) as u16;
    ipv4::emit_header(&mut f[l2..], Ipv4Addr::from(0x0a80_0000 + i), ENDPOINT_IP, 17, 64, payload, i as u16);
    let u = &mut f[l2 + 20..];
    u[0..2].copy_from_slice(&(1024 + (i % 64_000) as u16).to_be_bytes());
    u[2..4].copy_from_slice(&DPORT.to_be_bytes());
    u[4..6].copy_from_slice(&payload.to_be_bytes());
    f
}

/// The stateful pipeline on `flows` established connections, one frame per connection.
pub struct StatefulBench {
    pub tables: Tables,
    pub pipeline: Pipeline,
    /// The frames as generated, to restore the buffers from.
    originals: Vec<[u8; FRAME_LEN]>,
    bursts: Vec<Vec<HeapBuf>>,
    sink: Sink,
    /// Next burst of the rotation.
    next: usize,
}

impl StatefulBench {
    /// Builds the topology with a policy of `rules` rules and a flow table of twice
    /// `flows` entries (bench.sh's default), and creates the connections (untimed).
    /// `fast_path: false` holds every packet to the full routing path; `shuffled`
    /// replays the connections in a random order rather than the one they were created in.
    pub fn new(flows: u32, rules: usize, fast_path: bool, shuffled: bool) -> StatefulBench {
        let tables = tables(rules);
        let config = FlowConfig { capacity: (2 * flows).max(1024), ..FlowConfig::default() };
        let mut pipeline = Pipeline::new(&tables, &config);
        pipeline.fast_path = fast_path;
        // At least a burst, and whole bursts, cycling over the connections.
        let n = (flows as usize).max(BURST).next_multiple_of(BURST);
        let originals: Vec<_> = (0..n as u32).map(|i| udp_frame(i % flows)).collect();
        let bursts = originals.chunks(BURST).map(|c| c.iter().map(|f| HeapBuf::new(f)).collect()).collect();
        let sink = Sink { home: ENDPOINT, back: Vec::with_capacity(n), ..Default::default() };
        let mut b = StatefulBench { tables, pipeline, originals, bursts, sink, next: 0 };
        let all = b.bursts.len();
        b.run(all);
        if shuffled {
            crate::shuffle(&mut b.originals, 0x5eed_f10e);
        }
        b.refill(0);
        assert_eq!(b.pipeline.l3.flows.len(), flows as usize, "one connection per flow");
        b.sink.sent = 0;
        b
    }

    /// Frames in the rotation.
    pub fn frames(&self) -> usize {
        self.originals.len()
    }

    /// Runs the next `bursts` bursts of the rotation (at most what is left of it);
    /// returns how many ran.
    fn run(&mut self, bursts: usize) -> usize {
        let end = (self.next + bursts).min(self.bursts.len());
        for burst in &mut self.bursts[self.next..end] {
            self.pipeline.process(&self.tables, UPLINK, burst.drain(..), NOW_MS, &mut self.sink, &mut |_| {});
        }
        let done = end - self.next;
        self.next = end % self.bursts.len();
        done
    }

    /// Untimed: the routed buffers (of the bursts from `first` on) back into their
    /// bursts, with their original bytes.
    fn refill(&mut self, first: usize) {
        assert_eq!(self.sink.dropped, 0, "stateful bench: the pipeline dropped packets");
        for (k, mut b) in self.sink.back.drain(..).enumerate() {
            let i = first * BURST + k;
            b.data_mut().copy_from_slice(&self.originals[i]);
            self.bursts[i / BURST].push(b);
        }
    }

    /// Time for `iters` bursts (criterion `iter_custom`), up to 32 bursts between two
    /// clock reads; checks that every packet was routed.
    pub fn measure(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let (routed, first) = (self.pipeline.l3.counters.routed, self.next);
            let t0 = Instant::now();
            let k = self.run(left.min(32) as usize);
            total += t0.elapsed();
            assert_eq!(self.pipeline.l3.counters.routed - routed, (k * BURST) as u64, "stateful bench: not every packet routed");
            self.refill(first);
            left -= k as u64;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture holds what `measure` relies on: every frame routed, none dropped, and
    /// restored frames still hit their connections (no new ones) round after round.
    #[test]
    fn every_frame_is_routed_round_after_round() {
        for (fast, shuffled) in [(true, false), (false, false), (true, true)] {
            let mut b = StatefulBench::new(100, 10, fast, shuffled);
            assert_eq!(b.frames(), 128);
            b.measure(4 * 3 + 1);
            assert_eq!(b.pipeline.l3.counters.flows_created, 100, "fast path {fast}");
            assert_eq!(b.pipeline.l3.counters.routed, 128 * 4 + 32);
        }
    }
}
