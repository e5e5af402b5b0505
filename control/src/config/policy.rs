//! Configuration of network policy: namespaces, Kubernetes NetworkPolicy objects (as
//! written in `networking.k8s.io/v1` manifests), ordered global rules, and the flow
//! table. See docs/config.md ("Policy").
//!
//! A NetworkPolicy entry is either a whole manifest (`apiVersion`, `kind`, `metadata`,
//! `spec`) pasted from a cluster, or the short form `name` + `namespace` + `spec`. The
//! `spec` keys are Kubernetes' own (camelCase), so manifests port unchanged. Validation
//! converts everything to the dataplane's [`PolicySpec`] and names the key it rejects.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sluice_dataplane::flow::{FlowConfig, Timeouts};
use sluice_dataplane::policy::{
    Direction, GlobalAction, GlobalRule, IpBlock, IpNet, LabelSelector, NamedPort, Namespace, NetworkPolicy, Peer,
    PolicyEndpoint, PolicyPort, PolicyRule, PolicySpec, PortSpec, Requirement, RuleSide, SelectorOp, PROTO_SCTP, PROTO_TCP,
    PROTO_UDP,
};

use super::{parse_prefix, Config, ConfigError};

/// The namespace of endpoints that name none (as in Kubernetes).
pub const DEFAULT_NAMESPACE: &str = "default";

/// A namespace and its labels (for `namespaceSelector`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A named container port of an endpoint (for NetworkPolicy named ports).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedPortConfig {
    pub name: String,
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "TCP".into()
}

/// A NetworkPolicy: a manifest or the short form.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicyConfig {
    #[serde(rename = "apiVersion", default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// Short form: the policy's name (instead of `metadata.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Short form: the policy's namespace (instead of `metadata.namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub spec: NetworkPolicySpecConfig,
    /// Ignored (kubectl output carries it).
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

/// `metadata` of a manifest: name and namespace are used, the rest (labels,
/// annotations, uid, ...) is accepted and ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl NetworkPolicyConfig {
    /// The policy's name (short form or metadata).
    pub fn name(&self) -> &str {
        self.name.as_deref().or(self.metadata.as_ref().and_then(|m| m.name.as_deref())).unwrap_or("")
    }
    /// The policy's namespace (`default` when unset, as kubectl does).
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .or(self.metadata.as_ref().and_then(|m| m.namespace.as_deref()))
            .unwrap_or(DEFAULT_NAMESPACE)
    }
    /// The API resource name: `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

/// `spec` of a NetworkPolicy (Kubernetes field names).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicySpecConfig {
    #[serde(default)]
    pub pod_selector: SelectorConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<IngressRuleConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<EgressRuleConfig>>,
}

/// A Kubernetes LabelSelector.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelectorConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<ExpressionConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpressionConfig {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IngressRuleConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<PeerConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPortConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct EgressRuleConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<PeerConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPortConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<SelectorConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<SelectorConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlockConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpBlockConfig {
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A port number or a named port (Kubernetes IntOrString).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyPortConfig {
    /// TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

/// One ordered global rule (Calico GlobalNetworkPolicy style), evaluated before
/// NetworkPolicy: first match by `priority` decides (`log` records and goes on, `pass`
/// hands over to NetworkPolicy).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlobalRuleConfig {
    pub name: String,
    /// Lower first; equal priorities keep list order.
    #[serde(default)]
    pub priority: i32,
    /// allow, deny, log or pass.
    pub action: String,
    /// TCP, UDP, SCTP, ICMP, ICMPv6 or a protocol number; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default)]
    pub source: RuleSideConfig,
    #[serde(default)]
    pub destination: RuleSideConfig,
}

/// What one side of a global rule must be; unset keys match anything.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSideConfig {
    /// The endpoint's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorConfig>,
    /// The endpoint's namespace's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<SelectorConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<String>,
    /// Destination only: ports and ranges, `80` or `"8000-8080"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<IntOrString>,
}

/// The per-worker flow table and connection tracking.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// `auto`: routed traffic goes through the flow table when any policy (NetworkPolicy
    /// or global rule) is configured, and is routed statelessly otherwise. `always`:
    /// always tracked (connection counts, `max_flows`).
    pub track: String,
    /// Connections tracked per worker; when full, the one closest to expiry is evicted.
    pub max_per_worker: u32,
    /// Liberal (false): pick up connections mid-stream, do not enforce TCP windows.
    /// Strict (true): only a SYN opens a TCP connection, out-of-window segments drop.
    pub tcp_strict: bool,
    pub timeouts: TimeoutsConfig,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig { track: "auto".into(), max_per_worker: 1 << 20, tcp_strict: false, timeouts: TimeoutsConfig::default() }
    }
}

/// Idle timeouts in seconds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    pub tcp_syn_s: u32,
    pub tcp_established_s: u32,
    pub tcp_closing_s: u32,
    pub tcp_closed_s: u32,
    pub udp_unreplied_s: u32,
    pub udp_s: u32,
    pub icmp_s: u32,
    pub other_s: u32,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        let t = Timeouts::default();
        let s = |ms: u64| (ms / 1000) as u32;
        TimeoutsConfig {
            tcp_syn_s: s(t.tcp_syn_ms),
            tcp_established_s: s(t.tcp_established_ms),
            tcp_closing_s: s(t.tcp_closing_ms),
            tcp_closed_s: s(t.tcp_closed_ms),
            udp_unreplied_s: s(t.udp_unreplied_ms),
            udp_s: s(t.udp_ms),
            icmp_s: s(t.icmp_ms),
            other_s: s(t.other_ms),
        }
    }
}

impl FlowsConfig {
    /// The dataplane's flow-table configuration.
    pub fn flow_config(&self) -> FlowConfig {
        let ms = |s: u32| s as u64 * 1000;
        let t = &self.timeouts;
        FlowConfig {
            capacity: self.max_per_worker,
            tcp_strict: self.tcp_strict,
            timeouts: Timeouts {
                tcp_syn_ms: ms(t.tcp_syn_s),
                tcp_established_ms: ms(t.tcp_established_s),
                tcp_closing_ms: ms(t.tcp_closing_s),
                tcp_closed_ms: ms(t.tcp_closed_s),
                udp_unreplied_ms: ms(t.udp_unreplied_s),
                udp_ms: ms(t.udp_s),
                icmp_ms: ms(t.icmp_s),
                other_ms: ms(t.other_s),
            },
        }
    }
}

fn e(path: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(path, msg)
}

/// A Kubernetes label key: optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn check_label_key(k: &str) -> Result<(), String> {
    let name = match k.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 || !prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.') {
                return Err(format!("label key {k:?}: bad prefix (a lowercase DNS subdomain)"));
            }
            name
        }
        None => k,
    };
    check_label_value(name).map_err(|_| format!("label key {k:?}: a name of 1-63 letters, digits, '-', '_', '.', alphanumeric at both ends"))?;
    if name.is_empty() {
        return Err(format!("label key {k:?} is empty"));
    }
    Ok(())
}

fn check_label_value(v: &str) -> Result<(), String> {
    let ok = v.len() <= 63
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!("label value {v:?}: at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends"))
    }
}

pub(crate) fn check_labels<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>, at: &str) -> Result<(), ConfigError> {
    for (k, v) in labels {
        check_label_key(k).map_err(|m| e(at, m))?;
        check_label_value(v).map_err(|m| e(format!("{at}.{k}"), m))?;
    }
    Ok(())
}

/// A DNS label (RFC 1123): namespace and policy names.
fn check_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A named port (IANA service name as Kubernetes checks it).
fn check_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn selector(s: &SelectorConfig, at: &str) -> Result<LabelSelector, ConfigError> {
    check_labels(&s.match_labels, &format!("{at}.matchLabels"))?;
    let mut exprs = Vec::new();
    for (i, x) in s.match_expressions.iter().enumerate() {
        let at = format!("{at}.matchExpressions[{i}]");
        check_label_key(&x.key).map_err(|m| e(format!("{at}.key"), m))?;
        let op = match x.operator.as_str() {
            "In" => SelectorOp::In,
            "NotIn" => SelectorOp::NotIn,
            "Exists" => SelectorOp::Exists,
            "DoesNotExist" => SelectorOp::DoesNotExist,
            o => return Err(e(format!("{at}.operator"), format!("unknown operator {o:?} (In, NotIn, Exists, DoesNotExist)"))),
        };
        match op {
            SelectorOp::In | SelectorOp::NotIn if x.values.is_empty() => {
                return Err(e(format!("{at}.values"), format!("{} needs at least one value", x.operator)))
            }
            SelectorOp::Exists | SelectorOp::DoesNotExist if !x.values.is_empty() => {
                return Err(e(format!("{at}.values"), format!("{} takes no values", x.operator)))
            }
            _ => {}
        }
        for (vi, v) in x.values.iter().enumerate() {
            check_label_value(v).map_err(|m| e(format!("{at}.values[{vi}]"), m))?;
        }
        exprs.push(Requirement { key: x.key.clone(), op, values: x.values.clone() });
    }
    Ok(LabelSelector { match_labels: s.match_labels.clone(), match_expressions: exprs })
}

/// A prefix with its host bits zero (`10.1.0.0/16`; a plain address is a /32 or /128).
fn net(s: &str, at: &str) -> Result<IpNet, ConfigError> {
    let (a, len) = parse_prefix(s).map_err(|m| e(at, m))?;
    Ok(match a {
        IpAddr::V4(a) => IpNet { addr: u32::from(a) as u128, len, v6: false },
        IpAddr::V6(a) => IpNet { addr: u128::from(a), len, v6: true },
    })
}

fn inside(inner: &IpNet, outer: &IpNet) -> bool {
    inner.v6 == outer.v6 && inner.len >= outer.len && outer.contains(inner.v6, inner.addr)
}

fn proto_k8s(p: &Option<String>, at: &str) -> Result<u8, ConfigError> {
    match p.as_deref() {
        None | Some("TCP") => Ok(PROTO_TCP),
        Some("UDP") => Ok(PROTO_UDP),
        Some("SCTP") => Ok(PROTO_SCTP),
        Some(o) => Err(e(at, format!("unknown protocol {o:?} (TCP, UDP or SCTP)"))),
    }
}

fn peer(p: &PeerConfig, at: &str) -> Result<Peer, ConfigError> {
    let ip_block = match &p.ip_block {
        None => None,
        Some(b) => {
            if p.pod_selector.is_some() || p.namespace_selector.is_some() {
                return Err(e(format!("{at}.ipBlock"), "ipBlock cannot be combined with podSelector or namespaceSelector in one peer"));
            }
            let cidr = net(&b.cidr, &format!("{at}.ipBlock.cidr"))?;
            let mut except = Vec::new();
            for (i, x) in b.except.iter().enumerate() {
                let at = format!("{at}.ipBlock.except[{i}]");
                let n = net(x, &at)?;
                if !inside(&n, &cidr) || n.len == cidr.len {
                    return Err(e(at, format!("{x} is not strictly inside cidr {}", b.cidr)));
                }
                except.push(n);
            }
            Some(IpBlock { cidr, except })
        }
    };
    if ip_block.is_none() && p.pod_selector.is_none() && p.namespace_selector.is_none() {
        return Err(e(at, "a peer needs podSelector, namespaceSelector or ipBlock"));
    }
    Ok(Peer {
        pod_selector: p.pod_selector.as_ref().map(|s| selector(s, &format!("{at}.podSelector"))).transpose()?,
        namespace_selector: p.namespace_selector.as_ref().map(|s| selector(s, &format!("{at}.namespaceSelector"))).transpose()?,
        ip_block,
    })
}

fn policy_port(p: &PolicyPortConfig, at: &str) -> Result<PolicyPort, ConfigError> {
    let proto = proto_k8s(&p.protocol, &format!("{at}.protocol"))?;
    let port = match (&p.port, p.end_port) {
        (None, Some(_)) => return Err(e(format!("{at}.endPort"), "endPort needs a numeric port")),
        (None, None) => PortSpec::Any,
        (Some(IntOrString::Int(n)), end) => {
            if !(1..=65535).contains(n) {
                return Err(e(format!("{at}.port"), format!("{n} is not a port number (1-65535)")));
            }
            let end = end.unwrap_or(*n);
            if !(*n..=65535).contains(&end) {
                return Err(e(format!("{at}.endPort"), format!("{end} must be between port {n} and 65535")));
            }
            PortSpec::Range(*n as u16, end as u16)
        }
        (Some(IntOrString::String(name)), end) => {
            if end.is_some() {
                return Err(e(format!("{at}.endPort"), "endPort needs a numeric port, not a named one"));
            }
            if !check_port_name(name) {
                return Err(e(format!("{at}.port"), format!("{name:?} is not a port name (1-15 lowercase letters, digits and '-', with a letter)")));
            }
            PortSpec::Named(name.clone())
        }
    };
    Ok(PolicyPort { proto, port })
}

fn rule(peers: &[PeerConfig], ports: &[PolicyPortConfig], at: &str, peer_key: &str) -> Result<PolicyRule, ConfigError> {
    Ok(PolicyRule {
        peers: peers.iter().enumerate().map(|(i, p)| peer(p, &format!("{at}.{peer_key}[{i}]"))).collect::<Result<_, _>>()?,
        ports: ports.iter().enumerate().map(|(i, p)| policy_port(p, &format!("{at}.ports[{i}]"))).collect::<Result<_, _>>()?,
    })
}

fn network_policy(np: &NetworkPolicyConfig, at: &str) -> Result<NetworkPolicy, ConfigError> {
    if let Some(v) = &np.api_version {
        if v != "networking.k8s.io/v1" {
            return Err(e(format!("{at}.apiVersion"), format!("{v:?} is not networking.k8s.io/v1")));
        }
    }
    if let Some(k) = &np.kind {
        if k != "NetworkPolicy" {
            return Err(e(format!("{at}.kind"), format!("{k:?} is not NetworkPolicy")));
        }
    }
    let meta_name = np.metadata.as_ref().and_then(|m| m.name.as_ref());
    let name_at = if np.name.is_some() { format!("{at}.name") } else { format!("{at}.metadata.name") };
    if np.name.is_some() && meta_name.is_some() {
        return Err(e(name_at, "give name or metadata.name, not both"));
    }
    if !check_dns_label(np.name()) {
        return Err(e(name_at, format!("{:?} is not a name (1-63 lowercase letters, digits and '-')", np.name())));
    }
    if !check_dns_label(np.namespace()) {
        return Err(e(format!("{at}.namespace"), format!("{:?} is not a namespace name", np.namespace())));
    }
    let spec = &np.spec;
    let at = format!("{at}.spec");
    let policy_types = match &spec.policy_types {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for (i, t) in list.iter().enumerate() {
                let d = match t.as_str() {
                    "Ingress" => Direction::Ingress,
                    "Egress" => Direction::Egress,
                    o => return Err(e(format!("{at}.policyTypes[{i}]"), format!("{o:?} is not Ingress or Egress"))),
                };
                if out.contains(&d) {
                    return Err(e(format!("{at}.policyTypes[{i}]"), format!("{t} is listed twice")));
                }
                out.push(d);
            }
            Some(out)
        }
    };
    let ingress = spec
        .ingress
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| rule(&r.from, &r.ports, &format!("{at}.ingress[{i}]"), "from"))
        .collect::<Result<_, _>>()?;
    let egress = spec
        .egress
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| rule(&r.to, &r.ports, &format!("{at}.egress[{i}]"), "to"))
        .collect::<Result<_, _>>()?;
    Ok(NetworkPolicy {
        name: np.name().to_string(),
        namespace: np.namespace().to_string(),
        pod_selector: selector(&spec.pod_selector, &format!("{at}.podSelector"))?,
        policy_types,
        ingress,
        egress,
    })
}

fn side(s: &RuleSideConfig, at: &str, is_dst: bool) -> Result<(RuleSide, Vec<(u16, u16)>), ConfigError> {
    let nets = |list: &[String], key: &str| -> Result<Vec<IpNet>, ConfigError> {
        list.iter().enumerate().map(|(i, n)| net(n, &format!("{at}.{key}[{i}]"))).collect()
    };
    let mut ports = Vec::new();
    if !s.ports.is_empty() && !is_dst {
        return Err(e(format!("{at}.ports"), "ports are matched on the destination only"));
    }
    for (i, p) in s.ports.iter().enumerate() {
        let at = format!("{at}.ports[{i}]");
        let range = match p {
            IntOrString::Int(n) if (1..=65535).contains(n) => (*n as u16, *n as u16),
            IntOrString::String(r) => match r.split_once('-').map(|(a, b)| (a.trim().parse::<u16>(), b.trim().parse::<u16>())) {
                Some((Ok(a), Ok(b))) if a >= 1 && a <= b => (a, b),
                _ => return Err(e(at, format!("{r:?} is not a port range like \"8000-8080\""))),
            },
            IntOrString::Int(n) => return Err(e(at, format!("{n} is not a port number (1-65535)"))),
        };
        ports.push(range);
    }
    Ok((
        RuleSide {
            selector: s.selector.as_ref().map(|x| selector(x, &format!("{at}.selector"))).transpose()?,
            namespace_selector: s.namespace_selector.as_ref().map(|x| selector(x, &format!("{at}.namespaceSelector"))).transpose()?,
            nets: nets(&s.nets, "nets")?,
            not_nets: nets(&s.not_nets, "notNets")?,
        },
        ports,
    ))
}

fn global_rule(g: &GlobalRuleConfig, at: &str) -> Result<GlobalRule, ConfigError> {
    let action = match g.action.as_str() {
        "allow" => GlobalAction::Allow,
        "deny" => GlobalAction::Deny,
        "log" => GlobalAction::Log,
        "pass" => GlobalAction::Pass,
        o => return Err(e(format!("{at}.action"), format!("unknown action {o:?} (allow, deny, log, pass)"))),
    };
    let protocol = match g.protocol.as_deref() {
        None => None,
        Some(p) => Some(match p.to_ascii_uppercase().as_str() {
            "TCP" => 6,
            "UDP" => 17,
            "SCTP" => 132,
            "ICMP" => 1,
            "ICMPV6" => 58,
            n => n.parse::<u8>().map_err(|_| e(format!("{at}.protocol"), format!("{p:?} is not TCP, UDP, SCTP, ICMP, ICMPv6 or 0-255")))?,
        }),
    };
    let (src, _) = side(&g.source, &format!("{at}.source"), false)?;
    let (dst, dst_ports) = side(&g.destination, &format!("{at}.destination"), true)?;
    if !dst_ports.is_empty() && !matches!(protocol, Some(6 | 17 | 132)) {
        return Err(e(format!("{at}.protocol"), "destination ports need protocol TCP, UDP or SCTP"));
    }
    Ok(GlobalRule { name: g.name.clone(), priority: g.priority, action, src, dst, protocol, dst_ports })
}

impl Config {
    /// Validates namespaces, endpoint policy fields, network policies, global rules and
    /// flow settings by building the dataplane's [`PolicySpec`] from them.
    pub(crate) fn validate_policy(&self) -> Result<(), ConfigError> {
        self.policy_spec().map(|_| ())
    }

    /// The policy model of this configuration (endpoint `i` is the dataplane's endpoint `i`).
    pub fn policy_spec(&self) -> Result<PolicySpec, ConfigError> {
        let mut spec = PolicySpec::default();
        let mut ns_names = HashSet::new();
        for (i, ns) in self.namespaces.iter().enumerate() {
            let at = format!("namespaces[{i}]");
            if !check_dns_label(&ns.name) || !ns_names.insert(ns.name.as_str()) {
                return Err(e(format!("{at}.name"), format!("{:?} is not a namespace name or is listed twice", ns.name)));
            }
            check_labels(&ns.labels, &format!("{at}.labels"))?;
            spec.namespaces.push(Namespace { name: ns.name.clone(), labels: ns.labels.clone() });
        }
        for (i, ep) in self.endpoints.iter().enumerate() {
            let at = format!("endpoints[{i}]");
            let namespace = ep.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
            if !check_dns_label(&namespace) {
                return Err(e(format!("{at}.namespace"), format!("{namespace:?} is not a namespace name")));
            }
            check_labels(&ep.labels, &format!("{at}.labels"))?;
            let mut named_ports = Vec::new();
            let mut seen = HashSet::new();
            for (pi, p) in ep.ports.iter().enumerate() {
                let at = format!("{at}.ports[{pi}]");
                if !check_port_name(&p.name) || !seen.insert(p.name.as_str()) {
                    return Err(e(format!("{at}.name"), format!("{:?} is not a port name or is used twice", p.name)));
                }
                if p.port == 0 {
                    return Err(e(format!("{at}.port"), "a port number between 1 and 65535"));
                }
                let proto = proto_k8s(&Some(p.protocol.clone()), &format!("{at}.protocol"))?;
                named_ports.push(NamedPort { name: p.name.clone(), proto, port: p.port });
            }
            spec.endpoints.push(PolicyEndpoint { namespace, labels: ep.labels.clone(), named_ports });
        }
        let mut keys = HashSet::new();
        for (i, np) in self.network_policies.iter().enumerate() {
            let at = format!("network_policies[{i}]");
            let p = network_policy(np, &at)?;
            if !keys.insert((p.namespace.clone(), p.name.clone())) {
                return Err(e(format!("{at}.name"), format!("policy {}/{} is defined twice", p.namespace, p.name)));
            }
            spec.policies.push(p);
        }
        let mut names = HashSet::new();
        for (i, g) in self.global_rules.iter().enumerate() {
            let at = format!("global_rules[{i}]");
            if g.name.is_empty() || !names.insert(g.name.as_str()) {
                return Err(e(format!("{at}.name"), format!("rule name {:?} is empty or used twice", g.name)));
            }
            spec.global.push(global_rule(g, &at)?);
        }
        let f = &self.flows;
        if !matches!(f.track.as_str(), "auto" | "always") {
            return Err(e("flows.track", format!("{:?} is not auto or always", f.track)));
        }
        if f.max_per_worker == 0 || f.max_per_worker > 1 << 24 {
            return Err(e("flows.max_per_worker", "between 1 and 16777216"));
        }
        let t = &f.timeouts;
        for (k, v) in [
            ("tcp_syn_s", t.tcp_syn_s),
            ("tcp_established_s", t.tcp_established_s),
            ("tcp_closing_s", t.tcp_closing_s),
            ("tcp_closed_s", t.tcp_closed_s),
            ("udp_unreplied_s", t.udp_unreplied_s),
            ("udp_s", t.udp_s),
            ("icmp_s", t.icmp_s),
            ("other_s", t.other_s),
        ] {
            if !(1..=864_000).contains(&v) {
                return Err(e(format!("flows.timeouts.{k}"), "between 1 and 864000 seconds"));
            }
        }
        Ok(spec)
    }
}
