//! The compiled classifier ([`PolicyTables`]) and its per-packet lookup.
//!
//! Everything here is read-only after `compile.rs` built it. `classify` does no
//! allocation and cannot panic: every index it follows was produced by the compiler, but
//! it still reads through `get` so that a compiler bug shows up as a wrong verdict in the
//! property test, not as a worker crash on a packet.

use super::model::*;
use crate::route::Fib4;

/// Sentinel "no port set" (the rule list contributes nothing).
pub(crate) const NO_PORTS: u32 = u32::MAX;

/// A sorted, disjoint partition of a key space into intervals, each mapped to a `u32`.
///
/// Used wherever a field's values fall into a few classes: the ipBlock prefixes of one
/// identity, the address and port classes of the global rules. Binary search over the
/// interval starts: O(log intervals), contiguous memory, no per-node pointers — and it
/// is exact for overlapping prefixes, because the compiler evaluates each elementary
/// interval against every prefix (which is what a longest-prefix match with leaf pushing
/// computes too).
#[derive(Clone, Debug, Default)]
pub(crate) struct IntervalMap<K> {
    /// `starts[0]` is the key space's minimum when non-empty.
    pub(crate) starts: Vec<K>,
    pub(crate) values: Vec<u32>,
}

impl<K> IntervalMap<K> {
    fn memory_bytes(&self) -> usize {
        self.starts.capacity() * size_of::<K>() + self.values.capacity() * 4
    }
}

impl<K: Copy + Ord> IntervalMap<K> {
    /// The value of the interval holding `key`, or `default` for an empty map.
    #[inline]
    pub(crate) fn lookup(&self, key: K, default: u32) -> u32 {
        let i = self.starts.partition_point(|&s| s <= key);
        match i.checked_sub(1) {
            Some(i) => self.values.get(i).copied().unwrap_or(default),
            None => default,
        }
    }
}

/// IPv4 address → class. Small maps are an [`IntervalMap`] (a few probes in one cache
/// line or two); once a map has more than [`FIB_MIN_INTERVALS`] intervals its binary
/// search costs a dozen dependent, mostly missing reads, so it becomes a [`Fib4`] (at most
/// three reads) at the price of the FIB's 256 KiB root.
#[derive(Debug)]
pub(crate) enum ClassMap4 {
    Intervals(IntervalMap<u32>),
    Fib(Fib4),
}

/// Interval count above which an IPv4 class map is built as a [`Fib4`].
pub(crate) const FIB_MIN_INTERVALS: usize = 64;

impl Default for ClassMap4 {
    fn default() -> Self {
        ClassMap4::Intervals(IntervalMap::default())
    }
}

impl ClassMap4 {
    #[inline]
    fn lookup(&self, addr: u32) -> u32 {
        match self {
            ClassMap4::Intervals(m) => m.lookup(addr, 0),
            ClassMap4::Fib(f) => f.lookup(addr).unwrap_or(0),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            ClassMap4::Intervals(m) => m.memory_bytes(),
            ClassMap4::Fib(f) => f.memory_bytes(),
        }
    }
}

/// Destination port → class for one protocol: an [`IntervalMap`] while small, a direct
/// 65,536-entry table once it has more than [`FIB_MIN_INTERVALS`] intervals (one read
/// instead of a dozen dependent probes).
#[derive(Debug)]
pub(crate) enum PortClassMap {
    Intervals(IntervalMap<u16>),
    Direct(Box<[u32]>),
}

impl Default for PortClassMap {
    fn default() -> Self {
        PortClassMap::Intervals(IntervalMap::default())
    }
}

impl PortClassMap {
    #[inline]
    fn lookup(&self, port: u16) -> u32 {
        match self {
            PortClassMap::Intervals(m) => m.lookup(port, 0),
            PortClassMap::Direct(t) => t.get(usize::from(port)).copied().unwrap_or(0),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            PortClassMap::Intervals(m) => m.memory_bytes(),
            PortClassMap::Direct(t) => t.len() * 4,
        }
    }
}

/// A set of (protocol, destination port) pairs a NetworkPolicy rule list allows,
/// interned by the compiler so that equal sets share one id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct PortSet {
    /// Every protocol and port (a rule with no `ports`).
    pub(crate) all: bool,
    /// `(proto, first, last)`, sorted, disjoint and not adjacent within a protocol.
    pub(crate) ranges: Vec<(u8, u16, u16)>,
    /// `(proto, name id)`: resolved against the destination endpoint's named ports at
    /// classify time (the destination of an egress ipBlock rule is only known then).
    pub(crate) named: Vec<(u8, u32)>,
}

impl PortSet {
    #[inline]
    fn contains(&self, proto: u8, dport: u16, dst_named: &[(u32, u8, u16)]) -> bool {
        if self.all {
            return true;
        }
        let i = self.ranges.partition_point(|&(p, lo, _)| (p, lo) <= (proto, dport));
        if let Some(&(p, _, hi)) = i.checked_sub(1).and_then(|i| self.ranges.get(i)) {
            if p == proto && dport <= hi {
                return true;
            }
        }
        self.named.iter().any(|&(p, name)| {
            p == proto && dst_named.iter().any(|&(n, np, port)| n == name && np == proto && port == dport)
        })
    }
}

/// What one identity's policies say about one direction.
#[derive(Clone, Debug, Default)]
pub(crate) struct DirTable {
    /// Some policy of the identity's namespace selects it for this direction.
    pub(crate) isolated: bool,
    /// Ports allowed from/to any peer (rules with no `peers`), or [`NO_PORTS`].
    pub(crate) any_peer: u32,
    /// Remote identity → ports allowed by pod/namespace selector peers.
    pub(crate) peers: hashbrown::HashMap<u32, u32>,
    /// Remote address → ports allowed by ipBlock peers, per family.
    pub(crate) blocks4: IntervalMap<u32>,
    pub(crate) blocks6: IntervalMap<u128>,
}

/// An endpoint class: all endpoints with the same namespace, labels and named ports are
/// indistinguishable to policy, so they share one identity (Cilium's security identity).
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    /// `(name id, proto, port)` of the identity's named ports.
    pub(crate) named: Vec<(u32, u8, u16)>,
    pub(crate) ingress: DirTable,
    pub(crate) egress: DirTable,
}

/// One field's rows (Lakshman–Stiliadis): bit r of a class's row is set iff rule r
/// accepts the field values of that class.
///
/// Rows of neighbouring classes differ only in the few rules whose prefixes, ranges or
/// selectors separate them, so a class's row is stored as a dense *base* row shared by
/// many classes plus a sparse list of the words where it differs. That keeps 10k rules'
/// rows in a few hundred KiB instead of tens of MiB, which is what keeps classify in
/// cache.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldRows {
    /// Dense base rows, `words` each.
    pub(crate) bases: Vec<u64>,
    /// Per class: (base row index, start and end of its slice of `diffs`).
    pub(crate) classes: Vec<(u32, u32, u32)>,
    /// (word index, word) where a class's row differs from its base; sorted per class.
    pub(crate) diffs: Vec<(u32, u64)>,
    /// Per class, `summary_words` words: bit w set iff word w of the row holds a rule
    /// *anchored* in this field (see [`GlobalTables`]).
    pub(crate) anchored: Vec<u64>,
}

/// One class's row during a walk over increasing word indexes.
struct RowCursor<'a> {
    base: &'a [u64],
    diffs: &'a [(u32, u64)],
}

impl RowCursor<'_> {
    /// Word `w` of the row; `w` must not decrease between calls (the diff slice is
    /// consumed as the walk passes it).
    #[inline]
    fn word(&mut self, w: usize) -> u64 {
        while let Some((&(dw, v), rest)) = self.diffs.split_first() {
            match (dw as usize).cmp(&w) {
                std::cmp::Ordering::Less => self.diffs = rest,
                std::cmp::Ordering::Equal => return v,
                std::cmp::Ordering::Greater => break,
            }
        }
        self.base.get(w).copied().unwrap_or(0)
    }
}

/// The global rules as bit vectors, one bit per rule in (priority, list index) order,
/// over five fields: source endpoint, destination endpoint, source address, destination
/// address, protocol/port.
///
/// Plain bit vectors cost O(rules / 64) per packet, because wildcards make every row
/// dense. So each rule is also *anchored* in its most selective constrained field, and
/// each row carries a summary (ABV) of the words holding rules anchored in that field
/// and matching this class. A rule that matches the packet matches its anchor field, so
/// the OR of the five anchored summaries names every word that can hold a match; only
/// those words are ANDed in full. For realistic rule sets that is a handful of words
/// however many rules there are.
#[derive(Debug, Default)]
pub(crate) struct GlobalTables {
    /// 64-bit words per row.
    pub(crate) words: usize,
    /// Summary words per row (`words` / 64, rounded up).
    pub(crate) summary_words: usize,
    /// Source endpoint, destination endpoint, source address, destination address,
    /// protocol/port.
    pub(crate) fields: [FieldRows; 5],
    /// Bit order → (action, index into `PolicySpec::global`).
    pub(crate) actions: Vec<(GlobalAction, u32)>,
    /// Identity → row, for the source and destination endpoint fields.
    pub(crate) src_ident: Vec<u32>,
    pub(crate) dst_ident: Vec<u32>,
    /// Row for a side that is not an endpoint.
    pub(crate) src_external: u32,
    pub(crate) dst_external: u32,
    /// Address class rows, per family.
    pub(crate) src4: ClassMap4,
    pub(crate) src6: IntervalMap<u128>,
    pub(crate) dst4: ClassMap4,
    pub(crate) dst6: IntervalMap<u128>,
    /// Row for each protocol without ports.
    pub(crate) proto_rows: Vec<u32>,
    /// Destination port class rows for TCP, UDP, SCTP.
    pub(crate) port_rows: [PortClassMap; 3],
}

/// The compiled, immutable classifier published to workers (Send + Sync, Debug).
///
/// Thread-safety: never mutated after [`compile`](Self::compile); one instance behind an
/// `Arc` in the published tables serves every worker.
#[derive(Debug, Default)]
pub struct PolicyTables {
    /// EndpointIdx → identity.
    pub(crate) ep_identity: Vec<u32>,
    pub(crate) identities: Vec<Identity>,
    pub(crate) port_sets: Vec<PortSet>,
    pub(crate) global: GlobalTables,
    pub(crate) has_global: bool,
    pub(crate) has_policies: bool,
    pub(crate) rule_count: usize,
}

impl PolicyTables {
    /// No global rules and no NetworkPolicy: everything is allowed (the pipeline skips classify).
    pub fn is_empty(&self) -> bool {
        !self.has_global && !self.has_policies
    }

    /// Number of rules compiled (global rules + NetworkPolicy rules), for stats.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Number of distinct endpoint identities (for stats and benches).
    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }

    /// Approximate heap bytes of the compiled tables (for stats and benches).
    pub fn memory_bytes(&self) -> usize {
        let dir = |t: &DirTable| t.peers.capacity() * 9 + t.blocks4.memory_bytes() + t.blocks6.memory_bytes();
        let ids: usize = self.identities.iter().map(|i| size_of::<Identity>() + i.named.capacity() * 8 + dir(&i.ingress) + dir(&i.egress)).sum();
        let sets: usize = self.port_sets.iter().map(|s| size_of::<PortSet>() + s.ranges.capacity() * 6 + s.named.capacity() * 8).sum();
        let g = &self.global;
        let global = g.fields.iter().map(|f| (f.bases.capacity() + f.anchored.capacity()) * 8 + f.classes.capacity() * 12 + f.diffs.capacity() * 16).sum::<usize>()
            + g.actions.capacity() * 8
            + (g.src_ident.capacity() + g.dst_ident.capacity() + g.proto_rows.capacity()) * 4
            + g.src4.memory_bytes()
            + g.src6.memory_bytes()
            + g.dst4.memory_bytes()
            + g.dst6.memory_bytes()
            + g.port_rows.iter().map(PortClassMap::memory_bytes).sum::<usize>();
        self.ep_identity.capacity() * 4 + ids + sets + global
    }

    /// The verdict for the first packet of a connection.
    ///
    /// Cost does not grow with the number of NetworkPolicy rules (a few hash and binary
    /// searches on the identities' precomputed tables) and grows with global rules only
    /// through the bit-vector words that can hold a match (see `GlobalTables`). No allocation, no
    /// panic, whatever the query holds.
    pub fn classify(&self, q: &Query) -> Verdict {
        let src_id = q.src_ep.and_then(|e| self.ep_identity.get(e as usize)).copied();
        let dst_id = q.dst_ep.and_then(|e| self.ep_identity.get(e as usize)).copied();
        let mut log = false;
        if self.has_global {
            match self.global_match(q, src_id, dst_id) {
                (Some(v), _) => return v,
                (None, l) => log = l,
            }
        }
        if !self.has_policies {
            return Verdict { allow: true, log, by: VerdictBy::Default };
        }
        let dst_ident = dst_id.and_then(|d| self.identities.get(d as usize));
        let dst_named: &[(u32, u8, u16)] = dst_ident.map_or(&[], |i| &i.named);
        let mut isolated = false;
        if let Some(src) = src_id.and_then(|s| self.identities.get(s as usize)) {
            let t = &src.egress;
            if t.isolated {
                if !self.dir_allows(t, dst_id, q.v6, q.dst, q, dst_named) {
                    return Verdict { allow: false, log, by: VerdictBy::EgressDenied };
                }
                isolated = true;
            }
        }
        if let Some(dst) = dst_ident {
            let t = &dst.ingress;
            if t.isolated {
                if !self.dir_allows(t, src_id, q.v6, q.src, q, dst_named) {
                    return Verdict { allow: false, log, by: VerdictBy::IngressDenied };
                }
                isolated = true;
            }
        }
        Verdict { allow: true, log, by: if isolated { VerdictBy::NetworkPolicy } else { VerdictBy::Default } }
    }

    #[inline]
    fn ports_allow(&self, set: u32, q: &Query, dst_named: &[(u32, u8, u16)]) -> bool {
        self.port_sets.get(set as usize).is_some_and(|s| s.contains(q.proto, q.dport, dst_named))
    }

    /// Whether an isolated identity's table for one direction allows the remote side.
    fn dir_allows(&self, t: &DirTable, remote: Option<u32>, v6: bool, addr: u128, q: &Query, dst_named: &[(u32, u8, u16)]) -> bool {
        if self.ports_allow(t.any_peer, q, dst_named) {
            return true;
        }
        if let Some(&set) = remote.and_then(|r| t.peers.get(&r)) {
            if self.ports_allow(set, q, dst_named) {
                return true;
            }
        }
        let set = if v6 { t.blocks6.lookup(addr, NO_PORTS) } else { t.blocks4.lookup(addr as u32, NO_PORTS) };
        self.ports_allow(set, q, dst_named)
    }

    /// Walks the global rules: `(Some(verdict), _)` if an Allow or Deny matched first,
    /// else `(None, log)` (no match, or a Pass).
    fn global_match(&self, q: &Query, src_id: Option<u32>, dst_id: Option<u32>) -> (Option<Verdict>, bool) {
        let g = &self.global;
        let src_ep = src_id.and_then(|i| g.src_ident.get(i as usize)).copied().unwrap_or(g.src_external);
        let dst_ep = dst_id.and_then(|i| g.dst_ident.get(i as usize)).copied().unwrap_or(g.dst_external);
        let (src_addr, dst_addr) = if q.v6 {
            (g.src6.lookup(q.src, 0), g.dst6.lookup(q.dst, 0))
        } else {
            (g.src4.lookup(q.src as u32), g.dst4.lookup(q.dst as u32))
        };
        let port = match q.proto {
            PROTO_TCP => g.port_rows[0].lookup(q.dport),
            PROTO_UDP => g.port_rows[1].lookup(q.dport),
            PROTO_SCTP => g.port_rows[2].lookup(q.dport),
            p => g.proto_rows.get(usize::from(p)).copied().unwrap_or(0),
        };
        let rows = [src_ep, dst_ep, src_addr, dst_addr, port];
        let mut r: [RowCursor; 5] = std::array::from_fn(|_| RowCursor { base: &[], diffs: &[] });
        let mut s: [&[u64]; 5] = [&[]; 5];
        for (f, (field, &class)) in g.fields.iter().zip(&rows).enumerate() {
            let class = class as usize;
            if let Some(&(base, start, end)) = field.classes.get(class) {
                let base = base as usize;
                r[f] = RowCursor {
                    base: field.bases.get(base * g.words..(base + 1) * g.words).unwrap_or(&[]),
                    diffs: field.diffs.get(start as usize..end as usize).unwrap_or(&[]),
                };
            }
            s[f] = field.anchored.get(class * g.summary_words..(class + 1) * g.summary_words).unwrap_or(&[]);
        }
        let word = |x: &[u64], i: usize| x.get(i).copied().unwrap_or(0);
        let mut log = false;
        for sw in 0..g.summary_words {
            // Words holding a rule whose anchor field matches: usually very few.
            let mut candidates = s.iter().fold(0, |acc, x| acc | word(x, sw));
            while candidates != 0 {
                let w = sw * 64 + candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let mut bits = r.iter_mut().fold(u64::MAX, |acc, x| acc & x.word(w));
                while bits != 0 {
                    let bit = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let Some(&(action, idx)) = g.actions.get(bit) else { continue };
                    match action {
                        GlobalAction::Allow => return (Some(Verdict { allow: true, log, by: VerdictBy::GlobalAllow(idx) }), log),
                        GlobalAction::Deny => return (Some(Verdict { allow: false, log, by: VerdictBy::GlobalDeny(idx) }), log),
                        GlobalAction::Log => log = true,
                        GlobalAction::Pass => return (None, log),
                    }
                }
            }
        }
        (None, log)
    }
}
