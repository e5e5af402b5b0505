//! Connection tracking and network policy on a running sluice: a 10k-rule policy
//! replaced under traffic (pcap replay, counted per class), and real TCP between kernel
//! network namespaces (allowed both ways, refused the other way, cut by a new policy).
//!
//! The pcap test runs anywhere (no hugepages, vdevs only); the namespace test needs root,
//! `ip`, `nc`, `ping`, `ss` and `ethtool`, and cleans up after itself like the L3 tests.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sluice_tests::api::*;
use sluice_tests::l3::*;
use sluice_tests::*;

const OK: StatusCode = StatusCode::OK;

/// An ingress NetworkPolicy `web` selecting every pod, with `fillers` rules that match
/// none of the test traffic (ipBlocks in 172.16.0.0/12 with UDP ports, shifted by
/// `shift` so old and new differ), then `allow`: (cidr, protocol, port) rules.
fn big_policy(fillers: usize, shift: usize, allow: &[(&str, &str, u16)]) -> Value {
    let mut ingress: Vec<Value> = (0..fillers)
        .map(|i| {
            let i = i + shift;
            json!({
                "from": [{"ipBlock": {"cidr": format!("172.{}.{}.{}/28", 16 + (i / 4096) % 16, (i / 16) % 256, (i % 16) * 16)}}],
                "ports": [{"protocol": "UDP", "port": 6000 + (i % 50000)}]
            })
        })
        .collect();
    for (cidr, proto, port) in allow {
        ingress.push(json!({"from": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": proto, "port": port}]}));
    }
    json!({"name": "web", "namespace": "default", "spec": {"podSelector": {}, "ingress": ingress}})
}

/// Two classes of UDP traffic replayed from memory through uplinks to two endpoints:
/// A (in0 → web-a, UDP 5001) is allowed by the old and the new policy, B (in1 → web-b,
/// UDP 7001) only by the old one. The 10k-rule policy is replaced six times (old, new,
/// old, ...) while both run. Every A packet must arrive (rx(in0) == tx(pa), nothing
/// dropped but B's policy drops); B's packets either arrive or are dropped as
/// `policy_ingress`, and both happen (the new policy cuts B's flows, the old one lets
/// them through again).
#[test]
fn replacing_10k_rules_under_traffic_loses_nothing_both_policies_allow() {
    let sb = Sandbox::new("policy-swap");
    let uplink_a = mac(0xa2);
    let uplink_b = mac(0xb2);
    let router = mac(0x99);
    let class = |to: MacAddr, dst: [u8; 4], port: u16| -> Vec<Vec<u8>> {
        (0..64u16)
            .map(|i| {
                let src = std::net::Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8 + 1);
                udp4_frame(to, router, src, dst.into(), 64, i, (1000 + i, port), b"policy-swap")
            })
            .collect()
    };
    sb.write_pcap("a.pcap", &class(uplink_a, [10, 1, 0, 10], 5001));
    sb.write_pcap("b.pcap", &class(uplink_b, [10, 1, 0, 20], 7001));
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in0, devargs: "net_pcap0,rx_pcap={},infinite_rx=1", uplink: {{network: blue, ipv4: 192.0.2.2, mac: "{uplink_a}"}}}}
  - {{name: in1, devargs: "net_pcap1,rx_pcap={},infinite_rx=1", uplink: {{network: blue, ipv4: 192.0.2.3, mac: "{uplink_b}"}}}}
  - {{name: pa, devargs: "net_null0,no-rx=1", rx: false}}
  - {{name: pb, devargs: "net_null1,no-rx=1", rx: false}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24", "192.0.2.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
endpoints:
  - {{name: web-a, network: blue, port: pa, mac: "02:00:00:00:01:0a", ips: [10.1.0.10], labels: {{app: a}}}}
  - {{name: web-b, network: blue, port: pb, mac: "02:00:00:00:01:0b", ips: [10.1.0.20], labels: {{app: b}}}}
stats: {{interval_s: 0}}
"#,
        sb.arg("a.pcap"),
        sb.arg("b.pcap")
    );
    let d = Daemon::start(&sb, "swap", &yaml, &[]);
    let old = big_policy(9_998, 0, &[("10.0.0.0/8", "UDP", 5001), ("10.0.0.0/8", "UDP", 7001)]);
    let new = big_policy(9_999, 5_000, &[("10.0.0.0/16", "UDP", 5001)]);
    d.json(Method::POST, "/v1/network_policies", &old).expect(StatusCode::CREATED, "create the 10k-rule policy");
    let rx = |what: &str| d.get("/v1/stats").expect(OK, what)["totals"]["rx_packets"].as_u64().unwrap();
    let mut times = Vec::new();
    for i in 0..6 {
        // Let traffic run under the current policy (the worker shares its CPU with other
        // tests: wait for progress, bounded).
        let before = rx("stats");
        let t0 = Instant::now();
        while rx("stats") < before + 20_000 && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let body = if i % 2 == 0 { &new } else { &old };
        let t = Instant::now();
        let a = d.json(Method::PUT, "/v1/network_policies/default%2Fweb", body).expect(OK, &format!("replace {i}")).clone();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(a["applied"], json!(true), "{a}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = d.stop();
    let ctx = &r.context;
    r.assert_consistent();
    println!("10k-rule policy replaced 6 times under traffic, API round trips (ms): {times:.0?}");
    let (rx_a, rx_b) = (r.port("in0", "/ethdev/ipackets"), r.port("in1", "/ethdev/ipackets"));
    let (tx_a, tx_b) = (r.port("pa", "/ethdev/opackets"), r.port("pb", "/ethdev/opackets"));
    let policy_drops = r.drops().get("policy_ingress").copied().unwrap_or(0);
    println!("class A: rx {rx_a} tx {tx_a}; class B: rx {rx_b} tx {tx_b} denied {policy_drops}");
    assert!(rx_a >= 50_000 && rx_b >= 50_000, "too little traffic to mean anything\n{ctx}");
    assert_eq!(tx_a, rx_a, "every packet both policies allow arrives\n{ctx}");
    assert_eq!(r.u("/totals/drops_total"), policy_drops, "the only drops are B's policy drops: {:?}\n{ctx}", r.drops());
    assert_eq!(tx_b + policy_drops, rx_b, "every B packet is either delivered or denied\n{ctx}");
    assert!(policy_drops > 0 && tx_b > 0, "the new policy cut B and the old one let it through\n{ctx}");
    assert!(r.u("/workers/0/flows_redecided") > 0, "existing flows were re-decided\n{ctx}");
}

const A_MAC: &str = "02:14:00:00:00:0a";
const B_MAC: &str = "02:14:00:00:00:0b";

/// `ip addr` + default route via the gateway in `p`'s namespace.
fn address(p: &L3Peer, ip: &str) {
    in_ns_must(&p.ns, &["ip", "addr", "add", ip, "dev", &p.inner]);
    in_ns_must(&p.ns, &["ip", "route", "add", "default", "via", "10.1.0.1", "dev", &p.inner]);
}

/// Namespaces a (10.1.0.10) and b (10.1.0.11) behind sluice, every pod isolated for
/// ingress, b accepting anything from a (a manifest as kubectl prints it):
/// - a TCP connection a → b carries 256 KiB each way, byte-identical;
/// - b opening a connection to a (which listens) is refused: a is isolated;
/// - a pings b every 50 ms; replacing b's policy with "TCP 5001 only" stops the pings
///   at once: no reply comes back more than 200 ms after the API answered, and sluice
///   counts the denied requests as `policy_ingress`.
#[test]
fn tcp_between_namespaces_follows_network_policy() {
    skip_unless!(["ip", "nc", "ping", "ss", "ethtool"], root);
    let sb = Sandbox::new("policy-netns");
    let mut g = NetnsGuard::default();
    let Some(a) = add_l3_peer(&mut g, "p", "a", A_MAC, false) else { return };
    let b = add_l3_peer(&mut g, "p", "b", B_MAC, false).expect("second namespace");
    address(&a, "10.1.0.10/24");
    address(&b, "10.1.0.11/24");
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: pa, devargs: "net_af_packet0,iface={}"}}
  - {{name: pb, devargs: "net_af_packet1,iface={}"}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
namespaces:
  - {{name: shop, labels: {{team: a}}}}
endpoints:
  - {{name: a, network: blue, port: pa, mac: "{A_MAC}", ips: [10.1.0.10], namespace: shop, labels: {{app: a}}}}
  - {{name: b, network: blue, port: pb, mac: "{B_MAC}", ips: [10.1.0.11], namespace: shop, labels: {{app: b}}, ports: [{{name: app, port: 5001}}]}}
network_policies:
  - {{name: default-deny, namespace: shop, spec: {{podSelector: {{}}, policyTypes: [Ingress]}}}}
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: b-from-a, namespace: shop, uid: 3f1c, labels: {{owner: test}}}}
    spec:
      podSelector: {{matchLabels: {{app: b}}}}
      ingress:
        - from: [{{podSelector: {{matchLabels: {{app: a}}}}}}]
    status: {{}}
stats: {{interval_s: 0}}
"#,
        a.outer, b.outer
    );
    let d = Daemon::start(&sb, "netns", &yaml, &[]);
    let mut log = String::new();

    // --- a -> b: data both ways on one connection.
    let to_b = pseudo_random_bytes(256 << 10, 11);
    let to_a = pseudo_random_bytes(256 << 10, 22);
    std::fs::write(sb.file("to_b.bin"), &to_b).unwrap();
    std::fs::write(sb.file("to_a.bin"), &to_a).unwrap();
    let mut server = Bg::spawn(
        "ip",
        &["netns", "exec", &b.ns, "nc", "-l", "5001"],
        Stdio::from(std::fs::File::open(sb.file("to_a.bin")).unwrap()),
        Stdio::from(std::fs::File::create(sb.file("got_b.bin")).unwrap()),
        Stdio::null(),
    );
    wait_listening(&b, "5001");
    // The client half-closes (FIN) when its stdin ends, and the server quits on that FIN
    // even if it has not sent all of its own data yet. So the client's stdin stays open
    // until a has received everything b sends (bounded), then closes.
    let mut client = std::process::Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &a.ns, "nc", "-q", "2", "10.1.0.11", "5001"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(sb.file("got_a.bin")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let feeder = std::thread::spawn({
        let to_b = to_b.clone();
        move || {
            use std::io::Write;
            let sent = stdin.write_all(&to_b);
            (stdin, sent)
        }
    });
    let t0 = Instant::now();
    let got_a_len = || std::fs::metadata(sb.file("got_a.bin")).map(|m| m.len()).unwrap_or(0);
    while got_a_len() < to_a.len() as u64 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (stdin, sent) = feeder.join().unwrap();
    drop(stdin);
    let client = client.wait_with_output().unwrap();
    let server_done = server.wait_for(Duration::from_secs(10));
    let (got_b, got_a) = (std::fs::read(sb.file("got_b.bin")).unwrap(), std::fs::read(sb.file("got_a.bin")).unwrap());
    log.push_str(&format!(
        "nc a->b: client {:?} (stdin {sent:?}) {}; server {server_done:?}; b got {} bytes, a got {}\n",
        client.status,
        String::from_utf8_lossy(&client.stderr),
        got_b.len(),
        got_a.len()
    ));

    // --- b -> a: refused (a listens, but a is isolated and allows nothing).
    let mut listener = Bg::spawn("ip", &["netns", "exec", &a.ns, "nc", "-l", "5002"], Stdio::null(), Stdio::null(), Stdio::null());
    wait_listening(&a, "5002");
    let (reverse_ok, reverse) = in_ns(&b.ns, &["nc", "-z", "-w", "2", "10.1.0.10", "5002"]);
    listener.stop();
    log.push_str(&format!("nc b->a (must fail): {reverse_ok} {reverse}\n"));
    let denied_before = d.get("/v1/stats").expect(OK, "stats")["totals"]["drops"]["policy_ingress"].as_u64().unwrap_or(0);

    // --- a pings b; the policy changes under it.
    let ping_out = sb.file("ping.txt");
    let mut ping = Bg::spawn(
        "ip",
        &["netns", "exec", &a.ns, "ping", "-n", "-D", "-i", "0.05", "-c", "60", "-W", "1", "10.1.0.11"],
        Stdio::null(),
        Stdio::from(std::fs::File::create(&ping_out).unwrap()),
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let tcp_only = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "b-from-a", "namespace": "shop"},
        "spec": {"podSelector": {"matchLabels": {"app": "b"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"protocol": "TCP", "port": "app"}]}]}
    });
    d.json(Method::PUT, "/v1/network_policies/shop%2Fb-from-a", &tcp_only).expect(OK, "replace b-from-a");
    let applied_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let ping_done = ping.wait_for(Duration::from_secs(15));
    let pings = std::fs::read_to_string(&ping_out).unwrap_or_default();
    log.push_str(&format!("--- ping ({ping_done:?}), policy replaced at {applied_at:.3} ---\n{pings}"));
    let replies: Vec<f64> = pings
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();

    let r = d.stop();
    let ctx = &format!("{}\n{log}", r.context);
    r.assert_consistent();
    assert_eq!(got_b, to_b, "a -> b data arrived intact\n{ctx}");
    assert_eq!(got_a, to_a, "b -> a data (the reply direction) arrived intact\n{ctx}");
    assert!(!reverse_ok, "b must not open a connection to a\n{ctx}");
    assert!(denied_before > 0, "the refused SYNs were counted as policy_ingress\n{ctx}");
    let before = replies.iter().filter(|t| **t < applied_at).count();
    let late: Vec<&f64> = replies.iter().filter(|t| **t > applied_at + 0.2).collect();
    assert!(before >= 5, "pings were answered before the change ({before})\n{ctx}");
    assert!(late.is_empty(), "replies more than 200 ms after the new policy: {late:?}\n{ctx}");
    let denied = r.drops().get("policy_ingress").copied().unwrap_or(0);
    assert!(denied >= denied_before + 10, "the pings after the change were denied ({denied_before} -> {denied})\n{ctx}");
}
