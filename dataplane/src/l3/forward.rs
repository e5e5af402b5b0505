//! The routing stage: anti-spoofing, local answers, TTL, FIB lookup, next-hop rewrite.
//!
//! Uses: the frame, its ingress port's [`PortRole`], the published [`L3Tables`].
//! Sets: the frame rewritten in place (MACs, TTL/hop limit and checksum) or turned into
//! a reply (ARP, NA, ICMP echo reply, ICMP error, DHCP) in the same buffer.
//! Next: [`L3Out::Tx`] on a port (+VLAN), or [`L3Out::Drop`] with a reason.
//!
//! ICMP errors go back out of the ingress port to the sender's MAC (the sender is a
//! directly attached endpoint or the uplink router), rate-limited per worker.

use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::conn::{self, Conn, FlowAction, FlowOut, FragAction, FragPos, Quote};
use super::{AdjIdx, Endpoint, EndpointIdx, L3Tables, NetMode, NextHop, PortRole, Uplink, Vrf, VrfIdx};
use crate::flow::{FlowConfig, FlowKey, FlowTable, FragTable};
use crate::local;
use crate::packet::PacketBuf;
use crate::route::ecmp;
use crate::tables::PortIdx;
use crate::trace::{LocalAnswer, RouteNote, RouteResult, Step, TraceSender, Tracer};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmp::{icmpv4, icmpv6};
use crate::wire::ipv4::{Ipv4Error, Ipv4Packet};
use crate::wire::ipv6::{Ipv6Error, Ipv6Packet};
use crate::wire::{EtherType, MacAddr};
use crate::DropReason;

/// Where a routed (or answered) frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L3Out {
    /// Transmit on `port`, tagged with `vlan` if set.
    Tx { port: PortIdx, vlan: Option<u16> },
    Drop(DropReason),
}

/// What the stage did besides forwarding, summed by the worker into its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L3Counters {
    pub routed: u64,
    pub arp_replies: u64,
    pub nd_replies: u64,
    pub echo_replies: u64,
    pub dhcp_replies: u64,
    pub icmp_errors: u64,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_suppressed: u64,
    /// Connections entered into the flow table.
    pub flows_created: u64,
    /// Connections re-decided because a newer snapshot was published.
    pub flows_redecided: u64,
    /// Connections that matched a `log` global rule.
    pub policy_logged: u64,
}

/// ICMP errors a worker may send per second, and in one burst.
pub const ICMP_ERRORS_PER_S: u32 = 1000;
const ICMP_ERROR_BURST: u32 = 100;

/// Fragmented datagrams whose first fragment's decision a worker remembers.
const FRAG_ENTRIES: u32 = 4096;
/// How long a first fragment's decision waits for the rest (RFC 8900 era stacks give up
/// reassembly after 30 s; tails rarely trail by more than milliseconds).
const FRAG_TIMEOUT_MS: u64 = 2000;

/// Per-worker state of the stage: counters, the ICMP error budget, the connection table
/// and the fragment table.
pub struct L3State {
    pub counters: L3Counters,
    icmp_tokens: u32,
    icmp_refill_ms: u64,
    /// The worker's connections (both directions per entry).
    pub flows: FlowTable<FlowAction>,
    pub(super) frags: FragTable<FragAction>,
    /// Epoch of the snapshot in use: flow decisions made under another one are stale.
    pub epoch: u64,
    /// The packet trace recorder (the pipeline turns it on for a traced packet; the
    /// stages add their decisions to it).
    pub trace: Tracer,
}

impl std::fmt::Debug for L3State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L3State").field("counters", &self.counters).field("flows", &self.flows.len()).field("epoch", &self.epoch).finish()
    }
}

impl Default for L3State {
    /// A small table (4096 connections), for tests.
    fn default() -> Self {
        L3State::new(&FlowConfig { capacity: 4096, ..FlowConfig::default() })
    }
}

impl L3State {
    /// State with a connection table sized by `cfg` (allocated here, once).
    pub fn new(cfg: &FlowConfig) -> Self {
        L3State {
            counters: L3Counters::default(),
            icmp_tokens: ICMP_ERROR_BURST,
            icmp_refill_ms: 0,
            flows: FlowTable::new(cfg),
            frags: FragTable::new(FRAG_ENTRIES, FRAG_TIMEOUT_MS),
            epoch: 0,
            trace: Tracer::default(),
        }
    }

    /// The epoch as flow entries keep it (its low 32 bits, see `FlowEntry::epoch`).
    #[inline]
    pub(super) fn flow_epoch(&self) -> u32 {
        self.epoch as u32
    }

    /// Takes an ICMP error token (token bucket, refilled from `now_ms`).
    fn icmp_token(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.icmp_refill_ms);
        if elapsed > 0 {
            let add = (elapsed.min(1000) as u32 * ICMP_ERRORS_PER_S) / 1000;
            if add > 0 {
                self.icmp_tokens = (self.icmp_tokens + add).min(ICMP_ERROR_BURST);
                self.icmp_refill_ms = now_ms;
            }
        }
        if self.icmp_tokens == 0 {
            self.counters.icmp_suppressed += 1;
            return false;
        }
        self.icmp_tokens -= 1;
        true
    }
}

/// Who sent the frame, as far as L3 is concerned.
#[derive(Clone, Copy)]
pub(super) enum Sender<'a> {
    Endpoint(EndpointIdx, &'a Endpoint),
    Uplink(&'a Uplink),
}

impl Sender<'_> {
    fn vrf(&self) -> VrfIdx {
        match self {
            Sender::Endpoint(_, e) => e.vrf,
            Sender::Uplink(u) => u.vrf,
        }
    }
}

/// Everything the handlers need about the ingress.
pub(super) struct Ctx<'a> {
    pub(super) l3: &'a L3Tables,
    pub(super) vrf: &'a Vrf,
    pub(super) vrf_idx: VrfIdx,
    pub(super) sender: Sender<'a>,
    pub(super) in_port: PortIdx,
    vlan: Option<u16>,
    l2_len: usize,
    /// MAC sluice answers with on this port: the network's gateway MAC, or the uplink's.
    our_mac: MacAddr,
    src_mac: MacAddr,
    /// Whether this packet is traced: the FIB lookup then notes its details in `route`.
    tracing: bool,
    route: &'a Cell<RouteNote>,
}

impl Ctx<'_> {
    fn back(&self) -> L3Out {
        L3Out::Tx { port: self.in_port, vlan: self.vlan }
    }
}

/// Runs one frame from `in_port` through the routing stage.
pub fn process<B: PacketBuf>(l3: &L3Tables, st: &mut L3State, in_port: PortIdx, pkt: &mut B, now_ms: u64) -> L3Out {
    let Ok(eth) = EthernetFrame::new_checked(pkt.data()) else {
        return L3Out::Drop(DropReason::Runt);
    };
    let vlan = eth.vlan().map(|t| t.vid()).filter(|v| *v != 0);
    let (src_mac, dst_mac, ethertype, l2_len) = (eth.src(), eth.dst(), eth.ethertype(), eth.header_len());
    let sender = match l3.port_role.get(in_port as usize) {
        Some(PortRole::Endpoints(_)) => match l3.endpoint_at(in_port, vlan, src_mac) {
            Some(e) => Sender::Endpoint(e, &l3.endpoints[e as usize]),
            None => return L3Out::Drop(DropReason::UnknownEndpoint),
        },
        Some(PortRole::Uplink(u)) => {
            if u.vlan != vlan {
                return L3Out::Drop(DropReason::VlanNotAllowed);
            }
            Sender::Uplink(u)
        }
        _ => return L3Out::Drop(DropReason::NotBridged),
    };
    let Some(vrf) = l3.vrfs.get(sender.vrf() as usize) else {
        return L3Out::Drop(DropReason::NoRoute);
    };
    let our_mac = match sender {
        Sender::Endpoint(..) => vrf.gateway_mac,
        Sender::Uplink(u) => u.mac,
    };
    st.trace.step(Step::L3In { vrf: sender.vrf(), sender: trace_sender(sender, in_port), gateway: false });
    if !dst_mac.is_multicast() && dst_mac != our_mac {
        return L3Out::Drop(DropReason::NotForUs);
    }
    let route = Cell::new(RouteNote::default());
    let cx = Ctx { l3, vrf, vrf_idx: sender.vrf(), sender, in_port, vlan, l2_len, our_mac, src_mac, tracing: st.trace.on, route: &route };
    match ethertype {
        EtherType::ARP => arp(&cx, st, pkt),
        EtherType::IPV4 => ipv4(&cx, st, pkt, now_ms, dst_mac),
        EtherType::IPV6 => ipv6(&cx, st, pkt, now_ms),
        _ => L3Out::Drop(DropReason::UnsupportedEthertype),
    }
}

/// Runs a frame of a bridged network's bridge domain past the network's gateway.
///
/// Frames to the gateway MAC are routed (or answered) like frames from an endpoint port.
/// Broadcast and multicast frames are answered when they are for the gateway (ARP or
/// neighbor solicitation for its address, DHCP); `None` means the frame is not the
/// gateway's business and the caller switches it as usual.
pub fn process_bridged<B: PacketBuf>(
    l3: &L3Tables,
    st: &mut L3State,
    vrf_idx: VrfIdx,
    in_port: PortIdx,
    pkt: &mut B,
    now_ms: u64,
) -> Option<L3Out> {
    let vrf = l3.vrfs.get(vrf_idx as usize)?;
    let eth = EthernetFrame::new_checked(pkt.data()).ok()?;
    let vlan = eth.vlan().map(|t| t.vid()).filter(|v| *v != 0);
    let (src_mac, dst_mac, ethertype, l2_len) = (eth.src(), eth.dst(), eth.ethertype(), eth.header_len());
    let to_gateway = dst_mac == vrf.gateway_mac;
    if !to_gateway && !dst_mac.is_multicast() {
        return None;
    }
    let Some(&e) = vrf.endpoints_by_mac.get(&src_mac) else {
        // Only the network's endpoints may use its gateway (anti-spoofing).
        return to_gateway.then_some(L3Out::Drop(DropReason::UnknownEndpoint));
    };
    let route = Cell::new(RouteNote::default());
    let cx = Ctx {
        l3,
        vrf,
        vrf_idx,
        sender: Sender::Endpoint(e, &l3.endpoints[e as usize]),
        in_port,
        vlan,
        l2_len,
        our_mac: vrf.gateway_mac,
        src_mac,
        tracing: st.trace.on,
        route: &route,
    };
    if !to_gateway && ethertype == EtherType::IPV4 && !is_dhcp_to_server(&pkt.data()[l2_len..]) {
        return None;
    }
    st.trace.step(Step::L3In { vrf: vrf_idx, sender: TraceSender::Endpoint(e), gateway: true });
    let out = match ethertype {
        EtherType::ARP => arp(&cx, st, pkt),
        EtherType::IPV4 => ipv4(&cx, st, pkt, now_ms, dst_mac),
        EtherType::IPV6 => ipv6(&cx, st, pkt, now_ms),
        _ if to_gateway => L3Out::Drop(DropReason::UnsupportedEthertype),
        _ => return None,
    };
    // Broadcast/multicast the gateway did not answer belongs to the bridge.
    (to_gateway || matches!(out, L3Out::Tx { .. })).then_some(out)
}

/// Whether an IPv4 packet is a (first-fragment) UDP datagram to the DHCP server port.
fn is_dhcp_to_server(ip: &[u8]) -> bool {
    let Ok(ip) = Ipv4Packet::new_checked(ip) else { return false };
    let l4 = ip.payload();
    ip.protocol() == 17 && !ip.is_fragment() && l4.len() >= 4 && u16::from_be_bytes([l4[2], l4[3]]) == 67
}

fn arp<B: PacketBuf>(cx: &Ctx<'_>, st: &mut L3State, pkt: &mut B) -> L3Out {
    let answer = |sender_ip: Ipv4Addr, target: Ipv4Addr| -> bool {
        match cx.sender {
            Sender::Endpoint(_, ep) => {
                // An endpoint asking about itself (duplicate-address probe, gratuitous
                // ARP) gets no answer; an ARP from an address it may not use neither.
                if ep.ipv4.contains(&target) {
                    return false;
                }
                let sender_ok = sender_ip.is_unspecified() || ep.may_send_v4(u32::from(sender_ip), cx.src_mac);
                sender_ok
                    && match cx.vrf.mode {
                        // Calico style: the gateway answers for every address.
                        NetMode::Routed => true,
                        NetMode::Bridged => Some(target) == cx.vrf.gateway_v4,
                    }
            }
            Sender::Uplink(u) => Some(target) == u.ipv4,
        }
    };
    match local::arp::answer(pkt, cx.l2_len, cx.our_mac, answer) {
        local::Answer::Replied => {
            st.counters.arp_replies += 1;
            st.trace.step(Step::Local(LocalAnswer::ArpReply));
            cx.back()
        }
        local::Answer::Ignored => L3Out::Drop(DropReason::ArpIgnored),
        local::Answer::Malformed => L3Out::Drop(DropReason::ArpMalformed),
    }
}

fn ipv4<B: PacketBuf>(cx: &Ctx<'_>, st: &mut L3State, pkt: &mut B, now_ms: u64, dst_mac: MacAddr) -> L3Out {
    let l2 = cx.l2_len;
    let ip = match Ipv4Packet::new_checked(&pkt.data()[l2..]) {
        Ok(ip) => ip,
        Err(e) => return L3Out::Drop(ipv4_reason(e)),
    };
    if !ip.verify_checksum() {
        return L3Out::Drop(DropReason::IpBadChecksum);
    }
    let (src, dst, proto, ttl) = (ip.src_u32(), ip.dst_u32(), ip.protocol(), ip.ttl());
    let first_fragment = ip.is_first_fragment();
    let fragment = ip.is_fragment();
    let hlen = ip.header_len();
    let l4 = ip.payload();
    let ports = if first_fragment && matches!(proto, 6 | 17 | 132) && l4.len() >= 4 {
        (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
    } else {
        (0, 0)
    };
    let icmp_type = if first_fragment && proto == 1 && !l4.is_empty() { Some(l4[0]) } else { None };

    if let Sender::Endpoint(_, ep) = cx.sender {
        if !ep.may_send_v4(src, cx.src_mac) {
            // The one exception: a DHCP client without an address yet.
            let dhcp = src == 0 && proto == 17 && ports == (68, 67) && cx.vrf.dhcp.is_some();
            if !dhcp {
                return L3Out::Drop(DropReason::Spoofed);
            }
        }
        st.trace.step(Step::AntiSpoofOk);
        if proto == 17 && ports.1 == 67 && !fragment {
            return match (&cx.vrf.dhcp, ep.ipv4.first()) {
                (Some(server), Some(_)) => match local::dhcp::answer(pkt, l2, hlen, ep, cx.vrf, server) {
                    local::Answer::Replied => {
                        st.counters.dhcp_replies += 1;
                        st.trace.step(Step::Local(LocalAnswer::DhcpReply));
                        cx.back()
                    }
                    local::Answer::Ignored => L3Out::Drop(DropReason::DhcpIgnored),
                    local::Answer::Malformed => L3Out::Drop(DropReason::DhcpMalformed),
                },
                _ => L3Out::Drop(DropReason::DhcpIgnored),
            };
        }
    }
    if dst_mac.is_multicast() || Ipv4Addr::from(dst).is_multicast() || dst == u32::MAX {
        return L3Out::Drop(DropReason::L3Multicast);
    }

    let out = if !cx.l3.stateful {
        // Stateless routing (no policy configured): no flow table. Fragments hash on
        // the 3-tuple so a datagram's fragments take one ECMP path.
        let (sp, dp) = if fragment { (0, 0) } else { ports };
        let r = resolve(cx, |v| v.fib4.lookup(dst), || ecmp::flow_hash_v4(src, dst, proto, sp, dp));
        if st.trace.on {
            st.trace.step(Step::Flow(crate::trace::FlowNote::Stateless));
            trace_route(cx, st, &r);
        }
        conn::stateless(r)
    } else {
        let frag = match (fragment, first_fragment) {
            (false, _) => FragPos::Whole,
            (true, true) => FragPos::First(ip.ident() as u32),
            (true, false) => FragPos::Tail(ip.ident() as u32),
        };
        let echo = if l4.len() >= 8 { icmp_type.and(echo_ports(l4, icmpv4::ECHO_REQUEST, icmpv4::ECHO_REPLY)) } else { None };
        let (sport, dport) = echo.unwrap_or(ports);
        let c = Conn {
            key: FlowKey { src: src as u128, dst: dst as u128, vrf: cx.vrf_idx, sport, dport, proto, v6: false },
            len: pkt.len() as u32,
            tcp: if proto == 6 && first_fragment { conn::tcp_segment(l4, l4.len()) } else { None },
            frag,
            related: match icmp_type {
                Some(icmpv4::DEST_UNREACHABLE | icmpv4::TIME_EXCEEDED | 12 /* parameter problem */) if l4.len() >= 8 => {
                    Quote::V4(&l4[8..])
                }
                _ => Quote::None,
            },
        };
        conn::run(cx, st, &c, now_ms, |k| {
            resolve(cx, |v| v.fib4.lookup(k.dst as u32), || ecmp::flow_hash_v4(k.src as u32, k.dst as u32, k.proto, k.sport, k.dport))
        })
    };
    let (out_port, out_vlan, new_dst, new_src) = match out {
        FlowOut::Forward(f) => (f.port, f.vlan, f.dst_mac, f.src_mac),
        FlowOut::Drop(r) => return L3Out::Drop(r),
        FlowOut::Unrouted(Resolved::NoRoute) => {
            return icmp4_error(cx, st, pkt, now_ms, icmpv4::DEST_UNREACHABLE, icmpv4::NET_UNREACHABLE, DropReason::NoRoute)
        }
        FlowOut::Unrouted(Resolved::Local) => {
            return match icmp_type {
                Some(icmpv4::ECHO_REQUEST) if !fragment => {
                    if local::icmp::echo_reply_v4(pkt, l2, cx.our_mac) {
                        st.counters.echo_replies += 1;
                        st.trace.step(Step::Local(LocalAnswer::EchoReply));
                        cx.back()
                    } else {
                        L3Out::Drop(DropReason::IpBadLength)
                    }
                }
                _ => L3Out::Drop(DropReason::LocalUnhandled),
            };
        }
        FlowOut::Unrouted(Resolved::Drop(r)) => return L3Out::Drop(r),
        FlowOut::Unrouted(Resolved::Forward { .. }) => return L3Out::Drop(DropReason::NoRoute),
    };
    if ttl <= 1 {
        return icmp4_error(cx, st, pkt, now_ms, icmpv4::TIME_EXCEEDED, 0, DropReason::TtlExpired);
    }
    let d = pkt.data_mut();
    Ipv4Packet::new_unchecked(&mut d[l2..]).decrement_ttl();
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(new_dst);
    eth.set_src(new_src);
    st.counters.routed += 1;
    L3Out::Tx { port: out_port, vlan: out_vlan }
}

/// The key ports of an ICMP(v6) echo (`l4`: its header): the identifier as the source port
/// of a request and as the destination port of a reply, so a reply's key is its request's
/// reversed. None for any other message type.
pub(super) fn echo_ports(l4: &[u8], request: u8, reply: u8) -> Option<(u16, u16)> {
    let id = u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]);
    match *l4.first()? {
        t if t == request => Some((id, 0)),
        t if t == reply => Some((0, id)),
        _ => None,
    }
}

/// The connection of the IPv4 packet an ICMP error quotes (its header + at least 8 bytes),
/// as that packet travelled.
pub(super) fn quoted_v4(q: &[u8], vrf: VrfIdx) -> Option<FlowKey> {
    let ihl = usize::from(*q.first()? & 0x0f) * 4;
    if q[0] >> 4 != 4 || ihl < 20 || q.len() < ihl + 4 {
        return None;
    }
    let src = u32::from_be_bytes([q[12], q[13], q[14], q[15]]);
    let dst = u32::from_be_bytes([q[16], q[17], q[18], q[19]]);
    let proto = q[9];
    let l4 = &q[ihl..];
    let (sport, dport) = match proto {
        6 | 17 | 132 => (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])),
        1 if l4.len() >= 6 => echo_ports(l4, icmpv4::ECHO_REQUEST, icmpv4::ECHO_REPLY)?,
        _ => (0, 0),
    };
    Some(FlowKey { src: src as u128, dst: dst as u128, vrf, sport, dport, proto, v6: false })
}

/// The connection of the IPv6 packet an ICMPv6 error quotes. Only a quote whose upper
/// layer follows the fixed header directly is read (the quote is cut short, so an
/// extension-header walk could not be bounded by its payload length).
pub(super) fn quoted_v6(q: &[u8], vrf: VrfIdx) -> Option<FlowKey> {
    if q.len() < 40 + 4 || q[0] >> 4 != 6 {
        return None;
    }
    let rd = |o: usize| u128::from_be_bytes(q[o..o + 16].try_into().unwrap_or([0; 16]));
    let (src, dst, proto) = (rd(8), rd(24), q[6]);
    let l4 = &q[40..];
    let (sport, dport) = match proto {
        6 | 17 | 132 => (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])),
        58 if l4.len() >= 6 => echo_ports(l4, icmpv6::ECHO_REQUEST, icmpv6::ECHO_REPLY)?,
        _ => return None,
    };
    Some(FlowKey { src, dst, vrf, sport, dport, proto, v6: true })
}

/// Where a destination lookup ended.
pub(super) enum Resolved {
    /// An address of sluice itself.
    Local,
    /// To a next hop, whose rewrite is adjacency `adj` (`endpoint`: when it is a local
    /// workload, which policy needs).
    Forward { port: PortIdx, vlan: Option<u16>, dst_mac: MacAddr, src_mac: MacAddr, endpoint: Option<EndpointIdx>, adj: AdjIdx },
    /// No route: answer with an ICMP unreachable.
    NoRoute,
    /// Drop without an answer.
    Drop(DropReason),
}

/// Looks a destination up in the sender's VRF with `lookup`, following at most one
/// explicit leak into another VRF and picking an ECMP member by `hash` (computed only for
/// ECMP routes).
#[inline]
fn resolve(cx: &Ctx<'_>, lookup: impl Fn(&Vrf) -> Option<crate::route::NextHopId>, hash: impl Fn() -> u32) -> Resolved {
    let mut vrf = cx.vrf;
    let mut vrf_idx = cx.vrf_idx;
    let mut leaked = false;
    loop {
        let Some(id) = lookup(vrf) else {
            if cx.tracing {
                cx.route.set(RouteNote { vrf: vrf_idx, next_hop: u32::MAX, ecmp: None });
            }
            return Resolved::NoRoute;
        };
        let mut nh_id = id;
        let mut nh = &vrf.next_hops[id as usize];
        let mut picked = None;
        if let NextHop::Ecmp(members) = nh {
            let i = ecmp::pick(members.len(), hash());
            picked = Some((i as u16, members.len() as u16));
            nh_id = members[i];
            nh = &vrf.next_hops[nh_id as usize];
        }
        if cx.tracing {
            cx.route.set(RouteNote { vrf: vrf_idx, next_hop: id, ecmp: picked });
        }
        return match nh {
            NextHop::Local => Resolved::Local,
            NextHop::Endpoint(_) | NextHop::Gateway { .. } => {
                let adj = vrf.nh_adj.get(nh_id as usize).copied().unwrap_or(AdjIdx::MAX);
                match cx.l3.adjacencies.get(adj as usize) {
                    Some(a) => Resolved::Forward {
                        port: a.port,
                        vlan: a.vlan,
                        dst_mac: a.dst_mac(),
                        src_mac: a.src_mac(),
                        endpoint: a.endpoint,
                        adj,
                    },
                    None => Resolved::Drop(DropReason::NoRoute),
                }
            }
            NextHop::Vrf(other) if !leaked => {
                leaked = true;
                match cx.l3.vrfs.get(*other as usize) {
                    Some(v) => {
                        vrf = v;
                        vrf_idx = *other;
                        continue;
                    }
                    None => Resolved::Drop(DropReason::NoRoute),
                }
            }
            NextHop::Vrf(_) | NextHop::Ecmp(_) => Resolved::Drop(DropReason::RouteLoop),
            NextHop::Blackhole => Resolved::Drop(DropReason::Blackhole),
        };
    }
}

/// The sender as the trace shows it.
fn trace_sender(s: Sender<'_>, in_port: PortIdx) -> TraceSender {
    match s {
        Sender::Endpoint(e, _) => TraceSender::Endpoint(e),
        Sender::Uplink(_) => TraceSender::Uplink(in_port),
    }
}

/// Adds the FIB lookup just made (its details noted by [`resolve`]) to the trace.
#[cold]
pub(super) fn trace_route(cx: &Ctx<'_>, st: &mut L3State, r: &Resolved) {
    let result = match *r {
        Resolved::Local => RouteResult::Local,
        Resolved::Forward { port, endpoint: Some(endpoint), .. } => RouteResult::Endpoint { endpoint, port },
        Resolved::Forward { port, dst_mac, endpoint: None, .. } => RouteResult::Gateway { port, mac: dst_mac },
        Resolved::NoRoute => RouteResult::NoRoute,
        Resolved::Drop(d) => RouteResult::Drop(d),
    };
    st.trace.step(Step::Route { note: cx.route.take(), result });
}

fn icmp4_error<B: PacketBuf>(
    cx: &Ctx<'_>,
    st: &mut L3State,
    pkt: &mut B,
    now_ms: u64,
    typ: u8,
    code: u8,
    reason: DropReason,
) -> L3Out {
    // Never answer an ICMP error with an error (RFC 1812 4.3.2.7), nor a fragment tail.
    let our_ip = match cx.sender {
        Sender::Endpoint(..) => cx.vrf.gateway_v4,
        Sender::Uplink(u) => u.ipv4,
    };
    let Some(our_ip) = our_ip else { return L3Out::Drop(reason) };
    {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt.data()[cx.l2_len..]) else { return L3Out::Drop(reason) };
        if !ip.is_first_fragment() {
            return L3Out::Drop(reason);
        }
        if ip.protocol() == 1 {
            let t = ip.payload().first().copied().unwrap_or(0);
            if !matches!(t, icmpv4::ECHO_REQUEST | icmpv4::ECHO_REPLY) {
                return L3Out::Drop(reason);
            }
        }
    }
    if !st.icmp_token(now_ms) {
        return L3Out::Drop(reason);
    }
    if local::icmp::error_v4(pkt, cx.l2_len, cx.our_mac, cx.src_mac, our_ip, typ, code) {
        // The packet ends as the error it caused: counted as `icmp_errors`, not as a drop.
        // (Rate-limited or unanswerable, it is a drop under `reason`.)
        st.counters.icmp_errors += 1;
        st.trace.step(Step::Local(LocalAnswer::IcmpError { typ, code }));
        cx.back()
    } else {
        L3Out::Drop(reason)
    }
}

fn ipv6<B: PacketBuf>(cx: &Ctx<'_>, st: &mut L3State, pkt: &mut B, now_ms: u64) -> L3Out {
    let l2 = cx.l2_len;
    let ip = match Ipv6Packet::new_checked(&pkt.data()[l2..]) {
        Ok(ip) => ip,
        Err(e) => return L3Out::Drop(ipv6_reason(e)),
    };
    let (src, dst, hop) = (ip.src_u128(), ip.dst_u128(), ip.hop_limit());
    let (proto, l4_off, frag) = match ip.upper_layer() {
        Ok(x) => x,
        Err(e) => return L3Out::Drop(ipv6_reason(e)),
    };
    let first_fragment = frag.is_none_or(|f| f.offset == 0);
    // The L4 header inside the payload (which is bounded by payload_len).
    let l4 = ip.payload().get(l4_off.saturating_sub(40)..).unwrap_or(&[]);
    let ports = if first_fragment && matches!(proto, 6 | 17 | 132) && l4.len() >= 4 {
        (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
    } else {
        (0, 0)
    };
    let icmp_type = if first_fragment && proto == 58 && !l4.is_empty() { Some(l4[0]) } else { None };

    if let Sender::Endpoint(_, ep) = cx.sender {
        // DAD probes come from :: and are not ours to answer; anything else must be
        // the endpoint's own address.
        if !ep.may_send_v6(src, cx.src_mac) {
            return L3Out::Drop(if src == 0 { DropReason::NdIgnored } else { DropReason::Spoofed });
        }
        st.trace.step(Step::AntiSpoofOk);
    }
    // Neighbor discovery first: it is addressed to multicast and link-local addresses.
    if let Some(t) = icmp_type {
        if t == icmpv6::NEIGHBOR_SOLICIT {
            let answer = |target: Ipv6Addr| -> bool {
                match cx.sender {
                    Sender::Endpoint(_, ep) => {
                        !ep.ipv6.contains(&target)
                            && match cx.vrf.mode {
                                NetMode::Routed => true,
                                NetMode::Bridged => {
                                    Some(target) == cx.vrf.gateway_v6 || target == cx.vrf.gateway_v6_ll
                                }
                            }
                    }
                    Sender::Uplink(u) => Some(target) == u.ipv6,
                }
            };
            return match local::ndp::answer_ns(pkt, l2, l4_off, cx.our_mac, answer) {
                local::Answer::Replied => {
                    st.counters.nd_replies += 1;
                    st.trace.step(Step::Local(LocalAnswer::NdReply));
                    cx.back()
                }
                local::Answer::Ignored => L3Out::Drop(DropReason::NdIgnored),
                local::Answer::Malformed => L3Out::Drop(DropReason::NdMalformed),
            };
        }
        if matches!(t, icmpv6::ROUTER_SOLICIT | icmpv6::ROUTER_ADVERT | icmpv6::NEIGHBOR_ADVERT | 143 /* MLDv2 */) {
            return L3Out::Drop(DropReason::NdIgnored);
        }
    }
    if (dst >> 120) == 0xff {
        return L3Out::Drop(DropReason::L3Multicast);
    }

    let out = if !cx.l3.stateful {
        let (sp, dp) = if frag.is_some() { (0, 0) } else { ports };
        let r = resolve(cx, |v| v.fib6.lookup(dst), || ecmp::flow_hash_v6(src, dst, proto, sp, dp));
        if st.trace.on {
            st.trace.step(Step::Flow(crate::trace::FlowNote::Stateless));
            trace_route(cx, st, &r);
        }
        conn::stateless(r)
    } else {
        let frag_pos = match frag {
            None => FragPos::Whole,
            Some(f) if f.offset == 0 => FragPos::First(f.ident),
            Some(f) => FragPos::Tail(f.ident),
        };
        let (mut sport, mut dport, mut related) = (ports.0, ports.1, Quote::None);
        if let Some(t) = icmp_type {
            if l4.len() >= 8 {
                if let Some(p) = echo_ports(l4, icmpv6::ECHO_REQUEST, icmpv6::ECHO_REPLY) {
                    (sport, dport) = p;
                } else if matches!(t, icmpv6::DEST_UNREACHABLE | icmpv6::PACKET_TOO_BIG | icmpv6::TIME_EXCEEDED | 4 /* parameter problem */) {
                    related = Quote::V6(&l4[8..]);
                }
            }
        }
        let tcp = if proto == 6 && first_fragment { conn::tcp_segment(l4, l4.len()) } else { None };
        let c = Conn {
            key: FlowKey { src, dst, vrf: cx.vrf_idx, sport, dport, proto, v6: true },
            len: pkt.len() as u32,
            tcp,
            frag: frag_pos,
            related,
        };
        conn::run(cx, st, &c, now_ms, |k| {
            resolve(cx, |v| v.fib6.lookup(k.dst), || ecmp::flow_hash_v6(k.src, k.dst, k.proto, k.sport, k.dport))
        })
    };
    let (out_port, out_vlan, new_dst, new_src) = match out {
        FlowOut::Forward(f) => (f.port, f.vlan, f.dst_mac, f.src_mac),
        FlowOut::Drop(r) => return L3Out::Drop(r),
        FlowOut::Unrouted(Resolved::NoRoute) => {
            return icmp6_error(cx, st, pkt, now_ms, icmpv6::DEST_UNREACHABLE, 0, DropReason::NoRoute)
        }
        FlowOut::Unrouted(Resolved::Local) => {
            return match icmp_type {
                Some(icmpv6::ECHO_REQUEST) if frag.is_none() => {
                    if local::icmp::echo_reply_v6(pkt, l2, l4_off, cx.our_mac) {
                        st.counters.echo_replies += 1;
                        st.trace.step(Step::Local(LocalAnswer::EchoReply));
                        cx.back()
                    } else {
                        L3Out::Drop(DropReason::IpBadLength)
                    }
                }
                _ => L3Out::Drop(DropReason::LocalUnhandled),
            };
        }
        FlowOut::Unrouted(Resolved::Drop(r)) => return L3Out::Drop(r),
        FlowOut::Unrouted(Resolved::Forward { .. }) => return L3Out::Drop(DropReason::NoRoute),
    };
    if hop <= 1 {
        return icmp6_error(cx, st, pkt, now_ms, icmpv6::TIME_EXCEEDED, 0, DropReason::TtlExpired);
    }
    let d = pkt.data_mut();
    Ipv6Packet::new_unchecked(&mut d[l2..]).set_hop_limit(hop - 1);
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(new_dst);
    eth.set_src(new_src);
    st.counters.routed += 1;
    L3Out::Tx { port: out_port, vlan: out_vlan }
}

fn icmp6_error<B: PacketBuf>(
    cx: &Ctx<'_>,
    st: &mut L3State,
    pkt: &mut B,
    now_ms: u64,
    typ: u8,
    code: u8,
    reason: DropReason,
) -> L3Out {
    let our_ip = match cx.sender {
        Sender::Endpoint(..) => cx.vrf.gateway_v6.or(Some(cx.vrf.gateway_v6_ll)),
        Sender::Uplink(u) => u.ipv6,
    };
    let Some(our_ip) = our_ip else { return L3Out::Drop(reason) };
    {
        let Ok(ip) = Ipv6Packet::new_checked(&pkt.data()[cx.l2_len..]) else { return L3Out::Drop(reason) };
        let Ok((proto, off, frag)) = ip.upper_layer() else { return L3Out::Drop(reason) };
        if frag.is_some_and(|f| f.offset != 0) {
            return L3Out::Drop(reason);
        }
        // No error about an ICMPv6 error (types below 128).
        if proto == 58 && ip.payload().get(off - 40).is_some_and(|t| *t < 128) {
            return L3Out::Drop(reason);
        }
    }
    if !st.icmp_token(now_ms) {
        return L3Out::Drop(reason);
    }
    if local::icmp::error_v6(pkt, cx.l2_len, cx.our_mac, cx.src_mac, our_ip, typ, code) {
        st.counters.icmp_errors += 1;
        st.trace.step(Step::Local(LocalAnswer::IcmpError { typ, code }));
        cx.back()
    } else {
        L3Out::Drop(reason)
    }
}

fn ipv4_reason(e: Ipv4Error) -> DropReason {
    match e {
        Ipv4Error::Truncated => DropReason::IpTruncated,
        Ipv4Error::BadVersion | Ipv4Error::BadIhl => DropReason::IpBadHeader,
        Ipv4Error::BadTotalLen => DropReason::IpBadLength,
    }
}

fn ipv6_reason(e: Ipv6Error) -> DropReason {
    match e {
        Ipv6Error::TooManyExtHeaders => DropReason::Ipv6ExtChain,
        Ipv6Error::Truncated => DropReason::IpTruncated,
        _ => DropReason::IpBadHeader,
    }
}

#[cfg(test)]
mod tests;
