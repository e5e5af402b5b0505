//! The naive evaluator, written straight from the K8s API docs: the oracle for tests.
//!
//! Every query walks every global rule and every NetworkPolicy and evaluates selectors
//! on strings: O(rules × labels) per packet, allocation-free only by accident. It exists
//! so that [`PolicyTables::classify`](super::PolicyTables::classify) can be checked
//! against something obviously right; it shares only the definitions in `model.rs`
//! (what a selector, a prefix and `policyTypes` defaulting mean), never the compiled
//! structures.

use super::model::*;

/// The labels of namespace `name`: as listed (first listing wins) plus
/// `kubernetes.io/metadata.name`, or just that label for an unlisted namespace.
fn namespace_labels(spec: &PolicySpec, name: &str) -> Labels {
    let mut labels = spec.namespaces.iter().find(|n| n.name == name).map(|n| n.labels.clone()).unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
    labels
}

fn endpoint(spec: &PolicySpec, idx: Option<u32>) -> Option<&PolicyEndpoint> {
    idx.and_then(|i| spec.endpoints.get(i as usize))
}

/// Whether a global rule side matches an (optional) endpoint at address `addr`.
fn side_matches(spec: &PolicySpec, side: &RuleSide, ep: Option<&PolicyEndpoint>, v6: bool, addr: u128) -> bool {
    if let Some(sel) = &side.selector {
        match ep {
            Some(e) if sel.matches(&e.labels) => {}
            _ => return false,
        }
    }
    if let Some(sel) = &side.namespace_selector {
        match ep {
            Some(e) if sel.matches(&namespace_labels(spec, &e.namespace)) => {}
            _ => return false,
        }
    }
    if !side.nets.is_empty() && !side.nets.iter().any(|n| n.contains(v6, addr)) {
        return false;
    }
    !side.not_nets.iter().any(|n| n.contains(v6, addr))
}

fn global_matches(spec: &PolicySpec, rule: &GlobalRule, q: &Query) -> bool {
    let src = endpoint(spec, q.src_ep);
    let dst = endpoint(spec, q.dst_ep);
    if rule.protocol.is_some_and(|p| p != q.proto) {
        return false;
    }
    let port_ok = has_ports(q.proto) && rule.dst_ports.iter().any(|&(a, b)| a <= q.dport && q.dport <= b);
    if !rule.dst_ports.is_empty() && !port_ok {
        return false;
    }
    side_matches(spec, &rule.src, src, q.v6, q.src) && side_matches(spec, &rule.dst, dst, q.v6, q.dst)
}

/// Whether `peer` of a policy in namespace `policy_ns` matches the remote side.
fn peer_matches(spec: &PolicySpec, policy_ns: &str, peer: &Peer, remote: Option<&PolicyEndpoint>, v6: bool, addr: u128) -> bool {
    if let Some(block) = &peer.ip_block {
        if block.cidr.contains(v6, addr) && !block.except.iter().any(|e| e.contains(v6, addr)) {
            return true;
        }
    }
    if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
        return false;
    }
    let Some(remote) = remote else { return false };
    let ns_ok = match &peer.namespace_selector {
        Some(sel) => sel.matches(&namespace_labels(spec, &remote.namespace)),
        // podSelector alone: pods of the policy's own namespace.
        None => remote.namespace == policy_ns,
    };
    let pod_ok = peer.pod_selector.as_ref().is_none_or(|sel| sel.matches(&remote.labels));
    ns_ok && pod_ok
}

fn port_matches(port: &PolicyPort, q: &Query, dst: Option<&PolicyEndpoint>) -> bool {
    if q.proto != port.proto || !has_ports(q.proto) {
        return false;
    }
    match &port.port {
        PortSpec::Any => true,
        PortSpec::Range(a, b) => *a <= q.dport && q.dport <= *b,
        PortSpec::Named(name) => {
            dst.is_some_and(|d| d.named_ports.iter().any(|np| &np.name == name && np.proto == q.proto && np.port == q.dport))
        }
    }
}

/// `Some(allowed)` if `ep` is isolated in `dir`, None if not isolated.
fn direction_allows(spec: &PolicySpec, dir: Direction, ep: &PolicyEndpoint, q: &Query) -> Option<bool> {
    let (remote, remote_addr) = match dir {
        Direction::Ingress => (endpoint(spec, q.src_ep), q.src),
        Direction::Egress => (endpoint(spec, q.dst_ep), q.dst),
    };
    let dst = endpoint(spec, q.dst_ep);
    let mut isolated = false;
    for p in &spec.policies {
        if p.namespace != ep.namespace || !p.isolates(dir) || !p.pod_selector.matches(&ep.labels) {
            continue;
        }
        isolated = true;
        for rule in p.rules(dir) {
            let peer_ok = rule.peers.is_empty()
                || rule.peers.iter().any(|peer| peer_matches(spec, &p.namespace, peer, remote, q.v6, remote_addr));
            let port_ok = rule.ports.is_empty() || rule.ports.iter().any(|port| port_matches(port, q, dst));
            if peer_ok && port_ok {
                return Some(true);
            }
        }
    }
    isolated.then_some(false)
}

/// The verdict for `q` under `spec`, by brute force.
pub fn evaluate(spec: &super::PolicySpec, q: &super::Query) -> super::Verdict {
    let mut order: Vec<usize> = (0..spec.global.len()).collect();
    // Stable: equal priorities keep list order.
    order.sort_by_key(|&i| spec.global[i].priority);
    let mut log = false;
    for i in order {
        let rule = &spec.global[i];
        if !global_matches(spec, rule, q) {
            continue;
        }
        match rule.action {
            GlobalAction::Allow => return Verdict { allow: true, log, by: VerdictBy::GlobalAllow(i as u32) },
            GlobalAction::Deny => return Verdict { allow: false, log, by: VerdictBy::GlobalDeny(i as u32) },
            GlobalAction::Log => log = true,
            GlobalAction::Pass => break,
        }
    }
    let mut isolated = false;
    if let Some(src) = endpoint(spec, q.src_ep) {
        match direction_allows(spec, Direction::Egress, src, q) {
            Some(false) => return Verdict { allow: false, log, by: VerdictBy::EgressDenied },
            Some(true) => isolated = true,
            None => {}
        }
    }
    if let Some(dst) = endpoint(spec, q.dst_ep) {
        match direction_allows(spec, Direction::Ingress, dst, q) {
            Some(false) => return Verdict { allow: false, log, by: VerdictBy::IngressDenied },
            Some(true) => isolated = true,
            None => {}
        }
    }
    Verdict { allow: true, log, by: if isolated { VerdictBy::NetworkPolicy } else { VerdictBy::Default } }
}
