//! `sluice trace`: the control side of the packet trace. Collects the workers' records
//! ([`sluice_dataplane::trace`]) and renders them as JSON with names (ports, networks,
//! endpoints, global rules) taken from the running tables and configuration.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};
use sluice_dataplane::flow::{ConnState, Dir};
use sluice_dataplane::policy::VerdictBy;
use sluice_dataplane::tables::Tables;
use sluice_dataplane::trace::{FlowNote, Learn, LocalAnswer, RouteResult, Step, TraceControl, TraceRecord, TraceSender, TRACE_MAX};

use crate::config::Config;

/// What control keeps of the current trace: the records of the current arming.
#[derive(Debug, Default)]
pub struct TraceStore {
    /// What was asked for (0: never armed or cleared).
    pub requested: u32,
    pub port: Option<String>,
    generation: u16,
    records: Vec<TraceRecord>,
}

impl TraceStore {
    /// Arms the trace for `count` packets of `port` (`None`: all ports) and forgets the
    /// previous records.
    pub fn arm(&mut self, sink: &TraceControl, count: u32, port: Option<(u16, String)>) {
        self.records.clear();
        self.requested = count.min(TRACE_MAX);
        self.generation = sink.arm(count, port.as_ref().map(|p| p.0));
        self.port = port.map(|p| p.1);
    }

    /// Stops tracing and forgets the records.
    pub fn clear(&mut self, sink: &TraceControl) {
        self.generation = sink.clear();
        self.records.clear();
        self.requested = 0;
        self.port = None;
    }

    /// Takes what the workers finished since the last call.
    pub fn collect(&mut self, sink: &TraceControl) {
        while let Some(r) = sink.pop() {
            if r.generation == self.generation && self.records.len() < TRACE_MAX as usize {
                self.records.push(r);
            }
        }
        // Workers finish in their own order; show them as they arrived per worker, by time.
        self.records.sort_by_key(|r| (r.now_ms, r.worker));
    }

    /// `GET /v1/trace`.
    pub fn to_json(&self, sink: &TraceControl, tables: &Tables, cfg: &Config) -> Value {
        let names = Names { tables, cfg };
        json!({
            "requested": self.requested,
            "port": self.port,
            "remaining": sink.remaining(),
            "lost": sink.lost(),
            "records": self.records.iter().map(|r| names.record(r)).collect::<Vec<_>>(),
        })
    }
}

struct Names<'a> {
    tables: &'a Tables,
    cfg: &'a Config,
}

impl Names<'_> {
    fn port(&self, p: u16) -> String {
        self.tables.ports.get(p as usize).map_or_else(|| format!("port{p}"), |e| e.name.clone())
    }
    fn vrf(&self, v: u16) -> String {
        self.tables.l3.vrfs.get(v as usize).map_or_else(|| format!("vrf{v}"), |n| n.name.clone())
    }
    fn endpoint(&self, e: u32) -> String {
        self.tables.l3.endpoints.get(e as usize).map_or_else(|| format!("endpoint{e}"), |n| n.name.clone())
    }
    fn global_rule(&self, i: u32) -> String {
        self.cfg.global_rules.get(i as usize).map_or_else(|| format!("#{i}"), |g| g.name.clone())
    }

    fn record(&self, r: &TraceRecord) -> Value {
        let mut steps = Vec::new();
        let mut tx = Vec::new();
        let mut drop = None;
        for s in &r.steps {
            let (stage, decision) = self.step(s);
            match s {
                Step::Tx { port, .. } => tx.push(self.port(*port)),
                Step::Drop(d) => drop = Some(d.name()),
                _ => {}
            }
            steps.push(json!({"stage": stage, "decision": decision}));
        }
        let outcome = match (drop, tx.is_empty()) {
            (Some(d), true) => json!({"drop": d}),
            (Some(d), false) => json!({"tx": tx, "drop": d}),
            (None, false) => json!({"tx": tx}),
            (None, true) => json!({}),
        };
        json!({
            "worker": r.worker,
            "port": self.port(r.port),
            "queue": r.queue,
            "time_ms": r.now_ms,
            "len": r.frame_len,
            "summary": summary(r.head()),
            "steps": steps,
            "steps_lost": r.steps_lost,
            "outcome": outcome,
        })
    }

    /// (stage, decision) of one step, in words.
    fn step(&self, s: &Step) -> (&'static str, String) {
        match *s {
            Step::Bridge { domain, vid, tagged } => {
                ("bridge", format!("domain {domain}, vlan {vid}{}", if tagged { " (tagged)" } else { "" }))
            }
            Step::Learn(l) => (
                "learn",
                match l {
                    Learn::Refreshed => "source MAC known here: refreshed",
                    Learn::Learned => "source MAC learned",
                    Learn::Moved => "source MAC moved to this port",
                    Learn::Full => "MAC table full: not learned",
                    Learn::StaticConflict => "static MAC on another port: not moved",
                }
                .to_string(),
            ),
            Step::FdbHit { port } => ("fdb", format!("hit: {}", self.port(port))),
            Step::Flood { multicast } => {
                ("fdb", if multicast { "broadcast/multicast: flood" } else { "miss: flood" }.to_string())
            }
            Step::L3In { vrf, sender, gateway } => {
                let from = match sender {
                    TraceSender::Endpoint(e) => format!("endpoint {}", self.endpoint(e)),
                    TraceSender::Uplink(p) => format!("uplink {}", self.port(p)),
                };
                let via = if gateway { " (bridged network's gateway)" } else { "" };
                ("l3-input", format!("network {}, from {from}{via}", self.vrf(vrf)))
            }
            Step::AntiSpoofOk => ("anti-spoof", "ok: source is the sender's own".to_string()),
            Step::Local(a) => (
                "local",
                match a {
                    LocalAnswer::ArpReply => "ARP reply".to_string(),
                    LocalAnswer::NdReply => "neighbor advertisement".to_string(),
                    LocalAnswer::EchoReply => "ICMP echo reply".to_string(),
                    LocalAnswer::DhcpReply => "DHCP reply".to_string(),
                    LocalAnswer::IcmpError { typ, code } => format!("ICMP error type {typ} code {code}"),
                },
            ),
            Step::Flow(f) => (
                "flow",
                match f {
                    FlowNote::Stateless => "stateless (no connection tracking)".to_string(),
                    FlowNote::Hit(d) => format!("hit ({}): cached decision", dir(d)),
                    FlowNote::Redecided { dir: d, stale } => {
                        format!("known ({}), decided again{}", dir(d), if stale { ": rules changed" } else { "" })
                    }
                    FlowNote::Miss => "miss: new connection".to_string(),
                    FlowNote::Fragment { known: true } => "fragment: follows its first fragment".to_string(),
                    FlowNote::Fragment { known: false } => "fragment: first fragment unknown".to_string(),
                    FlowNote::Related { known } => {
                        format!("ICMP error about {} connection", if known { "a tracked" } else { "an unknown" })
                    }
                },
            ),
            Step::Conntrack { state, valid } => {
                let st = match state {
                    ConnState::Tcp(s) => format!("tcp {s:?}"),
                    ConnState::Udp { replied } => format!("udp{}", if replied { " replied" } else { "" }),
                    ConnState::Icmp { replied } => format!("icmp{}", if replied { " replied" } else { "" }),
                    ConnState::Other { replied } => format!("other{}", if replied { " replied" } else { "" }),
                };
                ("conntrack", if valid { st } else { format!("{st}: invalid") })
            }
            Step::Policy { verdict: None, .. } => ("policy", "none configured: allow".to_string()),
            Step::Policy { verdict: Some(v), dir: d } => {
                let by = match v.by {
                    VerdictBy::Default => "no policy selects either side".to_string(),
                    VerdictBy::GlobalAllow(i) => format!("global rule {}", self.global_rule(i)),
                    VerdictBy::GlobalDeny(i) => format!("global rule {}", self.global_rule(i)),
                    VerdictBy::NetworkPolicy => "a network policy rule".to_string(),
                    VerdictBy::EgressDenied => "source egress-isolated, no rule allows".to_string(),
                    VerdictBy::IngressDenied => "destination ingress-isolated, no rule allows".to_string(),
                };
                let log = if v.log { ", logged" } else { "" };
                let reply = if d == Dir::Reply { " (judged as the connection's original direction)" } else { "" };
                ("policy", format!("{} by {by}{log}{reply}", if v.allow { "allow" } else { "deny" }))
            }
            Step::Route { note, result } => {
                let ecmp = note.ecmp.map(|(i, n)| format!(", ECMP member {} of {n}", i + 1)).unwrap_or_default();
                let what = match result {
                    RouteResult::Local => "local address".to_string(),
                    RouteResult::Endpoint { endpoint, port } => {
                        format!("endpoint {} on {}", self.endpoint(endpoint), self.port(port))
                    }
                    RouteResult::Gateway { port, mac } => format!("gateway {mac} on {}", self.port(port)),
                    RouteResult::NoRoute => "no route".to_string(),
                    RouteResult::Drop(d) => format!("drop ({})", d.name()),
                };
                ("fib", format!("network {}: {what}{ecmp}", self.vrf(note.vrf)))
            }
            Step::Tx { port, vlan } => {
                ("tx", format!("{}{}", self.port(port), vlan.map(|v| format!(" vlan {v}")).unwrap_or_default()))
            }
            Step::Drop(d) => ("drop", format!("{}: {}", d.name(), d.description())),
        }
    }
}

fn dir(d: Dir) -> &'static str {
    match d {
        Dir::Orig => "original direction",
        Dir::Reply => "reply direction",
    }
}

/// A one-line header summary of a frame's first bytes (tcpdump style).
pub fn summary(f: &[u8]) -> String {
    let mac = |o: usize| -> String {
        f.get(o..o + 6).map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")).unwrap_or_default()
    };
    let be16 = |o: usize| f.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let Some(mut ty) = be16(12) else { return format!("runt ({} bytes)", f.len()) };
    let mut s = format!("{} > {}", mac(6), mac(0));
    let mut l3 = 14;
    while matches!(ty, 0x8100 | 0x88a8) {
        let vid = be16(l3).unwrap_or(0) & 0x0fff;
        let _ = write!(s, ", vlan {vid}");
        ty = be16(l3 + 2).unwrap_or(0);
        l3 += 4;
    }
    let ports = |o: usize| be16(o).zip(be16(o + 2));
    match ty {
        0x0800 => {
            let Some(h) = f.get(l3..l3 + 20) else { return s + ", IPv4 (truncated)" };
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let (src, dst) = (Ipv4Addr::new(h[12], h[13], h[14], h[15]), Ipv4Addr::new(h[16], h[17], h[18], h[19]));
            let l4 = l3 + ihl;
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0;
            let _ = write!(s, ", IPv4 {src} > {dst}, ttl {}", h[8]);
            l4_summary(&mut s, h[9], if frag { None } else { Some(l4) }, f, &ports);
        }
        0x86dd => {
            let Some(h) = f.get(l3..l3 + 40) else { return s + ", IPv6 (truncated)" };
            let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&h[o..o + 16]).unwrap_or([0; 16]));
            let _ = write!(s, ", IPv6 {} > {}, hlim {}", a(8), a(24), h[7]);
            l4_summary(&mut s, h[6], Some(l3 + 40), f, &ports);
        }
        0x0806 => {
            let op = be16(l3 + 6).unwrap_or(0);
            let ip = |o: usize| f.get(o..o + 4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()).unwrap_or_default();
            let _ = match op {
                1 => write!(s, ", ARP who-has {} tell {}", ip(l3 + 24), ip(l3 + 14)),
                2 => write!(s, ", ARP reply {} is-at {}", ip(l3 + 14), mac(l3 + 8)),
                _ => write!(s, ", ARP op {op}"),
            };
        }
        t => {
            let _ = write!(s, ", ethertype 0x{t:04x}");
        }
    }
    s
}

fn l4_summary(s: &mut String, proto: u8, l4: Option<usize>, f: &[u8], ports: &dyn Fn(usize) -> Option<(u16, u16)>) {
    let name = match proto {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "ICMPv6",
        132 => "SCTP",
        _ => "",
    };
    match (proto, l4) {
        (6 | 17 | 132, Some(o)) => match ports(o) {
            Some((sp, dp)) => {
                let _ = write!(s, ", {name} {sp} > {dp}");
                if proto == 6 {
                    if let Some(fl) = f.get(o + 13) {
                        let flags: String = [(0x02, 'S'), (0x10, '.'), (0x01, 'F'), (0x04, 'R'), (0x08, 'P')]
                            .iter()
                            .filter(|(b, _)| fl & b != 0)
                            .map(|(_, c)| *c)
                            .collect();
                        let _ = write!(s, " [{flags}]");
                    }
                }
            }
            None => {
                let _ = write!(s, ", {name}");
            }
        },
        (1 | 58, Some(o)) => {
            let _ = write!(s, ", {name} type {} code {}", f.get(o).copied().unwrap_or(0), f.get(o + 1).copied().unwrap_or(0));
        }
        _ if !name.is_empty() => {
            let _ = write!(s, ", {name}{}", if l4.is_none() { " fragment" } else { "" });
        }
        _ => {
            let _ = write!(s, ", proto {proto}");
        }
    }
}

/// The records of `GET /v1/trace` as text, one block per packet (`sluice trace`).
pub fn render_text(v: &Value) -> String {
    let mut out = String::new();
    for (i, r) in v["records"].as_array().into_iter().flatten().enumerate() {
        let _ = writeln!(
            out,
            "Packet {} (worker {}, rx {} queue {}, {} bytes, t={} ms)",
            i + 1,
            r["worker"],
            r["port"].as_str().unwrap_or(""),
            r["queue"],
            r["len"],
            r["time_ms"]
        );
        let _ = writeln!(out, "  {}", r["summary"].as_str().unwrap_or(""));
        for s in r["steps"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  {:<11} {}", s["stage"].as_str().unwrap_or(""), s["decision"].as_str().unwrap_or(""));
        }
        if r["steps_lost"].as_u64().unwrap_or(0) > 0 {
            let _ = writeln!(out, "  ({} more steps not recorded)", r["steps_lost"]);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 1, 0, 10]);
        f[34..36].copy_from_slice(&1000u16.to_be_bytes());
        f[36..38].copy_from_slice(&5001u16.to_be_bytes());
        assert_eq!(summary(&f), "02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 10.0.0.1 > 10.1.0.10, ttl 64, UDP 1000 > 5001");
        assert_eq!(summary(&f[..10]), "runt (10 bytes)");
        assert!(summary(&f[..20]).ends_with("IPv4 (truncated)"));
    }
}
