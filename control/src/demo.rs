//! The embedded default: what `sluice run` does with no configuration.
//!
//! No NIC and no hugepages needed: a generated pcap of 64-byte UDP frames over 1,024
//! flows is replayed from memory (net_pcap, infinite_rx) into a learning bridge that
//! forwards it, known-unicast through a static MAC, to a null sink; the daemon prints
//! live rx/tx Mpps every second until Ctrl-C.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::pcapgen::{self, TrafficSpec};

/// The default configuration, with `{pcap}` and `{core}` to fill in.
pub const DEFAULT_CONFIG: &str = r#"# sluice embedded default: pcap replay -> L2 learning bridge -> null sink.
dpdk:
  no_huge: true          # runs anywhere; reserve hugepages and set false for full speed
  log_level: error
workers:
  cores: [{core}]
ports:
  - name: in0
    devargs: "net_pcap0,rx_pcap={pcap},infinite_rx=1"
  - name: out0
    devargs: "net_null0,no-rx=1"
    rx: false            # a sink: never polled
bridges:
  - name: br0
    ports:
      - port: in0
      - port: out0
    static_macs:
      - mac: "02:00:00:00:00:02"
        port: out0
stats:
  interval_s: 1
"#;

/// The demo's working directory (the pcap lives here).
pub fn workdir() -> PathBuf {
    std::env::temp_dir().join(format!("sluice-demo-{}", std::process::id()))
}

/// The default configuration text for a pcap at `pcap`.
pub fn config_text(pcap: &Path) -> String {
    let core = crate::config::cpu_count().saturating_sub(1);
    DEFAULT_CONFIG.replace("{pcap}", &pcap.display().to_string()).replace("{core}", &core.to_string())
}

/// Writes the demo traffic into `dir` and returns the validated default configuration.
pub fn prepare(dir: &Path) -> Result<Config, Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(dir)?;
    let pcap = dir.join("udp-1k-flows.pcap");
    let spec = TrafficSpec { flows: 1024, count: 1024, frame_len: 60, ..Default::default() };
    pcapgen::generate(&pcap, &spec)?;
    let cfg = Config::from_yaml(&config_text(&pcap)).map_err(|e: ConfigError| format!("embedded default config: {e}"))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_plans() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = prepare(dir.path()).unwrap();
        assert!(cfg.dpdk.no_huge);
        assert_eq!(cfg.ports.len(), 2);
        let plan = crate::plan::Plan::new(&cfg).unwrap();
        assert_eq!(plan.ports[1].rx_queues, 0, "the sink is not polled");
        assert!(dir.path().join("udp-1k-flows.pcap").exists());
    }
}
