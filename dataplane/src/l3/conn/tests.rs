//! The connection stage through the whole routing stage: policy verdicts, replies,
//! re-decision after a publish, fragments, ICMP errors, limits.

use crate::flow::FlowConfig;
use crate::l3::fixture::*;
use crate::l3::forward::{process, L3State};
use crate::l3::{L3Out, L3Tables};
use crate::packet::HeapBuf;
use crate::policy::{Direction, LabelSelector, Labels, NetworkPolicy, Peer, PolicyEndpoint, PolicyPort, PolicyRule, PolicySpec, PolicyTables, PortSpec};
use crate::wire::checksum;
use crate::wire::MacAddr;
use crate::DropReason;
use std::net::Ipv4Addr;

const A: &str = "10.1.0.10";
const B: &str = "10.1.0.11";
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sel(kv: &[(&str, &str)]) -> LabelSelector {
    LabelSelector { match_labels: labels(kv), match_expressions: vec![] }
}

/// Endpoints a..d of the fixture, labelled app=a..d in namespace `default`.
fn endpoints() -> Vec<PolicyEndpoint> {
    ["a", "b", "c", "d"]
        .iter()
        .map(|n| PolicyEndpoint { namespace: "default".into(), labels: labels(&[("app", n)]), named_ports: vec![] })
        .collect()
}

/// Default deny ingress for every pod, plus b accepting a on TCP `port`.
fn deny_all_but_a_to_b(port: u16) -> PolicySpec {
    PolicySpec {
        endpoints: endpoints(),
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
                pod_selector: sel(&[("app", "b")]),
                ingress: vec![PolicyRule {
                    peers: vec![Peer { pod_selector: Some(sel(&[("app", "a")])), ..Default::default() }],
                    ports: vec![PolicyPort { proto: 6, port: PortSpec::Range(port, port) }, PolicyPort { proto: 17, port: PortSpec::Any }],
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn with_policy(spec: &PolicySpec) -> L3Tables {
    let mut t = tables();
    t.policy = PolicyTables::compile(spec).unwrap();
    t.stateful = true;
    t
}

fn tcp4(s: &str, d: &str, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    crate::l3::fixture::tcp4(ip4(s), ip4(d), sport, dport, flags, seq, ack)
}

/// From a (port 0) or b (port 1, VLAN 7) to the other, through blue's gateway.
fn from_a(l4: &[u8], proto: u8) -> Vec<u8> {
    ipv4_frame(GW_BLUE, MAC_A, None, ip4(A), ip4(B), proto, 64, l4)
}
fn from_b(l4: &[u8], proto: u8) -> Vec<u8> {
    ipv4_frame(GW_BLUE, MAC_B, Some(7), ip4(B), ip4(A), proto, 64, l4)
}

fn send(t: &L3Tables, st: &mut L3State, port: u16, f: &[u8]) -> L3Out {
    let mut b = HeapBuf::new(f);
    process(t, st, port, &mut b, 0)
}

const TO_B: L3Out = L3Out::Tx { port: 1, vlan: Some(7) };
const TO_A: L3Out = L3Out::Tx { port: 0, vlan: None };

#[test]
fn allowed_tcp_connection_works_both_ways_and_the_reverse_open_is_refused() {
    let t = with_policy(&deny_all_but_a_to_b(80));
    let mut st = L3State::default();
    assert_eq!(send(&t, &mut st, 0, &from_a(&tcp4(A, B, 40000, 80, SYN, 1, 0), 6)), TO_B);
    assert_eq!(send(&t, &mut st, 1, &from_b(&tcp4(B, A, 80, 40000, SYN | ACK, 9, 2), 6)), TO_A, "reply passes");
    assert_eq!(send(&t, &mut st, 0, &from_a(&tcp4(A, B, 40000, 80, ACK, 2, 10), 6)), TO_B);
    for i in 0..5 {
        assert_eq!(send(&t, &mut st, 1, &from_b(&tcp4(B, A, 80, 40000, ACK, 10 + i, 2), 6)), TO_A);
    }
    assert_eq!(st.counters.flows_created, 1, "one entry for both directions");
    // b opening a connection to a: a is isolated and allows nothing.
    let out = send(&t, &mut st, 1, &from_b(&tcp4(B, A, 5555, 22, SYN, 1, 0), 6));
    assert_eq!(out, L3Out::Drop(DropReason::PolicyIngress));
    // Another port of b: not allowed either.
    let out = send(&t, &mut st, 0, &from_a(&tcp4(A, B, 40001, 81, SYN, 1, 0), 6));
    assert_eq!(out, L3Out::Drop(DropReason::PolicyIngress));
    // And the reply direction of a denied connection stays denied.
    let out = send(&t, &mut st, 1, &from_b(&tcp4(B, A, 81, 40001, SYN | ACK, 1, 2), 6));
    assert_eq!(out, L3Out::Drop(DropReason::PolicyIngress));
    assert_eq!(st.flows.len(), 3, "denied connections are cached too");
}

#[test]
fn a_new_policy_cuts_an_existing_connection_at_its_next_packet() {
    let mut t = with_policy(&deny_all_but_a_to_b(80));
    let mut st = L3State::default();
    st.epoch = 1;
    assert_eq!(send(&t, &mut st, 0, &from_a(&tcp4(A, B, 40000, 80, SYN, 1, 0), 6)), TO_B);
    assert_eq!(send(&t, &mut st, 1, &from_b(&tcp4(B, A, 80, 40000, SYN | ACK, 9, 2), 6)), TO_A);
    // Publish: b now only accepts port 443.
    t.policy = PolicyTables::compile(&deny_all_but_a_to_b(443)).unwrap();
    st.epoch = 2;
    let out = send(&t, &mut st, 1, &from_b(&tcp4(B, A, 80, 40000, ACK, 10, 2), 6));
    assert_eq!(out, L3Out::Drop(DropReason::PolicyIngress), "the very next packet, even a reply");
    let out = send(&t, &mut st, 0, &from_a(&tcp4(A, B, 40000, 80, ACK, 2, 10), 6));
    assert_eq!(out, L3Out::Drop(DropReason::PolicyIngress));
    assert_eq!(st.counters.flows_redecided, 1);
    // And back: allowed again on the next publish, state kept (no new entry).
    t.policy = PolicyTables::compile(&deny_all_but_a_to_b(80)).unwrap();
    st.epoch = 3;
    assert_eq!(send(&t, &mut st, 0, &from_a(&tcp4(A, B, 40000, 80, ACK, 2, 10), 6)), TO_B);
    assert_eq!(st.counters.flows_created, 1);
}

#[test]
fn tracking_without_policy_is_a_choice() {
    let mut t = tables();
    let mut st = L3State::default();
    let u = udp4(ip4(A), ip4(B), 1, 2, b"x");
    for _ in 0..3 {
        assert_eq!(send(&t, &mut st, 0, &from_a(&u, 17)), TO_B);
    }
    assert_eq!((st.counters.flows_created, st.flows.len(), st.counters.routed), (0, 0, 3), "stateless routing");
    t.stateful = true;
    for _ in 0..3 {
        assert_eq!(send(&t, &mut st, 0, &from_a(&u, 17)), TO_B);
    }
    assert_eq!((st.counters.flows_created, st.flows.len(), st.counters.routed), (1, 1, 6), "flows.track: always");
}

/// Makes `f` (Ethernet, maybe 802.1Q, + IPv4) a fragment: `offset` in bytes, more-fragments flag.
fn fragment(mut f: Vec<u8>, ident: u16, offset: u16, more: bool) -> Vec<u8> {
    let l2 = if f[12..14] == [0x81, 0] { 18 } else { 14 };
    let ip = &mut f[l2..];
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    let fo = (offset / 8) | if more { 0x2000 } else { 0 };
    ip[6..8].copy_from_slice(&fo.to_be_bytes());
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn fragments_follow_their_first_fragment_and_never_bypass() {
    let t = with_policy(&deny_all_but_a_to_b(80));
    let mut st = L3State::default();
    let first = fragment(from_a(&udp4(ip4(A), ip4(B), 5000, 53, &[7u8; 64]), 17), 0x77, 0, true);
    let tail = fragment(from_a(&[9u8; 40], 17), 0x77, 72, false);
    assert_eq!(send(&t, &mut st, 0, &first), TO_B, "a->b UDP is allowed");
    assert_eq!(send(&t, &mut st, 0, &tail), TO_B, "its tail follows");
    // A tail whose first fragment never came.
    let orphan = fragment(from_a(&[9u8; 40], 17), 0x78, 72, false);
    assert_eq!(send(&t, &mut st, 0, &orphan), L3Out::Drop(DropReason::FragmentUnknown));
    // b -> a is denied: its first fragment is dropped and so is its tail.
    let first = fragment(from_b(&udp4(ip4(B), ip4(A), 5000, 53, &[7u8; 64]), 17), 0x79, 0, true);
    let tail = fragment(from_b(&[9u8; 40], 17), 0x79, 72, false);
    assert_eq!(send(&t, &mut st, 1, &first), L3Out::Drop(DropReason::PolicyIngress));
    assert_eq!(send(&t, &mut st, 1, &tail), L3Out::Drop(DropReason::PolicyIngress));
}

/// An ICMPv4 error of `typ` quoting `quoted` (an IPv4 packet).
fn icmp_error(typ: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..quoted.len().min(28)]);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn icmp_errors_about_a_tracked_connection_pass_and_unrelated_ones_are_judged_by_policy() {
    let t = with_policy(&deny_all_but_a_to_b(80));
    let mut st = L3State::default();
    let req = from_a(&udp4(ip4(A), ip4(B), 6000, 9999, b"q"), 17);
    assert_eq!(send(&t, &mut st, 0, &req), TO_B);
    // b answers "port unreachable" quoting a's datagram: related to an allowed connection.
    let err = from_b(&icmp_error(3, 3, &req[14..]), 1);
    assert_eq!(send(&t, &mut st, 1, &err), TO_A);
    // The same error about a datagram a never sent: a is isolated, so it is denied.
    let never = from_a(&udp4(ip4(A), ip4(B), 6001, 9999, b"q"), 17);
    let err = from_b(&icmp_error(3, 3, &never[14..]), 1);
    assert_eq!(send(&t, &mut st, 1, &err), L3Out::Drop(DropReason::PolicyIngress));
    assert_eq!(st.flows.len(), 1, "errors create no connections");
}

#[test]
fn echo_request_and_reply_pair_by_identifier() {
    let t = with_policy(&PolicySpec {
        endpoints: endpoints(),
        policies: vec![NetworkPolicy {
            name: "a-isolated".into(),
            namespace: "default".into(),
            pod_selector: sel(&[("app", "a")]),
            policy_types: Some(vec![Direction::Ingress]),
            ..Default::default()
        }],
        ..Default::default()
    });
    let mut st = L3State::default();
    assert_eq!(send(&t, &mut st, 0, &from_a(&echo4(7, 1, b"p"), 1)), TO_B, "a pings b");
    let mut reply = echo4(7, 1, b"p");
    reply[0] = 0;
    reply[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&reply);
    reply[2..4].copy_from_slice(&c.to_be_bytes());
    assert_eq!(send(&t, &mut st, 1, &from_b(&reply, 1)), TO_A, "the reply to a's ping passes");
    assert_eq!(send(&t, &mut st, 1, &from_b(&echo4(8, 1, b"p"), 1)), L3Out::Drop(DropReason::PolicyIngress), "b cannot ping a");
}

#[test]
fn network_flow_limit_and_strict_tcp() {
    let mut spec = spec();
    spec.networks[0].flow_limit = Some(2);
    let mut t = crate::l3::build_l3(8, &spec).unwrap();
    t.stateful = true;
    let mut st = L3State::default();
    for p in 0..2 {
        assert_eq!(send(&t, &mut st, 0, &from_a(&udp4(ip4(A), ip4(B), 100 + p, 2, b"x"), 17)), TO_B);
    }
    let out = send(&t, &mut st, 0, &from_a(&udp4(ip4(A), ip4(B), 200, 2, b"x"), 17));
    assert_eq!(out, L3Out::Drop(DropReason::NetworkFlowLimit));
    // Red has no limit.
    let c = ipv4_frame(GW_RED, MAC_C, None, ip4(A), ip4("172.16.0.5"), 17, 64, &udp4(ip4(A), ip4("172.16.0.5"), 1, 2, b"x"));
    assert!(matches!(send(&t, &mut st, 2, &c), L3Out::Tx { port: 4, .. }));

    let mut t = tables();
    t.stateful = true;
    let mut st = L3State::new(&FlowConfig { capacity: 64, tcp_strict: true, ..FlowConfig::default() });
    let out = send(&t, &mut st, 0, &from_a(&tcp4(A, B, 1, 80, ACK, 5, 5), 6));
    assert_eq!(out, L3Out::Drop(DropReason::CtInvalid), "strict: only a SYN opens");
    assert_eq!(send(&t, &mut st, 0, &from_a(&tcp4(A, B, 1, 80, SYN, 5, 0), 6)), TO_B);
    let mut st = L3State::new(&FlowConfig { capacity: 64, tcp_strict: false, ..FlowConfig::default() });
    assert_eq!(send(&t, &mut st, 0, &from_a(&tcp4(A, B, 1, 80, ACK, 5, 5), 6)), TO_B, "liberal: picked up mid-stream");
}

#[test]
fn uplink_traffic_meets_ingress_policy_by_address() {
    let mut spec = deny_all_but_a_to_b(80);
    spec.policies[1].ingress[0].peers.push(Peer {
        ip_block: Some(crate::policy::IpBlock {
            cidr: crate::policy::IpNet { addr: u32::from(Ipv4Addr::new(198, 18, 0, 0)) as u128, len: 15, v6: false },
            except: vec![],
        }),
        ..Default::default()
    });
    let t = with_policy(&spec);
    let mut st = L3State::default();
    let from_net = |src: &str| {
        ipv4_frame(UPLINK_MAC, ROUTER_MAC, None, ip4(src), ip4(B), 6, 64, &tcp4(src, B, 3333, 80, SYN, 1, 0))
    };
    assert_eq!(send(&t, &mut st, 3, &from_net("198.19.1.1")), TO_B);
    assert_eq!(send(&t, &mut st, 3, &from_net("198.20.1.1")), L3Out::Drop(DropReason::PolicyIngress));
    let _ = MacAddr::ZERO;
}
