//! The daemon: opens DPDK and the ports from a [`Plan`], starts the workers, prints live
//! rates, and on SIGINT/SIGTERM (or after `--duration`) stops, drains, closes and
//! reports.
//!
//! Shutdown order matters and is the reverse of start-up: workers stop polling and free
//! what they hold → ports are stopped and closed (drivers release their rings) → the
//! mempool is checked for leaks and freed → EAL cleanup.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_dataplane::dpdk::{self, Eal, EthPort, Mempool, PortSetup};
use sluice_dataplane::tables::{Tables, TablesHandle};
use sluice_dataplane::wire::MacAddr;
use sluice_dataplane::worker::{self, Shared, WorkerSpec};

use crate::config::{Config, ConfigError};
use crate::plan::Plan;
use crate::stats::{self, EthdevReport, MempoolReport, PortReport, Report};

/// Errors that stop the daemon.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long to run and where to report.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Write the final report as JSON here.
    pub stats_json: Option<PathBuf>,
    /// Live rate lines on stdout every this often (None: off).
    pub interval: Option<Duration>,
}

/// Runs the switch described by `cfg` until a signal or `opts.duration`. `started` is
/// the process start, for the start-up time in the report.
pub fn run(cfg: &Config, opts: &RunOptions, started: Instant) -> Result<Report, Error> {
    let plan = Plan::new(cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while shutting down exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }

    tracing::info!(args = ?plan.eal_args, "starting DPDK");
    let eal = Eal::init(&plan.eal_args)?;
    let pool = Mempool::create("sluice_pool", plan.mbufs, plan.cache_size, plan.data_room + 128, dpdk::socket_id())?;
    let mut ports = open_ports(cfg, &plan, &pool)?;

    let n_ports = plan.ports.len();
    let macs: Vec<_> = ports.iter().map(|p| p.info().map(|i| MacAddr(i.mac)).unwrap_or_default()).collect();
    let tables = Arc::new(TablesHandle::new(Tables::default()));
    tables.publish(plan.tables(&macs)?);
    let shared = Arc::new(Shared::new(Arc::clone(&tables), pool, plan.workers.len(), n_ports));

    let mut handles = Vec::with_capacity(plan.workers.len());
    for (id, wp) in plan.workers.iter().enumerate() {
        let spec = WorkerSpec {
            id,
            core: Some(wp.core),
            rx: wp.rx.iter().map(|&(p, q)| (p, ports[p as usize].rx_queue(q))).collect(),
            tx: ports.iter().map(|p| p.tx_queue(id as u16)).collect(),
        };
        let sh = Arc::clone(&shared);
        let h = std::thread::Builder::new().name(format!("sluice-w{id}")).spawn(move || {
            let r = worker::run(spec, &sh);
            if r.is_err() {
                // A worker that cannot run stops the whole switch rather than limp.
                sh.stop();
            }
            r
        })?;
        handles.push(h);
    }
    let startup_ms = started.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    tracing::info!(startup_ms, workers = handles.len(), ports = n_ports, "forwarding");

    let sample = |sh: &Shared| {
        sh.stats.iter().fold((0, 0, 0), |(r, t, d), w| (r + w.rx_packets.get(), t + w.tx_packets.get(), d + w.drops_total()))
    };
    let mut prev = sample(&shared);
    let mut last = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if stop.load(Ordering::Relaxed) || !shared.running.load(Ordering::Relaxed) {
            break;
        }
        if opts.duration.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
        if let Some(iv) = opts.interval {
            if last.elapsed() >= iv {
                let now = sample(&shared);
                println!("{}", stats::rate_line(prev, now, last.elapsed().as_secs_f64()));
                prev = now;
                last = Instant::now();
            }
        }
    }

    shared.stop();
    let duration_s = t0.elapsed().as_secs_f64();
    let mut worker_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => worker_err = Some(e),
            Err(_) => worker_err = Some(dpdk::DpdkError::with_msg("worker", -1, "worker thread panicked")),
        }
    }
    let workers: Vec<_> = plan
        .workers
        .iter()
        .enumerate()
        .map(|(i, wp)| stats::worker_report(i, wp.core, &shared.stats[i]))
        .collect();
    let mut port_reports = Vec::with_capacity(n_ports);
    for (i, p) in ports.iter_mut().enumerate() {
        let s = p.stats();
        let (rx, tx) = shared.stats.iter().fold((0, 0), |(r, t), w| (r + w.ports[i].rx_packets.get(), t + w.ports[i].tx_packets.get()));
        port_reports.push(PortReport {
            name: plan.ports[i].name.clone(),
            device: plan.ports[i].device.clone(),
            driver: p.info().map(|d| d.driver).unwrap_or_default(),
            rx_packets: rx,
            tx_packets: tx,
            ethdev: EthdevReport {
                ipackets: s.ipackets,
                opackets: s.opackets,
                ibytes: s.ibytes,
                obytes: s.obytes,
                imissed: s.imissed,
                ierrors: s.ierrors,
                oerrors: s.oerrors,
                rx_nombuf: s.rx_nombuf,
            },
        });
    }
    for p in ports.iter_mut() {
        if let Err(e) = p.stop() {
            tracing::warn!(port = %p.name, error = %e, "stop failed");
        }
    }
    for p in ports.drain(..) {
        let name = p.name.clone();
        if let Err(e) = p.close() {
            tracing::warn!(port = %name, error = %e, "close failed");
        }
    }
    let Ok(shared) = Arc::try_unwrap(shared) else {
        return Err("internal: workers still hold the shared state".into());
    };
    let mempool = MempoolReport { capacity: shared.pool.capacity(), in_use_after_stop: shared.pool.in_use() };
    drop(shared);
    drop(eal);

    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        startup_ms,
        duration_s,
        totals: stats::totals(&workers),
        workers,
        ports: port_reports,
        mempool,
    };
    if let Some(path) = &opts.stats_json {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
        std::fs::rename(&tmp, path)?;
    }
    if let Some(e) = worker_err {
        return Err(Box::new(e));
    }
    Ok(report)
}

/// Finds every configured port, checks it can give each worker a queue, and starts it.
fn open_ports(cfg: &Config, plan: &Plan, pool: &Mempool) -> Result<Vec<EthPort>, Error> {
    let mut ports = Vec::with_capacity(plan.ports.len());
    for (i, pp) in plan.ports.iter().enumerate() {
        let key = if cfg.ports[i].pci.is_some() { "pci" } else { "devargs" };
        let at = |msg: String| ConfigError::new(format!("ports[{i}].{key}"), msg);
        let mut port = EthPort::by_name(&pp.device).map_err(|e| at(format!("device {} not found: {e}", pp.device)))?;
        let info = port.info()?;
        if pp.tx_queues > info.max_tx_queues {
            return Err(Box::new(at(format!(
                "{} ({}) has {} tx queue(s) but {} workers need one each; use fewer workers or a device with more queues",
                pp.device, info.driver, info.max_tx_queues, pp.tx_queues
            ))));
        }
        if pp.rx_queues > info.max_rx_queues {
            return Err(Box::new(ConfigError::new(
                format!("ports[{i}].rx_queues"),
                format!("{} ({}) has {} rx queue(s), {} wanted", pp.device, info.driver, info.max_rx_queues, pp.rx_queues),
            )));
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
        port.setup(&setup, pool).map_err(|e| at(format!("{}: {e}", pp.device)))?;
        tracing::info!(port = %pp.name, device = %pp.device, driver = %info.driver, rxq = pp.rx_queues, txq = pp.tx_queues, "port up");
        ports.push(port);
    }
    Ok(ports)
}
