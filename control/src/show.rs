//! The operator's `show` views: counters since the last clear with rates, the effective
//! routes, and the workers' connections.
//!
//! * **Clear is a baseline.** Workers' counters are single-writer and monotonic; nobody
//!   but the worker may write them. `clear` keeps a copy of the counters as they are
//!   ([`Views::clear`]) and the show views subtract it ([`since`]). The raw counters —
//!   `/v1/stats`, `--stats-json` and the Prometheus metrics — never go back.
//! * **Rates** come from a short history the control thread samples once a second
//!   ([`Views::sample`]): a view's rate is its counter now minus the newest sample at
//!   least `interval` old, over the time between them.
//! * **Routes** are read from the published tables (`Vrf::routes`, the list each FIB was
//!   built from), with next hops resolved to endpoints, ports and MACs.
//! * **Flows** are copied out by each worker on request (`worker::dump`) and gathered
//!   here with a timeout; nothing in a worker waits for the control thread.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use sluice_dataplane::flow::{ConnState, FlowKey, TcpState};
use sluice_dataplane::l3::conn::{Act, FlowAction};
use sluice_dataplane::l3::{NextHop, RouteOrigin, Vrf};
use sluice_dataplane::tables::Tables;
use sluice_dataplane::worker::FlowSummary;

use crate::stats::{Drops, Report, Totals};

/// Samples kept for rates (one a second).
const HISTORY: usize = 16;

/// The control thread's show state: the clear baseline and the sample history.
#[derive(Debug, Default)]
pub struct Views {
    baseline: Option<(Instant, Report)>,
    samples: VecDeque<(Instant, Report)>,
}

impl Views {
    /// Records a sample of the raw counters (call about once a second).
    pub fn sample(&mut self, now: Instant, r: Report) {
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back((now, r));
    }

    /// Makes `r` (the raw counters now) the zero of every show view.
    pub fn clear(&mut self, now: Instant, r: Report) {
        self.baseline = Some((now, r));
    }

    /// The show view of the raw counters `raw` read at `now`: since the last clear, with
    /// rates over the newest sample at least `interval` old (or the oldest there is).
    pub fn view(&self, now: Instant, raw: &Report, interval: Duration) -> ShowStats {
        let mut report = match &self.baseline {
            Some((_, b)) => since(raw, b),
            None => raw.clone(),
        };
        let prev = self
            .samples
            .iter()
            .rev()
            .find(|(t, _)| now.saturating_duration_since(*t) >= interval)
            .or_else(|| self.samples.front())
            .filter(|(t, _)| now.saturating_duration_since(*t) > Duration::from_millis(1));
        let interval_s = match prev {
            Some((t, p)) => {
                let dt = now.saturating_duration_since(*t).as_secs_f64();
                fill_rates(&mut report, raw, p, dt);
                dt
            }
            None => 0.0,
        };
        ShowStats {
            cleared_s_ago: self.baseline.as_ref().map(|(t, _)| now.saturating_duration_since(*t).as_secs_f64()),
            interval_s,
            report,
        }
    }
}

/// A show view: counters since the last clear (or start), rates over `interval_s`.
#[derive(Debug, Clone, Serialize)]
pub struct ShowStats {
    /// Seconds since the last clear (None: never cleared; counters since start).
    pub cleared_s_ago: Option<f64>,
    /// The rates' interval in seconds (0: no sample yet, rates are 0).
    pub interval_s: f64,
    #[serde(flatten)]
    pub report: Report,
}

/// `now - base`, counter by counter (gauges such as `flows` and `fdb_entries` are
/// `now`'s). Workers and ports are matched by id and name; one the baseline does not
/// know counts from zero. Saturating: a counter that went back (a port re-added) reads 0.
pub fn since(now: &Report, base: &Report) -> Report {
    let mut r = now.clone();
    for w in &mut r.workers {
        let Some(b) = base.workers.iter().find(|b| b.id == w.id) else { continue };
        macro_rules! sub {
            ($($f:ident),*) => { $( w.$f = w.$f.saturating_sub(b.$f); )* };
        }
        sub!(
            rx_packets, tx_packets, mac_learned, mac_moved, mac_aged, fdb_full, flooded, learn_overflow, routed,
            arp_replies, nd_replies, echo_replies, dhcp_replies, icmp_errors, icmp_suppressed, flows_created,
            flows_expired, flows_evicted, flows_redecided, policy_logged, busy_cycles, idle_cycles, loops
        );
        w.drops = sub_drops(&w.drops, &b.drops);
        w.cycles_per_packet = if w.rx_packets == 0 { 0.0 } else { w.busy_cycles as f64 / w.rx_packets as f64 };
    }
    for p in &mut r.ports {
        let Some(b) = base.ports.iter().find(|b| b.name == p.name) else { continue };
        p.rx_packets = p.rx_packets.saturating_sub(b.rx_packets);
        p.tx_packets = p.tx_packets.saturating_sub(b.tx_packets);
        p.rx_bytes = p.rx_bytes.saturating_sub(b.rx_bytes);
        p.tx_bytes = p.tx_bytes.saturating_sub(b.tx_bytes);
        let (e, be) = (&mut p.ethdev, &b.ethdev);
        e.ipackets = e.ipackets.saturating_sub(be.ipackets);
        e.opackets = e.opackets.saturating_sub(be.opackets);
        e.ibytes = e.ibytes.saturating_sub(be.ibytes);
        e.obytes = e.obytes.saturating_sub(be.obytes);
        e.imissed = e.imissed.saturating_sub(be.imissed);
        e.ierrors = e.ierrors.saturating_sub(be.ierrors);
        e.oerrors = e.oerrors.saturating_sub(be.oerrors);
        e.rx_nombuf = e.rx_nombuf.saturating_sub(be.rx_nombuf);
        for q in &mut p.rx_queues {
            if let Some(bq) = b.rx_queues.iter().find(|x| x.queue == q.queue) {
                q.packets = q.packets.saturating_sub(bq.packets);
                q.bytes = q.bytes.saturating_sub(bq.bytes);
                q.ethdev_packets = q.ethdev_packets.saturating_sub(bq.ethdev_packets);
                q.ethdev_bytes = q.ethdev_bytes.saturating_sub(bq.ethdev_bytes);
            }
        }
        for q in &mut p.tx_queues {
            if let Some(bq) = b.tx_queues.iter().find(|x| x.queue == q.queue) {
                q.packets = q.packets.saturating_sub(bq.packets);
                q.bytes = q.bytes.saturating_sub(bq.bytes);
                q.ethdev_packets = q.ethdev_packets.saturating_sub(bq.ethdev_packets);
                q.ethdev_bytes = q.ethdev_bytes.saturating_sub(bq.ethdev_bytes);
            }
        }
    }
    r.totals = crate::stats::totals(&r.workers);
    r.duration_s = (now.duration_s - base.duration_s).max(0.0);
    r
}

fn sub_drops(now: &Drops, base: &Drops) -> Drops {
    now.iter()
        .filter_map(|(k, v)| match v.saturating_sub(base.get(k).copied().unwrap_or(0)) {
            0 => None,
            n => Some((k.clone(), n)),
        })
        .collect()
}

/// Fills the per-second rates of `view` from the raw counters `now` and `prev`, `dt`
/// seconds apart (raw, so a clear in between does not distort them).
fn fill_rates(view: &mut Report, now: &Report, prev: &Report, dt: f64) {
    if dt <= 0.0 {
        return;
    }
    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
    for w in &mut view.workers {
        let (Some(n), Some(p)) = (now.workers.iter().find(|x| x.id == w.id), prev.workers.iter().find(|x| x.id == w.id)) else {
            continue;
        };
        w.rx_pps = rate(n.rx_packets, p.rx_packets);
        w.tx_pps = rate(n.tx_packets, p.tx_packets);
        let busy = n.busy_cycles.saturating_sub(p.busy_cycles);
        let all = busy + n.idle_cycles.saturating_sub(p.idle_cycles);
        w.busy_pct = if all == 0 { 0.0 } else { 100.0 * busy as f64 / all as f64 };
    }
    for v in &mut view.ports {
        let (Some(n), Some(p)) = (now.ports.iter().find(|x| x.name == v.name), prev.ports.iter().find(|x| x.name == v.name)) else {
            continue;
        };
        v.rx_pps = rate(n.rx_packets, p.rx_packets);
        v.tx_pps = rate(n.tx_packets, p.tx_packets);
        for q in &mut v.rx_queues {
            let cur = n.rx_queues.iter().find(|x| x.queue == q.queue).map_or(0, |x| x.packets);
            let old = p.rx_queues.iter().find(|x| x.queue == q.queue).map_or(0, |x| x.packets);
            q.rx_pps = rate(cur, old);
        }
        for q in &mut v.tx_queues {
            let cur = n.tx_queues.iter().find(|x| x.queue == q.queue).map_or(0, |x| x.packets);
            let old = p.tx_queues.iter().find(|x| x.queue == q.queue).map_or(0, |x| x.packets);
            q.tx_pps = rate(cur, old);
        }
    }
    let (tn, tp): (&Totals, &Totals) = (&now.totals, &prev.totals);
    view.totals.rx_pps = rate(tn.rx_packets, tp.rx_packets);
    view.totals.tx_pps = rate(tn.tx_packets, tp.tx_packets);
    view.totals.drop_pps = rate(tn.drops_total, tp.drops_total);
}

/// One polled rx queue from its worker's side (`pmd-rxq-show`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, PartialEq)]
pub struct RxqRow {
    pub worker: usize,
    pub port: String,
    pub queue: u16,
    pub packets: u64,
    pub bytes: u64,
    pub rx_pps: f64,
}

/// Every polled rx queue of `ports`, by worker then port.
pub fn rxq_rows(ports: &[crate::stats::PortReport]) -> Vec<RxqRow> {
    let mut rows: Vec<RxqRow> = ports
        .iter()
        .flat_map(|p| {
            p.rx_queues.iter().filter_map(|q| {
                Some(RxqRow { worker: q.worker?, port: p.name.clone(), queue: q.queue, packets: q.packets, bytes: q.bytes, rx_pps: q.rx_pps })
            })
        })
        .collect();
    rows.sort_by_key(|r| r.worker);
    rows
}

// ---------------------------------------------------------------------------------------
// Routes.

fn port_name(t: &Tables, port: u16) -> String {
    t.ports.get(port as usize).map(|p| p.name.clone()).unwrap_or_else(|| format!("#{port}"))
}

/// A next hop of `vrf` as JSON, resolved against the tables (ECMP members inline).
fn next_hop_json(t: &Tables, vrf: &Vrf, nh: u32, depth: u8) -> Value {
    let Some(n) = vrf.next_hops.get(nh as usize) else { return json!({"type": "invalid", "id": nh}) };
    match n {
        NextHop::Endpoint(e) => match t.l3.endpoints.get(*e as usize) {
            Some(ep) => json!({
                "type": "endpoint", "endpoint": ep.name, "port": port_name(t, ep.port),
                "mac": ep.mac.to_string(), "vlan": ep.vlan,
            }),
            None => json!({"type": "endpoint", "endpoint": null}),
        },
        NextHop::Gateway { port, vlan, mac, src_mac } => json!({
            "type": "gateway", "port": port_name(t, *port), "mac": mac.to_string(), "vlan": vlan,
            "src_mac": src_mac.to_string(),
        }),
        NextHop::Ecmp(members) if depth == 0 => {
            json!({"type": "ecmp", "members": members.iter().map(|m| next_hop_json(t, vrf, *m, 1)).collect::<Vec<_>>()})
        }
        NextHop::Ecmp(_) => json!({"type": "ecmp"}),
        NextHop::Vrf(v) => json!({"type": "network", "network": t.l3.vrfs.get(*v as usize).map(|v| v.name.as_str())}),
        NextHop::Local => json!({"type": "local"}),
        NextHop::Blackhole => json!({"type": "blackhole"}),
    }
}

/// The effective routes of every network (or only `network`), as the workers use them.
/// None when `network` names no network.
pub fn routes(t: &Tables, network: Option<&str>) -> Option<Value> {
    if network.is_some_and(|n| !t.l3.vrfs.iter().any(|v| v.name == n)) {
        return None;
    }
    let nets: Vec<Value> = t
        .l3
        .vrfs
        .iter()
        .filter(|v| network.is_none_or(|n| v.name == n))
        .map(|v| {
            let routes: Vec<Value> = v
                .routes
                .iter()
                .map(|r| {
                    json!({
                        "prefix": format!("{}/{}", r.prefix, r.len),
                        "origin": match r.origin {
                            RouteOrigin::Static => "static",
                            RouteOrigin::Endpoint => "endpoint",
                            RouteOrigin::Local => "local",
                        },
                        "next_hop": next_hop_json(t, v, r.nh, 0),
                    })
                })
                .collect();
            json!({"network": v.name, "vrf": v.id, "epoch": t.epoch, "routes": routes})
        })
        .collect();
    Some(Value::Array(nets))
}

// ---------------------------------------------------------------------------------------
// Flows.

fn addr(key: &FlowKey, a: u128) -> IpAddr {
    if key.v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    }
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

/// Conntrack state in the words `conntrack -L` uses.
fn state_name(ct: &ConnState) -> &'static str {
    match ct {
        ConnState::Tcp(s) => match s {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        },
        ConnState::Udp { replied } | ConnState::Icmp { replied } | ConnState::Other { replied } => {
            if *replied {
                "REPLIED"
            } else {
                "UNREPLIED"
            }
        }
    }
}

/// A cached decision. Its rewrite is an adjacency of the snapshot it was decided under:
/// shown from `t` when that is `t` (`current`), else as stale (the connection's next
/// packet re-decides it).
fn action_json(t: &Tables, a: &FlowAction, current: bool) -> Value {
    match a.act {
        Act::Undecided => json!({"verdict": "undecided"}),
        Act::Deny(reason) => json!({"verdict": "deny", "reason": reason.name()}),
        Act::Forward => match t.l3.adjacencies.get(a.adj as usize).filter(|_| current) {
            Some(adj) => json!({
                "verdict": "forward", "port": port_name(t, adj.port),
                "vlan": adj.vlan,
                "dst_mac": adj.dst_mac().to_string(), "src_mac": adj.src_mac().to_string(),
            }),
            None => json!({"verdict": "forward", "stale": true}),
        },
    }
}

/// One connection of worker `worker` as JSON.
pub fn flow_json(t: &Tables, worker: usize, s: &FlowSummary<FlowAction>) -> Value {
    let k = &s.key;
    // Entries keep the low 32 bits of the epoch.
    let current = s.epoch == t.epoch & u64::from(u32::MAX);
    let end = |src: u128, sport: u16, dst: u128, dport: u16| {
        json!({"src": addr(k, src).to_string(), "sport": sport, "dst": addr(k, dst).to_string(), "dport": dport})
    };
    json!({
        "worker": worker,
        "network": t.l3.vrfs.get(k.vrf as usize).map(|v| v.name.as_str()),
        "protocol": proto_name(k.proto),
        "orig": end(k.src, k.sport, k.dst, k.dport),
        "reply": end(k.dst, k.dport, k.src, k.sport),
        "state": state_name(&s.ct),
        "age_ms": s.now_ms.saturating_sub(s.created_ms),
        "idle_ms": s.now_ms.saturating_sub(s.last_seen_ms),
        "expires_in_ms": s.last_seen_ms.saturating_add(s.timeout_ms).saturating_sub(s.now_ms),
        "packets": {"orig": s.packets[0], "reply": s.packets[1]},
        "bytes": {"orig": s.bytes[0], "reply": s.bytes[1]},
        "epoch": s.epoch,
        "action": {"orig": action_json(t, &s.action[0], current), "reply": action_json(t, &s.action[1], current)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{PortReport, RxQueueReport, WorkerReport};

    fn report(rx: u64, busy: u64, idle: u64, flows: u64, drops: u64) -> Report {
        let mut w = WorkerReport { id: 0, rx_packets: rx, tx_packets: rx, busy_cycles: busy, idle_cycles: idle, flows, ..Default::default() };
        if drops > 0 {
            w.drops.insert("tx_full".into(), drops);
        }
        let p = PortReport {
            name: "in0".into(),
            rx_packets: rx,
            rx_bytes: rx * 60,
            rx_queues: vec![RxQueueReport { queue: 0, worker: Some(0), packets: rx, bytes: rx * 60, ..Default::default() }],
            ..Default::default()
        };
        let workers = vec![w];
        Report { totals: crate::stats::totals(&workers), workers, ports: vec![p], duration_s: rx as f64, ..Default::default() }
    }

    #[test]
    fn since_subtracts_counters_and_keeps_gauges() {
        let base = report(100, 1000, 50, 7, 3);
        let now = report(250, 2500, 80, 9, 3);
        let s = since(&now, &base);
        let w = &s.workers[0];
        assert_eq!((w.rx_packets, w.tx_packets, w.busy_cycles, w.idle_cycles), (150, 150, 1500, 30));
        assert_eq!(w.flows, 9, "a gauge is not a counter");
        assert!(w.drops.is_empty(), "no drop since: the reason disappears");
        assert_eq!(w.cycles_per_packet, 10.0);
        assert_eq!((s.totals.rx_packets, s.totals.drops_total), (150, 0));
        let p = &s.ports[0];
        assert_eq!((p.rx_packets, p.rx_bytes, p.rx_queues[0].packets, p.rx_queues[0].bytes), (150, 9000, 150, 9000));
        // A counter below its baseline (a port re-created) reads 0, never wraps.
        let s = since(&base, &now);
        assert_eq!((s.workers[0].rx_packets, s.ports[0].rx_queues[0].packets), (0, 0));
        // Something the baseline does not know counts from zero.
        let mut fresh = now.clone();
        fresh.ports[0].name = "new".into();
        assert_eq!(since(&fresh, &base).ports[0].rx_packets, 250);
    }

    #[test]
    fn views_clear_and_rate_over_the_sample_history() {
        let t0 = Instant::now();
        let mut v = Views::default();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let r0 = report(0, 0, 0, 0, 0);
        // No sample yet: counters since start, no rate.
        let s = v.view(at(0), &r0, Duration::from_secs(1));
        assert_eq!((s.interval_s, s.cleared_s_ago, s.report.totals.rx_pps), (0.0, None, 0.0));
        v.sample(at(0), report(0, 0, 0, 0, 0));
        v.sample(at(1), report(1000, 100, 900, 0, 0));
        v.sample(at(2), report(3000, 300, 900, 0, 0));
        let now = report(6000, 600, 900, 0, 0);
        let s = v.view(at(3), &now, Duration::from_secs(1));
        assert_eq!(s.interval_s, 1.0);
        assert_eq!(s.report.totals.rx_pps, 3000.0);
        assert_eq!(s.report.workers[0].busy_pct, 100.0);
        assert_eq!(s.report.ports[0].rx_queues[0].rx_pps, 3000.0);
        let s = v.view(at(3), &now, Duration::from_secs(2));
        assert_eq!((s.interval_s, s.report.totals.rx_pps), (2.0, 2500.0));
        // Longer than the history: the oldest sample.
        assert_eq!(v.view(at(3), &now, Duration::from_secs(60)).interval_s, 3.0);
        // Clear: counters restart, rates stay what the traffic does.
        v.clear(at(3), now.clone());
        let later = report(6500, 650, 900, 0, 0);
        let s = v.view(at(4), &later, Duration::from_secs(1));
        assert_eq!(s.report.totals.rx_packets, 500);
        assert_eq!(s.cleared_s_ago, Some(1.0));
        assert_eq!(s.report.totals.rx_pps, 3500.0 / 2.0, "rate from the raw sample at 2 s");
        // The history is bounded.
        for i in 0..100 {
            v.sample(at(10 + i), report(i, 0, 0, 0, 0));
        }
        assert_eq!(v.samples.len(), HISTORY);
    }
}
