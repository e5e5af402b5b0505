//! Turns a validated [`Config`] into what the daemon does: EAL arguments, the mempool
//! size, per-port queue counts, which worker polls which queue, and the L2 tables.
//! Pure: no DPDK here, so every decision is unit-tested.
//!
//! While running, each apply plans from the previous plan ([`Plan::next`]): a port that
//! stays keeps its slot ([`PortIdx`]) and its queues stay with the workers that poll
//! them (an rx queue never moves between workers: two threads would poll it during the
//! switch-over); a new port takes the lowest slot free before this apply (a slot freed by
//! this apply is reused only by a later one, after the removal completed), and its rx
//! queues go to the workers with the fewest.

use std::net::IpAddr;

use sluice_dataplane::l2::{build_l2, BridgeSpec, L2Tables, VlanMode};
use sluice_dataplane::l3::{
    build_l3, AllowedPair, AllowedPrefix, DhcpServer, EndpointSpec, L3Spec, NetMode, NetworkSpec, NextHopSpec, RouteSpec,
    UplinkSpec,
};
use sluice_dataplane::flow::FlowConfig;
use sluice_dataplane::policy::{PolicySpec, PolicyTables};
use sluice_dataplane::tables::{IoMap, PortEntry, PortIdx, RxAssign, Tables, WorkerIo, MAX_PORTS};
use sluice_dataplane::wire::MacAddr;
use sluice_dataplane::worker::{RX_BURST, TX_BUFFER};

use crate::config::{bridge_port_carries, parse_prefix, Config, ConfigError, NetModeConfig, ViaConfig, VlanModeConfig};

/// One port as the daemon opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    pub name: String,
    /// The port's slot: its index in the published tables and per-port counters.
    pub idx: PortIdx,
    /// DPDK device name (vdev name or PCI address) to look the port up by.
    pub device: String,
    /// What to hot-plug it with (`rte_dev_probe`): the devargs, or the PCI address with
    /// its arguments.
    pub devargs: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: Option<u16>,
    pub promiscuous: bool,
}

/// Which worker polls which (port, queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlan {
    pub core: usize,
    pub rx: Vec<(PortIdx, u16)>,
}

/// Everything the daemon needs, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub eal_args: Vec<String>,
    pub mbufs: u32,
    pub cache_size: u32,
    pub data_room: u16,
    /// In configuration order.
    pub ports: Vec<PortPlan>,
    pub workers: Vec<WorkerPlan>,
    /// By slot (empty slots: default entries).
    port_entries: Vec<PortEntry>,
    l2: L2Tables,
    /// L3 with placeholder uplink MACs; [`Plan::tables`] fills in the devices' MACs.
    l3: L3Spec,
    /// Uplink MAC given in the configuration, by slot (None: use the device's).
    uplink_mac: Vec<Option<MacAddr>>,
    /// The policy model, compiled into each published snapshot.
    policy: PolicySpec,
    /// Each worker's flow table.
    pub flows: FlowConfig,
    /// `flows.track: always`: track connections even without any policy.
    track_always: bool,
    /// Slots of removed ports whose removal no worker-acknowledgement confirmed (bit per
    /// slot): never reused, since a stale worker might still count on them.
    pub quarantined: u32,
}

impl Plan {
    /// Resolves `cfg` (already validated). Fails only on what needs the whole picture,
    /// naming the key.
    pub fn new(cfg: &Config) -> Result<Plan, ConfigError> {
        Self::with_tables(cfg, &vec![MacAddr([2, 0, 0, 0, 0, 1]); cfg.ports.len()]).map(|(p, _)| p)
    }

    /// [`Plan::new`] and the tables it publishes for ports with `device_macs` (by slot;
    /// at start slot = position), built once (an apply of 10k rules compiles them once,
    /// not once to check and once to publish). The tables' I/O map is left empty: see
    /// [`Plan::io_map`].
    pub fn with_tables(cfg: &Config, device_macs: &[MacAddr]) -> Result<(Plan, Tables), ConfigError> {
        Self::build(cfg, None, device_macs)
    }

    /// The plan for `cfg` applied over the running `prev`: ports that stay keep their
    /// slots and queue owners, new ones get free slots and the least-loaded workers
    /// (see the module doc). `device_macs` by slot.
    pub fn next(cfg: &Config, prev: &Plan, device_macs: &[MacAddr]) -> Result<(Plan, Tables), ConfigError> {
        Self::build(cfg, Some(prev), device_macs)
    }

    fn build(cfg: &Config, prev: Option<&Plan>, device_macs: &[MacAddr]) -> Result<(Plan, Tables), ConfigError> {
        let n_workers = cfg.workers.cores.len();
        let mut ports = Vec::with_capacity(cfg.ports.len());
        // Every slot the previous plan used stays taken in this one.
        let mut taken = [false; MAX_PORTS];
        for p in prev.iter().flat_map(|p| &p.ports) {
            if let Some(t) = taken.get_mut(p.idx as usize) {
                *t = true;
            }
        }
        let quarantined = prev.map_or(0, |p| p.quarantined);
        for (slot, t) in taken.iter_mut().enumerate() {
            *t |= quarantined & (1 << slot) != 0;
        }
        for (i, p) in cfg.ports.iter().enumerate() {
            let (device, devargs) = match (&p.devargs, &p.pci) {
                (Some(d), _) => (d.split(',').next().unwrap_or_default().to_string(), d.clone()),
                (_, Some(pci)) => (pci.split(',').next().unwrap_or_default().to_string(), pci.clone()),
                _ => unreachable!("validated: devargs or pci"),
            };
            let kept = prev.and_then(|pp| pp.ports.iter().find(|x| x.name == p.name));
            let idx = match kept {
                Some(k) => k.idx,
                None => {
                    let free = taken.iter().position(|t| !t).ok_or_else(|| {
                        ConfigError::new(
                            format!("ports[{i}]"),
                            format!("at most {MAX_PORTS} ports (a slot freed by an apply is reused by the next one)"),
                        )
                    })?;
                    taken[free] = true;
                    free as PortIdx
                }
            };
            let rx_queues = if !p.rx {
                0
            } else if p.rx_queues == 0 {
                n_workers as u16
            } else {
                p.rx_queues
            };
            ports.push(PortPlan {
                name: p.name.clone(),
                idx,
                device,
                devargs,
                rx_queues,
                tx_queues: n_workers as u16,
                rx_desc: p.rx_desc,
                tx_desc: p.tx_desc,
                mtu: p.set_device_mtu.then_some(p.mtu),
                promiscuous: p.promiscuous,
            });
        }

        let mut workers: Vec<WorkerPlan> =
            cfg.workers.cores.iter().map(|&core| WorkerPlan { core, rx: Vec::new() }).collect();
        match prev {
            None => {
                // Spread every rx queue over the workers round-robin, port by port,
                // continuing the rotation across ports so single-queue ports do not all
                // land on worker 0.
                let mut next = 0usize;
                for p in &ports {
                    for q in 0..p.rx_queues {
                        workers[next % n_workers].rx.push((p.idx, q));
                        next += 1;
                    }
                }
            }
            Some(pp) => {
                // Queues of ports that stay stay where they are; a new port's queues go
                // to the worker with the fewest, one by one.
                let stays = |slot: PortIdx| ports.iter().any(|p| p.idx == slot && pp.ports.iter().any(|o| o.idx == slot && o.name == p.name));
                for (w, old) in workers.iter_mut().zip(&pp.workers) {
                    w.rx = old.rx.iter().copied().filter(|&(slot, _)| stays(slot)).collect();
                }
                for p in ports.iter().filter(|p| !stays(p.idx)) {
                    for q in 0..p.rx_queues {
                        if let Some(w) = workers.iter_mut().min_by_key(|w| w.rx.len()) {
                            w.rx.push((p.idx, q));
                        }
                    }
                }
            }
        }

        let mbufs = match prev {
            // The pool is made once, at start.
            Some(pp) => pp.mbufs,
            None if cfg.mempool.mbufs != 0 => cfg.mempool.mbufs,
            None => auto_mbufs(&ports, n_workers, cfg.mempool.cache_size),
        };

        let n_slots = ports.iter().map(|p| p.idx as usize + 1).max().unwrap_or(0);
        let slot_of = |name: &str| ports.iter().find(|p| p.name == name).map(|p| p.idx);
        let mut port_entries = vec![PortEntry::default(); n_slots];
        let mut uplink_mac = vec![None; n_slots];
        for (p, pp) in cfg.ports.iter().zip(&ports) {
            port_entries[pp.idx as usize] = PortEntry { name: p.name.clone(), max_frame_len: p.mtu as u32 + 14 };
            uplink_mac[pp.idx as usize] = p.uplink.as_ref().and_then(|u| u.mac.as_ref()).and_then(|m| m.parse().ok());
        }
        let mut l2 = build_l2(n_slots, &bridge_specs(cfg, &slot_of)?).map_err(|m| ConfigError::new("bridges", m))?;
        // A bridged network's gateway sits in its bridge domain.
        for (ni, n) in cfg.networks.iter().enumerate() {
            if let (NetModeConfig::Bridged, Some(b)) = (n.mode, &n.bridge) {
                let d = l2
                    .domain_of(b, n.vlan)
                    .ok_or_else(|| ConfigError::new(format!("networks[{ni}].vlan"), "not a VLAN of the bridge"))?;
                let mut domains = l2.domains.to_vec();
                domains[d as usize].gateway = Some(ni as u16);
                l2.domains = domains.into();
            }
        }
        let l3 = l3_spec(cfg, &slot_of)?;
        let plan = Plan {
            eal_args: eal_args(cfg, mbufs),
            mbufs,
            cache_size: cfg.mempool.cache_size,
            data_room: cfg.mempool.data_room,
            ports,
            workers,
            port_entries,
            l2,
            l3,
            uplink_mac,
            policy: cfg.policy_spec()?,
            flows: cfg.flows.flow_config(),
            track_always: cfg.flows.track == "always",
            quarantined,
        };
        // Built now so every L3 and policy error shows before DPDK starts.
        let tables = plan.tables(device_macs)?;
        Ok((plan, tables))
    }

    /// Which queues each worker polls and sends on, given each slot's DPDK port id
    /// (`None`: not open).
    pub fn io_map(&self, dev_of: &dyn Fn(PortIdx) -> Option<u16>) -> IoMap {
        let n_slots = self.port_entries.len();
        let mut tx = vec![None; n_slots];
        for p in &self.ports {
            tx[p.idx as usize] = dev_of(p.idx);
        }
        let tx: Box<[Option<u16>]> = tx.into();
        IoMap {
            workers: self
                .workers
                .iter()
                .map(|w| WorkerIo {
                    rx: w
                        .rx
                        .iter()
                        .filter_map(|&(port, queue)| Some(RxAssign { port, dev: dev_of(port)?, queue }))
                        .collect(),
                    tx: tx.clone(),
                })
                .collect(),
        }
    }

    /// The tables to publish, given each port's device MAC (by slot). Their I/O map is
    /// empty: fill it with [`Plan::io_map`].
    pub fn tables(&self, device_macs: &[MacAddr]) -> Result<Tables, ConfigError> {
        let mac_of = |port: PortIdx| {
            self.uplink_mac
                .get(port as usize)
                .copied()
                .flatten()
                .unwrap_or_else(|| device_macs.get(port as usize).copied().unwrap_or_default())
        };
        let mut l3 = self.l3.clone();
        for u in &mut l3.uplinks {
            u.mac = mac_of(u.port);
        }
        fn fix(nh: &mut NextHopSpec, mac_of: &dyn Fn(PortIdx) -> MacAddr) {
            match nh {
                NextHopSpec::Gateway { port, src_mac, .. } => *src_mac = mac_of(*port),
                NextHopSpec::Ecmp(members) => members.iter_mut().for_each(|m| fix(m, mac_of)),
                _ => {}
            }
        }
        for r in &mut l3.routes {
            fix(&mut r.next_hop, &mac_of);
        }
        let mut l3 = build_l3(self.port_entries.len(), &l3).map_err(|m| ConfigError::new("routes", m))?;
        l3.policy = PolicyTables::compile(&self.policy).map_err(|m| ConfigError::new("network_policies", m.to_string()))?;
        l3.stateful = self.track_always || !l3.policy.is_empty();
        Ok(Tables { epoch: 0, l2_epoch: 0, ports: self.port_entries.clone().into(), l2: self.l2.clone(), l3, io: IoMap::default() })
    }
}

/// The gateway MAC of a network without one configured: 02:5c:00 + low 24 bits of the VRF id.
pub fn default_gateway_mac(vrf: u32) -> MacAddr {
    let v = vrf.to_be_bytes();
    MacAddr([0x02, 0x5c, 0x00, v[1], v[2], v[3]])
}

/// Resolves networks, endpoints, uplinks and routes (already validated) to indices.
fn l3_spec(cfg: &Config, slot_of: &dyn Fn(&str) -> Option<PortIdx>) -> Result<L3Spec, ConfigError> {
    let port = |name: &str| slot_of(name);
    let net = |name: &str| cfg.networks.iter().position(|n| n.name == name);
    let endpoint = |name: &str| cfg.endpoints.iter().position(|e| e.name == name);
    let mut spec = L3Spec::default();
    for (i, n) in cfg.networks.iter().enumerate() {
        let id = n.vrf.unwrap_or(i as u32 + 1);
        let (mut subnets4, mut subnets6) = (Vec::new(), Vec::new());
        for s in &n.subnets {
            match parse_prefix(s).map_err(|m| ConfigError::new(format!("networks[{i}].subnets"), m))? {
                (IpAddr::V4(a), l) => subnets4.push((a, l)),
                (IpAddr::V6(a), l) => subnets6.push((a, l)),
            }
        }
        spec.networks.push(NetworkSpec {
            name: n.name.clone(),
            id,
            mode: match n.mode {
                NetModeConfig::Routed => NetMode::Routed,
                NetModeConfig::Bridged => NetMode::Bridged,
            },
            subnets4,
            subnets6,
            gateway_mac: n.gateway.mac.as_ref().and_then(|m| m.parse().ok()).unwrap_or_else(|| default_gateway_mac(id)),
            gateway_v4: n.gateway.ipv4,
            gateway_v6: n.gateway.ipv6,
            flow_limit: n.max_flows.map(|m| m.div_ceil(cfg.workers.cores.len().max(1) as u32)),
            dhcp: n.dhcp.enabled.then(|| DhcpServer {
                lease_s: n.dhcp.lease_s,
                dns: n.dhcp.dns.clone().into(),
                routes: n
                    .dhcp
                    .routes
                    .iter()
                    .filter_map(|r| match parse_prefix(r) {
                        Ok((IpAddr::V4(a), l)) => Some((a, l)),
                        _ => None,
                    })
                    .collect(),
            }),
        });
    }
    for e in &cfg.endpoints {
        let mac: MacAddr = e.mac.parse().unwrap_or_default();
        let mut allowed = Vec::new();
        for ap in &e.allowed_address_pairs {
            let (a, l) = parse_prefix(&ap.ip).map_err(|m| ConfigError::new("endpoints", m))?;
            let prefix = match a {
                IpAddr::V4(a) => AllowedPrefix::V4(u32::from(a), l),
                IpAddr::V6(a) => AllowedPrefix::V6(u128::from(a), l),
            };
            allowed.push(AllowedPair { prefix, mac: ap.mac.as_ref().and_then(|m| m.parse().ok()) });
        }
        let ni = net(&e.network).unwrap_or_default();
        let network = &cfg.networks[ni];
        // In a bridged network the endpoint's tag is its bridge port's, for the network's VLAN.
        let vlan = match (&network.mode, &network.bridge) {
            (NetModeConfig::Bridged, Some(b)) => {
                let tagged = cfg
                    .bridges
                    .iter()
                    .filter(|x| x.name == *b)
                    .flat_map(|x| x.ports.iter())
                    .find(|bp| bp.port == e.port)
                    .and_then(|bp| bridge_port_carries(bp, network.vlan));
                (tagged == Some(true)).then_some(network.vlan)
            }
            _ => e.vlan,
        };
        spec.endpoints.push(EndpointSpec {
            name: e.name.clone(),
            network: ni,
            port: port(&e.port).unwrap_or_default(),
            vlan,
            mac,
            ipv4: e.ips.iter().filter_map(|a| if let IpAddr::V4(a) = a { Some(*a) } else { None }).collect(),
            ipv6: e.ips.iter().filter_map(|a| if let IpAddr::V6(a) = a { Some(*a) } else { None }).collect(),
            allowed,
        });
    }
    for p in &cfg.ports {
        if let Some(u) = &p.uplink {
            spec.uplinks.push(UplinkSpec {
                port: port(&p.name).unwrap_or_default(),
                network: net(&u.network).unwrap_or_default(),
                mac: MacAddr::ZERO,
                vlan: u.vlan,
                ipv4: u.ipv4,
                ipv6: u.ipv6,
            });
        }
    }
    fn via(v: &ViaConfig, port: &dyn Fn(&str) -> Option<PortIdx>, net: &dyn Fn(&str) -> Option<usize>, endpoint: &dyn Fn(&str) -> Option<usize>, cfg: &Config) -> NextHopSpec {
        if let Some(e) = &v.endpoint {
            return NextHopSpec::Endpoint(endpoint(e).unwrap_or_default());
        }
        if v.gateway.is_some() {
            let p = v.port.as_deref().and_then(port).unwrap_or_default();
            let vlan = cfg.ports.iter().find(|x| Some(x.name.as_str()) == v.port.as_deref()).and_then(|x| x.uplink.as_ref()).and_then(|u| u.vlan);
            let mac = v.mac.as_ref().and_then(|m| m.parse().ok()).unwrap_or_default();
            return NextHopSpec::Gateway { port: p, vlan, mac, src_mac: MacAddr::ZERO };
        }
        if let Some(n) = &v.network {
            return NextHopSpec::Network(net(n).unwrap_or_default());
        }
        if !v.ecmp.is_empty() {
            return NextHopSpec::Ecmp(v.ecmp.iter().map(|m| via(m, port, net, endpoint, cfg)).collect());
        }
        NextHopSpec::Blackhole
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        let (prefix, len) = parse_prefix(&r.prefix).map_err(|m| ConfigError::new(format!("routes[{i}].prefix"), m))?;
        spec.routes.push(RouteSpec {
            network: net(&r.network).unwrap_or_default(),
            prefix,
            len,
            next_hop: via(&r.via, &port, &net, &endpoint, cfg),
        });
    }
    Ok(spec)
}

/// Enough mbufs to fill every rx and tx ring, every worker's bursts, buffers and cache,
/// plus room for flood copies in flight; rounded to 2^n - 1 (DPDK's best pool size).
fn auto_mbufs(ports: &[PortPlan], n_workers: usize, cache: u32) -> u32 {
    let rings: u64 = ports
        .iter()
        .map(|p| p.rx_queues as u64 * p.rx_desc as u64 + p.tx_queues as u64 * p.tx_desc as u64)
        .sum();
    let per_worker = (RX_BURST + TX_BUFFER * ports.len()) as u64 + cache as u64 * 3 / 2;
    let need = rings + per_worker * n_workers as u64 + 2048;
    let pow = need.next_power_of_two().max(4096);
    (pow.min(1 << 22) - 1) as u32
}

fn eal_args(cfg: &Config, mbufs: u32) -> Vec<String> {
    let d = &cfg.dpdk;
    let mut a: Vec<String> = vec!["sluice".into()];
    let main = cfg.main_core.unwrap_or_else(|| {
        // The lowest CPU no worker uses; with every CPU taken, share CPU 0.
        let ncpu = crate::config::cpu_count();
        (0..ncpu).find(|c| !cfg.workers.cores.contains(c)).unwrap_or(0)
    });
    a.extend(["-l".into(), main.to_string()]);
    let memory_mb = if d.memory_mb != 0 {
        d.memory_mb
    } else {
        // Mbufs (~2.4 KiB each with headers) twice over, plus ring and driver overhead.
        let pool_mb = (mbufs as u64 * (cfg.mempool.data_room as u64 + 384) / (1 << 20)) as u32;
        (pool_mb * 2 + 128).max(256)
    };
    if d.no_huge {
        a.extend(["--no-huge".into(), "-m".into(), memory_mb.to_string()]);
        if d.file_prefix.is_empty() {
            a.push("--no-shconf".into());
        }
    } else if d.file_prefix.is_empty() {
        a.push("--in-memory".into());
    }
    if !d.file_prefix.is_empty() {
        a.extend(["--file-prefix".into(), d.file_prefix.clone()]);
    }
    let mut any_pci = false;
    for p in &cfg.ports {
        if let Some(v) = &p.devargs {
            a.extend(["--vdev".into(), v.clone()]);
        }
        if let Some(pci) = &p.pci {
            a.extend(["-a".into(), pci.clone()]);
            any_pci = true;
        }
    }
    if !any_pci {
        a.push("--no-pci".into());
    }
    a.extend(["--log-level".into(), d.log_level.clone()]);
    a.extend(d.extra_args.iter().cloned());
    a
}

fn bridge_specs(cfg: &Config, slot_of: &dyn Fn(&str) -> Option<PortIdx>) -> Result<Vec<BridgeSpec>, ConfigError> {
    let index = |name: &str| slot_of(name);
    let mut specs = Vec::with_capacity(cfg.bridges.len());
    for (bi, b) in cfg.bridges.iter().enumerate() {
        let mut ports = Vec::with_capacity(b.ports.len());
        for (pi, bp) in b.ports.iter().enumerate() {
            let idx = index(&bp.port)
                .ok_or_else(|| ConfigError::new(format!("bridges[{bi}].ports[{pi}].port"), "unknown port"))?;
            let mode = match bp.vlan_mode {
                VlanModeConfig::Access => VlanMode::Access(bp.tag.unwrap_or(0)),
                VlanModeConfig::Trunk => VlanMode::Trunk { allowed: bp.trunks.clone(), native: bp.native_vlan },
            };
            ports.push((idx, mode));
        }
        let mut statics = Vec::with_capacity(b.static_macs.len());
        for (si, s) in b.static_macs.iter().enumerate() {
            let at = |k: &str| format!("bridges[{bi}].static_macs[{si}].{k}");
            let mac = s.mac.parse().map_err(|_| ConfigError::new(at("mac"), "not a MAC address"))?;
            let port = index(&s.port).ok_or_else(|| ConfigError::new(at("port"), "unknown port"))?;
            let carried = b.ports.iter().any(|bp| {
                bp.port == s.port
                    && match bp.vlan_mode {
                        VlanModeConfig::Access => bp.tag.unwrap_or(0) == s.vlan,
                        VlanModeConfig::Trunk => {
                            (bp.trunks.is_empty() && s.vlan != 0) || bp.trunks.contains(&s.vlan) || bp.native_vlan == Some(s.vlan)
                        }
                    }
            });
            if !carried {
                return Err(ConfigError::new(at("vlan"), format!("port {:?} does not carry VLAN {}", s.port, s.vlan)));
            }
            statics.push((mac, s.vlan, port));
        }
        specs.push(BridgeSpec {
            name: b.name.clone(),
            mac_table_size: b.mac_table_size,
            mac_aging_ms: b.mac_aging_s as u64 * 1000,
            ports,
            static_macs: statics,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        Config::from_yaml(&format!(
            "workers: {{cores: [0, 1]}}\nports:\n  - {{name: a, devargs: net_null0}}\n  - {{name: b, devargs: 'net_pcap0,rx_pcap=x.pcap', rx_queues: 1}}\n  - {{name: c, devargs: net_null1, rx: false}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn queues_spread_over_workers_and_tx_queue_per_worker() {
        let p = Plan::new(&cfg("")).unwrap();
        assert_eq!(p.ports.iter().map(|p| (p.rx_queues, p.tx_queues)).collect::<Vec<_>>(), vec![(2, 2), (1, 2), (0, 2)]);
        assert_eq!(p.workers[0].rx, vec![(0, 0), (1, 0)]);
        assert_eq!(p.workers[1].rx, vec![(0, 1)]);
        assert_eq!(p.ports[1].device, "net_pcap0");
    }

    #[test]
    fn eal_args_carry_devices_memory_mode_and_no_pci() {
        let mut c = cfg("dpdk: {no_huge: true, memory_mb: 300}");
        let p = Plan::new(&c).unwrap();
        let s = p.eal_args.join(" ");
        assert!(s.contains("--no-huge -m 300 --no-shconf"), "{s}");
        assert!(s.contains("--vdev net_null0 --vdev net_pcap0,rx_pcap=x.pcap --vdev net_null1"), "{s}");
        assert!(s.contains("--no-pci") && s.contains("--log-level notice"), "{s}");
        c.dpdk.no_huge = false;
        c.dpdk.file_prefix = "p1".into();
        let s = Plan::new(&c).unwrap().eal_args.join(" ");
        assert!(s.contains("--file-prefix p1") && !s.contains("--in-memory") && !s.contains("--no-huge"), "{s}");
    }

    #[test]
    fn auto_mempool_covers_rings_and_is_2n_minus_1() {
        let p = Plan::new(&cfg("")).unwrap();
        // 3 rx queues * 1024 + 6 tx queues * 1024 = 9216 ring slots alone.
        assert!(p.mbufs > 9216, "{}", p.mbufs);
        assert!((p.mbufs + 1).is_power_of_two());
    }

    #[test]
    fn bridges_compile_to_tables() {
        let p = Plan::new(&cfg(
            "bridges:\n  - name: br0\n    ports:\n      - {port: a, tag: 10}\n      - {port: b, vlan_mode: trunk, trunks: [10, 20]}\n    static_macs:\n      - {mac: '02:00:00:00:00:01', port: b, vlan: 20}",
        ))
        .unwrap();
        let t = p.tables(&[MacAddr::ZERO; 3]).unwrap();
        assert_eq!(t.l2.domains.len(), 2);
        assert_eq!(t.l2.bridges[0].static_macs.len(), 1);
        assert_eq!(t.ports[0].max_frame_len, 1514);
    }

    #[test]
    fn static_mac_on_a_vlan_the_port_lacks_names_the_key() {
        let e = Plan::new(&cfg(
            "bridges:\n  - name: br0\n    ports:\n      - {port: a, tag: 10}\n      - {port: b}\n    static_macs:\n      - {mac: '02:00:00:00:00:01', port: b, vlan: 10}",
        ))
        .unwrap_err();
        assert_eq!(e.path, "bridges[0].static_macs[0].vlan");
    }

    #[test]
    fn ports_keep_slots_and_queue_owners_while_others_come_and_go() {
        let p0 = Plan::new(&cfg("")).unwrap();
        assert_eq!(p0.ports.iter().map(|p| p.idx).collect::<Vec<_>>(), vec![0, 1, 2]);
        // Remove b (slot 1): a and c keep slots 0 and 2, a keeps its queues on both workers.
        let no_b = Config::from_yaml(
            "workers: {cores: [0, 1]}\nports:\n  - {name: a, devargs: net_null0}\n  - {name: c, devargs: net_null1, rx: false}\n",
        )
        .unwrap();
        let (p1, t1) = Plan::next(&no_b, &p0, &[MacAddr::ZERO; 3]).unwrap();
        assert_eq!(p1.ports.iter().map(|p| (p.name.as_str(), p.idx)).collect::<Vec<_>>(), vec![("a", 0), ("c", 2)]);
        assert_eq!(p1.workers[0].rx, vec![(0, 0)]);
        assert_eq!(p1.workers[1].rx, vec![(0, 1)]);
        assert_eq!((t1.ports.len(), t1.ports[1].name.as_str()), (3, ""), "slot 1 is a hole");
        // Add d and e: d takes slot 1 (freed by the previous apply), e slot 3; their
        // queues go to the least-loaded workers.
        let more = Config::from_yaml(
            "workers: {cores: [0, 1]}\nports:\n  - {name: d, devargs: net_null3, rx_queues: 1}\n  - {name: a, devargs: net_null0}\n  - {name: c, devargs: net_null1, rx: false}\n  - {name: e, devargs: net_null4, rx_queues: 1}\n",
        )
        .unwrap();
        let (p2, _) = Plan::next(&more, &p1, &[MacAddr::ZERO; 4]).unwrap();
        assert_eq!(p2.ports.iter().map(|p| (p.name.as_str(), p.idx)).collect::<Vec<_>>(), vec![("d", 1), ("a", 0), ("c", 2), ("e", 3)]);
        assert_eq!(p2.workers[0].rx, vec![(0, 0), (1, 0)]);
        assert_eq!(p2.workers[1].rx, vec![(0, 1), (3, 0)]);
        // A slot freed in this very apply is not reused by it.
        let swap = Config::from_yaml("workers: {cores: [0, 1]}\nports:\n  - {name: a, devargs: net_null0}\n  - {name: z, devargs: net_null9}\n").unwrap();
        let (p3, _) = Plan::next(&swap, &p1, &[MacAddr::ZERO; 3]).unwrap();
        assert_eq!(p3.ports[1].idx, 1, "slot 1 was freed by the apply before");
        let (p4, _) = Plan::next(&swap, &p0, &[MacAddr::ZERO; 3]).unwrap();
        assert_eq!(p4.ports[1].idx, 3, "slots 1 and 2 are freed by this apply");
        // The I/O map: every slot's device, each worker's queues.
        let io = p2.io_map(&|slot| Some(100 + slot));
        assert_eq!(io.workers[1].rx.iter().map(|a| (a.port, a.dev, a.queue)).collect::<Vec<_>>(), vec![(0, 100, 1), (3, 103, 0)]);
        assert_eq!(io.workers[0].tx.to_vec(), vec![Some(100), Some(101), Some(102), Some(103)]);
    }
}
