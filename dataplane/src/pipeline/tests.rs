use super::*;
use crate::l2::{build_l2, BridgeSpec, VlanMode};
use crate::packet::HeapBuf;
use crate::tables::PortEntry;
use crate::wire::ethernet::emit_header;
use crate::wire::{EtherType, EthernetFrame, MacAddr, VlanTag};

/// Collects what the pipeline sends and drops; `copies_left` simulates the mempool.
#[derive(Default)]
struct Collect {
    sent: Vec<(PortIdx, HeapBuf)>,
    dropped: Vec<DropReason>,
    copies_left: usize,
}

impl Egress<HeapBuf> for Collect {
    fn copy(&mut self, pkt: &HeapBuf) -> Option<HeapBuf> {
        self.copies_left = self.copies_left.checked_sub(1)?;
        Some(pkt.clone())
    }
    fn send(&mut self, port: PortIdx, pkt: HeapBuf) {
        self.sent.push((port, pkt));
    }
    fn discard(&mut self, _pkt: HeapBuf, reason: DropReason) {
        self.dropped.push(reason);
    }
    fn count_drop(&mut self, reason: DropReason) {
        self.dropped.push(reason);
    }
}

fn tables(bridge_ports: Vec<(PortIdx, VlanMode)>, n_ports: usize) -> Tables {
    let spec = BridgeSpec { name: "br0".into(), mac_table_size: 1024, mac_aging_ms: 300_000, ports: bridge_ports, static_macs: vec![] };
    Tables {
        epoch: 1,
        ports: (0..n_ports).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
        l2: build_l2(n_ports, &[spec]).unwrap(),
        l3: Default::default(),
        l2_epoch: 1,
        io: Default::default(),
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn frame(dst: MacAddr, src: MacAddr, vid: Option<u16>) -> HeapBuf {
    let mut f = vec![0x5au8; 64];
    emit_header(&mut f, dst, src, vid.map(VlanTag::with_vid), EtherType::IPV4);
    HeapBuf::new(&f)
}

fn vid_of(b: &HeapBuf) -> Option<u16> {
    EthernetFrame::new_checked(b.data()).unwrap().vlan().map(|t| t.vid())
}

#[test]
fn flood_reaches_every_other_member_with_its_own_tagging() {
    let t = tables(
        vec![
            (0, VlanMode::Access(10)),
            (1, VlanMode::Access(10)),
            (2, VlanMode::Trunk { allowed: vec![10], native: None }),
            (3, VlanMode::Access(20)),
        ],
        4,
    );
    let mut p = Pipeline::new(&t, &small_flows());
    let mut out = Collect { copies_left: 8, ..Default::default() };
    p.process(&t, 0, [frame(MacAddr::BROADCAST, mac(1), None)], 0, &mut out, &mut |_| {});
    let got: Vec<_> = out.sent.iter().map(|(port, b)| (*port, vid_of(b))).collect();
    assert_eq!(got, vec![(1, None), (2, Some(10))], "no hairpin, no leak into VLAN 20");
    assert!(out.dropped.is_empty());
    // The payload is intact on the tagged copy.
    assert_eq!(&out.sent[1].1.data()[18..], &frame(MacAddr::BROADCAST, mac(1), None).data()[14..]);
}

#[test]
fn copy_failure_is_counted_and_the_original_still_goes_out() {
    let t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0)), (2, VlanMode::Access(0))], 3);
    let mut p = Pipeline::new(&t, &small_flows());
    let mut out = Collect::default();
    p.process(&t, 0, [frame(MacAddr::BROADCAST, mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].0, 2);
    assert_eq!(out.dropped, vec![DropReason::CopyFailed]);
}

#[test]
fn lone_port_floods_to_nobody() {
    let t = tables(vec![(0, VlanMode::Access(5)), (1, VlanMode::Access(6))], 2);
    let mut p = Pipeline::new(&t, &small_flows());
    let mut out = Collect::default();
    p.process(&t, 0, [frame(MacAddr::BROADCAST, mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(out.dropped, vec![DropReason::NoOutput]);
}

#[test]
fn learning_turns_floods_into_unicast() {
    let t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0)), (2, VlanMode::Access(0))], 3);
    let mut p = Pipeline::new(&t, &small_flows());
    let mut learned = vec![];
    let mut out = Collect { copies_left: 100, ..Default::default() };
    p.process(&t, 1, [frame(mac(1), mac(2), None)], 0, &mut out, &mut |e| learned.push(e));
    assert_eq!(out.sent.len(), 2, "unknown unicast floods");
    out.sent.clear();
    p.process(&t, 0, [frame(mac(2), mac(1), None), frame(mac(2), mac(1), None)], 1, &mut out, &mut |e| learned.push(e));
    assert_eq!(out.sent.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![1, 1]);
    assert_eq!(learned.len(), 2);
    assert_eq!(p.fdb().len(), 2);
}

#[test]
fn new_epoch_reseeds_learning() {
    let mut t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0))], 2);
    let mut p = Pipeline::new(&t, &small_flows());
    let mut out = Collect::default();
    p.process(&t, 0, [frame(mac(9), mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(p.fdb().len(), 1);
    p.sync(&t);
    assert_eq!(p.fdb().len(), 1, "same epoch: kept");
    t.epoch = 2;
    p.sync(&t);
    assert_eq!(p.fdb().len(), 1, "new epoch, same L2 tables: MACs kept");
    t.l2_epoch += 1;
    p.sync(&t);
    assert_eq!(p.fdb().len(), 0, "new L2 epoch: relearn");
}

#[test]
fn remote_learn_events_apply() {
    let t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0))], 2);
    let mut a = Pipeline::new(&t, &small_flows());
    let mut b = Pipeline::new(&t, &small_flows());
    let mut events = vec![];
    let mut out = Collect::default();
    a.process(&t, 1, [frame(MacAddr::BROADCAST, mac(7), None)], 0, &mut out, &mut |e| events.push(e));
    for e in events {
        b.apply_learn(&t, e, 0);
    }
    out.sent.clear();
    b.process(&t, 0, [frame(mac(7), mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(out.sent[0].0, 1, "worker b forwards to what worker a learned");
}

mod bridged {
    use super::*;
    use crate::l3::fixture::{echo4, ip4, ipv4_frame, udp4};
    use crate::l3::{build_l3, DhcpServer, EndpointSpec, L3Spec, NetMode, NetworkSpec};
    use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};

    const GW: MacAddr = MacAddr([2, 0x5c, 0, 0, 0, 1]);
    const GW2: MacAddr = MacAddr([2, 0x5c, 0, 0, 0, 2]);

    /// Bridge br0 with untagged ports 0, 1 and 2 is the bridged network "lan" (endpoints x
    /// on port 0 and y on port 1; port 2 is a stranger). A routed network "wan" has
    /// endpoint z on port 3; each network leaks the other's subnet.
    fn topo() -> Tables {
        let spec = BridgeSpec {
            name: "br0".into(),
            mac_table_size: 64,
            mac_aging_ms: 300_000,
            ports: vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0)), (2, VlanMode::Access(0))],
            static_macs: vec![],
        };
        let mut l2 = build_l2(4, &[spec]).unwrap();
        let mut domains = l2.domains.to_vec();
        domains[0].gateway = Some(0);
        l2.domains = domains.into();
        let net = |name: &str, id, mode, gw_mac, subnet: &str, gw: &str| NetworkSpec {
            name: name.into(),
            id,
            mode,
            subnets4: vec![(ip4(subnet), 24)],
            subnets6: vec![],
            gateway_mac: gw_mac,
            gateway_v4: Some(ip4(gw)),
            gateway_v6: None,
            dhcp: Some(DhcpServer { lease_s: 600, dns: Box::new([]), routes: Box::new([]) }),
            flow_limit: None,
        };
        let ep = |name: &str, network, port, last: u8, ip: &str| EndpointSpec {
            name: name.into(),
            network,
            port,
            vlan: None,
            mac: MacAddr([2, 0, 0, 0, 0, last]),
            ipv4: vec![ip4(ip)],
            ipv6: vec![],
            allowed: vec![],
        };
        let l3 = build_l3(
            4,
            &L3Spec {
                networks: vec![
                    net("lan", 1, NetMode::Bridged, GW, "10.5.0.0", "10.5.0.1"),
                    net("wan", 2, NetMode::Routed, GW2, "10.6.0.0", "10.6.0.1"),
                ],
                endpoints: vec![ep("x", 0, 0, 0x10, "10.5.0.10"), ep("y", 0, 1, 0x11, "10.5.0.11"), ep("z", 1, 3, 0x20, "10.6.0.20")],
                uplinks: vec![],
                routes: vec![
                    crate::l3::RouteSpec {
                        network: 0,
                        prefix: std::net::IpAddr::V4(ip4("10.6.0.0")),
                        len: 24,
                        next_hop: crate::l3::NextHopSpec::Network(1),
                    },
                    crate::l3::RouteSpec {
                        network: 1,
                        prefix: std::net::IpAddr::V4(ip4("10.5.0.0")),
                        len: 24,
                        next_hop: crate::l3::NextHopSpec::Network(0),
                    },
                ],
            },
        )
        .unwrap();
        Tables {
            epoch: 1,
            ports: (0..4).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
            l2,
            l3,
            l2_epoch: 1,
            io: Default::default(),
        }
    }

    fn arp_req(sender: MacAddr, spa: &str, tpa: &str) -> HeapBuf {
        let mut f = vec![0u8; 60];
        emit_header(&mut f, MacAddr::BROADCAST, sender, None, EtherType::ARP);
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(sender.0),
            source_protocol_addr: ip4(spa),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip4(tpa),
        }
        .emit(&mut ArpPacket::new_unchecked(&mut f[14..42]));
        HeapBuf::new(&f)
    }

    #[test]
    fn gateway_answers_its_arp_and_other_arp_floods() {
        let t = topo();
        let mut p = Pipeline::new(&t, &small_flows());
        let mut out = Collect { copies_left: 10, ..Default::default() };
        p.process(&t, 0, [arp_req(mac(0x10), "10.5.0.10", "10.5.0.1")], 0, &mut out, &mut |_| {});
        assert_eq!(out.sent.len(), 1);
        assert_eq!(out.sent[0].0, 0, "answered back to the asker");
        assert_eq!(EthernetFrame::new_checked(out.sent[0].1.data()).unwrap().src(), GW);
        out.sent.clear();
        p.process(&t, 0, [arp_req(mac(0x10), "10.5.0.10", "10.5.0.11")], 0, &mut out, &mut |_| {});
        assert_eq!(out.sent.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![1, 2], "ARP for a neighbour floods");
        assert_eq!(p.l3.counters.arp_replies, 1);
    }

    #[test]
    fn frames_to_the_gateway_are_routed_and_l2_stays_switched() {
        let t = topo();
        let mut p = Pipeline::new(&t, &small_flows());
        let mut out = Collect { copies_left: 10, ..Default::default() };
        // x -> z (other network) through the gateway MAC.
        let f = ipv4_frame(GW, mac(0x10), None, ip4("10.5.0.10"), ip4("10.6.0.20"), 17, 64, &udp4(ip4("10.5.0.10"), ip4("10.6.0.20"), 1, 2, b"hello"));
        p.process(&t, 0, [HeapBuf::new(&f)], 0, &mut out, &mut |_| {});
        assert_eq!(out.sent.len(), 1);
        assert_eq!(out.sent[0].0, 3);
        let e = EthernetFrame::new_checked(out.sent[0].1.data()).unwrap();
        assert_eq!((e.dst(), e.src()), (mac(0x20), GW2));
        // z answers -> routed back into the bridged network, to x on port 0.
        out.sent.clear();
        let back = ipv4_frame(GW2, mac(0x20), None, ip4("10.6.0.20"), ip4("10.5.0.10"), 17, 64, &udp4(ip4("10.6.0.20"), ip4("10.5.0.10"), 2, 1, b"hi"));
        p.process(&t, 3, [HeapBuf::new(&back)], 0, &mut out, &mut |_| {});
        assert_eq!(out.sent.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0]);
        // x -> y directly (their own MACs): switched, not routed (TTL untouched).
        out.sent.clear();
        let l2 = ipv4_frame(mac(0x11), mac(0x10), None, ip4("10.5.0.10"), ip4("10.5.0.11"), 1, 64, &echo4(1, 1, b"x"));
        p.process(&t, 0, [HeapBuf::new(&l2)], 0, &mut out, &mut |_| {});
        assert_eq!(out.sent.len(), 2, "unknown unicast floods in the domain");
        assert!(out.sent.iter().all(|(_, b)| b.data() == &l2[..]));
        // A stranger on the bridge cannot use the gateway.
        out.sent.clear();
        let stranger = ipv4_frame(GW, mac(0x99), None, ip4("10.5.0.99"), ip4("10.6.0.20"), 17, 64, &udp4(ip4("10.5.0.99"), ip4("10.6.0.20"), 1, 2, b"x"));
        p.process(&t, 2, [HeapBuf::new(&stranger)], 0, &mut out, &mut |_| {});
        assert_eq!(out.dropped, vec![DropReason::UnknownEndpoint]);
    }
}

fn small_flows() -> crate::flow::FlowConfig {
    crate::flow::FlowConfig { capacity: 1024, ..crate::flow::FlowConfig::default() }
}

/// Outputs and drops in the order they happened.
#[derive(Default)]
struct Ordered(Vec<Result<(PortIdx, Vec<u8>), DropReason>>);

impl Egress<HeapBuf> for Ordered {
    fn copy(&mut self, pkt: &HeapBuf) -> Option<HeapBuf> {
        Some(pkt.clone())
    }
    fn send(&mut self, port: PortIdx, pkt: HeapBuf) {
        self.0.push(Ok((port, pkt.data().to_vec())));
    }
    fn discard(&mut self, _pkt: HeapBuf, reason: DropReason) {
        self.0.push(Err(reason));
    }
    fn count_drop(&mut self, reason: DropReason) {
        self.0.push(Err(reason));
    }
}

/// The stateful routing path parses a burst chunk by chunk before processing it,
/// prefetching as it goes (here with a table of some thousands of connections): every
/// packet must come out exactly once, in order, with the same result as packet-at-a-time
/// processing (bursts of 1 never prefetch anything ahead), including runts, non-IP frames
/// and bursts longer than a chunk.
#[test]
fn prefetching_bursts_process_every_packet_once_in_order() {
    use crate::l3::fixture::*;
    let mut l3 = tables();
    l3.stateful = true;
    let t = Tables {
        epoch: 1,
        ports: (0..8).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
        l2: build_l2(8, &[]).unwrap(),
        l3,
        l2_epoch: 1,
        io: Default::default(),
    };
    const CONNECTIONS: usize = 8192;
    let flows = crate::flow::FlowConfig { capacity: 4 * CONNECTIONS as u32, ..Default::default() };
    let (a, b) = (ip4("10.1.0.10"), ip4("10.1.0.11"));
    let n = CONNECTIONS + 500;
    let frame = |i: usize| ipv4_frame(GW_BLUE, MAC_A, None, a, b, 17, 64, &udp4(a, b, 1024 + i as u16, 53, &(i as u32).to_be_bytes()));
    let mut mixed: Vec<Vec<u8>> = (0..n).map(frame).collect();
    // Odd ones among them: a runt, an ARP-less unknown ethertype, a new flow.
    mixed.insert(40, vec![0u8; 10]);
    let mut odd = frame(0);
    odd[12..14].copy_from_slice(&[0x88, 0xb5]);
    mixed.insert(77, odd);
    mixed.insert(100, ipv4_frame(GW_BLUE, MAC_A, None, a, b, 17, 64, &udp4(a, b, 9, 9, b"new")));

    let mut burst = Pipeline::new(&t, &flows);
    let mut single = Pipeline::new(&t, &flows);
    for (i, p) in [&mut burst, &mut single].into_iter().enumerate() {
        // Create the connections.
        let mut out = Ordered::default();
        for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
            p.process(&t, 0, chunk.iter().map(|&j| HeapBuf::new(&frame(j))), 0, &mut out, &mut |_| {});
        }
        assert_eq!(out.0.len(), n, "pipeline {i}");
        assert!(p.l3.flows.len() >= CONNECTIONS);
    }
    let (mut got, mut want) = (Ordered::default(), Ordered::default());
    // Bursts of 37 (a full 32-packet window plus a short one), then of 32, 5 and 1.
    let mut rest = &mixed[..];
    for size in [37, 32, 5, 1].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(size.min(rest.len()));
        burst.process(&t, 0, now.iter().map(|f| HeapBuf::new(f)), 1, &mut got, &mut |_| {});
        rest = later;
    }
    for f in &mixed {
        single.process(&t, 0, [HeapBuf::new(f)], 1, &mut want, &mut |_| {});
    }
    assert_eq!(got.0.len(), mixed.len(), "one result per packet");
    assert_eq!(got.0, want.0, "same results, same order");
    assert_eq!(got.0.iter().filter(|r| r.is_ok()).count(), n + 1);
    assert_eq!(burst.l3.flows.len(), n + 1);
}

/// The fast path ([`crate::l3::fast`]) against the full routing path: the same frames,
/// in the same bursts, through two pipelines, one with the fast path off, must give the
/// same outputs (bytes, ports, drop reasons) in the same order, the same counters and the
/// same flow table (counters and conntrack state of every entry). The frames mix the
/// fast path's case (decided TCP/UDP connections, both directions) with everything it
/// must leave alone or treat exactly alike: TTL 1, bad checksums, fragments, spoofed
/// sources, DHCP, ICMP, multicast and broadcast, frames not for the gateway, oversize
/// frames, VLAN-tagged endpoints, policy denies, RSTs and invalid flag combinations,
/// and publishes (new epochs, another policy) in between.
mod fast_path {
    use super::*;
    use crate::flow::FlowConfig;
    use crate::l3::fixture::*;
    use crate::policy::{Direction, LabelSelector, NetworkPolicy, Peer, PolicyEndpoint, PolicyPort, PolicyRule, PolicySpec, PolicyTables, PortSpec};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn sel(app: &str) -> LabelSelector {
        LabelSelector { match_labels: [("app".to_string(), app.to_string())].into_iter().collect(), match_expressions: vec![] }
    }

    /// Snapshot `epoch`: odd epochs let a reach b on TCP 80 and UDP; even ones let only
    /// TCP 80 through (so a publish turns existing UDP connections into denies).
    fn snapshot(epoch: u64) -> Tables {
        let endpoints = ["a", "b", "c", "d"]
            .iter()
            .map(|n| PolicyEndpoint { namespace: "default".into(), labels: sel(n).match_labels, named_ports: vec![] })
            .collect();
        let mut ports = vec![PolicyPort { proto: 6, port: PortSpec::Range(80, 80) }];
        if epoch % 2 == 1 {
            ports.push(PolicyPort { proto: 17, port: PortSpec::Any });
        }
        let spec = PolicySpec {
            endpoints,
            policies: vec![NetworkPolicy {
                name: "b-from-a".into(),
                namespace: "default".into(),
                pod_selector: sel("b"),
                policy_types: Some(vec![Direction::Ingress]),
                ingress: vec![PolicyRule { peers: vec![Peer { pod_selector: Some(sel("a")), ..Default::default() }], ports }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut l3 = crate::l3::fixture::tables();
        l3.policy = PolicyTables::compile(&spec).unwrap();
        l3.stateful = true;
        Tables {
            epoch,
            ports: (0..8).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
            l2: build_l2(8, &[]).unwrap(),
            l3,
            l2_epoch: 1,
            io: Default::default(),
        }
    }

    /// One frame, from small choices (each field's range picks among a few cases).
    #[derive(Clone, Debug)]
    struct F {
        from: u8,
        to: u8,
        proto: u8,
        flags: u8,
        sport: u8,
        ttl: u8,
        oddity: u8,
    }

    fn any_frame() -> impl Strategy<Value = F> {
        (0..3u8, 0..6u8, 0..5u8, any::<u8>(), 0..4u8, 0..3u8, 0..24u8)
            .prop_map(|(from, to, proto, flags, sport, ttl, oddity)| F { from, to, proto, flags, sport, ttl, oddity })
    }

    /// (in port, frame).
    fn build(f: &F) -> (PortIdx, Vec<u8>) {
        let (a, b) = (ip4("10.1.0.10"), ip4("10.1.0.11"));
        let ext = ip4("192.0.2.77");
        // Sender: endpoint a (port 0), endpoint b (port 1, VLAN 7), or the uplink (port 3).
        let (port, src_mac, dst_mac, vlan, src): (PortIdx, _, _, _, _) = match f.from {
            0 => (0, MAC_A, GW_BLUE, None, a),
            1 => (1, MAC_B, GW_BLUE, Some(7), b),
            _ => (3, ROUTER_MAC, UPLINK_MAC, None, ext),
        };
        let dst = match f.to {
            0 => a,
            1 => b,
            2 => ext,
            3 => ip4("203.0.113.9"), // blackhole
            4 => ip4("198.51.100.20"), // ECMP
            _ => ip4("172.16.0.5"), // the other network (d)
        };
        let ttl = [64, 2, 1][f.ttl as usize];
        // The uplink relaying a packet with a's address: the same connection as a's own,
        // from another sender.
        let src = if f.from == 2 && f.oddity == 12 { a } else { src };
        // Replies (ports swapped), so connections are seen in both directions.
        let reply = (13..17).contains(&f.oddity);
        let ports = |p: u16| if reply { (p, 1000 + u16::from(f.sport)) } else { (1000 + u16::from(f.sport), p) };
        let sport = 1000 + u16::from(f.sport);
        let (proto, l4) = match f.proto {
            0 | 1 => {
                let (sp, dp) = ports([80, 22][f.proto as usize]);
                (6, tcp4(src, dst, sp, dp, f.flags & 0x1f, u32::from(f.flags) << 20, 0))
            }
            2 => {
                let (sp, dp) = ports(53);
                (17, udp4(src, dst, sp, dp, b"q"))
            }
            3 => (17, udp4(src, dst, 68, 67, b"dhcp")),
            _ => (1, echo4(sport, 1, b"ping")),
        };
        let (mut src, mut src_mac, mut dst_mac, mut big) = (src, src_mac, dst_mac, false);
        match f.oddity {
            0 => src = ip4("10.1.0.99"), // spoofed
            1 => dst_mac = MacAddr([2, 0, 0, 0, 0, 0x77]), // not for us
            2 => dst_mac = MacAddr([1, 0, 0x5e, 0, 0, 1]), // multicast MAC
            3 => src_mac = MacAddr([2, 0, 0, 0, 0, 0x66]), // unknown endpoint MAC
            4 => big = true,
            _ => {}
        }
        let l4 = if big { [l4, vec![0u8; 1500]].concat() } else { l4 };
        let dst = match f.oddity {
            5 => Ipv4Addr::BROADCAST,
            6 => ip4("224.0.0.5"),
            _ => dst,
        };
        let mut fr = ipv4_frame(dst_mac, src_mac, vlan, src, dst, proto, ttl, &l4);
        let l2 = if vlan.is_some() { 18 } else { 14 };
        match f.oddity {
            7 => fr[l2 + 10] ^= 0x55, // bad header checksum
            8 => fr[l2 + 6] |= 0x20, // more fragments (a first fragment)
            9 => fr[l2 + 7] = 0x10, // a later fragment
            10 => {
                // IPv4 options (IHL 6): still a valid header, not the 20-byte shape.
                let mut o = fr[..l2 + 20].to_vec();
                o.extend_from_slice(&[1, 1, 1, 0]);
                o.extend_from_slice(&fr[l2 + 20..]);
                o[l2] = 0x46;
                let tl = u16::from_be_bytes([o[l2 + 2], o[l2 + 3]]) + 4;
                o[l2 + 2..l2 + 4].copy_from_slice(&tl.to_be_bytes());
                o[l2 + 10..l2 + 12].copy_from_slice(&[0, 0]);
                let c = crate::wire::checksum::checksum(&o[l2..l2 + 24]);
                o[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
                fr = o;
            }
            11 => fr.truncate(l2 + 22), // truncated: IP total length beyond the frame
            _ => {}
        }
        (port, fr)
    }

    /// What an entry holds that a packet changes: key, packets, bytes, state, last seen.
    type Accounted = (FlowKey, [u64; 2], [u64; 2], crate::flow::ConnState, u64);

    fn entries(p: &Pipeline) -> Vec<Accounted> {
        let mut v: Vec<_> = p.l3.flows.iter().map(|(_, e)| (e.key, e.packets, e.bytes, e.ct, e.last_seen_ms)).collect();
        v.sort_by_key(|e| (e.0.src, e.0.dst, e.0.sport, e.0.dport, e.0.proto));
        v
    }

    use crate::flow::FlowKey;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn fast_path_matches_the_full_path(frames in proptest::collection::vec((any_frame(), 0..12u8), 1..160)) {
            compare(&frames).map_err(TestCaseError::fail)?;
        }
    }

    /// Runs `frames` (with the time step before each; 0 also publishes) through a
    /// pipeline with the fast path and one without; the first difference, if any.
    fn compare(frames: &[(F, u8)]) -> Result<(), String> {
        let flows = FlowConfig { capacity: 64, ..FlowConfig::default() };
        let mut t = snapshot(1);
        let mut fast = Pipeline::new(&t, &flows);
        let mut full = Pipeline::new(&t, &flows);
        full.fast_path = false;
        let (mut got, mut want) = (Ordered::default(), Ordered::default());
        let mut now = 0;
        // Bursts of up to four frames from one port (a burst has one ingress port).
        let mut i = 0;
        while i < frames.len() {
            let (port, _) = build(&frames[i].0);
            let mut burst = vec![];
            while i < frames.len() && burst.len() < 4 && build(&frames[i].0).0 == port {
                burst.push(build(&frames[i].0).1);
                i += 1;
            }
            let tick = frames[i - 1].1;
            if tick == 0 {
                // A publish: both pipelines adopt the next snapshot.
                t = snapshot(t.epoch + 1);
                fast.sync(&t);
                full.sync(&t);
            }
            now += u64::from(tick) * 997;
            fast.process(&t, port, burst.iter().map(|f| HeapBuf::new(f)), now, &mut got, &mut |_| {});
            full.process(&t, port, burst.iter().map(|f| HeapBuf::new(f)), now, &mut want, &mut |_| {});
            if got.0 != want.0 {
                return Err(format!("outputs differ after frame {i}: {:?} vs {:?}", got.0.last(), want.0.last()));
            }
        }
        let same = |what: &str, ok: bool| if ok { Ok(()) } else { Err(format!("{what} differ")) };
        same("counters", fast.l3.counters == full.l3.counters)?;
        same("flow stats", fast.l3.flows.stats() == full.l3.flows.stats())?;
        same("flow entries", entries(&fast) == entries(&full))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// The fixed-offset parse of the common shape gives what the wire views give, on
        /// the frames above and on those frames with bytes changed (the EtherType, the
        /// IP version and length fields, the protocol, the flags...) or cut short.
        #[test]
        fn the_fixed_offset_parse_agrees_with_the_wire_views(
            f in any_frame(), edits in proptest::collection::vec((0..64usize, any::<u8>()), 0..4), cut in 0..80usize,
        ) {
            let t = snapshot(1);
            let (port, mut fr) = build(&f);
            for (at, b) in edits {
                if let Some(x) = fr.get_mut(at) {
                    *x = b;
                }
            }
            if cut < 64 {
                fr.truncate(cut);
            }
            for max_frame_len in [1514, 40] {
                let p = fast::Port::new(&t.l3, Ingress { port, max_frame_len });
                prop_assert_eq!(p.parse(&fr), p.parse_any(&fr), "{:02x?}", fr);
            }
        }
    }

    /// The cases the random mix reaches only rarely, spelled out: another sender on a
    /// decided connection (the uplink relaying a's address, then a itself), a reply, a
    /// publish that turns UDP into a deny, a RST.
    #[test]
    fn fast_path_matches_the_full_path_on_the_rare_cases() {
        let f = |from, to, proto, flags, oddity| F { from, to, proto, flags, sport: 0, ttl: 0, oddity };
        let udp_ab = f(0, 1, 2, 0, 23);
        let seqs: [&[(F, u8)]; 3] = [
            &[(f(2, 1, 2, 0, 12), 1), (udp_ab.clone(), 1), (udp_ab.clone(), 1), (f(2, 1, 2, 0, 12), 1), (udp_ab.clone(), 1)],
            &[(udp_ab.clone(), 1), (f(1, 0, 2, 0, 13), 1), (udp_ab.clone(), 1), (udp_ab.clone(), 0), (f(1, 0, 2, 0, 13), 1)],
            &[(f(0, 1, 0, 0x02, 23), 1), (f(0, 1, 0, 0x10, 23), 1), (f(1, 0, 0, 0x14, 13), 1), (f(0, 1, 0, 0x10, 23), 1)],
        ];
        for s in seqs {
            compare(s).unwrap();
        }
    }

    /// The fast path is taken at all: an established connection's packets are forwarded
    /// by it (seen through a frame it would forward while the full path is forced to
    /// compare results above), with the TTL and MACs rewritten like the full path does.
    #[test]
    fn established_udp_goes_through_the_fast_path() {
        let t = snapshot(1);
        let flows = FlowConfig { capacity: 64, ..FlowConfig::default() };
        let mut p = Pipeline::new(&t, &flows);
        let f = F { from: 0, to: 1, proto: 2, flags: 0, sport: 0, ttl: 0, oddity: 23 };
        let (port, frame) = build(&f);
        let mut out = Ordered::default();
        p.process(&t, port, [HeapBuf::new(&frame)], 0, &mut out, &mut |_| {});
        assert_eq!(p.l3.counters.flows_created, 1);
        let parsed = fast::Port::new(&t.l3, Ingress { port, max_frame_len: 1514 }).parse(&frame).expect("parsed");
        let mut copy = frame.clone();
        let hit = fast::hit(&t.l3, &mut p.l3, &parsed, &mut copy, 1);
        assert_eq!(hit, Some(L3Out::Tx { port: 1, vlan: Some(7) }));
        assert_eq!(out.0[0], Ok((1, {
            // The full path's output of the first packet, retagged for b's VLAN.
            let Ok((_, ref b)) = out.0[0] else { unreachable!() };
            b.clone()
        })));
        // TTL decremented, MACs rewritten (untagged here: the retag is the pipeline's).
        assert_eq!(copy[22], 63);
        assert_eq!(&copy[0..6], &MAC_B.0);
        assert_eq!(&copy[6..12], &GW_BLUE.0);
        let e = p.l3.flows.iter().next().unwrap().1;
        assert_eq!(e.packets, [2, 0]);
    }
}
