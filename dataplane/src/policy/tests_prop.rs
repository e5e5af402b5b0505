//! Property test: on random specs and queries, `classify` equals `reference::evaluate`
//! (the whole verdict: allow, log and the deciding stage).
//!
//! Specs come from a seeded generator rather than composed strategies: it keeps the
//! whole alphabet (labels, prefixes, ports) small and shared between the spec and the
//! queries, so selectors, nested prefixes, excepts and port ranges actually hit. A
//! failure prints the seed; the spec it generates is deterministic.

use proptest::prelude::*;

use super::tests::labels;
use super::*;

/// splitmix64.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const NAMESPACES: [&str; 4] = ["a", "b", "c", "unlisted"];
const KEYS: [&str; 3] = ["app", "role", "tier"];
const VALUES: [&str; 2] = ["x", "y"];
const PORT_NAMES: [&str; 3] = ["http", "dns", "grpc"];
const PORTS: [u16; 6] = [0, 53, 79, 80, 81, 8080];
const PROTOS: [u8; 5] = [PROTO_TCP, PROTO_UDP, PROTO_SCTP, 1, 58];

fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    u128::from(u32::from_be_bytes([a, b, c, d]))
}

const DB8: u128 = 0x2001_0db8 << 96;

fn prefixes() -> Vec<IpNet> {
    vec![
        IpNet::v4(0, 0),
        IpNet { addr: v4(10, 0, 0, 0), len: 8, v6: false },
        IpNet { addr: v4(10, 0, 0, 0), len: 24, v6: false },
        IpNet { addr: v4(10, 0, 0, 0), len: 30, v6: false },
        IpNet { addr: v4(10, 0, 0, 4), len: 30, v6: false },
        IpNet { addr: v4(10, 0, 0, 2), len: 31, v6: false },
        IpNet { addr: v4(10, 0, 0, 5), len: 32, v6: false },
        IpNet { addr: v4(10, 0, 1, 0), len: 24, v6: false },
        IpNet { addr: v4(192, 168, 0, 0), len: 16, v6: false },
        IpNet::v6(0, 0),
        IpNet::v6(DB8, 32),
        IpNet::v6(DB8, 126),
        IpNet::v6(DB8 | 2, 127),
        IpNet::v6(DB8 | 1, 128),
    ]
}

fn addresses(v6: bool) -> Vec<u128> {
    if v6 {
        vec![0, 1, DB8, DB8 | 1, DB8 | 2, DB8 | 3, DB8 | 4, DB8 | (1 << 40), u128::MAX]
    } else {
        let mut v: Vec<u128> = (0..8).map(|i| v4(10, 0, 0, i)).collect();
        v.extend([v4(10, 0, 1, 7), v4(10, 9, 9, 9), v4(192, 168, 3, 4), 0, u128::from(u32::MAX)]);
        v
    }
}

fn gen_labels(g: &mut Gen) -> Labels {
    let mut l = Labels::new();
    for k in KEYS {
        if g.chance(60) {
            l.insert(k.to_string(), g.pick(&VALUES).to_string());
        }
    }
    l
}

fn gen_selector(g: &mut Gen, ns_labels: bool) -> LabelSelector {
    let mut s = LabelSelector::default();
    for _ in 0..g.below(3) {
        if ns_labels {
            let (k, v) = g.pick(&[("env", "x"), ("env", "y"), (NAMESPACE_NAME_LABEL, "a"), (NAMESPACE_NAME_LABEL, "unlisted")]);
            s.match_labels.insert(k.into(), v.into());
        } else {
            s.match_labels.insert(g.pick(&KEYS).into(), g.pick(&VALUES).into());
        }
    }
    if g.chance(40) {
        let op = g.pick(&[SelectorOp::In, SelectorOp::NotIn, SelectorOp::Exists, SelectorOp::DoesNotExist]);
        let values = match op {
            SelectorOp::In | SelectorOp::NotIn => (0..1 + g.below(2)).map(|_| g.pick(&VALUES).to_string()).collect(),
            _ => vec![],
        };
        let key = if ns_labels { "env".to_string() } else { g.pick(&KEYS).to_string() };
        s.match_expressions.push(Requirement { key, op, values });
    }
    s
}

fn gen_ip_block(g: &mut Gen) -> IpBlock {
    let all = prefixes();
    let cidr = g.pick(&all);
    let inside: Vec<IpNet> = all.iter().copied().filter(|p| cidr.covers(p)).collect();
    let except = (0..g.below(3)).map(|_| g.pick(&inside)).collect();
    IpBlock { cidr, except }
}

fn gen_peer(g: &mut Gen) -> Peer {
    let mut p = Peer::default();
    match g.below(10) {
        0..=2 => p.pod_selector = Some(gen_selector(g, false)),
        3..=4 => p.namespace_selector = Some(gen_selector(g, true)),
        5..=6 => {
            p.pod_selector = Some(gen_selector(g, false));
            p.namespace_selector = Some(gen_selector(g, true));
        }
        7..=8 => p.ip_block = Some(gen_ip_block(g)),
        _ => {}
    }
    p
}

fn gen_port(g: &mut Gen) -> PolicyPort {
    let proto = g.pick(&PROTOS[..3]);
    let port = match g.below(4) {
        0 => PortSpec::Any,
        1 => PortSpec::Named(g.pick(&PORT_NAMES).into()),
        _ => {
            let (a, b) = (g.pick(&PORTS), g.pick(&PORTS));
            PortSpec::Range(a.min(b), a.max(b))
        }
    };
    PolicyPort { proto, port }
}

fn gen_rule(g: &mut Gen) -> PolicyRule {
    PolicyRule { peers: (0..g.below(3)).map(|_| gen_peer(g)).collect(), ports: (0..g.below(3)).map(|_| gen_port(g)).collect() }
}

fn gen_side(g: &mut Gen) -> RuleSide {
    let all = prefixes();
    RuleSide {
        selector: g.chance(30).then(|| gen_selector(g, false)),
        namespace_selector: g.chance(20).then(|| gen_selector(g, true)),
        nets: (0..if g.chance(50) { 0 } else { 1 + g.below(2) }).map(|_| g.pick(&all)).collect(),
        not_nets: (0..g.below(2)).map(|_| g.pick(&all)).collect(),
    }
}

fn gen_spec(g: &mut Gen, max_global: usize) -> PolicySpec {
    let n_ns = 2 + g.below(2);
    let namespaces = NAMESPACES[..n_ns]
        .iter()
        .map(|n| Namespace { name: n.to_string(), labels: if g.chance(70) { labels(&[("env", g.pick(&["x", "y"]))]) } else { Labels::new() } })
        .collect();
    let endpoints = (0..3 + g.below(6))
        .map(|_| PolicyEndpoint {
            namespace: g.pick(&NAMESPACES).to_string(),
            labels: gen_labels(g),
            named_ports: (0..g.below(3))
                .map(|_| NamedPort { name: g.pick(&PORT_NAMES).into(), proto: g.pick(&PROTOS[..2]), port: g.pick(&PORTS) })
                .collect(),
        })
        .collect();
    let policies = (0..g.below(7))
        .map(|i| {
            let types = match g.below(5) {
                0 => Some(vec![Direction::Ingress]),
                1 => Some(vec![Direction::Egress]),
                2 => Some(vec![Direction::Egress, Direction::Ingress]),
                _ => None,
            };
            NetworkPolicy {
                name: format!("p{i}"),
                namespace: g.pick(&NAMESPACES).to_string(),
                pod_selector: gen_selector(g, false),
                policy_types: types,
                ingress: (0..g.below(3)).map(|_| gen_rule(g)).collect(),
                egress: (0..g.below(3)).map(|_| gen_rule(g)).collect(),
            }
        })
        .collect();
    let global = (0..g.below(max_global + 1))
        .map(|i| GlobalRule {
            name: format!("g{i}"),
            priority: g.below(3 + max_global / 8) as i32,
            action: g.pick(&[GlobalAction::Allow, GlobalAction::Deny, GlobalAction::Log, GlobalAction::Pass]),
            src: gen_side(g),
            dst: gen_side(g),
            protocol: g.chance(40).then(|| g.pick(&PROTOS)),
            dst_ports: (0..g.below(3))
                .map(|_| {
                    let (a, b) = (g.pick(&PORTS), g.pick(&PORTS));
                    (a.min(b), a.max(b))
                })
                .collect(),
        })
        .collect();
    PolicySpec { namespaces, endpoints, policies, global }
}

fn gen_query(g: &mut Gen, n_eps: usize) -> Query {
    let v6 = g.chance(25);
    let addrs = addresses(v6);
    // Mostly endpoints; sometimes outside, sometimes an index past the list.
    let ep = |g: &mut Gen| match g.below(10) {
        0..=1 => None,
        2 => Some((n_eps + g.below(2)) as u32),
        _ => Some(g.below(n_eps) as u32),
    };
    let (src_ep, dst_ep) = (ep(g), ep(g));
    let proto = g.pick(&PROTOS);
    let dport = if matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP) { g.pick(&[53, 79, 80, 81, 8080, 9999]) } else { 0 };
    Query { src_ep, dst_ep, v6, src: g.pick(&addrs), dst: g.pick(&addrs), proto, dport }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn classify_matches_reference(seed in any::<u64>()) {
        let mut g = Gen(seed);
        let spec = gen_spec(&mut g, 6);
        let tables = PolicyTables::compile(&spec).map_err(|e| TestCaseError::fail(format!("compile: {e}")))?;
        prop_assert_eq!(tables.rule_count(), spec.rule_count());
        for _ in 0..60 {
            let q = gen_query(&mut g, spec.endpoints.len());
            let want = reference::evaluate(&spec, &q);
            prop_assert_eq!(tables.classify(&q), want, "seed {} query {:?}\nspec {:#?}", seed, q, spec);
        }
    }

    /// Enough global rules to span several 64-bit words, so the anchored summaries
    /// decide which words are visited.
    #[test]
    fn wide_global_rules_match_reference(seed in any::<u64>()) {
        let mut g = Gen(seed);
        let spec = gen_spec(&mut g, 200);
        let tables = PolicyTables::compile(&spec).map_err(|e| TestCaseError::fail(format!("compile: {e}")))?;
        for _ in 0..60 {
            let q = gen_query(&mut g, spec.endpoints.len());
            let want = reference::evaluate(&spec, &q);
            prop_assert_eq!(tables.classify(&q), want, "seed {} query {:?}", seed, q);
        }
    }
}
