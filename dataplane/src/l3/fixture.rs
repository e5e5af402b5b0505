//! A small two-tenant topology and frame builders for the L3 and local-answer tests.
//!
//! Networks: `blue` (VRF 1) and `red` (VRF 2) both use 10.1.0.0/24 (overlapping on
//! purpose). Ports: 0 = endpoint a (blue, 10.1.0.10, fd00:1::10), 1 = endpoint b (blue,
//! 10.1.0.11, fd00:1::11, on VLAN 7), 2 = endpoint c (red, 10.1.0.10), 3 = uplink of
//! blue (192.0.2.2) with a default route to 192.0.2.1, 4 = endpoint d (red, 172.16.0.5),
//! 5/6 = two routers for an ECMP route on blue, 7 = uplink of red.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{build_l3, DhcpServer, EndpointSpec, L3Spec, L3Tables, NetMode, NetworkSpec, NextHopSpec, RouteSpec, UplinkSpec};
use crate::wire::checksum;
use crate::wire::ethernet::emit_header;
use crate::wire::{EtherType, MacAddr, VlanTag};

pub const GW_BLUE: MacAddr = MacAddr([2, 0, 0, 0, 0xff, 1]);
pub const GW_RED: MacAddr = MacAddr([2, 0, 0, 0, 0xff, 2]);
pub const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
pub const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
pub const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0c]);
pub const MAC_D: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0d]);
pub const UPLINK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0xee, 3]);
pub const ROUTER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0xaa, 1]);
pub const ECMP_MACS: [MacAddr; 2] = [MacAddr([2, 0, 0, 0, 0xaa, 5]), MacAddr([2, 0, 0, 0, 0xaa, 6])];

pub fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
pub fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn net(name: &str, id: u32, gw_mac: MacAddr, gw6: Option<&str>) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        id,
        mode: NetMode::Routed,
        subnets4: vec![(ip4("10.1.0.0"), 24)],
        subnets6: gw6.map(|_| (ip6("fd00:1::"), 64)).into_iter().collect(),
        gateway_mac: gw_mac,
        gateway_v4: Some(ip4("10.1.0.1")),
        gateway_v6: gw6.map(ip6),
        dhcp: Some(DhcpServer { lease_s: 3600, dns: vec![ip4("10.1.0.1")].into(), routes: vec![(ip4("172.16.0.0"), 16)].into() }),
        flow_limit: None,
    }
}

fn ep(name: &str, network: usize, port: u16, vlan: Option<u16>, mac: MacAddr, v4: &str, v6: Option<&str>) -> EndpointSpec {
    EndpointSpec {
        name: name.into(),
        network,
        port,
        vlan,
        mac,
        ipv4: vec![ip4(v4)],
        ipv6: v6.map(ip6).into_iter().collect(),
        allowed: vec![],
    }
}

pub fn spec() -> L3Spec {
    let gw = |port, mac| NextHopSpec::Gateway { port, vlan: None, mac, src_mac: UPLINK_MAC };
    L3Spec {
        networks: vec![net("blue", 1, GW_BLUE, Some("fd00:1::1")), net("red", 2, GW_RED, None)],
        endpoints: vec![
            ep("a", 0, 0, None, MAC_A, "10.1.0.10", Some("fd00:1::10")),
            ep("b", 0, 1, Some(7), MAC_B, "10.1.0.11", Some("fd00:1::11")),
            ep("c", 1, 2, None, MAC_C, "10.1.0.10", None),
            ep("d", 1, 4, None, MAC_D, "172.16.0.5", None),
        ],
        uplinks: vec![
            UplinkSpec { port: 3, network: 0, mac: UPLINK_MAC, vlan: None, ipv4: Some(ip4("192.0.2.2")), ipv6: None },
            UplinkSpec { port: 7, network: 1, mac: UPLINK_MAC, vlan: None, ipv4: Some(ip4("192.0.2.6")), ipv6: None },
        ],
        routes: vec![
            RouteSpec { network: 0, prefix: IpAddr::V4(ip4("0.0.0.0")), len: 0, next_hop: gw(3, ROUTER_MAC) },
            RouteSpec {
                network: 0,
                prefix: IpAddr::V4(ip4("198.51.100.0")),
                len: 24,
                next_hop: NextHopSpec::Ecmp(vec![gw(5, ECMP_MACS[0]), gw(6, ECMP_MACS[1])]),
            },
            RouteSpec { network: 0, prefix: IpAddr::V4(ip4("203.0.113.0")), len: 24, next_hop: NextHopSpec::Blackhole },
            RouteSpec { network: 0, prefix: IpAddr::V4(ip4("172.16.0.0")), len: 16, next_hop: NextHopSpec::Network(1) },
            RouteSpec { network: 1, prefix: IpAddr::V4(ip4("10.99.0.0")), len: 16, next_hop: NextHopSpec::Network(0) },
        ],
    }
}

pub fn tables() -> L3Tables {
    build_l3(8, &spec()).unwrap()
}

/// An Ethernet + IPv4 frame with a valid header checksum; `l4` is the IP payload as is.
#[allow(clippy::too_many_arguments)]
pub fn ipv4_frame(dst: MacAddr, src: MacAddr, vlan: Option<u16>, s: Ipv4Addr, d: Ipv4Addr, proto: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 18 + 20 + l4.len()];
    let l2 = emit_header(&mut f, dst, src, vlan.map(VlanTag::with_vid), EtherType::IPV4);
    f.truncate(l2 + 20 + l4.len());
    crate::wire::ipv4::emit_header(&mut f[l2..], s, d, proto, ttl, l4.len() as u16, 0x1234);
    f[l2 + 20..].copy_from_slice(l4);
    f
}

/// A UDP datagram (checksum over the IPv4 pseudo-header filled in).
pub fn udp4(s: Ipv4Addr, d: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8 + payload.len()];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    let len = u.len() as u16;
    u[4..6].copy_from_slice(&len.to_be_bytes());
    u[8..].copy_from_slice(payload);
    let sum = checksum::pseudo_header_v4(s.octets(), d.octets(), 17, u.len() as u16) + checksum::sum(&u);
    u[6..8].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    u
}

/// A 20-byte TCP header (window 65535, no options, checksum over the IPv4 pseudo-header).
pub fn tcp4(s: Ipv4Addr, d: Ipv4Addr, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let sum = checksum::pseudo_header_v4(s.octets(), d.octets(), 6, 20) + checksum::sum(&t);
    t[16..18].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    t
}

/// An ICMPv4 echo request with a valid checksum.
pub fn echo4(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![8u8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An Ethernet + IPv6 frame carrying `l4` as `next` (no extension headers).
pub fn ipv6_frame(dst: MacAddr, src: MacAddr, s: Ipv6Addr, d: Ipv6Addr, next: u8, hop: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + l4.len()];
    emit_header(&mut f, dst, src, None, EtherType::IPV6);
    crate::wire::ipv6::emit_header(&mut f[14..54], s, d, next, hop, l4.len() as u16);
    f[54..].copy_from_slice(l4);
    f
}

/// An ICMPv6 echo request with a valid checksum.
pub fn echo6(s: Ipv6Addr, d: Ipv6Addr, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![128u8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"sluice-ping6");
    let sum = checksum::pseudo_header_v6(s.octets(), d.octets(), 58, m.len() as u32) + checksum::sum(&m);
    m[2..4].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    m
}
