//! [`PolicyTables::compile`]: spec → identities, per-identity NetworkPolicy tables and
//! global-rule bit vectors. All selector evaluation happens here, once per spec.

use std::collections::BTreeMap;

use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::route::{Fib4, Route4};

use super::classify::{ClassMap4, DirTable, FieldRows, PortClassMap, FIB_MIN_INTERVALS, GlobalTables, Identity, IntervalMap, PortSet, NO_PORTS};
use super::model::*;
use super::validate::validate;
use super::{PolicyError, PolicyTables};

/// A key space the interval sweep can run over.
pub(crate) trait Key: Copy + Ord + Default {
    /// The next key, None at the top of the space.
    fn succ(self) -> Option<Self>;
}

impl Key for u16 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl Key for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl Key for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Partitions the key space at every region boundary and maps each elementary interval
/// to `value(state)` after `apply(state, tag, entering)` has been called for every region
/// starting or ending there. Adjacent intervals with equal values merge.
fn sweep<K: Key, S>(
    regions: &[(K, K, u32)],
    state: &mut S,
    mut apply: impl FnMut(&mut S, u32, bool),
    mut value: impl FnMut(&mut S) -> u32,
) -> IntervalMap<K> {
    let mut events: Vec<(K, bool, u32)> = Vec::with_capacity(regions.len() * 2);
    for &(lo, hi, tag) in regions {
        events.push((lo, true, tag));
        if let Some(next) = hi.succ() {
            events.push((next, false, tag));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut map = IntervalMap { starts: Vec::new(), values: Vec::new() };
    let mut pos = K::default();
    let mut i = 0;
    loop {
        while let Some(&(at, enter, tag)) = events.get(i).filter(|e| e.0 == pos) {
            debug_assert!(at == pos);
            apply(state, tag, enter);
            i += 1;
        }
        let v = value(state);
        if map.values.last() != Some(&v) {
            map.starts.push(pos);
            map.values.push(v);
        }
        match events.get(i) {
            Some(e) => pos = e.0,
            None => break,
        }
    }
    map
}

/// Interns port sets and their unions, so equal sets share one id.
#[derive(Default)]
struct PortSets {
    sets: Vec<PortSet>,
    index: HashMap<PortSet, u32>,
    unions: HashMap<Vec<u32>, u32>,
}

impl PortSets {
    fn intern(&mut self, set: PortSet) -> u32 {
        if !set.all && set.ranges.is_empty() && set.named.is_empty() {
            return NO_PORTS;
        }
        if let Some(&id) = self.index.get(&set) {
            return id;
        }
        let id = self.sets.len() as u32;
        self.sets.push(set.clone());
        self.index.insert(set, id);
        id
    }

    /// The set a rule's `ports` list allows. Named ports that no endpoint has can never
    /// match and are dropped.
    fn of_ports(&mut self, ports: &[PolicyPort], names: &HashMap<&str, u32>) -> u32 {
        let mut set = PortSet { all: ports.is_empty(), ..PortSet::default() };
        for p in ports {
            match &p.port {
                PortSpec::Any => set.ranges.push((p.proto, 0, u16::MAX)),
                PortSpec::Range(a, b) => set.ranges.push((p.proto, *a, *b)),
                PortSpec::Named(n) => {
                    if let Some(&id) = names.get(n.as_str()) {
                        set.named.push((p.proto, id));
                    }
                }
            }
        }
        normalize(&mut set);
        self.intern(set)
    }

    /// The union of the sets `ids` (any order, duplicates allowed); [`NO_PORTS`] if empty.
    fn union(&mut self, mut ids: Vec<u32>) -> u32 {
        ids.retain(|&i| i != NO_PORTS);
        ids.sort_unstable();
        ids.dedup();
        match ids.len() {
            0 => return NO_PORTS,
            1 => return ids[0],
            _ => {}
        }
        if let Some(&id) = self.unions.get(&ids) {
            return id;
        }
        let mut set = PortSet::default();
        for &i in &ids {
            let s = &self.sets[i as usize];
            set.all |= s.all;
            set.ranges.extend_from_slice(&s.ranges);
            set.named.extend_from_slice(&s.named);
        }
        normalize(&mut set);
        let id = self.intern(set);
        self.unions.insert(ids, id);
        id
    }
}

/// Sorts and merges ranges (overlapping or adjacent) and named ports; `all` subsumes both.
fn normalize(set: &mut PortSet) {
    if set.all {
        set.ranges.clear();
        set.named.clear();
        return;
    }
    set.ranges.sort_unstable();
    let mut merged: Vec<(u8, u16, u16)> = Vec::with_capacity(set.ranges.len());
    for &(p, lo, hi) in &set.ranges {
        match merged.last_mut() {
            Some(last) if last.0 == p && u32::from(lo) <= u32::from(last.2) + 1 => last.2 = last.2.max(hi),
            _ => merged.push((p, lo, hi)),
        }
    }
    set.ranges = merged;
    set.named.sort_unstable();
    set.named.dedup();
}

/// Which namespaces a selection may come from.
#[derive(Clone, Copy)]
enum NsFilter<'b> {
    One(u32),
    Set(&'b [bool]),
    Any,
}

/// The identities of a spec and the indexes that make selector evaluation cheap.
struct Universe<'a> {
    /// Labels per namespace, with `kubernetes.io/metadata.name` added.
    ns_labels: Vec<Labels>,
    ns_index: HashMap<&'a str, u32>,
    /// Per identity: namespace and labels.
    ids: Vec<(u32, &'a Labels)>,
    ns_members: Vec<Vec<u32>>,
    /// label key → value → identities carrying it.
    label_index: HashMap<&'a str, HashMap<&'a str, Vec<u32>>>,
}

impl Universe<'_> {
    /// Identities in the namespaces of `ns` whose labels match `sel`.
    fn select(&self, ns: NsFilter<'_>, sel: &LabelSelector) -> Vec<u32> {
        let ns_ok = |n: u32| match ns {
            NsFilter::One(x) => n == x,
            NsFilter::Set(set) => set.get(n as usize).copied().unwrap_or(false),
            NsFilter::Any => true,
        };
        // Candidates: the shortest posting list of a required label, else the namespace.
        let mut best: Option<&[u32]> = None;
        for (k, v) in &sel.match_labels {
            let list = self.label_index.get(k.as_str()).and_then(|m| m.get(v.as_str())).map_or(&[][..], |l| &l[..]);
            if best.is_none_or(|b| list.len() < b.len()) {
                best = Some(list);
            }
        }
        let all: Vec<u32>;
        let candidates: &[u32] = match (best, ns) {
            (Some(list), _) => list,
            (None, NsFilter::One(n)) => self.ns_members.get(n as usize).map_or(&[], |m| &m[..]),
            (None, _) => {
                all = (0..self.ids.len() as u32).collect();
                &all
            }
        };
        candidates.iter().copied().filter(|&i| ns_ok(self.ids[i as usize].0) && sel.matches(self.ids[i as usize].1)).collect()
    }

    /// Per namespace, whether `sel` matches its labels.
    fn select_ns(&self, sel: &LabelSelector) -> Vec<bool> {
        self.ns_labels.iter().map(|l| sel.matches(l)).collect()
    }

    /// The identities a pod/namespace selector peer of a policy in `policy_ns` matches.
    fn peer_remotes(&self, policy_ns: u32, peer: &Peer) -> Vec<u32> {
        let any = LabelSelector::default();
        let pods = peer.pod_selector.as_ref().unwrap_or(&any);
        match &peer.namespace_selector {
            Some(ns_sel) => self.select(NsFilter::Set(&self.select_ns(ns_sel)), pods),
            None => self.select(NsFilter::One(policy_ns), pods),
        }
    }

    /// The identities a global rule side's selectors match.
    fn side_identities(&self, side: &RuleSide) -> Vec<u32> {
        let any = LabelSelector::default();
        let pods = side.selector.as_ref().unwrap_or(&any);
        match &side.namespace_selector {
            Some(ns_sel) => self.select(NsFilter::Set(&self.select_ns(ns_sel)), pods),
            None => self.select(NsFilter::Any, pods),
        }
    }
}

/// NetworkPolicy facts about one identity and direction, before interning.
#[derive(Default)]
struct DirAcc<'a> {
    isolated: bool,
    any_peer: Vec<u32>,
    peers: HashMap<u32, Vec<u32>>,
    blocks: Vec<(&'a IpBlock, u32)>,
}

/// Per identity, its named ports as `(name id, proto, port)`.
type NamedPorts = Vec<Vec<(u32, u8, u16)>>;

/// Builds identities: one per distinct (namespace, labels, named ports). Returns them
/// with the endpoint → identity array and each identity's named ports.
fn build_universe<'a>(spec: &'a PolicySpec, names: &mut HashMap<&'a str, u32>) -> (Universe<'a>, Vec<u32>, NamedPorts) {
    let mut ns_labels = Vec::new();
    let mut ns_index: HashMap<&str, u32> = HashMap::new();
    fn add_ns<'a>(name: &'a str, labels: Option<&Labels>, ns_labels: &mut Vec<Labels>, ns_index: &mut HashMap<&'a str, u32>) {
        let mut l = labels.cloned().unwrap_or_default();
        l.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
        ns_index.insert(name, ns_labels.len() as u32);
        ns_labels.push(l);
    }
    for ns in &spec.namespaces {
        add_ns(&ns.name, Some(&ns.labels), &mut ns_labels, &mut ns_index);
    }
    for ep in &spec.endpoints {
        if !ns_index.contains_key(ep.namespace.as_str()) {
            add_ns(&ep.namespace, None, &mut ns_labels, &mut ns_index);
        }
    }
    let mut ids: Vec<(u32, &Labels)> = Vec::new();
    let mut id_named = Vec::new();
    let mut id_index: HashMap<(u32, &Labels, Vec<&NamedPort>), u32> = HashMap::new();
    let mut ep_identity = Vec::with_capacity(spec.endpoints.len());
    for ep in &spec.endpoints {
        let ns = ns_index[ep.namespace.as_str()];
        let mut ports: Vec<&NamedPort> = ep.named_ports.iter().collect();
        ports.sort_unstable();
        ports.dedup();
        let next = ids.len() as u32;
        let id = *id_index.entry((ns, &ep.labels, ports)).or_insert_with_key(|(_, _, ports)| {
            ids.push((ns, &ep.labels));
            let named: Vec<(u32, u8, u16)> = ports
                .iter()
                .map(|p| {
                    let n = names.len() as u32;
                    (*names.entry(p.name.as_str()).or_insert(n), p.proto, p.port)
                })
                .collect();
            id_named.push(named);
            next
        });
        ep_identity.push(id);
    }
    let mut ns_members = vec![Vec::new(); ns_labels.len()];
    let mut label_index: HashMap<&str, HashMap<&str, Vec<u32>>> = HashMap::new();
    for (i, &(ns, labels)) in ids.iter().enumerate() {
        ns_members[ns as usize].push(i as u32);
        for (k, v) in labels {
            label_index.entry(k.as_str()).or_default().entry(v.as_str()).or_default().push(i as u32);
        }
    }
    (Universe { ns_labels, ns_index, ids, ns_members, label_index }, ep_identity, id_named)
}

impl PolicyTables {
    /// Compiles a spec. Errors name the offending policy or rule (see [`PolicyError`]).
    pub fn compile(spec: &PolicySpec) -> Result<PolicyTables, PolicyError> {
        validate(spec)?;
        let mut names: HashMap<&str, u32> = HashMap::new();
        let (uni, ep_identity, id_named) = build_universe(spec, &mut names);
        let n_ids = uni.ids.len();
        let mut sets = PortSets::default();

        let mut acc: [Vec<DirAcc>; 2] = [Vec::new(), Vec::new()];
        for a in &mut acc {
            a.resize_with(n_ids, DirAcc::default);
        }
        for p in &spec.policies {
            let Some(&ns) = uni.ns_index.get(p.namespace.as_str()) else { continue };
            let selected = uni.select(NsFilter::One(ns), &p.pod_selector);
            if selected.is_empty() {
                continue;
            }
            for (d, dir) in [Direction::Ingress, Direction::Egress].into_iter().enumerate() {
                if !p.isolates(dir) {
                    continue;
                }
                for &x in &selected {
                    acc[d][x as usize].isolated = true;
                }
                for rule in p.rules(dir) {
                    let ports = sets.of_ports(&rule.ports, &names);
                    if ports == NO_PORTS {
                        continue;
                    }
                    if rule.peers.is_empty() {
                        for &x in &selected {
                            acc[d][x as usize].any_peer.push(ports);
                        }
                    }
                    for peer in &rule.peers {
                        if let Some(block) = &peer.ip_block {
                            for &x in &selected {
                                acc[d][x as usize].blocks.push((block, ports));
                            }
                        }
                        if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
                            continue;
                        }
                        let remotes = uni.peer_remotes(ns, peer);
                        for &x in &selected {
                            let peers = &mut acc[d][x as usize].peers;
                            for &y in &remotes {
                                peers.entry(y).or_default().push(ports);
                            }
                        }
                    }
                }
            }
        }
        let [ingress, egress] = acc;
        let identities = ingress
            .into_iter()
            .zip(egress)
            .zip(id_named)
            .map(|((i, e), named)| Identity { named, ingress: finish_dir(i, &mut sets), egress: finish_dir(e, &mut sets) })
            .collect();
        let global = if spec.global.is_empty() { GlobalTables::default() } else { compile_global(spec, &uni) };
        Ok(PolicyTables {
            ep_identity,
            identities,
            port_sets: sets.sets,
            global,
            has_global: !spec.global.is_empty(),
            has_policies: !spec.policies.is_empty(),
            rule_count: spec.rule_count(),
        })
    }
}

/// Interns one identity-direction's accumulated facts into its lookup table.
fn finish_dir(acc: DirAcc<'_>, sets: &mut PortSets) -> DirTable {
    let mut t = DirTable { isolated: acc.isolated, any_peer: sets.union(acc.any_peer), ..DirTable::default() };
    t.peers.reserve(acc.peers.len());
    for (remote, ids) in acc.peers {
        let set = sets.union(ids);
        if set != NO_PORTS {
            t.peers.insert(remote, set);
        }
    }
    if !acc.blocks.is_empty() {
        t.blocks4 = block_map(&acc.blocks, false, sets, |x| x as u32);
        t.blocks6 = block_map(&acc.blocks, true, sets, |x| x);
    }
    t
}

/// The interval map remote address → union of the port sets of the ipBlocks whose cidr
/// holds it and none of whose excepts do.
fn block_map<K: Key>(blocks: &[(&IpBlock, u32)], v6: bool, sets: &mut PortSets, key: impl Fn(u128) -> K) -> IntervalMap<K> {
    let mut regions = Vec::new();
    for (b, &(block, _)) in blocks.iter().enumerate() {
        if block.cidr.v6 != v6 {
            continue;
        }
        let (lo, hi) = block.cidr.range();
        regions.push((key(lo), key(hi), b as u32 * 2));
        for e in &block.except {
            let (lo, hi) = e.range();
            regions.push((key(lo), key(hi), b as u32 * 2 + 1));
        }
    }
    if regions.is_empty() {
        return IntervalMap::default();
    }
    // Per block: (inside cidr, inside how many excepts); active port sets with counts.
    struct State {
        inside: Vec<(i32, i32)>,
        active: BTreeMap<u32, i32>,
    }
    let mut state = State { inside: vec![(0, 0); blocks.len()], active: BTreeMap::new() };
    let apply = |s: &mut State, tag: u32, enter: bool| {
        let b = (tag / 2) as usize;
        let on = |c: (i32, i32)| c.0 > 0 && c.1 == 0;
        let before = on(s.inside[b]);
        let delta = if enter { 1 } else { -1 };
        if tag % 2 == 0 {
            s.inside[b].0 += delta;
        } else {
            s.inside[b].1 += delta;
        }
        let after = on(s.inside[b]);
        if before != after {
            let set = blocks[b].1;
            let c = s.active.entry(set).or_insert(0);
            *c += if after { 1 } else { -1 };
            // Only live sets stay in the map: the value of every sweep step walks it, so
            // dead entries would make 10k disjoint blocks cost 10k x 20k steps.
            if *c <= 0 {
                s.active.remove(&set);
            }
        }
    };
    sweep(&regions, &mut state, apply, |s| sets.union(s.active.keys().copied().collect()))
}

/// Interns rows of `words` u64s; row 0 is all zeros (the fallback that matches nothing).
struct Rows {
    words: usize,
    rows: Vec<u64>,
    index: HashMap<Vec<u64>, u32>,
}

impl Rows {
    fn new(words: usize) -> Rows {
        let mut r = Rows { words, rows: Vec::new(), index: HashMap::new() };
        r.intern(&vec![0; words]);
        r
    }

    fn intern(&mut self, row: &[u64]) -> u32 {
        if let Some(&id) = self.index.get(row) {
            return id;
        }
        let id = (self.rows.len() / self.words.max(1)) as u32;
        self.rows.extend_from_slice(row);
        self.index.insert(row.to_vec(), id);
        id
    }
}

fn set_bit(row: &mut [u64], bit: usize, on: bool) {
    if on {
        row[bit / 64] |= 1 << (bit % 64);
    } else {
        row[bit / 64] &= !(1 << (bit % 64));
    }
}

/// How much of a side's address space `nets` covers (0..=1), the larger of the two
/// families; 1 when unconstrained (`not_nets` alone exclude little).
fn net_coverage(side: &RuleSide) -> f64 {
    if side.nets.is_empty() {
        return 1.0;
    }
    let mut cover = [0.0f64; 2];
    for n in &side.nets {
        cover[usize::from(n.v6)] += (-f64::from(n.len)).exp2();
    }
    cover[0].max(cover[1]).min(1.0)
}

/// How much of the protocol/port space a rule accepts (a rough estimate, only used to
/// pick anchors).
fn port_coverage(r: &GlobalRule) -> f64 {
    let proto = if r.protocol.is_some() { 0.3 } else { 1.0 };
    if r.dst_ports.is_empty() {
        return proto;
    }
    let width: f64 = r.dst_ports.iter().map(|&(a, b)| f64::from(b - a) + 1.0).sum();
    proto * (width / 65536.0).min(1.0)
}

/// The bit-vector tables of the global rules (see [`GlobalTables`]).
fn compile_global(spec: &PolicySpec, uni: &Universe<'_>) -> GlobalTables {
    let mut order: Vec<usize> = (0..spec.global.len()).collect();
    order.sort_by_key(|&i| spec.global[i].priority);
    let rules: Vec<&GlobalRule> = order.iter().map(|&i| &spec.global[i]).collect();
    let n = rules.len();
    let words = n.div_ceil(64);
    let mut fields: [Rows; 5] = std::array::from_fn(|_| Rows::new(words));
    // Per rule and field, the share of that field's values it accepts.
    let mut coverage = vec![[1.0f64; 5]; n];

    // Endpoint fields: a rule without selectors on that side matches every identity and
    // the outside; one with selectors only the identities they pick.
    let endpoint_rows = |rows: &mut Rows, coverage: &mut [[f64; 5]], f: usize, side: fn(&GlobalRule) -> &RuleSide| {
        let mut base = vec![0u64; words];
        let mut per_id = vec![Vec::new(); uni.ids.len()];
        for (bit, r) in rules.iter().enumerate() {
            let s = side(r);
            if s.selector.is_none() && s.namespace_selector.is_none() {
                set_bit(&mut base, bit, true);
            } else {
                let ids = uni.side_identities(s);
                coverage[bit][f] = ids.len() as f64 / (uni.ids.len() + 1) as f64;
                for id in ids {
                    per_id[id as usize].push(bit);
                }
            }
        }
        let external = rows.intern(&base);
        let ids = per_id
            .iter()
            .map(|bits| {
                let mut row = base.clone();
                for &b in bits {
                    set_bit(&mut row, b, true);
                }
                rows.intern(&row)
            })
            .collect::<Vec<u32>>();
        (ids, external)
    };
    let [f_src_ep, f_dst_ep, f_src, f_dst, f_port] = &mut fields;
    let (src_ident, src_external) = endpoint_rows(f_src_ep, &mut coverage, 0, |r| &r.src);
    let (dst_ident, dst_external) = endpoint_rows(f_dst_ep, &mut coverage, 1, |r| &r.dst);

    let src4 = address_rows(&rules, f_src, |r| &r.src, false, |x| x as u32);
    let src6 = address_rows(&rules, f_src, |r| &r.src, true, |x| x);
    let dst4 = address_rows(&rules, f_dst, |r| &r.dst, false, |x| x as u32);
    let dst6 = address_rows(&rules, f_dst, |r| &r.dst, true, |x| x);

    let proto_ok = |r: &GlobalRule, p: u8| r.protocol.is_none_or(|x| x == p);
    let proto_rows: Vec<u32> = (0..=255u8)
        .map(|p| {
            let mut row = vec![0u64; words];
            for (bit, r) in rules.iter().enumerate() {
                set_bit(&mut row, bit, proto_ok(r, p) && r.dst_ports.is_empty());
            }
            f_port.intern(&row)
        })
        .collect();
    let port_rows = [PROTO_TCP, PROTO_UDP, PROTO_SCTP].map(|p| {
        let mut regions = Vec::new();
        let mut row = vec![0u64; words];
        for (bit, r) in rules.iter().enumerate() {
            if !proto_ok(r, p) {
                continue;
            }
            set_bit(&mut row, bit, r.dst_ports.is_empty());
            regions.extend(r.dst_ports.iter().map(|&(a, b)| (a, b, bit as u32)));
        }
        let mut count = vec![0i32; n];
        let mut state = (row, &mut *f_port);
        sweep(
            &regions,
            &mut state,
            |(row, _), bit, enter| {
                count[bit as usize] += if enter { 1 } else { -1 };
                set_bit(row, bit as usize, count[bit as usize] > 0);
            },
            |(row, rows)| rows.intern(row),
        )
    });

    // Anchor each rule in its most selective field; any field would be correct (a
    // matching rule matches every field), the selective one keeps candidate words few.
    let mut anchor_masks = vec![vec![0u64; words]; 5];
    for (bit, r) in rules.iter().enumerate() {
        let mut c = coverage[bit];
        c[2] = net_coverage(&r.src);
        c[3] = net_coverage(&r.dst);
        c[4] = port_coverage(r);
        let f = (0..5).min_by(|&a, &b| c[a].total_cmp(&c[b])).unwrap_or(0);
        set_bit(&mut anchor_masks[f], bit, true);
    }
    let summary_words = words.div_ceil(64);
    let [f_src_ep, f_dst_ep, f_src, f_dst, f_port] = fields;
    let mut masks = anchor_masks.iter();
    let mut next_mask = || masks.next().map_or(&[][..], |m| &m[..]);
    let mut src_ep_classes = src_ident.clone();
    src_ep_classes.push(src_external);
    let mut dst_ep_classes = dst_ident.clone();
    dst_ep_classes.push(dst_external);
    let fields = [
        sparsify(f_src_ep, next_mask(), &[&src_ep_classes]),
        sparsify(f_dst_ep, next_mask(), &[&dst_ep_classes]),
        sparsify(f_src, next_mask(), &[&src4.values, &src6.values]),
        sparsify(f_dst, next_mask(), &[&dst4.values, &dst6.values]),
        sparsify(f_port, next_mask(), &[&proto_rows, &port_rows[0].values, &port_rows[1].values, &port_rows[2].values]),
    ];
    let (src4, dst4) = (class_map4(src4), class_map4(dst4));
    let port_rows = port_rows.map(|m| {
        if m.starts.len() <= FIB_MIN_INTERVALS {
            return PortClassMap::Intervals(m);
        }
        let mut table = vec![0u32; 1 << 16];
        for (i, (&start, &class)) in m.starts.iter().zip(&m.values).enumerate() {
            let end = m.starts.get(i + 1).map_or(1 << 16, |&s| usize::from(s));
            table[usize::from(start)..end].fill(class);
        }
        PortClassMap::Direct(table.into_boxed_slice())
    });
    GlobalTables {
        words,
        summary_words,
        fields,
        actions: order.iter().map(|&i| (spec.global[i].action, i as u32)).collect(),
        src_ident,
        dst_ident,
        src_external,
        dst_external,
        src4,
        src6,
        dst4,
        dst6,
        proto_rows,
        port_rows,
    }
}

/// An IPv4 class map for classify: the interval map itself when small, else a [`Fib4`]
/// holding a default route to the most common class and, for every interval of another
/// class, the aligned prefixes that tile it (interval ends are prefix ends, so that is
/// usually one or two prefixes).
fn class_map4(map: IntervalMap<u32>) -> ClassMap4 {
    if map.starts.len() <= FIB_MIN_INTERVALS {
        return ClassMap4::Intervals(map);
    }
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for &v in &map.values {
        *counts.entry(v).or_default() += 1;
    }
    let mode = counts.iter().max_by_key(|&(&c, &n)| (n, std::cmp::Reverse(c))).map_or(0, |(&c, _)| c);
    let mut routes = vec![Route4::new(Ipv4Addr::UNSPECIFIED, 0, mode)];
    for (i, (&start, &class)) in map.starts.iter().zip(&map.values).enumerate() {
        if class == mode {
            continue;
        }
        let end = map.starts.get(i + 1).map_or(1u64 << 32, |&s| u64::from(s));
        let mut lo = u64::from(start);
        while lo < end {
            // The largest aligned block starting at `lo` that fits before `end`.
            let mut size = if lo == 0 { 1u64 << 32 } else { 1u64 << lo.trailing_zeros().min(32) };
            while lo + size > end {
                size >>= 1;
            }
            let len = 32 - size.trailing_zeros() as u8;
            routes.push(Route4::new(Ipv4Addr::from(lo as u32), len, class));
            lo += size;
        }
    }
    match Fib4::build(&routes) {
        Ok(fib) => ClassMap4::Fib(fib),
        // Only a class id over the FIB's next-hop limit (2^30 rows) can fail here.
        Err(_) => ClassMap4::Intervals(map),
    }
}

/// Converts one field's dense rows to base + diff form (see [`FieldRows`]), with the
/// anchored summaries. Each class takes as base the most common row of the first class
/// list (interval map or identity array) it appears in: in an interval map that is the
/// row of the gaps between prefixes, so most classes differ from it in a few words.
fn sparsify(rows: Rows, mask: &[u64], lists: &[&[u32]]) -> FieldRows {
    let words = rows.words;
    let summary_words = words.div_ceil(64);
    let n_rows = rows.rows.len() / words.max(1);
    let row = |r: usize| &rows.rows[r * words..(r + 1) * words];
    let mut base_of = vec![u32::MAX; n_rows];
    for list in lists {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for &c in *list {
            *counts.entry(c).or_default() += 1;
        }
        let Some(mode) = counts.iter().max_by_key(|&(&c, &n)| (n, std::cmp::Reverse(c))).map(|(&c, _)| c) else { continue };
        for &c in *list {
            if base_of[c as usize] == u32::MAX {
                base_of[c as usize] = mode;
            }
        }
    }
    let mut out = FieldRows::default();
    let mut base_index: HashMap<u32, u32> = HashMap::new();
    for (c, base) in base_of.iter_mut().enumerate() {
        if *base == u32::MAX {
            *base = c as u32;
        }
        let b = *base as usize;
        let next = base_index.len() as u32;
        let idx = *base_index.entry(*base).or_insert_with(|| {
            out.bases.extend_from_slice(row(b));
            next
        });
        let start = out.diffs.len() as u32;
        for (w, (&x, &y)) in row(c).iter().zip(row(b)).enumerate() {
            if x != y {
                out.diffs.push((w as u32, x));
            }
        }
        out.classes.push((idx, start, out.diffs.len() as u32));
        let mut summary = vec![0u64; summary_words];
        for (w, &x) in row(c).iter().enumerate() {
            if x & mask.get(w).copied().unwrap_or(0) != 0 {
                summary[w / 64] |= 1 << (w % 64);
            }
        }
        out.anchored.extend_from_slice(&summary);
    }
    out
}

/// Address classes of one side and family: bit r set iff rule r's `nets` (if any) hold
/// the address and its `not_nets` do not. A rule whose `nets` are all of the other
/// family never matches this family (no net holds the address).
fn address_rows<K: Key>(
    rules: &[&GlobalRule],
    rows: &mut Rows,
    side: fn(&GlobalRule) -> &RuleSide,
    v6: bool,
    key: impl Fn(u128) -> K,
) -> IntervalMap<K> {
    let mut regions = Vec::new();
    let mut row = vec![0u64; rows.words];
    for (bit, r) in rules.iter().enumerate() {
        let s = side(r);
        set_bit(&mut row, bit, s.nets.is_empty());
        for (kind, nets) in [(0, &s.nets), (1, &s.not_nets)] {
            for net in nets.iter().filter(|n| n.v6 == v6) {
                let (lo, hi) = net.range();
                regions.push((key(lo), key(hi), bit as u32 * 2 + kind));
            }
        }
    }
    let nets_empty: Vec<bool> = rules.iter().map(|r| side(r).nets.is_empty()).collect();
    let mut counts = vec![(0i32, 0i32); rules.len()];
    let mut state = (row, rows);
    sweep(
        &regions,
        &mut state,
        |(row, _), tag, enter| {
            let bit = (tag / 2) as usize;
            let delta = if enter { 1 } else { -1 };
            if tag % 2 == 0 {
                counts[bit].0 += delta;
            } else {
                counts[bit].1 += delta;
            }
            let c = counts[bit];
            set_bit(row, bit, (nets_empty[bit] || c.0 > 0) && c.1 == 0);
        },
        |(row, rows)| rows.intern(row),
    )
}
