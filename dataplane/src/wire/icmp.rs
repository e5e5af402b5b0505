//! The ICMP a router sends and answers on its own: ICMPv4 (RFC 792) and ICMPv6 (RFC 4443)
//! share this common header.
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |     Type      |     Code      |          Checksum             |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                     Rest of Header                            |
//!  |   (echo: Identifier | Sequence; frag needed: unused | MTU;    |
//!  |    packet too big: MTU; others: unused)                       |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |     Data (errors: as much of the offending packet as allowed) |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The ICMPv4 checksum covers the message; the ICMPv6 one also covers the IPv6
//! pseudo-header. The view's buffer is the whole message: build it over the IP payload.
//!
//! ARP, NDP and DHCP are read and written with `smoltcp::wire` (`ArpRepr`, `Icmpv6Repr::Ndisc`,
//! `DhcpRepr`); the tests at the bottom prove the feature flags sluice builds it with.

use core::net::Ipv6Addr;

use super::checksum;
use super::ipv6::{self, Ipv6Packet};

/// Byte ranges of the header.
mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = 8;
/// Bytes of the offending datagram's payload an ICMPv4 error quotes after its IP header.
pub const V4_QUOTED_PAYLOAD_LEN: usize = 8;
/// Most bytes of the offending packet an ICMPv6 error quotes: the IPv6 minimum MTU less the
/// IPv6 and ICMPv6 headers (RFC 4443 section 2.4 (c)).
pub const V6_MAX_QUOTE_LEN: usize = 1280 - ipv6::HEADER_LEN - HEADER_LEN;

/// ICMPv4 types and codes.
pub mod icmpv4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    /// Codes of `DEST_UNREACHABLE`.
    pub const NET_UNREACHABLE: u8 = 0;
    pub const HOST_UNREACHABLE: u8 = 1;
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Fragmentation needed and DF set: Rest of Header carries the next-hop MTU in its
    /// low 16 bits (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Code of `TIME_EXCEEDED`: TTL exceeded in transit.
    pub const TTL_EXCEEDED: u8 = 0;
}

/// ICMPv6 types and codes.
pub mod icmpv6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Rest of Header is the MTU of the next-hop link.
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Codes of `DEST_UNREACHABLE`.
    pub const NO_ROUTE: u8 = 0;
    pub const ADDR_UNREACHABLE: u8 = 3;
    pub const PORT_UNREACHABLE: u8 = 4;
    /// Code of `TIME_EXCEEDED`: hop limit exceeded in transit.
    pub const HOP_LIMIT_EXCEEDED: u8 = 0;
}

/// Why bytes are not an ICMP message this view can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Shorter than the 8-byte header.
    Truncated,
}

/// A read (and, over `AsMut`, write) view of an ICMPv4 or ICMPv6 message.
#[derive(Debug, Clone)]
pub struct IcmpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpHeader<T> {
    /// Wraps `buffer` without checking it: accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpHeader { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, IcmpError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks everything the accessors rely on: the 8-byte header.
    pub fn check_len(&self) -> Result<(), IcmpError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(IcmpError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The type-specific second word.
    #[inline]
    pub fn rest(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Identifier of an echo request or reply.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ECHO_IDENT];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Sequence number of an echo request or reply.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ECHO_SEQ];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// True if the ICMPv4 checksum (over the whole buffer) is right.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
    /// True if the ICMPv6 checksum (pseudo-header and the whole buffer) is right.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let m = self.buffer.as_ref();
        let sum = checksum::pseudo_v6(src, dst, ipv6::next_header::ICMPV6, m.len()) + checksum::sum(m);
        checksum::fold(sum) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpHeader<T> {
    #[inline]
    pub fn set_msg_type(&mut self, typ: u8) {
        self.buffer.as_mut()[field::TYPE] = typ;
    }
    #[inline]
    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    }
    #[inline]
    pub fn set_rest(&mut self, rest: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&rest.to_be_bytes());
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
    /// Computes the ICMPv4 checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(csum);
    }
    /// Computes the ICMPv6 checksum over the pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let m = self.buffer.as_ref();
        let sum = checksum::pseudo_v6(src, dst, ipv6::next_header::ICMPV6, m.len()) + checksum::sum(m);
        self.set_checksum(!checksum::fold(sum));
    }
}

/// Writes type, code, rest and `quote` as an ICMP message into the front of `out`, clipping
/// the quote to what fits; returns the message length, `None` if not even the header fits.
/// The checksum is left zero.
fn emit_with_quote(out: &mut [u8], typ: u8, code: u8, rest: u32, quote: &[u8]) -> Option<usize> {
    let room = out.len().checked_sub(HEADER_LEN)?;
    let quote = &quote[..quote.len().min(room)];
    let len = HEADER_LEN + quote.len();
    let mut m = IcmpHeader::new_unchecked(&mut out[..len]);
    m.set_msg_type(typ);
    m.set_code(code);
    m.set_rest(rest);
    m.payload_mut().copy_from_slice(quote);
    Some(len)
}

/// Writes an ICMPv4 error (RFC 792) into `out` quoting the offending datagram's IP header and
/// the first 8 bytes of its payload, with the checksum filled; returns the message length
/// (the IP header is the caller's: [`emit_header`](super::ipv4::emit_header)).
///
/// The quote stops at the datagram's Total Length, so link-layer padding is never quoted.
/// A datagram that does not parse is quoted up to 28 bytes. A quote that does not fit `out`
/// is clipped; an `out` shorter than 8 bytes gets nothing and 0 is returned.
pub fn emit_icmpv4_error(out: &mut [u8], typ: u8, code: u8, rest: u32, offending_ip_packet: &[u8]) -> usize {
    // The header (IHL, options included) and 8 bytes of payload, never past Total Length.
    // Read from the raw bytes: callers may pass a packet already cut to that quote, which
    // a full parse would reject as truncated.
    let o = offending_ip_packet;
    let hlen = o.first().map_or(super::ipv4::HEADER_LEN, |b| usize::from(b & 0x0f) * 4).max(super::ipv4::HEADER_LEN);
    let total = if o.len() >= 4 { usize::from(u16::from_be_bytes([o[2], o[3]])) } else { o.len() };
    let quote_len = (hlen + V4_QUOTED_PAYLOAD_LEN).min(total.max(hlen)).min(o.len());
    let quote = &o[..quote_len];
    let Some(len) = emit_with_quote(out, typ, code, rest, quote) else { return 0 };
    IcmpHeader::new_unchecked(&mut out[..len]).fill_checksum_v4();
    len
}

/// Writes an ICMPv6 error (RFC 4443) from `src` to `dst` into `out`, quoting as much of the
/// offending packet as fits in 1280 - 40 - 8 bytes, with the checksum filled; returns the
/// message length (the IPv6 header is the caller's: [`emit_header`](super::ipv6::emit_header)).
///
/// The quote stops at the packet's Payload Length when it parses, so link-layer padding is
/// never quoted. A quote that does not fit `out` is clipped; an `out` shorter than 8 bytes
/// gets nothing and 0 is returned.
pub fn emit_icmpv6_error(
    out: &mut [u8],
    typ: u8,
    code: u8,
    rest: u32,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    offending: &[u8],
) -> usize {
    let end = match Ipv6Packet::new_checked(offending) {
        Ok(ip) => ipv6::HEADER_LEN + usize::from(ip.payload_len()),
        Err(_) => offending.len(),
    };
    let quote = &offending[..end.min(V6_MAX_QUOTE_LEN)];
    let Some(len) = emit_with_quote(out, typ, code, rest, quote) else { return 0 };
    IcmpHeader::new_unchecked(&mut out[..len]).fill_checksum_v6(src, dst);
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    /// Echo request, ident 0x1234, seq 1, "hi!!".
    const ECHO_V4: [u8; 12] = [0x08, 0x00, 0x5c, 0x40, 0x12, 0x34, 0x00, 0x01, 0x68, 0x69, 0x21, 0x21];
    /// ICMPv6 echo request 2001:db8::1 -> 2001:db8::2, ident 7, seq 9, "ping".
    const ECHO_V6: [u8; 12] = [0x80, 0x00, 0x45, 0x63, 0x00, 0x07, 0x00, 0x09, 0x70, 0x69, 0x6e, 0x67];
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// An IPv4 UDP datagram (IHL 6, 12 bytes of UDP) plus 2 bytes of padding.
    const DATAGRAM: [u8; 38] = [
        0x46, 0xb9, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x9c, 0x89, 0xc0, 0x00, 0x02, 0x01, //
        0xc6, 0x33, 0x64, 0x07, 0x94, 0x04, 0x00, 0x00, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x39, 0xb5, //
        0x61, 0x62, 0x63, 0x64, 0x00, 0x00,
    ];

    #[test]
    fn echo_fields_and_checksums() {
        let m = IcmpHeader::new_checked(&ECHO_V4[..]).unwrap();
        assert_eq!((m.msg_type(), m.code(), m.checksum()), (icmpv4::ECHO_REQUEST, 0, 0x5c40));
        assert_eq!((m.rest(), m.echo_ident(), m.echo_seq()), (0x1234_0001, 0x1234, 1));
        assert_eq!(m.payload(), b"hi!!");
        assert!(m.verify_checksum_v4());

        let m = IcmpHeader::new_checked(&ECHO_V6[..]).unwrap();
        assert_eq!((m.msg_type(), m.echo_ident(), m.echo_seq()), (icmpv6::ECHO_REQUEST, 7, 9));
        assert!(m.verify_checksum_v6(SRC6, DST6) && !m.verify_checksum_v6(DST6, DST6));
    }

    #[test]
    fn echo_reply_in_place() {
        let mut e = ECHO_V4;
        let mut m = IcmpHeader::new_checked(&mut e[..]).unwrap();
        let old = m.checksum();
        m.set_msg_type(icmpv4::ECHO_REPLY);
        let inc = checksum::update16(old, u16::from(icmpv4::ECHO_REQUEST) << 8, u16::from(icmpv4::ECHO_REPLY) << 8);
        m.fill_checksum_v4();
        assert_eq!(m.checksum(), inc);
        let mut e = ECHO_V6;
        let mut m = IcmpHeader::new_checked(&mut e[..]).unwrap();
        m.set_msg_type(icmpv6::ECHO_REPLY);
        m.fill_checksum_v6(DST6, SRC6);
        assert!(m.verify_checksum_v6(DST6, SRC6));
    }

    #[test]
    fn truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(IcmpHeader::new_checked(&ECHO_V4[..n]).unwrap_err(), IcmpError::Truncated);
        }
        assert!(IcmpHeader::new_checked(&ECHO_V4[..8]).unwrap().payload().is_empty());
    }

    #[test]
    fn icmpv4_error_quotes_header_and_8_bytes() {
        let mut out = [0u8; 64];
        let n = emit_icmpv4_error(&mut out, icmpv4::DEST_UNREACHABLE, icmpv4::FRAG_NEEDED, 1400, &DATAGRAM);
        assert_eq!(n, 8 + 24 + 8);
        let m = IcmpHeader::new_checked(&out[..n]).unwrap();
        assert_eq!((m.msg_type(), m.code(), m.rest()), (3, 4, 1400));
        assert_eq!(m.payload(), &DATAGRAM[..32]);
        assert!(m.verify_checksum_v4());
        // A short datagram: the quote stops at Total Length, before the padding.
        let mut short = DATAGRAM;
        short[2..4].copy_from_slice(&28u16.to_be_bytes());
        let n = emit_icmpv4_error(&mut out, icmpv4::TIME_EXCEEDED, icmpv4::TTL_EXCEEDED, 0, &short);
        assert_eq!(&out[8..n], &short[..28]);
        // Too little room: clipped, then nothing.
        assert_eq!(emit_icmpv4_error(&mut out[..20], 3, 1, 0, &DATAGRAM), 20);
        assert!(IcmpHeader::new_checked(&out[..20]).unwrap().verify_checksum_v4());
        assert_eq!(emit_icmpv4_error(&mut out[..7], 3, 1, 0, &DATAGRAM), 0);
        // Garbage is quoted as its IHL says (here 60 + 8), never past its end.
        assert_eq!(emit_icmpv4_error(&mut out, 3, 1, 0, &[0xff; 40]), 48);
        assert_eq!(emit_icmpv4_error(&mut out, 3, 1, 0, &[0xff; 3]), 11);
    }

    #[test]
    fn icmpv6_error_quotes_up_to_min_mtu() {
        let mut big = vec![0u8; 1500];
        ipv6::emit_header(&mut big, DST6, SRC6, ipv6::next_header::UDP, 1, 1460);
        let mut out = vec![0u8; 1500];
        let n = emit_icmpv6_error(&mut out, icmpv6::PACKET_TOO_BIG, 0, 1280, SRC6, DST6, &big);
        assert_eq!(n, 8 + V6_MAX_QUOTE_LEN);
        assert_eq!(ipv6::HEADER_LEN + n, 1280);
        let m = IcmpHeader::new_checked(&out[..n]).unwrap();
        assert_eq!((m.msg_type(), m.rest()), (icmpv6::PACKET_TOO_BIG, 1280));
        assert_eq!(m.payload(), &big[..V6_MAX_QUOTE_LEN]);
        assert!(m.verify_checksum_v6(SRC6, DST6));
        // A small packet with padding behind it: quoted to Payload Length.
        ipv6::emit_header(&mut big, DST6, SRC6, ipv6::next_header::UDP, 1, 8);
        let n = emit_icmpv6_error(&mut out, icmpv6::TIME_EXCEEDED, 0, 0, SRC6, DST6, &big[..60]);
        assert_eq!(n, 8 + 48);
        assert_eq!(emit_icmpv6_error(&mut out[..5], 1, 0, 0, SRC6, DST6, &big), 0);
    }

    #[test]
    fn checksums_agree_with_smoltcp() {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, NdiscRepr, RawHardwareAddress};
        let caps = ChecksumCapabilities::default();
        let mut out = [0u8; 64];
        // smoltcp parses the quote as a whole datagram, so quote one that is exactly
        // header + 8 bytes long.
        let mut d = DATAGRAM;
        d[2..4].copy_from_slice(&32u16.to_be_bytes());
        let n = emit_icmpv4_error(&mut out, icmpv4::DEST_UNREACHABLE, icmpv4::PORT_UNREACHABLE, 0, &d);
        let p = Icmpv4Packet::new_checked(&out[..n]).unwrap();
        assert!(p.verify_checksum());
        assert!(matches!(Icmpv4Repr::parse(&p, &caps).unwrap(), Icmpv4Repr::DstUnreachable { .. }));

        // A neighbour solicitation built by smoltcp verifies with our view.
        let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: DST6,
            lladdr: Some(RawHardwareAddress::from_bytes(&[2, 0, 0, 0, 0, 1])),
        });
        let mut buf = vec![0u8; ns.buffer_len()];
        ns.emit(&SRC6, &DST6, &mut Icmpv6Packet::new_unchecked(&mut buf[..]), &caps);
        let m = IcmpHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(m.msg_type(), icmpv6::NEIGHBOR_SOLICIT);
        assert!(m.verify_checksum_v6(SRC6, DST6));
        let parsed = Icmpv6Repr::parse(&SRC6, &DST6, &Icmpv6Packet::new_checked(&buf[..]).unwrap(), &caps);
        assert_eq!(parsed.unwrap(), ns);
    }

    #[test]
    fn smoltcp_arp_request_round_trip() {
        use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};
        let req = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: Ipv4Addr::new(192, 0, 2, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(192, 0, 2, 254),
        };
        let mut buf = vec![0u8; req.buffer_len()];
        req.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..8], &[0, 1, 0x08, 0x00, 6, 4, 0, 1], "Ethernet/IPv4, request");
        assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(), req);
    }

    #[test]
    fn smoltcp_dhcp_discover_round_trip() {
        use smoltcp::wire::{DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress};
        let mac = EthernetAddress([2, 0, 0, 0, 0, 7]);
        let discover = DhcpRepr {
            message_type: DhcpMessageType::Discover,
            transaction_id: 0x3d1d,
            secs: 0,
            client_hardware_address: mac,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: None,
            client_identifier: Some(mac),
            server_identifier: None,
            parameter_request_list: Some(&[1, 3, 6]),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut buf = vec![0u8; discover.buffer_len()];
        discover.emit(&mut DhcpPacket::new_unchecked(&mut buf)).unwrap();
        let packet = DhcpPacket::new_checked(&buf).unwrap();
        assert_eq!(DhcpRepr::parse(&packet).unwrap(), discover);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            buf in proptest::collection::vec(any::<u8>(), 0..1400), out_len in 0usize..1400, ihl in 0u8..16,
        ) {
            if let Ok(m) = IcmpHeader::new_checked(&buf[..]) {
                let _ = (m.msg_type(), m.code(), m.checksum(), m.rest(), m.echo_ident(), m.echo_seq());
                let _ = (m.payload().len(), m.verify_checksum_v4(), m.verify_checksum_v6(SRC6, DST6));
            }
            let mut out = vec![0u8; out_len];
            let n = emit_icmpv4_error(&mut out, 3, 0, 0, &buf);
            prop_assert!(n <= out_len && n <= HEADER_LEN + 60 + 8);
            if n > 0 {
                prop_assert!(IcmpHeader::new_checked(&out[..n]).unwrap().verify_checksum_v4());
            }
            let n = emit_icmpv6_error(&mut out, 1, 0, 0, SRC6, DST6, &buf);
            prop_assert!(n <= out_len && n <= HEADER_LEN + V6_MAX_QUOTE_LEN);
            // Plausible IPv4 headers exercise the parsed-quote path.
            let mut ip = buf.clone();
            if ip.len() >= 4 {
                ip[0] = 0x40 | ihl;
                let total = ip.len().min(usize::from(u16::MAX)) as u16;
                ip[2..4].copy_from_slice(&total.to_be_bytes());
            }
            let n = emit_icmpv4_error(&mut out, 11, 0, 0, &ip);
            prop_assert!(n <= out_len);
        }
    }
}
