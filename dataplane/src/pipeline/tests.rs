use super::*;
use crate::l2::{build_l2, BridgeSpec, VlanMode};
use crate::packet::HeapBuf;
use crate::tables::PortEntry;
use crate::wire::ethernet::emit_header;
use crate::wire::{EtherType, EthernetFrame, MacAddr, VlanTag};

/// Collects what the pipeline sends and drops; `copies_left` simulates the mempool.
#[derive(Default)]
struct Collect {
    sent: Vec<(PortIdx, HeapBuf)>,
    dropped: Vec<DropReason>,
    copies_left: usize,
}

impl Egress<HeapBuf> for Collect {
    fn copy(&mut self, pkt: &HeapBuf) -> Option<HeapBuf> {
        self.copies_left = self.copies_left.checked_sub(1)?;
        Some(pkt.clone())
    }
    fn send(&mut self, port: PortIdx, pkt: HeapBuf) {
        self.sent.push((port, pkt));
    }
    fn discard(&mut self, _pkt: HeapBuf, reason: DropReason) {
        self.dropped.push(reason);
    }
    fn count_drop(&mut self, reason: DropReason) {
        self.dropped.push(reason);
    }
}

fn tables(bridge_ports: Vec<(PortIdx, VlanMode)>, n_ports: usize) -> Tables {
    let spec = BridgeSpec { name: "br0".into(), mac_table_size: 1024, mac_aging_ms: 300_000, ports: bridge_ports, static_macs: vec![] };
    Tables {
        epoch: 1,
        ports: (0..n_ports).map(|i| PortEntry { name: format!("p{i}"), max_frame_len: 1514 }).collect(),
        l2: build_l2(n_ports, &[spec]).unwrap(),
        l3: Default::default(),
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn frame(dst: MacAddr, src: MacAddr, vid: Option<u16>) -> HeapBuf {
    let mut f = vec![0x5au8; 64];
    emit_header(&mut f, dst, src, vid.map(VlanTag::with_vid), EtherType::IPV4);
    HeapBuf::new(&f)
}

fn vid_of(b: &HeapBuf) -> Option<u16> {
    EthernetFrame::new_checked(b.data()).unwrap().vlan().map(|t| t.vid())
}

#[test]
fn flood_reaches_every_other_member_with_its_own_tagging() {
    let t = tables(
        vec![
            (0, VlanMode::Access(10)),
            (1, VlanMode::Access(10)),
            (2, VlanMode::Trunk { allowed: vec![10], native: None }),
            (3, VlanMode::Access(20)),
        ],
        4,
    );
    let mut p = Pipeline::new(&t);
    let mut out = Collect { copies_left: 8, ..Default::default() };
    p.process(&t, 0, [frame(MacAddr::BROADCAST, mac(1), None)], 0, &mut out, &mut |_| {});
    let got: Vec<_> = out.sent.iter().map(|(port, b)| (*port, vid_of(b))).collect();
    assert_eq!(got, vec![(1, None), (2, Some(10))], "no hairpin, no leak into VLAN 20");
    assert!(out.dropped.is_empty());
    // The payload is intact on the tagged copy.
    assert_eq!(&out.sent[1].1.data()[18..], &frame(MacAddr::BROADCAST, mac(1), None).data()[14..]);
}

#[test]
fn copy_failure_is_counted_and_the_original_still_goes_out() {
    let t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0)), (2, VlanMode::Access(0))], 3);
    let mut p = Pipeline::new(&t);
    let mut out = Collect::default();
    p.process(&t, 0, [frame(MacAddr::BROADCAST, mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].0, 2);
    assert_eq!(out.dropped, vec![DropReason::CopyFailed]);
}

#[test]
fn lone_port_floods_to_nobody() {
    let t = tables(vec![(0, VlanMode::Access(5)), (1, VlanMode::Access(6))], 2);
    let mut p = Pipeline::new(&t);
    let mut out = Collect::default();
    p.process(&t, 0, [frame(MacAddr::BROADCAST, mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(out.dropped, vec![DropReason::NoOutput]);
}

#[test]
fn learning_turns_floods_into_unicast() {
    let t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0)), (2, VlanMode::Access(0))], 3);
    let mut p = Pipeline::new(&t);
    let mut learned = vec![];
    let mut out = Collect { copies_left: 100, ..Default::default() };
    p.process(&t, 1, [frame(mac(1), mac(2), None)], 0, &mut out, &mut |e| learned.push(e));
    assert_eq!(out.sent.len(), 2, "unknown unicast floods");
    out.sent.clear();
    p.process(&t, 0, [frame(mac(2), mac(1), None), frame(mac(2), mac(1), None)], 1, &mut out, &mut |e| learned.push(e));
    assert_eq!(out.sent.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![1, 1]);
    assert_eq!(learned.len(), 2);
    assert_eq!(p.fdb().len(), 2);
}

#[test]
fn new_epoch_reseeds_learning() {
    let mut t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0))], 2);
    let mut p = Pipeline::new(&t);
    let mut out = Collect::default();
    p.process(&t, 0, [frame(mac(9), mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(p.fdb().len(), 1);
    p.sync(&t);
    assert_eq!(p.fdb().len(), 1, "same epoch: kept");
    t.epoch = 2;
    p.sync(&t);
    assert_eq!(p.fdb().len(), 0, "new epoch: relearn");
}

#[test]
fn remote_learn_events_apply() {
    let t = tables(vec![(0, VlanMode::Access(0)), (1, VlanMode::Access(0))], 2);
    let mut a = Pipeline::new(&t);
    let mut b = Pipeline::new(&t);
    let mut events = vec![];
    let mut out = Collect::default();
    a.process(&t, 1, [frame(MacAddr::BROADCAST, mac(7), None)], 0, &mut out, &mut |e| events.push(e));
    for e in events {
        b.apply_learn(&t, e, 0);
    }
    out.sent.clear();
    b.process(&t, 0, [frame(mac(7), mac(1), None)], 0, &mut out, &mut |_| {});
    assert_eq!(out.sent[0].0, 1, "worker b forwards to what worker a learned");
}
