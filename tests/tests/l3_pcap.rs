//! Routing (L3) golden tests on net_pcap vdevs: frames built byte by byte in the test
//! (with correct checksums, see `sluice_tests::l3`), run through sluice, and what comes
//! out compared byte for byte with what RFC 1812 / RFC 8200 routing must produce, and
//! decoded by tshark (the independent decoder, verifying every checksum).
//!
//! One network `blue` (VRF 1, 10.1.0.0/24 and fd00:1::/64, gateway 10.1.0.1 /
//! fd00:1::1 with the default gateway MAC of VRF 1, 02:5c:00:00:00:01), endpoint a on
//! port pa and b on port pb. net_pcap reads each `rx_pcap` once; with one worker the
//! ports are polled in configuration order and every input file is processed in order,
//! so the outputs are exact. Output pcaps are flushed when sluice closes its ports.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use sluice_tests::l3::*;
use sluice_tests::*;

const A_MAC: &str = "02:00:00:00:00:0a";
const B_MAC: &str = "02:00:00:00:00:0b";
/// The default gateway MAC of VRF 1 (02:5c:00 + the VRF id): not configured below.
const GW_MAC: &str = "02:5c:00:00:00:01";

fn m(s: &str) -> MacAddr {
    s.parse().unwrap()
}
fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const A4: &str = "10.1.0.10";
const B4: &str = "10.1.0.11";
const A6: &str = "fd00:1::10";
const B6: &str = "fd00:1::11";

/// The network, its endpoints and any `extra` YAML (routes); the ports are pa, pb and
/// whatever `extra_ports` adds.
fn blue_yaml(sb: &Sandbox, extra_ports: &str, extra: &str) -> String {
    format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: pa, devargs: "net_pcap0,rx_pcap={in_a},tx_pcap={out_a}"}}
  - {{name: pb, devargs: "net_pcap1,rx_pcap={in_b},tx_pcap={out_b}"}}
{extra_ports}networks:
  - name: blue
    subnets: ["10.1.0.0/24", "fd00:1::/64"]
    gateway: {{ipv4: 10.1.0.1, ipv6: "fd00:1::1"}}
endpoints:
  - {{name: a, network: blue, port: pa, mac: "{A_MAC}", ips: [{A4}, "{A6}"]}}
  - {{name: b, network: blue, port: pb, mac: "{B_MAC}", ips: [{B4}, "{B6}"]}}
{extra}"#,
        in_a = sb.arg("in_a.pcap"),
        out_a = sb.arg("out_a.pcap"),
        in_b = sb.arg("in_b.pcap"),
        out_b = sb.arg("out_b.pcap"),
    )
}

/// IPv4/UDP from a to b (to the gateway MAC), 18 payload bytes (a 60-byte frame).
fn a_to_b_v4(ttl: u8, id: u16, sport: u16) -> Vec<u8> {
    udp4_frame(m(GW_MAC), m(A_MAC), v4(A4), v4(B4), ttl, id, (sport, 5001), b"sluice-l3-v4-test!")
}

/// IPv6/UDP from a to b (to the gateway MAC).
fn a_to_b_v6(hop: u8, sport: u16) -> Vec<u8> {
    udp6_frame(m(GW_MAC), m(A_MAC), v6(A6), v6(B6), hop, (sport, 5001), b"sluice-l3-v6-test!")
}

/// a → b and b → a over IPv6 and IPv4: b's output holds each of a's packets with the
/// destination MAC = b's, the source MAC = the network's (default) gateway MAC, the hop
/// limit / TTL one lower, the IPv4 header checksum updated and nothing else changed
/// (byte for byte); tshark agrees and finds every IP and UDP checksum good. One IPv4
/// packet is chosen so its updated header checksum is the one's complement zero (the
/// RFC 1624 corner case of incremental updates).
#[test]
fn ipv6_and_ipv4_routing_rewrite_macs_and_hop_limit() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("l3-route");
    // An id for which the routed header's checksum is 0x0000 (or 0xffff incrementally).
    let edge_id = (0..=u16::MAX)
        .find(|id| {
            let f = routed_v4(&a_to_b_v4(64, *id, 40003), m(B_MAC), m(GW_MAC));
            f[24..26] == [0, 0]
        })
        .expect("some IP id gives a zero checksum after the TTL decrement");
    let a_in = vec![
        a_to_b_v6(64, 40000),
        a_to_b_v6(2, 40001), // the lowest hop limit that is still forwarded
        a_to_b_v4(64, 0x1234, 40002),
        a_to_b_v4(64, edge_id, 40003),
        a_to_b_v4(2, 0x0001, 40004),
    ];
    let b_in = vec![udp6_frame(m(GW_MAC), m(B_MAC), v6(B6), v6(A6), 255, (5001, 40000), b"reply from b over v6")];
    sb.write_pcap("in_a.pcap", &a_in);
    sb.write_pcap("in_b.pcap", &b_in);
    let r = run_ok(&sb, "route", &blue_yaml(&sb, "", ""), 2.0);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.u("/totals/rx_packets"), 6, "{ctx}");
    assert_eq!(r.drops(), drops(&[]), "{ctx}");
    assert_eq!(r.u("/workers/0/routed"), 6, "{ctx}");
    assert_eq!(r.u("/workers/0/icmp_errors"), 0, "{ctx}");

    let want_b: Vec<Vec<u8>> = a_in
        .iter()
        .map(|f| {
            if f[12..14] == [0x86, 0xdd] {
                routed_v6(f, m(B_MAC), m(GW_MAC))
            } else {
                routed_v4(f, m(B_MAC), m(GW_MAC))
            }
        })
        .collect();
    let want_a = vec![routed_v6(&b_in[0], m(A_MAC), m(GW_MAC))];
    assert_frames_eq(&read_frames(&sb.file("out_b.pcap")), &want_b, "out_b", ctx);
    assert_frames_eq(&read_frames(&sb.file("out_a.pcap")), &want_a, "out_a", ctx);

    // tshark: MACs, hop limit / TTL, addresses and every checksum.
    let rows = tshark_fields_with(
        &sb.file("out_b.pcap"),
        CHECK_CHECKSUMS,
        &[
            "eth.src",
            "eth.dst",
            "ipv6.hlim",
            "ip.ttl",
            "ipv6.src",
            "ipv6.dst",
            "ip.src",
            "ip.dst",
            "ip.checksum.status",
            "udp.checksum.status",
            "udp.srcport",
        ],
    );
    let want_rows: Vec<Vec<&str>> = vec![
        vec![GW_MAC, B_MAC, "63", "", A6, B6, "", "", "", "1", "40000"],
        vec![GW_MAC, B_MAC, "1", "", A6, B6, "", "", "", "1", "40001"],
        vec![GW_MAC, B_MAC, "", "63", "", "", A4, B4, "1", "1", "40002"],
        vec![GW_MAC, B_MAC, "", "63", "", "", A4, B4, "1", "1", "40003"],
        vec![GW_MAC, B_MAC, "", "1", "", "", A4, B4, "1", "1", "40004"],
    ];
    assert_eq!(rows, want_rows, "tshark decode of out_b (1 = checksum good)\n{ctx}");
    let rows = tshark_fields_with(
        &sb.file("out_a.pcap"),
        CHECK_CHECKSUMS,
        &["eth.src", "eth.dst", "ipv6.hlim", "udp.checksum.status"],
    );
    assert_eq!(rows, vec![vec![GW_MAC, A_MAC, "254", "1"]], "tshark decode of out_a\n{ctx}");
}

/// The ICMPv4 Time Exceeded sluice must send about IPv4 packet `ip` (RFC 792/1812): from
/// the gateway 10.1.0.1 to the sender, TTL 64, id 0, quoting the header and 8 bytes.
fn want_time_exceeded_v4(ip: &[u8]) -> Vec<u8> {
    let hlen = usize::from(ip[0] & 0x0f) * 4;
    let quote = &ip[..(hlen + 8).min(ip.len())];
    let icmp = icmp4(11, 0, [0; 4], quote);
    eth(m(A_MAC), m(GW_MAC), ETHERTYPE_IPV4, &ipv4_packet(v4("10.1.0.1"), v4(A4), PROTO_ICMP, 64, 0, &icmp))
}

/// The ICMPv6 Time Exceeded (RFC 4443 §3.3) about IPv6 packet `ip`: from fd00:1::1,
/// hop limit 64, quoting as much of the packet as fits in 1280 bytes.
fn want_time_exceeded_v6(ip: &[u8]) -> Vec<u8> {
    let (src, dst) = (v6("fd00:1::1"), v6(A6));
    let icmp = icmp6(src, dst, 3, 0, [0; 4], &ip[..ip.len().min(1280 - 48)]);
    eth(m(A_MAC), m(GW_MAC), ETHERTYPE_IPV6, &ipv6_packet(src, dst, PROTO_ICMPV6, 64, &icmp))
}

/// TTL / hop limit 1 towards b: nothing reaches b; a gets ICMP Time Exceeded from the
/// gateway address quoting its packet (byte for byte as RFC 792/4443 define it; tshark
/// decodes type, code, a good ICMP checksum and the quoted header). An ICMP *error*
/// with TTL 1 expires silently (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)); an echo request
/// does get the error. Stats: 3 ICMP errors, 2 silent `ttl_expired` drops.
#[test]
fn ttl_and_hop_limit_expiry_answer_time_exceeded() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("l3-ttl");
    let udp_v4 = a_to_b_v4(1, 0x4242, 41000);
    let udp_v6 = a_to_b_v6(1, 41001);
    // An ICMPv4 Destination Unreachable (an error) and an ICMPv6 Destination Unreachable,
    // each quoting something, with TTL / hop limit 1.
    let quoted = ipv4_packet(v4(B4), v4(A4), PROTO_UDP, 64, 7, &udp4(v4(B4), v4(A4), 5001, 41000, b"x"));
    let err_v4 = eth(
        m(GW_MAC),
        m(A_MAC),
        ETHERTYPE_IPV4,
        &ipv4_packet(v4(A4), v4(B4), PROTO_ICMP, 1, 9, &icmp4(3, 3, [0; 4], &quoted[..28])),
    );
    let quoted6 = ipv6_packet(v6(B6), v6(A6), PROTO_UDP, 64, &udp6(v6(B6), v6(A6), 5001, 41001, b"x"));
    let err_v6 = eth(
        m(GW_MAC),
        m(A_MAC),
        ETHERTYPE_IPV6,
        &ipv6_packet(v6(A6), v6(B6), PROTO_ICMPV6, 1, &icmp6(v6(A6), v6(B6), 1, 4, [0; 4], &quoted6)),
    );
    let echo_v4 = eth(
        m(GW_MAC),
        m(A_MAC),
        ETHERTYPE_IPV4,
        &ipv4_packet(v4(A4), v4(B4), PROTO_ICMP, 1, 10, &icmp4(8, 0, [0x12, 0x34, 0, 1], b"traceroute-like probe")),
    );
    // A 1400-byte IPv6 packet: the error quotes only what fits in the minimum MTU.
    let big_v6 = udp6_frame(m(GW_MAC), m(A_MAC), v6(A6), v6(B6), 1, (41002, 5001), &[0xab; 1352]);
    assert_eq!(big_v6.len(), 14 + 1400);
    // A non-first fragment (offset 1480) with TTL 1: expires without an error (RFC 792:
    // errors are only sent about fragment zero).
    let frag_v4 = {
        let mut f = a_to_b_v4(1, 12, 41004);
        f[20..22].copy_from_slice(&185u16.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let c = inet_checksum(&[&f[14..34]]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    };
    // Echo requests to the gateway itself with TTL / hop limit 1: delivered locally and
    // answered, not expired (only forwarding decrements the TTL).
    let (gw4, gw6) = (v4("10.1.0.1"), v6("fd00:1::1"));
    let ping_gw_v4 = eth(
        m(GW_MAC),
        m(A_MAC),
        ETHERTYPE_IPV4,
        &ipv4_packet(v4(A4), gw4, PROTO_ICMP, 1, 13, &icmp4(8, 0, [0, 7, 0, 1], b"ttl1")),
    );
    let ping_gw_v6 = eth(
        m(GW_MAC),
        m(A_MAC),
        ETHERTYPE_IPV6,
        &ipv6_packet(v6(A6), gw6, PROTO_ICMPV6, 1, &icmp6(v6(A6), gw6, 128, 0, [0, 7, 0, 1], b"hop1")),
    );
    let a_in = vec![
        udp_v4.clone(),
        udp_v6.clone(),
        err_v4,
        err_v6,
        echo_v4.clone(),
        big_v6.clone(),
        frag_v4,
        ping_gw_v4,
        ping_gw_v6,
    ];
    sb.write_pcap("in_a.pcap", &a_in);
    sb.write_pcap("in_b.pcap", &[]);
    let r = run_ok(&sb, "ttl", &blue_yaml(&sb, "", ""), 2.0);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.u("/totals/rx_packets"), a_in.len() as u64, "{ctx}");
    assert_eq!(r.u("/workers/0/icmp_errors"), 4, "{ctx}");
    assert_eq!(r.u("/workers/0/icmp_suppressed"), 0, "{ctx}");
    assert_eq!(r.u("/workers/0/echo_replies"), 2, "{ctx}");
    assert_eq!(r.u("/workers/0/routed"), 0, "{ctx}");
    assert_eq!(
        r.drops(),
        drops(&[("ttl_expired", 3)]),
        "no error about an ICMP error (2) or a non-first fragment (1)\n{ctx}"
    );
    assert_eq!(r.port("pb", "/tx_packets"), 0, "nothing with TTL 1 reaches b\n{ctx}");
    assert!(read_frames(&sb.file("out_b.pcap")).is_empty(), "out_b must be empty\n{ctx}");

    let echo_reply_v4 = eth(
        m(A_MAC),
        m(GW_MAC),
        ETHERTYPE_IPV4,
        &ipv4_packet(gw4, v4(A4), PROTO_ICMP, 64, 13, &icmp4(0, 0, [0, 7, 0, 1], b"ttl1")),
    );
    let echo_reply_v6 = eth(
        m(A_MAC),
        m(GW_MAC),
        ETHERTYPE_IPV6,
        &ipv6_packet(gw6, v6(A6), PROTO_ICMPV6, 64, &icmp6(gw6, v6(A6), 129, 0, [0, 7, 0, 1], b"hop1")),
    );
    let want_a = vec![
        want_time_exceeded_v4(&udp_v4[14..]),
        want_time_exceeded_v6(&udp_v6[14..]),
        want_time_exceeded_v4(&echo_v4[14..]),
        want_time_exceeded_v6(&big_v6[14..]),
        echo_reply_v4,
        echo_reply_v6,
    ];
    assert_eq!(want_a[3].len(), 14 + 1280, "an ICMPv6 error fills the minimum MTU at most");
    assert_frames_eq(&read_frames(&sb.file("out_a.pcap")), &want_a, "ICMP errors to a", ctx);

    // tshark: outer and quoted headers (occurrences joined with |).
    let out_a = sb.file("out_a.pcap");
    let rows = tshark_fields_with(
        &out_a,
        CHECK_CHECKSUMS,
        &[
            "eth.src",
            "eth.dst",
            "ip.src",
            "ip.dst",
            "ip.ttl",
            "icmp.type",
            "icmp.code",
            "icmp.checksum.status",
            "udp.srcport",
        ],
    );
    assert_eq!(rows.len(), 6, "{rows:?}\n{ctx}");
    let v4rows = [&rows[0], &rows[2]];
    // The second quotes an echo request: its inner type is 8 and its ICMP checksum cannot
    // be verified from 8 bytes (status 2).
    for (row, (inner_type, inner_code, inner_csum)) in v4rows.iter().zip([("", "", ""), ("|8", "|0", "|2")]) {
        assert_eq!(row[0], GW_MAC, "{rows:?}\n{ctx}");
        assert_eq!(row[1], A_MAC, "{rows:?}\n{ctx}");
        assert_eq!(row[2], format!("10.1.0.1|{A4}"), "outer from the gateway, quote from a\n{rows:?}\n{ctx}");
        assert_eq!(row[3], format!("{A4}|{B4}"), "{rows:?}\n{ctx}");
        assert_eq!(row[4], "64|1", "outer TTL 64, quoted TTL 1 (as received)\n{rows:?}\n{ctx}");
        assert_eq!(row[5], format!("11{inner_type}"), "Time Exceeded\n{rows:?}\n{ctx}");
        assert_eq!(row[6], format!("0{inner_code}"), "code 0 (TTL exceeded in transit)\n{rows:?}\n{ctx}");
        assert_eq!(row[7], format!("1{inner_csum}"), "ICMP checksum good\n{rows:?}\n{ctx}");
    }
    assert_eq!(rows[0][8], "41000", "the quote carries the UDP ports\n{rows:?}\n{ctx}");
    let rows6 = tshark_fields_with(
        &out_a,
        CHECK_CHECKSUMS,
        &["ipv6.src", "ipv6.dst", "ipv6.hlim", "icmpv6.type", "icmpv6.code", "icmpv6.checksum.status", "udp.srcport"],
    );
    assert_eq!(
        rows6[1],
        vec![
            format!("fd00:1::1|{A6}"),
            format!("{A6}|{B6}"),
            "64|1".into(),
            "3".into(),
            "0".into(),
            "1".into(),
            "41001".into()
        ],
        "ICMPv6 Time Exceeded from the gateway, quoting a's packet\n{rows6:?}\n{ctx}"
    );
    assert_eq!(
        (rows6[3][0].as_str(), rows6[3][3].as_str(), rows6[3][5].as_str()),
        (&*format!("fd00:1::1|{A6}"), "3", "1"),
        "clipped quote\n{rows6:?}\n{ctx}"
    );
    assert_eq!(rows6[5][3], "129", "echo reply from the gateway\n{rows6:?}\n{ctx}");
    assert_eq!(rows6[5][5], "1", "{rows6:?}\n{ctx}");
}

/// An ICMP error about an IPv4 packet with options quotes its whole header (24 bytes
/// here) and the first 8 bytes of its payload (RFC 792, RFC 1812 §4.3.2.3), and its
/// checksum covers the whole message. The payload is long and not zero, so bytes the
/// error leaves unwritten would show.
#[test]
fn icmp_error_about_ipv4_with_options_quotes_the_whole_header() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("l3-icmp-opts");
    let opts_v4 = eth(
        m(GW_MAC),
        m(A_MAC),
        ETHERTYPE_IPV4,
        &ipv4_packet_opts(
            v4(A4),
            v4(B4),
            PROTO_UDP,
            1,
            11,
            &[1, 1, 1, 0],
            &udp4(v4(A4), v4(B4), 41003, 5001, &[0xab; 64]),
        ),
    );
    sb.write_pcap("in_a.pcap", std::slice::from_ref(&opts_v4));
    sb.write_pcap("in_b.pcap", &[]);
    let r = run_ok(&sb, "icmp-opts", &blue_yaml(&sb, "", ""), 2.0);
    let ctx = &r.context;
    assert_eq!(r.u("/workers/0/icmp_errors"), 1, "{ctx}");
    let got = read_frames(&sb.file("out_a.pcap"));
    let rows = tshark_fields_with(
        &sb.file("out_a.pcap"),
        CHECK_CHECKSUMS,
        &["ip.len", "icmp.type", "icmp.checksum.status", "ip.hdr_len", "udp.srcport"],
    );
    assert_eq!(
        rows,
        vec![vec!["60|96", "11", "1", "20|24", "41003"]],
        "tshark: a 60-byte error (20 + 8 + 24-byte header + 8) with a good ICMP checksum\ngot {}\n{ctx}",
        got.first().map(|f| hex_all(f)).unwrap_or_default()
    );
    assert_frames_eq(&got, &[want_time_exceeded_v4(&opts_v4[14..])], "ICMP error about IPv4 with options", ctx);
}

/// No route: ICMP Destination Unreachable (net unreachable / no route to destination)
/// from the gateway, byte for byte; a blackhole route drops silently under `blackhole`.
#[test]
fn no_route_answers_destination_unreachable() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("l3-noroute");
    let (far4, far6, hole4) = (v4("192.0.2.99"), v6("2001:db8::99"), v4("203.0.113.5"));
    let to_far4 = udp4_frame(m(GW_MAC), m(A_MAC), v4(A4), far4, 64, 21, (43000, 53), b"where?");
    let to_far6 = udp6_frame(m(GW_MAC), m(A_MAC), v6(A6), far6, 64, (43001, 53), b"where?");
    let to_hole = udp4_frame(m(GW_MAC), m(A_MAC), v4(A4), hole4, 64, 22, (43002, 53), b"gone");
    sb.write_pcap("in_a.pcap", &[to_far4.clone(), to_far6.clone(), to_hole]);
    sb.write_pcap("in_b.pcap", &[]);
    let routes = "routes:\n  - {network: blue, prefix: 203.0.113.0/24, via: {blackhole: true}}\n";
    let r = run_ok(&sb, "noroute", &blue_yaml(&sb, "", routes), 2.0);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.u("/workers/0/icmp_errors"), 2, "{ctx}");
    assert_eq!(r.drops(), drops(&[("blackhole", 1)]), "{ctx}");
    let ip4 = &to_far4[14..];
    let want4 = eth(
        m(A_MAC),
        m(GW_MAC),
        ETHERTYPE_IPV4,
        &ipv4_packet(v4("10.1.0.1"), v4(A4), PROTO_ICMP, 64, 0, &icmp4(3, 0, [0; 4], &ip4[..28])),
    );
    let gw6 = v6("fd00:1::1");
    let want6 = eth(
        m(A_MAC),
        m(GW_MAC),
        ETHERTYPE_IPV6,
        &ipv6_packet(gw6, v6(A6), PROTO_ICMPV6, 64, &icmp6(gw6, v6(A6), 1, 0, [0; 4], &to_far6[14..])),
    );
    assert_frames_eq(&read_frames(&sb.file("out_a.pcap")), &[want4, want6], "unreachables to a", ctx);
    let rows = tshark_fields_with(
        &sb.file("out_a.pcap"),
        CHECK_CHECKSUMS,
        &["icmp.type", "icmp.code", "icmp.checksum.status", "icmpv6.type", "icmpv6.code", "icmpv6.checksum.status"],
    );
    assert_eq!(rows, vec![vec!["3", "0", "1", "", "", ""], vec!["", "", "", "1", "0", "1"]], "{ctx}");
    assert!(read_frames(&sb.file("out_b.pcap")).is_empty(), "{ctx}");
}

const UP1_MAC: &str = "02:aa:00:00:00:01";
const UP2_MAC: &str = "02:aa:00:00:00:02";
const GW1_MAC: &str = "02:bb:00:00:00:01";
const GW2_MAC: &str = "02:bb:00:00:00:02";

/// One ECMP run: a sends `input`; returns the frames out of up1 and up2.
fn ecmp_run(sb: &Sandbox, tag: &str, input: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, String) {
    sb.write_pcap("in_a.pcap", input);
    sb.write_pcap("in_b.pcap", &[]);
    let (up1, up2) = (format!("up1_{tag}.pcap"), format!("up2_{tag}.pcap"));
    let ports = format!(
        r#"  - {{name: up1, devargs: "net_pcap2,tx_pcap={}", rx: false, uplink: {{network: blue, ipv4: 192.0.2.2, mac: "{UP1_MAC}"}}}}
  - {{name: up2, devargs: "net_pcap3,tx_pcap={}", rx: false, uplink: {{network: blue, ipv4: 192.0.2.6, mac: "{UP2_MAC}"}}}}
"#,
        sb.arg(&up1),
        sb.arg(&up2)
    );
    let routes = format!(
        r#"routes:
  - network: blue
    prefix: 198.51.100.0/24
    via:
      ecmp:
        - {{gateway: 192.0.2.1, port: up1, mac: "{GW1_MAC}"}}
        - {{gateway: 192.0.2.5, port: up2, mac: "{GW2_MAC}"}}
"#
    );
    let r = run_ok(sb, tag, &blue_yaml(sb, &ports, &routes), 2.0);
    let ctx = r.context.clone();
    r.assert_consistent();
    let n = input.len() as u64;
    assert_eq!(r.u("/totals/rx_packets"), n, "{ctx}");
    assert_eq!(r.u("/workers/0/routed"), n, "{ctx}");
    assert_eq!(r.drops(), drops(&[]), "{ctx}");
    assert_eq!(r.port("up1", "/tx_packets") + r.port("up2", "/tx_packets"), n, "{ctx}");
    assert_eq!(r.port("pa", "/tx_packets") + r.port("pb", "/tx_packets"), 0, "{ctx}");
    (read_frames(&sb.file(&up1)), read_frames(&sb.file(&up2)), ctx)
}

/// UDP source port of an untagged IPv4 frame with a 20-byte header.
fn sport(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[34], f[35]])
}

/// ECMP over two uplinks: 1000 flows (distinct UDP source ports) from a to
/// 198.51.100.7 leave through up1 or up2, every one exactly once, 35–65 % each. Every
/// frame is the input with dst MAC = its gateway's configured MAC, src MAC = its
/// uplink's configured MAC, TTL - 1 and a correct header checksum (byte for byte, and
/// tshark). A second run with the same input splits the flows identically (the flow
/// hash is stable, not seeded per process).
#[test]
fn ecmp_splits_flows_evenly_and_stably() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("l3-ecmp");
    let dst = v4("198.51.100.7");
    let input: Vec<Vec<u8>> = (0..1000u16)
        .map(|i| udp4_frame(m(GW_MAC), m(A_MAC), v4(A4), dst, 64, i, (20000 + i, 443), &i.to_be_bytes().repeat(9)))
        .collect();
    let (u1, u2, ctx) = ecmp_run(&sb, "run1", &input);
    eprintln!("ECMP split of 1000 flows: up1 {}, up2 {}", u1.len(), u2.len());
    assert_eq!(u1.len() + u2.len(), 1000, "{ctx}");
    for (name, out) in [("up1", &u1), ("up2", &u2)] {
        assert!((350..=650).contains(&out.len()), "{name} got {} of 1000 flows: uneven split\n{ctx}", out.len());
    }
    let set = |v: &[Vec<u8>]| v.iter().map(|f| sport(f)).collect::<BTreeSet<u16>>();
    let (s1, s2) = (set(&u1), set(&u2));
    assert_eq!(s1.len() + s2.len(), 1000, "a flow appeared twice\n{ctx}");
    assert!(s1.is_disjoint(&s2), "a flow went out of both uplinks\n{ctx}");
    // Byte for byte: each uplink's frames are the inputs of its flows, in input order,
    // routed with that uplink's MACs.
    for (name, out, set, gw, up) in [("up1", &u1, &s1, GW1_MAC, UP1_MAC), ("up2", &u2, &s2, GW2_MAC, UP2_MAC)] {
        let want: Vec<Vec<u8>> =
            input.iter().filter(|f| set.contains(&sport(f))).map(|f| routed_v4(f, m(gw), m(up))).collect();
        assert_frames_eq(out, &want, name, &ctx);
        let rows = tshark_fields_with(
            &sb.file(&format!("{name}_run1.pcap")),
            CHECK_CHECKSUMS,
            &["eth.src", "eth.dst", "ip.ttl", "ip.dst", "ip.checksum.status", "udp.checksum.status"],
        );
        assert_eq!(rows.len(), out.len(), "{ctx}");
        for row in &rows {
            assert_eq!(row, &[up, gw, "63", "198.51.100.7", "1", "1"], "tshark on {name}\n{ctx}");
        }
    }
    let (v1, v2, ctx2) = ecmp_run(&sb, "run2", &input);
    assert_eq!((set(&v1), set(&v2)), (s1, s2), "the second run split the flows differently\n{ctx2}");
    assert_eq!((v1, v2), (u1, u2), "the second run's output differs\n{ctx2}");
}

/// Malformed IP on an L3 (endpoint) port: each is dropped under its exact reason, never
/// answered with an ICMP error, and the good packets around them (IPv4 with options,
/// IPv6 with the longest extension chain sluice walks: 8 headers) are still routed, in
/// order, byte for byte. No mbuf leaks (checked by `run_ok`).
#[test]
fn malformed_ip_on_an_l3_port_is_dropped_by_reason() {
    skip_unless!(["tshark"]);
    let sb = Sandbox::new("l3-malformed");
    let (a4, b4, a6, b6) = (v4(A4), v4(B4), v6(A6), v6(B6));
    let good_v4 = |id: u16| a_to_b_v4(64, id, 42000 + id);
    let v4_frame = |ip: Vec<u8>| eth(m(GW_MAC), m(A_MAC), ETHERTYPE_IPV4, &ip);
    let v6_frame = |ip: Vec<u8>| eth(m(GW_MAC), m(A_MAC), ETHERTYPE_IPV6, &ip);
    let udp_a_b = udp4(a4, b4, 42100, 5001, b"with options");
    // Re-fills the IPv4 header checksum after a header edit (so only the edit is wrong).
    let refill = |mut f: Vec<u8>| {
        let hlen = usize::from(f[14] & 0x0f).max(5) * 4;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = inet_checksum(&[&f[14..14 + hlen]]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    };

    let g1 = good_v4(1);
    let bad_ihl = refill({
        let mut f = good_v4(2);
        f[14] = 0x44; // IHL 4: a 16-byte header
        f
    });
    let bad_version = refill({
        let mut f = good_v4(3);
        f[14] = 0x65; // version 6 in an IPv4 frame
        f
    });
    let truncated_hdr = good_v4(4)[..14 + 12].to_vec();
    let total_lt_hdr = refill({
        let mut f = good_v4(5);
        f[16..18].copy_from_slice(&16u16.to_be_bytes()); // Total Length 16 < 20
        f
    });
    let total_gt_frame = refill({
        let mut f = good_v4(6);
        f[16..18].copy_from_slice(&200u16.to_be_bytes()); // claims more than the frame has
        f
    });
    let g2 = v4_frame(ipv4_packet_opts(a4, b4, PROTO_UDP, 64, 7, &[1, 1, 1, 0], &udp_a_b)); // NOP NOP NOP EOL
    let bad_csum = {
        let mut f = good_v4(8);
        f[24] ^= 0x5a;
        f
    };
    let g3 = a_to_b_v6(64, 42009);
    let udp6_a_b = udp6(a6, b6, 42010, 5001, b"ext chain");
    let chain9 = v6_frame(ipv6_packet(a6, b6, NH_DEST_OPTS, 64, &dest_opts_chain(9, PROTO_UDP, &udp6_a_b)));
    let g4 = v6_frame(ipv6_packet(a6, b6, NH_DEST_OPTS, 64, &dest_opts_chain(8, PROTO_UDP, &udp6_a_b)));
    // A Destination Options header saying it is 16 bytes long in an 8-byte payload.
    let ext_past_end = v6_frame(ipv6_packet(a6, b6, NH_DEST_OPTS, 64, &[PROTO_UDP, 1, 1, 4, 0, 0, 0, 0]));
    let plen_past_frame = {
        let mut f = a_to_b_v6(64, 42011);
        f[18..20].copy_from_slice(&300u16.to_be_bytes()); // Payload Length beyond the frame
        f
    };
    let truncated_v6 = a_to_b_v6(64, 42012)[..14 + 30].to_vec();
    let g5 = good_v4(13);

    let input = vec![
        g1.clone(),
        bad_ihl,
        bad_version,
        truncated_hdr,
        total_lt_hdr,
        total_gt_frame,
        g2.clone(),
        bad_csum,
        g3.clone(),
        chain9,
        g4.clone(),
        ext_past_end,
        plen_past_frame,
        truncated_v6,
        g5.clone(),
    ];
    sb.write_pcap("in_a.pcap", &input);
    sb.write_pcap("in_b.pcap", &[]);
    let r = run_ok(&sb, "malformed", &blue_yaml(&sb, "", ""), 2.0);
    let ctx = &r.context;
    r.assert_consistent();
    assert_eq!(r.port("pa", "/ethdev/ipackets"), input.len() as u64, "input not fully read\n{ctx}");
    assert_eq!(
        r.drops(),
        drops(&[
            ("ip_bad_header", 2),   // IHL 4, version 6
            ("ip_truncated", 5), // 12-byte IPv4 header, Total Length past the frame, ext header past the payload, Payload Length past the frame, 30-byte IPv6 header
            ("ip_bad_length", 1), // Total Length < header
            ("ip_bad_checksum", 1), // header checksum
            ("ipv6_ext_chain", 1), // 9 extension headers
        ]),
        "{ctx}"
    );
    assert_eq!(r.u("/workers/0/icmp_errors"), 0, "no ICMP error about a malformed packet\n{ctx}");
    assert_eq!(r.u("/workers/0/routed"), 5, "{ctx}");
    assert!(read_frames(&sb.file("out_a.pcap")).is_empty(), "nothing goes back to a\n{ctx}");
    let want: Vec<Vec<u8>> = [&g1, &g2, &g3, &g4, &g5]
        .iter()
        .map(|f| {
            if f[12..14] == [0x86, 0xdd] {
                routed_v6(f, m(B_MAC), m(GW_MAC))
            } else {
                routed_v4(f, m(B_MAC), m(GW_MAC))
            }
        })
        .collect();
    assert_frames_eq(&read_frames(&sb.file("out_b.pcap")), &want, "good packets to b", ctx);
    let rows = tshark_fields_with(
        &sb.file("out_b.pcap"),
        CHECK_CHECKSUMS,
        &["ip.ttl", "ipv6.hlim", "ip.hdr_len", "ip.checksum.status", "udp.checksum.status", "udp.srcport"],
    );
    let want_rows: Vec<Vec<&str>> = vec![
        vec!["63", "", "20", "1", "1", "42001"],
        vec!["63", "", "24", "1", "1", "42100"],
        vec!["", "63", "", "", "1", "42009"],
        vec!["", "63", "", "", "1", "42010"],
        vec!["63", "", "20", "1", "1", "42013"],
    ];
    assert_eq!(rows, want_rows, "tshark decode of the routed good packets\n{ctx}");
}
