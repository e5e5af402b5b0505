//! The L2 switching stage: per-packet classification, learning and the forwarding
//! decision, and the egress VLAN rewrite.
//!
//! Uses: the frame bytes, the ingress port, the published [`L2Tables`], the worker's
//! [`Fdb`]. Sets: an [`L2Decision`]. Next: unicast to one port, flood to the domain's
//! other members, or drop with a reason (see `pipeline`).

use super::{DomainId, Fdb, FdbEvent, L2Tables, LearnEvent};
use crate::packet::PacketBuf;
use crate::tables::PortIdx;
use crate::wire::ethernet::{EthernetFrame, HEADER_LEN, VLAN_TAG_LEN};
use crate::wire::{EtherType, WireError};
use crate::DropReason;

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L2Out {
    Unicast(PortIdx),
    Flood,
    Drop(DropReason),
}

/// The L2 stage's verdict on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Decision {
    pub out: L2Out,
    pub domain: DomainId,
    /// Whether the frame arrived with an 802.1Q tag (the egress rewrite needs it).
    pub ingress_tagged: bool,
}

impl L2Decision {
    #[inline]
    const fn drop(reason: DropReason) -> Self {
        L2Decision { out: L2Out::Drop(reason), domain: super::NO_DOMAIN, ingress_tagged: false }
    }
}

/// Learning-table events of one worker, summed by the caller into its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L2Counters {
    pub learned: u64,
    pub moved: u64,
    pub fdb_full: u64,
    pub static_conflict: u64,
    pub flooded: u64,
}

/// The port a burst came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingress {
    pub port: PortIdx,
    /// The port's largest untagged frame (MTU + 14).
    pub max_frame_len: u32,
}

impl Ingress {
    /// Whether a frame of `len` bytes fits the port: its limit, plus the tag's 4 bytes
    /// when the frame is tagged.
    #[inline(always)]
    pub fn fits(&self, len: usize, tagged: bool) -> bool {
        len <= self.max_frame_len as usize + if tagged { VLAN_TAG_LEN } else { 0 }
    }
}

/// Classifies one frame from `ingress`: validates it, learns its source, decides its
/// destination. `on_learn` is told of new and moved MACs (to share them with other
/// workers).
#[inline]
pub fn classify(
    l2: &L2Tables,
    fdb: &mut Fdb,
    ingress: Ingress,
    frame: &[u8],
    now_ms: u64,
    counters: &mut L2Counters,
    on_learn: &mut impl FnMut(LearnEvent),
) -> L2Decision {
    let eth = match EthernetFrame::new_checked(frame) {
        Ok(e) => e,
        Err(WireError::Truncated) => return L2Decision::drop(DropReason::Runt),
        Err(WireError::TruncatedVlan) => return L2Decision::drop(DropReason::TruncatedVlan),
    };
    let in_port = ingress.port;
    let tag = eth.vlan();
    if !ingress.fits(frame.len(), tag.is_some()) {
        return L2Decision::drop(DropReason::Oversize);
    }
    let domain = match l2.ingress_domain(in_port, tag.map(|t| t.vid())) {
        Ok(d) => d,
        Err(r) => return L2Decision::drop(r),
    };
    let src = eth.src();
    if !src.is_valid_source() {
        return L2Decision::drop(DropReason::InvalidSrcMac);
    }
    let Some(dom) = l2.domains.get(domain as usize) else {
        return L2Decision::drop(DropReason::NotBridged);
    };
    match fdb.learn(dom.bridge, domain, src, in_port, now_ms) {
        FdbEvent::Refreshed => {}
        FdbEvent::Learned => {
            counters.learned += 1;
            on_learn(LearnEvent { domain, mac: src, port: in_port });
        }
        FdbEvent::Moved => {
            counters.moved += 1;
            on_learn(LearnEvent { domain, mac: src, port: in_port });
        }
        FdbEvent::Full => counters.fdb_full += 1,
        FdbEvent::StaticConflict => counters.static_conflict += 1,
    }
    let dst = eth.dst();
    let out = if dst.is_multicast() {
        L2Out::Flood
    } else {
        match fdb.lookup(domain, dst, now_ms) {
            Some(p) if p == in_port => L2Out::Drop(DropReason::Hairpin),
            Some(p) => L2Out::Unicast(p),
            None => L2Out::Flood,
        }
    };
    if out == L2Out::Flood {
        counters.flooded += 1;
    }
    L2Decision { out, domain, ingress_tagged: tag.is_some() }
}

/// Rewrites the frame's 802.1Q tag for an egress port: push, pop, or set the VID.
/// Untagged in, untagged out (the common case) costs one branch, inline.
#[inline(always)]
pub fn egress_vlan<B: PacketBuf>(buf: &mut B, ingress_tagged: bool, egress_tagged: bool, vid: u16) -> Result<(), DropReason> {
    if !ingress_tagged && !egress_tagged {
        return Ok(());
    }
    retag(buf, ingress_tagged, egress_tagged, vid)
}

#[inline(never)]
fn retag<B: PacketBuf>(buf: &mut B, ingress_tagged: bool, egress_tagged: bool, vid: u16) -> Result<(), DropReason> {
    match (ingress_tagged, egress_tagged) {
        (false, false) => Ok(()),
        (true, true) => {
            // Same domain, same VID, except a priority tag (VID 0) entering a VLAN.
            let mut eth = EthernetFrame::new_unchecked(buf.data_mut());
            if eth.vlan().map(|t| t.vid()) != Some(vid) {
                eth.set_vid(vid);
            }
            Ok(())
        }
        (true, false) => {
            let d = buf.data_mut();
            if d.len() < HEADER_LEN + VLAN_TAG_LEN {
                return Err(DropReason::TruncatedVlan);
            }
            d.copy_within(0..12, VLAN_TAG_LEN);
            buf.adj(VLAN_TAG_LEN);
            Ok(())
        }
        (false, true) => {
            if buf.len() < HEADER_LEN || !buf.prepend(VLAN_TAG_LEN) {
                return Err(DropReason::NoHeadroom);
            }
            let d = buf.data_mut();
            d.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
            d[12..14].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
            d[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::{BridgeInfo, Domain, Member, PortVlan, NO_DOMAIN};
    use crate::packet::HeapBuf;
    use crate::wire::ethernet::emit_header;
    use crate::wire::{MacAddr, VlanTag};

    /// Bridge with port 0 access VLAN 10, port 1 access VLAN 20, port 2 trunk (10, 20,
    /// native 20), port 3 access VLAN 10, port 4 unbridged.
    fn l2() -> L2Tables {
        let mut trunk = Box::new([NO_DOMAIN; 4096]);
        trunk[10] = 0;
        trunk[20] = 1;
        L2Tables {
            port_vlan: vec![
                PortVlan::Access { vid: 10, domain: 0 },
                PortVlan::Access { vid: 20, domain: 1 },
                PortVlan::Trunk { native: Some(20), domains: trunk },
                PortVlan::Access { vid: 10, domain: 0 },
                PortVlan::Unbridged,
            ]
            .into(),
            domains: vec![
                Domain {
                    bridge: 0,
                    vid: 10,
                    members: vec![
                        Member { port: 0, tagged: false },
                        Member { port: 2, tagged: true },
                        Member { port: 3, tagged: false },
                    ]
                    .into(),
                    gateway: None,
                },
                Domain {
                    bridge: 0,
                    vid: 20,
                    members: vec![Member { port: 1, tagged: false }, Member { port: 2, tagged: false }].into(),
                    gateway: None,
                },
            ]
            .into(),
            bridges: vec![BridgeInfo { name: "br0".into(), mac_table_size: 64, mac_aging_ms: 300_000, static_macs: Box::new([]) }]
                .into(),
        }
    }

    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }

    fn frame(dst: MacAddr, src: MacAddr, vid: Option<u16>, len: usize) -> Vec<u8> {
        let mut f = vec![0xabu8; len];
        emit_header(&mut f, dst, src, vid.map(VlanTag::with_vid), EtherType::IPV4);
        f
    }

    struct Sw {
        l2: L2Tables,
        fdb: Fdb,
        c: L2Counters,
        learned: Vec<LearnEvent>,
    }

    impl Sw {
        fn new() -> Self {
            let l2 = l2();
            let mut fdb = Fdb::with_capacity(Fdb::capacity_for(&l2));
            fdb.reseed(&l2);
            Sw { l2, fdb, c: L2Counters::default(), learned: vec![] }
        }
        fn rx(&mut self, port: PortIdx, f: &[u8], now: u64) -> L2Decision {
            let learned = &mut self.learned;
            classify(&self.l2, &mut self.fdb, Ingress { port, max_frame_len: 1514 }, f, now, &mut self.c, &mut |e| learned.push(e))
        }
    }

    #[test]
    fn unknown_unicast_floods_then_learned_reply_is_unicast() {
        let mut sw = Sw::new();
        let d = sw.rx(0, &frame(mac(2), mac(1), None, 60), 0);
        assert_eq!((d.out, d.domain, d.ingress_tagged), (L2Out::Flood, 0, false));
        assert_eq!(sw.learned, vec![LearnEvent { domain: 0, mac: mac(1), port: 0 }]);
        // mac(2) answers from port 3: unicast back to port 0, and mac(2) is learned.
        let d = sw.rx(3, &frame(mac(1), mac(2), None, 60), 1);
        assert_eq!(d.out, L2Out::Unicast(0));
        let d = sw.rx(0, &frame(mac(2), mac(1), None, 60), 2);
        assert_eq!(d.out, L2Out::Unicast(3));
        assert_eq!(sw.c, L2Counters { learned: 2, flooded: 1, ..Default::default() });
    }

    #[test]
    fn broadcast_and_multicast_flood_even_when_known() {
        let mut sw = Sw::new();
        sw.rx(3, &frame(mac(1), MacAddr::from_u64(0x0100_5e00_0001 ^ 0x0100_0000_0000), None, 60), 0);
        assert_eq!(sw.rx(0, &frame(MacAddr::BROADCAST, mac(1), None, 60), 0).out, L2Out::Flood);
        let mcast: MacAddr = "01:00:5e:00:00:01".parse().unwrap();
        assert_eq!(sw.rx(0, &frame(mcast, mac(1), None, 60), 0).out, L2Out::Flood);
    }

    #[test]
    fn no_hairpin_to_the_ingress_port() {
        let mut sw = Sw::new();
        sw.rx(0, &frame(MacAddr::BROADCAST, mac(2), None, 60), 0);
        assert_eq!(sw.rx(0, &frame(mac(2), mac(1), None, 60), 0).out, L2Out::Drop(DropReason::Hairpin));
    }

    #[test]
    fn vlans_are_separate_domains() {
        let mut sw = Sw::new();
        // mac(2) learned in VLAN 20 (port 1); a VLAN 10 frame to it still floods in VLAN 10.
        sw.rx(1, &frame(MacAddr::BROADCAST, mac(2), None, 60), 0);
        let d = sw.rx(0, &frame(mac(2), mac(1), None, 60), 0);
        assert_eq!((d.out, d.domain), (L2Out::Flood, 0));
        // On the trunk, tag 20 is domain 1 and reaches mac(2); untagged goes to native 20.
        let d = sw.rx(2, &frame(mac(2), mac(3), Some(20), 64), 0);
        assert_eq!((d.out, d.domain, d.ingress_tagged), (L2Out::Unicast(1), 1, true));
        let d = sw.rx(2, &frame(mac(2), mac(4), None, 60), 0);
        assert_eq!((d.out, d.domain), (L2Out::Unicast(1), 1));
    }

    #[test]
    fn vlan_admission_rules() {
        let mut sw = Sw::new();
        let tagged10 = frame(MacAddr::BROADCAST, mac(1), Some(10), 64);
        assert_eq!(sw.rx(0, &tagged10, 0).out, L2Out::Drop(DropReason::VlanNotAllowed), "tagged on access");
        let prio = frame(MacAddr::BROADCAST, mac(1), Some(0), 64);
        assert_eq!(sw.rx(0, &prio, 0).domain, 0, "priority tag on access is the access VLAN");
        let tagged30 = frame(MacAddr::BROADCAST, mac(1), Some(30), 64);
        assert_eq!(sw.rx(2, &tagged30, 0).out, L2Out::Drop(DropReason::VlanNotAllowed), "not in trunk list");
        assert_eq!(sw.rx(4, &tagged10, 0).out, L2Out::Drop(DropReason::NotBridged));
        assert_eq!(sw.rx(99, &tagged10, 0).out, L2Out::Drop(DropReason::NotBridged));
        let mut l2 = l2();
        if let PortVlan::Trunk { native, .. } = &mut l2.port_vlan[2] {
            *native = None;
        }
        sw.l2 = l2;
        let untagged = frame(MacAddr::BROADCAST, mac(1), None, 60);
        assert_eq!(sw.rx(2, &untagged, 0).out, L2Out::Drop(DropReason::UntaggedOnTrunk));
    }

    #[test]
    fn malformed_frames_drop_with_their_reason() {
        let mut sw = Sw::new();
        let good = frame(mac(2), mac(1), None, 60);
        for n in 0..14 {
            assert_eq!(sw.rx(0, &good[..n], 0).out, L2Out::Drop(DropReason::Runt), "len {n}");
        }
        let tagged = frame(mac(2), mac(1), Some(10), 60);
        assert_eq!(sw.rx(2, &tagged[..16], 0).out, L2Out::Drop(DropReason::TruncatedVlan));
        // 1514 untagged is fine, 1515 is not; a tag buys 4 more bytes.
        assert_eq!(sw.rx(0, &frame(mac(2), mac(1), None, 1514), 0).out, L2Out::Flood);
        assert_eq!(sw.rx(0, &frame(mac(2), mac(1), None, 1515), 0).out, L2Out::Drop(DropReason::Oversize));
        assert_eq!(sw.rx(2, &frame(mac(2), mac(1), Some(10), 1518), 0).out, L2Out::Flood);
        assert_eq!(sw.rx(2, &frame(mac(2), mac(1), Some(10), 1519), 0).out, L2Out::Drop(DropReason::Oversize));
        let bad_src = frame(mac(2), MacAddr::BROADCAST, None, 60);
        assert_eq!(sw.rx(0, &bad_src, 0).out, L2Out::Drop(DropReason::InvalidSrcMac));
        assert_eq!(sw.rx(0, &frame(mac(2), MacAddr::ZERO, None, 60), 0).out, L2Out::Drop(DropReason::InvalidSrcMac));
        assert_eq!(sw.c.learned, 1, "only valid frames learn");
    }

    #[test]
    fn learned_entries_age_out_and_flood_again() {
        let mut sw = Sw::new();
        sw.rx(3, &frame(MacAddr::BROADCAST, mac(2), None, 60), 0);
        assert_eq!(sw.rx(0, &frame(mac(2), mac(1), None, 60), 300_000).out, L2Out::Unicast(3));
        assert_eq!(sw.rx(0, &frame(mac(2), mac(1), None, 60), 300_001).out, L2Out::Flood);
    }

    #[test]
    fn egress_vlan_push_pop_rewrite() {
        let untagged = frame(mac(2), mac(1), None, 60);
        let tagged = frame(mac(2), mac(1), Some(10), 64);

        let mut b = HeapBuf::new(&untagged);
        egress_vlan(&mut b, false, true, 10).unwrap();
        assert_eq!(b.data(), &tagged[..], "push gives exactly the tagged frame");

        let mut b = HeapBuf::new(&tagged);
        egress_vlan(&mut b, true, false, 10).unwrap();
        assert_eq!(b.data(), &untagged[..], "pop gives exactly the untagged frame");

        let mut b = HeapBuf::new(&frame(mac(2), mac(1), Some(0), 64));
        egress_vlan(&mut b, true, true, 10).unwrap();
        assert_eq!(b.data(), &tagged[..], "priority tag rewritten to the domain VID");

        let mut b = HeapBuf::new(&untagged);
        egress_vlan(&mut b, false, false, 10).unwrap();
        assert_eq!(b.data(), &untagged[..]);

        let mut b = HeapBuf::with_headroom(&untagged, 3);
        assert_eq!(egress_vlan(&mut b, false, true, 10), Err(DropReason::NoHeadroom));
        assert_eq!(b.data(), &untagged[..], "unchanged on failure");
    }
}
