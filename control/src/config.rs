//! The configuration file: model, parsing and validation.
//!
//! Parsing rejects unknown keys and wrongly typed values with the path of the key
//! (`ports[1].mtu: ...`). Validation then checks meaning (ranges, references between
//! objects, duplicates) and names the key it rejects. Nothing is opened or started
//! until a configuration has passed both. Every key is documented in docs/config.md.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sluice_dataplane::wire::MacAddr;

mod l3;
mod policy;
pub(crate) use l3::bridge_port_carries;
pub use policy::{
    FlowsConfig, GlobalRuleConfig, NamedPortConfig, NamespaceConfig, NetworkPolicyConfig, TimeoutsConfig, DEFAULT_NAMESPACE,
};
pub use l3::{
    canonical_prefix, parse_prefix, AllowedPairConfig, DhcpConfig, EndpointConfig, GatewayConfig, NetModeConfig, NetworkConfig, RouteConfig,
    UplinkConfig, ViaConfig,
};

/// A configuration error naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the key, e.g. `bridges[0].ports[1].tag`.
    pub path: String,
    pub msg: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, msg: impl Into<String>) -> Self {
        ConfigError { path: path.into(), msg: msg.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}: {}", self.path, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dpdk: DpdkConfig,
    /// CPU for the control thread and the DPDK main lcore.
    #[serde(default)]
    pub main_core: Option<usize>,
    #[serde(default)]
    pub workers: WorkersConfig,
    #[serde(default)]
    pub mempool: MempoolConfig,
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub bridges: Vec<BridgeConfig>,
    /// Virtual networks (VRFs), routed by sluice.
    #[serde(default)]
    pub networks: Vec<NetworkConfig>,
    /// Workloads attached to networks.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// Routes per network.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Namespaces and their labels (for NetworkPolicy namespaceSelector).
    #[serde(default)]
    pub namespaces: Vec<NamespaceConfig>,
    /// Kubernetes NetworkPolicy objects (manifests or the short form).
    #[serde(default)]
    pub network_policies: Vec<NetworkPolicyConfig>,
    /// Ordered global rules, evaluated before NetworkPolicy.
    #[serde(default)]
    pub global_rules: Vec<GlobalRuleConfig>,
    /// The flow table and connection tracking.
    #[serde(default)]
    pub flows: FlowsConfig,
    #[serde(default)]
    pub stats: StatsConfig,
}

/// DPDK EAL settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// Run without hugepages (anonymous memory; slower, no setup needed).
    pub no_huge: bool,
    /// Memory for DPDK in MiB; 0 picks a size from the mempool.
    pub memory_mb: u32,
    /// Runtime file prefix; empty means none (`--in-memory` with hugepages,
    /// `--no-shconf` without), so several instances can run side by side.
    pub file_prefix: String,
    /// DPDK log level (emerg..debug, or a number 1..8).
    pub log_level: String,
    /// Extra EAL arguments, passed through verbatim.
    pub extra_args: Vec<String>,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            no_huge: false,
            memory_mb: 0,
            file_prefix: String::new(),
            log_level: "notice".into(),
            extra_args: Vec::new(),
        }
    }
}

/// Worker threads.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// One worker per entry, pinned to that CPU.
    pub cores: Vec<usize>,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig { cores: vec![default_worker_core()] }
    }
}

/// The last CPU: the conventional spot for a lone PMD thread, off the main core 0.
fn default_worker_core() -> usize {
    cpu_count().saturating_sub(1)
}

/// CPUs online on the machine, whatever this thread's affinity (DPDK pins the main thread
/// to its core, and the API validates configurations on that thread).
pub fn cpu_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        // "0-1,4,6-7": the highest CPU number + 1.
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok();
        let max = online.as_deref().and_then(|s| {
            s.trim().split(',').filter_map(|r| r.rsplit('-').next()?.trim().parse::<usize>().ok()).max()
        });
        max.map(|m| m + 1).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// The packet buffer pool.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Number of mbufs; 0 sizes the pool from the ports' rings, workers and bursts.
    pub mbufs: u32,
    /// Per-worker mbuf cache.
    pub cache_size: u32,
    /// Bytes of frame room per mbuf (headroom excluded); frames that need more than
    /// one mbuf are dropped as `chained_mbuf`.
    pub data_room: u16,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig { mbufs: 0, cache_size: 256, data_room: 2048 }
    }
}

/// One DPDK port.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Name used everywhere else in the configuration and in stats.
    pub name: String,
    /// A virtual device: DPDK `--vdev` devargs, e.g. `net_pcap0,rx_pcap=in.pcap`.
    #[serde(default)]
    pub devargs: Option<String>,
    /// A PCI device, e.g. `0000:01:00.0`, with optional devargs after a comma.
    #[serde(default)]
    pub pci: Option<String>,
    /// Poll this port for received packets (false: transmit-only, e.g. a sink).
    #[serde(default = "yes")]
    pub rx: bool,
    /// Rx queues; 0 means one per worker.
    #[serde(default)]
    pub rx_queues: u16,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// L3 MTU; frames longer than MTU + 14 (+ 4 with a tag) are dropped on ingress.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Set the device's MTU too (vdevs often cannot; the ingress check applies anyway).
    #[serde(default)]
    pub set_device_mtu: bool,
    #[serde(default = "yes")]
    pub promiscuous: bool,
    /// Makes the port an L3 uplink into a network.
    #[serde(default)]
    pub uplink: Option<UplinkConfig>,
}

fn yes() -> bool {
    true
}
fn default_desc() -> u16 {
    1024
}
fn default_mtu() -> u16 {
    1500
}

/// One learning bridge.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    pub name: String,
    /// Most MACs learned per worker.
    #[serde(default = "default_mac_table_size")]
    pub mac_table_size: u32,
    /// Seconds a learned MAC lives without being seen.
    #[serde(default = "default_mac_aging_s")]
    pub mac_aging_s: u32,
    pub ports: Vec<BridgePortConfig>,
    #[serde(default)]
    pub static_macs: Vec<StaticMacConfig>,
}

fn default_mac_table_size() -> u32 {
    8192
}
fn default_mac_aging_s() -> u32 {
    300
}

/// VLAN mode of a bridge port.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum VlanModeConfig {
    #[default]
    Access,
    Trunk,
}

/// A port's membership in a bridge.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BridgePortConfig {
    /// A name from `ports`.
    pub port: String,
    #[serde(default)]
    pub vlan_mode: VlanModeConfig,
    /// Access VLAN (access ports only); 0 or absent: untagged, no VLAN.
    #[serde(default)]
    pub tag: Option<u16>,
    /// VLANs a trunk carries (trunk ports only); absent or empty: all of 1..4094.
    #[serde(default)]
    pub trunks: Vec<u16>,
    /// VLAN of untagged frames on a trunk (trunk ports only).
    #[serde(default)]
    pub native_vlan: Option<u16>,
}

/// A MAC pinned to a port.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticMacConfig {
    pub mac: String,
    pub port: String,
    #[serde(default)]
    pub vlan: u16,
}

/// Live statistics printing.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Seconds between live rate lines on stdout; 0 turns them off.
    pub interval_s: u32,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { interval_s: 1 }
    }
}

impl Config {
    /// Parses YAML text and validates it.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            // A syntax error has no key yet: serde_path_to_error marks the unknown rest "?".
            let path = e.path().to_string();
            let path = path.split(".?").next().unwrap_or_default().trim_end_matches('?').trim_end_matches('.').to_string();
            let inner = e.into_inner().to_string();
            // serde_yaml_ng prefixes the parent's path itself; ours is more precise.
            let msg = match inner.split_once(": ") {
                Some((head, rest)) if path.starts_with(head) => rest.to_string(),
                _ => inner,
            };
            ConfigError::new(path, msg)
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text)
    }

    /// Checks meaning: ranges, names, references. Names the first offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn e(path: impl Into<String>, msg: impl Into<String>) -> ConfigError {
            ConfigError::new(path, msg)
        }
        if self.workers.cores.is_empty() {
            return Err(e("workers.cores", "at least one worker core is needed"));
        }
        let ncpu = cpu_count();
        let mut seen_cores = HashSet::new();
        for (i, c) in self.workers.cores.iter().enumerate() {
            if *c >= ncpu {
                return Err(e(format!("workers.cores[{i}]"), format!("CPU {c} does not exist (this machine has {ncpu})")));
            }
            if !seen_cores.insert(*c) {
                return Err(e(format!("workers.cores[{i}]"), format!("CPU {c} is listed twice")));
            }
        }
        if let Some(m) = self.main_core {
            if m >= ncpu {
                return Err(e("main_core", format!("CPU {m} does not exist (this machine has {ncpu})")));
            }
        }
        if !matches!(self.dpdk.log_level.as_str(), "emerg" | "alert" | "crit" | "error" | "warning" | "notice" | "info" | "debug")
            && !matches!(self.dpdk.log_level.parse::<u8>(), Ok(1..=8))
        {
            return Err(e("dpdk.log_level", format!("unknown level {:?} (emerg, alert, crit, error, warning, notice, info, debug)", self.dpdk.log_level)));
        }
        if !self.dpdk.file_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(e("dpdk.file_prefix", "only letters, digits, '-' and '_'"));
        }
        if self.mempool.mbufs != 0 && self.mempool.mbufs < 512 {
            return Err(e("mempool.mbufs", "at least 512 (or 0 to size automatically)"));
        }
        if self.mempool.cache_size > 512 {
            return Err(e("mempool.cache_size", "at most 512 (DPDK's RTE_MEMPOOL_CACHE_MAX_SIZE)"));
        }
        if !(256..=16384).contains(&self.mempool.data_room) {
            return Err(e("mempool.data_room", "between 256 and 16384 bytes"));
        }

        if self.ports.is_empty() {
            return Err(e("ports", "at least one port is needed"));
        }
        let mut names = HashSet::new();
        let mut devices = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let at = |k: &str| format!("ports[{i}].{k}");
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(e(at("name"), "a non-empty name of letters, digits, '-', '_' and '.'"));
            }
            if !names.insert(p.name.as_str()) {
                return Err(e(at("name"), format!("port {:?} is defined twice", p.name)));
            }
            let dev = match (&p.devargs, &p.pci) {
                (Some(d), None) => {
                    let dev = d.split(',').next().unwrap_or("");
                    if !dev.starts_with("net_") || dev.len() <= 4 {
                        return Err(e(at("devargs"), format!("{d:?} does not start with a virtual device name like net_pcap0")));
                    }
                    dev.to_string()
                }
                (None, Some(pci)) => {
                    let addr = pci.split(',').next().unwrap_or("");
                    if !is_pci_addr(addr) {
                        return Err(e(at("pci"), format!("{pci:?} is not a PCI address like 0000:01:00.0")));
                    }
                    addr.to_string()
                }
                (Some(_), Some(_)) => return Err(e(at("pci"), "give either devargs or pci, not both")),
                (None, None) => return Err(e(at("devargs"), "a port needs devargs (virtual device) or pci")),
            };
            if !devices.insert(dev.clone()) {
                return Err(e(at("devargs"), format!("device {dev} is used by two ports")));
            }
            if !(68..=9600).contains(&p.mtu) {
                return Err(e(at("mtu"), "between 68 and 9600"));
            }
            if p.mtu as u32 + 18 > self.mempool.data_room as u32 {
                return Err(e(
                    at("mtu"),
                    format!("a {}-byte MTU needs mempool.data_room of at least {}", p.mtu, p.mtu as u32 + 18),
                ));
            }
            for (k, v) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
                if !(64..=16384).contains(&v) || !v.is_power_of_two() {
                    return Err(e(at(k), "a power of two between 64 and 16384"));
                }
            }
            if p.rx_queues > 1024 {
                return Err(e(at("rx_queues"), "at most 1024"));
            }
        }

        let mut bridged = HashSet::new();
        let mut bridge_names = HashSet::new();
        for (bi, b) in self.bridges.iter().enumerate() {
            let at = |k: &str| format!("bridges[{bi}].{k}");
            if b.name.is_empty() || !bridge_names.insert(b.name.as_str()) {
                return Err(e(at("name"), format!("bridge name {:?} is empty or used twice", b.name)));
            }
            if b.mac_table_size == 0 || b.mac_table_size > 1 << 22 {
                return Err(e(at("mac_table_size"), "between 1 and 4194304"));
            }
            if b.mac_aging_s == 0 || b.mac_aging_s > 1_000_000 {
                return Err(e(at("mac_aging_s"), "between 1 and 1000000 seconds"));
            }
            if b.ports.is_empty() {
                return Err(e(at("ports"), "a bridge needs at least one port"));
            }
            for (pi, bp) in b.ports.iter().enumerate() {
                let at = |k: &str| format!("bridges[{bi}].ports[{pi}].{k}");
                if !names.contains(bp.port.as_str()) {
                    return Err(e(at("port"), format!("no port named {:?} in ports", bp.port)));
                }
                if !bridged.insert(bp.port.as_str()) {
                    return Err(e(at("port"), format!("port {:?} is already in a bridge", bp.port)));
                }
                match bp.vlan_mode {
                    VlanModeConfig::Access => {
                        if !bp.trunks.is_empty() {
                            return Err(e(at("trunks"), "only for vlan_mode: trunk"));
                        }
                        if bp.native_vlan.is_some() {
                            return Err(e(at("native_vlan"), "only for vlan_mode: trunk"));
                        }
                        if let Some(t) = bp.tag {
                            if t > 4094 {
                                return Err(e(at("tag"), "a VLAN id between 0 and 4094"));
                            }
                        }
                    }
                    VlanModeConfig::Trunk => {
                        if bp.tag.is_some() {
                            return Err(e(at("tag"), "only for vlan_mode: access (use native_vlan on a trunk)"));
                        }
                        for (ti, t) in bp.trunks.iter().enumerate() {
                            if !(1..=4094).contains(t) {
                                return Err(e(format!("bridges[{bi}].ports[{pi}].trunks[{ti}]"), "a VLAN id between 1 and 4094"));
                            }
                        }
                        if let Some(n) = bp.native_vlan {
                            if !(1..=4094).contains(&n) {
                                return Err(e(at("native_vlan"), "a VLAN id between 1 and 4094"));
                            }
                        }
                    }
                }
            }
            for (si, s) in b.static_macs.iter().enumerate() {
                let at = |k: &str| format!("bridges[{bi}].static_macs[{si}].{k}");
                let mac: MacAddr = s.mac.parse().map_err(|err| e(at("mac"), format!("{:?}: {err}", s.mac)))?;
                if !mac.is_valid_source() {
                    return Err(e(at("mac"), "must be a unicast, non-zero MAC"));
                }
                if !b.ports.iter().any(|bp| bp.port == s.port) {
                    return Err(e(at("port"), format!("port {:?} is not in bridge {}", s.port, b.name)));
                }
                if s.vlan > 4094 {
                    return Err(e(at("vlan"), "a VLAN id between 0 and 4094"));
                }
            }
        }
        self.validate_l3()?;
        self.validate_policy()?;
        if self.stats.interval_s > 3600 {
            return Err(e("stats.interval_s", "at most 3600"));
        }
        Ok(())
    }
}

fn is_pci_addr(s: &str) -> bool {
    // dddd:bb:dd.f or bb:dd.f
    let parts: Vec<&str> = s.split([':', '.']).collect();
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    match parts.as_slice() {
        [d, b, dev, f] => hex(d, 4) && hex(b, 2) && hex(dev, 2) && hex(f, 1),
        [b, dev, f] => hex(b, 2) && hex(dev, 2) && hex(f, 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
