//! Connection policy: Kubernetes NetworkPolicy semantics plus ordered global rules,
//! compiled into a classifier that answers for the first packet of a connection.
//!
//! Control builds a [`PolicySpec`] (namespaces, endpoints indexed by `EndpointIdx`,
//! NetworkPolicies, global rules), calls [`PolicyTables::compile`] and publishes the
//! result with the other immutable tables; workers call [`PolicyTables::classify`] once
//! per new flow and cache the verdict in the flow entry. [`reference::evaluate`] is the
//! same semantics written naively from the K8s docs, used as the oracle in tests.
//!
//! # Semantics
//!
//! 1. Global rules in (priority, list index) order: the first matching Allow or Deny
//!    decides; Log sets [`Verdict::log`] and continues; Pass ends the global stage.
//! 2. NetworkPolicy: the source endpoint, if egress-isolated (some policy of its
//!    namespace with Egress type selects it), needs an egress rule of a selecting policy
//!    matching the destination; the destination endpoint, if ingress-isolated, needs a
//!    matching ingress rule. Egress is checked first. A side that is not an endpoint is
//!    never isolated. Rules only add allows; there is no NetworkPolicy deny.
//!
//! Peers, ports and named ports follow the K8s API (see the field docs in `model.rs`);
//! a peer with no selector and no ipBlock matches nothing.
//!
//! # Design
//!
//! The per-packet cost must not grow with the rule count, so nothing is matched on
//! strings or rule by rule at classify time:
//!
//! * **Identities** (Cilium's design): endpoints with the same namespace, labels and named
//!   ports are one identity; every selector is evaluated at compile time, per identity,
//!   through a label → identities index (so 10k policies × 1k identities is not 10M
//!   selector evaluations).
//! * **NetworkPolicy**, per identity and direction: `isolated`, the port set allowed
//!   from any peer, a hash map remote identity → port set (the union over every rule
//!   whose pod/namespace peer selects that identity), and for ipBlocks an interval map
//!   over the remote address (the key space cut at every cidr and except boundary, each
//!   elementary interval → union of the port sets of the blocks holding it). Port sets
//!   (sorted ranges per protocol, named ports, an "all" flag) are interned, so each
//!   rule-set union is stored once. Classify: one array read for each endpoint's
//!   identity, then per isolated side a port-set test, one hash probe and one binary
//!   search — independent of the number of rules.
//! * **Global rules**: Lakshman–Stiliadis bit vectors. One bit per rule in evaluation
//!   order; five fields each map the packet to a row: source identity (or "outside"),
//!   destination identity, source address class, destination address class (interval
//!   maps over all nets/not_nets boundaries), and protocol/destination-port class. Rows
//!   are interned per field and stored as a dense base row shared by many classes plus
//!   the few words where each class differs. Plain bit vectors still cost rules/64 words per packet,
//!   because wildcards make rows dense, and the usual aggregate summary (ABV) does not
//!   help when every field's row is dense. So each rule is *anchored* in its most
//!   selective constrained field (estimated at compile time: share of identities,
//!   address space or port space it accepts), and each row carries a summary of the
//!   words holding rules anchored in that field that accept this class. A matching rule
//!   matches its anchor field, so the OR of the five anchored summaries names every word
//!   that can hold a match; only those are ANDed in full, lowest bit first, which is the
//!   evaluation order, so Log/Pass are handled by continuing or stopping the bit walk.
//!   Rules that constrain nothing (catch-alls) are anchored anywhere and cost one word.
//!
//! The per-identity ipBlock maps are sorted interval arrays, not LPM tries:
//! [`crate::route::Fib4`] costs a 256 KiB root per table, too much for a table per
//! identity and direction, while an interval array costs 8–20 bytes per boundary and a
//! handful of probes. The global rules have only one IPv4 map per side, so a large one
//! becomes a `Fib4` (at most three reads instead of a dozen dependent probes), and a
//! large port map a direct 65,536-entry table.
//!
//! # Measured
//!
//! `cargo bench -p sluice-perf --bench policy -- --warm-up-time 1 --measurement-time 3`
//! on the shared 2-core dev VM, release; 1,200 endpoints (1,200 identities), 4,096
//! independent queries per iteration (scenarios in `perf/benches/policy.rs`):
//!
//! ```text
//!   rules   NetworkPolicy                  global rules
//!           classify   compile   memory    classify   compile   memory
//!   10      12.6 ns    1.3 ms    0.4 MiB   36.6 ns    1.1 ms    0.4 MiB
//!   1k      15.6 ns    2.0 ms    0.4 MiB   34.2 ns    1.9 ms    2.2 MiB
//!   10k     17.0 ns    12 ms     0.5 MiB   50.9 ns    39 ms     6.9 MiB
//! ```
//!
//! Both stay within 1.4× from 10 to 10k rules; the NetworkPolicy step from 10 to 1k is
//! the per-identity tables leaving L1. How the global numbers got there (same bench):
//! plain dense bit vectors scan rules/64 words per query, 390 ns at 10k; the anchored
//! summaries cut the walk to ~2 words per query (measured) and the time to 105 ns, with
//! 22 MiB of dense rows; base + diff rows cut the memory to 2 MiB (119 ns); what was
//! left was the binary searches over 5–10k address and port intervals, now a [`Fib4`]
//! per large IPv4 address map and a direct table per large port map (51 ns, 6.9 MiB:
//! the FIB roots and the 256 KiB port tables). IPv6 address classes stay interval maps
//! (no IPv6 in this bench); [`crate::route::Fib6`] would be the same change.
//!
//! [`Fib4`]: crate::route::Fib4

mod classify;
mod compile;
mod model;
pub mod reference;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_prop;

pub use classify::PolicyTables;
pub use model::*;

/// Why a spec cannot be compiled. Each names the policy or global rule (and the rule's
/// direction and position) at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// A prefix longer than its family's width.
    #[error("{rule}: prefix length {len} over the family's {width} bits")]
    BadPrefixLen {
        /// The policy/rule.
        rule: String,
        /// The length given.
        len: u8,
        /// 32 or 128.
        width: u8,
    },
    /// An ipBlock `except` not inside its `cidr` (or of the other family).
    #[error("{rule}: ipBlock except {except} is not inside cidr {cidr}")]
    ExceptOutsideCidr {
        /// The policy/rule.
        rule: String,
        /// The block's cidr.
        cidr: String,
        /// The offending except.
        except: String,
    },
    /// A port range whose start is after its end.
    #[error("{rule}: port range {start}-{end} starts after it ends")]
    BadPortRange {
        /// The policy/rule.
        rule: String,
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// A NetworkPolicy port whose protocol has no ports (only TCP, UDP, SCTP).
    #[error("{rule}: protocol {proto} is not TCP, UDP or SCTP")]
    BadProtocol {
        /// The policy/rule.
        rule: String,
        /// The protocol given.
        proto: u8,
    },
    /// A named port with an empty name.
    #[error("{rule}: named port with an empty name")]
    EmptyPortName {
        /// The policy/rule.
        rule: String,
    },
    /// A selector requirement with values where none belong, or none where needed.
    #[error("{rule}: selector requirement on {key:?}: {why}")]
    BadSelector {
        /// The policy/rule.
        rule: String,
        /// The requirement's key.
        key: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The same namespace listed twice (which labels would apply is ambiguous).
    #[error("namespace {0:?} listed twice")]
    DuplicateNamespace(String),
    /// More endpoints than a u32 `EndpointIdx` can index.
    #[error("{0} endpoints: more than a u32 endpoint index can address")]
    TooManyEndpoints(usize),
}
