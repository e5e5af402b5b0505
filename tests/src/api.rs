//! Helpers for the control-API tests (`tests/api.rs`): a sluice daemon with its API
//! socket, requests through sluice's own client (`sluice_control::api::client`) with a
//! hard timeout, API error checks and JSON comparisons.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use hyper::{Method, StatusCode};
use serde_json::Value;
use sluice_control::api::client;

use crate::{run_sluice, spawn_sluice, start_past_fanout_collisions, Finished, Report, Sandbox, Sluice, GRACE};

/// `--duration` of every daemon: long enough for any test, which stops it with SIGTERM.
pub const RUN_S: u64 = 20;

/// How long a daemon may take to answer on its socket after it was started. The API comes
/// up once every worker polls, and a debug build's workers, sharing a core with parallel
/// tests' busy pollers, can take seconds to build their tables: a bound, not a target.
pub const READY: Duration = Duration::from_secs(15);

/// One API request's limit: the control thread never blocks, so this is generous.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// An API answer: status, body as JSON (`Null` when empty, a JSON string when the body
/// is not JSON), and the raw bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub json: Value,
    pub raw: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// `error.field` of an error body ("" if absent).
    pub fn field(&self) -> &str {
        self.json.pointer("/error/field").and_then(Value::as_str).unwrap_or("")
    }

    /// Asserts the status is `status` and returns the body as JSON.
    #[track_caller]
    pub fn expect(&self, status: StatusCode, what: &str) -> &Value {
        assert_eq!(self.status, status, "{what}: got {} {}", self.status, self.text());
        &self.json
    }

    /// Asserts an API error: `status`, the `{"error": {"field", "message"}}` schema, the
    /// field equal to `field` and a non-empty message.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, field: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: got {} {}", self.status, self.text());
        let e = self.json.get("error").and_then(Value::as_object);
        let e = e.unwrap_or_else(|| panic!("{what}: the body is not an API error: {}", self.text()));
        assert_eq!(e.len(), 2, "{what}: error has exactly field and message: {}", self.text());
        assert_eq!(self.field(), field, "{what}: wrong field in {}", self.text());
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
        assert!(!msg.is_empty(), "{what}: empty message: {}", self.text());
    }
}

/// One request over the unix socket with sluice's client, bounded by [`REQUEST_LIMIT`].
/// `body` is (content type, bytes).
pub fn request(socket: &Path, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<Answer, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let fut = client::request(socket, method.clone(), path, body);
    let (status, bytes) = rt
        .block_on(async { tokio::time::timeout(REQUEST_LIMIT, fut).await })
        .map_err(|_| format!("{method} {path}: no answer within {REQUEST_LIMIT:?}"))??;
    let raw = bytes.to_vec();
    let json = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
    };
    Ok(Answer { status, json, raw })
}

/// A free TCP port on 127.0.0.1 (bound then released: the kernel does not hand it out
/// again at once).
pub fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr")
}

/// A plain HTTP/1.1 GET over TCP (for `--metrics`); returns (status line, headers, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    http_get_with(addr, path, &[])
}

/// [`http_get`] with extra request headers (e.g. `Authorization`).
pub fn http_get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (String, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(REQUEST_LIMIT)).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_ascii_lowercase(), body.to_string())
}

/// A running `sluice run` with its API socket.
pub struct Daemon {
    pub sluice: Sluice,
    pub socket: PathBuf,
    pub tag: String,
}

/// Starts `sluice run --config <config> --api-socket <socket> --duration RUN_S --interval 0
/// --stats-json <tag>.json <extra...>` in the sandbox, without waiting for it.
pub fn spawn_daemon(sb: &Sandbox, tag: &str, config: &Path, socket: &Path, extra: &[&str]) -> Daemon {
    let mut args: Vec<String> = ["run", "--config"].map(String::from).to_vec();
    args.push(config.display().to_string());
    args.push("--api-socket".into());
    args.push(socket.display().to_string());
    args.extend(["--duration".into(), RUN_S.to_string(), "--interval".into(), "0".into()]);
    args.extend(["--stats-json".into(), format!("{tag}.json")]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let sluice = spawn_sluice(sb.path(), tag, &args, Some(sb.file(&format!("{tag}.json"))));
    Daemon { sluice, socket: socket.to_path_buf(), tag: tag.to_string() }
}

impl Daemon {
    /// Writes `yaml` to `<tag>.yaml`, starts sluice with the socket `<tag>.sock` and
    /// waits until the API answers.
    pub fn start(sb: &Sandbox, tag: &str, yaml: &str, extra: &[&str]) -> Daemon {
        let cfg = sb.write_config(&format!("{tag}.yaml"), yaml);
        Self::start_at(sb, tag, &cfg, &sb.file(&format!("{tag}.sock")), extra)
    }

    /// Starts sluice on `config` with the API at `socket` and waits until it answers.
    /// Starts again when an af_packet port collided with a parallel test's sluice on its
    /// fanout group ([`start_past_fanout_collisions`]).
    pub fn start_at(sb: &Sandbox, tag: &str, config: &Path, socket: &Path, extra: &[&str]) -> Daemon {
        let (d, ready) = start_past_fanout_collisions(
            tag,
            || {
                let mut d = spawn_daemon(sb, tag, config, socket, extra);
                let ready = d.try_ready();
                (d, ready)
            },
            |d| d.sluice.stderr_now(),
        );
        if let Err(why) = ready {
            panic!("{why}\n{}", d.output());
        }
        d
    }

    /// Waits (at most [`READY`]) until the socket file exists and `GET /v1/stats`
    /// answers 200 (a stale socket file from a killed run refuses connections until the
    /// new daemon has replaced it). Panics with sluice's output if it exits or times out.
    pub fn wait_ready(&mut self) {
        if let Err(why) = self.try_ready() {
            panic!("{why}\n{}", self.output());
        }
    }

    /// [`Daemon::wait_ready`] that returns why it is not ready instead of panicking.
    fn try_ready(&mut self) -> Result<(), String> {
        let t0 = Instant::now();
        let mut last = String::from("socket file not there yet");
        while t0.elapsed() < READY {
            if self.exited() {
                return Err(format!("sluice exited before its API answered ({last})"));
            }
            if self.socket.exists() {
                match request(&self.socket, Method::GET, "/v1/stats", None) {
                    Ok(a) if a.status == StatusCode::OK => return Ok(()),
                    Ok(a) => last = format!("GET /v1/stats: {} {}", a.status, a.text()),
                    Err(e) => last = e,
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("the API at {} did not answer within {READY:?} ({last})", self.socket.display()))
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        // A descendant module may use `Sluice`'s private child handle.
        self.sluice.child.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// stdout and stderr so far, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.tag,
            std::fs::read_to_string(&self.sluice.stdout_path).unwrap_or_default(),
            self.tag,
            self.sluice.stderr_now()
        )
    }

    /// Any request; panics (with sluice's output) if there is no answer.
    #[track_caller]
    pub fn call(&self, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Answer {
        request(&self.socket, method.clone(), path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.output()))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None)
    }

    /// A request with a JSON body (`application/json`).
    #[track_caller]
    pub fn json(&self, method: Method, path: &str, body: &Value) -> Answer {
        self.call(method, path, Some(("application/json", serde_json::to_vec(body).unwrap())))
    }

    /// A request with a YAML body (`application/yaml`).
    #[track_caller]
    pub fn yaml(&self, method: Method, path: &str, body: &str) -> Answer {
        self.call(method, path, Some(("application/yaml", body.as_bytes().to_vec())))
    }

    #[track_caller]
    pub fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None)
    }

    /// `GET /v1/config` as JSON (asserting 200).
    #[track_caller]
    pub fn config(&self) -> Value {
        self.get("/v1/config").expect(StatusCode::OK, "GET /v1/config").clone()
    }

    /// `GET /v1/config` as the raw bytes (asserting 200).
    #[track_caller]
    pub fn config_bytes(&self) -> Vec<u8> {
        let a = self.get("/v1/config");
        a.expect(StatusCode::OK, "GET /v1/config");
        a.raw
    }

    /// Runs the CLI `sluice <args> --socket <this socket>` (20 s limit).
    pub fn cli(&self, sb: &Sandbox, tag: &str, args: &[&str]) -> Finished {
        let sock = self.socket.display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--socket", &sock]);
        run_sluice(sb.path(), tag, &all, Duration::from_secs(20))
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub fn kill9(self) -> Finished {
        let _ = std::process::Command::new("kill").arg("-KILL").arg(self.sluice.pid().to_string()).status();
        self.sluice.wait(Duration::from_secs(RUN_S) + GRACE)
    }

    /// Stops with SIGTERM, asserts exit 0 and no leaked mbuf, returns the final report.
    pub fn stop(self) -> Report {
        self.sluice.terminate();
        let f = self.sluice.wait(Duration::from_secs(RUN_S) + GRACE);
        f.report()
    }

    /// Like [`Daemon::stop`], also returning how it finished.
    pub fn stop_finished(self) -> (Finished, Report) {
        self.sluice.terminate();
        let f = self.sluice.wait(Duration::from_secs(RUN_S) + GRACE);
        let r = f.report();
        (f, r)
    }
}

/// Asserts every key `sent` gives is in `got` with the same value (recursively; lists
/// element by element, of the same length): `got` is what was sent plus defaults.
#[track_caller]
pub fn assert_subset(sent: &Value, got: &Value, what: &str) {
    if let Some(diff) = subset_diff(sent, got, "") {
        panic!("{what}: the server's copy differs from what was sent at {diff}\nsent: {sent}\ngot:  {got}");
    }
}

fn subset_diff(sent: &Value, got: &Value, at: &str) -> Option<String> {
    match (sent, got) {
        (Value::Object(s), Value::Object(g)) => s.iter().find_map(|(k, v)| match g.get(k) {
            None => Some(format!("{at}.{k} (missing)")),
            Some(gv) => subset_diff(v, gv, &format!("{at}.{k}")),
        }),
        (Value::Array(s), Value::Array(g)) if s.len() == g.len() => {
            s.iter().zip(g).enumerate().find_map(|(i, (a, b))| subset_diff(a, b, &format!("{at}[{i}]")))
        }
        _ if sent == got => None,
        _ => Some(format!("{at}: sent {sent}, got {got}")),
    }
}

/// The names in `diff.<what>.<kind>` of an apply answer.
pub fn diff_names(answer: &Value, what: &str, kind: &str) -> Vec<String> {
    answer
        .pointer(&format!("/diff/{what}/{kind}"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Total number of names in an apply answer's diff.
pub fn diff_len(answer: &Value) -> usize {
    ["added", "removed", "changed"]
        .iter()
        .filter_map(|w| answer.pointer(&format!("/diff/{w}")).and_then(Value::as_object))
        .flat_map(|m| m.values())
        .filter_map(Value::as_array)
        .map(Vec::len)
        .sum()
}

/// Percent-encodes a route name's '/' for a URL path segment.
pub fn route_path(network: &str, prefix: &str) -> String {
    format!("/v1/routes/{network}:{}", prefix.replace('/', "%2F"))
}

/// A desired state as sluice stores it: parsed as its `Config` (defaults filled in) and
/// back to JSON. Panics if it does not parse.
#[track_caller]
pub fn normalized(desired: &Value) -> Value {
    let c: sluice_control::config::Config =
        serde_json::from_value(desired.clone()).unwrap_or_else(|e| panic!("not a configuration: {e}\n{desired}"));
    serde_json::to_value(c).unwrap()
}
