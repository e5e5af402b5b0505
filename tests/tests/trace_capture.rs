//! The operator tools on a running switch that never stops forwarding: `sluice trace`
//! (the next n packets' path through the stages, with the decision at each) and
//! `sluice capture` (live capture to pcapng, opened by tshark, bytes compared with the
//! replayed source).
//!
//! Traffic is replayed from memory (net_pcap `infinite_rx`) into a bridge (in0 → out0,
//! static MAC) and through an uplink (in1) to an endpoint under a network policy that
//! allows one of the two alternating UDP flows' ports. Every daemon stops with SIGTERM and
//! must report no leaked mbuf, and no drop but the policy's: tracing and capturing never
//! cost a packet.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_tests::api::*;
use sluice_tests::l3::*;
use sluice_tests::*;

const UPLINK: u16 = 0xa2;
const ROUTER: u16 = 0x99;

/// L2 source frames: 64 distinct frames (lengths 60..=123) mac(1) → mac(2).
fn l2_frames() -> Vec<Vec<u8>> {
    (0..64u32).map(|i| frame(mac(2), mac(1), None, 60 + i as usize, i)).collect()
}

/// L3 source frames: UDP from 10.0.0.x to web-a (10.1.0.10), alternating the allowed
/// port 5001 and the denied port 7001.
fn l3_frames() -> Vec<Vec<u8>> {
    (0..64u16)
        .map(|i| {
            let src = std::net::Ipv4Addr::new(10, 0, 0, i as u8 + 1);
            let dport = if i % 2 == 0 { 5001 } else { 7001 };
            udp4_frame(mac(UPLINK), mac(ROUTER), src, [10, 1, 0, 10].into(), 64, i, (1000 + i, dport), b"trace")
        })
        .collect()
}

fn start(sb: &Sandbox, tag: &str) -> Daemon {
    sb.write_pcap("l2.pcap", &l2_frames());
    sb.write_pcap("l3.pcap", &l3_frames());
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in0, devargs: "net_pcap0,rx_pcap={},infinite_rx=1"}}
  - {{name: out0, devargs: "net_null0,no-rx=1", rx: false}}
  - {{name: in1, devargs: "net_pcap1,rx_pcap={},infinite_rx=1", uplink: {{network: blue, ipv4: 192.0.2.2, mac: "{}"}}}}
  - {{name: pa, devargs: "net_null1,no-rx=1", rx: false}}
bridges:
  - name: br0
    ports: [{{port: in0}}, {{port: out0}}]
    static_macs:
      - {{mac: "{}", port: out0}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24", "192.0.2.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
endpoints:
  - {{name: web-a, network: blue, port: pa, mac: "02:00:00:00:01:0a", ips: [10.1.0.10], labels: {{app: a}}}}
network_policies:
  - name: web
    namespace: default
    spec:
      podSelector: {{}}
      ingress:
        - from: [{{ipBlock: {{cidr: 10.0.0.0/8}}}}]
          ports: [{{protocol: UDP, port: 5001}}]
stats: {{interval_s: 0}}
"#,
        sb.arg("l2.pcap"),
        sb.arg("l3.pcap"),
        mac(UPLINK),
        mac(2),
    );
    Daemon::start(sb, tag, &yaml, &[])
}

/// The stage names of a JSON trace record.
fn stages(r: &Value) -> Vec<String> {
    r["steps"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap().to_string()).collect()
}

fn decision<'a>(r: &'a Value, stage: &str) -> Option<&'a str> {
    r["steps"].as_array().unwrap().iter().find(|s| s["stage"] == stage).and_then(|s| s["decision"].as_str())
}

/// Stops the daemon and checks that only the policy dropped anything and nothing leaked.
fn stop_clean(d: Daemon) {
    let r = d.stop();
    let drops = r.drops();
    assert!(drops.keys().all(|k| k == "policy_ingress"), "only the policy drops: {drops:?}\n{}", r.context);
    assert_eq!(r.port("out0", "/tx_packets"), r.port("in0", "/rx_packets"), "every bridged frame went out\n{}", r.context);
}

/// `sluice trace 5` on the bridge port and on the uplink: exactly 5 records each, with
/// the stages and outcomes of their path; API validation; clearing.
#[test]
fn trace_shows_five_packets_with_their_stages_and_outcome() {
    let sb = Sandbox::new("trace");
    let d = start(&sb, "trace");

    // L2: bridge domain, learning, static FDB hit, out of out0.
    let f = d.cli(&sb, "trace-l2", &["trace", "5", "--port", "in0", "--wait", "10", "-o", "json"]);
    assert_eq!(f.code, Some(0), "{}", f.context());
    let v: Value = serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("{e}\n{}", f.context()));
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 5, "{v:#}");
    for r in recs {
        assert_eq!(r["port"], "in0", "{r:#}");
        assert_eq!(stages(r), ["bridge", "learn", "fdb", "tx"], "{r:#}");
        assert_eq!(decision(r, "fdb"), Some("hit: out0"), "{r:#}");
        assert_eq!(r["outcome"], json!({"tx": ["out0"]}), "{r:#}");
        assert!(r["summary"].as_str().unwrap().contains("02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4"), "{r:#}");
    }

    // L3: uplink in1 → web-a; alternating flows: allowed ones go out of pa, denied ones
    // are dropped by the policy. Five consecutive packets hold both kinds.
    let f = d.cli(&sb, "trace-l3", &["trace", "5", "--port", "in1", "-o", "json"]);
    assert_eq!(f.code, Some(0), "{}", f.context());
    let v: Value = serde_json::from_str(&f.stdout).unwrap();
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 5, "{v:#}");
    let (mut tx, mut denied) = (0, 0);
    for r in recs {
        assert_eq!(r["port"], "in1", "{r:#}");
        let st = stages(r);
        assert_eq!(st[0], "l3-input", "{r:#}");
        assert_eq!(decision(r, "l3-input"), Some("network blue, from uplink in1"), "{r:#}");
        assert!(st.contains(&"flow".to_string()) && st.contains(&"conntrack".to_string()), "{r:#}");
        if r["outcome"] == json!({"tx": ["pa"]}) {
            tx += 1;
            assert!(r["summary"].as_str().unwrap().ends_with("> 5001"), "{r:#}");
        } else {
            assert_eq!(r["outcome"], json!({"drop": "policy_ingress"}), "{r:#}");
            denied += 1;
        }
        // A new connection shows the FIB and the policy verdict; a known one the cache hit.
        let flow = decision(r, "flow").unwrap();
        if flow.starts_with("miss") {
            assert_eq!(decision(r, "fib"), Some("network blue: endpoint web-a on pa"), "{r:#}");
            assert!(decision(r, "policy").is_some(), "{r:#}");
        } else {
            assert!(flow.starts_with("hit"), "{r:#}");
        }
    }
    assert!(tx >= 2 && denied >= 2, "alternating flows: {tx} forwarded, {denied} denied\n{v:#}");

    // The readable form: one block per packet.
    let f = d.cli(&sb, "trace-text", &["trace", "3", "--port", "in1"]);
    assert_eq!(f.code, Some(0), "{}", f.context());
    assert_eq!(f.stdout.matches("Packet ").count(), 3, "{}", f.stdout);
    assert!(f.stdout.contains("l3-input    network blue, from uplink in1"), "{}", f.stdout);
    assert!(f.stdout.contains("policy_ingress") && f.stdout.contains("tx          pa"), "{}", f.stdout);

    // Validation names the field; nothing is armed by a bad request.
    d.json(Method::POST, "/v1/trace", &json!({"count": 0})).expect_error(StatusCode::UNPROCESSABLE_ENTITY, "count", "count 0");
    d.json(Method::POST, "/v1/trace", &json!({"count": 257})).expect_error(StatusCode::UNPROCESSABLE_ENTITY, "count", "count > 256");
    d.json(Method::POST, "/v1/trace", &json!({"count": 1, "port": "nosuch"})).expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "port",
        "unknown port",
    );
    d.json(Method::POST, "/v1/trace", &json!({"count": 1, "bogus": 1})).expect_error(StatusCode::BAD_REQUEST, "bogus", "unknown key");
    assert_eq!(d.get("/v1/trace").expect(StatusCode::OK, "trace")["records"].as_array().unwrap().len(), 3, "the last trace is kept");
    assert_eq!(d.delete("/v1/trace").status, StatusCode::NO_CONTENT);
    let v = d.get("/v1/trace").expect(StatusCode::OK, "trace").clone();
    assert_eq!((v["records"].as_array().unwrap().len(), v["remaining"].as_u64()), (0, Some(0)), "{v}");
    stop_clean(d);
}

/// Converts a pcapng to a classic pcap with tshark (which must open it) and reads it.
fn tshark_frames(pcapng: &std::path::Path) -> Vec<Vec<u8>> {
    let pcap = pcapng.with_extension("pcap");
    let (ok, out) = sh("tshark", &["-r", &pcapng.display().to_string(), "-F", "pcap", "-w", &pcap.display().to_string()]);
    assert!(ok, "tshark cannot read {}: {out}", pcapng.display());
    read_frames(&pcap)
}

/// `frames` is a run of consecutive frames of the looped `source`.
#[track_caller]
fn assert_consecutive(frames: &[Vec<u8>], source: &[Vec<u8>], what: &str) {
    let start = source.iter().position(|s| *s == frames[0]).unwrap_or_else(|| panic!("{what}: first frame is no source frame"));
    for (k, f) in frames.iter().enumerate() {
        assert!(*f == source[(start + k) % source.len()], "{what}: frame {k} differs from the source's frame {}", (start + k) % source.len());
    }
}

/// `sluice capture in0 -w rx.pcapng -c 100` and `out0 --direction tx -c 50`: tshark opens
/// the files, which hold exactly that many frames, byte-identical to the replayed
/// source's consecutive frames, on an interface named after the port.
#[test]
fn capture_writes_pcapng_that_tshark_opens_with_the_source_bytes() {
    if let Some(why) = missing_prereq(&["tshark"], false) {
        say(&format!("SKIP: capture: {why}"));
        return;
    }
    let sb = Sandbox::new("capture");
    let d = start(&sb, "capture");
    let src = l2_frames();

    let rx = sb.file("rx.pcapng");
    let f = d.cli(&sb, "cap-rx", &["capture", "in0", "-w", &rx.display().to_string(), "-c", "100", "--direction", "rx"]);
    assert_eq!(f.code, Some(0), "{}", f.context());
    assert!(f.stdout.contains("100 packets captured"), "{}", f.context());
    let got = tshark_frames(&rx);
    assert_eq!(got.len(), 100);
    assert_consecutive(&got, &src, "rx capture");
    let rows = tshark_fields(&rx, &["frame.interface_name", "frame.len", "frame.cap_len"]);
    assert_eq!(rows.len(), 100);
    for (row, frame) in rows.iter().zip(&got) {
        assert_eq!(row, &vec!["in0".to_string(), frame.len().to_string(), frame.len().to_string()]);
    }

    // What the bridge sends out of out0 is the source unchanged.
    let tx = sb.file("tx.pcapng");
    let f = d.cli(&sb, "cap-tx", &["capture", "out0", "-w", &tx.display().to_string(), "-c", "50", "--direction", "tx"]);
    assert_eq!(f.code, Some(0), "{}", f.context());
    let got = tshark_frames(&tx);
    assert_eq!(got.len(), 50);
    assert_consecutive(&got, &src, "tx capture");

    // The API: one capture at a time, validation, stop + download + delete.
    let bad = |body: Value, status, field: &str, what: &str| d.json(Method::POST, "/v1/captures", &body).expect_error(status, field, what);
    bad(json!({"port": "nosuch"}), StatusCode::UNPROCESSABLE_ENTITY, "port", "unknown port");
    bad(json!({"port": "in0", "count": 0}), StatusCode::UNPROCESSABLE_ENTITY, "count", "count 0");
    bad(json!({"port": "in0", "snaplen": 10}), StatusCode::UNPROCESSABLE_ENTITY, "snaplen", "snaplen too small");
    bad(json!({"port": "in0", "direction": "up"}), StatusCode::BAD_REQUEST, "direction", "bad direction");
    let st = d.json(Method::POST, "/v1/captures", &json!({"port": "in1", "direction": "rx", "snaplen": 64})).expect(StatusCode::CREATED, "start").clone();
    let id = st["id"].as_u64().unwrap();
    bad(json!({"port": "in0"}), StatusCode::CONFLICT, "", "a second capture");
    let t0 = Instant::now();
    while d.get(&format!("/v1/captures/{id}")).expect(StatusCode::OK, "status")["packets"].as_u64().unwrap() < 10 {
        assert!(t0.elapsed() < Duration::from_secs(10), "the capture got nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    d.get(&format!("/v1/captures/{id}/pcapng")).expect_error(StatusCode::CONFLICT, "", "download while running");
    d.call(Method::POST, &format!("/v1/captures/{id}/stop"), None).expect(StatusCode::OK, "stop");
    let t0 = Instant::now();
    let st = loop {
        let st = d.get(&format!("/v1/captures/{id}")).expect(StatusCode::OK, "status").clone();
        if st["running"] == false {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the capture did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let file = d.get(&format!("/v1/captures/{id}/pcapng"));
    file.expect(StatusCode::OK, "download");
    assert_eq!(&file.raw[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng section header block first");
    let path = sb.file("api.pcapng");
    std::fs::write(&path, &file.raw).unwrap();
    let got = tshark_frames(&path);
    assert_eq!(got.len() as u64, st["packets"].as_u64().unwrap(), "{st}");
    // Snaplen 64: every frame cut to its first 64 bytes, with its real length kept.
    let l3 = l3_frames();
    assert!(got.iter().all(|f| l3.iter().any(|s| s[..s.len().min(64)] == f[..])), "source frames cut to 64 bytes");
    assert_eq!(d.delete(&format!("/v1/captures/{id}")).status, StatusCode::NO_CONTENT);
    d.get(&format!("/v1/captures/{id}")).expect_error(StatusCode::NOT_FOUND, "", "deleted");
    stop_clean(d);
}

/// Ctrl-C stops an unbounded `sluice capture` and still leaves a complete file.
#[test]
fn capture_stopped_by_ctrl_c_leaves_a_valid_file() {
    if let Some(why) = missing_prereq(&["tshark"], false) {
        say(&format!("SKIP: capture: {why}"));
        return;
    }
    let sb = Sandbox::new("capture-int");
    let d = start(&sb, "capint");
    let out = sb.file("int.pcapng");
    let args: Vec<String> =
        ["capture", "in0", "-w", &out.display().to_string(), "--socket", &d.socket.display().to_string()].map(String::from).to_vec();
    let mut cli = spawn_sluice(sb.path(), "cap-int", &args, None);
    assert!(cli.wait_for_stderr("as capture 1", Duration::from_secs(10)), "{}", cli.stderr_now());
    let t0 = Instant::now();
    while d.get("/v1/captures/1").expect(StatusCode::OK, "status")["packets"].as_u64().unwrap() < 100 {
        assert!(t0.elapsed() < Duration::from_secs(10), "the capture got nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill").arg("-INT").arg(cli.pid().to_string()).status();
    let f = cli.wait(Duration::from_secs(20));
    assert_eq!(f.code, Some(0), "{}", f.context());
    let got = tshark_frames(&out);
    assert!(got.len() >= 100, "{} frames", got.len());
    // Unbounded, the capture may have dropped copies (all buffers in flight): every frame
    // written is still a whole source frame.
    let src = l2_frames();
    assert!(got.iter().all(|f| src.contains(f)), "every frame is a source frame");
    assert!(f.stdout.contains(&format!("{} packets captured", got.len())), "{}", f.context());
    assert_eq!(d.get("/v1/captures").expect(StatusCode::OK, "list"), &json!([]), "the CLI deleted its capture");
    stop_clean(d);
}
