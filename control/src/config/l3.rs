//! Configuration of virtual networks: networks (VRFs), endpoints, routes and uplinks.
//! See docs/config.md. Validation names the key it rejects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use sluice_dataplane::wire::MacAddr;

use super::{Config, ConfigError};

/// A virtual network: one VRF.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub name: String,
    /// VRF id shown to operators; default: position in the list + 1.
    #[serde(default)]
    pub vrf: Option<u32>,
    #[serde(default)]
    pub mode: NetModeConfig,
    /// Bridged mode: the bridge whose VLAN `vlan` is this network's broadcast domain.
    #[serde(default)]
    pub bridge: Option<String>,
    /// Bridged mode: the VLAN in `bridge` (0: the bridge's untagged ports).
    #[serde(default)]
    pub vlan: u16,
    /// IPv4 and IPv6 subnets, `10.1.0.0/24`.
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub dhcp: DhcpConfig,
    /// Most connections of this network tracked at once (split evenly over the
    /// workers); new connections beyond it are dropped as `network_flow_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_flows: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum NetModeConfig {
    #[default]
    Routed,
    Bridged,
}

/// The network's gateway: sluice itself.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// Default: 02:5c:00 followed by the low 24 bits of the VRF id.
    pub mac: Option<String>,
}

/// The network's DHCPv4 server.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpConfig {
    pub enabled: bool,
    pub lease_s: u32,
    pub dns: Vec<Ipv4Addr>,
    /// IPv4 prefixes handed to endpoints as routes via the gateway (option 121).
    pub routes: Vec<String>,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig { enabled: true, lease_s: 86400, dns: Vec::new(), routes: Vec::new() }
    }
}

/// A workload attachment.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub name: String,
    pub network: String,
    pub port: String,
    /// 802.1Q VLAN of the endpoint on its port (absent: untagged).
    #[serde(default)]
    pub vlan: Option<u16>,
    pub mac: String,
    /// Its IPv4/IPv6 addresses (plain addresses, no prefix length).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// Extra source addresses allowed (VIPs, VRRP, nested workloads).
    #[serde(default)]
    pub allowed_address_pairs: Vec<AllowedPairConfig>,
    /// Kubernetes namespace, for network policy (default: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels for network policy (Kubernetes-style key/value).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Named ports (container ports) that NetworkPolicy rules may refer to by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<super::NamedPortConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AllowedPairConfig {
    /// An address or prefix, `10.9.0.0/16` or `10.1.0.99`.
    pub ip: String,
    /// Default: the endpoint's MAC.
    #[serde(default)]
    pub mac: Option<String>,
}

/// A route in a network.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub network: String,
    pub prefix: String,
    pub via: ViaConfig,
}

/// A route's next hop: exactly one of the keys.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ViaConfig {
    pub endpoint: Option<String>,
    /// A router's address, with `port` (an uplink) and its `mac`.
    pub gateway: Option<IpAddr>,
    pub port: Option<String>,
    pub mac: Option<String>,
    /// Continue the lookup in this network's VRF (explicit route leaking).
    pub network: Option<String>,
    pub blackhole: bool,
    /// Equal-cost next hops (gateways or endpoints), chosen per flow.
    pub ecmp: Vec<ViaConfig>,
}

/// A port's L3 role as an uplink into a network.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    pub network: String,
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Default: the device's MAC.
    #[serde(default)]
    pub mac: Option<String>,
}

/// Parses `a.b.c.d/len` or `x::/len` (or a plain address: a host prefix). Host bits
/// must be zero.
pub fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an IP prefix like 10.0.0.0/24"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
    };
    let host_bits_set = match addr {
        IpAddr::V4(a) => len < 32 && u32::from(a) << len != 0,
        IpAddr::V6(a) => len < 128 && u128::from(a) << len != 0,
    };
    if host_bits_set {
        return Err(format!("{s:?}: host bits set (did you mean the network address?)"));
    }
    Ok((addr, len))
}

/// A prefix in canonical text (`10.9.0.0/16`, `fd00::/64`); unparsable text as given.
pub fn canonical_prefix(s: &str) -> String {
    match parse_prefix(s) {
        Ok((a, l)) => format!("{a}/{l}"),
        Err(_) => s.to_string(),
    }
}

pub(crate) fn parse_mac(s: &str, at: impl Fn() -> String) -> Result<MacAddr, ConfigError> {
    let mac: MacAddr = s.parse().map_err(|e| ConfigError::new(at(), format!("{s:?}: {e}")))?;
    if !mac.is_valid_source() {
        return Err(ConfigError::new(at(), "must be a unicast, non-zero MAC"));
    }
    Ok(mac)
}

/// Whether a bridge port carries VLAN `vid`, and if so whether frames leave it tagged.
pub(crate) fn bridge_port_carries(bp: &super::BridgePortConfig, vid: u16) -> Option<bool> {
    match bp.vlan_mode {
        super::VlanModeConfig::Access => (bp.tag.unwrap_or(0) == vid).then_some(false),
        super::VlanModeConfig::Trunk => {
            if bp.native_vlan == Some(vid) {
                Some(false)
            } else {
                (vid != 0 && (bp.trunks.is_empty() || bp.trunks.contains(&vid))).then_some(true)
            }
        }
    }
}

fn e(path: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(path, msg)
}

fn contains(prefix: (IpAddr, u8), a: IpAddr) -> bool {
    match (prefix.0, a) {
        (IpAddr::V4(p), IpAddr::V4(a)) => prefix.1 == 0 || (u32::from(p) ^ u32::from(a)) >> (32 - prefix.1 as u32) == 0,
        (IpAddr::V6(p), IpAddr::V6(a)) => prefix.1 == 0 || (u128::from(p) ^ u128::from(a)) >> (128 - prefix.1 as u32) == 0,
        _ => false,
    }
}

impl Config {
    /// Validates networks, endpoints, routes and uplinks (called from `validate`).
    pub(crate) fn validate_l3(&self) -> Result<(), ConfigError> {
        let port_names: HashSet<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
        let bridged: HashSet<&str> = self.bridges.iter().flat_map(|b| b.ports.iter().map(|p| p.port.as_str())).collect();
        let mut nets = HashMap::new();
        let mut vrf_ids = HashSet::new();
        let mut bridged_domains = HashSet::new();
        for (i, n) in self.networks.iter().enumerate() {
            let at = |k: &str| format!("networks[{i}].{k}");
            if n.name.is_empty() || nets.insert(n.name.as_str(), i).is_some() {
                return Err(e(at("name"), format!("network name {:?} is empty or used twice", n.name)));
            }
            if n.max_flows == Some(0) {
                return Err(e(at("max_flows"), "at least 1 (leave it out for no limit)"));
            }
            let vrf = n.vrf.unwrap_or(i as u32 + 1);
            if !vrf_ids.insert(vrf) {
                return Err(e(at("vrf"), format!("VRF id {vrf} is used twice")));
            }
            match (n.mode, &n.bridge) {
                (NetModeConfig::Routed, Some(_)) => return Err(e(at("bridge"), "only for mode: bridged")),
                (NetModeConfig::Routed, None) if n.vlan != 0 => return Err(e(at("vlan"), "only for mode: bridged")),
                (NetModeConfig::Bridged, None) => return Err(e(at("bridge"), "a bridged network names its bridge")),
                (NetModeConfig::Bridged, Some(b)) => {
                    let Some(br) = self.bridges.iter().find(|x| x.name == *b) else {
                        return Err(e(at("bridge"), format!("no bridge named {b:?}")));
                    };
                    if !br.ports.iter().any(|bp| bridge_port_carries(bp, n.vlan).is_some()) {
                        return Err(e(at("vlan"), format!("no port of bridge {b} carries VLAN {}", n.vlan)));
                    }
                    if !bridged_domains.insert((b.as_str(), n.vlan)) {
                        return Err(e(at("vlan"), format!("VLAN {} of bridge {b} is already another network", n.vlan)));
                    }
                }
                (NetModeConfig::Routed, None) => {}
            }
            for (si, s) in n.subnets.iter().enumerate() {
                parse_prefix(s).map_err(|m| e(format!("networks[{i}].subnets[{si}]"), m))?;
            }
            if let Some(m) = &n.gateway.mac {
                parse_mac(m, || at("gateway.mac"))?;
            }
            if n.dhcp.enabled && n.dhcp.lease_s < 60 {
                return Err(e(at("dhcp.lease_s"), "at least 60 seconds"));
            }
            if n.dhcp.dns.len() > 3 {
                return Err(e(at("dhcp.dns"), "at most 3 DNS servers"));
            }
            for (ri, r) in n.dhcp.routes.iter().enumerate() {
                let at = format!("networks[{i}].dhcp.routes[{ri}]");
                match parse_prefix(r).map_err(|m| e(&at, m))? {
                    (IpAddr::V4(_), _) => {}
                    _ => return Err(e(at, "DHCPv4 routes are IPv4 prefixes")),
                }
            }
            if n.dhcp.routes.len() > 27 {
                return Err(e(at("dhcp.routes"), "at most 27 routes fit in DHCP option 121"));
            }
        }
        let mut uplinks = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let Some(u) = &p.uplink else { continue };
            let at = |k: &str| format!("ports[{i}].uplink.{k}");
            if !nets.contains_key(u.network.as_str()) {
                return Err(e(at("network"), format!("no network named {:?}", u.network)));
            }
            if bridged.contains(p.name.as_str()) {
                return Err(e(at("network"), format!("port {:?} is in a bridge; an uplink cannot be", p.name)));
            }
            if let Some(m) = &u.mac {
                parse_mac(m, || at("mac"))?;
            }
            if u.vlan.is_some_and(|v| !(1..=4094).contains(&v)) {
                return Err(e(at("vlan"), "a VLAN id between 1 and 4094"));
            }
            uplinks.insert(p.name.as_str());
        }
        let mut eps = HashMap::new();
        let mut macs = HashSet::new();
        let mut net_macs = HashSet::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            let at = |k: &str| format!("endpoints[{i}].{k}");
            if ep.name.is_empty() || eps.insert(ep.name.as_str(), i).is_some() {
                return Err(e(at("name"), format!("endpoint name {:?} is empty or used twice", ep.name)));
            }
            let Some(&ni) = nets.get(ep.network.as_str()) else {
                return Err(e(at("network"), format!("no network named {:?}", ep.network)));
            };
            if !port_names.contains(ep.port.as_str()) {
                return Err(e(at("port"), format!("no port named {:?}", ep.port)));
            }
            let net = &self.networks[ni];
            match &net.bridge {
                Some(b) if net.mode == NetModeConfig::Bridged => {
                    let carried = self
                        .bridges
                        .iter()
                        .filter(|x| x.name == *b)
                        .flat_map(|x| x.ports.iter())
                        .any(|bp| bp.port == ep.port && bridge_port_carries(bp, net.vlan).is_some());
                    if !carried {
                        return Err(e(at("port"), format!("port {:?} does not carry VLAN {} of bridge {b}", ep.port, net.vlan)));
                    }
                    if ep.vlan.is_some() {
                        return Err(e(at("vlan"), "in a bridged network the VLAN comes from the bridge port"));
                    }
                }
                _ => {
                    if bridged.contains(ep.port.as_str()) || uplinks.contains(ep.port.as_str()) {
                        return Err(e(at("port"), format!("port {:?} is a bridge port or an uplink", ep.port)));
                    }
                }
            }
            if ep.vlan.is_some_and(|v| !(1..=4094).contains(&v)) {
                return Err(e(at("vlan"), "a VLAN id between 1 and 4094"));
            }
            let mac = parse_mac(&ep.mac, || at("mac"))?;
            if !macs.insert((ep.port.as_str(), ep.vlan, mac)) || !net_macs.insert((ni, mac)) {
                return Err(e(at("mac"), "two endpoints with the same MAC on one port and VLAN, or in one network"));
            }
            let subnets: Vec<(IpAddr, u8)> = net.subnets.iter().filter_map(|s| parse_prefix(s).ok()).collect();
            for (ii, ip) in ep.ips.iter().enumerate() {
                if !subnets.iter().any(|s| contains(*s, *ip)) {
                    return Err(e(format!("endpoints[{i}].ips[{ii}]"), format!("{ip} is in no subnet of network {}", net.name)));
                }
                let is_gw = Some(*ip) == net.gateway.ipv4.map(IpAddr::V4) || Some(*ip) == net.gateway.ipv6.map(IpAddr::V6);
                if is_gw {
                    return Err(e(format!("endpoints[{i}].ips[{ii}]"), format!("{ip} is the network's gateway address")));
                }
            }
            for (pi, ap) in ep.allowed_address_pairs.iter().enumerate() {
                let at = |k: &str| format!("endpoints[{i}].allowed_address_pairs[{pi}].{k}");
                parse_prefix(&ap.ip).map_err(|m| e(at("ip"), m))?;
                if let Some(m) = &ap.mac {
                    parse_mac(m, || at("mac"))?;
                }
            }
        }
        // Addresses must be unique within a network (not across: tenants overlap).
        let mut seen: HashMap<(usize, IpAddr), &str> = HashMap::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            let ni = nets[ep.network.as_str()];
            for (ii, ip) in ep.ips.iter().enumerate() {
                if let Some(other) = seen.insert((ni, *ip), ep.name.as_str()) {
                    return Err(e(format!("endpoints[{i}].ips[{ii}]"), format!("{ip} is already endpoint {other:?}'s in network {}", ep.network)));
                }
            }
        }
        let mut routes_seen: HashMap<(&str, IpAddr, u8), usize> = HashMap::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = |k: &str| format!("routes[{i}].{k}");
            if !nets.contains_key(r.network.as_str()) {
                return Err(e(at("network"), format!("no network named {:?}", r.network)));
            }
            let (pfx, len) = parse_prefix(&r.prefix).map_err(|m| e(at("prefix"), m))?;
            if let Some(j) = routes_seen.insert((r.network.as_str(), pfx, len), i) {
                return Err(e(at("prefix"), format!("{pfx}/{len} in network {} is already routes[{j}]", r.network)));
            }
            self.validate_via(&r.via, &at("via"), pfx.is_ipv4(), &nets, &eps, &uplinks, true)?;
            if let Some(n) = &r.via.network {
                if *n == r.network {
                    return Err(e(at("via.network"), "a route cannot leak into its own network"));
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_via(
        &self,
        v: &ViaConfig,
        at: &str,
        v4: bool,
        nets: &HashMap<&str, usize>,
        eps: &HashMap<&str, usize>,
        uplinks: &HashSet<&str>,
        ecmp_ok: bool,
    ) -> Result<(), ConfigError> {
        let kinds = [v.endpoint.is_some(), v.gateway.is_some(), v.network.is_some(), v.blackhole, !v.ecmp.is_empty()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(e(at, "exactly one of endpoint, gateway, network, blackhole, ecmp"));
        }
        if let Some(ep) = &v.endpoint {
            if !eps.contains_key(ep.as_str()) {
                return Err(e(format!("{at}.endpoint"), format!("no endpoint named {ep:?}")));
            }
        }
        if let Some(gw) = v.gateway {
            if gw.is_ipv4() != v4 {
                return Err(e(format!("{at}.gateway"), "address family differs from the prefix"));
            }
            match &v.port {
                Some(p) if uplinks.contains(p.as_str()) => {}
                Some(p) => return Err(e(format!("{at}.port"), format!("{p:?} is not a port with an uplink"))),
                None => return Err(e(format!("{at}.port"), "a gateway needs the uplink port it is reached through")),
            }
            match &v.mac {
                Some(m) => {
                    parse_mac(m, || format!("{at}.mac"))?;
                }
                None => {
                    return Err(e(format!("{at}.mac"), "the gateway's MAC is needed (neighbor resolution of gateways is not implemented yet)"))
                }
            }
        } else {
            if v.port.is_some() {
                return Err(e(format!("{at}.port"), "only with gateway"));
            }
            if v.mac.is_some() {
                return Err(e(format!("{at}.mac"), "only with gateway"));
            }
        }
        if let Some(n) = &v.network {
            if !nets.contains_key(n.as_str()) {
                return Err(e(format!("{at}.network"), format!("no network named {n:?}")));
            }
        }
        if !v.ecmp.is_empty() {
            if !ecmp_ok {
                return Err(e(format!("{at}.ecmp"), "ECMP groups cannot nest"));
            }
            for (i, m) in v.ecmp.iter().enumerate() {
                let mat = format!("{at}.ecmp[{i}]");
                if m.network.is_some() || m.blackhole {
                    return Err(e(mat, "ECMP members are gateways or endpoints"));
                }
                self.validate_via(m, &mat, v4, nets, eps, uplinks, false)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_strictly() {
        assert_eq!(parse_prefix("10.1.0.0/24").unwrap(), ("10.1.0.0".parse().unwrap(), 24));
        assert_eq!(parse_prefix("0.0.0.0/0").unwrap().1, 0);
        assert_eq!(parse_prefix("fd00:1::/64").unwrap().1, 64);
        assert_eq!(parse_prefix("10.1.0.9").unwrap().1, 32);
        assert!(parse_prefix("10.1.0.1/24").unwrap_err().contains("host bits"));
        assert!(parse_prefix("10.1.0.0/33").is_err());
        assert!(parse_prefix("fd00::/129").is_err());
        assert!(parse_prefix("10.1.0/24").is_err());
        assert!(parse_prefix("nope").is_err());
    }
}
