//! The real switch on net_pcap vdevs: known frames in, pcap files out, decoded by tshark
//! and compared byte for byte.
//!
//! net_pcap's `rx_pcap` reads its file once (no `infinite_rx`), so every input frame is
//! received exactly once and the expected output is exact. With one worker the ports
//! are polled in configuration order, once each per loop, and every input file here
//! holds fewer frames than a burst (32): in the first loop the first port's frames are
//! all processed before the second port's, and so on. Output pcaps are flushed when
//! sluice closes the ports at exit.

use sluice_tests::*;

/// 100 UDP frames of lengths 60..=1514: 80 to a static MAC on `out`, 20 broadcasts.
/// Known unicast goes to `out` only, broadcasts to `out` and `side`, nothing back to
/// `in`; `out.pcap` is the input, byte for byte, in order.
#[test]
fn golden_pcap_in_pcap_out() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("golden");
    let (src, dst) = (mac(0x101), mac(0x102));
    let frames: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            let d = if i % 5 == 4 { MacAddr::BROADCAST } else { dst };
            let len = match i {
                0 => 60,
                1 => 1514,
                _ => 60 + (i as usize * 149) % 1455,
            };
            frame(d, src, None, len, i)
        })
        .collect();
    assert!(frames.iter().any(|f| f.len() == 1514) && frames.iter().any(|f| f.len() == 60));
    let bcast: Vec<Vec<u8>> = frames.iter().filter(|f| f[0] == 0xff).cloned().collect();
    assert_eq!(bcast.len(), 20);
    sb.write_pcap("in.pcap", &frames);

    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in, devargs: "net_pcap0,rx_pcap={inp},tx_pcap={back}"}}
  - {{name: out, devargs: "net_pcap1,tx_pcap={out}", rx: false}}
  - {{name: side, devargs: "net_pcap2,tx_pcap={side}", rx: false}}
bridges:
  - name: br0
    ports: [{{port: in}}, {{port: out}}, {{port: side}}]
    static_macs:
      - {{mac: "{dst}", port: out}}
"#,
        inp = sb.arg("in.pcap"),
        back = sb.arg("back.pcap"),
        out = sb.arg("out.pcap"),
        side = sb.arg("side.pcap"),
    );
    let r = run_ok(&sb, "golden", &yaml, 1.5);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.port("in", "/ethdev/ipackets"), 100, "sluice did not read the whole input in time\n{ctx}");
    assert_eq!(r.u("/totals/rx_packets"), 100, "{ctx}");
    assert_eq!(r.u("/totals/tx_packets"), 120, "80 unicast + 20 broadcasts to 2 ports\n{ctx}");
    assert_eq!(r.drops(), drops(&[]), "{ctx}");
    assert_eq!(r.port("in", "/rx_packets"), 100, "{ctx}");
    assert_eq!(r.port("in", "/tx_packets"), 0, "{ctx}");
    assert_eq!(r.port("out", "/tx_packets"), 100, "{ctx}");
    assert_eq!(r.port("out", "/ethdev/opackets"), 100, "{ctx}");
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(r.port("out", "/ethdev/obytes"), bytes, "{ctx}");
    assert_eq!(r.port("side", "/tx_packets"), 20, "{ctx}");
    assert_eq!(r.u("/workers/0/flooded"), 20, "{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 1, "{ctx}");

    // Independent decode.
    assert_tshark_l2(&sb.file("out.pcap"), &frames, "out", ctx);
    assert_tshark_l2(&sb.file("side.pcap"), &bcast, "side", ctx);
    let l4 = tshark_fields(&sb.file("out.pcap"), &["ip.src", "ip.dst", "udp.dstport", "ip.id"]);
    for (i, row) in l4.iter().enumerate() {
        let want = [format!("10.0.{}.{}", i >> 8, i & 255), "10.1.0.1".into(), "5001".into(), format!("0x{:04x}", i)];
        assert_eq!(row[..], want[..], "tshark: frame {i} of out.pcap is not the UDP frame sent\n{ctx}");
    }
    // Byte for byte.
    assert_pcap_eq(&sb.file("out.pcap"), &frames, "out", ctx);
    assert_pcap_eq(&sb.file("side.pcap"), &bcast, "side", ctx);
    assert_pcap_eq(&sb.file("back.pcap"), &[], "nothing goes back to the ingress port", ctx);
}

/// Three ports, one worker, polled A, B, C in each loop.
///  A: 3 broadcasts from MAC_A            → flooded to B and C, never back to A.
///  B: 5 frames MAC_B → MAC_A (learned)   → A only;
///     4 frames MAC_B → MAC_X (unknown)   → flooded to A and C.
///  C: 6 frames MAC_C → MAC_B (learned)   → B only;
///     1 frame  MAC_C → MAC_C             → dropped as hairpin (C was just learned on C).
#[test]
fn flooding_and_learning_across_three_ports() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("learn");
    let (ma, mb, mc, mx) = (mac(0xa), mac(0xb), mac(0xc), mac(0xee));
    let mut seq = 0u32;
    let mut f = |d: MacAddr, s: MacAddr, len: usize| {
        seq += 1;
        frame(d, s, None, len, seq)
    };
    let a_in: Vec<_> = (0..3).map(|i| f(MacAddr::BROADCAST, ma, 60 + i)).collect();
    let b_to_a: Vec<_> = (0..5).map(|i| f(ma, mb, 100 + i)).collect();
    let b_to_x: Vec<_> = (0..4).map(|i| f(mx, mb, 200 + i)).collect();
    let c_to_b: Vec<_> = (0..6).map(|i| f(mb, mc, 300 + i)).collect();
    let c_hairpin = f(mc, mc, 400);
    // Interleave B's two kinds so order inside the burst matters too.
    let b_in: Vec<_> = vec![
        b_to_a[0].clone(),
        b_to_x[0].clone(),
        b_to_a[1].clone(),
        b_to_x[1].clone(),
        b_to_a[2].clone(),
        b_to_a[3].clone(),
        b_to_x[2].clone(),
        b_to_x[3].clone(),
        b_to_a[4].clone(),
    ];
    let mut c_in = c_to_b.clone();
    c_in.insert(3, c_hairpin);
    sb.write_pcap("a_in.pcap", &a_in);
    sb.write_pcap("b_in.pcap", &b_in);
    sb.write_pcap("c_in.pcap", &c_in);

    let port = |n: &str, i: u32| {
        format!(
            "  - {{name: {n}, devargs: \"net_pcap{i},rx_pcap={},tx_pcap={}\"}}\n",
            sb.arg(&format!("{n}_in.pcap")),
            sb.arg(&format!("{n}_out.pcap"))
        )
    };
    let yaml = format!(
        "{DPDK_HEADER}workers: {{cores: [1]}}\nports:\n{}{}{}bridges:\n  - name: br0\n    ports: [{{port: a}}, {{port: b}}, {{port: c}}]\n",
        port("a", 10),
        port("b", 11),
        port("c", 12)
    );
    let r = run_ok(&sb, "learn", &yaml, 1.5);
    let ctx = &r.context;
    r.assert_consistent();
    for (p, n) in [("a", 3), ("b", 9), ("c", 7)] {
        assert_eq!(r.port(p, "/ethdev/ipackets"), n, "port {p} input not fully read\n{ctx}");
        assert_eq!(r.port(p, "/rx_packets"), n, "port {p} rx\n{ctx}");
    }

    // What each port must transmit, in order.
    let a_out: Vec<_> = b_in.clone(); // B's frames to A and to X (flooded), in B's order
    let b_out: Vec<_> = a_in.iter().chain(&c_to_b).cloned().collect();
    let c_out: Vec<_> = a_in.iter().chain(&b_to_x).cloned().collect();
    for (p, want) in [("a", &a_out), ("b", &b_out), ("c", &c_out)] {
        assert_eq!(r.port(p, "/tx_packets"), want.len() as u64, "port {p} tx\n{ctx}");
        assert_eq!(r.port(p, "/ethdev/opackets"), want.len() as u64, "port {p} opackets\n{ctx}");
        let path = sb.file(&format!("{p}_out.pcap"));
        assert_tshark_l2(&path, want, &format!("port {p}"), ctx);
        assert_pcap_eq(&path, want, &format!("port {p}"), ctx);
    }
    // The same facts, decoded by tshark, stated directly.
    let dsts = |p: &str| -> Vec<String> {
        tshark_fields(&sb.file(&format!("{p}_out.pcap")), &["eth.dst"]).into_iter().map(|r| r[0].clone()).collect()
    };
    let srcs = |p: &str| -> Vec<String> {
        tshark_fields(&sb.file(&format!("{p}_out.pcap")), &["eth.src"]).into_iter().map(|r| r[0].clone()).collect()
    };
    assert!(!srcs("a").contains(&ma.to_string()), "A's broadcasts came back to A\n{ctx}");
    assert!(!dsts("c").contains(&ma.to_string()), "unicast to the learned MAC_A leaked to C\n{ctx}");
    assert!(!dsts("a").contains(&mb.to_string()), "unicast to the learned MAC_B leaked to A\n{ctx}");
    assert_eq!(dsts("c").iter().filter(|d| **d == mx.to_string()).count(), 4, "unknown unicast flooded to C\n{ctx}");
    assert_eq!(dsts("a").iter().filter(|d| **d == mx.to_string()).count(), 4, "unknown unicast flooded to A\n{ctx}");

    assert_eq!(r.u("/totals/rx_packets"), 19, "{ctx}");
    assert_eq!(r.u("/totals/tx_packets"), 9 + 9 + 7, "{ctx}");
    assert_eq!(r.drops(), drops(&[("hairpin", 1)]), "{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 3, "MAC_A, MAC_B, MAC_C\n{ctx}");
    assert_eq!(r.u("/workers/0/flooded"), 3 + 4, "3 broadcasts + 4 unknown unicast\n{ctx}");
    assert_eq!(r.u("/workers/0/fdb_entries"), 3, "{ctx}");
    assert_eq!(r.u("/workers/0/mac_moved"), 0, "{ctx}");
}

/// VLANs: acc10 (access 10), acc20 (access 20), trunk ([10, 20], no native VLAN),
/// trunkn ([10, 20], native 20). Polled in that order.
#[test]
fn vlan_access_and_trunk_ports() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("vlan");
    let (m1, m2, m3, m4, m5) = (mac(0x1001), mac(0x1002), mac(0x1003), mac(0x1004), mac(0x1005));
    let bc = MacAddr::BROADCAST;
    let mut seq = 0u32;
    let mut f = |d: MacAddr, s: MacAddr, v: Option<u16>, len: usize| {
        seq += 1;
        frame(d, s, v, len, seq)
    };
    // acc10: 4 untagged broadcasts (VLAN 10), 1 priority-tagged broadcast (VID 0: the
    // access VLAN), 2 frames tagged 10 (a tag on an access port: vlan_not_allowed).
    let acc10_bc: Vec<_> = (0..4).map(|i| f(bc, m1, None, 60 + i * 10)).collect();
    let acc10_prio = f(bc, m1, Some(0), 90);
    let acc10_bad: Vec<_> = (0..2).map(|_| f(bc, m1, Some(10), 60)).collect();
    let acc10_in = vec![
        acc10_bc[0].clone(),
        acc10_bad[0].clone(),
        acc10_bc[1].clone(),
        acc10_prio.clone(),
        acc10_bc[2].clone(),
        acc10_bad[1].clone(),
        acc10_bc[3].clone(),
    ];
    // acc20: 1 frame to M1 — known in VLAN 10 only, so it floods in VLAN 20.
    let acc20_in = vec![f(m1, m5, None, 70)];
    // trunk: 3 broadcasts tagged 20; 2 untagged (untagged_on_trunk); 2 tagged 30
    // (not in the trunk list: vlan_not_allowed).
    let trunk_bc20: Vec<_> = (0..3).map(|i| f(bc, m2, Some(20), 80 + i)).collect();
    let trunk_untagged: Vec<_> = (0..2).map(|_| f(bc, m2, None, 60)).collect();
    let trunk_30: Vec<_> = (0..2).map(|_| f(bc, m2, Some(30), 60)).collect();
    let trunk_in = vec![
        trunk_untagged[0].clone(),
        trunk_bc20[0].clone(),
        trunk_30[0].clone(),
        trunk_bc20[1].clone(),
        trunk_untagged[1].clone(),
        trunk_30[1].clone(),
        trunk_bc20[2].clone(),
    ];
    // trunkn: 1 untagged broadcast (native VLAN 20); 1 frame tagged 10 to M1 (learned on
    // acc10 in VLAN 10: unicast there, untagged).
    let trunkn_native = f(bc, m3, None, 64);
    let trunkn_to_m1 = f(m1, m4, Some(10), 110);
    let trunkn_in = vec![trunkn_native.clone(), trunkn_to_m1.clone()];

    for (n, fr) in [("acc10", &acc10_in), ("acc20", &acc20_in), ("trunk", &trunk_in), ("trunkn", &trunkn_in)] {
        sb.write_pcap(&format!("{n}_in.pcap"), fr);
    }
    let port = |n: &str, i: u32| {
        format!(
            "  - {{name: {n}, devargs: \"net_pcap{i},rx_pcap={},tx_pcap={}\"}}\n",
            sb.arg(&format!("{n}_in.pcap")),
            sb.arg(&format!("{n}_out.pcap"))
        )
    };
    let yaml = format!(
        "{DPDK_HEADER}workers: {{cores: [1]}}\nports:\n{}{}{}{}{}",
        port("acc10", 20),
        port("acc20", 21),
        port("trunk", 22),
        port("trunkn", 23),
        r#"bridges:
  - name: br0
    ports:
      - {port: acc10, vlan_mode: access, tag: 10}
      - {port: acc20, tag: 20}
      - {port: trunk, vlan_mode: trunk, trunks: [10, 20]}
      - {port: trunkn, vlan_mode: trunk, trunks: [10, 20], native_vlan: 20}
"#
    );
    let r = run_ok(&sb, "vlan", &yaml, 1.5);
    let ctx = &r.context;
    r.assert_consistent();
    for (p, fr) in [("acc10", &acc10_in), ("acc20", &acc20_in), ("trunk", &trunk_in), ("trunkn", &trunkn_in)] {
        assert_eq!(r.port(p, "/ethdev/ipackets"), fr.len() as u64, "port {p} input not fully read\n{ctx}");
    }

    // Expected output per port, in order.
    let prio_as_10 = {
        let mut v = acc10_prio.clone();
        v[14..16].copy_from_slice(&10u16.to_be_bytes());
        v
    };
    let acc10_out = vec![untag(&trunkn_to_m1)];
    let mut acc20_out: Vec<Vec<u8>> = trunk_bc20.iter().map(|x| untag(x)).collect();
    acc20_out.push(trunkn_native.clone());
    let mut trunk_out: Vec<Vec<u8>> = Vec::new();
    let mut trunkn_out: Vec<Vec<u8>> = Vec::new();
    for x in &acc10_in {
        if acc10_bad.contains(x) {
            continue;
        }
        let t = if *x == acc10_prio { prio_as_10.clone() } else { tag(x, 10) };
        trunk_out.push(t.clone());
        trunkn_out.push(t);
    }
    trunk_out.push(tag(&acc20_in[0], 20));
    trunkn_out.push(acc20_in[0].clone());
    trunkn_out.extend(trunk_bc20.iter().map(|x| untag(x)));
    trunk_out.push(tag(&trunkn_native, 20));

    // Sanity of the expectation itself.
    assert_eq!((acc10_out.len(), acc20_out.len(), trunk_out.len(), trunkn_out.len()), (1, 4, 7, 9));
    for (p, want) in [("acc10", &acc10_out), ("acc20", &acc20_out), ("trunk", &trunk_out), ("trunkn", &trunkn_out)] {
        let path = sb.file(&format!("{p}_out.pcap"));
        assert_eq!(r.port(p, "/tx_packets"), want.len() as u64, "port {p} tx\n{ctx}");
        assert_tshark_l2(&path, want, &format!("port {p}"), ctx);
        assert_pcap_eq(&path, want, &format!("port {p}"), ctx);
    }

    // The rules, stated directly on tshark's decode.
    let vids = |p: &str| -> Vec<String> {
        tshark_fields(&sb.file(&format!("{p}_out.pcap")), &["vlan.id"]).into_iter().map(|r| r[0].clone()).collect()
    };
    let srcs = |p: &str| -> Vec<String> {
        tshark_fields(&sb.file(&format!("{p}_out.pcap")), &["eth.src"]).into_iter().map(|r| r[0].clone()).collect()
    };
    let trunk_vids = vids("trunk");
    let from_m1: Vec<_> =
        srcs("trunk").iter().zip(&trunk_vids).filter(|(s, _)| **s == m1.to_string()).map(|(_, v)| v.clone()).collect();
    assert_eq!(from_m1, vec!["10"; 5], "untagged access-10 frames leave the trunk tagged 10\n{ctx}");
    assert!(!srcs("acc20").contains(&m1.to_string()), "access-10 traffic reached access-20\n{ctx}");
    assert!(vids("acc20").iter().all(String::is_empty), "access-20 output must be untagged\n{ctx}");
    assert!(vids("acc10").iter().all(String::is_empty), "access-10 output must be untagged\n{ctx}");
    let trunkn_m2: Vec<_> =
        srcs("trunkn").iter().zip(vids("trunkn")).filter(|(s, _)| **s == m2.to_string()).map(|(_, v)| v).collect();
    assert_eq!(trunkn_m2, vec![""; 3], "VLAN 20 leaves the native-20 trunk untagged\n{ctx}");
    assert!(!trunk_vids.contains(&"30".to_string()) && !vids("trunkn").contains(&"30".to_string()), "{ctx}");

    assert_eq!(r.drops(), drops(&[("vlan_not_allowed", 4), ("untagged_on_trunk", 2)]), "{ctx}");
    assert_eq!(r.u("/totals/rx_packets"), 7 + 1 + 7 + 2, "{ctx}");
    assert_eq!(r.u("/totals/tx_packets"), 1 + 4 + 7 + 9, "{ctx}");
    // M1 (VLAN 10), M5, M2, M3 (VLAN 20), M4 (VLAN 10).
    assert_eq!(r.u("/workers/0/mac_learned"), 5, "{ctx}");
    // 5 from acc10, 1 from acc20, 3 from trunk, 1 from trunkn.
    assert_eq!(r.u("/workers/0/flooded"), 10, "{ctx}");
}

/// Two workers on CPUs 0 and 1; ports A and B with two rx and two tx queues each
/// (net_pcap: one queue per rx_pcap/tx_pcap argument). Queues are dealt round-robin:
/// A.q0 → w0, A.q1 → w1, B.q0 → w0, B.q1 → w1, and worker i transmits on queue i of every
/// port, so each output file's content is known exactly.
#[test]
fn two_workers_account_for_every_packet() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("workers");
    let (sa, sb_mac) = (mac(0x5a), mac(0x5b)); // static: sa on A, sb on B
    let mut seq = 0u32;
    let mut mk = |q: u16, n: usize, dst: MacAddr, src_base: u16| -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        // n good frames (unicast to the static MAC, and every 4th a broadcast), then a
        // runt and an invalid source interleaved.
        let mut all = Vec::new();
        let mut good = Vec::new();
        for i in 0..n {
            seq += 1;
            let d = if i % 4 == 3 { MacAddr::BROADCAST } else { dst };
            let fr = frame(d, mac(src_base + q * 16 + (i % 3) as u16), None, 60 + i * 7, seq);
            good.push(fr.clone());
            all.push(fr);
            if i == n / 2 {
                all.push(vec![0x02; 10]); // runt
                let mut bad = frame(dst, mac(1), None, 64, seq);
                bad[6] = 0x01; // multicast source
                all.push(bad);
            }
        }
        (all, good)
    };
    let (a0, a0_good) = mk(0, 23, sb_mac, 0x100);
    let (a1, a1_good) = mk(1, 17, sb_mac, 0x100);
    let (b0, b0_good) = mk(0, 11, sa, 0x200);
    let (b1, b1_good) = mk(1, 29, sa, 0x200);
    for (n, fr) in [("a_in0", &a0), ("a_in1", &a1), ("b_in0", &b0), ("b_in1", &b1)] {
        assert!(fr.len() <= 32, "one burst per queue keeps the test simple");
        sb.write_pcap(&format!("{n}.pcap"), fr);
    }
    let port = |n: &str, i: u32| {
        format!(
            "  - {{name: {n}, devargs: \"net_pcap{i},rx_pcap={},rx_pcap={},tx_pcap={},tx_pcap={}\"}}\n",
            sb.arg(&format!("{n}_in0.pcap")),
            sb.arg(&format!("{n}_in1.pcap")),
            sb.arg(&format!("{n}_out0.pcap")),
            sb.arg(&format!("{n}_out1.pcap"))
        )
    };
    let yaml = format!(
        "{DPDK_HEADER}workers: {{cores: [0, 1]}}\nports:\n{}{}bridges:\n  - name: br0\n    ports: [{{port: a}}, {{port: b}}]\n    static_macs:\n      - {{mac: \"{sa}\", port: a}}\n      - {{mac: \"{sb_mac}\", port: b}}\n",
        port("a", 30),
        port("b", 31),
    );
    let r = run_ok(&sb, "workers", &yaml, 2.0);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.workers(), 2, "{ctx}");
    let total_in = (a0.len() + a1.len() + b0.len() + b1.len()) as u64;
    assert_eq!(r.port("a", "/ethdev/ipackets") + r.port("b", "/ethdev/ipackets"), total_in, "input not fully read\n{ctx}");

    // All input accounted for: every packet received is sent or dropped with a reason
    // (two ports per bridge: a flood has exactly one output, so no copies).
    let (rx, tx, dropped) = (r.u("/totals/rx_packets"), r.u("/totals/tx_packets"), r.u("/totals/drops_total"));
    assert_eq!(rx, total_in, "{ctx}");
    assert_eq!(rx, tx + dropped, "rx != tx + drops\n{ctx}");
    assert_eq!(r.drops(), drops(&[("runt", 4), ("invalid_src_mac", 4)]), "{ctx}");

    // Both workers did work, exactly their queues' share.
    let w0_in = (a0.len() + b0.len()) as u64;
    let w1_in = (a1.len() + b1.len()) as u64;
    assert_eq!(r.u("/workers/0/rx_packets"), w0_in, "worker 0 polls A.q0 and B.q0\n{ctx}");
    assert_eq!(r.u("/workers/1/rx_packets"), w1_in, "worker 1 polls A.q1 and B.q1\n{ctx}");
    assert_eq!(r.u("/workers/0/tx_packets"), (a0_good.len() + b0_good.len()) as u64, "{ctx}");
    assert_eq!(r.u("/workers/1/tx_packets"), (a1_good.len() + b1_good.len()) as u64, "{ctx}");
    for w in 0..2 {
        assert_eq!(r.worker_drops(w), drops(&[("runt", 2), ("invalid_src_mac", 2)]), "worker {w}\n{ctx}");
    }
    // Learned: 3 source MACs per queue, each seen by one worker only.
    assert_eq!(r.u("/workers/0/mac_learned") + r.u("/workers/1/mac_learned"), 12, "{ctx}");

    // Each worker transmits on its own queue: B's file i holds A.qi's good frames.
    for (path, want, what) in [
        ("b_out0.pcap", &a0_good, "B tx queue 0 (worker 0)"),
        ("b_out1.pcap", &a1_good, "B tx queue 1 (worker 1)"),
        ("a_out0.pcap", &b0_good, "A tx queue 0 (worker 0)"),
        ("a_out1.pcap", &b1_good, "A tx queue 1 (worker 1)"),
    ] {
        assert_tshark_l2(&sb.file(path), want, what, ctx);
        assert_pcap_eq(&sb.file(path), want, what, ctx);
    }
}

/// Malformed and invalid frames are dropped under their own reason, exactly once each;
/// the good frames around them still go through, in order, unchanged.
#[test]
fn malformed_frames_are_dropped_with_their_reason() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("malformed");
    let (src, dst) = (mac(0x301), mac(0x302));
    let good = |len: usize, seq: u32| frame(dst, src, None, len, seq);
    let g = [good(60, 1), good(1514, 2), good(100, 3), good(61, 4), good(200, 5)];
    let header_only = good(60, 6)[..14].to_vec(); // 14 bytes: a complete header, no payload
    let runts: Vec<Vec<u8>> = vec![good(60, 7)[..13].to_vec(), good(60, 8)[..6].to_vec(), vec![0x02]];
    let tv16 = tag(&good(60, 9), 10)[..16].to_vec(); // TPID + TCI, no inner type
    let tv14 = {
        let mut v = good(60, 10)[..14].to_vec(); // a bare 0x8100 and nothing after
        v[12..14].copy_from_slice(&[0x81, 0x00]);
        v
    };
    let tv17 = tag(&good(60, 11), 0)[..17].to_vec();
    let oversize = [good(1515, 12), good(1600, 13)];
    let chained = good(3000, 14); // above the 2048-byte mbuf data room
    let bad_src = [
        frame(dst, "01:00:5e:00:00:01".parse().unwrap(), None, 60, 15),
        frame(dst, MacAddr::BROADCAST, None, 60, 16),
        frame(dst, MacAddr::ZERO, None, 60, 17),
    ];
    let input: Vec<Vec<u8>> = vec![
        runts[0].clone(),
        g[0].clone(),
        tv16.clone(),
        oversize[0].clone(),
        g[1].clone(),
        bad_src[0].clone(),
        runts[1].clone(),
        header_only.clone(),
        chained.clone(),
        tv14.clone(),
        g[2].clone(),
        bad_src[1].clone(),
        oversize[1].clone(),
        g[3].clone(),
        runts[2].clone(),
        tv17.clone(),
        bad_src[2].clone(),
        g[4].clone(),
    ];
    sb.write_pcap("in.pcap", &input);
    let yaml = format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in, devargs: "net_pcap40,rx_pcap={}", mtu: 1500}}
  - {{name: out, devargs: "net_pcap41,tx_pcap={}", rx: false}}
bridges:
  - name: br0
    ports: [{{port: in}}, {{port: out}}]
    static_macs:
      - {{mac: "{dst}", port: out}}
"#,
        sb.arg("in.pcap"),
        sb.arg("out.pcap")
    );
    let r = run_ok(&sb, "malformed", &yaml, 1.5);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.port("in", "/ethdev/ipackets"), input.len() as u64, "input not fully read\n{ctx}");
    assert_eq!(r.u("/totals/rx_packets"), input.len() as u64, "{ctx}");
    assert_eq!(
        r.drops(),
        drops(&[("runt", 3), ("truncated_vlan", 3), ("oversize", 2), ("chained_mbuf", 1), ("invalid_src_mac", 3)]),
        "{ctx}"
    );
    let mut want: Vec<Vec<u8>> = g[..4].to_vec();
    want.insert(2, header_only);
    want.push(g[4].clone());
    assert_eq!(r.u("/totals/tx_packets"), want.len() as u64, "{ctx}");
    assert_eq!(r.u("/totals/rx_packets"), r.u("/totals/tx_packets") + r.u("/totals/drops_total"), "{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 1, "only valid frames learn\n{ctx}");
    assert_tshark_l2(&sb.file("out.pcap"), &want, "out", ctx);
    assert_pcap_eq(&sb.file("out.pcap"), &want, "out", ctx);
}
