//! Input checks before compiling: everything the classifier's structures assume (prefix
//! lengths within the family, excepts inside their cidr, non-empty port ranges, port
//! protocols) is rejected here with an error naming the policy or rule, so the compiler
//! itself has no error paths.

use std::net::{Ipv4Addr, Ipv6Addr};

use hashbrown::HashSet;

use super::model::*;
use super::PolicyError;

/// `addr/len` in the usual notation.
pub(crate) fn fmt_net(n: &IpNet) -> String {
    if n.v6 {
        format!("{}/{}", Ipv6Addr::from(n.addr), n.len)
    } else {
        format!("{}/{}", Ipv4Addr::from(n.addr as u32), n.len)
    }
}

fn check_net(rule: &str, n: &IpNet) -> Result<(), PolicyError> {
    if n.len > n.width() {
        return Err(PolicyError::BadPrefixLen { rule: rule.to_string(), len: n.len, width: n.width() });
    }
    Ok(())
}

fn check_selector(rule: &str, sel: &LabelSelector) -> Result<(), PolicyError> {
    for r in &sel.match_expressions {
        let why = match r.op {
            SelectorOp::In | SelectorOp::NotIn if r.values.is_empty() => "In/NotIn need values",
            SelectorOp::Exists | SelectorOp::DoesNotExist if !r.values.is_empty() => "Exists/DoesNotExist take no values",
            _ => continue,
        };
        return Err(PolicyError::BadSelector { rule: rule.to_string(), key: r.key.clone(), why });
    }
    Ok(())
}

fn check_rule(rule_name: &str, rule: &PolicyRule) -> Result<(), PolicyError> {
    for peer in &rule.peers {
        for sel in [&peer.pod_selector, &peer.namespace_selector].into_iter().flatten() {
            check_selector(rule_name, sel)?;
        }
        if let Some(block) = &peer.ip_block {
            check_net(rule_name, &block.cidr)?;
            for e in &block.except {
                check_net(rule_name, e)?;
                if !block.cidr.covers(e) {
                    return Err(PolicyError::ExceptOutsideCidr {
                        rule: rule_name.to_string(),
                        cidr: fmt_net(&block.cidr),
                        except: fmt_net(e),
                    });
                }
            }
        }
    }
    for port in &rule.ports {
        if !has_ports(port.proto) {
            return Err(PolicyError::BadProtocol { rule: rule_name.to_string(), proto: port.proto });
        }
        match &port.port {
            PortSpec::Range(a, b) if a > b => {
                return Err(PolicyError::BadPortRange { rule: rule_name.to_string(), start: *a, end: *b })
            }
            PortSpec::Named(n) if n.is_empty() => return Err(PolicyError::EmptyPortName { rule: rule_name.to_string() }),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a whole spec; the first problem found is returned.
pub(crate) fn validate(spec: &PolicySpec) -> Result<(), PolicyError> {
    if u32::try_from(spec.endpoints.len()).is_err() {
        return Err(PolicyError::TooManyEndpoints(spec.endpoints.len()));
    }
    let mut seen = HashSet::new();
    for ns in &spec.namespaces {
        if !seen.insert(ns.name.as_str()) {
            return Err(PolicyError::DuplicateNamespace(ns.name.clone()));
        }
    }
    for p in &spec.policies {
        let name = format!("policy {}/{}", p.namespace, p.name);
        check_selector(&name, &p.pod_selector)?;
        for (dir, rules) in [("ingress", &p.ingress), ("egress", &p.egress)] {
            for (i, rule) in rules.iter().enumerate() {
                check_rule(&format!("{name} {dir} rule {i}"), rule)?;
            }
        }
    }
    for g in &spec.global {
        let name = format!("global rule {:?}", g.name);
        for side in [&g.src, &g.dst] {
            for sel in [&side.selector, &side.namespace_selector].into_iter().flatten() {
                check_selector(&name, sel)?;
            }
            for n in side.nets.iter().chain(&side.not_nets) {
                check_net(&name, n)?;
            }
        }
        for &(a, b) in &g.dst_ports {
            if a > b {
                return Err(PolicyError::BadPortRange { rule: name, start: a, end: b });
            }
        }
    }
    Ok(())
}
