//! The operator's show views against a real running sluice (pcap infinite_rx → null):
//! per-queue counters that add up to the port and worker totals, clear as a baseline
//! (the raw counters and metrics stay monotonic), `show routes` listing configured
//! routes with resolved next hops, and `show flows` listing exactly the connections of
//! a pcap with a known number of flows.
//!
//! Counts only, never rates: the workers share CPU 1 with other tests.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::api::*;
use sluice_tests::*;

/// Polls `/v1/stats` until the total rx reaches `at_least` (bounded: 10 s).
fn wait_rx(d: &Daemon, at_least: u64) -> u64 {
    let t0 = Instant::now();
    loop {
        let rx = d.get("/v1/stats").expect(StatusCode::OK, "stats")["totals"]["rx_packets"].as_u64().unwrap_or(0);
        if rx >= at_least || t0.elapsed() > Duration::from_secs(10) {
            return rx;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two rx queues of one port (two pcaps of different frame sizes) bridged to a null
/// port: per-queue packets and bytes add up to the port and worker totals (and the
/// device's own per-queue counters agree); the show views restart from ~0 after a
/// clear while `/v1/stats` and `/metrics` keep counting.
#[test]
fn per_queue_counters_add_up_and_clear_is_a_baseline() {
    let sb = Sandbox::new("show-queues");
    let q0: Vec<Vec<u8>> = (0..64).map(|i| frame(mac(2), mac(1), None, 60, i)).collect();
    let q1: Vec<Vec<u8>> = (0..32).map(|i| frame(mac(2), mac(1), None, 100, 1000 + i)).collect();
    sb.write_pcap("q0.pcap", &q0);
    sb.write_pcap("q1.pcap", &q1);
    let metrics = free_port();
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in0, devargs: "net_pcap0,rx_pcap={},rx_pcap={},infinite_rx=1", rx_queues: 2}}
  - {{name: out0, devargs: "net_null0,no-rx=1", rx: false}}
bridges:
  - name: br0
    ports: [{{port: in0}}, {{port: out0}}]
    static_macs:
      - {{mac: "02:00:00:00:00:02", port: out0}}
stats: {{interval_s: 0}}
"#,
        sb.arg("q0.pcap"),
        sb.arg("q1.pcap")
    );
    let d = Daemon::start(&sb, "queues", &yaml, &["--metrics", &metrics.to_string()]);
    assert!(wait_rx(&d, 50_000) >= 50_000, "traffic flows\n{}", d.output());

    // The live per-queue view: both queues polled by worker 0, both moving.
    let ports = d.get("/v1/show/ports").expect(StatusCode::OK, "show ports").clone();
    let in0 = ports["ports"].as_array().and_then(|a| a.iter().find(|p| p["name"] == "in0")).cloned().expect("in0");
    let qs = in0["rx_queues"].as_array().cloned().unwrap_or_default();
    assert_eq!(qs.len(), 2, "{in0}");
    for q in &qs {
        assert_eq!(q["worker"], 0, "{q}");
        assert!(q["packets"].as_u64().unwrap_or(0) > 0, "queue {} received: {in0}", q["queue"]);
    }
    let workers = d.get("/v1/show/workers").expect(StatusCode::OK, "show workers").clone();
    assert_eq!(workers["rx_queues"].as_array().map(Vec::len), Some(2), "pmd-rxq-show rows: {workers}");

    // Clear: the view restarts; the raw counters do not.
    let raw = |what: &str| d.get("/v1/stats").expect(StatusCode::OK, what)["totals"]["rx_packets"].as_u64().unwrap();
    let before = raw("before clear");
    d.call(Method::POST, "/v1/stats/clear", None).expect(StatusCode::OK, "clear");
    let view = d.get("/v1/show/stats").expect(StatusCode::OK, "show stats after clear").clone();
    let after = raw("after clear");
    let shown = view["totals"]["rx_packets"].as_u64().unwrap();
    assert!(after >= before, "raw counters are monotonic: {before} -> {after}");
    assert!(shown <= after - before, "after clear the view counts only what arrived since: {shown} > {after} - {before}");
    assert!(view["cleared_s_ago"].as_f64().is_some(), "{view}");
    let shown_q: u64 = view["ports"][0]["rx_queues"].as_array().unwrap().iter().map(|q| q["packets"].as_u64().unwrap()).sum();
    assert!(shown_q <= after - before, "queues restart too: {shown_q}");
    let (_, _, body) = http_get(metrics, "/metrics");
    let prom_rx: u64 = body
        .lines()
        .find(|l| l.starts_with("sluice_worker_rx_packets_total{"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0);
    assert!(prom_rx >= before, "Prometheus is not reset by clear: {prom_rx} < {before}");
    assert!(body.contains("sluice_port_rx_queue_packets_total{port=\"in0\",queue=\"1\"} "), "{body}");

    // The CLI: tables and JSON, --clear, clear stats.
    let ok = |tag: &str, args: &[&str]| {
        let f = d.cli(&sb, tag, args);
        assert_eq!(f.code, Some(0), "sluice {args:?}\n{}", f.context());
        f.stdout
    };
    let t = ok("cli-ports", &["show", "ports"]);
    assert!(t.contains("rx 0") && t.contains("rx 1") && t.contains("in0"), "{t}");
    let t = ok("cli-workers", &["show", "workers", "--interval", "1"]);
    assert!(t.starts_with(&format!("{:>6} {:>4}", "worker", "cpu")) && t.contains("share%"), "{t}");
    let v: Value = serde_json::from_str(&ok("cli-stats-json", &["show", "stats", "-o", "json", "--clear"])).expect("JSON");
    assert!(v["totals"]["rx_packets"].is_u64() && v["workers"].is_array(), "{v}");
    ok("cli-clear", &["clear", "stats"]);
    let t = ok("cli-drops", &["show", "drops"]);
    assert!(t.contains("counters since the clear"), "{t}");
    d.get("/v1/show/nonsense").expect_error(StatusCode::NOT_FOUND, "", "unknown view");
    d.get("/v1/show/ports?interval=-1").expect_error(StatusCode::BAD_REQUEST, "interval", "bad interval");

    // Final counts (workers stopped): queues add up to the port, the port to the
    // worker, the device agrees queue by queue, and bytes match the frame sizes.
    let r = d.stop();
    let ctx = &r.context;
    r.assert_consistent();
    let rx = r.u("/totals/rx_packets");
    let (p0, p1) = (r.u("/ports/0/rx_queues/0/packets"), r.u("/ports/0/rx_queues/1/packets"));
    assert_eq!(p0 + p1, rx, "queues add up to the worker total\n{ctx}");
    assert_eq!(r.port("in0", "/rx_packets"), rx, "{ctx}");
    assert_eq!(r.u("/workers/0/rx_packets"), rx, "{ctx}");
    assert_eq!((r.u("/ports/0/rx_queues/0/bytes"), r.u("/ports/0/rx_queues/1/bytes")), (p0 * 60, p1 * 100), "{ctx}");
    assert_eq!(r.port("in0", "/rx_bytes"), p0 * 60 + p1 * 100, "{ctx}");
    assert_eq!(r.u("/ports/0/rx_queues/0/ethdev_packets"), p0, "the PMD's q_ipackets agree\n{ctx}");
    assert_eq!(r.u("/ports/0/rx_queues/1/ethdev_packets"), p1, "{ctx}");
    assert_eq!(r.port("in0", "/ethdev/ipackets"), rx, "{ctx}");
    assert_eq!(r.u("/totals/drops_total"), 0, "{:?}\n{ctx}", r.drops());
    assert_eq!(r.port("out0", "/tx_packets"), rx, "{ctx}");
    assert_eq!(r.u("/ports/1/tx_queues/0/packets"), rx, "worker 0's tx queue carried everything\n{ctx}");
    assert_eq!(r.port("out0", "/tx_bytes"), r.port("in0", "/rx_bytes"), "bridged frames keep their size\n{ctx}");
    assert_eq!(r.u("/ports/1/tx_queues/0/ethdev_packets"), rx, "the PMD's q_opackets agree (net_null counts no bytes)\n{ctx}");
}

/// The configuration of the routes and flows test: `N` TCP connections from behind an
/// uplink to an endpoint, tracked (`flows.track: always`); static, ECMP, blackhole and
/// leaked routes; a second network.
const N: u32 = 100;
const UPLINK_MAC: &str = "02:00:00:00:0a:02";

#[test]
fn show_routes_and_flows_of_a_known_pcap() {
    let sb = Sandbox::new("show-flows");
    let spec = TrafficSpec {
        dst_mac: UPLINK_MAC.parse().unwrap(),
        src_mac: mac(0x99),
        flows: N,
        count: N,
        dst_ip: "10.1.0.10".parse().unwrap(),
        tcp_syn: true,
        ..Default::default()
    };
    sluice_control::pcapgen::generate(&sb.file("in.pcap"), &spec).expect("pcap");
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: up0, devargs: "net_pcap0,rx_pcap={},infinite_rx=1", uplink: {{network: blue, ipv4: 192.0.2.2, mac: "{UPLINK_MAC}"}}}}
  - {{name: pa, devargs: "net_null0,no-rx=1", rx: false}}
  - {{name: pb, devargs: "net_null1,no-rx=1", rx: false}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24", "192.0.2.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
  - {{name: red, subnets: ["10.2.0.0/24"], gateway: {{ipv4: 10.2.0.1}}}}
endpoints:
  - {{name: web, network: blue, port: pa, mac: "02:00:00:00:01:0a", ips: [10.1.0.10]}}
  - {{name: db, network: red, port: pb, mac: "02:00:00:00:02:0a", ips: [10.2.0.10]}}
routes:
  - {{network: blue, prefix: 0.0.0.0/0, via: {{gateway: 192.0.2.1, port: up0, mac: "02:00:00:00:aa:01"}}}}
  - {{network: blue, prefix: 10.9.0.0/16, via: {{blackhole: true}}}}
  - {{network: blue, prefix: 10.7.0.0/16, via: {{ecmp: [{{endpoint: web}}, {{gateway: 192.0.2.1, port: up0, mac: "02:00:00:00:aa:01"}}]}}}}
  - {{network: blue, prefix: 10.2.0.0/24, via: {{network: red}}}}
flows: {{track: always}}
stats: {{interval_s: 0}}
"#,
        sb.arg("in.pcap")
    );
    let d = Daemon::start(&sb, "flows", &yaml, &[]);

    // --- Routes.
    let all = d.get("/v1/show/routes").expect(StatusCode::OK, "show routes").clone();
    assert_eq!(all.as_array().map(|a| a.iter().map(|n| n["network"].as_str().unwrap().to_string()).collect::<Vec<_>>()), Some(vec!["blue".into(), "red".into()]));
    let blue = d.get("/v1/show/routes?network=blue").expect(StatusCode::OK, "show routes blue").clone();
    let routes = blue[0]["routes"].as_array().cloned().unwrap_or_default();
    let find = |p: &str| routes.iter().find(|r| r["prefix"] == p).cloned().unwrap_or_else(|| panic!("no {p} in {blue}"));
    let r = find("0.0.0.0/0");
    assert_eq!((r["origin"].as_str(), r["next_hop"]["type"].as_str(), r["next_hop"]["port"].as_str(), r["next_hop"]["mac"].as_str()),
        (Some("static"), Some("gateway"), Some("up0"), Some("02:00:00:00:aa:01")), "{r}");
    assert_eq!(find("10.9.0.0/16")["next_hop"]["type"], "blackhole");
    let e = find("10.7.0.0/16");
    let members = e["next_hop"]["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.iter().map(|m| m["type"].as_str().unwrap()).collect::<Vec<_>>(), ["endpoint", "gateway"], "{e}");
    assert_eq!((members[0]["endpoint"].as_str(), members[0]["port"].as_str()), (Some("web"), Some("pa")), "{e}");
    assert_eq!((find("10.2.0.0/24")["next_hop"]["type"].as_str(), find("10.2.0.0/24")["next_hop"]["network"].as_str()), (Some("network"), Some("red")));
    let ep = find("10.1.0.10/32");
    assert_eq!((ep["origin"].as_str(), ep["next_hop"]["endpoint"].as_str(), ep["next_hop"]["mac"].as_str()), (Some("endpoint"), Some("web"), Some("02:00:00:00:01:0a")), "{ep}");
    assert_eq!(find("10.1.0.1/32")["origin"], "local");
    assert_eq!(find("192.0.2.2/32")["origin"], "local");
    let red = d.get("/v1/show/routes?network=red").expect(StatusCode::OK, "show routes red").clone();
    assert_eq!(red.as_array().map(Vec::len), Some(1));
    d.get("/v1/show/routes?network=nope").expect_error(StatusCode::NOT_FOUND, "network", "unknown network");
    let cli = d.cli(&sb, "cli-routes", &["show", "routes", "--network", "blue"]);
    assert_eq!(cli.code, Some(0), "{}", cli.context());
    assert!(cli.stdout.contains("network blue") && cli.stdout.contains("ecmp [endpoint web on pa"), "{}", cli.stdout);

    // --- Flows: every connection of the pcap, exactly once.
    assert!(wait_rx(&d, 20 * N as u64) >= 20 * N as u64, "traffic flows\n{}", d.output());
    let f = d.get("/v1/show/flows?limit=100000").expect(StatusCode::OK, "show flows").clone();
    assert_eq!((f["complete"].as_bool(), f["count"].as_u64()), (Some(true), Some(N as u64)), "{}", truncate(&f));
    let flows = f["flows"].as_array().cloned().unwrap_or_default();
    let tuples: BTreeSet<(String, u64)> =
        flows.iter().map(|x| (x["orig"]["src"].as_str().unwrap().to_string(), x["orig"]["sport"].as_u64().unwrap())).collect();
    assert_eq!(tuples.len(), N as usize, "{N} distinct connections");
    for x in &flows {
        assert_eq!(
            (x["network"].as_str(), x["protocol"].as_str(), x["orig"]["dst"].as_str(), x["state"].as_str()),
            (Some("blue"), Some("tcp"), Some("10.1.0.10"), Some("SYN_SENT")),
            "{x}"
        );
        assert_eq!((x["action"]["orig"]["verdict"].as_str(), x["action"]["orig"]["port"].as_str()), (Some("forward"), Some("pa")), "{x}");
        assert_eq!(x["action"]["orig"]["dst_mac"], "02:00:00:00:01:0a", "{x}");
        assert_eq!(x["reply"]["src"], x["orig"]["dst"], "{x}");
        assert!(x["packets"]["orig"].as_u64().unwrap_or(0) >= 1, "{x}");
    }
    // Limits, filters, errors.
    let f = d.get("/v1/show/flows?limit=10").expect(StatusCode::OK, "show flows -n 10").clone();
    assert_eq!((f["count"].as_u64(), f["truncated"].as_bool(), f["complete"].as_bool()), (Some(10), Some(true), Some(false)), "{}", truncate(&f));
    let f = d.get("/v1/show/flows?network=red").expect(StatusCode::OK, "show flows red").clone();
    assert_eq!((f["count"].as_u64(), f["complete"].as_bool()), (Some(0), Some(true)), "{}", truncate(&f));
    d.get("/v1/show/flows?network=nope").expect_error(StatusCode::NOT_FOUND, "network", "unknown network");
    d.get("/v1/show/flows?limit=0").expect_error(StatusCode::BAD_REQUEST, "limit", "limit 0");
    // Again, back to back: dumps do not leak into each other.
    for i in 0..3 {
        let f = d.get("/v1/show/flows?network=blue&limit=100000").expect(StatusCode::OK, &format!("show flows #{i}")).clone();
        assert_eq!(f["count"].as_u64(), Some(N as u64), "dump {i}: {}", truncate(&f));
    }
    let cli = d.cli(&sb, "cli-flows", &["show", "flows", "-n", "5"]);
    assert_eq!(cli.code, Some(0), "{}", cli.context());
    assert_eq!(cli.stdout.lines().filter(|l| l.contains("SYN_SENT")).count(), 5, "{}", cli.stdout);
    assert!(cli.stdout.contains("5 connection(s), truncated"), "{}", cli.stdout);

    let r = d.stop();
    r.assert_consistent();
    assert_eq!(r.u("/workers/0/flows"), N as u64, "{}", r.context);
}

/// A JSON value for a failure message, cut short.
fn truncate(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(2000).collect()
}
