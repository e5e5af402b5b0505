//! Conformance: table-driven cases from the K8s NetworkPolicy docs and the global-rule
//! semantics, each checked against both `PolicyTables::classify` and
//! `reference::evaluate`. The property test is in `tests_prop.rs`.

use super::*;

pub(super) fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sel(kv: &[(&str, &str)]) -> LabelSelector {
    LabelSelector { match_labels: labels(kv), match_expressions: vec![] }
}

fn any() -> LabelSelector {
    LabelSelector::default()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    u128::from(u32::from_be_bytes([a, b, c, d]))
}

fn net4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet { addr: v4(a, b, c, d), len, v6: false }
}

const WEB: u32 = 0;
const DB: u32 = 1;
const CLIENT: u32 = 2;
const DEV_CLIENT: u32 = 3;
const DEV_WEB: u32 = 4;

/// Namespaces prod (env=prod) and dev (env=dev); endpoint i has address 10.0.0.(i+1).
fn world() -> PolicySpec {
    let ep = |ns: &str, kv: &[(&str, &str)], named: &[(&str, u16)]| PolicyEndpoint {
        namespace: ns.into(),
        labels: labels(kv),
        named_ports: named.iter().map(|&(n, p)| NamedPort { name: n.into(), proto: PROTO_TCP, port: p }).collect(),
    };
    PolicySpec {
        namespaces: vec![
            Namespace { name: "prod".into(), labels: labels(&[("env", "prod")]) },
            Namespace { name: "dev".into(), labels: labels(&[("env", "dev")]) },
        ],
        endpoints: vec![
            ep("prod", &[("app", "web")], &[("http", 8080)]),
            ep("prod", &[("app", "db")], &[]),
            ep("prod", &[("role", "client")], &[]),
            ep("dev", &[("role", "client")], &[]),
            ep("dev", &[("app", "web")], &[("http", 9090)]),
        ],
        policies: vec![],
        global: vec![],
    }
}

fn addr(ep: u32) -> u128 {
    v4(10, 0, 0, ep as u8 + 1)
}

/// Endpoint to endpoint.
fn q(src: u32, dst: u32, proto: u8, dport: u16) -> Query {
    Query { src_ep: Some(src), dst_ep: Some(dst), v6: false, src: addr(src), dst: addr(dst), proto, dport }
}

/// From outside (not an endpoint) to an endpoint.
fn q_from(src: u128, dst: u32, proto: u8, dport: u16) -> Query {
    Query { src_ep: None, dst_ep: Some(dst), v6: false, src, dst: addr(dst), proto, dport }
}

/// From an endpoint to outside.
fn q_to(src: u32, dst: u128, proto: u8, dport: u16) -> Query {
    Query { src_ep: Some(src), dst_ep: None, v6: false, src: addr(src), dst, proto, dport }
}

fn pol(ns: &str, pod: LabelSelector, types: Option<&[Direction]>, ingress: Vec<PolicyRule>, egress: Vec<PolicyRule>) -> NetworkPolicy {
    NetworkPolicy {
        name: "p".into(),
        namespace: ns.into(),
        pod_selector: pod,
        policy_types: types.map(|t| t.to_vec()),
        ingress,
        egress,
    }
}

fn rule(peers: Vec<Peer>, ports: Vec<PolicyPort>) -> PolicyRule {
    PolicyRule { peers, ports }
}

fn pods(s: LabelSelector) -> Peer {
    Peer { pod_selector: Some(s), ..Peer::default() }
}

fn nss(s: LabelSelector) -> Peer {
    Peer { namespace_selector: Some(s), ..Peer::default() }
}

fn block(cidr: IpNet, except: Vec<IpNet>) -> Peer {
    Peer { ip_block: Some(IpBlock { cidr, except }), ..Peer::default() }
}

fn port(proto: u8, p: u16) -> PolicyPort {
    PolicyPort { proto, port: PortSpec::Range(p, p) }
}

fn grule(priority: i32, action: GlobalAction) -> GlobalRule {
    GlobalRule {
        name: "g".into(),
        priority,
        action,
        src: RuleSide::default(),
        dst: RuleSide::default(),
        protocol: None,
        dst_ports: vec![],
    }
}

const ICMP: u8 = 1;
const ALLOW: (bool, VerdictBy) = (true, VerdictBy::Default);
const NP: (bool, VerdictBy) = (true, VerdictBy::NetworkPolicy);
const IN_DENY: (bool, VerdictBy) = (false, VerdictBy::IngressDenied);
const EG_DENY: (bool, VerdictBy) = (false, VerdictBy::EgressDenied);

/// Compiles `spec` and checks every `(query, (allow, by), log)` against both the
/// classifier and the reference.
fn check(name: &str, spec: &PolicySpec, cases: &[(Query, (bool, VerdictBy), bool)]) {
    let tables = PolicyTables::compile(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (i, (query, (allow, by), log)) in cases.iter().enumerate() {
        let want = Verdict { allow: *allow, log: *log, by: *by };
        assert_eq!(reference::evaluate(spec, query), want, "{name} case {i} (reference): {query:?}");
        assert_eq!(tables.classify(query), want, "{name} case {i} (classify): {query:?}");
    }
}

fn with_policies(policies: Vec<NetworkPolicy>) -> PolicySpec {
    PolicySpec { policies, ..world() }
}

fn with_global(global: Vec<GlobalRule>, policies: Vec<NetworkPolicy>) -> PolicySpec {
    PolicySpec { global, policies, ..world() }
}

#[test]
fn default_allow_without_policy() {
    let spec = world();
    assert!(PolicyTables::compile(&spec).unwrap().is_empty());
    check("no policy", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), ALLOW, false), (q_from(v4(8, 8, 8, 8), DB, ICMP, 0), ALLOW, false)]);
}

#[test]
fn default_deny_ingress_and_other_namespace() {
    let spec = with_policies(vec![pol("prod", any(), Some(&[Direction::Ingress]), vec![], vec![])]);
    check(
        "default deny ingress",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false),
            (q_from(v4(8, 8, 8, 8), WEB, ICMP, 0), IN_DENY, false),
            // The policy lives in prod: dev pods are not isolated.
            (q(DEV_CLIENT, DEV_WEB, PROTO_TCP, 80), ALLOW, false),
            // Egress from prod pods is not isolated.
            (q(CLIENT, DEV_WEB, PROTO_TCP, 80), ALLOW, false),
        ],
    );
}

#[test]
fn allow_all_ingress() {
    let spec = with_policies(vec![pol("prod", any(), None, vec![PolicyRule::default()], vec![])]);
    check("allow all ingress", &spec, &[(q(DEV_CLIENT, WEB, ICMP, 0), NP, false), (q_from(v4(1, 2, 3, 4), DB, PROTO_UDP, 53), NP, false)]);
}

#[test]
fn deny_all_egress() {
    let spec = with_policies(vec![pol("prod", any(), Some(&[Direction::Egress]), vec![], vec![])]);
    check(
        "deny all egress",
        &spec,
        &[
            (q_to(CLIENT, v4(8, 8, 8, 8), PROTO_UDP, 53), EG_DENY, false),
            (q(CLIENT, WEB, PROTO_TCP, 80), EG_DENY, false),
            (q(DEV_CLIENT, WEB, PROTO_TCP, 80), ALLOW, false),
        ],
    );
}

#[test]
fn namespace_and_pod_selector_and_vs_or() {
    // One peer with both selectors: pods labelled role=client in namespaces env=dev.
    let both = Peer { namespace_selector: Some(sel(&[("env", "dev")])), pod_selector: Some(sel(&[("role", "client")])), ip_block: None };
    let spec = with_policies(vec![pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![both], vec![])], vec![])]);
    check(
        "AND",
        &spec,
        &[
            (q(DEV_CLIENT, WEB, PROTO_TCP, 80), NP, false),
            (q(CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false),
            (q(DEV_WEB, WEB, PROTO_TCP, 80), IN_DENY, false),
            // db is not selected by the policy.
            (q(DEV_WEB, DB, PROTO_TCP, 80), ALLOW, false),
        ],
    );
    // Two peers: namespaces env=dev (any pod) OR role=client pods of prod.
    let two = vec![nss(sel(&[("env", "dev")])), pods(sel(&[("role", "client")]))];
    let spec = with_policies(vec![pol("prod", sel(&[("app", "web")]), None, vec![rule(two, vec![])], vec![])]);
    check(
        "OR",
        &spec,
        &[
            (q(DEV_CLIENT, WEB, PROTO_TCP, 80), NP, false),
            (q(CLIENT, WEB, PROTO_TCP, 80), NP, false),
            (q(DEV_WEB, WEB, PROTO_TCP, 80), NP, false),
            (q(DB, WEB, PROTO_TCP, 80), IN_DENY, false),
        ],
    );
}

#[test]
fn pod_selector_peer_is_limited_to_the_policy_namespace() {
    let spec = with_policies(vec![pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![pods(sel(&[("role", "client")]))], vec![])], vec![])]);
    check("pod peer", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), NP, false), (q(DEV_CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false)]);
}

#[test]
fn namespace_selector_by_metadata_name() {
    let peer = nss(sel(&[(NAMESPACE_NAME_LABEL, "dev")]));
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![peer], vec![])], vec![])]);
    check("metadata.name", &spec, &[(q(DEV_CLIENT, DB, PROTO_TCP, 80), NP, false), (q(CLIENT, DB, PROTO_TCP, 80), IN_DENY, false)]);
}

#[test]
fn ip_block_with_except() {
    let peer = block(net4(192, 168, 0, 0, 16), vec![net4(192, 168, 1, 0, 24)]);
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![peer], vec![])], vec![])]);
    check(
        "ipBlock",
        &spec,
        &[
            (q_from(v4(192, 168, 2, 1), WEB, PROTO_TCP, 80), NP, false),
            (q_from(v4(192, 168, 0, 0), WEB, PROTO_TCP, 80), NP, false),
            (q_from(v4(192, 168, 255, 255), WEB, PROTO_TCP, 80), NP, false),
            (q_from(v4(192, 168, 1, 5), WEB, PROTO_TCP, 80), IN_DENY, false),
            (q_from(v4(192, 168, 1, 255), WEB, PROTO_TCP, 80), IN_DENY, false),
            (q_from(v4(192, 169, 0, 0), WEB, PROTO_TCP, 80), IN_DENY, false),
            (q_from(v4(10, 1, 1, 1), WEB, PROTO_TCP, 80), IN_DENY, false),
            // An endpoint source is matched by its address too.
            (q(CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false),
        ],
    );
}

#[test]
fn end_port_range_edges() {
    let ports = vec![PolicyPort { proto: PROTO_TCP, port: PortSpec::Range(8000, 8080) }];
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![], ports)], vec![])]);
    check(
        "endPort",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 7999), IN_DENY, false),
            (q(CLIENT, WEB, PROTO_TCP, 8000), NP, false),
            (q(CLIENT, WEB, PROTO_TCP, 8080), NP, false),
            (q(CLIENT, WEB, PROTO_TCP, 8081), IN_DENY, false),
        ],
    );
}

#[test]
fn protocol_mismatch_and_icmp() {
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![], vec![port(PROTO_UDP, 53)])], vec![])]);
    check(
        "proto",
        &spec,
        &[
            (q(CLIENT, DB, PROTO_UDP, 53), NP, false),
            (q(CLIENT, DB, PROTO_TCP, 53), IN_DENY, false),
            (q(CLIENT, DB, PROTO_SCTP, 53), IN_DENY, false),
            (q(CLIENT, DB, ICMP, 0), IN_DENY, false),
        ],
    );
    // A rule listing ports never matches ICMP; one without ports matches everything.
    let any_tcp = PolicyPort { proto: PROTO_TCP, port: PortSpec::Any };
    let spec = with_policies(vec![
        pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![], vec![any_tcp])], vec![]),
        pol("prod", sel(&[("app", "db")]), None, vec![rule(vec![pods(any())], vec![])], vec![]),
    ]);
    check(
        "icmp",
        &spec,
        &[
            (q(CLIENT, WEB, ICMP, 0), IN_DENY, false),
            (q(CLIENT, WEB, PROTO_TCP, 1), NP, false),
            (q(CLIENT, DB, ICMP, 0), NP, false),
            (q(CLIENT, DB, 47, 0), NP, false),
        ],
    );
}

#[test]
fn named_ports_resolve_against_the_destination() {
    let http = PolicyPort { proto: PROTO_TCP, port: PortSpec::Named("http".into()) };
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![], vec![http.clone()])], vec![])]);
    check(
        "named ingress",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 8080), NP, false),
            (q(CLIENT, WEB, PROTO_TCP, 9090), IN_DENY, false),
            (q(CLIENT, WEB, PROTO_UDP, 8080), IN_DENY, false),
            // db has no port named http.
            (q(CLIENT, DB, PROTO_TCP, 8080), IN_DENY, false),
        ],
    );
    // Egress: the name resolves against the peer (the destination), per destination.
    let spec = with_policies(vec![pol("prod", sel(&[("role", "client")]), Some(&[Direction::Egress]), vec![], vec![rule(vec![], vec![http])])]);
    check(
        "named egress",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 8080), NP, false),
            (q(CLIENT, DEV_WEB, PROTO_TCP, 9090), NP, false),
            (q(CLIENT, DEV_WEB, PROTO_TCP, 8080), EG_DENY, false),
            // Not an endpoint: nothing to resolve the name against.
            (q_to(CLIENT, v4(8, 8, 8, 8), PROTO_TCP, 8080), EG_DENY, false),
        ],
    );
    let unknown = PolicyPort { proto: PROTO_TCP, port: PortSpec::Named("grpc".into()) };
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![], vec![unknown])], vec![])]);
    check("absent name", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 8080), IN_DENY, false)]);
}

#[test]
fn egress_and_ingress_isolation_both_needed() {
    let egress = pol("prod", sel(&[("role", "client")]), Some(&[Direction::Egress]), vec![], vec![rule(vec![pods(sel(&[("app", "web")]))], vec![port(PROTO_TCP, 80)])]);
    let ingress = pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![pods(sel(&[("role", "client")]))], vec![port(PROTO_TCP, 443)])], vec![]);
    let spec = with_policies(vec![egress.clone(), ingress.clone()]);
    check("both", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false), (q(CLIENT, WEB, PROTO_TCP, 443), EG_DENY, false)]);
    let ingress80 = pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![], vec![port(PROTO_TCP, 80)])], vec![]);
    let spec = with_policies(vec![egress, ingress, ingress80]);
    check("both allow", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), NP, false), (q(CLIENT, WEB, PROTO_TCP, 443), EG_DENY, false)]);
}

#[test]
fn policy_types_defaulting() {
    let egress_rules = vec![rule(vec![pods(sel(&[("app", "db")]))], vec![])];
    // No policyTypes and egress rules: Ingress + Egress.
    let spec = with_policies(vec![pol("prod", sel(&[("app", "web")]), None, vec![], egress_rules.clone())]);
    check(
        "defaulted",
        &spec,
        &[(q(CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false), (q(WEB, DB, PROTO_TCP, 5432), NP, false), (q(WEB, CLIENT, PROTO_TCP, 80), EG_DENY, false)],
    );
    // Explicit Egress only: ingress stays open (ingress rules, if any, are ignored).
    let ignored = vec![rule(vec![], vec![port(PROTO_TCP, 1)])];
    let spec = with_policies(vec![pol("prod", sel(&[("app", "web")]), Some(&[Direction::Egress]), ignored, egress_rules)]);
    check(
        "egress only",
        &spec,
        &[(q(CLIENT, WEB, PROTO_TCP, 80), ALLOW, false), (q(WEB, DB, PROTO_TCP, 5432), NP, false), (q(WEB, CLIENT, PROTO_TCP, 80), EG_DENY, false)],
    );
}

#[test]
fn allows_from_two_policies_add_up() {
    let spec = with_policies(vec![
        pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![pods(sel(&[("role", "client")]))], vec![port(PROTO_TCP, 80)])], vec![]),
        pol("prod", sel(&[("app", "web")]), None, vec![rule(vec![pods(sel(&[("app", "db")]))], vec![port(PROTO_TCP, 5432)])], vec![]),
    ]);
    check(
        "additive",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 80), NP, false),
            (q(DB, WEB, PROTO_TCP, 5432), NP, false),
            (q(CLIENT, WEB, PROTO_TCP, 5432), IN_DENY, false),
            (q(DB, WEB, PROTO_TCP, 80), IN_DENY, false),
        ],
    );
}

#[test]
fn outside_traffic_matches_only_ip_blocks() {
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![pods(any()), nss(any())], vec![])], vec![])]);
    // Same address as CLIENT, but not an endpoint: selectors cannot match it.
    check("selectors", &spec, &[(q_from(addr(CLIENT), WEB, PROTO_TCP, 80), IN_DENY, false), (q(CLIENT, WEB, PROTO_TCP, 80), NP, false)]);
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![block(net4(10, 0, 0, 0, 8), vec![])], vec![])], vec![])]);
    check("block", &spec, &[(q_from(addr(CLIENT), WEB, PROTO_TCP, 80), NP, false), (q_from(v4(11, 0, 0, 1), WEB, PROTO_TCP, 80), IN_DENY, false)]);
}

#[test]
fn global_deny_before_network_policy_allow() {
    let mut deny = grule(0, GlobalAction::Deny);
    deny.dst.nets = vec![net4(10, 0, 0, 1, 32)];
    deny.protocol = Some(PROTO_TCP);
    deny.dst_ports = vec![(22, 22)];
    let spec = with_global(vec![deny], vec![pol("prod", any(), None, vec![PolicyRule::default()], vec![])]);
    check(
        "global deny",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 22), (false, VerdictBy::GlobalDeny(0)), false),
            (q(CLIENT, WEB, PROTO_TCP, 23), NP, false),
            (q(CLIENT, WEB, PROTO_UDP, 22), NP, false),
            (q(CLIENT, DB, PROTO_TCP, 22), NP, false),
        ],
    );
}

#[test]
fn global_allow_bypasses_network_policy_deny() {
    let mut allow = grule(0, GlobalAction::Allow);
    allow.src.selector = Some(sel(&[("role", "client")]));
    allow.src.namespace_selector = Some(sel(&[("env", "prod")]));
    let spec = with_global(vec![allow], vec![pol("prod", any(), Some(&[Direction::Ingress]), vec![], vec![])]);
    check(
        "global allow",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 80), (true, VerdictBy::GlobalAllow(0)), false),
            (q(DEV_CLIENT, WEB, PROTO_TCP, 80), IN_DENY, false),
            (q_from(addr(CLIENT), WEB, PROTO_TCP, 80), IN_DENY, false),
        ],
    );
}

#[test]
fn global_log_continues_and_pass_stops() {
    let mut deny_udp = grule(1, GlobalAction::Deny);
    deny_udp.protocol = Some(PROTO_UDP);
    let spec = with_global(vec![grule(0, GlobalAction::Log), deny_udp], vec![]);
    check(
        "log",
        &spec,
        &[(q(CLIENT, WEB, PROTO_UDP, 53), (false, VerdictBy::GlobalDeny(1)), true), (q(CLIENT, WEB, PROTO_TCP, 53), ALLOW, true)],
    );
    let mut pass = grule(0, GlobalAction::Pass);
    pass.src.namespace_selector = Some(sel(&[("env", "dev")]));
    let mut log_dev = grule(-1, GlobalAction::Log);
    log_dev.src.nets = vec![net4(10, 0, 0, 4, 32)];
    let spec = with_global(vec![pass, grule(0, GlobalAction::Deny), log_dev], vec![pol("prod", sel(&[("app", "db")]), None, vec![], vec![])]);
    check(
        "pass",
        &spec,
        &[
            (q(DEV_CLIENT, WEB, PROTO_TCP, 80), ALLOW, true),
            (q(DEV_CLIENT, DB, PROTO_TCP, 80), IN_DENY, true),
            (q(DEV_WEB, WEB, PROTO_TCP, 80), ALLOW, false),
            (q(CLIENT, WEB, PROTO_TCP, 80), (false, VerdictBy::GlobalDeny(1)), false),
        ],
    );
}

#[test]
fn global_priority_then_list_order() {
    let spec = with_global(vec![grule(10, GlobalAction::Deny), grule(5, GlobalAction::Allow)], vec![]);
    check("priority", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), (true, VerdictBy::GlobalAllow(1)), false)]);
    let spec = with_global(vec![grule(3, GlobalAction::Allow), grule(3, GlobalAction::Deny)], vec![]);
    check("list order", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), (true, VerdictBy::GlobalAllow(0)), false)]);
    let spec = with_global(vec![grule(3, GlobalAction::Deny), grule(3, GlobalAction::Allow)], vec![]);
    check("list order 2", &spec, &[(q(CLIENT, WEB, PROTO_TCP, 80), (false, VerdictBy::GlobalDeny(0)), false)]);
}

#[test]
fn global_nets_and_not_nets() {
    let mut deny = grule(0, GlobalAction::Deny);
    deny.src.nets = vec![net4(10, 0, 0, 0, 8)];
    deny.src.not_nets = vec![net4(10, 0, 0, 3, 32)];
    let spec = with_global(vec![deny], vec![]);
    check(
        "nets",
        &spec,
        &[
            (q(WEB, DB, PROTO_TCP, 80), (false, VerdictBy::GlobalDeny(0)), false),
            (q(CLIENT, DB, PROTO_TCP, 80), ALLOW, false),
            (q_from(v4(11, 0, 0, 1), DB, PROTO_TCP, 80), ALLOW, false),
        ],
    );
}

#[test]
fn global_v4_nets_never_match_v6() {
    let mut deny = grule(0, GlobalAction::Deny);
    deny.dst.nets = vec![net4(0, 0, 0, 0, 0)];
    let mut allow = grule(1, GlobalAction::Allow);
    allow.dst.not_nets = vec![net4(0, 0, 0, 0, 0)];
    let spec = with_global(vec![deny, allow], vec![]);
    let v6q = Query { src_ep: None, dst_ep: None, v6: true, src: 1, dst: 0x2001_0db8 << 96, proto: PROTO_TCP, dport: 80 };
    check(
        "v4 vs v6",
        &spec,
        &[(v6q, (true, VerdictBy::GlobalAllow(1)), false), (q(CLIENT, WEB, PROTO_TCP, 80), (false, VerdictBy::GlobalDeny(0)), false)],
    );
}

#[test]
fn global_ports_need_a_port_protocol_and_selectors_an_endpoint() {
    let mut deny_ports = grule(0, GlobalAction::Deny);
    deny_ports.dst_ports = vec![(0, u16::MAX)];
    let mut deny_eps = grule(1, GlobalAction::Deny);
    deny_eps.src.selector = Some(any());
    let spec = with_global(vec![deny_ports, deny_eps], vec![]);
    check(
        "ports/selectors",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_SCTP, 9), (false, VerdictBy::GlobalDeny(0)), false),
            (q(CLIENT, WEB, ICMP, 0), (false, VerdictBy::GlobalDeny(1)), false),
            (q_from(v4(1, 1, 1, 1), WEB, ICMP, 0), ALLOW, false),
        ],
    );
}

#[test]
fn many_global_rules_span_words() {
    // 200 rules over four 64-bit words; only the last one matches.
    let mut global: Vec<GlobalRule> = (0..199)
        .map(|i| {
            let mut r = grule(i, GlobalAction::Deny);
            r.dst_ports = vec![(i as u16 + 1000, i as u16 + 1000)];
            r
        })
        .collect();
    global.push(grule(500, GlobalAction::Allow));
    let spec = with_global(global, vec![]);
    check(
        "wide",
        &spec,
        &[
            (q(CLIENT, WEB, PROTO_TCP, 80), (true, VerdictBy::GlobalAllow(199)), false),
            (q(CLIENT, WEB, PROTO_TCP, 1150), (false, VerdictBy::GlobalDeny(150)), false),
        ],
    );
}

#[test]
fn out_of_range_endpoint_is_not_an_endpoint() {
    let spec = with_policies(vec![pol("prod", any(), None, vec![rule(vec![block(net4(10, 0, 0, 0, 8), vec![])], vec![])], vec![])]);
    let mut query = q_from(addr(CLIENT), WEB, PROTO_TCP, 80);
    query.src_ep = Some(1_000_000);
    check("oob", &spec, &[(query, NP, false)]);
}

#[test]
fn selectors_and_types() {
    let l = labels(&[("app", "web"), ("tier", "fe")]);
    let req = |key: &str, op, values: &[&str]| Requirement { key: key.into(), op, values: values.iter().map(|v| v.to_string()).collect() };
    let expr = |r: Requirement| LabelSelector { match_labels: Labels::new(), match_expressions: vec![r] };
    assert!(any().matches(&Labels::new()));
    assert!(expr(req("app", SelectorOp::In, &["web", "api"])).matches(&l));
    assert!(!expr(req("app", SelectorOp::NotIn, &["web"])).matches(&l));
    assert!(expr(req("missing", SelectorOp::NotIn, &["x"])).matches(&l), "NotIn matches an absent key");
    assert!(expr(req("tier", SelectorOp::Exists, &[])).matches(&l));
    assert!(!expr(req("tier", SelectorOp::DoesNotExist, &[])).matches(&l));
    assert!(!sel(&[("app", "web"), ("tier", "be")]).matches(&l));
    assert_eq!(pol("a", any(), None, vec![], vec![]).effective_types(), (true, false));
    assert_eq!(pol("a", any(), None, vec![], vec![PolicyRule::default()]).effective_types(), (true, true));
    assert_eq!(pol("a", any(), Some(&[Direction::Egress]), vec![], vec![]).effective_types(), (false, true));
    let n = net4(10, 1, 0, 0, 16);
    assert!(n.contains(false, v4(10, 1, 255, 255)));
    assert!(!n.contains(false, v4(10, 2, 0, 0)));
    assert!(!n.contains(true, v4(10, 1, 0, 1)));
    assert!(IpNet { addr: 0, len: 0, v6: true }.contains(true, u128::MAX));
}

#[test]
fn compile_rejects_bad_input_naming_the_policy() {
    let mut p = pol("prod", any(), None, vec![rule(vec![block(net4(10, 0, 0, 0, 8), vec![net4(11, 0, 0, 0, 16)])], vec![])], vec![]);
    p.name = "web-in".into();
    let err = PolicyTables::compile(&with_policies(vec![p.clone()])).unwrap_err();
    assert!(matches!(err, PolicyError::ExceptOutsideCidr { .. }), "{err:?}");
    assert!(err.to_string().contains("prod/web-in ingress rule 0"), "{err}");

    p.ingress = vec![rule(vec![], vec![PolicyPort { proto: PROTO_TCP, port: PortSpec::Range(90, 80) }])];
    let err = PolicyTables::compile(&with_policies(vec![p.clone()])).unwrap_err();
    assert_eq!(err, PolicyError::BadPortRange { rule: "policy prod/web-in ingress rule 0".into(), start: 90, end: 80 });

    p.ingress = vec![rule(vec![], vec![port(ICMP, 0)])];
    assert!(matches!(PolicyTables::compile(&with_policies(vec![p.clone()])), Err(PolicyError::BadProtocol { proto: ICMP, .. })));

    p.ingress = vec![rule(vec![block(net4(10, 0, 0, 0, 33), vec![])], vec![])];
    assert!(matches!(PolicyTables::compile(&with_policies(vec![p])), Err(PolicyError::BadPrefixLen { len: 33, .. })));

    let mut g = grule(0, GlobalAction::Deny);
    g.name = "block-ssh".into();
    g.dst_ports = vec![(23, 22)];
    let err = PolicyTables::compile(&with_global(vec![g], vec![])).unwrap_err();
    assert!(err.to_string().contains("\"block-ssh\""), "{err}");

    let mut spec = world();
    spec.namespaces.push(Namespace { name: "dev".into(), labels: Labels::new() });
    assert_eq!(PolicyTables::compile(&spec).unwrap_err(), PolicyError::DuplicateNamespace("dev".into()));
}

#[test]
fn rule_count_and_emptiness() {
    let spec = with_global(vec![grule(0, GlobalAction::Log)], vec![pol("prod", any(), None, vec![PolicyRule::default(); 2], vec![PolicyRule::default()])]);
    let t = PolicyTables::compile(&spec).unwrap();
    assert_eq!(t.rule_count(), 4);
    assert!(!t.is_empty());
    assert!(PolicyTables::default().is_empty());
    assert_eq!(PolicyTables::default().classify(&Query::default()), Verdict { allow: true, log: false, by: VerdictBy::Default });
}

#[test]
fn many_prefixes_and_ports_switch_to_fib_and_direct_tables() {
    // 300 rules over /24s, /26 holes and a few /16s: enough intervals for the Fib4 path.
    let mut global: Vec<GlobalRule> = (0..300u32)
        .map(|i| {
            let mut r = grule((i % 7) as i32, if i % 3 == 0 { GlobalAction::Allow } else { GlobalAction::Deny });
            let base = (10 << 24) | ((i / 20) << 16) | ((i % 20) * 3) << 8;
            r.src.nets = vec![IpNet::v4(base, 24)];
            if i % 4 == 0 {
                r.src.not_nets = vec![IpNet::v4(base | 0x40, 26)];
            }
            if i % 50 == 0 {
                r.src.nets.push(IpNet::v4(base & 0xffff_0000, 16));
            }
            r
        })
        .collect();
    global.push(grule(100, GlobalAction::Log));
    // And 100 port ranges, enough for the direct port table.
    for i in 0..100u16 {
        let mut r = grule(3, GlobalAction::Deny);
        r.protocol = Some(PROTO_TCP);
        r.dst_ports = vec![(1000 + i * 7, 1002 + i * 7)];
        r.src.not_nets = vec![IpNet::v4(u32::from_be_bytes([10, 0, 0, 0]), 16)];
        global.push(r);
    }
    let spec = with_global(global, vec![]);
    let tables = PolicyTables::compile(&spec).unwrap();
    assert!(matches!(tables.global.src4, super::classify::ClassMap4::Fib(_)));
    assert!(matches!(tables.global.port_rows[0], super::classify::PortClassMap::Direct(_)));
    for dport in 990..1720 {
        let query = Query { src_ep: Some(CLIENT), dst_ep: Some(WEB), v6: false, src: v4(10, 1, 1, 1), dst: addr(WEB), proto: PROTO_TCP, dport };
        assert_eq!(tables.classify(&query), reference::evaluate(&spec, &query), "{query:?}");
    }
    for i in 0..16u32 {
        for j in 0..64u32 {
            for host in [0u32, 0x3f, 0x40, 0x7f, 0x80, 0xff] {
                let src = u128::from((10 << 24) | (i << 16) | (j << 8) | host);
                let query = Query { src_ep: None, dst_ep: Some(WEB), v6: false, src, dst: addr(WEB), proto: PROTO_TCP, dport: 80 };
                assert_eq!(tables.classify(&query), reference::evaluate(&spec, &query), "{query:?}");
            }
        }
    }
}
