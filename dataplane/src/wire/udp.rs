//! UDP datagrams (RFC 768; over IPv6, RFC 8200 section 8.1).
//!
//! ```text
//!   0      7 8     15 16    23 24    31
//!  +--------+--------+--------+--------+
//!  |   Source Port   | Destination Port|
//!  +--------+--------+--------+--------+
//!  |     Length      |    Checksum     |
//!  +--------+--------+--------+--------+
//!  |          data octets ...
//!  +---------------- ...
//! ```
//! Length counts header and data. The checksum covers a pseudo-header, the header and the
//! data. Over IPv4 a transmitted checksum of 0 means "none", so a computed 0 is sent as
//! 0xffff; over IPv6 the checksum is mandatory and a zero one is invalid.
//!
//! Build the view over the IP payload ([`Ipv4Packet::payload`](super::Ipv4Packet::payload)):
//! bytes past Length (padding) are ignored.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;

/// Byte ranges of the header.
mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = 8;
/// The IP protocol / IPv6 Next Header number of UDP.
const PROTOCOL: u8 = 17;

/// Why bytes are not a UDP datagram this view can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpError {
    /// Shorter than 8 bytes, or Length runs past the buffer.
    Truncated,
    /// Length below the 8-byte header.
    BadLength,
}

/// A read (and, over `AsMut`, write) view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it: accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, UdpError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks everything the accessors rely on: 8 <= Length <= buffer.
    pub fn check_len(&self) -> Result<(), UdpError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(UdpError::Truncated);
        }
        let udp_len = usize::from(self.len());
        if udp_len < HEADER_LEN {
            return Err(UdpError::BadLength);
        }
        if udp_len > len {
            return Err(UdpError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::SRC_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::DST_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Header plus data, in bytes.
    #[inline]
    #[allow(clippy::len_without_is_empty)] // a header field, never empty after check_len
    pub fn len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The data, up to Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// Header and data: what the checksum covers besides the pseudo-header.
    #[inline]
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }
    /// True if the checksum is right or absent (0) over IPv4.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        checksum::fold(checksum::pseudo_v4(src, dst, PROTOCOL, d.len()) + checksum::sum(d)) == 0xffff
    }
    /// True if the checksum is right over IPv6, where 0 is never right.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let d = self.datagram();
        checksum::fold(checksum::pseudo_v6(src, dst, PROTOCOL, d.len()) + checksum::sum(d)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }
    /// Sets Length. A view that must stay valid needs 8 <= len <= buffer.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    }
    /// The data, up to Length, for rewriting in place.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
    /// Computes the checksum with the IPv4 pseudo-header (a computed 0 is sent as 0xffff).
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let d = self.datagram();
        let sum = checksum::pseudo_v4(src, dst, PROTOCOL, d.len()) + checksum::sum(d);
        self.set_checksum(on_the_wire(!checksum::fold(sum)));
    }
    /// Computes the checksum with the IPv6 pseudo-header (a computed 0 is sent as 0xffff).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let d = self.datagram();
        let sum = checksum::pseudo_v6(src, dst, PROTOCOL, d.len()) + checksum::sum(d);
        self.set_checksum(on_the_wire(!checksum::fold(sum)));
    }
}

/// 0 on the wire means "no checksum"; the same value in ones-complement is 0xffff.
#[inline]
const fn on_the_wire(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 5353 -> 53, "abcd", checksummed for 192.0.2.1 -> 198.51.100.7; then 2 padding bytes.
    const DATAGRAM_V4: [u8; 14] = [0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x39, 0xb5, 0x61, 0x62, 0x63, 0x64, 0, 0];
    /// 546 -> 547, "wxyz", checksummed for 2001:db8::1 -> 2001:db8::2.
    const DATAGRAM_V6: [u8; 12] = [0x02, 0x22, 0x02, 0x23, 0x00, 0x0c, 0xaf, 0x29, 0x77, 0x78, 0x79, 0x7a];
    const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    #[test]
    fn fields_and_checksums() {
        let p = UdpPacket::new_checked(&DATAGRAM_V4[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len(), p.checksum()), (5353, 53, 12, 0x39b5));
        assert_eq!(p.payload(), b"abcd", "padding excluded");
        assert!(p.verify_checksum_v4(SRC4, DST4));
        assert!(!p.verify_checksum_v4(SRC4, Ipv4Addr::new(198, 51, 100, 8)));

        let p = UdpPacket::new_checked(&DATAGRAM_V6[..]).unwrap();
        assert!(p.verify_checksum_v6(SRC6, DST6));
        assert!(!p.verify_checksum_v6(SRC6, SRC6));
    }

    #[test]
    fn zero_checksum_rules() {
        let mut d = DATAGRAM_V4;
        d[6..8].copy_from_slice(&[0, 0]);
        assert!(UdpPacket::new_checked(&d[..]).unwrap().verify_checksum_v4(SRC4, DST4), "v4: none");
        assert!(!UdpPacket::new_checked(&d[..]).unwrap().verify_checksum_v6(SRC6, DST6), "v6: invalid");
        // A datagram whose checksum computes to 0 is sent with 0xffff: two data bytes chosen
        // so that everything sums to 0xffff.
        let mut d = [0x14, 0xe9, 0x00, 0x35, 0x00, 0x0a, 0, 0, 0, 0];
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        let partial = checksum::pseudo_v4(SRC4, DST4, PROTOCOL, 10) + checksum::sum(p.datagram());
        let fill = !checksum::fold(partial);
        p.payload_mut().copy_from_slice(&fill.to_be_bytes());
        p.fill_checksum_v4(SRC4, DST4);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4(SRC4, DST4));
    }

    #[test]
    fn malformed_lengths_are_errors() {
        for n in 0..HEADER_LEN {
            assert_eq!(UdpPacket::new_checked(&DATAGRAM_V4[..n]).unwrap_err(), UdpError::Truncated);
        }
        assert_eq!(UdpPacket::new_checked(&DATAGRAM_V4[..11]).unwrap_err(), UdpError::Truncated);
        let mut d = DATAGRAM_V4;
        for len in 0..8u16 {
            d[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(UdpPacket::new_checked(&d[..]).unwrap_err(), UdpError::BadLength);
        }
        d[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert!(UdpPacket::new_checked(&d[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn setters_then_fill() {
        let mut d = DATAGRAM_V6;
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        p.set_src_port(68);
        p.set_dst_port(67);
        assert!(!p.verify_checksum_v6(SRC6, DST6));
        p.fill_checksum_v6(SRC6, DST6);
        assert!(p.verify_checksum_v6(SRC6, DST6));
        p.set_len(10);
        p.fill_checksum_v4(SRC4, DST4);
        assert_eq!((p.src_port(), p.dst_port(), p.payload()), (68, 67, &b"wx"[..]));
        assert!(p.verify_checksum_v4(SRC4, DST4));
        p.set_checksum(0x1234);
        assert_eq!(p.checksum(), 0x1234);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..64), len in 0u16..70) {
            for fix in [false, true] {
                if fix && buf.len() >= HEADER_LEN {
                    buf[4..6].copy_from_slice(&len.to_be_bytes());
                }
                let Ok(p) = UdpPacket::new_checked(&buf[..]) else { continue };
                let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload().len());
                let _ = (p.verify_checksum_v4(SRC4, DST4), p.verify_checksum_v6(SRC6, DST6));
                let mut p = UdpPacket::new_unchecked(&mut buf[..]);
                p.fill_checksum_v4(SRC4, DST4);
                prop_assert!(p.verify_checksum_v4(SRC4, DST4));
                p.fill_checksum_v6(SRC6, DST6);
                prop_assert!(p.verify_checksum_v6(SRC6, DST6));
                let _ = p.payload_mut().len();
            }
        }
    }
}
