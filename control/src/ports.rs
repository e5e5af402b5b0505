//! Opening and detaching ports: at start (devices EAL already probed from `--vdev`/`-a`)
//! and while running (hot-plugged with `rte_dev_probe`, removed with `rte_dev_remove`).
//!
//! The removal protocol lives in [`crate::api::Control::apply`]: publish tables and an
//! I/O map without the port, wait until every worker acknowledged that epoch
//! (`Shared::wait_quiescent`), only then stop, close and detach the port here.

use sluice_dataplane::dpdk::{EthPort, Mempool, PortSetup};
use sluice_dataplane::tables::{PortIdx, MAX_PORTS};
use sluice_dataplane::wire::MacAddr;

use crate::config::{ConfigError, PortConfig};
use crate::plan::{Plan, PortPlan};

/// Finds (`hotplug`: probes) port `i` of the configuration, checks it can give each
/// worker a queue, and starts it. Errors name the key. A hot-plugged port that fails
/// after its probe is detached again, so a failed add leaves nothing behind.
pub fn open(i: usize, cfg: &PortConfig, pp: &PortPlan, pool: &Mempool, hotplug: bool) -> Result<EthPort, ConfigError> {
    let key = if cfg.pci.is_some() { "pci" } else { "devargs" };
    let at = |msg: String| ConfigError::new(format!("ports[{i}].{key}"), msg);
    let mut port = if hotplug {
        EthPort::probe(&pp.devargs).map_err(|e| at(format!("cannot attach {:?}: {e}", pp.devargs)))?
    } else {
        EthPort::by_name(&pp.device).map_err(|e| at(format!("device {} not found: {e}", pp.device)))?
    };
    let fail = |port: EthPort, err: ConfigError| {
        // Only a device this call attached is removed again; one that was already there
        // (given to EAL at start) is left on its bus (dropping the handle closes it).
        if hotplug && port.hotplugged() {
            detach(port);
        }
        err
    };
    let info = match port.info() {
        Ok(i) => i,
        Err(e) => return Err(fail(port, at(format!("{}: {e}", pp.device)))),
    };
    if pp.tx_queues > info.max_tx_queues {
        let msg = format!(
            "{} ({}) has {} tx queue(s) but {} workers need one each; use fewer workers or a device with more queues",
            pp.device, info.driver, info.max_tx_queues, pp.tx_queues
        );
        return Err(fail(port, at(msg)));
    }
    if pp.rx_queues > info.max_rx_queues {
        let e = ConfigError::new(
            format!("ports[{i}].rx_queues"),
            format!("{} ({}) has {} rx queue(s), {} wanted", pp.device, info.driver, info.max_rx_queues, pp.rx_queues),
        );
        return Err(fail(port, e));
    }
    let setup = PortSetup {
        // Every port gets at least one rx queue so the device starts; a tx-only port's
        // queue is simply never polled.
        rx_queues: pp.rx_queues.max(1),
        tx_queues: pp.tx_queues,
        rx_desc: pp.rx_desc,
        tx_desc: pp.tx_desc,
        mtu: pp.mtu,
        promiscuous: pp.promiscuous,
    };
    if let Err(e) = port.setup(&setup, pool) {
        return Err(fail(port, at(format!("{}: {e}", pp.device))));
    }
    tracing::info!(port = %pp.name, slot = pp.idx, device = %pp.device, driver = %info.driver, rxq = pp.rx_queues, txq = pp.tx_queues, hotplug, "port up");
    Ok(port)
}

/// Mbufs a port's rings can hold: what adding it may take from the pool.
pub fn ring_mbufs(pp: &PortPlan) -> u64 {
    pp.rx_queues.max(1) as u64 * pp.rx_desc as u64 + pp.tx_queues as u64 * pp.tx_desc as u64
}

/// Stops, closes and removes the device (its driver frees what its rings held). Only
/// once no worker polls or sends on it. Failures are logged: the port is gone from the
/// switch either way.
pub fn detach(port: EthPort) {
    let name = port.name.clone();
    match port.detach() {
        Ok(()) => tracing::info!(port = %name, "port detached"),
        Err(e) => tracing::warn!(port = %name, error = %e, "detaching port failed"),
    }
}

/// Each slot's device MAC (`ports` in plan order), for [`Plan::tables`].
pub fn macs_by_slot(plan: &Plan, ports: &[EthPort]) -> Vec<MacAddr> {
    let mut macs = vec![MacAddr::default(); MAX_PORTS];
    for (pp, p) in plan.ports.iter().zip(ports) {
        if let Some(m) = macs.get_mut(pp.idx as usize) {
            *m = p.info().map(|i| MacAddr(i.mac)).unwrap_or_default();
        }
    }
    macs
}

/// Each slot's DPDK port id (`ports` in plan order), for [`Plan::io_map`].
pub fn devs_by_slot(plan: &Plan, ports: &[EthPort]) -> [Option<u16>; MAX_PORTS] {
    let mut devs = [None; MAX_PORTS];
    for (pp, p) in plan.ports.iter().zip(ports) {
        if let Some(d) = devs.get_mut(pp.idx as usize) {
            *d = Some(p.id.0);
        }
    }
    devs
}

/// `devs` as the lookup [`Plan::io_map`] takes.
pub fn dev_lookup(devs: &[Option<u16>; MAX_PORTS]) -> impl Fn(PortIdx) -> Option<u16> + '_ {
    move |slot| devs.get(slot as usize).copied().flatten()
}
