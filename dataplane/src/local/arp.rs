//! Proxy ARP: answers an ARP request in place with sluice's MAC.

use std::net::Ipv4Addr;

use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};

use super::Answer;
use crate::packet::PacketBuf;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::MacAddr;

/// Turns the ARP request in `pkt` (Ethernet header of `l2_len` bytes) into a reply from
/// `our_mac` when `should_answer(sender_ip, target_ip)` says so.
pub fn answer<B: PacketBuf>(
    pkt: &mut B,
    l2_len: usize,
    our_mac: MacAddr,
    should_answer: impl Fn(Ipv4Addr, Ipv4Addr) -> bool,
) -> Answer {
    let Some(body) = pkt.data().get(l2_len..) else { return Answer::Malformed };
    let Ok(arp) = ArpPacket::new_checked(body) else { return Answer::Malformed };
    let Ok(repr) = ArpRepr::parse(&arp) else { return Answer::Malformed };
    let ArpRepr::EthernetIpv4 { operation, source_hardware_addr, source_protocol_addr, target_protocol_addr, .. } = repr
    else {
        return Answer::Malformed;
    };
    if operation != ArpOperation::Request || !should_answer(source_protocol_addr, target_protocol_addr) {
        return Answer::Ignored;
    }
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(our_mac.0),
        source_protocol_addr: target_protocol_addr,
        target_hardware_addr: source_hardware_addr,
        target_protocol_addr: source_protocol_addr,
    };
    let d = pkt.data_mut();
    let mut out = ArpPacket::new_unchecked(&mut d[l2_len..]);
    reply.emit(&mut out);
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(MacAddr(source_hardware_addr.0));
    eth.set_src(our_mac);
    Answer::Replied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::HeapBuf;
    use crate::wire::ethernet::emit_header;
    use crate::wire::EtherType;

    fn request(sender: MacAddr, spa: [u8; 4], tpa: [u8; 4], op: ArpOperation) -> HeapBuf {
        let mut f = vec![0u8; 60];
        emit_header(&mut f, MacAddr::BROADCAST, sender, None, EtherType::ARP);
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(sender.0),
            source_protocol_addr: Ipv4Addr::from(spa),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::from(tpa),
        };
        repr.emit(&mut ArpPacket::new_unchecked(&mut f[14..42]));
        HeapBuf::new(&f)
    }

    #[test]
    fn reply_is_byte_exact() {
        let client = MacAddr([2, 0, 0, 0, 0, 0x0a]);
        let gw = MacAddr([2, 0, 0, 0, 0xff, 1]);
        let mut p = request(client, [10, 1, 0, 10], [10, 1, 0, 1], ArpOperation::Request);
        assert_eq!(answer(&mut p, 14, gw, |_, t| t == Ipv4Addr::new(10, 1, 0, 1)), Answer::Replied);
        let mut want = vec![0u8; 60];
        emit_header(&mut want, client, gw, None, EtherType::ARP);
        want[14..42].copy_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 2, // Ethernet/IPv4, reply
            2, 0, 0, 0, 0xff, 1, 10, 1, 0, 1, // sender: gateway MAC, 10.1.0.1
            2, 0, 0, 0, 0, 0x0a, 10, 1, 0, 10, // target: the client
        ]);
        assert_eq!(p.data(), &want[..]);
    }

    #[test]
    fn ignores_what_it_should_not_answer() {
        let client = MacAddr([2, 0, 0, 0, 0, 0x0a]);
        let gw = MacAddr([2, 0, 0, 0, 0xff, 1]);
        let mut p = request(client, [10, 1, 0, 10], [10, 1, 0, 7], ArpOperation::Request);
        let before = p.clone();
        assert_eq!(answer(&mut p, 14, gw, |_, t| t == Ipv4Addr::new(10, 1, 0, 1)), Answer::Ignored);
        assert_eq!(p, before, "untouched");
        let mut p = request(client, [10, 1, 0, 10], [10, 1, 0, 1], ArpOperation::Reply);
        assert_eq!(answer(&mut p, 14, gw, |_, _| true), Answer::Ignored);
        let mut short = HeapBuf::new(&p.data()[..30]);
        assert_eq!(answer(&mut short, 14, gw, |_, _| true), Answer::Malformed);
    }
}
