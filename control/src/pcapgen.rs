//! Test and benchmark traffic: IPv4/UDP frames over a number of flows, written as pcap.
//!
//! Used by the embedded demo, the benchmark scripts (`sluice gen-pcap`) and the
//! integration tests. Frames are fully valid (IPv4 header checksum, UDP checksum), so
//! independent decoders (tshark, scapy) accept them.

use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use sluice_dataplane::wire::ethernet::emit_header;
use sluice_dataplane::wire::{EtherType, MacAddr, VlanTag};

/// What to generate.
#[derive(Debug, Clone)]
pub struct TrafficSpec {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    pub vlan: Option<u16>,
    /// Distinct 5-tuples; flow i uses source 10.0.(i>>8).(i&255) and port 1024 + i%50000.
    pub flows: u32,
    /// Frame length without FCS (60 makes a 64-byte frame on the wire).
    pub frame_len: usize,
    /// Frames in the file; flows repeat round-robin.
    pub count: u32,
    pub dst_ip: Ipv4Addr,
    /// Spread destinations over this many /24s (`dst_ip`'s /24 and the ones after it);
    /// 0 or 1 keeps `dst_ip` for every frame.
    pub dst_prefixes: u32,
    /// TCP SYNs (connection openings) instead of UDP datagrams.
    pub tcp_syn: bool,
    /// After the first `flows` frames (flows 0, 1, 2, ... in order), the flows in a fixed
    /// pseudo-random order rather than round-robin: a replay then visits connections in
    /// an order unrelated to the one that created them, as real traffic does.
    pub shuffle: bool,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            dst_mac: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
            src_mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
            vlan: None,
            flows: 1024,
            frame_len: 60,
            count: 1024,
            dst_ip: Ipv4Addr::new(10, 1, 0, 1),
            dst_prefixes: 0,
            tcp_syn: false,
            shuffle: false,
        }
    }
}

/// Internet checksum (RFC 1071) over `data` with an initial partial sum.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        sum += (*b as u32) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Source and destination of flow `flow`: 10.0.(flow>>8).(flow&255) to `dst_ip`, or to the
/// flow's /24 among `dst_prefixes`.
fn flow_addrs(spec: &TrafficSpec, flow: u32) -> (Ipv4Addr, Ipv4Addr) {
    let src = Ipv4Addr::new(10, 0, (flow >> 8) as u8, flow as u8);
    let dst = match spec.dst_prefixes {
        0 | 1 => spec.dst_ip,
        n => Ipv4Addr::from(u32::from(spec.dst_ip).wrapping_add((flow % n) << 8)),
    };
    (src, dst)
}

/// A 20-byte IPv4 header (DF, TTL 64, IP id from frame number `i`) with its checksum.
fn emit_ipv4(ip: &mut [u8], i: u32, proto: u8, total_len: u16, src: Ipv4Addr, dst: Ipv4Addr) {
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total_len.to_be_bytes());
    ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum(0, ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The TCP/UDP pseudo-header sum: source, destination, protocol, L4 length.
fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: u16) -> u32 {
    let mut sum = u32::from(proto) + u32::from(l4_len);
    for w in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    sum
}

/// Frame number `i` of `spec`, round-robin over the flows (`shuffle` is applied by
/// [`generate`]).
pub fn udp_frame(spec: &TrafficSpec, i: u32) -> Vec<u8> {
    frame(spec, i, i % spec.flows.max(1))
}

/// Frame number `i` of `spec`, of flow `flow`.
fn frame(spec: &TrafficSpec, i: u32, flow: u32) -> Vec<u8> {
    if spec.tcp_syn {
        return syn_frame(spec, i, flow);
    }
    let l2 = if spec.vlan.is_some() { 18 } else { 14 };
    let len = spec.frame_len.max(l2 + 28);
    let mut f = vec![0u8; len];
    emit_header(&mut f, spec.dst_mac, spec.src_mac, spec.vlan.map(VlanTag::with_vid), EtherType::IPV4);
    let ip_len = (len - l2) as u16;
    let (src, dst) = flow_addrs(spec, flow);
    let sport = 1024 + (flow % 50000) as u16;
    let dport = 5001u16;
    emit_ipv4(&mut f[l2..l2 + 20], i, 17, ip_len, src, dst);
    let udp_len = ip_len - 20;
    let payload_start = l2 + 28;
    for (k, b) in f[payload_start..].iter_mut().enumerate() {
        *b = (k as u8).wrapping_add(i as u8);
    }
    let udp = l2 + 20;
    f[udp..udp + 2].copy_from_slice(&sport.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&dport.to_be_bytes());
    f[udp + 4..udp + 6].copy_from_slice(&udp_len.to_be_bytes());
    let c = match checksum(pseudo_sum(src, dst, 17, udp_len), &f[udp..]) {
        0 => 0xffff,
        c => c,
    };
    f[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
    f
}

/// Frame `i` of `spec` as a TCP SYN (no options) of `flow`, padded to `frame_len` with
/// Ethernet padding (the IP length covers the 40 header bytes only).
fn syn_frame(spec: &TrafficSpec, i: u32, flow: u32) -> Vec<u8> {
    let l2 = if spec.vlan.is_some() { 18 } else { 14 };
    let mut f = vec![0u8; spec.frame_len.max(l2 + 40)];
    emit_header(&mut f, spec.dst_mac, spec.src_mac, spec.vlan.map(VlanTag::with_vid), EtherType::IPV4);
    let (src, dst) = flow_addrs(spec, flow);
    emit_ipv4(&mut f[l2..l2 + 20], i, 6, 40, src, dst);
    let t = l2 + 20;
    f[t..t + 2].copy_from_slice(&(1024 + (flow % 50000) as u16).to_be_bytes());
    f[t + 2..t + 4].copy_from_slice(&5001u16.to_be_bytes());
    f[t + 4..t + 8].copy_from_slice(&flow.wrapping_mul(2654435761).to_be_bytes());
    f[t + 12] = 5 << 4;
    f[t + 13] = 0x02;
    f[t + 14..t + 16].copy_from_slice(&64240u16.to_be_bytes());
    let c = checksum(pseudo_sum(src, dst, 6, 20), &f[t..t + 20]);
    f[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
    f
}

/// Writes `frames` to a pcap file (Ethernet link type, microsecond timestamps).
pub fn write_pcap<'a>(path: &Path, frames: impl IntoIterator<Item = &'a [u8]>) -> std::io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let header = PcapHeader { datalink: DataLink::ETHERNET, ..Default::default() };
    let mut w = PcapWriter::with_header(file, header).map_err(std::io::Error::other)?;
    for (i, f) in frames.into_iter().enumerate() {
        let ts = std::time::Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f)).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Generates `spec` into a pcap file.
pub fn generate(path: &Path, spec: &TrafficSpec) -> std::io::Result<()> {
    let order = flow_order(spec);
    let frames: Vec<Vec<u8>> = (0..spec.count).map(|i| frame(spec, i, order(i))).collect();
    write_pcap(path, frames.iter().map(|f| f.as_slice()))
}

/// The flow of each frame number: round-robin, or with `shuffle` the first round in order
/// and every later one through one fixed permutation (Fisher-Yates, xorshift, fixed seed).
fn flow_order(spec: &TrafficSpec) -> impl Fn(u32) -> u32 {
    let n = spec.flows.max(1);
    let perm: Vec<u32> = if spec.shuffle {
        let mut p: Vec<u32> = (0..n).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for i in (1..p.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.swap(i, (x % (i as u64 + 1)) as usize);
        }
        p
    } else {
        Vec::new()
    };
    move |i| if i < n || perm.is_empty() { i % n } else { perm[(i % n) as usize] }
}

/// Reads every frame of a pcap file.
pub fn read_pcap(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let file = File::open(path)?;
    let mut r = pcap_file::pcap::PcapReader::new(file).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.map_err(std::io::Error::other)?.data.into_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_rounds_visit_every_flow_once_in_another_order() {
        let spec = TrafficSpec { flows: 100, count: 300, shuffle: true, ..Default::default() };
        let order = flow_order(&spec);
        let first: Vec<u32> = (0..100).map(&order).collect();
        assert_eq!(first, (0..100).collect::<Vec<_>>(), "the first round creates the flows in order");
        let mut later: Vec<u32> = (100..200).map(&order).collect();
        assert_ne!(later, first, "later rounds are shuffled");
        assert_eq!((200..300).map(&order).collect::<Vec<_>>(), later, "the same order every round");
        later.sort_unstable();
        assert_eq!(later, first, "each flow once per round");
        let plain = flow_order(&TrafficSpec { shuffle: false, ..spec });
        assert_eq!((0..300).map(plain).collect::<Vec<_>>(), (0..300).map(|i| i % 100).collect::<Vec<_>>());
    }

    #[test]
    fn frames_have_valid_checksums_and_distinct_flows() {
        let spec = TrafficSpec { flows: 300, count: 600, ..Default::default() };
        let a = udp_frame(&spec, 1);
        assert_eq!(a.len(), 60);
        // A correct IPv4 header sums to zero (checksum over it is 0).
        assert_eq!(checksum(0, &a[14..34]), 0);
        let b = udp_frame(&spec, 301);
        assert_eq!(a[26..30], b[26..30], "flow repeats after `flows` frames");
        assert_ne!(udp_frame(&spec, 2)[26..30], a[26..30]);
        // UDP checksum verifies over pseudo-header + datagram.
        let mut pseudo = 0u32;
        for w in a[26..34].chunks(2) {
            pseudo += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
        pseudo += 17 + 26;
        assert_eq!(checksum(pseudo, &a[34..]), 0);
    }

    #[test]
    fn destinations_spread_over_prefixes() {
        let spec = TrafficSpec { flows: 8, dst_prefixes: 4, dst_ip: Ipv4Addr::new(16, 0, 0, 1), ..Default::default() };
        let dsts: Vec<[u8; 4]> = (0..8).map(|i| udp_frame(&spec, i)[30..34].try_into().unwrap()).collect();
        assert_eq!(dsts[0], [16, 0, 0, 1]);
        assert_eq!(dsts[3], [16, 0, 3, 1]);
        assert_eq!(dsts[4], [16, 0, 0, 1]);
        let f = udp_frame(&spec, 3);
        assert_eq!(checksum(0, &f[14..34]), 0, "IPv4 header checksum still valid");
    }

    #[test]
    fn pcap_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.pcap");
        let spec = TrafficSpec { count: 5, vlan: Some(7), frame_len: 100, ..Default::default() };
        generate(&p, &spec).unwrap();
        let frames = read_pcap(&p).unwrap();
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[3], udp_frame(&spec, 3));
        assert_eq!(&frames[0][12..16], &[0x81, 0, 0, 7]);
    }

    #[test]
    fn syn_frames_are_valid_tcp_openings() {
        let spec = TrafficSpec { flows: 10, tcp_syn: true, ..Default::default() };
        let f = udp_frame(&spec, 3);
        assert_eq!(f.len(), 60);
        assert_eq!((f[23], f[14 + 20 + 13]), (6, 0x02), "TCP, SYN only");
        assert_eq!(checksum(0, &f[14..34]), 0);
        let mut pseudo = 0u32;
        for w in f[26..34].chunks(2) {
            pseudo += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
        assert_eq!(checksum(pseudo + 6 + 20, &f[34..54]), 0, "TCP checksum over the 20-byte header");
        assert_ne!(udp_frame(&spec, 4)[26..30], f[26..30]);
    }
}
