//! Helpers for the integration tests in `tests/`: find and run the `sluice` binary with a
//! hard timeout, read its `--stats-json` report, build and decode pcap files (tshark is
//! the independent decoder), and skip cleanly when an external tool is missing.
//!
//! Every run through [`run_ok`] / [`Finished::report`] asserts that no mbuf leaked
//! (`mempool.in_use_after_stop == 0`).
//!
//! Environment:
//! - `SLUICE_BIN`: the binary to test (default: `sluice` next to the test executable's
//!   `deps/` directory, i.e. what `cargo build -p sluice` built for the same profile);
//! - `SLUICE_TESTS_STRICT=1` (or `CI=true`): a missing tool (tshark, ip, tcpdump, ping,
//!   python3-scapy) or missing root fails the test instead of skipping it;
//! - `SLUICE_TESTS_KEEP=1`: keep each test's scratch directory (configs, pcaps, stats
//!   JSON, sluice's stdout/stderr) and print its path.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
pub use sluice_control::pcapgen::{read_pcap, udp_frame, write_pcap, TrafficSpec};
pub use sluice_dataplane::wire::MacAddr;
pub mod api;
pub mod l3;

/// Kill sluice if it has not exited this long after its `--duration`.
pub const GRACE: Duration = Duration::from_secs(20);

/// Every configuration the tests write starts with this: no hugepages, no shared
/// config (several sluice processes run at once), quiet DPDK.
pub const DPDK_HEADER: &str = "dpdk: {no_huge: true, log_level: error}\n";

// ---------------------------------------------------------------------------------------
// Finding the binary and skipping
// ---------------------------------------------------------------------------------------

/// The `sluice` binary: `$SLUICE_BIN`, or `<target>/<profile>/sluice` next to this test
/// executable (`…/target/debug/deps/xyz` → `…/target/debug/sluice`).
pub fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SLUICE_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("test binary has a directory").to_path_buf();
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir.pop();
    }
    let bin = dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the sluice binary is not at {}: build it first: cargo build -p sluice (same profile as the tests), or set SLUICE_BIN",
        bin.display()
    );
    bin
}

/// Whether `tool` is an executable on `$PATH`.
pub fn have_tool(tool: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|d| {
        let p = d.join(tool);
        p.is_file()
            && std::fs::metadata(&p)
                .map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
                .unwrap_or(false)
    })
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0")))
        .unwrap_or(false)
}

/// Whether a missing prerequisite fails the test instead of skipping it: set
/// `SLUICE_TESTS_STRICT=1` (CI does, through `CI=true`) so a broken setup cannot pass
/// silently.
pub fn strict() -> bool {
    let on = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    on("SLUICE_TESTS_STRICT") || on("CI")
}

/// Returns the reason to skip if any of `tools` is missing (or root is needed and
/// absent). In strict mode it panics instead.
pub fn missing_prereq(tools: &[&str], need_root: bool) -> Option<String> {
    let mut why = Vec::new();
    for t in tools {
        if !have_tool(t) {
            why.push(format!("{t} not found on PATH"));
        }
    }
    if need_root && !is_root() {
        why.push("not running as root".to_string());
    }
    if why.is_empty() {
        return None;
    }
    let why = why.join(", ");
    assert!(!strict(), "prerequisite missing in strict mode (SLUICE_TESTS_STRICT/CI): {why}");
    Some(why)
}

/// Writes a line to the real stderr, past libtest's output capture (so `SKIP:` lines
/// show in a normal `cargo test` run).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// For a prerequisite that is not a tool on PATH: prints `SKIP: <what>: <why>` (the
/// caller then returns), or panics in strict mode.
pub fn skip_or_fail(what: &str, why: &str) {
    assert!(!strict(), "{what}: prerequisite missing in strict mode (SLUICE_TESTS_STRICT/CI): {why}");
    say(&format!("SKIP: {what}: {why}"));
}

/// A Python 3 interpreter that can import scapy (`/usr/bin/python3` first: a pyenv or
/// venv `python3` on PATH often lacks the distribution's python3-scapy).
pub fn scapy_python() -> Option<String> {
    ["/usr/bin/python3", "python3"].into_iter().map(String::from).find(|py| {
        Command::new(py)
            .args(["-c", "import scapy.all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Skips the calling test (prints `SKIP: <test>: <reason>` and returns) when a tool is
/// missing: `skip_unless!(["tshark"]);` or `skip_unless!(["ip", "ping"], root);`. In
/// strict mode ([`strict`]) a missing prerequisite fails the test instead.
#[macro_export]
macro_rules! skip_unless {
    ([$($tool:expr),* $(,)?]) => {
        $crate::skip_unless!(@ [$($tool),*], false)
    };
    ([$($tool:expr),* $(,)?], root) => {
        $crate::skip_unless!(@ [$($tool),*], true)
    };
    (@ [$($tool:expr),*], $root:expr) => {
        if let Some(why) = $crate::missing_prereq(&[$($tool),*], $root) {
            fn here() {}
            let name = std::any::type_name_of_val(&here).trim_end_matches("::here");
            $crate::say(&format!("SKIP: {name}: {why}"));
            return;
        }
    };
}

// ---------------------------------------------------------------------------------------
// Sandboxes and runs
// ---------------------------------------------------------------------------------------

/// A per-test scratch directory (removed on drop unless `SLUICE_TESTS_KEEP` is set).
pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Sandbox {
    /// A fresh directory whose name starts with `sluice-<name>-`.
    pub fn new(name: &str) -> Sandbox {
        let dir = tempfile::Builder::new().prefix(&format!("sluice-{name}-")).tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        if std::env::var_os("SLUICE_TESTS_KEEP").is_some() {
            eprintln!("keeping {}", path.display());
            let _ = dir.keep();
            return Sandbox { dir: None, path };
        }
        Sandbox { dir: Some(dir), path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<sandbox>/<name>`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `<sandbox>/<name>` as a string, for devargs (asserts it has no `,` or `=`).
    pub fn arg(&self, name: &str) -> String {
        let s = self.file(name).display().to_string();
        assert!(!s.contains(',') && !s.contains('='), "path {s} cannot go into devargs");
        s
    }

    /// Writes `yaml` to `<sandbox>/<name>` and returns its path.
    pub fn write_config(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.file(name);
        std::fs::write(&p, yaml).expect("write config");
        p
    }

    /// Writes frames to `<sandbox>/<name>` as a pcap and returns its path.
    pub fn write_pcap(&self, name: &str, frames: &[Vec<u8>]) -> PathBuf {
        let p = self.file(name);
        write_pcap(&p, frames.iter().map(|f| f.as_slice())).expect("write pcap");
        p
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

/// A running sluice process. Killed (SIGKILL) on drop if still running.
pub struct Sluice {
    child: Option<Child>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub stats_path: Option<PathBuf>,
    started: Instant,
    args: Vec<String>,
}

/// The outcome of a sluice run.
pub struct Finished {
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stats_path: Option<PathBuf>,
    pub elapsed: Duration,
    pub args: Vec<String>,
}

/// How many times the start helpers start sluice when its af_packet probe hits a fanout
/// group collision (see [`af_packet_fanout_collision`]).
pub const START_ATTEMPTS: u32 = 3;

/// Whether sluice's output shows DPDK's af_packet probe refused by the kernel for its
/// PACKET_FANOUT group. DPDK 22.11 names the group `(pid ^ ifindex) & 0xffff` (not
/// configurable), and fanout groups are per network namespace: when two sluice processes of
/// parallel tests, in the root namespace, have `pid ^ ifindex` equal for different
/// interfaces, the second socket cannot join the first's group (EINVAL) and the device is
/// not created. A new process has a new pid, so starting again resolves it.
pub fn af_packet_fanout_collision(stderr: &str) -> bool {
    stderr.contains("could not set PACKET_FANOUT")
}

/// Starts a sluice with `start` (which spawns it and waits until it is ready: `Err` says why
/// it is not) and starts it again, up to [`START_ATTEMPTS`] times, while its stderr shows an
/// [`af_packet_fanout_collision`]. Returns the last one started, and whether it is ready.
pub fn start_past_fanout_collisions<T>(
    tag: &str,
    mut start: impl FnMut() -> (T, Result<(), String>),
    stderr: impl Fn(&T) -> String,
) -> (T, Result<(), String>) {
    let mut attempt = 1;
    loop {
        let (s, ready) = start();
        match ready {
            Err(why) if attempt < START_ATTEMPTS && af_packet_fanout_collision(&stderr(&s)) => {
                say(&format!("{tag}: af_packet fanout group collision with a parallel test's sluice, starting again ({why})"));
                attempt += 1;
            }
            ready => return (s, ready),
        }
    }
}

/// Starts `sluice <args>` in `cwd` with stdout/stderr going to files in `cwd` (`<tag>.out`,
/// `<tag>.err`). `stats` is the `--stats-json` path if the args name one.
pub fn spawn_sluice(cwd: &Path, tag: &str, args: &[String], stats: Option<PathBuf>) -> Sluice {
    let stdout_path = cwd.join(format!("{tag}.out"));
    let stderr_path = cwd.join(format!("{tag}.err"));
    let out = std::fs::File::create(&stdout_path).expect("stdout file");
    let err = std::fs::File::create(&stderr_path).expect("stderr file");
    let child = Command::new(sluice_bin())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", sluice_bin().display()));
    Sluice { child: Some(child), stdout_path, stderr_path, stats_path: stats, started: Instant::now(), args: args.to_vec() }
}

impl Sluice {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM (a graceful stop: sluice drains, reports and exits 0).
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        }
    }

    /// Current stderr text.
    pub fn stderr_now(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until stderr contains `needle` (true), the process exits or `timeout` passes
    /// (false).
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.stderr_now().contains(needle) {
                return true;
            }
            if let Some(c) = &mut self.child {
                if let Ok(Some(_)) = c.try_wait() {
                    return self.stderr_now().contains(needle);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for exit; after `limit` kills it with SIGKILL and panics with its output.
    pub fn wait(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().expect("running");
        let status = loop {
            match child.try_wait().expect("try_wait") {
                Some(st) => break st,
                None if self.started.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "sluice did not exit within {:?} (killed with SIGKILL)\nargs: {:?}\nstdout:\n{}\nstderr:\n{}",
                        limit,
                        self.args,
                        std::fs::read_to_string(&self.stdout_path).unwrap_or_default(),
                        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
                    );
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        Finished {
            code: status.code(),
            stdout: std::fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stats_path: self.stats_path.clone(),
            elapsed: self.started.elapsed(),
            args: self.args.clone(),
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `sluice <args>` to completion in `cwd`, killing it after `limit`.
pub fn run_sluice(cwd: &Path, tag: &str, args: &[&str], limit: Duration) -> Finished {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stats = args.iter().position(|a| a == "--stats-json").and_then(|i| args.get(i + 1)).map(|p| cwd.join(p));
    spawn_sluice(cwd, tag, &args, stats).wait(limit)
}

impl Finished {
    /// Output for failure messages.
    pub fn context(&self) -> String {
        format!(
            "sluice {:?} exited with {:?} after {:.2?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args, self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0 and a stats report without leaked mbufs, and returns it.
    pub fn report(&self) -> Report {
        assert_eq!(self.code, Some(0), "sluice failed\n{}", self.context());
        let path = self.stats_path.as_ref().expect("run without --stats-json");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("no stats JSON at {}: {e}\n{}", path.display(), self.context()));
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("stats JSON does not parse: {e}\n{text}\n{}", self.context()));
        let r = Report { json, context: self.context() };
        assert_eq!(r.u("/mempool/in_use_after_stop"), 0, "mbufs leaked (mempool.in_use_after_stop != 0)\n{}", r.context);
        r
    }
}

/// Writes `yaml` as `<tag>.yaml` in the sandbox, runs `sluice run` on it for `duration`
/// seconds with `--stats-json <tag>.json --interval 0`, asserts exit 0 and no leak, and
/// returns the report.
pub fn run_ok(sb: &Sandbox, tag: &str, yaml: &str, duration: f64) -> Report {
    run_config(sb, tag, yaml, duration).report()
}

/// Like [`run_ok`] without asserting the outcome.
pub fn run_config(sb: &Sandbox, tag: &str, yaml: &str, duration: f64) -> Finished {
    let cfg = sb.write_config(&format!("{tag}.yaml"), yaml);
    let stats = format!("{tag}.json");
    let dur = duration.to_string();
    let cfg = cfg.display().to_string();
    let args = ["run", "--config", &cfg, "--duration", &dur, "--stats-json", &stats, "--interval", "0"];
    run_sluice(sb.path(), tag, &args, Duration::from_secs_f64(duration) + GRACE)
}

/// A parsed `--stats-json` report.
pub struct Report {
    pub json: Value,
    /// sluice's stdout/stderr, for failure messages.
    pub context: String,
}

impl Report {
    /// The number at JSON pointer `ptr` (e.g. `/totals/rx_packets`).
    pub fn u(&self, ptr: &str) -> u64 {
        self.json
            .pointer(ptr)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("stats JSON has no number at {ptr}\n{}\n{}", self.json, self.context))
    }

    /// Totals: drops by reason name.
    pub fn drops(&self) -> BTreeMap<String, u64> {
        drops_of(self.json.pointer("/totals/drops"))
    }

    /// One worker's drops by reason name.
    pub fn worker_drops(&self, w: usize) -> BTreeMap<String, u64> {
        drops_of(self.json.pointer(&format!("/workers/{w}/drops")))
    }

    /// The number at `key` (a JSON pointer below the port, e.g. `/tx_packets` or
    /// `/ethdev/opackets`) of the port called `name`.
    pub fn port(&self, name: &str, key: &str) -> u64 {
        let ports = self.json.pointer("/ports").and_then(Value::as_array).expect("ports array");
        let p = ports
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no port {name} in the stats\n{}", self.context));
        p.pointer(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("port {name} has no number at {key}\n{}", self.context))
    }

    pub fn workers(&self) -> usize {
        self.json.pointer("/workers").and_then(Value::as_array).map_or(0, Vec::len)
    }

    /// Asserts the report is self-consistent: per-worker rx/tx sum to the totals, the
    /// drops map sums to `drops_total`, per-port rx/tx sum to the totals.
    pub fn assert_consistent(&self) {
        let n = self.workers();
        let sum = |k: &str| (0..n).map(|w| self.u(&format!("/workers/{w}/{k}"))).sum::<u64>();
        assert_eq!(sum("rx_packets"), self.u("/totals/rx_packets"), "worker rx != total rx\n{}", self.context);
        assert_eq!(sum("tx_packets"), self.u("/totals/tx_packets"), "worker tx != total tx\n{}", self.context);
        let drops: u64 = self.drops().values().sum();
        assert_eq!(drops, self.u("/totals/drops_total"), "drops map does not sum to drops_total\n{}", self.context);
        let ports = self.json.pointer("/ports").and_then(Value::as_array).expect("ports array");
        let prx: u64 = ports.iter().map(|p| p["rx_packets"].as_u64().unwrap_or(0)).sum();
        let ptx: u64 = ports.iter().map(|p| p["tx_packets"].as_u64().unwrap_or(0)).sum();
        assert_eq!(prx, self.u("/totals/rx_packets"), "per-port rx does not sum to total rx\n{}", self.context);
        assert_eq!(ptx, self.u("/totals/tx_packets"), "per-port tx does not sum to total tx\n{}", self.context);
        // Per queue: a port's rx queues (as polled) and tx queues (one per worker) sum to
        // the port's counts.
        for p in ports {
            let qsum = |list: &str, key: &str| -> Option<u64> {
                p[list].as_array().map(|qs| qs.iter().map(|q| q[key].as_u64().unwrap_or(0)).sum())
            };
            let name = p["name"].as_str().unwrap_or("?");
            if let Some(rx) = qsum("rx_queues", "packets") {
                assert_eq!(rx, p["rx_packets"].as_u64().unwrap_or(0), "port {name}: rx queues do not sum to the port\n{}", self.context);
            }
            if let Some(tx) = qsum("tx_queues", "packets") {
                assert_eq!(tx, p["tx_packets"].as_u64().unwrap_or(0), "port {name}: tx queues do not sum to the port\n{}", self.context);
            }
        }
    }
}

fn drops_of(v: Option<&Value>) -> BTreeMap<String, u64> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default()
}

/// A drops map from literal pairs, for comparisons.
pub fn drops(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().filter(|(_, n)| *n != 0).map(|(k, n)| (k.to_string(), *n)).collect()
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// `02:00:00:00:<hi>:<lo>`: a locally administered unicast MAC.
pub fn mac(n: u16) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, (n >> 8) as u8, n as u8])
}

/// A valid IPv4/UDP frame `dst <- src` whose untagged length is `len`; with `vlan` the
/// same frame with an 802.1Q tag inserted (`len + 4` bytes). So `frame(.., Some(v), n, s)`
/// is exactly what pushing tag `v` on `frame(.., None, n, s)` gives, and the reverse.
/// `seq` varies the IP id and payload.
pub fn frame(dst: MacAddr, src: MacAddr, vlan: Option<u16>, len: usize, seq: u32) -> Vec<u8> {
    assert!(len >= 42, "an IPv4/UDP frame needs 42 bytes");
    let spec = TrafficSpec {
        dst_mac: dst,
        src_mac: src,
        vlan,
        flows: 1 << 20,
        frame_len: len + if vlan.is_some() { 4 } else { 0 },
        count: 1,
        ..Default::default()
    };
    udp_frame(&spec, seq)
}

/// The frame with its 802.1Q tag removed (bytes 12..16).
pub fn untag(f: &[u8]) -> Vec<u8> {
    assert_eq!(&f[12..14], &[0x81, 0x00], "frame is not tagged");
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&f[16..]);
    v
}

/// The frame with an 802.1Q tag (PCP 0) for `vid` inserted after the MACs.
pub fn tag(f: &[u8], vid: u16) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&vid.to_be_bytes());
    v.extend_from_slice(&f[12..]);
    v
}

/// Reads a pcap written by sluice, with a clear message if it is missing.
pub fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    read_pcap(path).unwrap_or_else(|e| panic!("cannot read pcap {}: {e}", path.display()))
}

/// Describes the first difference between two frame lists, or None if equal.
pub fn frames_diff(got: &[Vec<u8>], want: &[Vec<u8>]) -> Option<String> {
    if got == want {
        return None;
    }
    let mut s = format!("got {} frames, want {}\n", got.len(), want.len());
    for i in 0..got.len().max(want.len()) {
        let (g, w) = (got.get(i), want.get(i));
        if g != w {
            let _ = writeln!(s, "first difference at frame {i}:\n  got  {}\n  want {}", hex(g), hex(w));
            break;
        }
    }
    Some(s)
}

fn hex(f: Option<&Vec<u8>>) -> String {
    match f {
        None => "(none)".into(),
        Some(f) => {
            let head: String = f.iter().take(24).map(|b| format!("{b:02x}")).collect();
            format!("[{} bytes] {head}…", f.len())
        }
    }
}

/// Asserts `path` holds exactly `want` (bytes and order).
#[track_caller]
pub fn assert_pcap_eq(path: &Path, want: &[Vec<u8>], what: &str, context: &str) {
    let got = read_frames(path);
    if let Some(d) = frames_diff(&got, want) {
        panic!("{what}: {} does not hold the expected frames: {d}\n{context}", path.display());
    }
}

// ---------------------------------------------------------------------------------------
// tshark: the independent decoder
// ---------------------------------------------------------------------------------------

/// Decodes `pcap` with `tshark -r FILE -T fields -E separator=, -e F...`: one row per
/// frame, one string per field (empty when the frame lacks it; several occurrences are
/// joined with `|`).
pub fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    tshark_fields_with(pcap, &[], fields)
}

/// [`tshark_fields`] with tshark preferences (`-o NAME:VALUE`), e.g.
/// `udp.check_checksum:TRUE` so `udp.checksum.status` is computed (1 = good, 0 = bad).
pub fn tshark_fields_with(pcap: &Path, prefs: &[&str], fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n");
    for p in prefs {
        cmd.args(["-o", p]);
    }
    cmd.arg("-r").arg(pcap).args(["-T", "fields", "-E", "separator=,", "-E", "aggregator=|", "-E", "occurrence=a"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run tshark: {e}"));
    assert!(
        out.status.success(),
        "tshark -r {} failed: {}\n{}",
        pcap.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("tshark output is UTF-8")
        .lines()
        .map(|l| {
            let cols: Vec<String> = l.split(',').map(str::to_string).collect();
            assert_eq!(cols.len(), fields.len(), "tshark row {l:?} does not have {} fields", fields.len());
            cols
        })
        .collect()
}

/// The rows tshark should print for `frames` with fields
/// `eth.src, eth.dst, vlan.id, frame.len` (the set the tests use).
pub fn expected_l2_rows(frames: &[Vec<u8>]) -> Vec<Vec<String>> {
    frames
        .iter()
        .map(|f| {
            let m = |r: std::ops::Range<usize>| MacAddr(f[r].try_into().unwrap()).to_string();
            let vid = if f.len() >= 16 && f[12..14] == [0x81, 0x00] {
                (u16::from_be_bytes([f[14], f[15]]) & 0x0fff).to_string()
            } else {
                String::new()
            };
            vec![m(6..12), m(0..6), vid, f.len().to_string()]
        })
        .collect()
}

/// The fields [`expected_l2_rows`] describes.
pub const L2_FIELDS: &[&str] = &["eth.src", "eth.dst", "vlan.id", "frame.len"];

/// Asserts tshark decodes `pcap` to exactly the L2 rows of `want`.
#[track_caller]
pub fn assert_tshark_l2(pcap: &Path, want: &[Vec<u8>], what: &str, context: &str) {
    let got = tshark_fields(pcap, L2_FIELDS);
    let want = expected_l2_rows(want);
    assert_eq!(
        got,
        want,
        "{what}: tshark decodes {} differently (rows: eth.src, eth.dst, vlan.id, frame.len)\n{context}",
        pcap.display()
    );
}

// ---------------------------------------------------------------------------------------
// Shell commands
// ---------------------------------------------------------------------------------------

/// Runs a command; returns (success, stdout + stderr).
pub fn sh(prog: &str, args: &[&str]) -> (bool, String) {
    match Command::new(prog).args(args).stdin(Stdio::null()).output() {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.success(), s)
        }
        Err(e) => (false, format!("cannot run {prog}: {e}")),
    }
}

/// Runs a command and panics with its output if it fails.
#[track_caller]
pub fn must(prog: &str, args: &[&str]) -> String {
    let (ok, out) = sh(prog, args);
    assert!(ok, "`{prog} {}` failed:\n{out}", args.join(" "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_and_untag_match_generated_frames() {
        let (d, s) = (mac(2), mac(1));
        let plain = frame(d, s, None, 60, 7);
        let tagged = frame(d, s, Some(10), 60, 7);
        assert_eq!(plain.len(), 60);
        assert_eq!(tagged.len(), 64);
        assert_eq!(tag(&plain, 10), tagged);
        assert_eq!(untag(&tagged), plain);
        let rows = expected_l2_rows(&[plain, tagged]);
        assert_eq!(rows[0], ["02:00:00:00:00:01", "02:00:00:00:00:02", "", "60"]);
        assert_eq!(rows[1], ["02:00:00:00:00:01", "02:00:00:00:00:02", "10", "64"]);
    }

    #[test]
    fn frames_diff_names_the_first_difference() {
        let a = vec![vec![1u8, 2], vec![3]];
        assert!(frames_diff(&a, &a).is_none());
        let d = frames_diff(&a, &[vec![1, 2], vec![4]]).unwrap();
        assert!(d.contains("frame 1"), "{d}");
        assert!(frames_diff(&a, &a[..1]).unwrap().contains("got 2 frames, want 1"));
    }

    #[test]
    fn a_start_is_repeated_only_past_fanout_collisions_and_only_so_often() {
        const COLLISION: &str = "could not set PACKET_FANOUT on AF_PACKET socket: Invalid argument";
        // Each start gives (attempt number, its stderr) and whether it is ready.
        let run = |outcomes: &[(&str, bool)]| {
            let mut n = 0;
            let (s, ready) = start_past_fanout_collisions(
                "t",
                || {
                    let (err, ok) = outcomes[n];
                    n += 1;
                    ((n, err.to_string()), if ok { Ok(()) } else { Err(format!("attempt {n}")) })
                },
                |(_, err): &(usize, String)| err.clone(),
            );
            (s.0, ready)
        };
        assert_eq!(run(&[(COLLISION, false), ("", true)]), (2, Ok(())));
        assert_eq!(run(&[("", true)]), (1, Ok(())));
        assert_eq!(run(&[("device not found", false), ("", true)]), (1, Err("attempt 1".into())), "other failures are not retried");
        let always = [(COLLISION, false); START_ATTEMPTS as usize + 1];
        assert_eq!(run(&always), (START_ATTEMPTS as usize, Err(format!("attempt {START_ATTEMPTS}"))));
    }
}
