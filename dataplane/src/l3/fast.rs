//! The established-connection fast path of the stateful routing path (what OVS calls its
//! exact-match cache and VPP its session fast path).
//!
//! Uses: the frame, the ingress port's [`PortRole`], the worker's flow table.
//! Sets: on a hit, exactly what the full path ([`super::forward::process`]) sets for that
//! packet — the entry's counters, last-seen time and conntrack state, the frame's TTL,
//! checksum and MACs, `counters.routed`.
//! Next: `Some(L3Out)`, or `None`: the packet is not the common case (or not a hit), and
//! the full path takes it, with nothing changed yet.
//!
//! Why: most packets belong to a connection whose direction is already decided under the
//! current snapshot. For them the full path's generality (ARP, DHCP, ICMP errors,
//! fragments, traces, the sender and VRF resolution spread over several handlers) is a
//! long chain of branches and spills. Here one parse of the frame, done with the burst's
//! prefetch pass, checks everything the full path would check before its flow lookup and
//! bails out on anything unusual; then one lookup, the same accounting, the same rewrite.
//! What only a hit needs (the header checksum, TCP's fields) is read after the lookup
//! found a decided direction, so a new connection's first packet, which the full path
//! parses again, pays for little more than the key and its hash here.
//!
//! Which packets: untagged or 802.1Q frames to the port's own MAC (the network's gateway
//! MAC on an endpoint port, the uplink's on an uplink), IPv4 without options and with a
//! valid header checksum, not fragmented, TCP/UDP/SCTP, unicast destination, TTL above 1,
//! not oversize, not DHCP from an endpoint, and from an endpoint only from an address it
//! may use. The equivalence
//! with the full path is a property test (`pipeline::tests::fast_path`).

use super::conn::{self, Act};
use super::{Endpoint, L3Out, L3Tables, PortRole, VrfIdx};
use crate::tables::PortIdx;
use crate::flow::{CtVerdict, FlowId, FlowKey, LineKey};
use crate::l2::stage::Ingress;
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::checksum;
use crate::wire::icmp::{icmpv4, icmpv6};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::{EtherType, MacAddr};
use crate::DropReason;

use super::forward::{echo_ports, L3State};

/// What the burst's pre-pass learned about a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The flow-table hash of its connection (`key.sym_hash()`), for prefetching.
    pub hash: u64,
    /// The connection as the full path would build it, as the flow table's line holds
    /// it (IPv4; an IPv6 frame has a default here). A frame [`hit`] must not take (IPv6,
    /// echo, anything the full path has to see) has its key barred
    /// ([`LineKey::barred`]): it matches no entry, so the lookup itself turns it away
    /// and the parse carries no flag for it.
    key: LineKey,
    /// `FlowAction::sender` of the frame's sender.
    sender: u32,
    /// The entry the flow table's index named for `hash` when it was prefetched
    /// ([`crate::flow::FlowTable::prefetch_entry`]), tried first by the lookup.
    pub hint: Option<FlowId>,
    /// The L2 header's length: 18 when the frame carries an 802.1Q tag (TPID 0x8100, as
    /// the pipeline tests it), else 14.
    l2_len: u8,
}

impl Parsed {
    /// Whether the frame arrived tagged (for the egress VLAN rewrite).
    #[inline(always)]
    pub fn tagged(&self) -> bool {
        usize::from(self.l2_len) == ethernet::HEADER_LEN + ethernet::VLAN_TAG_LEN
    }
}

/// What a burst's ingress port decides for every frame of the burst (its L3 role, and
/// for an uplink the VRF, sender and MAC), looked up once per burst instead of per frame.
///
/// `S` says where the frames' senders come from: [`Role`] decides per frame, as built by
/// [`new`](Port::new); [`by_role`](Port::by_role) gives the port with its role as a
/// type instead, so the burst's loop is compiled once per role and an uplink's carries
/// no endpoint lookup, source-address check or role test (December 7: the worker's
/// first pass reloaded the role's fields from the stack on every packet).
#[derive(Clone, Copy)]
pub struct Port<'a, S = Role> {
    l3: &'a L3Tables,
    ingress: Ingress,
    senders: S,
}

/// Where a burst's frames come from, decided per frame.
#[derive(Clone, Copy)]
pub enum Role {
    /// An uplink into an existing VRF.
    Uplink(FromUplink),
    /// A port of endpoints.
    Endpoints(FromEndpoints),
    /// Nothing to parse for: not an L3 port, or an uplink into a VRF that is not there.
    None,
}

/// An uplink's frames: its VLAN, and what every frame's VRF, sender and MAC is.
#[derive(Clone, Copy)]
pub struct FromUplink {
    vlan: Option<u16>,
    vrf: VrfIdx,
    sender: u32,
    mac: MacAddr,
}

/// A port of endpoints' frames: the sender is looked up per frame (by VLAN and source MAC).
#[derive(Clone, Copy)]
pub struct FromEndpoints;

/// [`Port`] with its role as a type ([`Port::by_role`]).
pub enum ByRole<'a> {
    /// From an uplink.
    Uplink(Port<'a, FromUplink>),
    /// From a port of endpoints.
    Endpoints(Port<'a, FromEndpoints>),
    /// Nothing for the fast path: every frame's parse is `None`.
    None,
}

/// Where a frame's sender comes from ([`Role`], or one role as a type).
pub trait Senders: Copy {
    /// The frame's VRF, sender id, the MAC it must be addressed to, and its endpoint
    /// (none from an uplink); `None` if the port does not take it from this sender.
    fn sender<'a>(&self, l3: &'a L3Tables, port: PortIdx, vlan: Option<u16>, src_mac: MacAddr) -> Option<Sender<'a>>;
}

/// What [`Senders::sender`] finds for a frame.
type Sender<'a> = (VrfIdx, u32, MacAddr, Option<&'a Endpoint>);

impl Senders for FromUplink {
    #[inline(always)]
    fn sender<'a>(&self, _: &'a L3Tables, _: PortIdx, vlan: Option<u16>, _: MacAddr) -> Option<Sender<'a>> {
        (self.vlan == vlan).then_some((self.vrf, self.sender, self.mac, None))
    }
}

impl Senders for FromEndpoints {
    #[inline(always)]
    fn sender<'a>(&self, l3: &'a L3Tables, port: PortIdx, vlan: Option<u16>, src_mac: MacAddr) -> Option<Sender<'a>> {
        let e = l3.endpoint_at(port, vlan, src_mac)?;
        let ep = l3.endpoints.get(e as usize)?;
        Some((ep.vrf, e, l3.vrfs.get(ep.vrf as usize)?.gateway_mac, Some(ep)))
    }
}

impl Senders for Role {
    #[inline(always)]
    fn sender<'a>(&self, l3: &'a L3Tables, port: PortIdx, vlan: Option<u16>, src_mac: MacAddr) -> Option<Sender<'a>> {
        match self {
            Role::Uplink(u) => u.sender(l3, port, vlan, src_mac),
            Role::Endpoints(e) => e.sender(l3, port, vlan, src_mac),
            Role::None => None,
        }
    }
}

impl<'a> Port<'a> {
    /// The context of a burst from `ingress` under `l3`.
    #[inline]
    pub fn new(l3: &'a L3Tables, ingress: Ingress) -> Self {
        let senders = match l3.port_role.get(ingress.port as usize) {
            Some(PortRole::Uplink(u)) if l3.vrfs.get(u.vrf as usize).is_some() => {
                Role::Uplink(FromUplink { vlan: u.vlan, vrf: u.vrf, sender: conn::uplink_sender(ingress.port), mac: u.mac })
            }
            Some(PortRole::Endpoints(_)) => Role::Endpoints(FromEndpoints),
            _ => Role::None,
        };
        Port { l3, ingress, senders }
    }

    /// The same port with its role as a type: its parse gives the same answers.
    #[inline]
    pub fn by_role(self) -> ByRole<'a> {
        let Port { l3, ingress, senders } = self;
        match senders {
            Role::Uplink(senders) => ByRole::Uplink(Port { l3, ingress, senders }),
            Role::Endpoints(senders) => ByRole::Endpoints(Port { l3, ingress, senders }),
            Role::None => ByRole::None,
        }
    }
}

impl<'a, S: Senders> Port<'a, S> {
    /// Parses a frame of the burst for the fast path, or for the prefetch pass only.
    /// `None`: nothing to look up (not IP, malformed, a fragment, another protocol, an
    /// unknown sender or VRF); the full path decides what it is.
    ///
    /// The common shape, IPv4 without options carrying TCP, UDP or SCTP, is read at
    /// fixed offsets behind two length checks (the Ethernet header, then the 24 bytes of
    /// IP header and ports); anything else (IPv6, ICMP, options, a bad version) goes
    /// through [`parse_any`](Self::parse_any), which gives the same answer for the common
    /// shape too (a property test holds them to it).
    #[inline(always)]
    pub fn parse(&self, frame: &[u8]) -> Option<Parsed> {
        let eth: &[u8; 14] = frame.first_chunk()?;
        let tagged = eth[12..14] == [0x81, 0x00];
        let (l2_len, vlan, ethertype) = if tagged {
            let tag: &[u8; 4] = frame.get(14..)?.first_chunk()?;
            let vid = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
            (18, Some(vid).filter(|v| *v != 0), u16::from_be_bytes([tag[2], tag[3]]))
        } else {
            (14, None, u16::from_be_bytes([eth[12], eth[13]]))
        };
        // Another shape goes to `parse_any` before the sender is looked up (it looks the
        // sender up itself); every answer below that is `None` is `None` there too.
        if ethertype != EtherType::IPV4.0 {
            return self.parse_any(frame);
        }
        let ip: &[u8; 24] = frame.get(l2_len..)?.first_chunk()?;
        let proto = ip[9];
        if ip[0] != 0x45 || !matches!(proto, 6 | 17 | 132) {
            return self.parse_any(frame);
        }
        let src_mac = MacAddr([eth[6], eth[7], eth[8], eth[9], eth[10], eth[11]]);
        let (vrf, sender, our_mac, endpoint) = self.senders.sender(self.l3, self.ingress.port, vlan, src_mac)?;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        // A total length short of the header and ports, or past the frame: as `parse_any`
        // (the IPv4 view, then the ports), nothing to look up.
        if total < 24 || l2_len + total > frame.len() {
            return None;
        }
        // More fragments, or an offset: a fragment.
        if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
            return None;
        }
        let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
        let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
        let sport = u16::from_be_bytes([ip[20], ip[21]]);
        let dport = u16::from_be_bytes([ip[22], ip[23]]);
        let dst_mac = MacAddr([eth[0], eth[1], eth[2], eth[3], eth[4], eth[5]]);
        let l4_end = l2_len + total;
        let eligible = self.ingress.fits(frame.len(), tagged)
            && !dst_mac.is_multicast()
            && dst_mac == our_mac
            && ip[8] > 1
            && !std::net::Ipv4Addr::from(dst).is_multicast()
            && dst != u32::MAX
            && l4_end <= usize::from(u16::MAX)
            && endpoint.is_none_or(|ep| ep.may_send_v4(src, src_mac) && !(proto == 17 && dport == 67));
        let key = FlowKey { src: u128::from(src), dst: u128::from(dst), vrf, sport, dport, proto, v6: false };
        let line = LineKey::narrow(&key).unwrap_or_default();
        Some(Parsed { hash: key.sym_hash(), key: if eligible { line } else { line.barred() }, sender, hint: None, l2_len: l2_len as u8 })
    }

    /// [`parse`](Self::parse) of any frame, through the wire views.
    #[inline(never)]
    pub fn parse_any(&self, frame: &[u8]) -> Option<Parsed> {
        let ingress = self.ingress;
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let tag = eth.vlan();
        let vlan = tag.map(|t| t.vid()).filter(|v| *v != 0);
        let (src_mac, dst_mac) = (eth.src(), eth.dst());
        let (vrf, sender, our_mac, endpoint) = self.senders.sender(self.l3, self.ingress.port, vlan, src_mac)?;
        let l2_len = eth.header_len();
        // TPID 0x8100, as the pipeline tests it for the egress VLAN rewrite.
        let tagged = tag.is_some();
        // The full path's own checks: any of them failing leaves the packet to it.
        let mut eligible = ingress.fits(frame.len(), tagged) && !dst_mac.is_multicast() && dst_mac == our_mac;
        let ip = frame.get(l2_len..)?;
        // The L4 header's offset in the frame and its end (the datagram's, not the frame's).
        let (src, dst, proto, l4_off, l4_end, v6) = match eth.ethertype() {
            EtherType::IPV4 => {
                let p = Ipv4Packet::new_checked(ip).ok()?;
                if p.is_fragment() {
                    return None;
                }
                let (src, dst) = (p.src_u32(), p.dst_u32());
                eligible = eligible
                    && p.ttl() > 1
                    && !std::net::Ipv4Addr::from(dst).is_multicast()
                    && dst != u32::MAX
                    && endpoint.is_none_or(|ep| ep.may_send_v4(src, src_mac));
                (u128::from(src), u128::from(dst), p.protocol(), l2_len + p.header_len(), l2_len + usize::from(p.total_len()), false)
            }
            EtherType::IPV6 => {
                let p = Ipv6Packet::new_checked(ip).ok()?;
                eligible = false;
                (p.src_u128(), p.dst_u128(), p.next_header(), l2_len + 40, frame.len(), true)
            }
            _ => return None,
        };
        let l4 = frame.get(l4_off..l4_end)?;
        // The fast path reads an option-less IPv4 header only; the full path takes the rest.
        eligible &= l4_end <= usize::from(u16::MAX) && l4_off == l2_len + ipv4::HEADER_LEN;
        let (sport, dport) = match proto {
            6 | 17 | 132 => (u16::from_be_bytes([*l4.first()?, *l4.get(1)?]), u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?])),
            1 if !v6 => {
                eligible = false;
                echo_ports(l4, icmpv4::ECHO_REQUEST, icmpv4::ECHO_REPLY)?
            }
            58 if v6 => echo_ports(l4, icmpv6::ECHO_REQUEST, icmpv6::ECHO_REPLY)?,
            _ => return None,
        };
        // An endpoint's DHCP request is answered by the full path.
        if endpoint.is_some() && proto == 17 && dport == 67 {
            eligible = false;
        }
        let key = FlowKey { src, dst, vrf, sport, dport, proto, v6 };
        let line = LineKey::narrow(&key);
        eligible &= line.is_some();
        let line = line.unwrap_or_default();
        Some(Parsed { hash: key.sym_hash(), key: if eligible { line } else { line.barred() }, sender, hint: None, l2_len: l2_len as u8 })
    }
}

/// Forwards (or drops) a packet of a connection whose direction is decided under the
/// current snapshot, exactly as the full path would; `None` (nothing changed) otherwise.
/// `p` must be `parse` of this frame under the same tables.
#[inline(always)]
pub fn hit(l3: &L3Tables, st: &mut L3State, p: &Parsed, frame: &mut [u8], now_ms: u64) -> Option<L3Out> {
    // A barred key (not the fast path's frame) matches no entry.
    let (id, dir) = st.flows.lookup_line(&p.key, p.hash, p.hint)?;
    let e = st.flows.entry(id);
    let a = e.action[dir as usize];
    if e.epoch != st.flow_epoch() || a.act == Act::Undecided || a.sender != p.sender {
        return None;
    }
    // What only a hit needs, checked only for one (a new connection's first packet pays
    // the full path's parse anyway): the header checksum, and TCP's fields. The checksum
    // of an option-less header only, five words with no length to re-derive (options are
    // rare: the full path takes them).
    let l2 = usize::from(p.l2_len);
    let header = frame.get(l2..l2 + ipv4::HEADER_LEN).and_then(|h| <&[u8; ipv4::HEADER_LEN]>::try_from(h).ok())?;
    if !checksum::verifies20(header) {
        return None;
    }
    let tcp = if p.key.proto() == 6 {
        // The datagram's L4 length: its total length less the option-less header.
        let len = usize::from(u16::from_be_bytes([header[2], header[3]])).saturating_sub(ipv4::HEADER_LEN);
        let off = l2 + ipv4::HEADER_LEN;
        conn::tcp_segment(frame.get(off..off + len)?, len)
    } else {
        None
    };
    // Committed: from here on this is the full path's hit, step for step.
    if let CtVerdict::Invalid(_) = st.flows.update(id, dir, frame.len() as u32, tcp.as_ref(), now_ms) {
        return Some(L3Out::Drop(DropReason::CtInvalid));
    }
    // The adjacency itself rather than `conn::cached`'s copy: its MACs go into the frame
    // as one 12-byte block.
    let adj = match conn::cached_adjacency(l3, &a) {
        Ok(adj) => adj,
        Err(r) => return Some(L3Out::Drop(r)),
    };
    // In bounds: the parse checked the header there (and `get` above saw it).
    if let Some(ip) = frame.get_mut(l2..) {
        Ipv4Packet::new_unchecked(ip).decrement_ttl();
    }
    if let Some(h) = frame.first_chunk_mut::<12>() {
        *h = *adj.mac_header();
    }
    st.counters.routed += 1;
    Some(L3Out::Tx { port: adj.port, vlan: adj.vlan })
}
