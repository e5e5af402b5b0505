//! The daemon: opens DPDK and the ports from a [`Plan`], starts the workers, then runs
//! the control thread — a tokio current-thread runtime on the main core serving the API
//! and metrics and printing live rates — until SIGINT/SIGTERM or `--duration`; then stops,
//! drains, closes and reports.
//!
//! Shutdown order matters and is the reverse of start-up: workers stop polling and free
//! what they hold → ports are stopped and closed (drivers release their rings) → the
//! mempool is checked for leaks and freed → EAL cleanup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_dataplane::dpdk::{self, Eal, Mempool};
use sluice_dataplane::tables::{Tables, TablesHandle};
use sluice_dataplane::worker::{self, Shared, WorkerSpec};
use tokio::sync::Mutex;

use crate::api::{self, Control};
use crate::config::Config;
use crate::plan::Plan;
use crate::state::StateFile;
use crate::stats::{self, MempoolReport, Report};

/// Errors that stop the daemon.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Changes the log filter at runtime.
pub type SetLog = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// How long to run, where to report, and the control plane's endpoints.
#[derive(Default)]
pub struct RunOptions {
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Write the final report as JSON here.
    pub stats_json: Option<PathBuf>,
    /// Live rate lines on stdout every this often (None: off).
    pub interval: Option<Duration>,
    /// The API's unix socket (None: no API).
    pub api_socket: Option<PathBuf>,
    /// Serve Prometheus `/metrics` over HTTP on this (loopback) address.
    pub metrics: Option<SocketAddr>,
    /// Also serve the API over TCP on this loopback address, behind `api_token`.
    pub api_tcp: Option<SocketAddr>,
    /// The bearer token the TCP API requires.
    pub api_token: Option<Arc<str>>,
    /// Save every applied state here.
    pub state: Option<PathBuf>,
    pub set_log: Option<SetLog>,
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
    let mut ports = Vec::with_capacity(plan.ports.len());
    for (i, pp) in plan.ports.iter().enumerate() {
        ports.push(crate::ports::open(i, &cfg.ports[i], pp, &pool, false)?);
    }

    let n_ports = plan.ports.len();
    let macs = crate::ports::macs_by_slot(&plan, &ports);
    let tables = Arc::new(TablesHandle::new(Tables::default()));
    let mut first = plan.tables(&macs)?;
    let devs = crate::ports::devs_by_slot(&plan, &ports);
    first.io = plan.io_map(&crate::ports::dev_lookup(&devs));
    tables.publish(first);
    let shared = Arc::new(Shared::new(Arc::clone(&tables), pool, plan.workers.len(), plan.flows.clone()));

    let mut handles = Vec::with_capacity(plan.workers.len());
    for (id, wp) in plan.workers.iter().enumerate() {
        let spec = WorkerSpec { id, core: Some(wp.core) };
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
    // Forwarding starts when every worker polls: a worker sets its `seen` epoch once its
    // pipeline is built (tens of ms in release; in a debug build, under contention for the
    // core, it can take seconds), and `startup_ms` and `--duration` count from there. A
    // worker that failed, or a stop, ends the wait; so does a minute, as a bound.
    let ready_by = Instant::now() + Duration::from_secs(60);
    while handles.iter().enumerate().any(|(i, h)| !h.is_finished() && shared.seen[i].load(Ordering::Acquire) == 0)
        && !stop.load(Ordering::Relaxed)
        && shared.running.load(Ordering::Relaxed)
        && Instant::now() < ready_by
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let startup_ms = started.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    tracing::info!(startup_ms, workers = handles.len(), ports = n_ports, "forwarding");

    let control = Arc::new(Mutex::new(Control {
        config: cfg.clone(),
        plan,
        macs,
        tables,
        shared: Arc::clone(&shared),
        ports,
        retired: Vec::new(),
        state: opts.state.clone().map(StateFile::new),
        started: t0,
        startup_ms,
        set_log: opts.set_log.clone(),
        trace: Default::default(),
        captures: Default::default(),
        views: Default::default(),
        dumps: Default::default(),
    }));
    if let Some(sf) = &opts.state {
        // What runs is what a restart restores.
        StateFile::new(sf).save(cfg)?;
    }

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bound = rt.block_on(control_loop(&control, &shared, &stop, opts, t0));
    drop(rt);
    if let (true, Some(sock)) = (bound, &opts.api_socket) {
        let _ = std::fs::remove_file(sock);
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
    let Ok(control) = Arc::try_unwrap(control) else {
        return Err("internal: the API still holds the control state".into());
    };
    let Control { plan, mut ports, retired, mut captures, .. } = control.into_inner();
    // Capture writers hold the shared state: finish them (and remove their files) first.
    captures.shutdown();
    let mut report = stats::report(&plan, &shared, &ports);
    // Ports whose removal never saw every worker acknowledge it: the workers are gone now.
    ports.extend(retired);
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
    report.mempool = MempoolReport { capacity: shared.pool.capacity(), in_use_after_stop: shared.pool.in_use(), in_use: shared.pool.in_use() };
    report.startup_ms = startup_ms;
    report.duration_s = duration_s;
    drop(shared);
    drop(eal);

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

/// The control thread: API and metrics servers, live rates, and the stop conditions.
/// Returns whether it bound the API socket (and so owns the socket file).
async fn control_loop(control: &Arc<Mutex<Control>>, shared: &Shared, stop: &AtomicBool, opts: &RunOptions, t0: Instant) -> bool {
    let mut servers = Vec::new();
    let mut bound = false;
    if let Some(sock) = &opts.api_socket {
        match api::bind_unix(sock) {
            Ok(l) => {
                bound = true;
                tracing::info!(socket = %sock.display(), "API listening");
                let router = api::router(Arc::clone(control));
                servers.push(tokio::spawn(async move {
                    let _ = axum::serve(l, router).await;
                }));
            }
            // The switch forwards without its API rather than not at all.
            Err(e) => tracing::warn!(socket = %sock.display(), error = %e, "API not available"),
        }
    }
    if let (Some(addr), Some(token)) = (opts.api_tcp, &opts.api_token) {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, "API listening on TCP (bearer token)");
                let router = api::router_with_token(Arc::clone(control), Arc::clone(token));
                servers.push(tokio::spawn(async move {
                    let _ = axum::serve(l, router).await;
                }));
            }
            Err(e) => tracing::warn!(%addr, error = %e, "TCP API not available"),
        }
    }
    if let Some(addr) = opts.metrics {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, "metrics listening");
                let router = api::metrics_router(Arc::clone(control));
                servers.push(tokio::spawn(async move {
                    let _ = axum::serve(l, router).await;
                }));
            }
            Err(e) => tracing::error!(%addr, error = %e, "metrics not available"),
        }
    }
    let sample = |sh: &Shared| {
        sh.stats.iter().fold((0, 0, 0), |(r, t, d), w| (r + w.rx_packets.get(), t + w.tx_packets.get(), d + w.drops_total()))
    };
    let mut prev = sample(shared);
    let mut last = Instant::now();
    let mut last_view_sample = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_view_sample.elapsed() >= Duration::from_secs(1) {
            // The show views' rate history (crate::show).
            let mut c = control.lock().await;
            let r = c.report();
            last_view_sample = Instant::now();
            c.views.sample(last_view_sample, r);
        }
        if stop.load(Ordering::Relaxed) || !shared.running.load(Ordering::Relaxed) {
            break;
        }
        if opts.duration.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
        if let Some(iv) = opts.interval {
            if last.elapsed() >= iv {
                let now = sample(shared);
                println!("{}", stats::rate_line(prev, now, last.elapsed().as_secs_f64()));
                prev = now;
                last = Instant::now();
            }
        }
    }
    for s in servers {
        s.abort();
        let _ = s.await;
    }
    bound
}
