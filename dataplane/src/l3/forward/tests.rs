use super::*;
use crate::l3::fixture::*;
use crate::packet::HeapBuf;
use crate::wire::checksum;

fn run(t: &L3Tables, st: &mut L3State, port: PortIdx, frame: &[u8]) -> (L3Out, HeapBuf) {
    let mut b = HeapBuf::new(frame);
    let out = process(t, st, port, &mut b, 0);
    (out, b)
}

fn ip_of(b: &HeapBuf, l2: usize) -> Ipv4Packet<&[u8]> {
    let ip = Ipv4Packet::new_checked(&b.data()[l2..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum must stay valid");
    ip
}

fn eth(b: &HeapBuf) -> (MacAddr, MacAddr) {
    let e = EthernetFrame::new_checked(b.data()).unwrap();
    (e.dst(), e.src())
}

#[test]
fn routes_between_endpoints_of_one_network() {
    let t = tables();
    let mut st = L3State::default();
    let f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("10.1.0.11"), 17, 64, &udp4(ip4("10.1.0.10"), ip4("10.1.0.11"), 1000, 2000, b"hi"));
    let (out, b) = run(&t, &mut st, 0, &f);
    assert_eq!(out, L3Out::Tx { port: 1, vlan: Some(7) });
    assert_eq!(eth(&b), (MAC_B, GW_BLUE));
    let ip = ip_of(&b, 14);
    assert_eq!(ip.ttl(), 63);
    assert_eq!(&b.data()[34..], &f[34..], "payload untouched");
    assert_eq!(st.counters.routed, 1);
}

#[test]
fn tenants_are_isolated_even_with_overlapping_subnets() {
    let t = tables();
    let mut st = L3State::default();
    // c (red, 10.1.0.10) to 10.1.0.11: b's address in blue, unknown in red.
    let f = ipv4_frame(GW_RED, MAC_C, None, ip4("10.1.0.10"), ip4("10.1.0.11"), 17, 64, &udp4(ip4("10.1.0.10"), ip4("10.1.0.11"), 1, 2, b"x"));
    let (out, b) = run(&t, &mut st, 2, &f);
    // Answered with net unreachable from red's gateway, back to c: never delivered to b.
    assert_eq!(out, L3Out::Tx { port: 2, vlan: None });
    assert_eq!(eth(&b), (MAC_C, GW_RED));
    let ip = ip_of(&b, 14);
    assert_eq!((ip.src(), ip.dst(), ip.protocol()), (ip4("10.1.0.1"), ip4("10.1.0.10"), 1));
    assert_eq!(&ip.payload()[..2], &[icmpv4::DEST_UNREACHABLE, icmpv4::NET_UNREACHABLE]);
    assert_eq!(checksum::checksum(ip.payload()), 0, "ICMP checksum valid");
    assert_eq!(&ip.payload()[8..8 + 28], &f[14..14 + 28], "quotes the offending header + 8 bytes");
    // a and c share 10.1.0.10: a's address in blue is a, in red it is c.
    let to_a = ipv4_frame(GW_BLUE, MAC_B, Some(7), ip4("10.1.0.11"), ip4("10.1.0.10"), 17, 64, &udp4(ip4("10.1.0.11"), ip4("10.1.0.10"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 1, &to_a).0, L3Out::Tx { port: 0, vlan: None });
}

#[test]
fn explicit_route_leak_crosses_exactly_one_vrf() {
    let t = tables();
    let mut st = L3State::default();
    let f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("172.16.0.5"), 17, 64, &udp4(ip4("10.1.0.10"), ip4("172.16.0.5"), 1, 2, b"x"));
    let (out, b) = run(&t, &mut st, 0, &f);
    assert_eq!(out, L3Out::Tx { port: 4, vlan: None });
    assert_eq!(eth(&b), (MAC_D, GW_RED), "delivered as red's gateway");
    // red leaks 10.99/16 back to blue, which would leak again: refused.
    let g = ipv4_frame(GW_RED, MAC_D, None, ip4("172.16.0.5"), ip4("10.99.0.1"), 17, 64, &udp4(ip4("172.16.0.5"), ip4("10.99.0.1"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 4, &g).0, L3Out::Tx { port: 3, vlan: None }, "blue's default route after one leak");
}

#[test]
fn default_route_blackhole_and_ecmp() {
    let t = tables();
    let mut st = L3State::default();
    let udp = |d: Ipv4Addr, sport: u16| ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), d, 17, 64, &udp4(ip4("10.1.0.10"), d, sport, 53, b"q"));
    let (out, b) = run(&t, &mut st, 0, &udp(ip4("8.8.8.8"), 1));
    assert_eq!(out, L3Out::Tx { port: 3, vlan: None });
    assert_eq!(eth(&b), (ROUTER_MAC, UPLINK_MAC));
    assert_eq!(run(&t, &mut st, 0, &udp(ip4("203.0.113.9"), 1)).0, L3Out::Drop(DropReason::Blackhole));

    let mut per_port = [0u32; 8];
    for sport in 0..1000u16 {
        let f = udp(ip4("198.51.100.7"), sport);
        let (o1, b) = run(&t, &mut st, 0, &f);
        let (o2, _) = run(&t, &mut st, 0, &f);
        assert_eq!(o1, o2, "a flow always takes the same path");
        let L3Out::Tx { port, .. } = o1 else { panic!("{o1:?}") };
        assert_eq!(eth(&b).0, ECMP_MACS[(port - 5) as usize]);
        per_port[port as usize] += 1;
    }
    assert!(per_port[5] > 400 && per_port[6] > 400, "spread: {per_port:?}");
}

#[test]
fn fragments_of_one_packet_take_one_ecmp_path() {
    let t = tables();
    let mut st = L3State::default();
    let d = ip4("198.51.100.7");
    let mut seen = std::collections::HashSet::new();
    for (mf, off) in [(true, 0u16), (true, 185), (false, 370)] {
        let mut f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), d, 17, 64, &udp4(ip4("10.1.0.10"), d, 4242, 53, &[7; 40]));
        let flags = ((mf as u16) << 13) | off;
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        seen.insert(run(&t, &mut st, 0, &f).0);
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn ttl_expiry_sends_time_exceeded_with_rate_limit() {
    let t = tables();
    let mut st = L3State::default();
    let f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("8.8.8.8"), 17, 1, &udp4(ip4("10.1.0.10"), ip4("8.8.8.8"), 1, 2, b"x"));
    let (out, b) = run(&t, &mut st, 0, &f);
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    let ip = ip_of(&b, 14);
    assert_eq!((ip.src(), ip.dst()), (ip4("10.1.0.1"), ip4("10.1.0.10")));
    assert_eq!(&ip.payload()[..2], &[icmpv4::TIME_EXCEEDED, 0]);
    assert_eq!(checksum::checksum(ip.payload()), 0);
    // The bucket holds 100 at one instant; the rest are plain drops.
    let mut sent = 1;
    for _ in 0..149 {
        match run(&t, &mut st, 0, &f).0 {
            L3Out::Tx { .. } => sent += 1,
            L3Out::Drop(r) => assert_eq!(r, DropReason::TtlExpired),
        }
    }
    assert_eq!(sent, 100);
    assert_eq!((st.counters.icmp_errors, st.counters.icmp_suppressed), (100, 50));
    // A TTL-1 packet to the gateway itself is still answered (it is not forwarded).
    let ping = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("10.1.0.1"), 1, 1, &echo4(1, 1, b"abc"));
    assert_eq!(run(&t, &mut st, 0, &ping).0, L3Out::Tx { port: 0, vlan: None });
}

#[test]
fn icmp_error_quotes_ipv4_options_and_8_payload_bytes() {
    let t = tables();
    let mut st = L3State::default();
    // IHL 6: 4 bytes of options (NOP NOP NOP EOL), TTL 1, a 64-byte UDP payload.
    let udp = udp4(ip4("10.1.0.10"), ip4("8.8.8.8"), 1000, 2000, &[0xab; 56]);
    let mut f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("8.8.8.8"), 17, 1, &udp);
    f.splice(34..34, [1u8, 1, 1, 0]);
    f[14] = 0x46;
    let total = (24 + udp.len()) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    let (out, b) = run(&t, &mut st, 0, &f);
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    let ip = ip_of(&b, 14);
    assert_eq!(ip.total_len() as usize, 20 + 8 + 24 + 8, "header + ICMP + quoted header with options + 8");
    assert_eq!(b.len(), 14 + ip.total_len() as usize, "no stale bytes past the packet");
    assert_eq!(&ip.payload()[8..], &f[14..14 + 32]);
    assert_eq!(checksum::checksum(ip.payload()), 0);
}

#[test]
fn no_icmp_error_about_an_icmp_error() {
    let t = tables();
    let mut st = L3State::default();
    let mut err = vec![icmpv4::TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
    err.extend_from_slice(&[0x45; 28]);
    let c = checksum::checksum(&err);
    err[2..4].copy_from_slice(&c.to_be_bytes());
    let f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("8.8.8.8"), 1, 1, &err);
    assert_eq!(run(&t, &mut st, 0, &f).0, L3Out::Drop(DropReason::TtlExpired));
    assert_eq!(st.counters.icmp_errors, 0);
}

#[test]
fn echo_to_the_gateway_is_answered_byte_exact() {
    let t = tables();
    let mut st = L3State::default();
    let req = echo4(0x77, 3, b"payload!");
    let f = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("10.1.0.1"), 1, 64, &req);
    let (out, b) = run(&t, &mut st, 0, &f);
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    let mut reply = req.clone();
    reply[0] = 0;
    reply[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&reply);
    reply[2..4].copy_from_slice(&c.to_be_bytes());
    let want = ipv4_frame(MAC_A, GW_BLUE, None, ip4("10.1.0.1"), ip4("10.1.0.10"), 1, 64, &reply);
    assert_eq!(b.data(), &want[..]);
    // TCP to the gateway is not answered.
    let tcp = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("10.1.0.1"), 6, 64, &[0; 20]);
    assert_eq!(run(&t, &mut st, 0, &tcp).0, L3Out::Drop(DropReason::LocalUnhandled));
}

#[test]
fn anti_spoofing() {
    let t = tables();
    let mut st = L3State::default();
    let spoofed_ip = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.11"), ip4("8.8.8.8"), 17, 64, &udp4(ip4("10.1.0.11"), ip4("8.8.8.8"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 0, &spoofed_ip).0, L3Out::Drop(DropReason::Spoofed));
    let spoofed_mac = ipv4_frame(GW_BLUE, MAC_B, None, ip4("10.1.0.10"), ip4("8.8.8.8"), 17, 64, &udp4(ip4("10.1.0.10"), ip4("8.8.8.8"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 0, &spoofed_mac).0, L3Out::Drop(DropReason::UnknownEndpoint));
    // b sits on VLAN 7: untagged frames from its MAC are not b's.
    let untagged_b = ipv4_frame(GW_BLUE, MAC_B, None, ip4("10.1.0.11"), ip4("8.8.8.8"), 17, 64, &udp4(ip4("10.1.0.11"), ip4("8.8.8.8"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 1, &untagged_b).0, L3Out::Drop(DropReason::UnknownEndpoint));
    let not_gw = ipv4_frame(MAC_B, MAC_A, None, ip4("10.1.0.10"), ip4("10.1.0.11"), 17, 64, &udp4(ip4("10.1.0.10"), ip4("10.1.0.11"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 0, &not_gw).0, L3Out::Drop(DropReason::NotForUs));
}

#[test]
fn malformed_ipv4_is_dropped_with_its_reason() {
    let t = tables();
    let mut st = L3State::default();
    let good = ipv4_frame(GW_BLUE, MAC_A, None, ip4("10.1.0.10"), ip4("10.1.0.11"), 17, 64, &udp4(ip4("10.1.0.10"), ip4("10.1.0.11"), 1, 2, b"x"));
    assert_eq!(run(&t, &mut st, 0, &good[..30]).0, L3Out::Drop(DropReason::IpTruncated));
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    assert_eq!(run(&t, &mut st, 0, &bad_ihl).0, L3Out::Drop(DropReason::IpBadHeader));
    let mut long_ihl = good.clone();
    long_ihl[14] = 0x4f;
    assert!(matches!(run(&t, &mut st, 0, &long_ihl).0, L3Out::Drop(DropReason::IpBadHeader | DropReason::IpBadLength | DropReason::IpTruncated)));
    // Total length beyond the frame is a truncated packet; shorter than its header, a bad length.
    let mut long_len = good.clone();
    long_len[16..18].copy_from_slice(&500u16.to_be_bytes());
    assert_eq!(run(&t, &mut st, 0, &long_len).0, L3Out::Drop(DropReason::IpTruncated));
    let mut short_len = good.clone();
    short_len[16..18].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(run(&t, &mut st, 0, &short_len).0, L3Out::Drop(DropReason::IpBadLength));
    let mut bad_sum = good.clone();
    bad_sum[24] ^= 0xff;
    assert_eq!(run(&t, &mut st, 0, &bad_sum).0, L3Out::Drop(DropReason::IpBadChecksum));
    let mut v6_in_v4 = good.clone();
    v6_in_v4[14] = 0x65;
    assert_eq!(run(&t, &mut st, 0, &v6_in_v4).0, L3Out::Drop(DropReason::IpBadHeader));
}

#[test]
fn arp_for_any_address_in_routed_mode_but_not_for_itself() {
    use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};
    let t = tables();
    let mut st = L3State::default();
    let arp = |sender: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr| {
        let mut f = vec![0u8; 60];
        crate::wire::ethernet::emit_header(&mut f, MacAddr::BROADCAST, sender, None, EtherType::ARP);
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(sender.0),
            source_protocol_addr: spa,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: tpa,
        }
        .emit(&mut ArpPacket::new_unchecked(&mut f[14..42]));
        f
    };
    let (out, b) = run(&t, &mut st, 0, &arp(MAC_A, ip4("10.1.0.10"), ip4("10.1.0.11")));
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    assert_eq!(eth(&b), (MAC_A, GW_BLUE));
    assert_eq!(run(&t, &mut st, 0, &arp(MAC_A, ip4("10.1.0.10"), ip4("10.1.0.10"))).0, L3Out::Drop(DropReason::ArpIgnored));
    assert_eq!(run(&t, &mut st, 0, &arp(MAC_A, ip4("10.1.0.66"), ip4("10.1.0.1"))).0, L3Out::Drop(DropReason::ArpIgnored), "spoofed sender IP");
    // On an uplink only the uplink's own address is answered.
    assert_eq!(run(&t, &mut st, 3, &arp(ROUTER_MAC, ip4("192.0.2.1"), ip4("192.0.2.2"))).0, L3Out::Tx { port: 3, vlan: None });
    assert_eq!(run(&t, &mut st, 3, &arp(ROUTER_MAC, ip4("192.0.2.1"), ip4("192.0.2.9"))).0, L3Out::Drop(DropReason::ArpIgnored));
    assert_eq!(st.counters.arp_replies, 2);
}

#[test]
fn uplink_traffic_is_routed_in_its_vrf() {
    let t = tables();
    let mut st = L3State::default();
    let f = ipv4_frame(UPLINK_MAC, ROUTER_MAC, None, ip4("8.8.8.8"), ip4("10.1.0.10"), 17, 60, &udp4(ip4("8.8.8.8"), ip4("10.1.0.10"), 53, 1000, b"r"));
    let (out, b) = run(&t, &mut st, 3, &f);
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    assert_eq!(eth(&b), (MAC_A, GW_BLUE));
    // The same address through red's uplink reaches c, not a.
    assert_eq!(run(&t, &mut st, 7, &f).0, L3Out::Tx { port: 2, vlan: None });
    let wrong_mac = ipv4_frame(MAC_A, ROUTER_MAC, None, ip4("8.8.8.8"), ip4("10.1.0.10"), 17, 60, &udp4(ip4("8.8.8.8"), ip4("10.1.0.10"), 53, 1000, b"r"));
    assert_eq!(run(&t, &mut st, 3, &wrong_mac).0, L3Out::Drop(DropReason::NotForUs));
}

#[test]
fn ipv6_routing_echo_nd_and_hop_limit() {
    let t = tables();
    let mut st = L3State::default();
    let (a, b, gw) = (ip6("fd00:1::10"), ip6("fd00:1::11"), ip6("fd00:1::1"));
    let f = ipv6_frame(GW_BLUE, MAC_A, a, b, 58, 64, &echo6(a, b, 1, 1));
    let (out, buf) = run(&t, &mut st, 0, &f);
    assert_eq!(out, L3Out::Tx { port: 1, vlan: Some(7) });
    assert_eq!(eth(&buf), (MAC_B, GW_BLUE));
    assert_eq!(buf.data()[14 + 7], 63, "hop limit decremented");

    let ping = ipv6_frame(GW_BLUE, MAC_A, a, gw, 58, 64, &echo6(a, gw, 9, 9));
    let (out, buf) = run(&t, &mut st, 0, &ping);
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    let d = &buf.data()[14..];
    assert_eq!((&d[8..24], &d[24..40]), (&gw.octets()[..], &a.octets()[..]));
    assert_eq!(d[40], 129);
    let sum = checksum::pseudo_header_v6(gw.octets(), a.octets(), 58, (d.len() - 40) as u32) + checksum::sum(&d[40..]);
    assert_eq!(checksum::fold(sum), 0xffff, "ICMPv6 checksum valid");

    let expiring = ipv6_frame(GW_BLUE, MAC_A, a, b, 58, 1, &echo6(a, b, 1, 2));
    let (out, buf) = run(&t, &mut st, 0, &expiring);
    assert_eq!(out, L3Out::Tx { port: 0, vlan: None });
    assert_eq!(buf.data()[14 + 40], icmpv6::TIME_EXCEEDED);

    let spoof = ipv6_frame(GW_BLUE, MAC_A, b, gw, 58, 64, &echo6(b, gw, 1, 1));
    assert_eq!(run(&t, &mut st, 0, &spoof).0, L3Out::Drop(DropReason::Spoofed));
}

#[test]
fn ipv6_extension_chains_are_bounded() {
    let t = tables();
    let mut st = L3State::default();
    let (a, b) = (ip6("fd00:1::10"), ip6("fd00:1::11"));
    // Nine destination-options headers, each pointing at the next one.
    let mut l4 = Vec::new();
    for _ in 0..9 {
        l4.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let f = ipv6_frame(GW_BLUE, MAC_A, a, b, 60, 64, &l4);
    assert_eq!(run(&t, &mut st, 0, &f).0, L3Out::Drop(DropReason::Ipv6ExtChain));
    // A header whose length runs past the packet.
    let f = ipv6_frame(GW_BLUE, MAC_A, a, b, 60, 64, &[17, 9, 0, 0, 0, 0, 0, 0]);
    assert_eq!(run(&t, &mut st, 0, &f).0, L3Out::Drop(DropReason::IpTruncated));
}
