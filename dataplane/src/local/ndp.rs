//! IPv6 neighbor discovery: answers a Neighbor Solicitation with a Neighbor
//! Advertisement (RFC 4861 §7.2.4) from sluice's MAC, as a router.

use std::net::Ipv6Addr;

use super::Answer;
use crate::packet::PacketBuf;
use crate::wire::checksum;
use crate::wire::ipv6;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::MacAddr;

const NS: u8 = 135;
const NA: u8 = 136;
/// Router | Solicited | Override.
const NA_FLAGS: u32 = 0xe000_0000;
const OPT_TARGET_LLADDR: u8 = 2;
/// ICMPv6 NA with one target link-layer address option.
const NA_LEN: usize = 32;

/// Turns the NS in `pkt` (IPv6 at `l2`, ICMPv6 at `l2 + l4_off`) into an NA from
/// `our_mac` when `should_answer(target)` says so.
pub fn answer_ns<B: PacketBuf>(
    pkt: &mut B,
    l2: usize,
    l4_off: usize,
    our_mac: MacAddr,
    should_answer: impl Fn(Ipv6Addr) -> bool,
) -> Answer {
    let d = pkt.data();
    let Some(ip) = d.get(l2..l2 + 40) else { return Answer::Malformed };
    let payload_len = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let Some(icmp) = d.get(l2 + l4_off..l2 + 40 + payload_len) else { return Answer::Malformed };
    if icmp.len() < 24 || icmp[0] != NS || icmp[1] != 0 {
        return Answer::Malformed;
    }
    // RFC 4861 §7.1.1: hop limit 255 proves the sender is on-link.
    if ip[7] != 255 {
        return Answer::Malformed;
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    let src = Ipv6Addr::from(src);
    let mut t = [0u8; 16];
    t.copy_from_slice(&icmp[8..24]);
    let target = Ipv6Addr::from(t);
    if src.is_unspecified() || target.is_multicast() || !should_answer(target) {
        return Answer::Ignored;
    }
    let to_mac = EthernetFrame::new_unchecked(d).src();
    if !pkt.resize(l2 + 40 + NA_LEN) {
        return Answer::Ignored;
    }
    let d = pkt.data_mut();
    ipv6::emit_header(&mut d[l2..l2 + 40], target, src, 58, 255, NA_LEN as u16);
    let na = &mut d[l2 + 40..l2 + 40 + NA_LEN];
    na[0] = NA;
    na[1] = 0;
    na[2..4].copy_from_slice(&[0, 0]);
    na[4..8].copy_from_slice(&NA_FLAGS.to_be_bytes());
    na[8..24].copy_from_slice(&target.octets());
    na[24] = OPT_TARGET_LLADDR;
    na[25] = 1;
    na[26..32].copy_from_slice(&our_mac.0);
    let sum = checksum::pseudo_header_v6(target.octets(), src.octets(), 58, NA_LEN as u32) + checksum::sum(na);
    na[2..4].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(to_mac);
    eth.set_src(our_mac);
    Answer::Replied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::HeapBuf;
    use crate::wire::ethernet::emit_header;
    use crate::wire::EtherType;
    use smoltcp::wire::{Icmpv6Packet, Icmpv6Repr, NdiscRepr};

    const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
    const GW: MacAddr = MacAddr([2, 0, 0, 0, 0xff, 1]);

    fn ns(src: Ipv6Addr, target: Ipv6Addr, hop: u8) -> HeapBuf {
        let mut f = vec![0u8; 14 + 40 + 32];
        emit_header(&mut f, MacAddr([0x33, 0x33, 0xff, 0, 0, 1]), HOST, None, EtherType::IPV6);
        let dst: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        ipv6::emit_header(&mut f[14..54], src, dst, 58, hop, 32);
        let icmp = &mut f[54..];
        icmp[0] = NS;
        icmp[8..24].copy_from_slice(&target.octets());
        icmp[24] = 1; // source link-layer address option
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&HOST.0);
        let sum = checksum::pseudo_header_v6(src.octets(), dst.octets(), 58, 32) + checksum::sum(icmp);
        icmp[2..4].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
        HeapBuf::new(&f)
    }

    #[test]
    fn na_is_valid_for_an_independent_parser() {
        let src: Ipv6Addr = "fd00:1::10".parse().unwrap();
        let gw: Ipv6Addr = "fd00:1::1".parse().unwrap();
        let mut p = ns(src, gw, 255);
        assert_eq!(answer_ns(&mut p, 14, 40, GW, |t| t == gw), Answer::Replied);
        let eth = EthernetFrame::new_checked(p.data()).unwrap();
        assert_eq!((eth.dst(), eth.src()), (HOST, GW));
        let d = &p.data()[14..];
        assert_eq!(d[7], 255);
        assert_eq!(&d[8..24], &gw.octets());
        assert_eq!(&d[24..40], &src.octets());
        // smoltcp verifies the checksum and decodes the advertisement.
        let icmp = Icmpv6Packet::new_checked(&d[40..]).unwrap();
        let repr = Icmpv6Repr::parse(&gw, &src, &icmp, &Default::default()).unwrap();
        match repr {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr }) => {
                assert_eq!(target_addr, gw);
                assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::ROUTER));
                assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::SOLICITED));
                assert_eq!(lladdr.map(|l| l.as_bytes().to_vec()), Some(GW.0.to_vec()));
            }
            other => panic!("not an NA: {other:?}"),
        }
    }

    #[test]
    fn ignores_dad_off_link_and_unwanted_targets() {
        let gw: Ipv6Addr = "fd00:1::1".parse().unwrap();
        let mut p = ns(Ipv6Addr::UNSPECIFIED, gw, 255);
        assert_eq!(answer_ns(&mut p, 14, 40, GW, |_| true), Answer::Ignored, "DAD");
        let mut p = ns("fd00:1::10".parse().unwrap(), gw, 64);
        assert_eq!(answer_ns(&mut p, 14, 40, GW, |_| true), Answer::Malformed, "hop limit not 255");
        let mut p = ns("fd00:1::10".parse().unwrap(), "fd00:1::7".parse().unwrap(), 255);
        assert_eq!(answer_ns(&mut p, 14, 40, GW, |t| t == gw), Answer::Ignored);
        let mut short = HeapBuf::new(&p.data()[..70]);
        assert_eq!(answer_ns(&mut short, 14, 40, GW, |_| true), Answer::Malformed);
    }
}
