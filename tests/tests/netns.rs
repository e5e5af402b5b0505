//! The switch between real kernel network stacks: network namespaces joined to sluice
//! by veth pairs, whose root-side ends sluice opens with net_af_packet. Needs root, `ip`,
//! `ping`, `tcpdump` and `tshark`.
//!
//! Every namespace and veth is named after this process id and the test, and removed by
//! a guard even when the test fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::*;

/// Removes the namespaces and links it registered, on drop (shared with the L3 tests).
use sluice_tests::l3::{start_sluice_bg, NetnsGuard as NetGuard};

/// One namespace with a veth: `inner` inside it, `outer` in the root namespace (the
/// end sluice attaches to).
struct Peer {
    ns: String,
    inner: String,
    outer: String,
    mac: String,
}

/// Creates namespace `<test>-<pid>-<name>` and a veth pair into it, with IPv6 off (no
/// router solicitations or DAD to muddy the counts), `inner` up with `addr` (if any) and
/// MAC `mac`, `outer` up and promiscuous. Returns None (after printing why) if
/// namespaces cannot be created here and strict mode is off.
fn add_peer(g: &mut NetGuard, test: &str, name: &str, mac: &str, addr: Option<&str>) -> Option<Peer> {
    let pid = std::process::id();
    let ns = format!("sl-{test}-{pid}-{name}");
    // Interface names are at most 15 bytes.
    let outer = format!("s{test}{pid}{name}");
    let inner = format!("{outer}i");
    assert!(inner.len() <= 15, "interface name {inner} too long");
    g.namespaces.push(ns.clone());
    let (ok, out) = sh("ip", &["netns", "add", &ns]);
    if !ok {
        g.namespaces.pop();
        assert!(!strict(), "cannot create a network namespace in strict mode: {out}");
        say(&format!("SKIP: cannot create a network namespace: {out}"));
        return None;
    }
    g.links.push(outer.clone());
    must("ip", &["link", "add", &outer, "type", "veth", "peer", "name", &inner]);
    must("ip", &["link", "set", &inner, "netns", &ns]);
    for k in ["all", "default", &inner] {
        must("ip", &["netns", "exec", &ns, "sysctl", "-qw", &format!("net.ipv6.conf.{k}.disable_ipv6=1")]);
    }
    must("sysctl", &["-qw", &format!("net.ipv6.conf.{outer}.disable_ipv6=1")]);
    must("ip", &["-n", &ns, "link", "set", "dev", &inner, "address", mac]);
    if let Some(a) = addr {
        must("ip", &["-n", &ns, "addr", "add", a, "dev", &inner]);
    }
    must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
    must("ip", &["-n", &ns, "link", "set", &inner, "up"]);
    must("ip", &["link", "set", &outer, "up", "promisc", "on"]);
    Some(Peer { ns, inner, outer, mac: mac.to_string() })
}

/// A background process killed on drop (for tcpdump).
struct Bg(Option<Child>);

impl Bg {
    /// SIGTERM, then wait up to 5 s (SIGKILL after).
    fn stop(&mut self) {
        let Some(mut c) = self.0.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts tcpdump inside `p.ns` on its interface, writing every frame to `file` as it
/// arrives; returns once tcpdump is listening.
fn capture(p: &Peer, file: &Path, log: &Path) -> Bg {
    let err = std::fs::File::create(log).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &p.ns, "tcpdump", "-Z", "root", "-n", "-U", "--immediate-mode", "-i", &p.inner, "-w"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start tcpdump");
    let bg = Bg(Some(child));
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

/// `ping -c 3` from `ns` to `ip`, up to 3 attempts; returns the last output and whether
/// an attempt got every reply.
fn ping(ns: &str, ip: &str) -> (bool, String) {
    let mut log = String::new();
    for attempt in 1..=3 {
        let (ok, out) = sh("ip", &["netns", "exec", ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", ip]);
        log.push_str(&format!("--- attempt {attempt} ---\n{out}"));
        if ok && out.contains(" 0% packet loss") {
            return (true, log);
        }
    }
    (false, log)
}

/// Namespaces a (10.77.0.1) and b (10.77.0.2) and a silent observer c, bridged by sluice.
/// a pings b: the ARP request floods to b and c, the reply and the echoes are known
/// unicast and never reach c (tcpdump in c proves it). Stats: both MACs learned,
/// c received exactly the flooded frames, tx = rx + flooded (two copies per flood), no
/// drops, no leak.
#[test]
fn ping_between_namespaces_learns_and_stops_flooding() {
    skip_unless!(["ip", "sysctl", "ping", "tcpdump", "tshark"], root);
    let sb = Sandbox::new("netns-ping");
    let mut g = NetGuard::default();
    let Some(a) = add_peer(&mut g, "p", "a", "02:77:00:00:00:0a", Some("10.77.0.1/24")) else { return };
    let b = add_peer(&mut g, "p", "b", "02:77:00:00:00:0b", Some("10.77.0.2/24")).expect("second namespace");
    let c = add_peer(&mut g, "p", "c", "02:77:00:00:00:0c", None).expect("third namespace");

    let mut tcpdump = capture(&c, &sb.file("c.pcap"), &sb.file("tcpdump.err"));
    let yaml = format!(
        "{DPDK_HEADER}workers: {{cores: [1]}}\nports:\n{}bridges:\n  - name: br0\n    ports: [{{port: a}}, {{port: b}}, {{port: c}}]\n",
        [("a", &a, 0), ("b", &b, 1), ("c", &c, 2)]
            .iter()
            .map(|(n, p, i)| format!("  - {{name: {n}, devargs: \"net_af_packet{i},iface={},qpairs=1\"}}\n", p.outer))
            .collect::<String>()
    );
    let s = start_sluice_bg(&sb, "ping", &yaml, 30);
    let (ok, log) = ping(&a.ns, "10.77.0.2");
    s.terminate();
    let f = s.wait(Duration::from_secs(40));
    assert!(ok, "ping from a to b through sluice failed:\n{log}\n{}", f.context());
    let r = f.report();
    let ctx = &format!("{}\nping:\n{log}", r.context);
    // tcpdump writes each frame as it gets it (-U, --immediate-mode); give it until every
    // frame sluice sent to c is in the file, then stop it.
    let sent_to_c = r.port("c", "/ethdev/opackets") as usize;
    let t0 = Instant::now();
    while read_pcap(&sb.file("c.pcap")).map_or(0, |v| v.len()) < sent_to_c && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    tcpdump.stop();
    r.assert_consistent();

    assert_eq!(r.drops(), drops(&[]), "{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 2, "a and b learned, c is silent\n{ctx}");
    assert_eq!(r.port("c", "/rx_packets"), 0, "c is silent\n{ctx}");
    let flooded = r.u("/workers/0/flooded");
    assert!(flooded >= 1, "the first ARP request is flooded\n{ctx}");
    assert_eq!(r.port("c", "/tx_packets"), flooded, "c gets every flooded frame and nothing else\n{ctx}");
    assert_eq!(r.u("/totals/tx_packets"), r.u("/totals/rx_packets") + flooded, "a flood has two outputs\n{ctx}");
    for p in ["a", "b"] {
        assert!(r.port(p, "/rx_packets") >= 4, "port {p}: ARP + 3 ICMP at least\n{ctx}");
        assert!(r.port(p, "/tx_packets") >= 4, "port {p}: ARP + 3 ICMP at least\n{ctx}");
    }
    // What c saw, decoded by tshark: the flooded ARP request from a, no ICMP at all.
    let rows = tshark_fields(&sb.file("c.pcap"), &["eth.src", "eth.dst", "arp.opcode", "icmp.type"]);
    assert_eq!(rows.len() as u64, r.port("c", "/ethdev/opackets"), "c's capture vs sluice's tx to c: {rows:?}\n{ctx}");
    assert!(rows.iter().all(|r| r[3].is_empty()), "known-unicast ICMP leaked to c: {rows:?}\n{ctx}");
    assert!(
        rows.iter().any(|r| r[0] == a.mac && r[1] == "ff:ff:ff:ff:ff:ff" && r[2] == "1"),
        "c did not see a's ARP request (flooding): {rows:?}\n{ctx}"
    );
    drop(g);
}

/// The scapy side of [`vlan_trunk_to_a_kernel_peer`]: in namespace a, speaks 802.1Q
/// VLAN 42 by hand (this kernel may have no 8021q module), to b's real IP stack behind an
/// access port. Prints JSON with what came back and writes the replies to a pcap.
const SCAPY_VLAN: &str = r#"
import json, sys
from scapy.all import ARP, ICMP, IP, Dot1Q, Ether, Raw, conf, sendp, srp1, wrpcap
conf.verb = 0
iface, ma, out = sys.argv[1], sys.argv[2], sys.argv[3]
res, replies = {}, []
def arp_req(tag):
    e = Ether(src=ma, dst="ff:ff:ff:ff:ff:ff")
    a = ARP(op=1, hwsrc=ma, psrc="10.78.0.1", pdst="10.78.0.2")
    return e / Dot1Q(vlan=tag) / a if tag is not None else e / a
def vlan_of(p):
    return p[Dot1Q].vlan if Dot1Q in p else None
arp = None
res["arp_attempts"] = 0
for _ in range(3):
    res["arp_attempts"] += 1
    arp = srp1(arp_req(42), iface=iface, timeout=2)
    if arp is not None:
        break
if arp is not None:
    replies.append(arp)
    res["arp"] = {"vlan": vlan_of(arp), "op": int(arp[ARP].op), "psrc": arp[ARP].psrc, "hwsrc": arp[ARP].hwsrc, "dst": arp[Ether].dst}
    echo = srp1(Ether(src=ma, dst=arp[ARP].hwsrc) / Dot1Q(vlan=42) / IP(src="10.78.0.1", dst="10.78.0.2") / ICMP(id=0x5a5a, seq=1) / Raw(b"sluice-vlan-42"), iface=iface, timeout=2)
    if echo is not None:
        replies.append(echo)
        res["echo"] = {"vlan": vlan_of(echo), "type": int(echo[ICMP].type) if ICMP in echo else None, "load": bytes(echo[Raw].load).decode("latin-1") if Raw in echo else None}
# Must be dropped: untagged on a trunk without native VLAN, and a VLAN the trunk lacks.
sendp(arp_req(None), iface=iface)
sendp(arp_req(43), iface=iface)
wrpcap(out, replies)
print(json.dumps(res))
"#;

/// A trunk to a peer that speaks 802.1Q: namespace a (scapy, VLAN 42 tagged by hand) and
/// namespace b (the kernel's own ARP and ICMP, untagged) on an access port in VLAN 42.
/// The tagged ARP request and echo request must reach b untagged, and b's answers must
/// come back tagged 42 (checked by scapy and by tshark on what scapy received). An
/// untagged frame and a VLAN 43 frame on the trunk are dropped under their reasons.
#[test]
fn vlan_trunk_to_a_kernel_peer() {
    skip_unless!(["ip", "sysctl", "tshark"], root);
    let Some(py) = scapy_python() else {
        skip_or_fail("vlan_trunk_to_a_kernel_peer", "no python3 with scapy (python3-scapy)");
        return;
    };
    let sb = Sandbox::new("netns-vlan");
    let mut g = NetGuard::default();
    let ma = "02:78:00:00:00:0a";
    let mb = "02:78:00:00:00:0b";
    let Some(a) = add_peer(&mut g, "v", "a", ma, None) else { return };
    let b = add_peer(&mut g, "v", "b", mb, Some("10.78.0.2/24")).expect("second namespace");

    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [0]}}
ports:
  - {{name: a, devargs: "net_af_packet0,iface={}"}}
  - {{name: b, devargs: "net_af_packet1,iface={}"}}
bridges:
  - name: br0
    ports:
      - {{port: a, vlan_mode: trunk, trunks: [42]}}
      - {{port: b, tag: 42}}
"#,
        a.outer, b.outer
    );
    let script = sb.file("vlan.py");
    std::fs::write(&script, SCAPY_VLAN).unwrap();
    let replies = sb.file("replies.pcap");
    let s = start_sluice_bg(&sb, "vlan", &yaml, 30);
    let (ok, out) =
        sh("ip", &["netns", "exec", &a.ns, &py, &script.display().to_string(), &a.inner, ma, &replies.display().to_string()]);
    s.terminate();
    let f = s.wait(Duration::from_secs(40));
    let r = f.report();
    let ctx = &format!("{}\nscapy:\n{out}", r.context);
    assert!(ok, "the scapy script failed\n{ctx}");
    let res: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from the scapy script\n{ctx}"));
    let arp = &res["arp"];
    assert!(!arp.is_null(), "no ARP reply through the trunk\n{ctx}");
    assert_eq!(
        (arp["vlan"].as_u64(), arp["op"].as_u64(), arp["psrc"].as_str(), arp["hwsrc"].as_str(), arp["dst"].as_str()),
        (Some(42), Some(2), Some("10.78.0.2"), Some(mb), Some(ma)),
        "b's ARP reply must come back on the trunk tagged 42\n{ctx}"
    );
    let echo = &res["echo"];
    assert!(!echo.is_null(), "no ICMP echo reply through the trunk\n{ctx}");
    assert_eq!(
        (echo["vlan"].as_u64(), echo["type"].as_u64(), echo["load"].as_str()),
        (Some(42), Some(0), Some("sluice-vlan-42")),
        "echo reply tagged 42\n{ctx}"
    );
    let rows = tshark_fields(&replies, &["eth.src", "eth.dst", "vlan.id", "eth.type", "vlan.etype"]);
    assert_eq!(rows.len(), 2, "{rows:?}\n{ctx}");
    for row in &rows {
        assert_eq!((row[0].as_str(), row[1].as_str(), row[2].as_str()), (mb, ma, "42"), "tshark: {rows:?}\n{ctx}");
    }

    r.assert_consistent();
    assert_eq!(r.drops(), drops(&[("untagged_on_trunk", 1), ("vlan_not_allowed", 1)]), "{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 2, "{ctx}");
    let arp_attempts = res["arp_attempts"].as_u64().unwrap();
    // a: the ARP request(s), the echo request and the two bad frames; b: the ARP reply
    // and the echo reply.
    assert_eq!(r.port("a", "/rx_packets"), arp_attempts + 1 + 2, "{ctx}");
    assert_eq!(r.port("b", "/rx_packets"), 2, "{ctx}");
    assert_eq!(r.port("a", "/tx_packets"), 2, "{ctx}");
    assert_eq!(r.port("b", "/tx_packets"), arp_attempts + 1, "{ctx}");
    drop(g);
}
