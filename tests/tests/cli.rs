//! The command line: configuration errors (exit 2, the key path on stderr, nothing
//! opened) and the embedded default run.

use std::time::Duration;

use sluice_tests::*;

/// One bad configuration: the YAML body after the DPDK header, and what stderr must say.
struct Bad {
    what: &'static str,
    body: String,
    /// Substrings `sluice: config error: ...` must contain (the key path first).
    expect: &'static [&'static str],
}

/// Each file is rejected with exit code 2 and `sluice: config error: <key path>: ...`, and
/// before any port is opened: the net_pcap output file the config names is never created.
#[test]
fn bad_configs_exit_2_naming_the_key_and_open_nothing() {
    let sb = Sandbox::new("badcfg");
    sb.write_pcap("in.pcap", &[frame(mac(2), mac(1), None, 60, 0)]);
    // Every config opens an output pcap first, if anything is opened at all.
    let ports = |out: &str, extra: &str| {
        format!(
            "ports:\n  - {{name: a, devargs: \"net_pcap0,rx_pcap={},tx_pcap={}\"{extra}}}\n  - {{name: b, devargs: \"net_null0\"}}\n",
            sb.arg("in.pcap"),
            sb.arg(out)
        )
    };
    let bridge = |b_port: &str| format!("bridges:\n  - name: br0\n    ports:\n      - {{port: a}}\n      - {b_port}\n");
    let w1 = "workers: {cores: [1]}\n";
    let cases = [
        Bad {
            what: "unknown key",
            body: format!("{w1}{}{}", ports("out0.pcap", ", mtuu: 1500"), bridge("{port: b}")),
            expect: &["ports[0].mtuu: ", "unknown field"],
        },
        Bad {
            what: "VLAN out of range",
            body: format!("{w1}{}{}", ports("out1.pcap", ""), bridge("{port: b, tag: 5000}")),
            expect: &["bridges[0].ports[1].tag: ", "VLAN"],
        },
        Bad {
            what: "trunk VLAN 0",
            body: format!("{w1}{}{}", ports("out2.pcap", ""), bridge("{port: b, vlan_mode: trunk, trunks: [10, 0]}")),
            expect: &["bridges[0].ports[1].trunks[1]: "],
        },
        Bad {
            what: "tag on a trunk",
            body: format!("{w1}{}{}", ports("out3.pcap", ""), bridge("{port: b, vlan_mode: trunk, tag: 10}")),
            expect: &["bridges[0].ports[1].tag: "],
        },
        Bad {
            what: "unknown port reference",
            body: format!("{w1}{}{}", ports("out4.pcap", ""), bridge("{port: nosuch}")),
            expect: &["bridges[0].ports[1].port: ", "nosuch"],
        },
        Bad {
            what: "wrong type",
            body: format!("{w1}{}", ports("out5.pcap", ", mtu: big")),
            expect: &["ports[0].mtu: ", "invalid type"],
        },
        Bad {
            what: "worker on a CPU that does not exist",
            body: format!("workers: {{cores: [1, 4095]}}\n{}", ports("out6.pcap", "")),
            expect: &["workers.cores[1]: ", "4095"],
        },
        Bad {
            what: "multicast static MAC",
            body: format!(
                "{w1}{}{}    static_macs:\n      - {{mac: \"01:00:5e:00:00:01\", port: a}}\n",
                ports("out7.pcap", ""),
                bridge("{port: b}")
            ),
            expect: &["bridges[0].static_macs[0].mac: "],
        },
        Bad {
            what: "static MAC on a VLAN its port does not carry",
            body: format!(
                "{w1}{}{}    static_macs:\n      - {{mac: \"02:00:00:00:00:09\", port: b, vlan: 30}}\n",
                ports("out8.pcap", ""),
                bridge("{port: b, tag: 20}")
            ),
            expect: &["bridges[0].static_macs[0].vlan: "],
        },
        Bad {
            what: "mtu above what the mbuf holds",
            body: format!("{w1}{}", ports("out9.pcap", ", mtu: 9000")),
            expect: &["ports[0].mtu: ", "data_room"],
        },
        Bad {
            what: "malformed YAML",
            body: format!("{w1}{}bridges: [{{name: br0, ports: [{{port: a}}\n", ports("out10.pcap", "")),
            expect: &["line "],
        },
    ];
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let out_file = format!("out{i}.pcap");
        assert!(c.body.contains(&out_file), "case {i} must name {out_file}");
        let yaml = format!("{DPDK_HEADER}{}", c.body);
        let cfg = sb.write_config(&format!("bad{i}.yaml"), &yaml);
        let cfg = cfg.display().to_string();
        let stats = format!("bad{i}.json");
        let f = run_sluice(
            sb.path(),
            &format!("bad{i}"),
            &["run", "--config", &cfg, "--duration", "1", "--stats-json", &stats],
            Duration::from_secs(20),
        );
        let line = f.stderr.lines().find(|l| l.starts_with("sluice: config error: ")).unwrap_or("");
        let mut why = Vec::new();
        if f.code != Some(2) {
            why.push(format!("exit code {:?}, want 2", f.code));
        }
        if line.is_empty() {
            why.push("no `sluice: config error: ` line on stderr".to_string());
        }
        for e in c.expect {
            if !line.contains(e) {
                why.push(format!("error line lacks {e:?}"));
            }
        }
        if c.expect[0].ends_with(": ") && !line.starts_with(&format!("sluice: config error: {}", c.expect[0])) {
            why.push(format!("error line does not start with the key path {:?}", c.expect[0]));
        }
        if sb.file(&out_file).exists() {
            why.push(format!("{out_file} was created: a port was opened before the config was rejected"));
        }
        if sb.file(&stats).exists() {
            why.push("a stats report was written".to_string());
        }
        if !why.is_empty() {
            failures.push(format!("case {i} ({}): {}\nconfig:\n{yaml}\n{}", c.what, why.join("; "), f.context()));
        }
        // `sluice check` rejects the same file the same way.
        let chk = run_sluice(sb.path(), &format!("check{i}"), &["check", "--config", &cfg], Duration::from_secs(20));
        if chk.code != Some(2) || !chk.stderr.contains(c.expect[0]) {
            failures.push(format!("case {i} ({}): `sluice check` disagrees\n{}", c.what, chk.context()));
        }
    }
    assert!(failures.is_empty(), "{} of {} bad configs misbehaved:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

/// A port that cannot give every worker its own tx queue (net_pcap with one tx_pcap,
/// two workers) is a configuration error naming that port: exit 2, `ports[1].devargs`.
#[test]
fn too_few_tx_queues_for_the_workers_is_a_config_error() {
    let sb = Sandbox::new("txq");
    sb.write_pcap("in.pcap", &[frame(mac(2), mac(1), None, 60, 0)]);
    let yaml = format!(
        "{DPDK_HEADER}workers: {{cores: [0, 1]}}\nports:\n  - {{name: a, devargs: net_null0}}\n  - {{name: b, devargs: \"net_pcap0,rx_pcap={},tx_pcap={}\"}}\nbridges:\n  - name: br0\n    ports: [{{port: a}}, {{port: b}}]\n",
        sb.arg("in.pcap"),
        sb.arg("out.pcap")
    );
    let f = run_config(&sb, "txq", &yaml, 1.0);
    let ctx = f.context();
    assert_eq!(f.code, Some(2), "{ctx}");
    let line = f
        .stderr
        .lines()
        .find(|l| l.starts_with("sluice: config error: "))
        .unwrap_or_else(|| panic!("no config error line\n{ctx}"));
    assert!(line.starts_with("sluice: config error: ports[1].devargs: "), "{ctx}");
    assert!(line.contains("tx queue") && line.contains("2 workers"), "{ctx}");
    assert!(!sb.file("txq.json").exists(), "no report for a run that never started\n{ctx}");
}

/// `sluice run` with no configuration: the embedded pcap-replay demo. Everything it
/// receives is forwarded (known unicast to a null sink): tx == rx, no drops, no leak.
#[test]
fn embedded_default_forwards_everything() {
    let sb = Sandbox::new("default");
    let args: Vec<String> = ["run", "--duration", "2", "--stats-json", "default.json"].map(String::from).to_vec();
    let s = spawn_sluice(sb.path(), "default", &args, Some(sb.file("default.json")));
    // The demo writes its pcap to <tmp>/sluice-demo-<pid> and removes it at exit.
    let demo_dir = std::env::temp_dir().join(format!("sluice-demo-{}", s.pid()));
    let f = s.wait(Duration::from_secs(22));
    let r = f.report();
    assert!(!demo_dir.exists(), "the demo left {} behind\n{}", demo_dir.display(), r.context);
    let ctx = &r.context;
    r.assert_consistent();
    let rx = r.u("/totals/rx_packets");
    println!("embedded default: startup_ms = {}, rx = {rx}", r.json["startup_ms"]);
    assert!(rx > 0, "the demo received nothing\n{ctx}");
    assert_eq!(r.drops(), drops(&[]), "{ctx}");
    // Run to completion and a drain at stop: nothing stays in flight.
    assert_eq!(r.u("/totals/tx_packets"), rx, "tx != rx\n{ctx}");
    assert_eq!(r.workers(), 1, "{ctx}");
    assert_eq!(r.port("in0", "/rx_packets"), rx, "{ctx}");
    assert_eq!(r.port("in0", "/ethdev/ipackets"), rx, "{ctx}");
    assert_eq!(r.port("out0", "/tx_packets"), rx, "{ctx}");
    assert_eq!(r.port("out0", "/ethdev/opackets"), rx, "{ctx}");
    assert_eq!(r.port("out0", "/rx_packets"), 0, "the sink is not polled\n{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 1, "{ctx}");
    assert_eq!(r.u("/workers/0/flooded"), 0, "known unicast only\n{ctx}");
    assert!(f.stdout.contains("sluice stopped after"), "summary on stdout\n{ctx}");
}
