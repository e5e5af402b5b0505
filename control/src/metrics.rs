//! Prometheus text exposition (format 0.0.4) of the counters.
//!
//! Always the raw, monotonic counters: `sluice clear stats` only moves the baseline of
//! the show views (`crate::show`), never what Prometheus scrapes.

use std::fmt::Write;

use crate::stats::Report;

/// Renders `r` as Prometheus metrics.
pub fn render(r: &Report) -> String {
    let mut s = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, samples: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(s, "# HELP sluice_{name} {help}");
        let _ = writeln!(s, "# TYPE sluice_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(s, "sluice_{name}{labels} {v}");
        }
    };
    let w = |f: fn(&crate::stats::WorkerReport) -> u64| {
        r.workers.iter().map(move |x| (format!("{{worker=\"{}\",cpu=\"{}\"}}", x.id, x.core), f(x) as f64))
    };
    family("worker_rx_packets_total", "counter", "Packets received by the worker.", &mut w(|x| x.rx_packets));
    family("worker_tx_packets_total", "counter", "Packets transmitted by the worker.", &mut w(|x| x.tx_packets));
    family("worker_busy_cycles_total", "counter", "TSC cycles in loop iterations that received packets.", &mut w(|x| x.busy_cycles));
    family("worker_idle_cycles_total", "counter", "TSC cycles in empty loop iterations.", &mut w(|x| x.idle_cycles));
    family("worker_fdb_entries", "gauge", "MAC table entries.", &mut w(|x| x.fdb_entries));
    family("worker_mac_learned_total", "counter", "MACs learned.", &mut w(|x| x.mac_learned));
    family("worker_flooded_total", "counter", "Frames flooded.", &mut w(|x| x.flooded));
    family("worker_routed_total", "counter", "Packets routed.", &mut w(|x| x.routed));
    family("worker_icmp_errors_total", "counter", "ICMP errors sent.", &mut w(|x| x.icmp_errors));
    family("worker_flows", "gauge", "Connections in the worker's flow table.", &mut w(|x| x.flows));
    family("worker_flows_capacity", "gauge", "Most connections the worker's flow table holds.", &mut w(|x| x.flows_capacity));
    family("worker_flows_created_total", "counter", "Connections created.", &mut w(|x| x.flows_created));
    family("worker_flows_expired_total", "counter", "Connections expired (idle timeout).", &mut w(|x| x.flows_expired));
    family("worker_flows_evicted_total", "counter", "Connections evicted from a full table.", &mut w(|x| x.flows_evicted));
    family("worker_flows_redecided_total", "counter", "Connections re-decided after a publish.", &mut w(|x| x.flows_redecided));
    family("worker_policy_logged_total", "counter", "Connections matched by a log rule.", &mut w(|x| x.policy_logged));
    family(
        "worker_local_answers_total",
        "counter",
        "ARP, ND, echo and DHCP answers.",
        &mut w(|x| x.arp_replies + x.nd_replies + x.echo_replies + x.dhcp_replies),
    );
    family(
        "drops_total",
        "counter",
        "Dropped packets by worker and reason.",
        &mut r.workers.iter().flat_map(|x| {
            x.drops.iter().map(move |(reason, n)| (format!("{{worker=\"{}\",reason=\"{reason}\"}}", x.id), *n as f64))
        }),
    );
    let p = |f: fn(&crate::stats::PortReport) -> u64| {
        r.ports.iter().map(move |x| (format!("{{port=\"{}\",driver=\"{}\"}}", x.name, x.driver), f(x) as f64))
    };
    family("port_rx_packets_total", "counter", "Packets the workers received from the port.", &mut p(|x| x.rx_packets));
    family("port_tx_packets_total", "counter", "Packets the workers handed to the port.", &mut p(|x| x.tx_packets));
    family("port_rx_bytes_total", "counter", "Bytes received (device counter).", &mut p(|x| x.ethdev.ibytes));
    family("port_tx_bytes_total", "counter", "Bytes transmitted (device counter).", &mut p(|x| x.ethdev.obytes));
    family("port_rx_missed_total", "counter", "Packets the device dropped for lack of rx descriptors.", &mut p(|x| x.ethdev.imissed));
    family("port_tx_errors_total", "counter", "Device transmit errors.", &mut p(|x| x.ethdev.oerrors));
    let rxq = |f: fn(&crate::stats::RxQueueReport) -> u64| {
        r.ports.iter().flat_map(move |p| {
            p.rx_queues.iter().map(move |q| (format!("{{port=\"{}\",queue=\"{}\"}}", p.name, q.queue), f(q) as f64))
        })
    };
    family("port_rx_queue_packets_total", "counter", "Packets the workers received from the rx queue.", &mut rxq(|q| q.packets));
    family("port_rx_queue_bytes_total", "counter", "Bytes the workers received from the rx queue.", &mut rxq(|q| q.bytes));
    let txq = |f: fn(&crate::stats::TxQueueReport) -> u64| {
        r.ports.iter().flat_map(move |p| {
            p.tx_queues.iter().map(move |q| (format!("{{port=\"{}\",queue=\"{}\"}}", p.name, q.queue), f(q) as f64))
        })
    };
    family("port_tx_queue_packets_total", "counter", "Packets the worker owning the tx queue handed to it.", &mut txq(|q| q.packets));
    family("port_tx_queue_bytes_total", "counter", "Bytes the worker owning the tx queue handed to it.", &mut txq(|q| q.bytes));
    family("mempool_mbufs", "gauge", "Mbufs in the pool.", &mut std::iter::once((String::new(), r.mempool.capacity as f64)));
    family("uptime_seconds", "gauge", "Seconds since forwarding started.", &mut std::iter::once((String::new(), r.duration_s)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{PortReport, WorkerReport};

    #[test]
    fn renders_families_with_labels() {
        let mut w = WorkerReport { id: 0, core: 1, rx_packets: 10, tx_packets: 9, flows: 3, flows_capacity: 4096, ..Default::default() };
        w.drops.insert("tx_full".into(), 1);
        let r = Report { workers: vec![w], ports: vec![PortReport { name: "in0".into(), driver: "net_pcap".into(), rx_packets: 10, ..Default::default() }], ..Default::default() };
        let text = render(&r);
        assert!(text.contains("# TYPE sluice_worker_rx_packets_total counter\nsluice_worker_rx_packets_total{worker=\"0\",cpu=\"1\"} 10\n"), "{text}");
        assert!(text.contains("sluice_drops_total{worker=\"0\",reason=\"tx_full\"} 1"));
        assert!(text.contains("sluice_worker_flows{worker=\"0\",cpu=\"1\"} 3\n"), "{text}");
        assert!(text.contains("# TYPE sluice_worker_flows_capacity gauge\nsluice_worker_flows_capacity{worker=\"0\",cpu=\"1\"} 4096\n"), "{text}");
        assert!(text.contains("sluice_port_rx_packets_total{port=\"in0\",driver=\"net_pcap\"} 10"));
        // Every line is a comment or `name{labels} value`.
        assert!(text.lines().all(|l| l.starts_with('#') || l.split(' ').count() == 2), "{text}");
    }
}
