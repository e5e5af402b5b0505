//! Ports added and removed while sluice runs (`ovs-vsctl add-port/del-port` for
//! sluice): through `POST/PUT/DELETE /v1/ports/...` and through `apply`, with traffic on
//! the other ports, counted per port; removing a port frees every mbuf its driver held
//! (checked on the live mempool count and in the exit report); bad input changes
//! nothing; and 1,000 API changes (routes, policies, ports) under pcap replay lose no
//! packet that should pass.
//!
//! Everything runs on net_pcap / net_null vdevs without hugepages, one worker.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_tests::api::*;
use sluice_tests::l3::*;
use sluice_tests::*;

const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;
const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

fn stats(d: &Daemon) -> Value {
    d.get("/v1/stats").expect(OK, "GET /v1/stats").clone()
}

/// A live port counter from `GET /v1/stats` (None: no such port).
fn port_stat(s: &Value, name: &str, key: &str) -> Option<u64> {
    s["ports"].as_array()?.iter().find(|p| p["name"] == name)?.pointer(key)?.as_u64()
}

/// Waits (bounded) until `cond` holds on the live stats; returns the last stats.
fn wait_stats(d: &Daemon, what: &str, limit: Duration, cond: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let s = stats(d);
        if cond(&s) {
            return s;
        }
        assert!(t0.elapsed() < limit, "{what}: not reached within {limit:?}: {s}\n{}", d.output());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mbufs out of the pool now: the smallest of a few samples, so bursts in flight on the
/// running ports (at most an rx burst and a tx buffer per port) barely count.
fn pool_in_use(d: &Daemon) -> u64 {
    (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            stats(d)["mempool"]["in_use"].as_u64().expect("mempool.in_use")
        })
        .min()
        .unwrap()
}

/// Slack for bursts in flight when comparing live mempool counts: one worker, an rx
/// burst (32) plus a tx buffer (64).
const IN_FLIGHT: u64 = 96;

/// A bridge in0 (pcap replay) → out0 (sink) runs. At runtime a second pair joins in one
/// apply (in1: a pcap replaying 2,000 frames, whose driver keeps them all as mbufs; out1:
/// a sink; bridge br1): its traffic is counted on in1 and out1 and the pool holds the
/// 2,000 extra mbufs. Then the pair is removed with DELETEs while in0 → out0 keeps
/// running: the pool's in-use count returns to its baseline, in1's device can be
/// attached again, nothing at all is dropped, every in0 frame reaches out0, and the exit
/// report shows no leaked mbuf.
#[test]
fn a_port_pair_added_at_runtime_forwards_and_its_removal_frees_every_mbuf() {
    let sb = Sandbox::new("hotplug-pair");
    let f0: Vec<Vec<u8>> = (0..64).map(|i| frame(mac(0x20), mac(0x10), None, 64, i)).collect();
    let f1: Vec<Vec<u8>> = (0..2000).map(|i| frame(mac(0x21), mac(0x11), None, 64, i)).collect();
    sb.write_pcap("a.pcap", &f0);
    sb.write_pcap("b.pcap", &f1);
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
mempool: {{mbufs: 16383}}
ports:
  - {{name: in0, devargs: "net_pcap0,rx_pcap={},infinite_rx=1"}}
  - {{name: out0, devargs: "net_null0,no-rx=1", rx: false}}
bridges:
  - {{name: br0, ports: [{{port: in0}}, {{port: out0}}]}}
stats: {{interval_s: 0}}
"#,
        sb.arg("a.pcap")
    );
    let d = Daemon::start(&sb, "pair", &yaml, &[]);
    let ready = |s: &Value| port_stat(s, "out0", "/tx_packets").unwrap_or(0) > 10_000;
    wait_stats(&d, "in0 -> out0 traffic", Duration::from_secs(10), ready);
    let base = pool_in_use(&d);

    // Add in1 + out1 + br1 in one apply.
    let initial = d.config();
    let mut desired = initial.clone();
    desired["ports"].as_array_mut().unwrap().extend([
        json!({"name": "in1", "devargs": format!("net_pcap1,rx_pcap={},infinite_rx=1", sb.arg("b.pcap"))}),
        json!({"name": "out1", "devargs": "net_null1,no-rx=1", "rx": false}),
    ]);
    desired["bridges"].as_array_mut().unwrap().push(json!({"name": "br1", "ports": [{"port": "in1"}, {"port": "out1"}]}));
    let a = d.json(Method::POST, "/v1/apply", &desired).expect(OK, "apply adding in1, out1, br1").clone();
    assert_eq!(a["applied"], json!(true), "{a}");
    assert_eq!(diff_names(&a, "added", "ports"), ["in1", "out1"], "{a}");
    assert_eq!(diff_names(&a, "added", "bridges"), ["br1"], "{a}");
    let s = wait_stats(&d, "in1 -> out1 traffic", Duration::from_secs(10), |s| {
        port_stat(s, "out1", "/tx_packets").unwrap_or(0) > 10_000
    });
    // Every frame out1 sent came in on in1. One snapshot reads in1 before out1, with the
    // worker running in between, so compare out1 with a later snapshot's in1 (both only grow).
    let later = stats(&d);
    assert!(port_stat(&later, "in1", "/rx_packets").unwrap() >= port_stat(&s, "out1", "/tx_packets").unwrap(), "{s}\n{later}");
    let with_pair = pool_in_use(&d);
    assert!(
        with_pair + IN_FLIGHT >= base + 2000,
        "in1's driver holds its 2,000 replayed frames as mbufs: in use {base} -> {with_pair}\n{}",
        d.output()
    );

    // A port in a bridge cannot go alone: the bridge names it.
    d.delete("/v1/ports/in1").expect_error(INVALID, "bridges[1].ports[0].port", "deleting a bridged port");
    // Remove the pair and its bridge in one apply while in0 -> out0 runs.
    let out0_before = port_stat(&stats(&d), "out0", "/tx_packets").unwrap();
    let a = d.json(Method::POST, "/v1/apply", &initial).expect(OK, "apply removing in1, out1, br1").clone();
    assert_eq!(diff_names(&a, "removed", "ports"), ["in1", "out1"], "{a}");
    assert_eq!(diff_names(&a, "removed", "bridges"), ["br1"], "{a}");
    let s = stats(&d);
    assert_eq!(port_stat(&s, "in1", "/rx_packets"), None, "in1 is gone: {s}");
    let s = wait_stats(&d, "in0 -> out0 keeps running", Duration::from_secs(10), |s| {
        port_stat(s, "out0", "/tx_packets").unwrap_or(0) > out0_before + 1000
    });
    let after = pool_in_use(&d);
    assert!(
        after <= base + IN_FLIGHT,
        "removing in1 returned its mbufs: in use {base} before, {with_pair} with the pair, {after} after: {s}\n{}",
        d.output()
    );

    // The devices were detached: the same devargs attach again (and go again).
    let a = d.json(Method::POST, "/v1/apply", &desired).expect(OK, "apply adding the pair again").clone();
    assert_eq!(diff_names(&a, "added", "ports"), ["in1", "out1"], "{a}");
    let s = wait_stats(&d, "in1 -> out1 again", Duration::from_secs(10), |s| port_stat(s, "out1", "/tx_packets").unwrap_or(0) > 1000);
    assert!(port_stat(&s, "out1", "/tx_packets").unwrap() < port_stat(&s, "out0", "/tx_packets").unwrap(), "a re-added port counts from 0: {s}");
    d.json(Method::POST, "/v1/apply", &initial).expect(OK, "apply removing the pair again");
    assert!(pool_in_use(&d) <= base + IN_FLIGHT, "and its mbufs came back again");

    std::thread::sleep(Duration::from_millis(200));
    let r = d.stop();
    let ctx = &r.context;
    assert_eq!(r.drops(), drops(&[]), "nothing dropped across adds and removals\n{ctx}");
    assert_eq!(
        r.port("out0", "/ethdev/opackets"),
        r.port("in0", "/ethdev/ipackets"),
        "every in0 frame reached out0\n{ctx}"
    );
    assert_eq!(r.json["ports"].as_array().unwrap().len(), 2, "only in0 and out0 remain\n{ctx}");
}

/// Port errors over the API: each names its field, and nothing changes. Adding and
/// removing a port answers with the diff; a port given at start can be removed and
/// attached again.
#[test]
fn port_create_and_delete_errors_name_the_field_and_change_nothing() {
    let sb = Sandbox::new("hotplug-errors");
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: p0, devargs: "net_null0,no-rx=1"}}
  - {{name: p1, devargs: "net_null1,no-rx=1", rx: false}}
  - {{name: p2, devargs: "net_null2,no-rx=1", rx: false}}
bridges:
  - {{name: br0, ports: [{{port: p0}}, {{port: p1}}]}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
endpoints:
  - {{name: e1, network: blue, port: p2, mac: "02:00:00:00:01:01", ips: [10.1.0.10]}}
stats: {{interval_s: 0}}
"#
    );
    let d = Daemon::start(&sb, "errors", &yaml, &[]);
    let initial = d.config_bytes();
    let epoch0 = stats(&d);
    let post = |body: Value| d.json(Method::POST, "/v1/ports", &body);
    // Bad devargs: a driver that does not exist, a malformed argument, not a vdev name.
    post(json!({"name": "x", "devargs": "net_nosuchdriver0"})).expect_error(INVALID, "ports[3].devargs", "unknown driver");
    post(json!({"name": "x", "devargs": "net_null5,size=notanumber"})).expect_error(INVALID, "ports[3].devargs", "bad argument");
    post(json!({"name": "x", "devargs": "eth0"})).expect_error(INVALID, "ports[3].devargs", "not a vdev");
    post(json!({"name": "x", "devargs": "net_null0"})).expect_error(INVALID, "ports[3].devargs", "device of another port");
    post(json!({"name": "x", "pci": "not-pci"})).expect_error(INVALID, "ports[3].pci", "bad PCI address");
    post(json!({"name": "x", "devargs": "net_null5", "mtu": 20})).expect_error(INVALID, "ports[3].mtu", "MTU out of range");
    post(json!({"name": "p0", "devargs": "net_null5"})).expect_error(CONFLICT, "name", "a name in use");
    post(json!({"name": "x", "devargs": "net_null5", "bogus": 1})).expect_error(StatusCode::BAD_REQUEST, "bogus", "unknown key");
    // What needs a restart on an existing port: 409 naming it.
    let mut p1 = d.get("/v1/ports/p1").expect(OK, "GET p1").clone();
    p1["rx_desc"] = json!(512);
    d.json(Method::PUT, "/v1/ports/p1", &p1).expect_error(CONFLICT, "ports[1].rx_desc", "queue ring size of a running port");
    p1["rx_desc"] = json!(1024);
    p1["devargs"] = json!("net_null7,no-rx=1");
    d.json(Method::PUT, "/v1/ports/p1", &p1).expect_error(CONFLICT, "ports[1].devargs", "devargs of a running port");
    // Removing what others use.
    d.delete("/v1/ports/p0").expect_error(INVALID, "bridges[0].ports[0].port", "a bridged port");
    d.delete("/v1/ports/p2").expect_error(INVALID, "endpoints[0].port", "an endpoint's port");
    d.delete("/v1/ports/nosuch").expect_error(NOT_FOUND, "", "an unknown port");
    assert_eq!(d.config_bytes(), initial, "nothing changed");
    assert_eq!(stats(&d)["ports"].as_array().unwrap().len(), 3, "no port left behind: {}", stats(&d));
    let _ = epoch0;

    // Happy path: add, then remove with the endpoint in one apply; re-attach a start-up port.
    let a = post(json!({"name": "p3", "devargs": "net_null3,no-rx=1", "rx": false})).expect(CREATED, "add p3").clone();
    assert_eq!((a["applied"].clone(), diff_names(&a, "added", "ports")), (json!(true), vec!["p3".to_string()]), "{a}");
    assert_eq!(port_stat(&stats(&d), "p3", "/tx_packets"), Some(0), "p3 reports, from 0");
    let mut desired = d.config();
    desired["ports"].as_array_mut().unwrap().retain(|p| p["name"] != "p2");
    desired["endpoints"] = json!([]);
    let a = d.json(Method::POST, "/v1/apply", &desired).expect(OK, "apply removing p2 and its endpoint").clone();
    assert_eq!(diff_names(&a, "removed", "ports"), ["p2"], "{a}");
    assert_eq!(diff_names(&a, "removed", "endpoints"), ["e1"], "{a}");
    // p2 was given to EAL at start (--vdev): it was detached, so it attaches again.
    post(json!({"name": "p2", "devargs": "net_null2,no-rx=1", "rx": false})).expect(CREATED, "re-add p2");
    let names: Vec<String> = d.get("/v1/ports").expect(OK, "list").as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["p0", "p1", "p3", "p2"]);
    let r = d.stop();
    assert_eq!(r.json["ports"].as_array().unwrap().len(), 4, "{}", r.context);
}

/// Routed class A traffic (pcap replay on uplink in0 → endpoint web-a on pa) runs while
/// 1,000 API changes land, one request each, in a fixed cycle: a route added / removed,
/// a global rule and a NetworkPolicy that match none of the traffic added / removed, a
/// port added / removed (reusing five device names, so devices are detached and probed
/// again). Every change is applied with the next epoch; afterwards every packet received
/// reached pa (nothing dropped), and no mbuf is missing from the pool, live or at exit.
#[test]
fn a_thousand_api_changes_under_traffic_lose_nothing_and_return_every_mbuf() {
    let sb = Sandbox::new("hotplug-1000");
    let uplink = mac(0xa2);
    let router = mac(0x99);
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            let src = std::net::Ipv4Addr::new(10, 0, 0, i as u8 + 1);
            udp4_frame(uplink, router, src, [10, 1, 0, 10].into(), 64, i, (1000 + i, 5001), b"thousand")
        })
        .collect();
    sb.write_pcap("a.pcap", &frames);
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in0, devargs: "net_pcap0,rx_pcap={},infinite_rx=1", uplink: {{network: blue, ipv4: 192.0.2.2, mac: "{uplink}"}}}}
  - {{name: pa, devargs: "net_null0,no-rx=1", rx: false}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24", "192.0.2.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
endpoints:
  - {{name: web-a, network: blue, port: pa, mac: "02:00:00:00:01:0a", ips: [10.1.0.10], labels: {{app: a}}}}
stats: {{interval_s: 0}}
"#,
        sb.arg("a.pcap")
    );
    let d = Daemon::start(&sb, "thousand", &yaml, &[]);
    wait_stats(&d, "traffic", Duration::from_secs(10), |s| port_stat(s, "pa", "/tx_packets").unwrap_or(0) > 5_000);
    let base = pool_in_use(&d);
    let t0 = Instant::now();
    let mut epoch = stats_epoch(&d);
    let (mut applied, mut ports_added, mut ports_removed) = (0usize, 0usize, 0usize);
    // 125 cycles of 8 changes: 1,000 changes, 125 ports added and 125 removed.
    for n in 0..125u32 {
        let prefix = format!("10.{}.{}.0/24", 100 + n / 256, n % 256);
        let port = json!({"name": format!("x{n}"), "devargs": format!("net_null{},no-rx=1", 10 + n % 5), "rx": n % 2 == 0});
        let rule = json!({"name": format!("r{n}"), "action": "deny", "source": {"nets": [format!("172.16.{}.0/24", n % 256)]}});
        let policy = json!({"name": format!("np{n}"), "namespace": "default", "spec": {"podSelector": {"matchLabels": {"app": "nobody"}}, "ingress": []}});
        let steps: [Step; 8] = [
            ("route add", Box::new(|| d.json(Method::POST, "/v1/routes", &json!({"network": "blue", "prefix": prefix, "via": {"blackhole": true}}))), CREATED),
            ("rule add", Box::new(|| d.json(Method::POST, "/v1/global_rules", &rule)), CREATED),
            ("port add", Box::new(|| d.json(Method::POST, "/v1/ports", &port)), CREATED),
            ("policy add", Box::new(|| d.json(Method::POST, "/v1/network_policies", &policy)), CREATED),
            ("route delete", Box::new(|| d.delete(&route_path("blue", &prefix))), OK),
            ("rule delete", Box::new(|| d.delete(&format!("/v1/global_rules/r{n}"))), OK),
            ("policy delete", Box::new(|| d.delete(&format!("/v1/network_policies/default%2Fnp{n}"))), OK),
            ("port delete", Box::new(|| d.delete(&format!("/v1/ports/x{n}"))), OK),
        ];
        for (what, call, status) in &steps {
            let a = call().expect(*status, &format!("change {applied} ({what} {n})")).clone();
            epoch += 1;
            applied += 1;
            assert_eq!((a["applied"].clone(), a["epoch"].as_u64()), (json!(true), Some(epoch)), "{what} {n}: applied with the next epoch: {a}");
            ports_added += diff_names(&a, "added", "ports").len();
            ports_removed += diff_names(&a, "removed", "ports").len();
        }
    }
    let took = t0.elapsed();
    let s = stats(&d);
    let after = pool_in_use(&d);
    let r = d.stop();
    let ctx = &r.context;
    println!("{applied} API changes in {:.1} s; {ports_added} ports added, {ports_removed} removed; pool in use {base} -> {after}", took.as_secs_f64());
    assert_eq!(applied, 1000, "{ctx}");
    assert_eq!((ports_added, ports_removed), (125, 125), "ports came and went\n{ctx}");
    assert!(after <= base + IN_FLIGHT, "no mbuf went missing while running: {base} -> {after}: {s}\n{ctx}");
    let (rx, tx) = (r.port("in0", "/ethdev/ipackets"), r.port("pa", "/ethdev/opackets"));
    println!("in0 received {rx}, pa sent {tx}, flows re-decided {}", r.u("/workers/0/flows_redecided"));
    assert!(rx > 10_000, "traffic ran throughout ({rx})\n{ctx}");
    assert_eq!(r.drops(), drops(&[]), "nothing dropped\n{ctx}");
    assert_eq!(tx, rx, "every packet received reached pa\n{ctx}");
}

/// One API change of the 1,000: what it is, the call, the status it must answer.
type Step<'a> = (&'static str, Box<dyn Fn() -> Answer + 'a>, StatusCode);

/// The current epoch: a dry-run apply of the running config answers it.
fn stats_epoch(d: &Daemon) -> u64 {
    let cfg = d.config();
    d.json(Method::POST, "/v1/apply?dry_run=true", &cfg).expect(OK, "dry run")["epoch"].as_u64().expect("epoch")
}

/// Every kind of device sluice is deployed with attaches at runtime through the API and
/// detaches again, twice (so each removal really released the device): vhost-user
/// (server socket), memif (server), ring, null, pcap, and with root af_packet on `lo`.
/// Each shows up in the live stats under its driver while attached.
#[test]
fn every_kind_of_vdev_attaches_and_detaches_at_runtime() {
    let sb = Sandbox::new("hotplug-kinds");
    sb.write_pcap("a.pcap", &[frame(mac(0x20), mac(0x10), None, 64, 0)]);
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: p0, devargs: "net_null0,no-rx=1"}}
stats: {{interval_s: 0}}
"#
    );
    let d = Daemon::start(&sb, "kinds", &yaml, &[]);
    let mut kinds = vec![
        ("net_vhost", format!("net_vhost3,iface={},queues=1", sb.arg("vm.sock"))),
        ("net_ring", "net_ring3".to_string()),
        ("net_null", "net_null3,no-rx=1".to_string()),
        ("net_pcap", format!("net_pcap3,rx_pcap={},tx_pcap={}", sb.arg("a.pcap"), sb.arg("out.pcap"))),
    ];
    if is_root() {
        kinds.push(("net_af_packet", "net_af_packet3,iface=lo".to_string()));
    } else {
        say("SKIP: af_packet hotplug needs root");
    }
    // A removed memif server keeps listening on its socket inside DPDK 22.11's memif
    // driver, so it is re-added on another path each round.
    for round in 0..2 {
        kinds.push(("net_memif", format!("net_memif{},role=server,socket={}", 4 + round, sb.arg(&format!("memif{round}.sock")))));
    }
    for (driver, devargs) in &kinds {
        let rounds = if *driver == "net_memif" { 1 } else { 2 };
        for round in 0..rounds {
            let what = format!("{devargs} (round {round})");
            let a = d.json(Method::POST, "/v1/ports", &json!({"name": "hp", "devargs": devargs})).expect(CREATED, &what).clone();
            assert_eq!(diff_names(&a, "added", "ports"), ["hp"], "{what}: {a}");
            let s = stats(&d);
            let p = s["ports"].as_array().unwrap().iter().find(|p| p["name"] == "hp").cloned().unwrap_or_default();
            assert_eq!(p["driver"].as_str(), Some(*driver), "{what}: {s}");
            let a = d.delete("/v1/ports/hp").expect(OK, &format!("DELETE {what}")).clone();
            assert_eq!(diff_names(&a, "removed", "ports"), ["hp"], "{what}: {a}");
        }
    }
    let r = d.stop();
    assert_eq!(r.json["ports"].as_array().unwrap().len(), 1, "{}", r.context);
}
