//! ICMP echo replies and ICMP errors, built in place.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet::PacketBuf;
use crate::wire::checksum;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmp::{emit_icmpv4_error, emit_icmpv6_error};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::MacAddr;

/// TTL / hop limit of packets sluice originates.
pub const TTL: u8 = 64;
/// An IPv4 ICMP error quotes the offending header and this much of its payload.
const QUOTE_V4: usize = 8;
/// An ICMPv6 error carries as much of the offending packet as fits in the minimum MTU.
const QUOTE_V6_MAX: usize = 1280 - 40 - 8;

/// Swaps the frame's MACs: back to the sender, from `our_mac`.
fn eth_back(d: &mut [u8], our_mac: MacAddr) {
    let mut eth = EthernetFrame::new_unchecked(d);
    let sender = eth.src();
    eth.set_dst(sender);
    eth.set_src(our_mac);
}

/// Turns an ICMPv4 echo request (IPv4 at `l2`) into its reply. False if malformed.
pub fn echo_reply_v4<B: PacketBuf>(pkt: &mut B, l2: usize, our_mac: MacAddr) -> bool {
    let d = pkt.data_mut();
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut d[l2..]) else { return false };
    let hlen = ip.header_len();
    let total = ip.total_len() as usize;
    if total < hlen + 8 {
        return false;
    }
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(TTL);
    ip.fill_checksum();
    let icmp = &mut d[l2 + hlen..l2 + total];
    // Type 8 -> 0: one 16-bit word changes; update the checksum incrementally.
    let old = u16::from_be_bytes([icmp[0], icmp[1]]);
    icmp[0] = 0;
    let new = u16::from_be_bytes([icmp[0], icmp[1]]);
    let c = checksum::update16(u16::from_be_bytes([icmp[2], icmp[3]]), old, new);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    eth_back(d, our_mac);
    true
}

/// Turns an ICMPv6 echo request (IPv6 at `l2`, ICMPv6 at `l2 + l4_off`) into its reply.
pub fn echo_reply_v6<B: PacketBuf>(pkt: &mut B, l2: usize, l4_off: usize, our_mac: MacAddr) -> bool {
    let d = pkt.data_mut();
    let Ok(mut ip) = Ipv6Packet::new_checked(&mut d[l2..]) else { return false };
    let end = 40 + ip.payload_len() as usize;
    if l4_off + 8 > end {
        return false;
    }
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_hop_limit(TTL);
    let icmp = &mut d[l2 + l4_off..l2 + end];
    icmp[0] = 129;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let len = icmp.len() as u32;
    let sum = checksum::pseudo_header_v6(dst.octets(), src.octets(), 58, len) + checksum::sum(icmp);
    icmp[2..4].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    eth_back(d, our_mac);
    true
}

/// Replaces the IPv4 packet at `l2` by an ICMPv4 error about it, from `our_ip` to its
/// sender, addressed at L2 to `to_mac` from `our_mac`. False if it cannot be built.
pub fn error_v4<B: PacketBuf>(
    pkt: &mut B,
    l2: usize,
    our_mac: MacAddr,
    to_mac: MacAddr,
    our_ip: Ipv4Addr,
    typ: u8,
    code: u8,
) -> bool {
    let mut quote = [0u8; 60 + QUOTE_V4];
    let (n, sender) = {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt.data()[l2..]) else { return false };
        let n = (ip.header_len() + QUOTE_V4).min(ip.total_len() as usize);
        quote[..n].copy_from_slice(&pkt.data()[l2..l2 + n]);
        (n, ip.src())
    };
    if !pkt.resize(l2 + 20 + 8 + n) {
        return false;
    }
    let d = pkt.data_mut();
    let icmp_len = emit_icmpv4_error(&mut d[l2 + 20..], typ, code, 0, &quote[..n]);
    if icmp_len == 0 {
        return false;
    }
    // The IP header says exactly what was written.
    ipv4::emit_header(&mut d[l2..], our_ip, sender, 1, TTL, icmp_len as u16, 0);
    if !pkt.resize(l2 + 20 + icmp_len) {
        return false;
    }
    let d = pkt.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(to_mac);
    eth.set_src(our_mac);
    true
}

/// Replaces the IPv6 packet at `l2` by an ICMPv6 error about it (RFC 4443).
pub fn error_v6<B: PacketBuf>(
    pkt: &mut B,
    l2: usize,
    our_mac: MacAddr,
    to_mac: MacAddr,
    our_ip: Ipv6Addr,
    typ: u8,
    code: u8,
) -> bool {
    let mut quote = [0u8; QUOTE_V6_MAX];
    let (n, sender) = {
        let Ok(ip) = Ipv6Packet::new_checked(&pkt.data()[l2..]) else { return false };
        let n = (40 + ip.payload_len() as usize).min(QUOTE_V6_MAX);
        quote[..n].copy_from_slice(&pkt.data()[l2..l2 + n]);
        (n, ip.src())
    };
    if !pkt.resize(l2 + 40 + 8 + n) {
        return false;
    }
    let d = pkt.data_mut();
    let icmp_len = emit_icmpv6_error(&mut d[l2 + 40..], typ, code, 0, our_ip, sender, &quote[..n]);
    if icmp_len == 0 {
        return false;
    }
    ipv6::emit_header(&mut d[l2..l2 + 40], our_ip, sender, 58, TTL, icmp_len as u16);
    if !pkt.resize(l2 + 40 + icmp_len) {
        return false;
    }
    let d = pkt.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(to_mac);
    eth.set_src(our_mac);
    true
}
