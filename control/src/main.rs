//! `sluice`: the daemon and its tools.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sluice_control::cli::{self, Output, Show};
use sluice_control::config::{Config, ConfigError};
use sluice_control::pcapgen::{self, TrafficSpec};
use sluice_control::plan::Plan;
use sluice_control::run::{self, RunOptions};
use sluice_control::state::{Loaded, StateFile};
use sluice_control::{api, demo, stats};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

#[derive(Parser, Debug)]
#[command(name = "sluice", version, about = "Kernel-bypass virtual switch/router on DPDK")]
struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, global = true, default_value = "info", env = "SLUICE_LOG")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the switch (with no --config: the embedded pcap-replay demo).
    Run {
        /// YAML configuration (docs/config.md).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Stop by itself after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Write the final counters as JSON to this file.
        #[arg(long)]
        stats_json: Option<PathBuf>,
        /// Seconds between live rate lines (overrides stats.interval_s; 0 = off).
        #[arg(long)]
        interval: Option<f64>,
        /// The API's unix socket ("none": no API).
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        api_socket: String,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9477).
        #[arg(long)]
        metrics: Option<SocketAddr>,
        /// Keep the applied state in this file and restore it at start (it wins over --config).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Also serve the API over TCP on this loopback address (needs --api-token-file).
        #[arg(long, requires = "api_token_file")]
        api_tcp: Option<SocketAddr>,
        /// File holding the bearer token the TCP API requires (at least 16 characters).
        #[arg(long)]
        api_token_file: Option<PathBuf>,
    },
    /// Apply a whole desired state (YAML or JSON) to the running switch: all or nothing.
    Apply {
        #[arg(short, long)]
        file: PathBuf,
        /// Validate and show the diff without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// List or show resources: config, bridges, networks, endpoints, routes, ports,
    /// namespaces, network_policies, global_rules (`describe` is the same command).
    #[command(visible_alias = "describe")]
    Get {
        kind: String,
        /// A name (routes: network:prefix, e.g. blue:0.0.0.0/0).
        name: Option<String>,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Delete one resource.
    Delete {
        kind: String,
        name: String,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Show the running switch: counters since the last clear with rates, routes, flows.
    Show {
        #[arg(value_enum)]
        what: Show,
        /// Only this network (routes, flows).
        #[arg(long)]
        network: Option<String>,
        /// Most connections to list (flows; default 1000).
        #[arg(short = 'n', long)]
        limit: Option<usize>,
        /// Seconds the rates are taken over (default 1; the daemon samples once a second).
        #[arg(long)]
        interval: Option<f64>,
        /// Reset the show counters after printing (like pmd-stats-clear).
        #[arg(long)]
        clear: bool,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Trace the next N received packets through the pipeline stages (like VPP's trace).
    Trace {
        /// Packets to trace (1..=256).
        count: u32,
        /// Only packets received on this port.
        #[arg(long)]
        port: Option<String>,
        /// Seconds to wait for the packets.
        #[arg(long, default_value_t = 10.0)]
        wait: f64,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Capture a port's traffic live to a pcapng file (until -c frames or Ctrl-C).
    Capture {
        port: String,
        /// The pcapng file to write.
        #[arg(short = 'w', long = "write")]
        file: PathBuf,
        /// Stop after this many frames.
        #[arg(short = 'c', long)]
        count: Option<u64>,
        #[arg(long, value_enum, default_value_t = sluice_control::capture::Direction::Both)]
        direction: sluice_control::capture::Direction,
        /// Bytes kept of each frame (64..=16384).
        #[arg(long)]
        snaplen: Option<u32>,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Reset the show counters (`sluice clear stats`); metrics stay monotonic.
    Clear {
        #[arg(value_enum)]
        what: ClearWhat,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Change the running switch's log filter (error, warn, info, debug, trace).
    Log {
        level: String,
        #[arg(long, default_value = api::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Validate a configuration and print what it would open, without starting anything.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print the embedded default configuration.
    DefaultConfig,
    /// Generate a pcap of IPv4/UDP test traffic.
    GenPcap {
        #[arg(short, long)]
        output: PathBuf,
        /// Distinct flows (5-tuples).
        #[arg(long, default_value_t = 1024)]
        flows: u32,
        /// Frames in the file.
        #[arg(long, default_value_t = 1024)]
        count: u32,
        /// Frame length without FCS (60 = 64 bytes on the wire).
        #[arg(long, default_value_t = 60)]
        size: usize,
        /// 802.1Q VLAN id to tag frames with.
        #[arg(long)]
        vlan: Option<u16>,
        #[arg(long, default_value = "02:00:00:00:00:02")]
        dst_mac: String,
        #[arg(long, default_value = "02:00:00:00:00:01")]
        src_mac: String,
        /// Destination IPv4 address (of the first flow).
        #[arg(long, default_value = "10.1.0.1")]
        dst_ip: std::net::Ipv4Addr,
        /// Spread destinations over this many consecutive /24s starting at --dst-ip.
        #[arg(long, default_value_t = 0)]
        dst_prefixes: u32,
        /// TCP SYNs (each flow opening a connection) instead of UDP.
        #[arg(long)]
        tcp_syn: bool,
        /// After one round of the flows in order, replay them in a fixed shuffled order
        /// (connections then recur in an order unrelated to their creation).
        #[arg(long)]
        shuffle: bool,
    },
}

/// What `sluice clear` resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ClearWhat {
    /// The counters of the show views.
    Stats,
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, reload_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .init();
    let set_log: run::SetLog = Arc::new(move |level: &str| {
        let f = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        reload_handle.reload(f).map_err(|e| e.to_string())
    });

    match cli.cmd {
        Cmd::Apply { file, dry_run, socket, output } => cli::apply(&socket, &file, dry_run, output),
        Cmd::Get { kind, name, socket, output } => cli::get(&socket, &kind, name.as_deref(), output),
        Cmd::Delete { kind, name, socket } => cli::delete(&socket, &kind, &name),
        Cmd::Show { what, network, limit, interval, clear, socket, output } => {
            cli::show(&socket, what, &cli::ShowOpts { network, limit, interval, clear }, output)
        }
        Cmd::Clear { what: ClearWhat::Stats, socket } => cli::clear(&socket),
        Cmd::Log { level, socket } => cli::set_log(&socket, &level),
        Cmd::Trace { count, port, wait, socket, output } => cli::trace(&socket, count, port.as_deref(), wait, output),
        Cmd::Capture { port, file, count, direction, snaplen, socket } => {
            cli::capture(&socket, &port, &file, count, direction, snaplen)
        }
        Cmd::Run { config, duration, stats_json, interval, api_socket, metrics, state, api_tcp, api_token_file } => {
            if let Some(addr) = api_tcp {
                if !addr.ip().is_loopback() {
                    return config_error(&ConfigError::new("--api-tcp", format!("{addr} is not a loopback address")));
                }
            }
            let api_token: Option<Arc<str>> = match &api_token_file {
                None => None,
                Some(f) => match std::fs::read_to_string(f) {
                    Ok(t) if t.trim().len() >= 16 => Some(Arc::from(t.trim())),
                    Ok(_) => return config_error(&ConfigError::new("--api-token-file", "the token must be at least 16 characters")),
                    Err(e) => return config_error(&ConfigError::new("--api-token-file", format!("{}: {e}", f.display()))),
                },
            };
            // An applied state saved by an earlier run wins over the file it started from.
            let restored = match state.as_ref().map(|p| StateFile::new(p).load()) {
                Some(Loaded::Found(c)) => {
                    tracing::info!(state = %state.as_ref().map(|p| p.display().to_string()).unwrap_or_default(), "restoring applied state");
                    Some(*c)
                }
                Some(Loaded::Corrupt { error, kept_at }) => {
                    tracing::error!(%error, kept_at = %kept_at.display(), "state file is corrupt: kept aside; starting from the configuration");
                    eprintln!("sluice: state file corrupt ({error}); kept at {}", kept_at.display());
                    None
                }
                Some(Loaded::Missing) | None => None,
            };
            let demo_dir = (config.is_none() && restored.is_none()).then(demo::workdir);
            let cfg = match (&config, restored) {
                (_, Some(c)) => c,
                _ => match &config {
                Some(path) => match Config::load(path) {
                    Ok(c) => c,
                    Err(e) => return config_error(&e),
                },
                None => {
                    let dir = demo_dir.as_ref().expect("demo dir set when no config");
                    eprintln!("sluice: no --config given: running the embedded default (pcap replay -> L2 bridge -> null); Ctrl-C stops");
                    match demo::prepare(dir) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("sluice: {e}");
                            return ExitCode::from(1);
                        }
                    }
                }
                },
            };
            let interval_s = interval.unwrap_or(cfg.stats.interval_s as f64);
            let opts = RunOptions {
                duration: match duration.map(Duration::try_from_secs_f64) {
                    Some(Ok(d)) => Some(d),
                    Some(Err(_)) => return config_error(&ConfigError::new("--duration", "must be a positive number of seconds")),
                    None => None,
                },
                stats_json,
                interval: (interval_s > 0.0).then(|| Duration::from_secs_f64(interval_s)),
                api_socket: (api_socket != "none").then(|| PathBuf::from(api_socket)),
                metrics,
                api_tcp,
                api_token,
                state,
                set_log: Some(set_log),
            };
            let result = run::run(&cfg, &opts, started);
            if let Some(dir) = demo_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            match result {
                Ok(report) => {
                    print!("{}", stats::summary(&report));
                    if report.mempool.in_use_after_stop != 0 {
                        eprintln!("sluice: {} mbufs leaked", report.mempool.in_use_after_stop);
                        return ExitCode::from(3);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => match e.downcast_ref::<ConfigError>() {
                    Some(ce) => config_error(ce),
                    None => {
                        eprintln!("sluice: {e}");
                        ExitCode::from(1)
                    }
                },
            }
        }
        Cmd::Check { config } => match Config::load(&config).and_then(|c| Plan::new(&c)) {
            Ok(plan) => {
                println!("configuration OK");
                println!("  EAL: {}", plan.eal_args.join(" "));
                println!("  mempool: {} mbufs of {} bytes", plan.mbufs, plan.data_room);
                for p in &plan.ports {
                    println!("  port {} ({}): {} rx / {} tx queues", p.name, p.device, p.rx_queues, p.tx_queues);
                }
                for (i, w) in plan.workers.iter().enumerate() {
                    println!("  worker {i} on cpu {}: polls {:?}", w.core, w.rx);
                }
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Cmd::DefaultConfig => {
            print!("{}", demo::config_text(&demo::workdir().join("udp-1k-flows.pcap")));
            ExitCode::SUCCESS
        }
        Cmd::GenPcap { output, flows, count, size, vlan, dst_mac, src_mac, dst_ip, dst_prefixes, tcp_syn, shuffle } => {
            let (Ok(dst_mac), Ok(src_mac)) = (dst_mac.parse(), src_mac.parse()) else {
                return config_error(&ConfigError::new("--dst-mac/--src-mac", "not a MAC address"));
            };
            if flows == 0 || count == 0 || !(42..=9000).contains(&size) {
                return config_error(&ConfigError::new("--flows/--count/--size", "flows and count > 0, size 42..9000"));
            }
            let spec = TrafficSpec { dst_mac, src_mac, vlan, flows, count, frame_len: size, dst_ip, dst_prefixes, tcp_syn, shuffle };
            match pcapgen::generate(&output, &spec) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sluice: {}: {e}", output.display());
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("sluice: config error: {e}");
    ExitCode::from(2)
}
