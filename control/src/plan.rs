//! Turns a validated [`Config`] into what the daemon does: EAL arguments, the mempool
//! size, per-port queue counts, which worker polls which queue, and the L2 tables.
//! Pure: no DPDK here, so every decision is unit-tested.

use sluice_dataplane::l2::{build_l2, BridgeSpec, VlanMode};
use sluice_dataplane::tables::{PortEntry, PortIdx, Tables};
use sluice_dataplane::worker::{RX_BURST, TX_BUFFER};

use crate::config::{Config, ConfigError, VlanModeConfig};

/// One port as the daemon opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    pub name: String,
    /// DPDK device name (vdev name or PCI address) to look the port up by.
    pub device: String,
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
    pub ports: Vec<PortPlan>,
    pub workers: Vec<WorkerPlan>,
    pub tables: Tables,
}

impl Plan {
    /// Resolves `cfg` (already validated). Fails only on what needs the whole picture,
    /// naming the key.
    pub fn new(cfg: &Config) -> Result<Plan, ConfigError> {
        let n_workers = cfg.workers.cores.len();
        let mut ports = Vec::with_capacity(cfg.ports.len());
        for p in &cfg.ports {
            let device = match (&p.devargs, &p.pci) {
                (Some(d), _) => d.split(',').next().unwrap_or_default().to_string(),
                (_, Some(pci)) => pci.split(',').next().unwrap_or_default().to_string(),
                _ => unreachable!("validated: devargs or pci"),
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
                device,
                rx_queues,
                tx_queues: n_workers as u16,
                rx_desc: p.rx_desc,
                tx_desc: p.tx_desc,
                mtu: p.set_device_mtu.then_some(p.mtu),
                promiscuous: p.promiscuous,
            });
        }

        // Spread every rx queue over the workers round-robin, port by port, continuing
        // the rotation across ports so single-queue ports do not all land on worker 0.
        let mut workers: Vec<WorkerPlan> =
            cfg.workers.cores.iter().map(|&core| WorkerPlan { core, rx: Vec::new() }).collect();
        let mut next = 0usize;
        for (pi, p) in ports.iter().enumerate() {
            for q in 0..p.rx_queues {
                workers[next % n_workers].rx.push((pi as PortIdx, q));
                next += 1;
            }
        }

        let mbufs = if cfg.mempool.mbufs != 0 {
            cfg.mempool.mbufs
        } else {
            auto_mbufs(&ports, n_workers, cfg.mempool.cache_size)
        };

        let tables = Tables {
            epoch: 0,
            ports: cfg
                .ports
                .iter()
                .map(|p| PortEntry { name: p.name.clone(), max_frame_len: p.mtu as u32 + 14 })
                .collect(),
            l2: build_l2(cfg.ports.len(), &bridge_specs(cfg)?).map_err(|m| ConfigError::new("bridges", m))?,
        };

        Ok(Plan {
            eal_args: eal_args(cfg, mbufs),
            mbufs,
            cache_size: cfg.mempool.cache_size,
            data_room: cfg.mempool.data_room,
            ports,
            workers,
            tables,
        })
    }
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
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
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

fn bridge_specs(cfg: &Config) -> Result<Vec<BridgeSpec>, ConfigError> {
    let index = |name: &str| cfg.ports.iter().position(|p| p.name == name).map(|i| i as PortIdx);
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
        assert_eq!(p.tables.l2.domains.len(), 2);
        assert_eq!(p.tables.l2.bridges[0].static_macs.len(), 1);
        assert_eq!(p.tables.ports[0].max_frame_len, 1514);
    }

    #[test]
    fn static_mac_on_a_vlan_the_port_lacks_names_the_key() {
        let e = Plan::new(&cfg(
            "bridges:\n  - name: br0\n    ports:\n      - {port: a, tag: 10}\n      - {port: b}\n    static_macs:\n      - {mac: '02:00:00:00:00:01', port: b, vlan: 10}",
        ))
        .unwrap_err();
        assert_eq!(e.path, "bridges[0].static_macs[0].vlan");
    }
}
