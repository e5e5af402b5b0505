//! The connection stage of the routing path: the per-worker flow table in front of
//! routing and policy (shared/DESIGN.md §1).
//!
//! Uses: the packet's connection ([`Conn`]: VRF + 5-tuple, TCP fields, fragment
//! position, the connection an ICMP error quotes), the sender (endpoint or uplink), the
//! published policy classifier and the snapshot epoch in [`L3State`].
//! Sets: the flow entry (both directions in one entry), its conntrack state and the
//! cached [`FlowAction`] of the packet's direction.
//! Next: [`FlowOut::Forward`] (the caller rewrites and transmits), [`FlowOut::Drop`], or
//! [`FlowOut::Unrouted`] for what routing did not forward (local, no route, blackhole),
//! which the caller answers as before, without creating a flow.
//!
//! A direction's decision (next hop + policy verdict) is made on its first packet and
//! cached; every later packet of the direction is a hash lookup. A decision taken under
//! an older snapshot (epoch) is re-made on the next packet, so a new deny cuts an existing
//! connection at its next packet, and a new route moves it. Policy is always evaluated
//! for the connection's original direction, so replies of an allowed connection pass
//! and replies of a denied one do not. Non-first fragments follow the decision recorded
//! for their first fragment; a tail without one is dropped, never let through.

use super::forward::{trace_route, Ctx, L3State, Resolved, Sender};
use super::{AdjIdx, Adjacency, EndpointIdx, L3Tables};
use crate::flow::{tcp_may_open, CtVerdict, Dir, FlowKey, FragKey, InsertError, TcpSegment};
use crate::policy::{Query, VerdictBy};
use crate::tables::PortIdx;
use crate::trace::{FlowNote, Step};
use crate::wire::MacAddr;
use crate::DropReason;

/// `sender` of packets from an uplink (or'ed with the port).
const UPLINK_SENDER: u32 = 1 << 31;

/// `FlowAction::sender` of packets from the uplink on `port`.
#[inline(always)]
pub(super) fn uplink_sender(port: PortIdx) -> u32 {
    UPLINK_SENDER | u32::from(port)
}

/// What a direction's packets get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Act {
    /// Not decided under the entry's epoch yet.
    #[default]
    Undecided,
    Forward,
    Deny(DropReason),
}

/// One direction's cached decision: 9 bytes, packed, so both directions fit the flow
/// entry's one cache line beside the key, counters and state (aligned, the two u32s
/// would pad it to 12). Fields are read and written by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed)]
pub struct FlowAction {
    pub act: Act,
    /// Who the direction's packets came from when it was decided: an endpoint index, or
    /// `UPLINK_SENDER | port`. Another sender (an endpoint moved, an uplink changed)
    /// re-decides, since the sender takes part in policy.
    pub sender: u32,
    /// `Forward`: the rewrite, an index into the snapshot's `L3Tables::adjacencies`
    /// (valid under the entry's epoch only, which every hit checks first).
    pub adj: AdjIdx,
}

impl Default for FlowAction {
    fn default() -> Self {
        FlowAction { act: Act::Undecided, sender: 0, adj: AdjIdx::MAX }
    }
}

const _: () = assert!(std::mem::size_of::<Act>() == 1, "Act packs into DropReason's spare values");
const _: () = assert!(
    std::mem::size_of::<crate::flow::FlowEntry<FlowAction>>() == 64,
    "a flow entry is one cache line"
);

/// A first fragment's decision, for the datagram's other fragments: the rewrite itself
/// rather than an adjacency index, since a tail may arrive after a publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragAction {
    sender: u32,
    out: Result<Fwd, DropReason>,
}

/// Where a fragment sits in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragPos {
    Whole,
    /// Offset 0, more to come: carries the L4 header; records the decision.
    First(u32),
    /// Offset > 0: no L4 header; follows the first fragment.
    Tail(u32),
}

/// The connection a packet belongs to, as the routing stage parsed it.
#[derive(Clone, Copy, Debug)]
pub struct Conn<'a> {
    pub key: FlowKey,
    /// Frame length, for the byte counters.
    pub len: u32,
    pub tcp: Option<TcpSegment>,
    pub frag: FragPos,
    /// An ICMP error: the connection of the packet it quotes (as that packet travelled).
    pub related: Quote<'a>,
}

/// The rewrite of a forwarded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fwd {
    pub port: PortIdx,
    pub vlan: Option<u16>,
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
}

/// The packet an ICMP error quotes (after the error's 8-byte header), parsed into its
/// connection only when the stage needs it: a pre-parsed `Option<FlowKey>` in every
/// `Conn` was 48 bytes to move per packet, and its `None` a one-byte store read back 16
/// bytes wide (a store-forwarding stall on every packet).
#[derive(Clone, Copy, Debug)]
pub enum Quote<'a> {
    /// Not an ICMP error.
    None,
    /// An ICMPv4 error quoting these bytes.
    V4(&'a [u8]),
    /// An ICMPv6 error quoting these bytes.
    V6(&'a [u8]),
}

impl Quote<'_> {
    /// The connection of the quoted packet, as that packet travelled.
    #[inline]
    fn key(self, vrf: super::VrfIdx) -> Option<FlowKey> {
        match self {
            Quote::None => None,
            Quote::V4(q) => super::forward::quoted_v4(q, vrf),
            Quote::V6(q) => super::forward::quoted_v6(q, vrf),
        }
    }
}

/// What the stage decided.
pub(super) enum FlowOut {
    Forward(Fwd),
    Drop(DropReason),
    /// Routing did not forward it: the caller answers (echo, ICMP unreachable) or drops.
    Unrouted(Resolved),
}

fn sender_id(cx: &Ctx<'_>) -> u32 {
    match cx.sender {
        Sender::Endpoint(i, _) => i,
        Sender::Uplink(_) => uplink_sender(cx.in_port),
    }
}

fn sender_ep(cx: &Ctx<'_>) -> Option<EndpointIdx> {
    match cx.sender {
        Sender::Endpoint(i, _) => Some(i),
        Sender::Uplink(_) => None,
    }
}

impl Fwd {
    #[inline]
    fn of(a: &Adjacency) -> Fwd {
        Fwd { port: a.port, vlan: a.vlan, dst_mac: a.dst_mac(), src_mac: a.src_mac() }
    }
}

/// What a cached decision does to a packet, under the snapshot it was made in.
#[inline]
fn out_of(l3: &L3Tables, a: &FlowAction) -> FlowOut {
    match cached(l3, a) {
        Ok(f) => FlowOut::Forward(f),
        Err(r) => FlowOut::Drop(r),
    }
}

/// The adjacency a cached decision forwards through, or why it drops (what a cached
/// decision can be). The forward is tested first: it is the fast path's case.
#[inline(always)]
pub(super) fn cached_adjacency<'t>(l3: &'t L3Tables, a: &FlowAction) -> Result<&'t Adjacency, DropReason> {
    if a.act == Act::Forward {
        if let Some(adj) = l3.adjacencies.get(a.adj as usize) {
            return Ok(adj);
        }
    }
    Err(match a.act {
        Act::Deny(r) => r,
        Act::Forward | Act::Undecided => DropReason::NoRoute,
    })
}

/// [`out_of`] as a rewrite or a drop reason.
#[inline(always)]
pub(super) fn cached(l3: &L3Tables, a: &FlowAction) -> Result<Fwd, DropReason> {
    cached_adjacency(l3, a).map(Fwd::of)
}

fn deny_reason(by: VerdictBy) -> DropReason {
    match by {
        VerdictBy::EgressDenied => DropReason::PolicyEgress,
        VerdictBy::IngressDenied => DropReason::PolicyIngress,
        _ => DropReason::PolicyGlobal,
    }
}

/// Routes the packet's direction and runs policy for the connection's original direction.
fn decide(
    cx: &Ctx<'_>,
    st: &mut L3State,
    c: &Conn,
    dir: Dir,
    resolve: &impl Fn(&FlowKey) -> Resolved,
) -> Result<FlowAction, Resolved> {
    let r = resolve(&c.key);
    if st.trace.on {
        trace_route(cx, st, &r);
    }
    let (adj, dst_ep) = match r {
        Resolved::Forward { adj, endpoint, .. } => (adj, endpoint),
        other => return Err(other),
    };
    let policy = &cx.l3.policy;
    let act = if policy.is_empty() {
        st.trace.step(Step::Policy { verdict: None, dir });
        Act::Forward
    } else {
        let k = &c.key;
        let has_ports = matches!(k.proto, 6 | 17 | 132);
        let q = match dir {
            Dir::Orig => Query {
                src_ep: sender_ep(cx),
                dst_ep,
                v6: k.v6,
                src: k.src,
                dst: k.dst,
                proto: k.proto,
                dport: if has_ports { k.dport } else { 0 },
            },
            Dir::Reply => Query {
                src_ep: dst_ep,
                dst_ep: sender_ep(cx),
                v6: k.v6,
                src: k.dst,
                dst: k.src,
                proto: k.proto,
                dport: if has_ports { k.sport } else { 0 },
            },
        };
        let v = policy.classify(&q);
        st.trace.step(Step::Policy { verdict: Some(v), dir });
        if v.log {
            st.counters.policy_logged += 1;
        }
        if v.allow {
            Act::Forward
        } else {
            Act::Deny(deny_reason(v.by))
        }
    };
    Ok(FlowAction { act, sender: sender_id(cx), adj })
}

/// What routing decided, for the stateless path (no flow table: no policy configured).
#[inline]
pub(super) fn stateless(r: Resolved) -> FlowOut {
    match r {
        Resolved::Forward { port, vlan, dst_mac, src_mac, .. } => FlowOut::Forward(Fwd { port, vlan, dst_mac, src_mac }),
        other => FlowOut::Unrouted(other),
    }
}

/// Runs the packet's connection through the flow table. `resolve` looks a key's
/// destination up in the sender's VRF (FIB + ECMP by the key's hash).
#[inline]
pub(super) fn run(cx: &Ctx<'_>, st: &mut L3State, c: &Conn, now_ms: u64, resolve: impl Fn(&FlowKey) -> Resolved) -> FlowOut {
    let k = &c.key;
    if let FragPos::Tail(id) = c.frag {
        let fk = FragKey { src: k.src, dst: k.dst, id, vrf: k.vrf, proto: k.proto, v6: k.v6 };
        let a = st.frags.lookup(&fk, now_ms).filter(|a| a.sender == sender_id(cx));
        st.trace.step(Step::Flow(FlowNote::Fragment { known: a.is_some() }));
        return match a.map(|a| a.out) {
            Some(Ok(fwd)) => FlowOut::Forward(fwd),
            Some(Err(r)) => FlowOut::Drop(r),
            None => FlowOut::Drop(DropReason::FragmentUnknown),
        };
    }
    if let Some(inner) = c.related.key(cx.vrf_idx) {
        return related(cx, st, c, &inner, &resolve);
    }
    let hash = k.sym_hash();
    let epoch = st.flow_epoch();
    let strict = st.flows.config().tcp_strict;
    let (id, dir, a) = match st.flows.lookup(k, hash) {
        Some((id, dir)) => {
            let e = st.flows.entry(id);
            let cached = e.action[dir as usize];
            if e.epoch == epoch && cached.act != Act::Undecided && cached.sender == sender_id(cx) {
                st.trace.step(Step::Flow(FlowNote::Hit(dir)));
                (id, dir, cached)
            } else {
                let fresh = e.epoch == epoch;
                st.trace.step(Step::Flow(FlowNote::Redecided { dir, stale: !fresh }));
                let a = match decide(cx, st, c, dir, &resolve) {
                    Ok(a) => a,
                    Err(r) => return FlowOut::Unrouted(r),
                };
                let e = st.flows.entry_mut(id);
                if !fresh {
                    // Decided under an older snapshot: both directions are re-decided.
                    e.epoch = epoch;
                    e.action = [FlowAction::default(); 2];
                    st.counters.flows_redecided += 1;
                }
                e.action[dir as usize] = a;
                (id, dir, a)
            }
        }
        None => {
            st.trace.step(Step::Flow(FlowNote::Miss));
            if let Some(t) = &c.tcp {
                if !tcp_may_open(t.flags, strict) {
                    return FlowOut::Drop(DropReason::CtInvalid);
                }
            }
            let a = match decide(cx, st, c, Dir::Orig, &resolve) {
                Ok(a) => a,
                Err(r) => return FlowOut::Unrouted(r),
            };
            let limit = cx.vrf.flow_limit;
            let id = match st.flows.insert(k, hash, now_ms, limit) {
                Ok(id) => id,
                Err(InsertError::VrfLimit) => return FlowOut::Drop(DropReason::NetworkFlowLimit),
                Err(InsertError::Full) => return FlowOut::Drop(DropReason::FlowTableFull),
            };
            let e = st.flows.entry_mut(id);
            e.epoch = epoch;
            e.action[0] = a;
            st.counters.flows_created += 1;
            (id, Dir::Orig, a)
        }
    };
    let verdict = st.flows.update(id, dir, c.len, c.tcp.as_ref(), now_ms);
    if st.trace.on {
        let state = st.flows.entry(id).ct;
        st.trace.step(Step::Conntrack { state, valid: verdict == CtVerdict::Ok });
    }
    if let CtVerdict::Invalid(_) = verdict {
        return FlowOut::Drop(DropReason::CtInvalid);
    }
    if let FragPos::First(fid) = c.frag {
        let fk = FragKey { src: k.src, dst: k.dst, id: fid, vrf: k.vrf, proto: k.proto, v6: k.v6 };
        let out = out_of(cx.l3, &a);
        let verdict = match out {
            FlowOut::Forward(f) => Ok(f),
            FlowOut::Drop(r) => Err(r),
            FlowOut::Unrouted(_) => Err(DropReason::NoRoute),
        };
        st.frags.record(&fk, FragAction { sender: a.sender, out: verdict }, now_ms);
        return out;
    }
    out_of(cx.l3, &a)
}

/// An ICMP error: passes if it is about a connection this worker tracks and allows (the
/// quoted packet's direction is not denied); an error about no known connection is
/// judged by policy as the ICMP packet it is. Either way it creates no flow.
fn related(cx: &Ctx<'_>, st: &mut L3State, c: &Conn, inner: &FlowKey, resolve: &impl Fn(&FlowKey) -> Resolved) -> FlowOut {
    let known = st.flows.lookup(inner, inner.sym_hash());
    st.trace.step(Step::Flow(FlowNote::Related { known: known.is_some() }));
    if let Some((id, dir)) = known {
        let e = st.flows.entry(id);
        // Only a decision of the current snapshot counts; a stale one is judged afresh below.
        if e.epoch == st.flow_epoch() {
            match e.action[dir as usize].act {
                Act::Deny(r) => return FlowOut::Drop(r),
                Act::Forward => {
                    let r = resolve(&c.key);
                    if st.trace.on {
                        trace_route(cx, st, &r);
                    }
                    return match r {
                        Resolved::Forward { port, vlan, dst_mac, src_mac, .. } => {
                            FlowOut::Forward(Fwd { port, vlan, dst_mac, src_mac })
                        }
                        other => FlowOut::Unrouted(other),
                    }
                }
                Act::Undecided => {}
            }
        }
    }
    match decide(cx, st, c, Dir::Orig, resolve) {
        Ok(a) => out_of(cx.l3, &a),
        Err(r) => FlowOut::Unrouted(r),
    }
}

/// The TCP fields conntrack reads, from a TCP header of at least 20 bytes (`l4`) in a
/// datagram whose L4 part is `l4_len` bytes long. Inlined so the caller's `Conn` is
/// written in place (see `forward::ipv4`).
#[inline(always)]
pub fn tcp_segment(l4: &[u8], l4_len: usize) -> Option<TcpSegment> {
    let t = crate::wire::tcp::TcpPacket::new_checked(l4).ok()?;
    let flags = t.flags().bits();
    let hlen = t.header_len();
    let wscale = if flags & 0x02 != 0 { window_scale(t.options()) } else { None };
    Some(TcpSegment {
        flags,
        seq: t.seq(),
        ack: t.ack(),
        window: t.window(),
        payload_len: l4_len.saturating_sub(hlen) as u32,
        wscale,
    })
}

/// The window-scale option (kind 3) of a SYN's options.
fn window_scale(mut opts: &[u8]) -> Option<u8> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return None,
            1 => opts = &opts[1..],
            _ => {
                let len = *opts.get(1)? as usize;
                if len < 2 || len > opts.len() {
                    return None;
                }
                if kind == 3 && len == 3 {
                    return Some(opts[2].min(14));
                }
                opts = &opts[len..];
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
