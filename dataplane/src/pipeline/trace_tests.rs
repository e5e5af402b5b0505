//! The packet trace through the pipeline: a known packet gives the expected stage list on
//! the L2 path, the stateless and stateful L3 paths (with a policy drop), and only the
//! armed number of packets of the filtered port is traced.

use std::sync::Arc;

use super::*;
use crate::flow::{ConnState, Dir, FlowConfig};
use crate::l2::{build_l2, BridgeSpec, VlanMode};
use crate::l3::fixture::*;
use crate::packet::HeapBuf;
use crate::policy::{Direction, LabelSelector, Labels, NetworkPolicy, Peer, PolicyEndpoint, PolicyPort, PolicyRule, PolicySpec, PolicyTables, PortSpec, Verdict, VerdictBy};
use crate::tables::PortEntry;
use crate::trace::{FlowNote, LocalAnswer, RouteNote, RouteResult, TraceRecord, TraceSender};
use crate::wire::ethernet::emit_header;
use crate::wire::{EtherType, MacAddr};

#[derive(Default)]
struct Sink {
    sent: Vec<PortIdx>,
    dropped: Vec<DropReason>,
}

impl Egress<HeapBuf> for Sink {
    fn copy(&mut self, pkt: &HeapBuf) -> Option<HeapBuf> {
        Some(pkt.clone())
    }
    fn send(&mut self, port: PortIdx, _pkt: HeapBuf) {
        self.sent.push(port);
    }
    fn discard(&mut self, _pkt: HeapBuf, reason: DropReason) {
        self.dropped.push(reason);
    }
    fn count_drop(&mut self, reason: DropReason) {
        self.dropped.push(reason);
    }
}

fn flows() -> FlowConfig {
    FlowConfig { capacity: 1024, ..FlowConfig::default() }
}

fn ports(n: usize) -> Box<[PortEntry]> {
    (0..n).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect()
}

fn records(sink: &TraceControl) -> Vec<TraceRecord> {
    std::iter::from_fn(|| sink.pop()).collect()
}

fn l2_frame(dst: MacAddr, src: MacAddr) -> HeapBuf {
    let mut f = vec![0x5au8; 64];
    emit_header(&mut f, dst, src, None, EtherType::IPV4);
    HeapBuf::new(&f)
}

#[test]
fn l2_trace_shows_domain_learning_fdb_and_outputs_for_the_armed_port_only() {
    let spec = BridgeSpec {
        name: "br0".into(),
        mac_table_size: 64,
        mac_aging_ms: 300_000,
        ports: (0..3).map(|p| (p, VlanMode::Access(0))).collect(),
        static_macs: vec![],
    };
    let t = Tables { epoch: 1, ports: ports(3), l2: build_l2(3, &[spec]).unwrap(), l3: Default::default(), l2_epoch: 1, io: Default::default() };
    let mut p = Pipeline::new(&t, &flows());
    let sink = Arc::new(TraceControl::new());
    p.attach_trace(Arc::clone(&sink), 4);
    p.rx_queue = 1;
    let g = sink.arm(2, Some(0));
    let (m1, m2) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
    let mut out = Sink::default();
    // Traced: broadcast from port 0, flooded to 1 and 2.
    p.process(&t, 0, [l2_frame(MacAddr::BROADCAST, m1)], 0, &mut out, &mut |_| {});
    // Not traced: another port.
    p.process(&t, 1, [l2_frame(m1, m2)], 0, &mut out, &mut |_| {});
    // Traced: known unicast; then the budget is spent.
    p.process(&t, 0, [l2_frame(m2, m1), l2_frame(m2, m1)], 0, &mut out, &mut |_| {});
    assert_eq!(out.sent, vec![1, 2, 0, 1, 1], "tracing changes no forwarding");
    let recs = records(&sink);
    assert_eq!(recs.len(), 2);
    let r = &recs[0];
    assert_eq!((r.generation, r.worker, r.port, r.queue, r.frame_len), (g, 4, 0, 1, 64));
    assert_eq!(&r.head()[..6], &[0xff; 6]);
    assert_eq!(
        r.steps.as_slice(),
        &[
            Step::Bridge { domain: 0, vid: 0, tagged: false },
            Step::Learn(Learn::Learned),
            Step::Flood { multicast: true },
            Step::Tx { port: 1, vlan: None },
            Step::Tx { port: 2, vlan: None },
        ]
    );
    assert_eq!(
        recs[1].steps.as_slice(),
        &[
            Step::Bridge { domain: 0, vid: 0, tagged: false },
            Step::Learn(Learn::Refreshed),
            Step::FdbHit { port: 1 },
            Step::Tx { port: 1, vlan: None }
        ]
    );
    assert!(!sink.armed_for(0) && !p.l3.trace.on);
}

fn l3_tables(l3: crate::l3::L3Tables) -> Tables {
    Tables { epoch: 1, ports: ports(8), l2: build_l2(8, &[]).unwrap(), l3, l2_epoch: 1, io: Default::default() }
}

fn traced_one(t: &Tables, p: &mut Pipeline, sink: &TraceControl, port: PortIdx, frame: &[u8]) -> (TraceRecord, Sink) {
    sink.arm(1, None);
    let mut out = Sink::default();
    p.process(t, port, [HeapBuf::new(frame)], 0, &mut out, &mut |_| {});
    let mut recs = records(sink);
    assert_eq!(recs.len(), 1);
    (recs.remove(0), out)
}

#[test]
fn stateless_l3_trace_shows_sender_route_ecmp_and_local_answers() {
    let t = l3_tables(tables());
    let mut p = Pipeline::new(&t, &flows());
    let sink = Arc::new(TraceControl::new());
    p.attach_trace(Arc::clone(&sink), 0);

    // Uplink → ECMP route.
    let (s, d) = (ip4("192.0.2.50"), ip4("198.51.100.7"));
    let f = ipv4_frame(UPLINK_MAC, ROUTER_MAC, None, s, d, 17, 64, &udp4(s, d, 1000, 2000, b"x"));
    let (r, out) = traced_one(&t, &mut p, &sink, 3, &f);
    let [Step::L3In { vrf: 0, sender: TraceSender::Uplink(3), gateway: false }, Step::Flow(FlowNote::Stateless), Step::Route { note, result: RouteResult::Gateway { port, mac } }, Step::Tx { port: tx, vlan: None }] =
        r.steps.as_slice()
    else {
        panic!("unexpected steps {:?}", r.steps)
    };
    let (i, n) = note.ecmp.expect("an ECMP pick");
    assert_eq!(n, 2);
    assert_eq!((*port, *mac, *tx), (5 + i, ECMP_MACS[i as usize], 5 + i));
    assert_eq!(out.sent, vec![5 + i]);

    // Endpoint a pings its gateway: answered locally, back out of port 0.
    let (a, gw) = (ip4("10.1.0.10"), ip4("10.1.0.1"));
    let f = ipv4_frame(GW_BLUE, MAC_A, None, a, gw, 1, 64, &echo4(7, 1, b"ping"));
    let (r, _) = traced_one(&t, &mut p, &sink, 0, &f);
    assert_eq!(
        r.steps.as_slice(),
        &[
            Step::L3In { vrf: 0, sender: TraceSender::Endpoint(0), gateway: false },
            Step::AntiSpoofOk,
            Step::Flow(FlowNote::Stateless),
            Step::Route { note: RouteNote { vrf: 0, next_hop: r_nh(&r), ecmp: None }, result: RouteResult::Local },
            Step::Local(LocalAnswer::EchoReply),
            Step::Tx { port: 0, vlan: None },
        ]
    );

    // A spoofed source: the anti-spoofing drop is the outcome.
    let f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.99"), gw, 1, 64, &echo4(7, 1, b"ping"));
    let (r, out) = traced_one(&t, &mut p, &sink, 0, &f);
    assert_eq!(
        r.steps.as_slice(),
        &[Step::L3In { vrf: 0, sender: TraceSender::Endpoint(0), gateway: false }, Step::Drop(DropReason::Spoofed)]
    );
    assert_eq!(out.dropped, vec![DropReason::Spoofed]);
}

/// The next hop id of the record's route step.
fn r_nh(r: &TraceRecord) -> u32 {
    r.steps.iter().find_map(|s| if let Step::Route { note, .. } = s { Some(note.next_hop) } else { None }).unwrap()
}

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Every pod ingress-isolated; b accepts UDP from a.
fn policy() -> PolicySpec {
    let sel = |app: &str| LabelSelector { match_labels: labels(&[("app", app)]), match_expressions: vec![] };
    PolicySpec {
        endpoints: ["a", "b", "c", "d"]
            .iter()
            .map(|n| PolicyEndpoint { namespace: "default".into(), labels: labels(&[("app", n)]), named_ports: vec![] })
            .collect(),
        policies: vec![
            NetworkPolicy {
                name: "default-deny".into(),
                namespace: "default".into(),
                pod_selector: LabelSelector::default(),
                policy_types: Some(vec![Direction::Ingress]),
                ..Default::default()
            },
            NetworkPolicy {
                name: "b-from-a".into(),
                namespace: "default".into(),
                pod_selector: sel("b"),
                ingress: vec![PolicyRule {
                    peers: vec![Peer { pod_selector: Some(sel("a")), ..Default::default() }],
                    ports: vec![PolicyPort { proto: 17, port: PortSpec::Any }],
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[test]
fn stateful_l3_trace_shows_flow_cache_conntrack_policy_and_the_policy_drop() {
    let mut l3 = tables();
    l3.policy = PolicyTables::compile(&policy()).unwrap();
    l3.stateful = true;
    let t = l3_tables(l3);
    let mut p = Pipeline::new(&t, &flows());
    let sink = Arc::new(TraceControl::new());
    p.attach_trace(Arc::clone(&sink), 0);
    let (a, b) = (ip4("10.1.0.10"), ip4("10.1.0.11"));
    let f = ipv4_frame(GW_BLUE, MAC_A, None, a, b, 17, 64, &udp4(a, b, 1000, 53, b"q"));

    // First packet: flow miss, route to endpoint b (VLAN 7 on port 1), policy allows.
    let (r, out) = traced_one(&t, &mut p, &sink, 0, &f);
    let allow = Verdict { allow: true, log: false, by: VerdictBy::NetworkPolicy };
    let nh = r_nh(&r);
    assert_eq!(
        r.steps.as_slice(),
        &[
            Step::L3In { vrf: 0, sender: TraceSender::Endpoint(0), gateway: false },
            Step::AntiSpoofOk,
            Step::Flow(FlowNote::Miss),
            Step::Route { note: RouteNote { vrf: 0, next_hop: nh, ecmp: None }, result: RouteResult::Endpoint { endpoint: 1, port: 1 } },
            Step::Policy { verdict: Some(allow), dir: Dir::Orig },
            Step::Conntrack { state: ConnState::Udp { replied: false }, valid: true },
            Step::Tx { port: 1, vlan: Some(7) },
        ]
    );
    assert_eq!(out.sent, vec![1]);

    // Second packet of the connection: a flow-cache hit, no route or policy step.
    let (r, _) = traced_one(&t, &mut p, &sink, 0, &f);
    assert_eq!(
        r.steps.as_slice(),
        &[
            Step::L3In { vrf: 0, sender: TraceSender::Endpoint(0), gateway: false },
            Step::AntiSpoofOk,
            Step::Flow(FlowNote::Hit(Dir::Orig)),
            Step::Conntrack { state: ConnState::Udp { replied: false }, valid: true },
            Step::Tx { port: 1, vlan: Some(7) },
        ]
    );

    // b → a: a is ingress-isolated and accepts nothing: a policy drop.
    let f = ipv4_frame(GW_BLUE, MAC_B, Some(7), b, a, 17, 64, &udp4(b, a, 2000, 53, b"q"));
    let (r, out) = traced_one(&t, &mut p, &sink, 1, &f);
    let deny = Verdict { allow: false, log: false, by: VerdictBy::IngressDenied };
    let steps: Vec<Step> = r.steps.iter().copied().filter(|s| !matches!(s, Step::Conntrack { .. })).collect();
    assert_eq!(
        steps,
        vec![
            Step::L3In { vrf: 0, sender: TraceSender::Endpoint(1), gateway: false },
            Step::AntiSpoofOk,
            Step::Flow(FlowNote::Miss),
            Step::Route { note: RouteNote { vrf: 0, next_hop: r_nh(&r), ecmp: None }, result: RouteResult::Endpoint { endpoint: 0, port: 0 } },
            Step::Policy { verdict: Some(deny), dir: Dir::Orig },
            Step::Drop(DropReason::PolicyIngress),
        ]
    );
    assert_eq!(out.dropped, vec![DropReason::PolicyIngress]);
}
