//! Layer 3: virtual networks (one VRF each), endpoints, next hops and the routing stage.
//!
//! Model (shared/DESIGN.md §4): every workload is an *endpoint* on a *network*; each
//! network is its own VRF with its own FIBs, so tenants may reuse address space and no
//! packet crosses VRFs unless a route says so (a `NextHop::Vrf` leak). sluice is the
//! gateway of every network: it answers ARP/ND for it, ICMP echo to it, and DHCPv4 for
//! its endpoints (the `local` stage), and routes between endpoints and uplinks.
//!
//! Everything here is immutable once built (`build::build_l3`) and published inside
//! [`crate::tables::Tables`]; the per-worker state of the stage (ICMP error rate limit)
//! lives in [`forward::L3State`].

pub mod build;
pub mod conn;
pub mod fast;
pub mod forward;
#[cfg(test)]
pub(crate) mod fixture;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::route::{Fib4, Fib6, NextHopId};
use crate::tables::PortIdx;
use crate::wire::MacAddr;

pub use build::{build_l3, EndpointSpec, L3Spec, NetworkSpec, NextHopSpec, RouteSpec, UplinkSpec};
pub use forward::{L3Counters, L3Out, L3State};

/// Index of a VRF (network) in [`L3Tables::vrfs`].
pub type VrfIdx = u16;
/// Index of an endpoint in [`L3Tables::endpoints`].
pub type EndpointIdx = u32;
/// Index of an adjacency in [`L3Tables::adjacencies`].
pub type AdjIdx = u32;

/// A forwarding next hop resolved to the rewrite its packets get: the output port and
/// VLAN and the MACs. The flow table caches an [`AdjIdx`] instead of these 12+ bytes,
/// which keeps a connection's hot data in one cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adjacency {
    pub port: PortIdx,
    pub vlan: Option<u16>,
    /// The local workload it delivers to (policy needs it).
    pub endpoint: Option<EndpointIdx>,
    /// The destination MAC then the source MAC: a rewritten frame's first 12 bytes,
    /// copied by the fast path as one 8-byte and one 4-byte move (two 6-byte fields took
    /// eight moves and a round trip through the stack). The only copy of the two MACs.
    macs: [u8; 12],
}

impl Adjacency {
    /// The rewrite to `dst_mac` from `src_mac` out of `port` (tagged `vlan`).
    pub fn new(port: PortIdx, vlan: Option<u16>, dst_mac: MacAddr, src_mac: MacAddr, endpoint: Option<EndpointIdx>) -> Self {
        let mut macs = [0; 12];
        macs[..6].copy_from_slice(&dst_mac.0);
        macs[6..].copy_from_slice(&src_mac.0);
        Adjacency { port, vlan, endpoint, macs }
    }

    /// The MAC a rewritten frame is addressed to (the next hop's).
    #[inline(always)]
    pub fn dst_mac(&self) -> MacAddr {
        let [a, b, c, d, e, f, ..] = self.macs;
        MacAddr([a, b, c, d, e, f])
    }

    /// The MAC a rewritten frame is sent from (the egress gateway's).
    #[inline(always)]
    pub fn src_mac(&self) -> MacAddr {
        let [.., a, b, c, d, e, f] = self.macs;
        MacAddr([a, b, c, d, e, f])
    }

    /// The first 12 bytes of a rewritten frame: the destination MAC, then the source.
    #[inline(always)]
    pub fn mac_header(&self) -> &[u8; 12] {
        &self.macs
    }
}

/// Where a route sends packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// A local workload.
    Endpoint(EndpointIdx),
    /// A router reached through a port (an uplink).
    Gateway { port: PortIdx, vlan: Option<u16>, mac: MacAddr, src_mac: MacAddr },
    /// One of several next hops, by flow hash. Members are plain next hops of this VRF.
    Ecmp(Box<[NextHopId]>),
    /// Look the destination up again in another VRF (explicit route leaking; one hop).
    Vrf(VrfIdx),
    /// An address of sluice itself: answered by the local stage, never forwarded.
    Local,
    /// Drop without an ICMP error.
    Blackhole,
}

/// Where a route of a VRF comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOrigin {
    /// Configured by the operator (a `route`).
    Static,
    /// A host route to an endpoint's address.
    Endpoint,
    /// An address of sluice itself (gateway, uplink).
    Local,
}

/// One route as the VRF's FIB holds it: the list the FIB was built from, without the
/// routes a later one with the same prefix replaced. Read by `show routes`; the workers
/// only use the FIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    pub prefix: IpAddr,
    pub len: u8,
    /// Index in [`Vrf::next_hops`].
    pub nh: NextHopId,
    pub origin: RouteOrigin,
}

/// Whether sluice routes every packet of a network (Calico/Contrail) or bridges within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NetMode {
    #[default]
    Routed,
    Bridged,
}

/// The DHCPv4 server of a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpServer {
    pub lease_s: u32,
    pub dns: Box<[Ipv4Addr]>,
    /// Prefixes handed to endpoints as routes via the gateway (option 121).
    pub routes: Box<[(Ipv4Addr, u8)]>,
}

/// DHCP option 121 (RFC 3442) value: each of `routes` via `gateway`, then the default
/// route via `gateway` (a client that gets option 121 ignores the router option). Routes
/// that do not fit the option's 255 bytes are left out. Empty when `routes` is.
pub fn classless_routes_option(routes: &[(Ipv4Addr, u8)], gateway: Ipv4Addr) -> Vec<u8> {
    if routes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (p, len) in routes.iter().chain(std::iter::once(&(Ipv4Addr::UNSPECIFIED, 0))) {
        let significant = (*len as usize).div_ceil(8);
        let need = 1 + significant + 4;
        if out.len() + need > 255 {
            break;
        }
        out.push(*len);
        out.extend_from_slice(&p.octets()[..significant]);
        out.extend_from_slice(&gateway.octets());
    }
    out
}

/// One virtual network.
#[derive(Debug)]
pub struct Vrf {
    pub name: String,
    /// Operator-visible VRF id.
    pub id: u32,
    pub mode: NetMode,
    pub fib4: Fib4,
    pub fib6: Fib6,
    /// Indexed by the FIB's `NextHopId`.
    pub next_hops: Box<[NextHop]>,
    /// The adjacency of each next hop that forwards (`Endpoint`, `Gateway`), by
    /// `NextHopId`; `AdjIdx::MAX` for the others.
    pub nh_adj: Box<[AdjIdx]>,
    /// The routes in both FIBs, IPv4 first, each family sorted by prefix then length.
    pub routes: Box<[RouteEntry]>,
    /// The MAC sluice uses as this network's gateway.
    pub gateway_mac: MacAddr,
    pub gateway_v4: Option<Ipv4Addr>,
    pub gateway_v6: Option<Ipv6Addr>,
    /// The gateway's IPv6 link-local address (fe80::/64 + EUI-64 of `gateway_mac`).
    pub gateway_v6_ll: Ipv6Addr,
    /// IPv4 subnets (network address, prefix length).
    pub subnets4: Box<[(Ipv4Addr, u8)]>,
    pub dhcp: Option<DhcpServer>,
    /// Encoded DHCP option 121 (empty: none).
    pub dhcp_routes_option: Box<[u8]>,
    /// The network's endpoints by MAC (bridged networks find the sender this way).
    pub endpoints_by_mac: hashbrown::HashMap<MacAddr, EndpointIdx>,
    /// Most connections of this network one worker tracks (`u32::MAX`: no limit).
    pub flow_limit: u32,
}

/// An address an endpoint may use besides its own (allowed address pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowedPrefix {
    V4(u32, u8),
    V6(u128, u8),
}

/// Extra (prefix, optional MAC) an endpoint may send from: VIPs, VRRP, nested workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowedPair {
    pub prefix: AllowedPrefix,
    /// `None`: with the endpoint's own MAC.
    pub mac: Option<MacAddr>,
}

/// A workload attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub vrf: VrfIdx,
    pub port: PortIdx,
    /// The 802.1Q VLAN the endpoint sits on at its port (`None`: untagged).
    pub vlan: Option<u16>,
    pub mac: MacAddr,
    pub ipv4: Box<[Ipv4Addr]>,
    pub ipv6: Box<[Ipv6Addr]>,
    pub allowed: Box<[AllowedPair]>,
    /// Prefix length handed out by DHCP with `ipv4[0]` (the containing subnet's).
    pub dhcp_prefix_len: u8,
}

/// A port connecting sluice to an outside router, in one VRF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    pub vrf: VrfIdx,
    pub mac: MacAddr,
    pub vlan: Option<u16>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// What a port is for, at layer 3.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PortRole {
    /// Not an L3 port (a bridge port, or unused).
    #[default]
    None,
    /// Hosts these endpoints (routed networks).
    Endpoints(Box<[EndpointIdx]>),
    /// An uplink into a VRF.
    Uplink(Uplink),
}

/// Everything layer 3 in a published snapshot.
#[derive(Debug, Default)]
pub struct L3Tables {
    pub vrfs: Box<[Vrf]>,
    pub endpoints: Box<[Endpoint]>,
    /// Every forwarding next hop's rewrite: first one per endpoint (index = its
    /// `EndpointIdx`), then one per gateway next hop of each VRF.
    pub adjacencies: Box<[Adjacency]>,
    /// By `PortIdx`.
    pub port_role: Box<[PortRole]>,
    /// The compiled network policy (NetworkPolicy + global rules) over these endpoints.
    pub policy: crate::policy::PolicyTables,
    /// Whether routed packets go through the flow table (connection tracking). Control
    /// sets it when any policy is configured or `flows.track` is `always`; without it,
    /// routing is stateless and costs no flow-table lookup.
    pub stateful: bool,
}

impl L3Tables {
    /// The endpoint on `port` that sends with `vlan` and source `mac`.
    #[inline]
    pub fn endpoint_at(&self, port: PortIdx, vlan: Option<u16>, mac: MacAddr) -> Option<EndpointIdx> {
        let PortRole::Endpoints(list) = self.port_role.get(port as usize)? else { return None };
        list.iter().copied().find(|&e| {
            let ep = &self.endpoints[e as usize];
            ep.vlan == vlan && (ep.mac == mac || ep.allowed.iter().any(|a| a.mac == Some(mac)))
        })
    }

    /// Whether any L3 role is configured (the pipeline skips L3 entirely otherwise).
    pub fn is_empty(&self) -> bool {
        self.vrfs.is_empty()
    }
}

/// The IPv6 link-local address derived from a MAC (RFC 4291 modified EUI-64).
pub fn link_local_from_mac(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

impl Endpoint {
    /// Whether the endpoint may send from IPv4 `src` with MAC `mac`.
    #[inline]
    pub fn may_send_v4(&self, src: u32, mac: MacAddr) -> bool {
        if mac == self.mac && self.ipv4.iter().any(|a| u32::from(*a) == src) {
            return true;
        }
        self.allowed.iter().any(|a| match a.prefix {
            AllowedPrefix::V4(p, len) => a.mac.unwrap_or(self.mac) == mac && prefix_match32(src, p, len),
            AllowedPrefix::V6(..) => false,
        })
    }

    /// Whether the endpoint may send from IPv6 `src` with MAC `mac`. Its link-local
    /// address (from its MAC) is always allowed.
    #[inline]
    pub fn may_send_v6(&self, src: u128, mac: MacAddr) -> bool {
        if mac == self.mac
            && (self.ipv6.iter().any(|a| u128::from(*a) == src) || src == u128::from(link_local_from_mac(self.mac)))
        {
            return true;
        }
        self.allowed.iter().any(|a| match a.prefix {
            AllowedPrefix::V6(p, len) => a.mac.unwrap_or(self.mac) == mac && prefix_match128(src, p, len),
            AllowedPrefix::V4(..) => false,
        })
    }
}

#[inline]
fn prefix_match32(a: u32, p: u32, len: u8) -> bool {
    len == 0 || (a ^ p) >> (32 - len.min(32) as u32) == 0
}

#[inline]
fn prefix_match128(a: u128, p: u128, len: u8) -> bool {
    len == 0 || (a ^ p) >> (128 - len.min(128) as u32) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classless_routes_encoding() {
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert!(classless_routes_option(&[], gw).is_empty());
        let o = classless_routes_option(&[(Ipv4Addr::new(172, 16, 0, 0), 12), (Ipv4Addr::new(192, 168, 1, 128), 25)], gw);
        assert_eq!(
            o,
            vec![12, 172, 16, 10, 1, 0, 1, 25, 192, 168, 1, 128, 10, 1, 0, 1, 0, 10, 1, 0, 1],
            "RFC 3442 examples: significant octets only, default route last"
        );
        let many: Vec<_> = (0..100).map(|i| (Ipv4Addr::new(10, i, 0, 0), 16)).collect();
        assert!(classless_routes_option(&many, gw).len() <= 255);
    }

    #[test]
    fn link_local_is_eui64() {
        let mac: MacAddr = "02:00:00:00:ff:01".parse().unwrap();
        assert_eq!(link_local_from_mac(mac), "fe80::ff:fe00:ff01".parse::<Ipv6Addr>().unwrap());
        let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
        assert_eq!(link_local_from_mac(mac), "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn spoof_rules() {
        let mac: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
        let other: MacAddr = "02:00:00:00:00:0b".parse().unwrap();
        let ep = Endpoint {
            name: "a".into(),
            vrf: 0,
            port: 0,
            vlan: None,
            mac,
            ipv4: vec![Ipv4Addr::new(10, 1, 0, 10)].into(),
            ipv6: vec!["fd00::10".parse().unwrap()].into(),
            allowed: vec![
                AllowedPair { prefix: AllowedPrefix::V4(u32::from(Ipv4Addr::new(10, 9, 0, 0)), 16), mac: None },
                AllowedPair { prefix: AllowedPrefix::V4(u32::from(Ipv4Addr::new(10, 1, 0, 99)), 32), mac: Some(other) },
            ]
            .into(),
            dhcp_prefix_len: 24,
        };
        let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        assert!(ep.may_send_v4(ip("10.1.0.10"), mac));
        assert!(!ep.may_send_v4(ip("10.1.0.11"), mac), "someone else's IP");
        assert!(!ep.may_send_v4(ip("10.1.0.10"), other), "own IP, wrong MAC");
        assert!(ep.may_send_v4(ip("10.9.200.1"), mac), "allowed pair prefix with own MAC");
        assert!(!ep.may_send_v4(ip("10.9.200.1"), other));
        assert!(ep.may_send_v4(ip("10.1.0.99"), other), "allowed pair with its own MAC");
        assert!(ep.may_send_v6(u128::from("fd00::10".parse::<Ipv6Addr>().unwrap()), mac));
        assert!(ep.may_send_v6(u128::from(link_local_from_mac(mac)), mac));
        assert!(!ep.may_send_v6(u128::from("fd00::11".parse::<Ipv6Addr>().unwrap()), mac));
        assert!(prefix_match32(1, 0, 0) && prefix_match128(5, 0, 0));
    }
}
