//! Helpers for the routing (L3) tests: frames built byte by byte with correct checksums
//! (IPv4, IPv6 with extension headers, UDP, ICMP), what a routed frame must look like,
//! tshark with decoder preferences, and network namespaces set up as L3 endpoints
//! (IPv6 on, MAC of the endpoint, transmit checksum offload off).
//!
//! The builders are written from the RFCs, independently of sluice's `wire` module, so
//! a test comparing sluice's output with them is not sluice checking itself.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{must, sh, spawn_sluice, start_past_fanout_collisions, strict, MacAddr, Sandbox, Sluice};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;
pub const NH_DEST_OPTS: u8 = 60;

// ---------------------------------------------------------------------------------------
// Checksums and frames
// ---------------------------------------------------------------------------------------

/// The Internet checksum (RFC 1071) of the concatenation of `parts` (each but the last
/// of even length).
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    for p in parts {
        for c in p.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an IPv4 header (with its options) sums to zero, i.e. its checksum is right.
pub fn ipv4_header_valid(h: &[u8]) -> bool {
    inet_checksum(&[h]) == 0
}

/// An Ethernet II frame.
pub fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet: version 4, TOS 0, no fragmentation flags, `options` (a multiple of 4
/// bytes) after the fixed header, header checksum filled.
pub fn ipv4_packet_opts(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    id: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "IPv4 options are padded to 32 bits");
    let hlen = 20 + options.len();
    let mut p = vec![0u8; hlen];
    p[0] = 0x40 | (hlen / 4) as u8;
    p[2..4].copy_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = ttl;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..].copy_from_slice(options);
    let c = inet_checksum(&[&p]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv4 packet with a 20-byte header.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    ipv4_packet_opts(src, dst, proto, ttl, id, &[], payload)
}

fn udp_with(pseudo: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = Vec::with_capacity(len as usize);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = match inet_checksum(&[pseudo, &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// A UDP datagram over IPv4 (header and payload), checksum filled.
pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, PROTO_UDP]);
    pseudo.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp_with(&pseudo, sport, dport, payload)
}

fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, len: usize) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(len as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, next]);
    pseudo
}

/// A UDP datagram over IPv6 (header and payload), checksum filled.
pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    udp_with(&pseudo6(src, dst, PROTO_UDP, 8 + payload.len()), sport, dport, payload)
}

/// An ICMPv4 message (`rest` is the 4 bytes after the checksum), checksum filled.
pub fn icmp4(typ: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = inet_checksum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message from `src` to `dst`, checksum (with the pseudo-header) filled.
pub fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, typ: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = inet_checksum(&[&pseudo6(src, dst, PROTO_ICMPV6, m.len()), &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An IPv6 packet: traffic class and flow label 0, `payload` after the fixed header
/// (extension headers included), Payload Length = `payload.len()`.
pub fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = hop;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// `n` chained 8-byte Destination Options headers (each one PadN option) ending in
/// Next Header `last`, followed by `upper`.
pub fn dest_opts_chain(n: usize, last: u8, upper: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 * n + upper.len());
    for i in 0..n {
        let next = if i + 1 == n { last } else { NH_DEST_OPTS };
        v.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    v.extend_from_slice(upper);
    v
}

/// An Ethernet frame carrying IPv4/UDP.
#[allow(clippy::too_many_arguments)]
pub fn udp4_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        ETHERTYPE_IPV4,
        &ipv4_packet(src, dst, PROTO_UDP, ttl, id, &udp4(src, dst, ports.0, ports.1, payload)),
    )
}

/// An Ethernet frame carrying IPv6/UDP (no extension headers).
pub fn udp6_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop: u8,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        ETHERTYPE_IPV6,
        &ipv6_packet(src, dst, PROTO_UDP, hop, &udp6(src, dst, ports.0, ports.1, payload)),
    )
}

/// What routing must make of an untagged IPv4 frame: new MACs, TTL - 1 and the header
/// checksum recomputed from scratch (RFC 1812 §5.3.1).
pub fn routed_v4(frame: &[u8], dst_mac: MacAddr, src_mac: MacAddr) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..6].copy_from_slice(&dst_mac.0);
    f[6..12].copy_from_slice(&src_mac.0);
    let hlen = usize::from(f[14] & 0x0f) * 4;
    f[14 + 8] -= 1;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = inet_checksum(&[&f[14..14 + hlen]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// What routing must make of an untagged IPv6 frame: new MACs, hop limit - 1.
pub fn routed_v6(frame: &[u8], dst_mac: MacAddr, src_mac: MacAddr) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..6].copy_from_slice(&dst_mac.0);
    f[6..12].copy_from_slice(&src_mac.0);
    f[14 + 7] -= 1;
    f
}

/// `frame` with an IPv4 header checksum of 0xffff written as 0x0000: both are the one's
/// complement zero (RFC 1624 §3), so a router may produce either after an incremental
/// update. Non-IPv4 frames are returned unchanged.
pub fn normalize_ipv4_checksum(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    if f.len() >= 34 && f[12..14] == ETHERTYPE_IPV4.to_be_bytes() && f[24..26] == [0xff, 0xff] {
        f[24..26].copy_from_slice(&[0, 0]);
    }
    f
}

/// Asserts the frames in `got` equal `want` one by one (IPv4 checksums compared as one's
/// complement numbers), naming the first difference.
#[track_caller]
pub fn assert_frames_eq(got: &[Vec<u8>], want: &[Vec<u8>], what: &str, context: &str) {
    let g: Vec<Vec<u8>> = got.iter().map(|f| normalize_ipv4_checksum(f)).collect();
    let w: Vec<Vec<u8>> = want.iter().map(|f| normalize_ipv4_checksum(f)).collect();
    if let Some(d) = crate::frames_diff(&g, &w) {
        let detail = g
            .iter()
            .zip(&w)
            .position(|(a, b)| a != b)
            .map(|i| format!("frame {i}:\n  got  {}\n  want {}", hex_all(&g[i]), hex_all(&w[i])))
            .unwrap_or_default();
        panic!("{what}: {d}{detail}\n{context}");
    }
}

/// Every byte of `f` in hex.
pub fn hex_all(f: &[u8]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` bytes of deterministic pseudo-random data (xorshift64*; `seed` != 0).
pub fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.max(1);
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(n);
    v
}

// ---------------------------------------------------------------------------------------
// tshark with preferences
// ---------------------------------------------------------------------------------------

pub use crate::tshark_fields_with;

/// Preferences that make tshark verify every checksum it knows.
pub const CHECK_CHECKSUMS: &[&str] = &["ip.check_checksum:TRUE", "udp.check_checksum:TRUE", "tcp.check_checksum:TRUE"];

// ---------------------------------------------------------------------------------------
// Network namespaces as L3 endpoints
// ---------------------------------------------------------------------------------------

/// Removes the namespaces, links and `/etc/netns/<ns>` directories it registered, on
/// drop (also when the test panics).
#[derive(Default)]
pub struct NetnsGuard {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub dirs: Vec<PathBuf>,
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = sh("ip", &["link", "del", l]);
        }
        for ns in &self.namespaces {
            let _ = sh("ip", &["netns", "del", ns]);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        if !self.dirs.is_empty() {
            // Only succeeds when empty: leave /etc/netns as it was if nothing else uses it.
            let _ = std::fs::remove_dir("/etc/netns");
        }
    }
}

/// A namespace holding one endpoint: `inner` (in `ns`, with the endpoint's MAC) and
/// `outer` (root namespace, the end sluice opens with net_af_packet).
#[derive(Debug, Clone)]
pub struct L3Peer {
    pub ns: String,
    pub inner: String,
    pub outer: String,
    pub mac: String,
    /// The namespace's own resolv.conf (`ip netns exec` bind-mounts it over
    /// /etc/resolv.conf), where udhcpc's default script writes the DNS servers.
    pub resolv_conf: PathBuf,
}

/// Creates namespace `sl3<tag>-<pid>-<name>` with a veth pair into it, for an L3
/// endpoint with MAC `mac`:
///
/// - `/etc/netns/<ns>/resolv.conf` exists, so udhcpc's default script (which rewrites
///   /etc/resolv.conf) writes there and not over the host's resolver configuration;
/// - `inner` gets the endpoint's MAC before it comes up (its IPv6 link-local address,
///   EUI-64 of that MAC, is then one sluice lets the endpoint use); IPv6 is on when
///   `ipv6`, with no DAD, no router solicitations and no RA processing (sluice sends no
///   RAs) to keep the noise down; `arp_announce=2` so ARP requests always come from
///   the interface's primary address (the spoofing check would ignore an ARP sent from
///   an extra address);
/// - `ethtool -K <inner> tx off`: without it the kernel hands TCP/UDP to the veth with
///   partial checksums (CHECKSUM_PARTIAL, to be completed by "hardware"); af_packet
///   gives sluice those frames as they are, sluice forwards them unfixed and the
///   receiver drops every TCP segment as corrupt. Real NICs and virtio complete them.
/// - `outer` is up and promiscuous, with IPv6 off (the root namespace must not send its
///   own router solicitations or MLD reports into sluice).
///
/// Returns None (after printing why) if namespaces cannot be created here and strict
/// mode is off.
pub fn add_l3_peer(g: &mut NetnsGuard, tag: &str, name: &str, mac: &str, ipv6: bool) -> Option<L3Peer> {
    let pid = std::process::id();
    let ns = format!("sl3{tag}-{pid}-{name}");
    let outer = format!("l3{tag}{pid}{name}");
    let inner = format!("{outer}i");
    assert!(inner.len() <= 15, "interface name {inner} too long");
    g.namespaces.push(ns.clone());
    let (ok, out) = sh("ip", &["netns", "add", &ns]);
    if !ok {
        g.namespaces.pop();
        assert!(!strict(), "cannot create a network namespace in strict mode: {out}");
        crate::say(&format!("SKIP: cannot create a network namespace: {out}"));
        return None;
    }
    let dir = PathBuf::from("/etc/netns").join(&ns);
    g.dirs.push(dir.clone());
    std::fs::create_dir_all(&dir).expect("create /etc/netns/<ns>");
    let resolv_conf = dir.join("resolv.conf");
    std::fs::write(&resolv_conf, "").expect("write the namespace's resolv.conf");

    g.links.push(outer.clone());
    must("ip", &["link", "add", &outer, "type", "veth", "peer", "name", &inner]);
    must("ip", &["link", "set", &inner, "netns", &ns]);
    must("sysctl", &["-qw", &format!("net.ipv6.conf.{outer}.disable_ipv6=1")]);
    must("ip", &["-n", &ns, "link", "set", "dev", &inner, "address", mac]);
    let sysctl = |k: &str| must("ip", &["netns", "exec", &ns, "sysctl", "-qw", k]);
    sysctl(&format!("net.ipv4.conf.{inner}.arp_announce=2"));
    sysctl("net.ipv4.conf.all.arp_announce=2");
    if ipv6 {
        for k in ["all", "default", inner.as_str()] {
            for (key, v) in [("accept_dad", "0"), ("accept_ra", "0"), ("router_solicitations", "0")] {
                sysctl(&format!("net.ipv6.conf.{k}.{key}={v}"));
            }
        }
        sysctl(&format!("net.ipv6.conf.{inner}.addr_gen_mode=0"));
        sysctl(&format!("net.ipv6.conf.{inner}.disable_ipv6=0"));
    } else {
        for k in ["all", "default", inner.as_str()] {
            sysctl(&format!("net.ipv6.conf.{k}.disable_ipv6=1"));
        }
    }
    must("ip", &["netns", "exec", &ns, "ethtool", "-K", &inner, "tx", "off"]);
    must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
    must("ip", &["-n", &ns, "link", "set", &inner, "up"]);
    must("ip", &["link", "set", &outer, "up", "promisc", "on"]);
    Some(L3Peer { ns, inner, outer, mac: mac.to_string(), resolv_conf })
}

/// Runs `args` inside namespace `ns`; returns (success, stdout + stderr).
pub fn in_ns(ns: &str, args: &[&str]) -> (bool, String) {
    let mut a = vec!["netns", "exec", ns];
    a.extend_from_slice(args);
    sh("ip", &a)
}

/// Like [`in_ns`], panicking with the output on failure.
#[track_caller]
pub fn in_ns_must(ns: &str, args: &[&str]) -> String {
    let (ok, out) = in_ns(ns, args);
    assert!(ok, "`ip netns exec {ns} {}` failed:\n{out}", args.join(" "));
    out
}

/// Waits (at most 5 s) until a TCP listener on `port` exists in `p`'s namespace.
#[track_caller]
pub fn wait_listening(p: &L3Peer, port: &str) {
    let t0 = std::time::Instant::now();
    while !in_ns(&p.ns, &["ss", "-Hltn", &format!("sport = :{port}")]).1.contains(port) {
        assert!(t0.elapsed() < Duration::from_secs(5), "nc -l {port} never listened in {}", p.ns);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A background process (killed on drop).
pub struct Bg {
    child: Option<Child>,
    what: String,
}

impl Bg {
    /// Starts `prog args` with stdin/stdout/stderr as given.
    pub fn spawn(prog: &str, args: &[&str], stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Bg {
        let what = format!("{prog} {}", args.join(" "));
        let child = Command::new(prog)
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        Bg { child: Some(child), what }
    }

    /// Waits up to `limit` for the process to exit; kills it (SIGKILL) after that and
    /// returns None.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if t0.elapsed() > limit {
                eprintln!("`{}` still running after {limit:?}: killed", self.what);
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then up to 5 s for it to exit (SIGKILL after).
    pub fn stop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        }
        let _ = self.wait_for(Duration::from_secs(5));
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `prog args` with stdin from `stdin` (or nothing), killing it after `limit`;
/// returns (exited successfully in time, stdout + stderr).
pub fn run_limited(prog: &str, args: &[&str], stdin: Option<&Path>, limit: Duration) -> (bool, String) {
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    let out = tmp.reopen().expect("reopen temp file");
    let err = out.try_clone().expect("clone temp file");
    let input = match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()))),
        None => Stdio::null(),
    };
    let mut bg = Bg::spawn(prog, args, input, Stdio::from(out), Stdio::from(err));
    let st = bg.wait_for(limit);
    let text = std::fs::read_to_string(tmp.path()).unwrap_or_default();
    match st {
        Some(st) => (st.success(), text),
        None => (false, format!("{text}\n(killed after {limit:?})")),
    }
}

/// Starts tcpdump inside `p.ns` on its interface, writing every frame to `file` as it
/// arrives (`-U --immediate-mode`); returns once tcpdump is listening.
pub fn capture_in(p: &L3Peer, file: &Path, log: &Path) -> Bg {
    let err = std::fs::File::create(log).expect("tcpdump log");
    let file_s = file.display().to_string();
    let bg = Bg::spawn(
        "ip",
        &[
            "netns",
            "exec",
            &p.ns,
            "tcpdump",
            "-Z",
            "root",
            "-n",
            "-U",
            "--immediate-mode",
            "-i",
            &p.inner,
            "-w",
            &file_s,
        ],
        Stdio::null(),
        Stdio::null(),
        Stdio::from(err),
    );
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("listening on") {
            return bg;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "tcpdump did not start listening:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `sluice run` on `yaml` in the background (`--duration max_s` as a hard upper
/// bound, `--stats-json <tag>.json`) and waits until its workers are polling.
pub fn start_sluice_bg(sb: &Sandbox, tag: &str, yaml: &str, max_s: u32) -> Sluice {
    let cfg = sb.write_config(&format!("{tag}.yaml"), yaml).display().to_string();
    let stats = format!("{tag}.json");
    let args: Vec<String> = [
        "--log",
        "info",
        "run",
        "--config",
        &cfg,
        "--duration",
        &max_s.to_string(),
        "--stats-json",
        &stats,
        "--interval",
        "0",
    ]
    .map(String::from)
    .to_vec();
    let (s, ready) = start_past_fanout_collisions(
        tag,
        || {
            let mut s = spawn_sluice(sb.path(), tag, &args, Some(sb.file(&stats)));
            let ready = s.wait_for_stderr(" forwarding", Duration::from_secs(15));
            (s, if ready { Ok(()) } else { Err("sluice did not start forwarding".to_string()) })
        },
        Sluice::stderr_now,
    );
    if let Err(why) = ready {
        panic!("{why}:\n{}", s.stderr_now());
    }
    s
}
