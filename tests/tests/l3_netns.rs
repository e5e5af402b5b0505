//! Routing between real kernel network stacks: network namespaces joined to sluice by
//! veth pairs (root-side ends opened with net_af_packet), configured by sluice's own
//! DHCP server, talking through sluice as their gateway. Needs root, `ip`, busybox
//! `udhcpc`, `ping`, OpenBSD `nc`, `ethtool`, `ss`, `tcpdump` and `tshark`.
//!
//! Every namespace, veth and /etc/netns entry is named after this process id and removed
//! by a guard even when the test fails. See `sluice_tests::l3::add_l3_peer` for how a
//! namespace is set up, in particular why transmit checksum offload is turned off.

use std::process::Stdio;
use std::time::{Duration, Instant};

use sluice_tests::l3::*;
use sluice_tests::*;

const A_MAC: &str = "02:13:00:00:00:0a";
const B_MAC: &str = "02:13:00:00:00:0b";
const C_MAC: &str = "02:13:00:00:00:0c";

/// `ping` from `ns` with `args` before the destination, up to 3 attempts; true as soon
/// as one attempt gets every reply. Returns the log of every attempt.
fn ping_ok(ns: &str, args: &[&str], dst: &str) -> (bool, String) {
    let mut log = String::new();
    for attempt in 1..=3 {
        let mut a = vec!["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1"];
        a.extend_from_slice(args);
        a.push(dst);
        let (ok, out) = in_ns(ns, &a);
        log.push_str(&format!("--- ping {} {dst}, attempt {attempt} ---\n{out}", args.join(" ")));
        if ok && out.contains(" 0% packet loss") {
            return (true, log);
        }
    }
    (false, log)
}

/// Starts udhcpc on `p` (busybox; its default script sets the address, the default
/// route and the namespace's resolv.conf), logging to `log`.
fn dhcp(p: &L3Peer, log: &std::path::Path) -> Bg {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Bg::spawn(
        "ip",
        &["netns", "exec", &p.ns, "udhcpc", "-i", &p.inner, "-n", "-q", "-t", "5", "-T", "1"],
        Stdio::null(),
        Stdio::from(out),
        Stdio::from(err),
    )
}

/// Three namespaces, two tenants with the same subnet. Network blue (10.1.0.0/24 and
/// fd00:1::/64) holds endpoints a (10.1.0.10) and b (10.1.0.11); network red (also
/// 10.1.0.0/24, also gateway 10.1.0.1) holds c, whose address 10.1.0.11 is b's too.
///
/// - DHCP: udhcpc in each namespace gets exactly its configured address, /24, the
///   default route via 10.1.0.1 and its network's DNS server, from sluice;
/// - each tenant's gateway answers with its own MAC (02:5c:00:00:00:01 / :02);
/// - a ↔ b: ping and ping -6 (to each other and to the gateway), and a 2 MiB TCP
///   transfer a → b through nc arrives byte-identical;
/// - isolation: c pinging 10.1.0.10 (a's address, which red does not have) gets ICMP
///   net unreachable from red's gateway; a pinging 10.1.0.11 reaches b and never c:
///   tcpdump in c captures every frame sluice sends to c and none comes from a;
/// - anti-spoofing: a pinging from an extra address 10.1.0.66 gets nothing back and
///   sluice counts each echo request under `spoofed`;
/// - stats: at least 6 DHCP replies (offer + ack per namespace), no mbuf leaked.
#[test]
fn two_tenants_with_overlapping_subnets() {
    skip_unless!(["ip", "sysctl", "udhcpc", "ping", "nc", "ethtool", "ss", "tcpdump", "tshark"], root);
    let sb = Sandbox::new("l3-netns");
    let mut g = NetnsGuard::default();
    let Some(a) = add_l3_peer(&mut g, "t", "a", A_MAC, true) else { return };
    let b = add_l3_peer(&mut g, "t", "b", B_MAC, true).expect("second namespace");
    let c = add_l3_peer(&mut g, "t", "c", C_MAC, false).expect("third namespace");

    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: pa, devargs: "net_af_packet0,iface={}"}}
  - {{name: pb, devargs: "net_af_packet1,iface={}"}}
  - {{name: pc, devargs: "net_af_packet2,iface={}"}}
networks:
  - name: blue
    subnets: ["10.1.0.0/24", "fd00:1::/64"]
    gateway: {{ipv4: 10.1.0.1, ipv6: "fd00:1::1"}}
    dhcp: {{dns: [10.1.0.1]}}
  - name: red
    subnets: ["10.1.0.0/24"]
    gateway: {{ipv4: 10.1.0.1}}
    dhcp: {{dns: [10.1.0.53]}}
endpoints:
  - {{name: a, network: blue, port: pa, mac: "{A_MAC}", ips: [10.1.0.10, "fd00:1::10"]}}
  - {{name: b, network: blue, port: pb, mac: "{B_MAC}", ips: [10.1.0.11, "fd00:1::11"]}}
  - {{name: c, network: red, port: pc, mac: "{C_MAC}", ips: [10.1.0.11]}}
"#,
        a.outer, b.outer, c.outer
    );
    // Everything c's interface sends or receives, from before sluice starts.
    let c_pcap = sb.file("c.pcap");
    let mut tcpdump = capture_in(&c, &c_pcap, &sb.file("tcpdump.err"));
    let t0 = Instant::now();
    // A hard upper bound: the test stops sluice (SIGTERM) as soon as it is done.
    let s = start_sluice_bg(&sb, "tenants", &yaml, 40);
    let mut log = String::new();

    // --- DHCP, in the three namespaces at once.
    let udhcpc_log = |p: &L3Peer| sb.file(&format!("udhcpc-{}.log", p.ns));
    let mut clients: Vec<(&L3Peer, Bg)> = [&a, &b, &c].into_iter().map(|p| (p, dhcp(p, &udhcpc_log(p)))).collect();
    let mut dhcp_ok = true;
    for (p, bg) in &mut clients {
        let st = bg.wait_for(Duration::from_secs(15));
        let out = std::fs::read_to_string(udhcpc_log(p)).unwrap_or_default();
        log.push_str(&format!("--- udhcpc in {} ({st:?}) ---\n{out}", p.ns));
        dhcp_ok &= st.is_some_and(|s| s.success());
    }
    let addr = |p: &L3Peer| in_ns_must(&p.ns, &["ip", "-4", "-o", "addr", "show", "dev", &p.inner]);
    let route = |p: &L3Peer| in_ns_must(&p.ns, &["ip", "-4", "route", "show", "default"]);
    let dhcp_state: Vec<(String, String, String)> = [&a, &b, &c]
        .iter()
        .map(|p| (addr(p), route(p), std::fs::read_to_string(&p.resolv_conf).unwrap_or_default()))
        .collect();

    // --- IPv6 (static: sluice sends no router advertisements) on a and b.
    for (p, ip) in [(&a, "fd00:1::10/64"), (&b, "fd00:1::11/64")] {
        in_ns_must(&p.ns, &["ip", "-6", "addr", "add", ip, "dev", &p.inner, "nodad"]);
        in_ns_must(&p.ns, &["ip", "-6", "route", "add", "default", "via", "fd00:1::1", "dev", &p.inner]);
    }

    // --- Reachability.
    let mut pings = Vec::new();
    for (what, p, args, dst) in [
        ("a -> blue gateway", &a, &[][..], "10.1.0.1"),
        ("a -> b", &a, &[][..], "10.1.0.11"),
        ("b -> a", &b, &[][..], "10.1.0.10"),
        ("c -> red gateway", &c, &[][..], "10.1.0.1"),
        ("a -> blue gateway v6", &a, &["-6"][..], "fd00:1::1"),
        ("a -> b v6", &a, &["-6"][..], "fd00:1::11"),
    ] {
        let (ok, out) = ping_ok(&p.ns, args, dst);
        log.push_str(&out);
        pings.push((what, ok));
    }
    let neigh = |p: &L3Peer| in_ns_must(&p.ns, &["ip", "-4", "neigh", "show", "10.1.0.1", "dev", &p.inner]);
    let (gw_a, gw_c) = (neigh(&a), neigh(&c));

    // --- TCP a -> b: 2 MiB through nc.
    let data = pseudo_random_bytes(2 << 20, 0x5eed_1234);
    let (src, dst) = (sb.file("send.bin"), sb.file("recv.bin"));
    std::fs::write(&src, &data).unwrap();
    let mut server = Bg::spawn(
        "ip",
        &["netns", "exec", &b.ns, "nc", "-l", "5001"],
        Stdio::null(),
        Stdio::from(std::fs::File::create(&dst).unwrap()),
        Stdio::null(),
    );
    wait_listening(&b, "5001");
    let (client_ok, client_out) = run_limited(
        "ip",
        &["netns", "exec", &a.ns, "nc", "-q", "1", "10.1.0.11", "5001"],
        Some(&src),
        Duration::from_secs(20),
    );
    let server_status = server.wait_for(Duration::from_secs(10));
    let received = std::fs::read(&dst).unwrap_or_default();
    log.push_str(&format!(
        "--- nc client ({client_ok}) ---\n{client_out}--- nc server: {server_status:?}, {} bytes ---\n",
        received.len()
    ));

    // --- Isolation: c (red) cannot reach 10.1.0.10, which only blue has.
    let (c_to_a_ok, c_to_a) = in_ns(&c.ns, &["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "10.1.0.10"]);
    log.push_str(&format!("--- c -> 10.1.0.10 (must fail) ---\n{c_to_a}"));

    // --- Spoofing: a sends from an address that is not its own.
    in_ns_must(&a.ns, &["ip", "addr", "add", "10.1.0.66/32", "dev", &a.inner]);
    let (spoof_ok, spoof) =
        in_ns(&a.ns, &["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.1.0.66", "10.1.0.11"]);
    log.push_str(&format!("--- a from 10.1.0.66 -> b (must fail) ---\n{spoof}"));

    s.terminate();
    let f = s.wait(Duration::from_secs(60));
    let work_s = t0.elapsed().as_secs_f64();
    // Check the outcome of everything the namespaces did before the stats, with the log.
    let ctx = &format!("{}\n{log}", f.context());
    assert!(dhcp_ok, "udhcpc failed in some namespace\n{ctx}");
    for (p, want_addr, want_dns, (addr, route, resolv)) in [
        (&a, "10.1.0.10/24", "10.1.0.1", &dhcp_state[0]),
        (&b, "10.1.0.11/24", "10.1.0.1", &dhcp_state[1]),
        (&c, "10.1.0.11/24", "10.1.0.53", &dhcp_state[2]),
    ] {
        assert!(addr.contains(&format!("inet {want_addr} ")), "{}: DHCP should give {want_addr}: {addr}\n{ctx}", p.ns);
        assert_eq!(addr.matches("inet ").count(), 1, "{}: one IPv4 address: {addr}\n{ctx}", p.ns);
        assert!(route.contains("default via 10.1.0.1 "), "{}: default route via the gateway: {route}\n{ctx}", p.ns);
        assert!(
            resolv.contains(&format!("nameserver {want_dns}")),
            "{}: its network's DNS server: {resolv:?}\n{ctx}",
            p.ns
        );
    }
    for (what, ok) in &pings {
        assert!(ok, "ping {what} failed\n{ctx}");
    }
    assert!(gw_a.contains("02:5c:00:00:00:01"), "a's gateway is blue's MAC: {gw_a}\n{ctx}");
    assert!(gw_c.contains("02:5c:00:00:00:02"), "c's gateway is red's MAC: {gw_c}\n{ctx}");
    assert!(client_ok, "nc client failed\n{ctx}");
    assert!(server_status.is_some_and(|s| s.success()), "nc server did not finish\n{ctx}");
    assert!(
        received == data,
        "TCP a -> b: received {} bytes, not the 2 MiB sent (or corrupted)\n{ctx}",
        received.len()
    );
    assert!(!c_to_a_ok, "c (red) reached 10.1.0.10, an address of blue\n{ctx}");
    assert!(
        c_to_a.contains("From 10.1.0.1") && c_to_a.contains("Net Unreachable"),
        "c should get net unreachable from red's gateway\n{ctx}"
    );
    assert!(!spoof_ok && spoof.contains(" 100% packet loss"), "a's spoofed pings must all be dropped\n{ctx}");

    let r = f.report(); // exit 0, stats JSON, no leaked mbuf
    let ctx = &format!("{}\n{log}", r.context);
    // tcpdump writes each frame as it gets it; give it until every frame sluice sent to c
    // is in the file, then stop it.
    let sent_to_c = r.port("pc", "/ethdev/opackets") as usize;
    let t1 = Instant::now();
    while read_pcap(&c_pcap).map_or(0, |v| v.len()) < sent_to_c && t1.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    tcpdump.stop();
    r.assert_consistent();

    let w = |k: &str| r.u(&format!("/workers/0/{k}"));
    assert!(w("dhcp_replies") >= 6, "offer + ack per namespace\n{ctx}");
    let spoofed = r.drops().get("spoofed").copied().unwrap_or(0);
    assert_eq!(spoofed, 3, "each of a's 3 echo requests from 10.1.0.66 is dropped as spoofed\n{ctx}");
    assert!(w("icmp_errors") >= 2, "net unreachable for c's 2 echo requests\n{ctx}");
    assert!(w("echo_replies") >= 9, "pings to the gateways (3 each: a v4, c v4, a v6)\n{ctx}");
    assert!(w("arp_replies") >= 3 && w("nd_replies") >= 1, "{ctx}");
    assert!(w("routed") >= 2 * 3 * 3 + 1000, "pings a<->b and a 2 MiB TCP transfer\n{ctx}");

    // What c's interface saw, decoded by tshark: its DHCP exchange, its pings to red's
    // gateway, ICMP errors from it, ARP; and nothing from a.
    let rows = tshark_fields(&c_pcap, &["eth.src", "eth.dst", "ip.src", "ip.dst", "icmp.type", "icmp.code"]);
    let rows_from_sluice = rows.iter().filter(|r| r[0] != C_MAC).count();
    assert_eq!(rows_from_sluice, sent_to_c, "c's capture vs what sluice sent to c: {rows:?}\n{ctx}");
    let leaked: Vec<_> = rows.iter().filter(|r| r[0] == A_MAC || r[2].split('|').any(|ip| ip == "10.1.0.10")).collect();
    assert!(leaked.is_empty(), "frames from a (blue) reached c (red): {leaked:?}\n{ctx}");
    assert!(
        rows.iter().any(|r| r[0] == "02:5c:00:00:00:02"
            && r[2].starts_with("10.1.0.1|")
            && r[4].starts_with("3|")
            && r[5].starts_with("0|")),
        "c got no ICMP net unreachable from red's gateway: {rows:?}\n{ctx}"
    );
    assert!(
        rows.iter().all(|r| r[0] == C_MAC || r[0] == "02:5c:00:00:00:02"),
        "c only ever hears red's gateway: {rows:?}\n{ctx}"
    );
    eprintln!("namespace work and sluice run took {work_s:.1} s");
    drop(g);
}
