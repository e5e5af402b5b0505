//! Builds [`L2Tables`] from bridges described port by port: numbers the bridge domains,
//! resolves every port's VLAN mode to domains and precomputes flood lists.
//!
//! Control calls this when it compiles a configuration; tests and benches call it
//! directly. Errors are plain strings naming what is wrong; control prefixes the path.

use std::collections::BTreeMap;

use super::{BridgeInfo, Domain, DomainId, L2Tables, Member, PortVlan, StaticMac, NO_DOMAIN};
use crate::tables::PortIdx;
use crate::wire::MacAddr;

/// Highest usable VLAN id (4095 is reserved).
pub const MAX_VID: u16 = 4094;

/// How a bridge port handles 802.1Q tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged frames in VLAN `vid` (0 means "no VLAN": a plain learning bridge port).
    Access(u16),
    /// Tagged frames of `allowed` VLANs (empty: every VLAN 1..=4094); untagged frames
    /// belong to `native` if set (and leave untagged when in the native VLAN).
    Trunk { allowed: Vec<u16>, native: Option<u16> },
}

/// One bridge: its ports with their VLAN modes, its table limits and static MACs.
#[derive(Clone, Debug)]
pub struct BridgeSpec {
    pub name: String,
    pub mac_table_size: u32,
    pub mac_aging_ms: u64,
    pub ports: Vec<(PortIdx, VlanMode)>,
    /// (MAC, VLAN, port).
    pub static_macs: Vec<(MacAddr, u16, PortIdx)>,
}

/// Builds the L2 tables for `n_ports` ports and `bridges`. A port in no bridge is
/// unbridged; a port in two bridges is an error.
pub fn build_l2(n_ports: usize, bridges: &[BridgeSpec]) -> Result<L2Tables, String> {
    let mut port_vlan: Vec<PortVlan> = vec![PortVlan::Unbridged; n_ports];
    let mut owner: Vec<Option<&str>> = vec![None; n_ports];
    let mut domains: Vec<Domain> = Vec::new();
    let mut infos = Vec::with_capacity(bridges.len());
    if bridges.len() > u16::MAX as usize {
        return Err("too many bridges".into());
    }

    for (bi, b) in bridges.iter().enumerate() {
        // VLAN -> members, in port order.
        let mut vlans: BTreeMap<u16, Vec<Member>> = BTreeMap::new();
        for (port, mode) in &b.ports {
            let p = *port as usize;
            if p >= n_ports {
                return Err(format!("bridge {}: port index {p} out of range", b.name));
            }
            if let Some(other) = owner[p] {
                return Err(format!("port index {p} is in two bridges ({other} and {})", b.name));
            }
            owner[p] = Some(&b.name);
            match mode {
                VlanMode::Access(vid) => {
                    check_vid(*vid, true)?;
                    vlans.entry(*vid).or_default().push(Member { port: *port, tagged: false });
                }
                VlanMode::Trunk { allowed, native } => {
                    let mut set = [false; 4096];
                    if allowed.is_empty() {
                        set[1..=MAX_VID as usize].iter_mut().for_each(|v| *v = true);
                    }
                    for v in allowed {
                        check_vid(*v, false)?;
                        set[*v as usize] = true;
                    }
                    if let Some(n) = native {
                        check_vid(*n, false)?;
                        set[*n as usize] = true;
                    }
                    for (vid, on) in set.iter().enumerate() {
                        if *on {
                            let tagged = *native != Some(vid as u16);
                            vlans.entry(vid as u16).or_default().push(Member { port: *port, tagged });
                        }
                    }
                }
            }
        }
        // Number this bridge's domains and point the ports at them.
        let mut by_vid: BTreeMap<u16, DomainId> = BTreeMap::new();
        for (vid, members) in vlans {
            let id = domains.len() as DomainId;
            if id >= u16::MAX as DomainId {
                return Err("more than 65535 bridge domains (bridges x VLANs)".into());
            }
            by_vid.insert(vid, id);
            domains.push(Domain { bridge: bi as u16, vid, members: members.into(), gateway: None });
        }
        for (port, mode) in &b.ports {
            port_vlan[*port as usize] = match mode {
                VlanMode::Access(vid) => PortVlan::Access { vid: *vid, domain: by_vid[vid] },
                VlanMode::Trunk { native, .. } => {
                    let mut table = Box::new([NO_DOMAIN; 4096]);
                    for (vid, id) in &by_vid {
                        let carried = domains[*id as usize].members.iter().any(|m| m.port == *port);
                        if carried {
                            table[*vid as usize] = *id;
                        }
                    }
                    PortVlan::Trunk { native: *native, domains: table }
                }
            };
        }
        let mut statics = Vec::with_capacity(b.static_macs.len());
        for (mac, vid, port) in &b.static_macs {
            if !mac.is_valid_source() {
                return Err(format!("bridge {}: static MAC {mac} is multicast or zero", b.name));
            }
            let Some(&domain) = by_vid.get(vid) else {
                return Err(format!("bridge {}: static MAC {mac}: no port carries VLAN {vid}", b.name));
            };
            if !domains[domain as usize].members.iter().any(|m| m.port == *port) {
                return Err(format!("bridge {}: static MAC {mac}: port index {port} does not carry VLAN {vid}", b.name));
            }
            statics.push(StaticMac { domain, mac: *mac, port: *port });
        }
        infos.push(BridgeInfo {
            name: b.name.clone(),
            mac_table_size: b.mac_table_size,
            mac_aging_ms: b.mac_aging_ms,
            static_macs: statics.into(),
        });
    }
    Ok(L2Tables { port_vlan: port_vlan.into(), domains: domains.into(), bridges: infos.into() })
}

fn check_vid(vid: u16, zero_ok: bool) -> Result<(), String> {
    if vid > MAX_VID || (vid == 0 && !zero_ok) {
        return Err(format!("VLAN {vid} out of range (1..=4094)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ports: Vec<(PortIdx, VlanMode)>) -> BridgeSpec {
        BridgeSpec { name: "br0".into(), mac_table_size: 8, mac_aging_ms: 1000, ports, static_macs: vec![] }
    }

    #[test]
    fn access_and_trunk_resolve_to_shared_domains() {
        let t = build_l2(
            4,
            &[spec(vec![
                (0, VlanMode::Access(10)),
                (1, VlanMode::Access(20)),
                (2, VlanMode::Trunk { allowed: vec![10, 20], native: Some(20) }),
            ])],
        )
        .unwrap();
        assert_eq!(t.domains.len(), 2);
        let d10 = t.ingress_domain(0, None).unwrap();
        assert_eq!(t.ingress_domain(2, Some(10)).unwrap(), d10);
        assert_eq!(t.ingress_domain(2, None).unwrap(), t.ingress_domain(1, None).unwrap());
        let m = &t.domains[d10 as usize].members;
        assert_eq!(&m[..], &[Member { port: 0, tagged: false }, Member { port: 2, tagged: true }]);
        let d20 = t.ingress_domain(1, None).unwrap();
        assert!(t.domains[d20 as usize].members.contains(&Member { port: 2, tagged: false }), "native leaves untagged");
        assert!(matches!(t.port_vlan[3], PortVlan::Unbridged));
    }

    #[test]
    fn egress_tagging_agrees_with_member_lists() {
        let t = build_l2(
            4,
            &[spec(vec![
                (0, VlanMode::Access(10)),
                (1, VlanMode::Trunk { allowed: vec![10, 20, 30], native: Some(20) }),
                (2, VlanMode::Trunk { allowed: vec![], native: None }),
                (3, VlanMode::Access(0)),
            ])],
        )
        .unwrap();
        for d in t.domains.iter() {
            for port in 0..4u16 {
                let member = d.members.iter().find(|m| m.port == port).map(|m| m.tagged);
                assert_eq!(t.egress_tagged(port, d.vid), member, "port {port} vid {}", d.vid);
            }
        }
        assert_eq!(t.egress_tagged(9, 10), None);
    }

    #[test]
    fn empty_allow_list_means_every_vlan() {
        let t = build_l2(2, &[spec(vec![(0, VlanMode::Trunk { allowed: vec![], native: None }), (1, VlanMode::Access(7))])]).unwrap();
        assert_eq!(t.domains.len(), 4094);
        assert!(t.ingress_domain(0, Some(4094)).is_ok());
        assert_eq!(t.ingress_domain(0, Some(7)).unwrap(), t.ingress_domain(1, None).unwrap());
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(build_l2(2, &[spec(vec![(0, VlanMode::Access(4095))])]).unwrap_err().contains("4095"));
        assert!(build_l2(2, &[spec(vec![(5, VlanMode::Access(1))])]).unwrap_err().contains("out of range"));
        let two = [spec(vec![(0, VlanMode::Access(1))]), spec(vec![(0, VlanMode::Access(1))])];
        assert!(build_l2(2, &two).unwrap_err().contains("two bridges"));
        let mut s = spec(vec![(0, VlanMode::Access(1)), (1, VlanMode::Access(2))]);
        s.static_macs = vec![(MacAddr([2, 0, 0, 0, 0, 1]), 1, 1)];
        assert!(build_l2(2, &[s.clone()]).unwrap_err().contains("does not carry"));
        s.static_macs = vec![(MacAddr([1, 0, 0, 0, 0, 1]), 1, 0)];
        assert!(build_l2(2, &[s]).unwrap_err().contains("multicast"));
    }
}
