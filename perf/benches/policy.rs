//! Policy classification: `PolicyTables::classify` ns/query with 10, 1k and 10k
//! NetworkPolicy rules and with 10, 1k and 10k global rules, over 4,096 pre-generated
//! queries per iteration (independent, as in a burst of new flows), plus compile time
//! for 10k rules. Compile times, table sizes, identity counts and how many queries were
//! allowed go to stderr. Results are in the `sluice_dataplane::policy` module docs.
//!
//! The cluster (fixed seeds): 1,200 endpoints in 10 namespaces; endpoint i is in `ns{i %
//! 10}` with labels `app=svc{i % 600}`, `role=client{(i + 10) % 600}` and a named port
//! `http` (TCP 8000 + i % 7). Endpoints i and i + 600 share namespace and labels but
//! not the named port's number, so there are 1,200 identities.
//!
//! * `netpol/N`: N policies; policy k lives in `ns{k % 10}`, selects `app=svc{k % 600}`
//!   and has one ingress rule allowing `role=client{k % 600}` (same namespace) on TCP
//!   port 1000 + k / 600; every 10th rule also allows an ipBlock `10.{k / 256}.{k %
//!   256}.0/24` except a /28, every 7th adds the named port `http`. Queries: a random
//!   policy's selected pod as destination; source its allowed client (50%), a random
//!   endpoint (30%) or an outside address, half of them inside that policy's block;
//!   port the policy's (50%) or random.
//! * `global/N`: N rules in 100 priorities, actions 45% Deny, 45% Allow, 10% Log; each
//!   with one or two of: a source /16–/24 in 10/8, a destination /24 with a not_net /28,
//!   a protocol and destination port range, a source `app=svc…` selector. A last
//!   catch-all Allow at the lowest priority, so every query ends in a global verdict
//!   (the walk sees every candidate word). Queries: random endpoints or 10/8 addresses,
//!   TCP/UDP/ICMP, random ports.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_dataplane::policy::{
    GlobalAction, GlobalRule, IpBlock, IpNet, Labels, LabelSelector, NamedPort, NetworkPolicy, Peer, PolicyEndpoint,
    PolicyPort, PolicyRule, PolicySpec, PolicyTables, PortSpec, Query, RuleSide, PROTO_TCP, PROTO_UDP,
};

const SIZES: [(usize, &str); 3] = [(10, "10"), (1_000, "1k"), (10_000, "10k")];
/// Queries per iteration.
const QUERIES: usize = 4096;
const ENDPOINTS: usize = 1200;
const SERVICES: usize = 600;

/// splitmix64: a few lines, good enough for test data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn one(k: &str, v: String) -> LabelSelector {
    LabelSelector { match_labels: Labels::from([(k.to_string(), v)]), match_expressions: vec![] }
}

/// Endpoint i's address: 10.200.i/16 host part.
fn ep_addr(i: usize) -> u128 {
    u128::from(0x0ac8_0000u32 | i as u32)
}

fn endpoints() -> Vec<PolicyEndpoint> {
    (0..ENDPOINTS)
        .map(|i| PolicyEndpoint {
            namespace: format!("ns{}", i % 10),
            labels: Labels::from([
                ("app".to_string(), format!("svc{}", i % SERVICES)),
                ("role".to_string(), format!("client{}", (i + 10) % SERVICES)),
            ]),
            named_ports: vec![NamedPort { name: "http".into(), proto: PROTO_TCP, port: 8000 + (i % 7) as u16 }],
        })
        .collect()
}

fn block_of(k: usize) -> IpNet {
    IpNet::v4((10 << 24) | ((k as u32 / 256) << 16) | ((k as u32 % 256) << 8), 24)
}

fn netpol_spec(n: usize) -> PolicySpec {
    let policies = (0..n)
        .map(|k| {
            let mut peers = vec![Peer { pod_selector: Some(one("role", format!("client{}", k % SERVICES))), ..Peer::default() }];
            if k % 10 == 0 {
                let cidr = block_of(k);
                let except = IpNet::v4(cidr.addr as u32 | 0x10, 28);
                peers.push(Peer { ip_block: Some(IpBlock { cidr, except: vec![except] }), ..Peer::default() });
            }
            let mut ports = vec![PolicyPort { proto: PROTO_TCP, port: PortSpec::Range(1000 + (k / SERVICES) as u16, 1000 + (k / SERVICES) as u16) }];
            if k % 7 == 0 {
                ports.push(PolicyPort { proto: PROTO_TCP, port: PortSpec::Named("http".into()) });
            }
            NetworkPolicy {
                name: format!("allow-{k}"),
                namespace: format!("ns{}", k % 10),
                pod_selector: one("app", format!("svc{}", k % SERVICES)),
                policy_types: None,
                ingress: vec![PolicyRule { peers, ports }],
                egress: vec![],
            }
        })
        .collect();
    PolicySpec { namespaces: vec![], endpoints: endpoints(), policies, global: vec![] }
}

fn netpol_queries(n: usize, rng: &mut Rng) -> Vec<Query> {
    (0..QUERIES)
        .map(|_| {
            let k = rng.below(n);
            let svc = k % SERVICES;
            let dst = svc + SERVICES * rng.below(2);
            let client = (svc + SERVICES - 10) % SERVICES + SERVICES * rng.below(2);
            let (src_ep, src) = match rng.below(10) {
                0..=4 => (Some(client as u32), ep_addr(client)),
                5..=7 => {
                    let e = rng.below(ENDPOINTS);
                    (Some(e as u32), ep_addr(e))
                }
                _ => (None, block_of(k).addr + rng.below(256) as u128 + if rng.below(2) == 0 { 0 } else { 1 << 24 }),
            };
            let dport = if rng.below(2) == 0 { 1000 + (k / SERVICES) as u16 } else { rng.below(10_000) as u16 };
            Query { src_ep, dst_ep: Some(dst as u32), v6: false, src, dst: ep_addr(dst), proto: PROTO_TCP, dport }
        })
        .collect()
}

fn global_spec(n: usize, rng: &mut Rng) -> PolicySpec {
    let mut global: Vec<GlobalRule> = (0..n)
        .map(|j| {
            let action = match rng.below(20) {
                0..=8 => GlobalAction::Deny,
                9..=17 => GlobalAction::Allow,
                _ => GlobalAction::Log,
            };
            let mut r = GlobalRule {
                name: format!("g{j}"),
                priority: rng.below(100) as i32,
                action,
                src: RuleSide::default(),
                dst: RuleSide::default(),
                protocol: None,
                dst_ports: vec![],
            };
            for _ in 0..1 + rng.below(2) {
                match rng.below(4) {
                    0 => {
                        let len = 16 + rng.below(9) as u8;
                        let addr = ((10u32 << 24) | (rng.next() as u32 & 0x00ff_ffff)) & !(u32::MAX >> len);
                        r.src.nets.push(IpNet::v4(addr, len));
                    }
                    1 => {
                        let addr = ((10u32 << 24) | (rng.next() as u32 & 0x00ff_ffff)) & !0xff;
                        r.dst.nets.push(IpNet::v4(addr, 24));
                        r.dst.not_nets.push(IpNet::v4(addr | 0x10, 28));
                    }
                    2 => {
                        r.protocol = Some(if rng.below(2) == 0 { PROTO_TCP } else { PROTO_UDP });
                        let lo = rng.below(60_000) as u16;
                        r.dst_ports.push((lo, lo + rng.below(100) as u16));
                    }
                    _ => r.src.selector = Some(one("app", format!("svc{}", rng.below(SERVICES)))),
                }
            }
            r
        })
        .collect();
    global.push(GlobalRule {
        name: "catch-all".into(),
        priority: 1000,
        action: GlobalAction::Allow,
        src: RuleSide::default(),
        dst: RuleSide::default(),
        protocol: None,
        dst_ports: vec![],
    });
    PolicySpec { namespaces: vec![], endpoints: endpoints(), policies: vec![], global }
}

fn global_queries(rng: &mut Rng) -> Vec<Query> {
    (0..QUERIES)
        .map(|_| {
            let side = |rng: &mut Rng| {
                if rng.below(2) == 0 {
                    let e = rng.below(ENDPOINTS);
                    (Some(e as u32), ep_addr(e))
                } else {
                    (None, u128::from((10u32 << 24) | (rng.next() as u32 & 0x00ff_ffff)))
                }
            };
            let (src_ep, src) = side(rng);
            let (dst_ep, dst) = side(rng);
            let (proto, dport) = match rng.below(10) {
                0..=5 => (PROTO_TCP, rng.below(65_536) as u16),
                6..=8 => (PROTO_UDP, rng.below(65_536) as u16),
                _ => (1, 0),
            };
            Query { src_ep, dst_ep, v6: false, src, dst, proto, dport }
        })
        .collect()
}

fn run(c: &mut Criterion, group: &str, build: impl Fn(usize, &mut Rng) -> (PolicySpec, Vec<Query>)) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(QUERIES as u64));
    for (n, name) in SIZES {
        let mut rng = Rng(0x9011_c700 + n as u64);
        let (spec, queries) = build(n, &mut rng);
        let t = Instant::now();
        let tables = PolicyTables::compile(&spec).expect("valid spec");
        eprintln!(
            "{group} {name}: {} rules, {} identities, compile {:.1} ms, {:.2} MiB",
            tables.rule_count(),
            tables.identity_count(),
            t.elapsed().as_secs_f64() * 1e3,
            tables.memory_bytes() as f64 / (1024.0 * 1024.0)
        );
        let allowed = queries.iter().filter(|q| tables.classify(q).allow).count();
        eprintln!("{group} {name}: {allowed} of {} queries allowed", queries.len());
        g.bench_function(BenchmarkId::new("classify", name), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for q in black_box(&queries) {
                    acc = acc.wrapping_add(u32::from(tables.classify(q).allow));
                }
                acc
            })
        });
    }
    g.finish();
}

fn netpol(c: &mut Criterion) {
    run(c, "policy_netpol", |n, rng| (netpol_spec(n), netpol_queries(n, rng)));
}

fn global(c: &mut Criterion) {
    run(c, "policy_global", |n, rng| (global_spec(n, rng), global_queries(rng)));
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_compile");
    g.sample_size(10);
    let netpol = netpol_spec(10_000);
    g.bench_function("netpol_10k", |b| b.iter(|| PolicyTables::compile(black_box(&netpol)).expect("valid")));
    let global = global_spec(10_000, &mut Rng(1));
    g.bench_function("global_10k", |b| b.iter(|| PolicyTables::compile(black_box(&global)).expect("valid")));
    g.finish();
}

criterion_group!(benches, netpol, global, compile);
criterion_main!(benches);
