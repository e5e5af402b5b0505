//! The policy spec as control hands it over (Kubernetes NetworkPolicy objects, namespaces,
//! endpoints and ordered global rules), the per-connection [`Query`] and the [`Verdict`].
//!
//! The semantic helpers here ([`LabelSelector::matches`], [`IpNet::contains`],
//! [`NetworkPolicy::effective_types`]) are the single definition both the compiler and
//! the reference evaluator use, so the two can only disagree on structure, not on what a
//! selector or prefix means.

use std::collections::BTreeMap;

/// Kubernetes labels (key → value). A `BTreeMap` so that equal label sets hash and
/// compare equal regardless of insertion order (identities are keyed on them).
pub type Labels = BTreeMap<String, String>;

/// The label added to every namespace, as Kubernetes does since 1.21, so that
/// `namespaceSelector` can name a namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A Kubernetes label selector: all `match_labels` and all `match_expressions` must hold.
/// The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    /// Each key must be present with exactly this value.
    pub match_labels: Labels,
    /// Each requirement must hold.
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the key's value is tested.
    pub op: SelectorOp,
    /// Non-empty for `In`/`NotIn`, empty for `Exists`/`DoesNotExist` (compile checks).
    pub values: Vec<String>,
}

/// A `matchExpressions` operator, with Kubernetes semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelectorOp {
    /// The key is present and its value is one of `values`.
    In,
    /// The key is absent, or its value is none of `values` (K8s: absent matches).
    NotIn,
    /// The key is present (any value).
    Exists,
    /// The key is absent.
    DoesNotExist,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            SelectorOp::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOp::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOp::Exists => value.is_some(),
            SelectorOp::DoesNotExist => value.is_none(),
        }
    }
}

impl LabelSelector {
    /// Whether `labels` satisfy every label and every expression of the selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// An IP prefix; IPv4 as u32 value in the low bits with v6 = false. Host bits are zero
/// (control canonicalizes; [`IpNet::contains`] ignores them anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network address (IPv4 in the low 32 bits).
    pub addr: u128,
    /// Prefix length: at most 32 (IPv4) or 128 (IPv6); compile rejects longer.
    pub len: u8,
    /// Address family.
    pub v6: bool,
}

impl IpNet {
    /// An IPv4 prefix.
    pub const fn v4(addr: u32, len: u8) -> IpNet {
        IpNet { addr: addr as u128, len, v6: false }
    }

    /// An IPv6 prefix.
    pub const fn v6(addr: u128, len: u8) -> IpNet {
        IpNet { addr, len, v6: true }
    }

    /// Width of the family in bits.
    pub(crate) const fn width(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    /// The first and last address of the prefix in the family's key space (IPv4 in the
    /// low 32 bits). A length over the family's width is treated as a host route.
    pub(crate) fn range(&self) -> (u128, u128) {
        let width = u32::from(self.width());
        let len = u32::from(self.len).min(width);
        // Host bits: the low (width - len) bits; u128 shifts by up to 128 need checked_shr.
        let host = u128::MAX.checked_shr(128 - (width - len)).unwrap_or(0);
        let family = if self.v6 { u128::MAX } else { u128::from(u32::MAX) };
        let lo = self.addr & family & !host;
        (lo, lo | host)
    }

    /// Whether the address `addr` of family `v6` is inside this prefix. A prefix never
    /// contains an address of the other family. For IPv4 only the low 32 bits of `addr`
    /// count, so a caller's stray high bits cannot make v4 addresses unmatchable.
    pub fn contains(&self, v6: bool, addr: u128) -> bool {
        if v6 != self.v6 {
            return false;
        }
        let addr = if v6 { addr } else { addr & u128::from(u32::MAX) };
        let (lo, hi) = self.range();
        lo <= addr && addr <= hi
    }

    /// Whether `other` (same family) lies entirely inside this prefix.
    pub fn covers(&self, other: &IpNet) -> bool {
        let (lo, hi) = self.range();
        let (olo, ohi) = other.range();
        self.v6 == other.v6 && lo <= olo && ohi <= hi
    }
}

/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// SCTP.
pub const PROTO_SCTP: u8 = 132;

/// Whether `proto` carries ports that policy can match.
pub(crate) const fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
}

/// The port part of a NetworkPolicy port entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// Every port of the protocol.
    Any,
    /// `port..=endPort`; a single port is `Range(p, p)`.
    Range(u16, u16),
    /// A named container port, resolved against the destination endpoint.
    Named(String),
}

/// One NetworkPolicy `ports` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyPort {
    /// 6, 17 or 132 (compile rejects others).
    pub proto: u8,
    /// Which ports of that protocol.
    pub port: PortSpec,
}

/// A NetworkPolicy `ipBlock`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpBlock {
    /// The allowed prefix.
    pub cidr: IpNet,
    /// Sub-prefixes of `cidr` that are not allowed (each must lie inside `cidr`).
    pub except: Vec<IpNet>,
}

/// One `from`/`to` entry. K8s: podSelector alone = pods in the policy's namespace;
/// namespaceSelector alone = all pods of matching namespaces; both = AND; ipBlock alone.
///
/// A peer with none of the three set matches nothing (the API server rejects it; here
/// it is inert rather than an error so a half-written object cannot open traffic). If
/// `ip_block` is set together with a selector, the selector part and the block each
/// match on their own (either one suffices).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Pods by label.
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces by label.
    pub namespace_selector: Option<LabelSelector>,
    /// Addresses by prefix (any address, endpoint or not).
    pub ip_block: Option<IpBlock>,
}

/// One ingress or egress rule: empty `peers` = all peers, empty `ports` = all ports and
/// protocols.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PolicyRule {
    /// The remote sides allowed (OR).
    pub peers: Vec<Peer>,
    /// The destination ports allowed (OR).
    pub ports: Vec<PolicyPort>,
}

/// Traffic direction relative to the selected pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Into the selected pod.
    Ingress,
    /// Out of the selected pod.
    Egress,
}

/// A Kubernetes NetworkPolicy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Object name (for error messages).
    pub name: String,
    /// The namespace the policy lives in: it selects pods of this namespace only.
    pub namespace: String,
    /// The pods (of `namespace`) the policy applies to.
    pub pod_selector: LabelSelector,
    /// As written; None = K8s defaulting: Ingress always, plus Egress if `egress` is non-empty.
    pub policy_types: Option<Vec<Direction>>,
    /// Ingress allow rules.
    pub ingress: Vec<PolicyRule>,
    /// Egress allow rules.
    pub egress: Vec<PolicyRule>,
}

impl NetworkPolicy {
    /// Which directions the policy isolates: `(ingress, egress)`.
    pub fn effective_types(&self) -> (bool, bool) {
        match &self.policy_types {
            Some(types) => (types.contains(&Direction::Ingress), types.contains(&Direction::Egress)),
            None => (true, !self.egress.is_empty()),
        }
    }

    /// The rules of one direction.
    pub(crate) fn rules(&self, dir: Direction) -> &[PolicyRule] {
        match dir {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// Whether the policy isolates the pods it selects in `dir`.
    pub(crate) fn isolates(&self, dir: Direction) -> bool {
        let (ingress, egress) = self.effective_types();
        match dir {
            Direction::Ingress => ingress,
            Direction::Egress => egress,
        }
    }
}

/// A namespace and its labels. Compile and reference add `kubernetes.io/metadata.name:
/// <name>` (as K8s does); endpoints in namespaces not listed get a namespace with just
/// that label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    /// Namespace name (unique; compile rejects duplicates).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
}

/// A named container port of an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedPort {
    /// The port's name, as NetworkPolicy `port: <name>` refers to it.
    pub name: String,
    /// Its protocol.
    pub proto: u8,
    /// Its number.
    pub port: u16,
}

/// What policy knows of an endpoint (pod); index = the dataplane EndpointIdx.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyEndpoint {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's labels.
    pub labels: Labels,
    /// The pod's named container ports.
    pub named_ports: Vec<NamedPort>,
}

/// What a global rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalAction {
    /// Allow; no further rule or NetworkPolicy is consulted.
    Allow,
    /// Deny; no further rule or NetworkPolicy is consulted.
    Deny,
    /// Flag the verdict for logging and go on with the next rule.
    Log,
    /// Skip the remaining global rules; NetworkPolicy decides.
    Pass,
}

/// One side of a global rule: every set field must match (AND); unset = any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSide {
    /// Endpoint labels; set => the side must be an endpoint.
    pub selector: Option<LabelSelector>,
    /// The endpoint's namespace labels; set => must be an endpoint.
    pub namespace_selector: Option<LabelSelector>,
    /// Non-empty => address in one of them.
    pub nets: Vec<IpNet>,
    /// Address in none of them.
    pub not_nets: Vec<IpNet>,
}

/// An ordered, cluster-wide rule evaluated before NetworkPolicy (Calico's
/// GlobalNetworkPolicy / Antrea's ClusterNetworkPolicy tier).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalRule {
    /// For error messages and logs.
    pub name: String,
    /// Lower first; equal priorities keep list order.
    pub priority: i32,
    /// What a match does.
    pub action: GlobalAction,
    /// The source side.
    pub src: RuleSide,
    /// The destination side.
    pub dst: RuleSide,
    /// None = any.
    pub protocol: Option<u8>,
    /// Non-empty => protocol must be TCP/UDP/SCTP and dport in one (inclusive) range.
    pub dst_ports: Vec<(u16, u16)>,
}

/// Everything policy is compiled from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySpec {
    /// Namespaces and their labels.
    pub namespaces: Vec<Namespace>,
    /// Endpoints, indexed by the dataplane `EndpointIdx`.
    pub endpoints: Vec<PolicyEndpoint>,
    /// Kubernetes NetworkPolicies.
    pub policies: Vec<NetworkPolicy>,
    /// Global rules, evaluated first.
    pub global: Vec<GlobalRule>,
}

impl PolicySpec {
    /// Number of rules: global rules plus NetworkPolicy ingress and egress rules.
    pub fn rule_count(&self) -> usize {
        self.global.len() + self.policies.iter().map(|p| p.ingress.len() + p.egress.len()).sum::<usize>()
    }
}

/// The first packet of a connection (its original direction). `dport` is 0 for
/// protocols without ports.
///
/// An endpoint index beyond the spec's endpoint list is treated as "not an endpoint"
/// (the tables may be a generation behind the endpoint table), never as an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// The source endpoint, None for traffic from outside (uplink, host).
    pub src_ep: Option<u32>,
    /// The destination endpoint, None for traffic leaving the node's pods.
    pub dst_ep: Option<u32>,
    /// Address family of `src`/`dst`.
    pub v6: bool,
    /// Source address (IPv4 in the low 32 bits).
    pub src: u128,
    /// Destination address (IPv4 in the low 32 bits).
    pub dst: u128,
    /// IP protocol.
    pub proto: u8,
    /// Destination port; 0 for protocols without ports.
    pub dport: u16,
}

/// Why a verdict was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictBy {
    /// Neither side is isolated and no global rule decided.
    Default,
    /// Global rule (index into `PolicySpec::global`) allowed.
    GlobalAllow(u32),
    /// Global rule (index into `PolicySpec::global`) denied.
    GlobalDeny(u32),
    /// Allowed by NetworkPolicy rules (the isolated side(s) had a matching rule).
    NetworkPolicy,
    /// The source is egress-isolated and no egress rule allows the packet.
    EgressDenied,
    /// The destination is ingress-isolated and no ingress rule allows the packet.
    IngressDenied,
}

/// The decision for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the connection may be established.
    pub allow: bool,
    /// A Log global rule matched before the decision.
    pub log: bool,
    /// Which stage decided.
    pub by: VerdictBy,
}
