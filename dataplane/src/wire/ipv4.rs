//! IPv4 headers (RFC 791).
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |         Identification        |0|D|M|      Fragment Offset    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |  Time to Live |    Protocol   |         Header Checksum       |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                       Source Address                          |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                    Destination Address                        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                    Options (IHL > 5)                          |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The view's buffer may run past the datagram (Ethernet pads runts to 60 bytes):
//! [`Ipv4Packet::payload`] ends at Total Length, not at the end of the buffer.

use core::net::Ipv4Addr;

use super::checksum;

/// Byte ranges of the fixed header.
mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// IPv4 protocol numbers sluice looks at.
pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// Why bytes are not an IPv4 datagram this view can read.
///
/// Split as Linux counts them: a datagram longer than what arrived is `Truncated`
/// (`InTruncatedPkts`), a header that contradicts itself is a header error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Error {
    /// Shorter than 20 bytes, or Total Length runs past the buffer.
    Truncated,
    /// The version nibble is not 4.
    BadVersion,
    /// IHL below 5.
    BadIhl,
    /// Total Length shorter than the header (IHL) it must contain.
    BadTotalLen,
}

/// A read (and, over `AsMut`, write) view of an IPv4 datagram.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it: accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Ipv4Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks everything the accessors rely on: 20 <= IHL * 4 <= Total Length <= buffer,
    /// and version 4.
    #[inline]
    pub fn check_len(&self) -> Result<(), Ipv4Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Ipv4Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Ipv4Error::BadVersion);
        }
        if self.ihl() < 5 {
            return Err(Ipv4Error::BadIhl);
        }
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            return Err(Ipv4Error::BadTotalLen);
        }
        if total > len {
            return Err(Ipv4Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in 32-bit words.
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }
    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }
    /// The whole type-of-service byte: DSCP (6 bits) | ECN (2 bits).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }
    /// Header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn ident(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::IDENT];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    fn flags_offset(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::FLG_OFF];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }
    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }
    /// Part of a fragmented datagram: MF set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }
    /// Offset 0: the first fragment, or a datagram that is not fragmented at all. The L4
    /// header is here exactly then, and only then may an ICMP error be sent about it
    /// (RFC 1812 4.3.2.7). The first fragment of a fragmented datagram is
    /// `is_fragment() && is_first_fragment()`.
    #[inline]
    pub fn is_first_fragment(&self) -> bool {
        self.flags_offset() & OFFSET_MASK == 0
    }
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Source address as a host-order integer (for table lookups).
    #[inline]
    pub fn src_u32(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SRC];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Destination address as a host-order integer (for table lookups).
    #[inline]
    pub fn dst_u32(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::DST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_u32())
    }
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_u32())
    }
    /// The option bytes between the fixed header and the payload (empty when IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The bytes after the header, up to Total Length (link-layer padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
    /// True if the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let h = &self.buffer.as_ref()[..self.header_len()];
        // The common option-less header: five words, no loop, no tail.
        match <&[u8; HEADER_LEN]>::try_from(h) {
            Ok(h) => checksum::verifies20(h),
            Err(_) => checksum::fold(checksum::sum(h)) == 0xffff,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    }
    /// Sets the source address; the checksum is left to the caller.
    #[inline]
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }
    /// Sets the destination address; the checksum is left to the caller.
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }
    /// Sets Total Length. A view that must stay valid needs IHL * 4 <= len <= buffer.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }
    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(csum);
    }
    /// Decrements TTL and patches the checksum incrementally (RFC 1624), returning the new
    /// TTL. The forwarding stage checks `ttl() <= 1` first; a TTL of 0 stays 0.
    ///
    /// The TTL/protocol word drops by exactly 0x0100, so eqn. 3 needs neither word, and the
    /// checksum is patched as it lies in the frame, in the CPU's byte order (no swaps; see
    /// [`checksum::update_ttl_decrement_ne`]).
    #[inline(always)]
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        let csum = checksum::update_ttl_decrement_ne(u16::from_ne_bytes([b[0], b[1]]));
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&csum.to_ne_bytes());
        self.set_ttl(ttl - 1);
        ttl - 1
    }
    /// The bytes after the header, up to Total Length, for rewriting in place.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }
}

/// Writes a 20-byte header (no options, DSCP 0, DF clear) with its checksum into `buf` and
/// returns its length, for reply datagrams (ICMP errors, echo replies).
/// Panics if `buf` is shorter than 20 bytes; `payload_len` must leave Total Length <= 65535.
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    payload_len: u16,
    ident: u16,
) -> usize {
    debug_assert!(usize::from(payload_len) + HEADER_LEN <= usize::from(u16::MAX));
    let h = &mut buf[..HEADER_LEN];
    h[field::VER_IHL] = 0x45;
    h[field::TOS] = 0;
    h[field::LENGTH].copy_from_slice(&(HEADER_LEN as u16).wrapping_add(payload_len).to_be_bytes());
    h[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    h[field::FLG_OFF].copy_from_slice(&[0, 0]);
    h[field::TTL] = ttl;
    h[field::PROTOCOL] = proto;
    h[field::CHECKSUM].copy_from_slice(&[0, 0]);
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    let csum = checksum::checksum(h);
    h[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// IHL 6 (Router Alert option), DSCP EF / ECT(1), DF, UDP 5353 -> 53 "abcd", then two
    /// bytes of link-layer padding that are not part of the datagram.
    const DATAGRAM: [u8; 38] = [
        0x46, 0xb9, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x9c, 0x89, // ver..checksum
        0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07, // 192.0.2.1 -> 198.51.100.7
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x39, 0xb5, 0x61, 0x62, 0x63, 0x64, // UDP
        0x00, 0x00, // padding
    ];

    #[test]
    fn fields() {
        let p = Ipv4Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((p.version(), p.ihl(), p.header_len()), (4, 6, 24));
        assert_eq!((p.tos(), p.dscp(), p.ecn()), (0xb9, 46, 1));
        assert_eq!((p.total_len(), p.ident()), (36, 0x1c46));
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment() && p.is_first_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!((p.ttl(), p.protocol(), p.checksum()), (64, protocol::UDP, 0x9c89));
        assert_eq!(p.src(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!((p.src_u32(), p.dst_u32()), (0xc000_0201, 0xc633_6407));
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.payload(), &DATAGRAM[24..36], "padding excluded");
        assert!(p.verify_checksum());
    }

    #[test]
    fn fragments() {
        let mut d = DATAGRAM;
        d[6..8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert!(p.is_fragment() && p.is_first_fragment() && p.more_frags() && !p.dont_frag());
        d[6..8].copy_from_slice(&0x2003u16.to_be_bytes()); // MF, offset 24
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert!(p.is_fragment() && !p.is_first_fragment());
        assert_eq!(p.frag_offset(), 24);
        d[6..8].copy_from_slice(&0x1fffu16.to_be_bytes()); // last fragment, largest offset
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert!(p.is_fragment() && !p.is_first_fragment() && !p.more_frags());
        assert_eq!(p.frag_offset(), 65528);
    }

    #[test]
    fn malformed_headers_are_errors() {
        for n in 0..HEADER_LEN {
            assert_eq!(Ipv4Packet::new_checked(&DATAGRAM[..n]).unwrap_err(), Ipv4Error::Truncated);
        }
        // Total Length beyond the buffer.
        assert_eq!(Ipv4Packet::new_checked(&DATAGRAM[..35]).unwrap_err(), Ipv4Error::Truncated);
        let mut d = DATAGRAM;
        d[0] = 0x66;
        assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap_err(), Ipv4Error::BadVersion);
        for ihl in 0..5 {
            d[0] = 0x40 | ihl;
            assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap_err(), Ipv4Error::BadIhl);
        }
        // IHL beyond Total Length (and beyond the buffer).
        d[0] = 0x4f;
        assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap_err(), Ipv4Error::BadTotalLen);
        d[0] = 0x46;
        d[2..4].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap_err(), Ipv4Error::BadTotalLen);
        // Header only, no payload: valid.
        d[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&d[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn decrement_ttl_patches_checksum() {
        let mut d = DATAGRAM;
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        for expect in (0..64).rev() {
            assert_eq!(p.decrement_ttl(), expect);
            assert!(p.verify_checksum(), "ttl {expect}");
        }
        assert_eq!(p.decrement_ttl(), 0, "saturates");
        assert!(p.verify_checksum());
    }

    #[test]
    fn setters_and_emit() {
        let mut d = DATAGRAM;
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        p.set_src(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst(Ipv4Addr::new(10, 0, 0, 2));
        p.set_ttl(1);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_total_len(28);
        p.payload_mut().copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);

        let mut buf = [0u8; 28];
        let src = Ipv4Addr::new(192, 0, 2, 254);
        let n = emit_header(&mut buf, src, Ipv4Addr::new(192, 0, 2, 1), protocol::ICMP, 64, 8, 7);
        assert_eq!(n, HEADER_LEN);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.src(), p.protocol(), p.ttl(), p.total_len(), p.ident()), (src, 1, 64, 28, 7));
        assert!(!p.dont_frag() && !p.is_fragment() && p.options().is_empty());
    }

    /// Calls every accessor; none may panic once `new_checked` succeeded.
    fn exercise(buf: &mut [u8]) {
        let Ok(p) = Ipv4Packet::new_checked(&*buf) else { return };
        let _ = (p.version(), p.ihl(), p.tos(), p.dscp(), p.ecn(), p.total_len(), p.ident());
        let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.is_first_fragment());
        let _ = (p.ttl(), p.protocol(), p.checksum(), p.src(), p.dst(), p.src_u32(), p.dst_u32());
        let _ = (p.options().len(), p.payload().len(), p.verify_checksum());
        let mut p = Ipv4Packet::new_unchecked(buf);
        p.decrement_ttl();
        p.fill_checksum();
        assert!(p.verify_checksum());
        let _ = p.payload_mut().len();
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            mut buf in proptest::collection::vec(any::<u8>(), 0..100), ihl in 0u8..16, total in 0u16..110,
        ) {
            exercise(&mut buf.clone());
            // Plausible headers reach past the version check.
            if buf.len() >= 4 {
                buf[0] = 0x40 | ihl;
                buf[2..4].copy_from_slice(&total.to_be_bytes());
            }
            exercise(&mut buf);
        }

        /// The incremental patch gives the checksum a recomputation gives (a header that
        /// starts 0x45 never sums to zero, so the two agree exactly, not only modulo 0xffff).
        #[test]
        fn decrement_ttl_equals_recomputation(mut h in proptest::array::uniform20(any::<u8>())) {
            h[0] = 0x45;
            h[2..4].copy_from_slice(&20u16.to_be_bytes());
            let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
            p.fill_checksum();
            let ttl = p.ttl();
            prop_assert_eq!(p.decrement_ttl(), ttl.saturating_sub(1));
            let patched = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(patched, p.checksum());
        }
    }
}
