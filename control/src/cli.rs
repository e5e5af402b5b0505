//! The CLI commands that talk to a running sluice through its API socket.

use std::path::Path;
use std::process::ExitCode;

use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::api::client::call;
use crate::stats::Report;

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
    Stats,
    Workers,
    Ports,
    Drops,
}

/// `sluice show stats|workers|ports|drops`.
pub fn show(socket: &Path, what: Show, out: Output) -> ExitCode {
    let (s, b) = match call(socket, Method::GET, "/v1/stats", None) {
        Err(e) => return fail(e),
        Ok(x) => x,
    };
    if !s.is_success() {
        return api_error(s, &b);
    }
    let r: Report = match serde_json::from_slice(&b) {
        Ok(r) => r,
        Err(e) => return fail(format!("bad stats answer: {e}")),
    };
    if out != Output::Table {
        let v = match what {
            Show::Stats => serde_json::to_value(&r),
            Show::Workers => serde_json::to_value(&r.workers),
            Show::Ports => serde_json::to_value(&r.ports),
            Show::Drops => serde_json::to_value(&r.totals.drops),
        };
        print_value(&v.unwrap_or(Value::Null), out);
        return ExitCode::SUCCESS;
    }
    match what {
        Show::Stats => out_raw!("{}", crate::stats::summary(&r)),
        Show::Workers => {
            out!("{:>6} {:>4} {:>14} {:>14} {:>10} {:>10} {:>10} {:>8} {:>8}", "worker", "cpu", "rx", "tx", "drops", "routed", "flooded", "busy%", "cyc/pkt");
            for w in &r.workers {
                let busy = 100.0 * w.busy_cycles as f64 / (w.busy_cycles + w.idle_cycles).max(1) as f64;
                out!(
                    "{:>6} {:>4} {:>14} {:>14} {:>10} {:>10} {:>10} {:>8.1} {:>8.1}",
                    w.id,
                    w.core,
                    w.rx_packets,
                    w.tx_packets,
                    w.drops.values().sum::<u64>(),
                    w.routed,
                    w.flooded,
                    busy,
                    w.cycles_per_packet
                );
            }
        }
        Show::Ports => {
            out!("{:<12} {:<16} {:>14} {:>14} {:>10} {:>10}", "port", "driver", "rx", "tx", "imissed", "oerrors");
            for p in &r.ports {
                out!(
                    "{:<12} {:<16} {:>14} {:>14} {:>10} {:>10}",
                    p.name, p.driver, p.rx_packets, p.tx_packets, p.ethdev.imissed, p.ethdev.oerrors
                );
            }
        }
        Show::Drops => {
            for (reason, n) in &r.totals.drops {
                out!("{reason:<24} {n}");
            }
        }
    }
    ExitCode::SUCCESS
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
