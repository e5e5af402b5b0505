//! IPv6 headers (RFC 8200) and a bounded walk over the extension-header chain.
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |Version| Traffic Class |           Flow Label                  |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |         Payload Length        |  Next Header  |   Hop Limit   |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                   Source Address (128 bits)                   |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                Destination Address (128 bits)                 |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//!  Extension header (Hop-by-Hop 0, Routing 43, Destination Options 60):
//!  | Next Header | Hdr Ext Len (8-octet units, not counting the first 8) | data ...
//!  Authentication Header (51): the length counts 4-octet units, minus 2.
//!  Fragment header (44), always 8 bytes:
//!  | Next Header |   Reserved    |  Fragment Offset (13)   |Res|M|
//!  |                         Identification                        |
//! ```
//! Payload Length 0 (a jumbogram's) is read as an empty payload: jumbograms are not
//! supported. The view's buffer may run past the payload (link-layer padding).

use core::net::Ipv6Addr;

/// Byte ranges of the fixed header.
mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// The longest extension-header chain [`Ipv6Packet::upper_layer`] walks.
pub const MAX_EXT_HEADERS: usize = 8;
/// Length of a Fragment extension header.
pub const FRAG_HEADER_LEN: usize = 8;

/// Next Header values sluice looks at (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
}

/// The extension headers [`Ipv6Packet::upper_layer`] walks through.
#[inline]
const fn is_extension(nh: u8) -> bool {
    use next_header::*;
    matches!(nh, HOP_BY_HOP | ROUTING | FRAGMENT | DEST_OPTS | AH)
}

/// Why bytes are not an IPv6 packet this view can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6Error {
    /// Shorter than 40 bytes, Payload Length runs past the buffer, or an extension
    /// header runs past the payload.
    Truncated,
    /// The version nibble is not 6.
    BadVersion,
    /// More than [`MAX_EXT_HEADERS`] extension headers before the upper layer.
    TooManyExtHeaders,
}

/// The Fragment header of a fragmented packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frag {
    /// Offset of this fragment's data in the original payload, in bytes.
    pub offset: u16,
    /// M flag: more fragments follow.
    pub more: bool,
    pub ident: u32,
}

/// A read (and, over `AsMut`, write) view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it: accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Ipv6Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks everything the accessors rely on: version 6 and 40 + Payload Length <= buffer.
    /// The extension headers are checked by [`upper_layer`](Self::upper_layer).
    pub fn check_len(&self) -> Result<(), Ipv6Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Ipv6Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Ipv6Error::BadVersion);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Ipv6Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// The whole traffic class: DSCP (6 bits) | ECN (2 bits).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }
    /// The 20-bit flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }
    /// Length of everything after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The header right after the fixed header (maybe an extension header).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address as a host-order integer (for table lookups).
    #[inline]
    pub fn src_u128(&self) -> u128 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        u128::from_be_bytes(a)
    }
    /// Destination address as a host-order integer (for table lookups).
    #[inline]
    pub fn dst_u128(&self) -> u128 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        u128::from_be_bytes(a)
    }
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_u128())
    }
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_u128())
    }
    /// The bytes after the fixed header, up to Payload Length (extension headers included,
    /// link-layer padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers to the upper layer: returns its protocol, the offset of
    /// its header from the start of this IPv6 header, and the Fragment header if one was
    /// passed.
    ///
    /// Walks Hop-by-Hop, Routing, Fragment, Destination Options and AH, at most
    /// [`MAX_EXT_HEADERS`] of them, and stops at any other Next Header (No Next Header and
    /// ESP included). It also stops after a Fragment header with a non-zero offset: what
    /// follows is the middle of a payload, so the protocol is the Fragment header's Next
    /// Header and there is no L4 header to read at the offset. Every length is checked
    /// against Payload Length; the order of the headers is not checked.
    pub fn upper_layer(&self) -> Result<(u8, usize, Option<Frag>), Ipv6Error> {
        let b = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.payload_len());
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut frag = None;
        let mut walked = 0;
        loop {
            if !is_extension(nh) {
                return Ok((nh, off, frag));
            }
            if walked == MAX_EXT_HEADERS {
                return Err(Ipv6Error::TooManyExtHeaders);
            }
            walked += 1;
            // Every extension header starts with Next Header and a length byte.
            if off + 2 > end {
                return Err(Ipv6Error::Truncated);
            }
            let len = match nh {
                next_header::FRAGMENT => FRAG_HEADER_LEN,
                next_header::AH => (usize::from(b[off + 1]) + 2) * 4,
                _ => (usize::from(b[off + 1]) + 1) * 8,
            };
            if off + len > end {
                return Err(Ipv6Error::Truncated);
            }
            let this = nh;
            nh = b[off];
            off += len;
            if this == next_header::FRAGMENT {
                let f = &b[off - FRAG_HEADER_LEN..off];
                let offset = u16::from_be_bytes([f[2], f[3]]) & 0xfff8;
                let ident = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                frag = Some(Frag { offset, more: f[3] & 1 != 0, ident });
                if offset != 0 {
                    return Ok((nh, off, frag));
                }
            }
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    #[inline]
    pub fn set_hop_limit(&mut self, hops: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hops;
    }
    #[inline]
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }
    /// Sets Payload Length. A view that must stay valid needs 40 + len <= buffer.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }
    /// The bytes after the fixed header, up to Payload Length, for rewriting in place.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Writes a 40-byte header (traffic class 0, flow label 0) into `buf` and returns its
/// length, for reply packets (ICMPv6 errors, NDP). Panics if `buf` is shorter than 40 bytes.
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: u16,
) -> usize {
    let h = &mut buf[..HEADER_LEN];
    h[field::VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
    h[field::LENGTH].copy_from_slice(&payload_len.to_be_bytes());
    h[field::NXT_HDR] = next_header;
    h[field::HOP_LIMIT] = hop_limit;
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2001:db8::1 -> 2001:db8::2, traffic class 0xb9, flow 0x12345, Hop-by-Hop (PadN),
    /// Fragment (offset 0, M, ident 0xdeadbeef), UDP 546 -> 547 "wxyz", 2 bytes of padding.
    const PACKET: [u8; 70] = [
        0x6b, 0x91, 0x23, 0x45, 0x00, 0x1c, 0x00, 0x40, // ver/tc/flow, len 28, HBH, hops 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // Hop-by-Hop -> Fragment
        0x11, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // Fragment -> UDP
        0x02, 0x22, 0x02, 0x23, 0x00, 0x0c, 0xaf, 0x29, 0x77, 0x78, 0x79, 0x7a, // UDP
        0x00, 0x00, // padding
    ];

    #[test]
    fn fields() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.dscp(), p.ecn()), (6, 0xb9, 46, 1));
        assert_eq!((p.flow_label(), p.payload_len()), (0x12345, 28));
        assert_eq!((p.next_header(), p.hop_limit()), (next_header::HOP_BY_HOP, 64));
        assert_eq!(p.src(), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(p.dst_u128(), 0x2001_0db8_0000_0000_0000_0000_0000_0002);
        assert_eq!(p.payload(), &PACKET[40..68], "padding excluded");
        let frag = Frag { offset: 0, more: true, ident: 0xdead_beef };
        assert_eq!(p.upper_layer(), Ok((next_header::UDP, 56, Some(frag))));
    }

    #[test]
    fn truncated_and_bad_version() {
        for n in 0..HEADER_LEN {
            assert_eq!(Ipv6Packet::new_checked(&PACKET[..n]).unwrap_err(), Ipv6Error::Truncated);
        }
        assert_eq!(Ipv6Packet::new_checked(&PACKET[..67]).unwrap_err(), Ipv6Error::Truncated);
        let mut d = PACKET;
        d[0] = 0x4b;
        assert_eq!(Ipv6Packet::new_checked(&d[..]).unwrap_err(), Ipv6Error::BadVersion);
    }

    /// A packet of `n` Destination Options headers (8 bytes each) then `last`.
    fn chain(n: usize, last: u8) -> Vec<u8> {
        let mut v = PACKET[..HEADER_LEN].to_vec();
        v[6] = if n == 0 { last } else { next_header::DEST_OPTS };
        for i in 0..n {
            let nh = if i + 1 == n { last } else { next_header::DEST_OPTS };
            v.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]);
        }
        v.extend_from_slice(&[0; 8]);
        let len = (v.len() - HEADER_LEN) as u16;
        v[4..6].copy_from_slice(&len.to_be_bytes());
        v
    }

    #[test]
    fn chain_is_bounded() {
        for n in 0..=MAX_EXT_HEADERS {
            let v = chain(n, next_header::TCP);
            let p = Ipv6Packet::new_checked(&v[..]).unwrap();
            assert_eq!(p.upper_layer(), Ok((next_header::TCP, HEADER_LEN + 8 * n, None)), "{n} headers");
        }
        let v = chain(MAX_EXT_HEADERS + 1, next_header::TCP);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Ipv6Error::TooManyExtHeaders));
        let v = chain(2, next_header::NO_NEXT);
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Ok((next_header::NO_NEXT, 56, None)));
    }

    #[test]
    fn ext_header_beyond_payload_is_truncated() {
        // Hdr Ext Len 1 (16 bytes) with only 8 bytes of payload after it... and the buffer.
        let mut v = chain(1, next_header::UDP);
        v[HEADER_LEN + 1] = 2;
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Err(Ipv6Error::Truncated));
        // The header fits the buffer but not Payload Length.
        let mut v = chain(1, next_header::UDP);
        v[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Err(Ipv6Error::Truncated));
        // Not even the two leading bytes.
        v[4..6].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Err(Ipv6Error::Truncated));
        // Fragment header longer than what is left.
        let mut v = PACKET;
        v[4..6].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Err(Ipv6Error::Truncated));
    }

    #[test]
    fn ah_length_counts_four_byte_units() {
        // AH with Payload Len 4: (4 + 2) * 4 = 24 bytes, then ICMPv6.
        let mut v = PACKET[..HEADER_LEN].to_vec();
        v[6] = next_header::AH;
        v.extend_from_slice(&[next_header::ICMPV6, 4, 0, 0]);
        v.extend_from_slice(&[0; 20]);
        v.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
        v[4..6].copy_from_slice(&32u16.to_be_bytes());
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((next_header::ICMPV6, 64, None)));
    }

    #[test]
    fn later_fragment_stops_the_walk() {
        let mut v = PACKET;
        v[50..52].copy_from_slice(&0x00b8u16.to_be_bytes()); // offset 23 * 8 = 184, M clear
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        let frag = Frag { offset: 184, more: false, ident: 0xdead_beef };
        assert_eq!(p.upper_layer(), Ok((next_header::UDP, 56, Some(frag))));
        // Even if what follows looks like another extension header.
        v[48] = next_header::DEST_OPTS;
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((next_header::DEST_OPTS, 56, Some(frag))));
    }

    #[test]
    fn setters_and_emit() {
        let mut buf = [0u8; 48];
        let (src, dst) = ("fe80::1".parse().unwrap(), "ff02::1".parse().unwrap());
        assert_eq!(emit_header(&mut buf, src, dst, next_header::ICMPV6, 255, 8), HEADER_LEN);
        let mut p = Ipv6Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!((p.src(), p.dst(), p.hop_limit(), p.payload_len()), (src, dst, 255, 8));
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 0));
        assert_eq!(p.upper_layer(), Ok((next_header::ICMPV6, HEADER_LEN, None)));
        p.set_hop_limit(1);
        p.set_src(dst);
        p.set_dst(src);
        p.set_payload_len(4);
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!((p.src(), p.dst(), p.hop_limit(), p.payload()), (dst, src, 1, &[1u8, 2, 3, 4][..]));
    }

    /// Calls every accessor and the walk; none may panic once `new_checked` succeeded.
    fn exercise(buf: &mut [u8]) {
        let Ok(p) = Ipv6Packet::new_checked(&*buf) else { return };
        let _ = (p.version(), p.traffic_class(), p.dscp(), p.ecn(), p.flow_label(), p.payload_len());
        let _ = (p.next_header(), p.hop_limit(), p.src(), p.dst(), p.src_u128(), p.dst_u128());
        let _ = p.payload().len();
        if let Ok((_, off, _)) = p.upper_layer() {
            assert!(off <= HEADER_LEN + usize::from(p.payload_len()));
        }
        let mut p = Ipv6Packet::new_unchecked(buf);
        p.set_hop_limit(0);
        let _ = p.payload_mut().len();
    }

    fn ext() -> impl Strategy<Value = u8> {
        prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60), any::<u8>()]
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            mut buf in proptest::collection::vec(any::<u8>(), 0..200),
            chain in proptest::collection::vec((ext(), 0u8..4), 0..12),
            plen in 0u16..200,
        ) {
            exercise(&mut buf.clone());
            // Plausible chains reach the walk: Next Header / length bytes every 8 bytes.
            if buf.len() >= HEADER_LEN {
                buf[0] = 0x60 | (buf[0] & 0x0f);
                buf[4..6].copy_from_slice(&plen.to_be_bytes());
                if let Some(&(nh, _)) = chain.first() {
                    buf[6] = nh;
                }
                for (i, &(nh, len)) in chain.iter().skip(1).enumerate() {
                    let at = HEADER_LEN + 8 * i;
                    if at + 2 <= buf.len() {
                        buf[at] = nh;
                        buf[at + 1] = len;
                    }
                }
            }
            exercise(&mut buf);
        }
    }
}
