//! Ethernet II frames with an optional IEEE 802.1Q tag.
//!
//! ```text
//!  0        6        12          14       16          18
//!  +--------+--------+-----------+---------------------+---------
//!  |  dst   |  src   | ethertype |  payload ...                     untagged
//!  +--------+--------+-----------+--------+------------+---------
//!  |  dst   |  src   |  0x8100   |  TCI   | ethertype  | payload    802.1Q
//!  +--------+--------+-----------+--------+------------+---------
//!  TCI = PCP (3 bits) | DEI (1 bit) | VID (12 bits)
//! ```
//! An 802.1ad (0x88a8) outer tag is not interpreted: such a frame is untagged with
//! ethertype 0x88a8 as far as this view is concerned.

use core::fmt;
use core::str::FromStr;

/// Byte ranges of the fixed header.
mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const TYPE: Range<usize> = 12..14;
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_TYPE: Range<usize> = 16..18;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;
/// Shortest legal Ethernet frame without FCS; software ports may deliver shorter ones.
pub const MIN_FRAME_LEN: usize = 60;

/// Why bytes are not a frame this view can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the fixed header.
    Truncated,
    /// An 802.1Q tag announced but the frame ends inside it.
    TruncatedVlan,
}

/// EtherType values sluice looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const QINQ: EtherType = EtherType(0x88a8);
    pub const IPV6: EtherType = EtherType(0x86dd);
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads a MAC from the first six bytes of `b` (callers pass a checked slice).
    #[inline]
    fn from_slice(b: &[u8]) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&b[..6]);
        MacAddr(m)
    }
    /// Group bit set: multicast or broadcast.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    #[inline]
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
    /// Valid as a source: unicast and not all-zero.
    #[inline]
    pub fn is_valid_source(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }
    /// The address as the low 48 bits of a u64 (network order: first byte highest).
    #[inline]
    pub const fn to_u64(&self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
    /// Inverse of [`MacAddr::to_u64`]; bits above 48 are ignored.
    #[inline]
    pub const fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing a textual MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a MAC address like 02:00:00:00:00:01")
    }
}

impl std::error::Error for ParseMacError {}

impl FromStr for MacAddr {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let p = parts.next().ok_or(ParseMacError)?;
            if p.len() != 2 {
                return Err(ParseMacError);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(MacAddr(out))
    }
}

/// An 802.1Q tag control field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanTag {
    /// The raw TCI: PCP (3) | DEI (1) | VID (12).
    pub tci: u16,
}

impl VlanTag {
    /// A tag with this VID and priority 0.
    #[inline]
    pub const fn with_vid(vid: u16) -> VlanTag {
        VlanTag { tci: vid & 0x0fff }
    }
    /// VLAN id (0 means priority-tagged only).
    #[inline]
    pub const fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }
    /// Priority code point.
    #[inline]
    pub const fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }
}

/// A read (and, over `AsMut`, write) view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length: accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks every length the accessors rely on: the header, and the tag if announced.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.outer_type() == EtherType::VLAN && b.len() < HEADER_LEN + VLAN_TAG_LEN {
            return Err(WireError::TruncatedVlan);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst(&self) -> MacAddr {
        MacAddr::from_slice(&self.buffer.as_ref()[field::DST])
    }
    #[inline]
    pub fn src(&self) -> MacAddr {
        MacAddr::from_slice(&self.buffer.as_ref()[field::SRC])
    }
    /// The EtherType right after the MACs (0x8100 for a tagged frame).
    #[inline]
    pub fn outer_type(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::TYPE];
        EtherType(u16::from_be_bytes([b[0], b[1]]))
    }
    /// The 802.1Q tag, if the frame carries one.
    #[inline]
    pub fn vlan(&self) -> Option<VlanTag> {
        if self.outer_type() != EtherType::VLAN {
            return None;
        }
        let b = &self.buffer.as_ref()[field::TCI];
        Some(VlanTag { tci: u16::from_be_bytes([b[0], b[1]]) })
    }
    /// The EtherType of the payload (after the tag, if any).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        if self.outer_type() == EtherType::VLAN {
            let b = &self.buffer.as_ref()[field::INNER_TYPE];
            EtherType(u16::from_be_bytes([b[0], b[1]]))
        } else {
            self.outer_type()
        }
    }
    /// Header length including the tag: 14 or 18.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.outer_type() == EtherType::VLAN {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }
    /// The bytes after the (tagged) header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }
    /// Rewrites the VID of an existing tag, keeping PCP/DEI. No-op on an untagged frame.
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        if let Some(tag) = self.vlan() {
            let tci = (tag.tci & 0xf000) | (vid & 0x0fff);
            self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
        }
    }
}

/// Builds an Ethernet header (untagged or 802.1Q) into `out`, returning its length.
/// Panics if `out` is shorter than 18 bytes: for building test and reply frames.
pub fn emit_header(out: &mut [u8], dst: MacAddr, src: MacAddr, vlan: Option<VlanTag>, ty: EtherType) -> usize {
    out[field::DST].copy_from_slice(&dst.0);
    out[field::SRC].copy_from_slice(&src.0);
    match vlan {
        Some(tag) => {
            out[field::TYPE].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
            out[field::TCI].copy_from_slice(&tag.tci.to_be_bytes());
            out[field::INNER_TYPE].copy_from_slice(&ty.0.to_be_bytes());
            HEADER_LEN + VLAN_TAG_LEN
        }
        None => {
            out[field::TYPE].copy_from_slice(&ty.0.to_be_bytes());
            HEADER_LEN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 18] = [
        0x02, 0, 0, 0, 0, 0x02, // dst
        0x02, 0, 0, 0, 0, 0x01, // src
        0x08, 0x00, // IPv4
        0x45, 0, 0, 0,
    ];
    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0, 0, 0, 0, 0x01, // src
        0x81, 0x00, 0xa0, 0x0a, // 802.1Q, PCP 5, VID 10
        0x08, 0x06, // ARP
        0, 1,
    ];

    #[test]
    fn untagged_fields() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), "02:00:00:00:00:02".parse().unwrap());
        assert_eq!(f.src().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.vlan(), None);
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0x45, 0, 0, 0]);
    }

    #[test]
    fn tagged_fields() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.dst().is_broadcast() && f.dst().is_multicast());
        let tag = f.vlan().unwrap();
        assert_eq!((tag.vid(), tag.pcp()), (10, 5));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0, 1]);
    }

    #[test]
    fn truncated_and_runt_frames_are_rejected() {
        for n in 0..HEADER_LEN {
            assert_eq!(EthernetFrame::new_checked(&UNTAGGED[..n]).unwrap_err(), WireError::Truncated);
        }
        for n in HEADER_LEN..HEADER_LEN + VLAN_TAG_LEN {
            assert_eq!(EthernetFrame::new_checked(&TAGGED[..n]).unwrap_err(), WireError::TruncatedVlan);
        }
        // Exactly a header: valid, empty payload.
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14]).unwrap().payload().is_empty());
        assert!(EthernetFrame::new_checked(&TAGGED[..18]).unwrap().payload().is_empty());
    }

    #[test]
    fn setters_and_emit_round_trip() {
        let mut buf = [0u8; 18];
        let dst = MacAddr([2, 0, 0, 0, 0, 9]);
        let src = MacAddr([2, 0, 0, 0, 0, 8]);
        let n = emit_header(&mut buf, dst, src, Some(VlanTag::with_vid(100)), EtherType::IPV6);
        assert_eq!(n, 18);
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        assert_eq!((f.dst(), f.src(), f.vlan().unwrap().vid(), f.ethertype()), (dst, src, 100, EtherType::IPV6));
        f.set_vid(4095);
        f.set_src(dst);
        f.set_dst(src);
        assert_eq!((f.dst(), f.src(), f.vlan().unwrap().vid()), (src, dst, 4095));
    }

    #[test]
    fn mac_parse_and_classify() {
        assert!("02:00:00:00:00:0g".parse::<MacAddr>().is_err());
        assert!("02:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("02:00:00:00:00:01:03".parse::<MacAddr>().is_err());
        assert!("2:00:00:00:00:01".parse::<MacAddr>().is_err());
        let m: MacAddr = "01-00-5e-00-00-01".parse().unwrap();
        assert!(m.is_multicast() && !m.is_valid_source());
        assert!(!MacAddr::ZERO.is_valid_source());
        let u: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        assert!(u.is_valid_source());
        assert_eq!(MacAddr::from_u64(u.to_u64()), u);
        assert_eq!(u.to_u64(), 0x0200_0000_0001);
    }
}
