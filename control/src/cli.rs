//! The CLI commands that talk to a running sluice through its API socket.

use std::path::Path;
use std::process::ExitCode;

use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::api::client::call;

/// `println!` that does not panic when stdout is a closed pipe (`sluice get | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` counterpart of [`out!`].
macro_rules! out_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sluice: {msg}");
    ExitCode::from(1)
}

/// Prints an API error body (`{"error": {"field", "message"}}`) and maps it to an exit code:
/// 2 for a rejected request (4xx), 1 otherwise.
fn api_error(status: StatusCode, body: &[u8]) -> ExitCode {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = v["error"]["field"].as_str().unwrap_or("");
    let msg = v["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    if field.is_empty() {
        eprintln!("sluice: {status}: {msg}");
    } else {
        eprintln!("sluice: {status}: {field}: {msg}");
    }
    ExitCode::from(if status.is_client_error() { 2 } else { 1 })
}

fn print_value(v: &Value, out: Output) {
    match out {
        Output::Yaml => out_raw!("{}", serde_yaml_ng::to_string(v).unwrap_or_default()),
        _ => out!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

/// `sluice apply -f FILE`: sends the whole desired state; prints what changed.
pub fn apply(socket: &Path, file: &Path, dry_run: bool, out: Output) -> ExitCode {
    let body = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    let ct = if file.extension().is_some_and(|e| e == "json") { "application/json" } else { "application/yaml" };
    let path = if dry_run { "/v1/apply?dry_run=true" } else { "/v1/apply" };
    match call(socket, Method::POST, path, Some((ct, body))) {
        Err(e) => fail(e),
        Ok((s, b)) if !s.is_success() => api_error(s, &b),
        Ok((_, b)) => {
            let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
            if out != Output::Table {
                print_value(&v, out);
                return ExitCode::SUCCESS;
            }
            let verb = if v["applied"].as_bool() == Some(true) { "applied" } else if dry_run { "would apply" } else { "no change" };
            out!("{verb} (epoch {})", v["epoch"]);
            for (what, sign) in [("added", '+'), ("changed", '~'), ("removed", '-')] {
                if let Some(kinds) = v["diff"][what].as_object() {
                    for (kind, names) in kinds {
                        for n in names.as_array().into_iter().flatten() {
                            out!("  {sign} {kind}/{}", n.as_str().unwrap_or(""));
                        }
                    }
                }
            }
            ExitCode::SUCCESS
        }
    }
}

/// `sluice get KIND [NAME]`.
pub fn get(socket: &Path, kind: &str, name: Option<&str>, out: Output) -> ExitCode {
    let path = match (kind, name) {
        ("config", _) => "/v1/config".to_string(),
        (k, Some(n)) => format!("/v1/{k}/{}", encode(n)),
        (k, None) => format!("/v1/{k}"),
    };
    match call(socket, Method::GET, &path, None) {
        Err(e) => fail(e),
        Ok((s, b)) if !s.is_success() => api_error(s, &b),
        Ok((_, b)) => {
            let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
            match (out, &v) {
                (Output::Table, Value::Array(items)) => {
                    for i in items {
                        let name = i["name"].as_str().map(str::to_string).unwrap_or_else(|| {
                            format!("{}:{}", i["network"].as_str().unwrap_or(""), i["prefix"].as_str().unwrap_or(""))
                        });
                        out!("{name}");
                    }
                }
                (Output::Table, _) => print_value(&v, Output::Yaml),
                _ => print_value(&v, out),
            }
            ExitCode::SUCCESS
        }
    }
}

/// `sluice delete KIND NAME`.
pub fn delete(socket: &Path, kind: &str, name: &str) -> ExitCode {
    match call(socket, Method::DELETE, &format!("/v1/{kind}/{}", encode(name)), None) {
        Err(e) => fail(e),
        Ok((s, b)) if !s.is_success() => api_error(s, &b),
        Ok(_) => {
            out!("deleted {kind}/{name}");
            ExitCode::SUCCESS
        }
    }
}

/// `sluice log LEVEL`: changes the daemon's log filter.
pub fn set_log(socket: &Path, level: &str) -> ExitCode {
    let body = serde_json::json!({ "level": level }).to_string().into_bytes();
    match call(socket, Method::PUT, "/v1/log", Some(("application/json", body))) {
        Err(e) => fail(e),
        Ok((s, b)) if !s.is_success() => api_error(s, &b),
        Ok(_) => ExitCode::SUCCESS,
    }
}

/// What `sluice show` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Show {
    /// Totals, workers and ports.
    Stats,
    /// Per worker: packets, rates, busy/idle cycles, cycles per packet, and the rx queues
    /// each polls (like `ovs-appctl dpif-netdev/pmd-stats-show` and `pmd-rxq-show`).
    Workers,
    /// Per port and queue: the workers' and the device's counters.
    Ports,
    /// Drops by reason, total and per worker.
    Drops,
    /// The effective FIB of each network.
    Routes,
    /// The workers' connections.
    Flows,
}

/// Options of `sluice show`.
#[derive(Clone, Debug, Default)]
pub struct ShowOpts {
    /// Only this network (routes, flows).
    pub network: Option<String>,
    /// Most connections (flows).
    pub limit: Option<usize>,
    /// Seconds the rates are taken over.
    pub interval: Option<f64>,
    /// Reset the show counters after printing.
    pub clear: bool,
}

/// GETs `path` and returns its JSON, or the exit code of the failure (already reported).
fn get_json(socket: &Path, path: &str) -> Result<Value, ExitCode> {
    match call(socket, Method::GET, path, None) {
        Err(e) => Err(fail(e)),
        Ok((s, b)) if !s.is_success() => Err(api_error(s, &b)),
        Ok((_, b)) => serde_json::from_slice(&b).map_err(|e| fail(format!("bad answer from {path}: {e}"))),
    }
}

/// `sluice clear stats`: the show views count from zero again (Prometheus metrics and
/// `/v1/stats` stay monotonic).
pub fn clear(socket: &Path) -> ExitCode {
    match call(socket, Method::POST, "/v1/stats/clear", None) {
        Err(e) => fail(e),
        Ok((s, b)) if !s.is_success() => api_error(s, &b),
        Ok(_) => ExitCode::SUCCESS,
    }
}

/// `sluice show stats|workers|ports|drops|routes|flows`.
pub fn show(socket: &Path, what: Show, opts: &ShowOpts, out: Output) -> ExitCode {
    let mut query: Vec<String> = Vec::new();
    if let Some(n) = &opts.network {
        query.push(format!("network={}", encode(n)));
    }
    if let Some(l) = opts.limit {
        query.push(format!("limit={l}"));
    }
    if let Some(i) = opts.interval {
        query.push(format!("interval={i}"));
    }
    let name = match what {
        Show::Stats => "stats",
        Show::Workers => "workers",
        Show::Ports => "ports",
        Show::Drops => "drops",
        Show::Routes => "routes",
        Show::Flows => "flows",
    };
    let path = if query.is_empty() { format!("/v1/show/{name}") } else { format!("/v1/show/{name}?{}", query.join("&")) };
    let v = match get_json(socket, &path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if out != Output::Table {
        print_value(&v, out);
    } else {
        let text = match what {
            Show::Stats => table::stats(&v),
            Show::Workers => table::workers(&v),
            Show::Ports => table::ports(&v),
            Show::Drops => table::drops(&v),
            Show::Routes => table::routes(&v),
            Show::Flows => table::flows(&v),
        };
        out_raw!("{text}");
    }
    if opts.clear {
        return clear(socket);
    }
    ExitCode::SUCCESS
}

/// Text tables of the show views (from the API's JSON).
pub mod table {
    use std::fmt::Write;

    use serde_json::Value;

    use crate::show::RxqRow;
    use crate::stats::{PortReport, Report, WorkerReport};

    fn header(v: &Value) -> String {
        let since = match v["cleared_s_ago"].as_f64() {
            Some(s) => format!("counters since the clear {s:.1} s ago"),
            None => "counters since start".to_string(),
        };
        match v["interval_s"].as_f64() {
            Some(i) if i > 0.0 => format!("\n({since}; rates over the last {i:.1} s)\n"),
            _ => format!("\n({since}; no rate sample yet)\n"),
        }
    }

    fn list<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<T> {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    pub fn workers(v: &Value) -> String {
        let ws: Vec<WorkerReport> = list(&v["workers"]);
        let mut s = String::new();
        workers_table(&mut s, &ws);
        rxq_table(&mut s, &ws, &list::<RxqRow>(&v["rx_queues"]));
        s + &header(v)
    }

    fn workers_table(s: &mut String, ws: &[WorkerReport]) {
        let _ = writeln!(
            s,
            "{:>6} {:>4} {:>14} {:>12} {:>14} {:>12} {:>10} {:>6} {:>8} {:>16} {:>16}",
            "worker", "cpu", "rx", "rx/s", "tx", "tx/s", "drops", "busy%", "cyc/pkt", "busy-cycles", "idle-cycles"
        );
        for w in ws {
            let _ = writeln!(
                s,
                "{:>6} {:>4} {:>14} {:>12.0} {:>14} {:>12.0} {:>10} {:>6.1} {:>8.1} {:>16} {:>16}",
                w.id,
                w.core,
                w.rx_packets,
                w.rx_pps,
                w.tx_packets,
                w.tx_pps,
                w.drops.values().sum::<u64>(),
                w.busy_pct,
                w.cycles_per_packet,
                w.busy_cycles,
                w.idle_cycles
            );
        }
    }

    pub fn ports(v: &Value) -> String {
        let ps: Vec<PortReport> = list(&v["ports"]);
        let mut s = String::new();
        ports_table(&mut s, &ps);
        s + &header(v)
    }

    fn ports_table(s: &mut String, ps: &[PortReport]) {
        let _ = writeln!(
            s,
            "{:<12} {:<14} {:>14} {:>12} {:>14} {:>12} {:>16} {:>16} {:>9} {:>9} {:>9} {:>9}",
            "port", "driver", "rx", "rx/s", "tx", "tx/s", "rx-bytes", "tx-bytes", "imissed", "ierrors", "nombuf", "oerrors"
        );
        for p in ps {
            let _ = writeln!(
                s,
                "{:<12} {:<14} {:>14} {:>12.0} {:>14} {:>12.0} {:>16} {:>16} {:>9} {:>9} {:>9} {:>9}",
                p.name,
                p.driver,
                p.rx_packets,
                p.rx_pps,
                p.tx_packets,
                p.tx_pps,
                p.rx_bytes,
                p.tx_bytes,
                p.ethdev.imissed,
                p.ethdev.ierrors,
                p.ethdev.rx_nombuf,
                p.ethdev.oerrors
            );
        }
        let _ = writeln!(s, "\n{:<12} {:<8} {:>6} {:>14} {:>12} {:>16} {:>14} {:>16}", "port", "queue", "worker", "packets", "pps", "bytes", "dev-packets", "dev-bytes");
        for p in ps {
            for q in &p.rx_queues {
                let w = q.worker.map(|w| w.to_string()).unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    s,
                    "{:<12} {:<8} {:>6} {:>14} {:>12.0} {:>16} {:>14} {:>16}",
                    p.name,
                    format!("rx {}", q.queue),
                    w,
                    q.packets,
                    q.rx_pps,
                    q.bytes,
                    q.ethdev_packets,
                    q.ethdev_bytes
                );
            }
            for q in p.tx_queues.iter().filter(|q| q.packets > 0 || q.ethdev_packets > 0) {
                let _ = writeln!(
                    s,
                    "{:<12} {:<8} {:>6} {:>14} {:>12.0} {:>16} {:>14} {:>16}",
                    p.name,
                    format!("tx {}", q.queue),
                    q.worker,
                    q.packets,
                    q.tx_pps,
                    q.bytes,
                    q.ethdev_packets,
                    q.ethdev_bytes
                );
            }
        }
    }

    /// pmd-rxq-show: each worker's rx queues and their share of its packets.
    fn rxq_table(s: &mut String, ws: &[WorkerReport], rows: &[RxqRow]) {
        let _ = writeln!(s, "\n{:>6} {:<12} {:>6} {:>14} {:>12} {:>7}", "worker", "port", "queue", "packets", "pps", "share%");
        for w in ws {
            for q in rows.iter().filter(|q| q.worker == w.id) {
                let share = if w.rx_packets == 0 { 0.0 } else { 100.0 * q.packets as f64 / w.rx_packets as f64 };
                let _ = writeln!(s, "{:>6} {:<12} {:>6} {:>14} {:>12.0} {:>7.1}", w.id, q.port, q.queue, q.packets, q.rx_pps, share);
            }
        }
    }

    pub fn stats(v: &Value) -> String {
        let r: Report = serde_json::from_value(v.clone()).unwrap_or_default();
        let mut s = String::new();
        let t = &r.totals;
        let _ = writeln!(
            s,
            "total: rx {} ({:.0}/s)  tx {} ({:.0}/s)  dropped {} ({:.0}/s)",
            t.rx_packets, t.rx_pps, t.tx_packets, t.tx_pps, t.drops_total, t.drop_pps
        );
        for (k, n) in &t.drops {
            let _ = writeln!(s, "  drop {k:<24} {n}");
        }
        s.push('\n');
        workers_table(&mut s, &r.workers);
        rxq_table(&mut s, &r.workers, &crate::show::rxq_rows(&r.ports));
        s.push('\n');
        ports_table(&mut s, &r.ports);
        s + &header(v)
    }

    pub fn drops(v: &Value) -> String {
        let mut s = String::new();
        let total = v["totals"]["drops_total"].as_u64().unwrap_or(0);
        let _ = writeln!(s, "{:<24} {:>14} {:>10}  per worker", "reason", "packets", "per s");
        if let Some(m) = v["totals"]["drops"].as_object() {
            for (reason, n) in m {
                let per: Vec<String> = v["workers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| format!("{}:{}", w["id"], w["drops"][reason].as_u64().unwrap_or(0)))
                    .collect();
                let _ = writeln!(s, "{reason:<24} {:>14} {:>10}  {}", n.as_u64().unwrap_or(0), "", per.join(" "));
            }
        }
        let _ = writeln!(s, "{:<24} {:>14} {:>10.0}", "total", total, v["totals"]["drop_pps"].as_f64().unwrap_or(0.0));
        s + &header(v)
    }

    /// A next hop in one line.
    pub fn next_hop(nh: &Value) -> String {
        let vlan = |v: &Value| v["vlan"].as_u64().map(|x| format!(" vlan {x}")).unwrap_or_default();
        match nh["type"].as_str().unwrap_or("") {
            "endpoint" => format!("endpoint {} on {} {}{}", nh["endpoint"].as_str().unwrap_or("?"), nh["port"].as_str().unwrap_or("?"), nh["mac"].as_str().unwrap_or(""), vlan(nh)),
            "gateway" => format!("gateway {} on {}{}", nh["mac"].as_str().unwrap_or("?"), nh["port"].as_str().unwrap_or("?"), vlan(nh)),
            "ecmp" => {
                let m: Vec<String> = nh["members"].as_array().into_iter().flatten().map(next_hop).collect();
                format!("ecmp [{}]", m.join(", "))
            }
            "network" => format!("network {}", nh["network"].as_str().unwrap_or("?")),
            other => other.to_string(),
        }
    }

    pub fn routes(v: &Value) -> String {
        let mut s = String::new();
        for net in v.as_array().into_iter().flatten() {
            let _ = writeln!(s, "network {} (vrf {}, epoch {}):", net["network"].as_str().unwrap_or(""), net["vrf"], net["epoch"]);
            let _ = writeln!(s, "  {:<44} {:<9} next hop", "prefix", "origin");
            for r in net["routes"].as_array().into_iter().flatten() {
                let _ = writeln!(s, "  {:<44} {:<9} {}", r["prefix"].as_str().unwrap_or(""), r["origin"].as_str().unwrap_or(""), next_hop(&r["next_hop"]));
            }
        }
        s
    }

    fn verdict(a: &Value) -> String {
        match a["verdict"].as_str().unwrap_or("") {
            "forward" => format!("fwd {} {}", a["port"].as_str().unwrap_or("?"), a["dst_mac"].as_str().unwrap_or("")),
            "deny" => format!("deny {}", a["reason"].as_str().unwrap_or("")),
            other => other.to_string(),
        }
    }

    pub fn flows(v: &Value) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>3} {:<10} {:<6} {:<50} {:<12} {:>9} {:>9} {:>15} {:>19} {:>6}  verdict (orig / reply)",
            "w", "network", "proto", "orig", "state", "age", "idle", "packets o/r", "bytes o/r", "epoch"
        );
        let ep = |e: &Value| {
            let (src, dst) = (e["src"].as_str().unwrap_or(""), e["dst"].as_str().unwrap_or(""));
            let addr = |a: &str, p: &Value| if a.contains(':') { format!("[{a}]:{p}") } else { format!("{a}:{p}") };
            format!("{} -> {}", addr(src, &e["sport"]), addr(dst, &e["dport"]))
        };
        for f in v["flows"].as_array().into_iter().flatten() {
            let secs = |k: &str| format!("{:.1}s", f[k].as_u64().unwrap_or(0) as f64 / 1e3);
            let _ = writeln!(
                s,
                "{:>3} {:<10} {:<6} {:<50} {:<12} {:>9} {:>9} {:>15} {:>19} {:>6}  {} / {}",
                f["worker"],
                f["network"].as_str().unwrap_or("-"),
                f["protocol"].as_str().unwrap_or(""),
                ep(&f["orig"]),
                f["state"].as_str().unwrap_or(""),
                secs("age_ms"),
                secs("idle_ms"),
                format!("{}/{}", f["packets"]["orig"], f["packets"]["reply"]),
                format!("{}/{}", f["bytes"]["orig"], f["bytes"]["reply"]),
                f["epoch"],
                verdict(&f["action"]["orig"]),
                verdict(&f["action"]["reply"]),
            );
        }
        let _ = writeln!(
            s,
            "{} connection(s){}{}",
            v["count"],
            if v["truncated"].as_bool() == Some(true) { ", truncated (raise -n)" } else { "" },
            if v["complete"].as_bool() == Some(false) && v["truncated"].as_bool() != Some(true) { ", INCOMPLETE: a worker did not answer in time" } else { "" }
        );
        s
    }
}

/// Percent-encodes what a path segment cannot hold (a route name's '/').
fn encode(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | ':' | '~' => c.to_string(),
            c => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
        })
        .collect()
}

/// `sluice trace N [--port P] [--wait S]`: arms the packet trace, waits until N packets
/// were traced (or S seconds passed) and prints them. Exit 1 when fewer arrived in time.
pub fn trace(socket: &Path, count: u32, port: Option<&str>, wait_s: f64, out: Output) -> ExitCode {
    let body = serde_json::json!({ "count": count, "port": port }).to_string().into_bytes();
    match call(socket, Method::POST, "/v1/trace", Some(("application/json", body))) {
        Err(e) => return fail(e),
        Ok((s, b)) if !s.is_success() => return api_error(s, &b),
        Ok(_) => {}
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(wait_s.max(0.0));
    let v = loop {
        let v = match call(socket, Method::GET, "/v1/trace", None) {
            Err(e) => return fail(e),
            Ok((s, b)) if !s.is_success() => return api_error(s, &b),
            Ok((_, b)) => serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
        };
        let got = v["records"].as_array().map_or(0, Vec::len);
        if got >= count as usize || std::time::Instant::now() >= deadline {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    match out {
        Output::Table => out_raw!("{}", crate::trace::render_text(&v)),
        _ => print_value(&v, out),
    }
    let got = v["records"].as_array().map_or(0, Vec::len);
    if got < count as usize {
        eprintln!("sluice: {got} of {count} packets traced within {wait_s} s (the trace stays armed; `sluice trace` again re-arms it)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `sluice capture PORT -w FILE [-c N] [--direction D]`: captures live to pcapng until N
/// frames were written or Ctrl-C, then downloads the finished file to FILE.
pub fn capture(
    socket: &Path,
    port: &str,
    file: &Path,
    count: Option<u64>,
    direction: crate::capture::Direction,
    snaplen: Option<u32>,
) -> ExitCode {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, std::sync::Arc::clone(&stop)) {
            return fail(format!("installing the signal handler: {e}"));
        }
    }
    let req = serde_json::json!({ "port": port, "direction": direction, "count": count, "snaplen": snaplen });
    let st = match call(socket, Method::POST, "/v1/captures", Some(("application/json", req.to_string().into_bytes()))) {
        Err(e) => return fail(e),
        Ok((s, b)) if !s.is_success() => return api_error(s, &b),
        Ok((_, b)) => serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
    };
    let Some(id) = st["id"].as_u64() else { return fail(format!("bad capture answer: {st}")) };
    eprintln!("sluice: capturing {port} ({direction:?}) as capture {id}; Ctrl-C stops");
    let mut asked_stop = false;
    let status = loop {
        let st = match call(socket, Method::GET, &format!("/v1/captures/{id}"), None) {
            Err(e) => return fail(e),
            Ok((s, b)) if !s.is_success() => return api_error(s, &b),
            Ok((_, b)) => serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
        };
        if st["running"].as_bool() != Some(true) {
            break st;
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) && !asked_stop {
            asked_stop = true;
            if let Err(e) = call(socket, Method::POST, &format!("/v1/captures/{id}/stop"), None) {
                return fail(e);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let bytes = match call(socket, Method::GET, &format!("/v1/captures/{id}/pcapng"), None) {
        Err(e) => return fail(e),
        Ok((s, b)) if !s.is_success() => return api_error(s, &b),
        Ok((_, b)) => b,
    };
    // Written aside and renamed: FILE is either absent or a complete capture.
    let tmp = file.with_extension("pcapng.part");
    if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, file)) {
        let _ = std::fs::remove_file(&tmp);
        return fail(format!("{}: {e}", file.display()));
    }
    let _ = call(socket, Method::DELETE, &format!("/v1/captures/{id}"), None);
    if let Some(e) = status["error"].as_str() {
        return fail(format!("capture {id} failed: {e}"));
    }
    out!("{} packets captured to {} ({} capture drops)", status["packets"], file.display(), status["capture_drops"]);
    ExitCode::SUCCESS
}
