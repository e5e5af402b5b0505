//! TCP segment headers (RFC 9293).
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |          Source Port          |       Destination Port        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                        Sequence Number                        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                    Acknowledgment Number                      |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |  Data |       |C|E|U|A|P|R|S|F|                               |
//!  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//!  |       |       |R|E|G|K|H|T|N|N|                               |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |           Checksum            |         Urgent Pointer        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                    Options (Data Offset > 5)                  |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! TCP carries no length of its own: the view's buffer is the whole segment, so build it
//! over the IP payload ([`Ipv4Packet::payload`](super::Ipv4Packet::payload)), never over a
//! buffer that still holds link-layer padding, or the checksum covers the padding.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::ops::{BitAnd, BitOr, BitOrAssign};

use super::checksum;

/// Byte ranges of the fixed header.
mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// The IP protocol / IPv6 Next Header number of TCP.
const PROTOCOL: u8 = 6;

/// Why bytes are not a TCP segment this view can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// Shorter than 20 bytes, or the header (Data Offset) runs past the buffer.
    Truncated,
    /// Data Offset below 5.
    BadDataOffset,
}

/// The eight flag bits of byte 13.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    const NAMES: [&'static str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

    #[inline]
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Some flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// SYN without ACK: the segment that opens a connection (what flow setup keys on).
    #[inline]
    pub const fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN.0 | Self::ACK.0 | Self::RST.0) == Self::SYN.0
    }
    /// FIN or RST: the connection is ending.
    #[inline]
    pub const fn is_closing(self) -> bool {
        self.intersects(TcpFlags(Self::FIN.0 | Self::RST.0))
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    /// `SYN|ACK`, or `-` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut sep = "";
        for (bit, name) in Self::NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        Ok(())
    }
}

/// A read (and, over `AsMut`, write) view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it: accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, TcpError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks everything the accessors rely on: 20 <= Data Offset * 4 <= buffer.
    pub fn check_len(&self) -> Result<(), TcpError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(TcpError::Truncated);
        }
        if self.data_offset() < 5 {
            return Err(TcpError::BadDataOffset);
        }
        if self.header_len() > len {
            return Err(TcpError::Truncated);
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
    #[inline]
    pub fn seq(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SEQ];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline]
    pub fn ack(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::ACK];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Header length in 32-bit words.
    #[inline]
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[field::DATA_OFFSET] >> 4
    }
    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }
    #[inline]
    pub fn window(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::WINDOW];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn urgent(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::URGENT];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The option bytes (empty when Data Offset = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The data after the header, to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// True if the checksum over the IPv4 pseudo-header and the whole buffer is right.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let s = self.buffer.as_ref();
        checksum::fold(checksum::pseudo_v4(src, dst, PROTOCOL, s.len()) + checksum::sum(s)) == 0xffff
    }
    /// True if the checksum over the IPv6 pseudo-header and the whole buffer is right.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let s = self.buffer.as_ref();
        checksum::fold(checksum::pseudo_v6(src, dst, PROTOCOL, s.len()) + checksum::sum(s)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port; the checksum is left to the caller.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }
    /// Sets the destination port; the checksum is left to the caller.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    }
    /// Computes the checksum with the IPv4 pseudo-header over the whole buffer.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let s = self.buffer.as_ref();
        let csum = !checksum::fold(checksum::pseudo_v4(src, dst, PROTOCOL, s.len()) + checksum::sum(s));
        self.set_checksum(csum);
    }
    /// Computes the checksum with the IPv6 pseudo-header over the whole buffer.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let s = self.buffer.as_ref();
        let csum = !checksum::fold(checksum::pseudo_v6(src, dst, PROTOCOL, s.len()) + checksum::sum(s));
        self.set_checksum(csum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 49152 -> 443 SYN, seq 0x01020304, window 64240, MSS 1460, data "xy", checksummed
    /// for 192.0.2.1 -> 198.51.100.7.
    const SYN: [u8; 26] = [
        0xc0, 0x00, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, // ports, seq, ack
        0x60, 0x02, 0xfa, 0xf0, 0x72, 0xbc, 0x00, 0x00, // offset 6, SYN, window, csum, urg
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x78, 0x79,
    ];
    const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn fields() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.seq(), p.ack()), (49152, 443, 0x0102_0304, 0));
        assert_eq!((p.data_offset(), p.header_len()), (6, 24));
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.flags().is_syn_only() && !p.flags().is_closing());
        assert_eq!((p.window(), p.checksum(), p.urgent()), (64240, 0x72bc, 0));
        assert_eq!(p.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(p.payload(), b"xy");
        assert!(p.verify_checksum_v4(SRC4, DST4));
        assert!(!p.verify_checksum_v4(DST4, DST4));
    }

    #[test]
    fn flags() {
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        assert!(sa.contains(TcpFlags::SYN) && !sa.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(sa.intersects(TcpFlags::ACK | TcpFlags::RST) && !sa.is_syn_only());
        assert!((TcpFlags::RST | TcpFlags::ACK).is_closing());
        assert_eq!(sa & TcpFlags::ACK, TcpFlags::ACK);
        let mut f = TcpFlags::empty();
        assert!(f.is_empty());
        f |= TcpFlags::CWR;
        assert_eq!(f.bits(), 0x80);
        assert_eq!(format!("{:?}", sa | TcpFlags::ECE), "SYN|ACK|ECE");
        assert_eq!(format!("{:?}", TcpFlags::empty()), "-");
    }

    #[test]
    fn malformed_headers_are_errors() {
        for n in 0..HEADER_LEN {
            assert_eq!(TcpPacket::new_checked(&SYN[..n]).unwrap_err(), TcpError::Truncated);
        }
        // Options announced past the end of the buffer.
        assert_eq!(TcpPacket::new_checked(&SYN[..23]).unwrap_err(), TcpError::Truncated);
        let mut s = SYN;
        for off in 0..5u8 {
            s[12] = off << 4;
            assert_eq!(TcpPacket::new_checked(&s[..]).unwrap_err(), TcpError::BadDataOffset);
        }
        s[12] = 0xf0; // 60-byte header in 26 bytes
        assert_eq!(TcpPacket::new_checked(&s[..]).unwrap_err(), TcpError::Truncated);
        s[12] = 0x50;
        let p = TcpPacket::new_checked(&s[..]).unwrap();
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 6);
    }

    #[test]
    fn setters_then_fill() {
        let (src6, dst6) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let mut s = SYN;
        let mut p = TcpPacket::new_checked(&mut s[..]).unwrap();
        let old = p.checksum();
        p.set_src_port(1024);
        p.set_dst_port(80);
        // NAT-style incremental update gives what a fill gives.
        let inc = checksum::update32(old, (49152 << 16) | 443, (1024 << 16) | 80);
        p.fill_checksum_v4(SRC4, DST4);
        assert_eq!(p.checksum(), inc);
        assert!(p.verify_checksum_v4(SRC4, DST4));
        p.fill_checksum_v6(src6, dst6);
        assert!(p.verify_checksum_v6(src6, dst6) && !p.verify_checksum_v6(src6, src6));
        assert_eq!((p.src_port(), p.dst_port()), (1024, 80));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..80), off in 0u8..16) {
            for fix in [false, true] {
                if fix && buf.len() >= HEADER_LEN {
                    buf[12] = off << 4;
                }
                let Ok(p) = TcpPacket::new_checked(&buf[..]) else { continue };
                let _ = (p.src_port(), p.dst_port(), p.seq(), p.ack(), p.data_offset(), p.flags());
                let _ = (p.window(), p.checksum(), p.urgent(), p.options().len(), p.payload().len());
                let _ = format!("{:?}", p.flags());
                let mut p = TcpPacket::new_unchecked(&mut buf[..]);
                p.fill_checksum_v4(SRC4, DST4);
                prop_assert!(p.verify_checksum_v4(SRC4, DST4));
            }
        }
    }
}
