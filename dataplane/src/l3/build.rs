//! Builds [`L3Tables`] from resolved specs: one VRF per network with its FIBs and
//! next-hop table, the endpoints, and each port's L3 role.
//!
//! Routes in a VRF, in the order they are inserted (a later duplicate prefix wins): the
//! operator's routes, then a host route per endpoint address, then the gateway's and
//! uplinks' own addresses (local). So an endpoint or a gateway address can never be
//! routed away by a configured route.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    link_local_from_mac, AdjIdx, Adjacency, AllowedPair, DhcpServer, Endpoint, EndpointIdx, L3Tables, NetMode, NextHop, PortRole,
    RouteEntry, RouteOrigin, Uplink, Vrf, VrfIdx,
};
use crate::route::{Fib4, Fib6, NextHopId, Route4, Route6};
use crate::tables::PortIdx;
use crate::wire::MacAddr;

/// A network (VRF), resolved.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub name: String,
    pub id: u32,
    pub mode: NetMode,
    pub subnets4: Vec<(Ipv4Addr, u8)>,
    pub subnets6: Vec<(Ipv6Addr, u8)>,
    pub gateway_mac: MacAddr,
    pub gateway_v4: Option<Ipv4Addr>,
    pub gateway_v6: Option<Ipv6Addr>,
    pub dhcp: Option<DhcpServer>,
    /// Most connections one worker tracks for this network (None: no limit).
    pub flow_limit: Option<u32>,
}

/// An endpoint, resolved (network by index).
#[derive(Clone, Debug)]
pub struct EndpointSpec {
    pub name: String,
    pub network: usize,
    pub port: PortIdx,
    pub vlan: Option<u16>,
    pub mac: MacAddr,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub allowed: Vec<AllowedPair>,
}

/// An uplink port, resolved.
#[derive(Clone, Debug)]
pub struct UplinkSpec {
    pub port: PortIdx,
    pub network: usize,
    pub mac: MacAddr,
    pub vlan: Option<u16>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// A route's next hop, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHopSpec {
    Endpoint(usize),
    Gateway { port: PortIdx, vlan: Option<u16>, mac: MacAddr, src_mac: MacAddr },
    Ecmp(Vec<NextHopSpec>),
    Network(usize),
    Blackhole,
}

/// A route in a network.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub network: usize,
    pub prefix: IpAddr,
    pub len: u8,
    pub next_hop: NextHopSpec,
}

/// Everything layer 3, resolved by control.
#[derive(Clone, Debug, Default)]
pub struct L3Spec {
    pub networks: Vec<NetworkSpec>,
    pub endpoints: Vec<EndpointSpec>,
    pub uplinks: Vec<UplinkSpec>,
    pub routes: Vec<RouteSpec>,
}

/// A VRF's next hops while it is being built (deduplicated).
#[derive(Default)]
struct NextHops(Vec<NextHop>);

impl NextHops {
    fn id(&mut self, nh: NextHop) -> NextHopId {
        if let Some(i) = self.0.iter().position(|n| *n == nh) {
            return i as NextHopId;
        }
        self.0.push(nh);
        (self.0.len() - 1) as NextHopId
    }
}

/// Builds the L3 tables for `n_ports` ports.
pub fn build_l3(n_ports: usize, spec: &L3Spec) -> Result<L3Tables, String> {
    if spec.networks.len() > VrfIdx::MAX as usize {
        return Err("too many networks".into());
    }
    let mut port_role: Vec<PortRole> = vec![PortRole::None; n_ports];
    let mut endpoints = Vec::with_capacity(spec.endpoints.len());
    let mut per_port: Vec<Vec<EndpointIdx>> = vec![Vec::new(); n_ports];
    for (i, e) in spec.endpoints.iter().enumerate() {
        let net = spec.networks.get(e.network).ok_or_else(|| format!("endpoint {}: no network {}", e.name, e.network))?;
        if e.port as usize >= n_ports {
            return Err(format!("endpoint {}: port index {} out of range", e.name, e.port));
        }
        let dhcp_prefix_len = e
            .ipv4
            .first()
            .and_then(|a| net.subnets4.iter().find(|(p, l)| in_prefix4(*a, *p, *l)).map(|(_, l)| *l))
            .unwrap_or(32);
        // Endpoints of a bridged network are reached through the bridge: their ports
        // stay bridge ports.
        if net.mode == NetMode::Routed {
            per_port[e.port as usize].push(i as EndpointIdx);
        }
        endpoints.push(Endpoint {
            name: e.name.clone(),
            vrf: e.network as VrfIdx,
            port: e.port,
            vlan: e.vlan,
            mac: e.mac,
            ipv4: e.ipv4.clone().into(),
            ipv6: e.ipv6.clone().into(),
            allowed: e.allowed.clone().into(),
            dhcp_prefix_len,
        });
    }
    for (p, list) in per_port.into_iter().enumerate() {
        if !list.is_empty() {
            port_role[p] = PortRole::Endpoints(list.into());
        }
    }
    for u in &spec.uplinks {
        let slot = port_role.get_mut(u.port as usize).ok_or_else(|| format!("uplink port index {} out of range", u.port))?;
        if *slot != PortRole::None {
            return Err(format!("port index {} is both an uplink and an endpoint port", u.port));
        }
        *slot = PortRole::Uplink(Uplink { vrf: u.network as VrfIdx, mac: u.mac, vlan: u.vlan, ipv4: u.ipv4, ipv6: u.ipv6 });
    }

    let mut vrfs = Vec::with_capacity(spec.networks.len());
    // Endpoints' adjacencies first, so an endpoint's index is its adjacency's.
    let mut adjacencies: Vec<Adjacency> = endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Delivered as the gateway of the endpoint's own network.
            let src_mac = spec.networks.get(e.vrf as usize).map_or(MacAddr::ZERO, |n| n.gateway_mac);
            Adjacency::new(e.port, e.vlan, e.mac, src_mac, Some(i as EndpointIdx))
        })
        .collect();
    for (ni, net) in spec.networks.iter().enumerate() {
        let mut nhs = NextHops::default();
        let mut r4: Vec<Route4> = Vec::new();
        let mut r6: Vec<Route6> = Vec::new();
        // Where each route came from, in insertion order (r4's then r6's).
        let (mut o4, mut o6): (Vec<RouteOrigin>, Vec<RouteOrigin>) = (Vec::new(), Vec::new());
        let mut add = |prefix: IpAddr, len: u8, nh: NextHopId, origin: RouteOrigin| match prefix {
            IpAddr::V4(p) => {
                r4.push(Route4 { prefix: p, len, nh });
                o4.push(origin);
            }
            IpAddr::V6(p) => {
                r6.push(Route6 { prefix: p, len, nh });
                o6.push(origin);
            }
        };
        for r in spec.routes.iter().filter(|r| r.network == ni) {
            let nh = resolve(&r.next_hop, &mut nhs, spec)?;
            add(r.prefix, r.len, nh, RouteOrigin::Static);
        }
        for (ei, e) in spec.endpoints.iter().enumerate().filter(|(_, e)| e.network == ni) {
            let nh = nhs.id(NextHop::Endpoint(ei as EndpointIdx));
            for a in &e.ipv4 {
                add(IpAddr::V4(*a), 32, nh, RouteOrigin::Endpoint);
            }
            for a in &e.ipv6 {
                add(IpAddr::V6(*a), 128, nh, RouteOrigin::Endpoint);
            }
        }
        let local = nhs.id(NextHop::Local);
        let ll = link_local_from_mac(net.gateway_mac);
        for a in net.gateway_v4.iter() {
            add(IpAddr::V4(*a), 32, local, RouteOrigin::Local);
        }
        for a in net.gateway_v6.iter().chain(std::iter::once(&ll)) {
            add(IpAddr::V6(*a), 128, local, RouteOrigin::Local);
        }
        for u in spec.uplinks.iter().filter(|u| u.network == ni) {
            if let Some(a) = u.ipv4 {
                add(IpAddr::V4(a), 32, local, RouteOrigin::Local);
            }
            if let Some(a) = u.ipv6 {
                add(IpAddr::V6(a), 128, local, RouteOrigin::Local);
            }
        }
        let routes = effective_routes(&r4, &o4, &r6, &o6);
        let fib4 = Fib4::build(&r4).map_err(|e| format!("network {}: {e}", net.name))?;
        let fib6 = Fib6::build(&r6).map_err(|e| format!("network {}: {e}", net.name))?;
        let nh_adj = nhs
            .0
            .iter()
            .map(|nh| match *nh {
                NextHop::Endpoint(e) => e,
                NextHop::Gateway { port, vlan, mac, src_mac } => {
                    adjacencies.push(Adjacency::new(port, vlan, mac, src_mac, None));
                    (adjacencies.len() - 1) as AdjIdx
                }
                _ => AdjIdx::MAX,
            })
            .collect();
        vrfs.push(Vrf {
            name: net.name.clone(),
            id: net.id,
            mode: net.mode,
            fib4,
            fib6,
            next_hops: nhs.0.into(),
            nh_adj,
            routes,
            gateway_mac: net.gateway_mac,
            gateway_v4: net.gateway_v4,
            gateway_v6: net.gateway_v6,
            gateway_v6_ll: ll,
            subnets4: net.subnets4.clone().into(),
            dhcp: net.dhcp.clone(),
            dhcp_routes_option: match (&net.dhcp, net.gateway_v4) {
                (Some(d), Some(gw)) => super::classless_routes_option(&d.routes, gw).into(),
                _ => Box::new([]),
            },
            endpoints_by_mac: spec
                .endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| e.network == ni)
                .map(|(i, e)| (e.mac, i as EndpointIdx))
                .collect(),
            flow_limit: net.flow_limit.unwrap_or(u32::MAX),
        });
    }
    Ok(L3Tables {
        vrfs: vrfs.into(),
        endpoints: endpoints.into(),
        adjacencies: adjacencies.into(),
        port_role: port_role.into(),
        policy: Default::default(),
        stateful: false,
    })
}

/// The routes the FIBs hold: for each (prefix, length) the last one inserted (the FIB
/// build's rule), sorted by family, prefix and length.
fn effective_routes(r4: &[Route4], o4: &[RouteOrigin], r6: &[Route6], o6: &[RouteOrigin]) -> Box<[RouteEntry]> {
    let mut v4: std::collections::BTreeMap<(u32, u8), RouteEntry> = Default::default();
    for (r, o) in r4.iter().zip(o4) {
        v4.insert((u32::from(r.prefix), r.len), RouteEntry { prefix: IpAddr::V4(r.prefix), len: r.len, nh: r.nh, origin: *o });
    }
    let mut v6: std::collections::BTreeMap<(u128, u8), RouteEntry> = Default::default();
    for (r, o) in r6.iter().zip(o6) {
        v6.insert((u128::from(r.prefix), r.len), RouteEntry { prefix: IpAddr::V6(r.prefix), len: r.len, nh: r.nh, origin: *o });
    }
    v4.into_values().chain(v6.into_values()).collect()
}

fn resolve(nh: &NextHopSpec, nhs: &mut NextHops, spec: &L3Spec) -> Result<NextHopId, String> {
    Ok(match nh {
        NextHopSpec::Endpoint(e) => {
            if *e >= spec.endpoints.len() {
                return Err(format!("next hop: no endpoint {e}"));
            }
            nhs.id(NextHop::Endpoint(*e as EndpointIdx))
        }
        NextHopSpec::Gateway { port, vlan, mac, src_mac } => {
            nhs.id(NextHop::Gateway { port: *port, vlan: *vlan, mac: *mac, src_mac: *src_mac })
        }
        NextHopSpec::Network(n) => {
            if *n >= spec.networks.len() {
                return Err(format!("next hop: no network {n}"));
            }
            nhs.id(NextHop::Vrf(*n as VrfIdx))
        }
        NextHopSpec::Blackhole => nhs.id(NextHop::Blackhole),
        NextHopSpec::Ecmp(members) => {
            if members.is_empty() {
                return Err("ECMP group with no member".into());
            }
            let mut ids = Vec::with_capacity(members.len());
            for m in members {
                if matches!(m, NextHopSpec::Ecmp(_)) {
                    return Err("ECMP groups cannot nest".into());
                }
                ids.push(resolve(m, nhs, spec)?);
            }
            nhs.id(NextHop::Ecmp(ids.into()))
        }
    })
}

fn in_prefix4(a: Ipv4Addr, p: Ipv4Addr, len: u8) -> bool {
    len == 0 || (u32::from(a) ^ u32::from(p)) >> (32 - len.min(32) as u32) == 0
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{ip4, spec};
    use super::*;

    /// `Vrf::routes` is what the FIB holds: one entry per prefix, the last inserted wins
    /// (an endpoint's host route over a static route for the same /32), and every entry's
    /// next hop is the one the FIB returns for the prefix's address.
    #[test]
    fn route_list_matches_the_fib() {
        let mut s = spec();
        // A static /32 to a's address: replaced by a's host route.
        s.routes.push(RouteSpec { network: 0, prefix: IpAddr::V4(ip4("10.1.0.10")), len: 32, next_hop: NextHopSpec::Blackhole });
        let t = build_l3(8, &s).unwrap();
        let blue = &t.vrfs[0];
        let host: Vec<_> = blue.routes.iter().filter(|r| r.prefix == IpAddr::V4(ip4("10.1.0.10")) && r.len == 32).collect();
        assert_eq!(host.len(), 1, "one entry per prefix: {:?}", blue.routes);
        assert_eq!(host[0].origin, RouteOrigin::Endpoint);
        assert!(matches!(blue.next_hops[host[0].nh as usize], NextHop::Endpoint(_)));
        let def = blue.routes.iter().find(|r| r.len == 0 && r.prefix.is_ipv4()).expect("default route");
        assert_eq!(def.origin, RouteOrigin::Static);
        assert!(blue.routes.iter().any(|r| r.prefix == IpAddr::V4(ip4("10.1.0.1")) && r.origin == RouteOrigin::Local));
        for r in blue.routes.iter() {
            match r.prefix {
                IpAddr::V4(p) => assert_eq!(blue.fib4.lookup(u32::from(p)), Some(r.nh), "{r:?}"),
                IpAddr::V6(p) => assert_eq!(blue.fib6.lookup(u128::from(p)), Some(r.nh), "{r:?}"),
            }
        }
        let sorted = blue.routes.windows(2).all(|w| match (w[0].prefix, w[1].prefix) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (a, w[0].len) < (b, w[1].len),
            (IpAddr::V6(a), IpAddr::V6(b)) => (a, w[0].len) < (b, w[1].len),
            (IpAddr::V4(_), IpAddr::V6(_)) => true,
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        });
        assert!(sorted, "IPv4 first, then by prefix and length");
    }
}
