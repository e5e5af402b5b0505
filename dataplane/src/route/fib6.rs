//! The IPv6 FIB: a 16-bit root, then 8-bit plies that are dense, sparse or
//! path-compressed (see [`super::trie`]).

use std::fmt;
use std::net::Ipv6Addr;

use super::trie::{self, Prefix, Trie, KIND_DENSE, KIND_SPARSE, MAX_NEXT_HOP, ROOT_BITS, STRIDE};
use super::{FibError, NextHopId};

/// One IPv6 route: `prefix/len` → next hop `nh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route6 {
    /// Network address; bits past `len` must be zero.
    pub prefix: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub len: u8,
    /// Index into the VRF's next-hop table.
    pub nh: NextHopId,
}

impl Route6 {
    /// A route to `prefix/len` via `nh`.
    pub const fn new(prefix: Ipv6Addr, len: u8, nh: NextHopId) -> Self {
        Route6 { prefix, len, nh }
    }
}

/// Addresses [`Fib6::lookup_burst`] walks at once.
const BURST_LANES: usize = 16;

/// Upper bound on the nodes a lookup visits below the root: every node consumes at least
/// 8 bits of the 112 left. Bounds the loop even if the table were corrupt.
const MAX_STEPS: usize = (128 - ROOT_BITS as usize) / STRIDE as usize;

/// An immutable IPv6 longest-prefix-match table.
///
/// A 65,536-entry root indexed by the top 16 bits; below it one node per 8 bits, where a
/// node is a dense 256-entry ply, a run-length encoded sparse ply, or a skip record that
/// stands for a whole chain of single-branch plies (path compression). Leaves are pushed
/// down, so a lookup follows pointers until the first leaf. An empty table costs the
/// 256 KiB root.
///
/// Thread-safety: never mutated after [`build`](Self::build); `Send + Sync`, so one
/// instance behind an `Arc` in the published tables serves every worker.
pub struct Fib6 {
    trie: Trie,
}

impl Fib6 {
    /// Builds the table from the full route list of one VRF.
    ///
    /// Order does not matter, except that when the same prefix appears more than once the
    /// **last** occurrence wins. Errors name the first offending route: a length over 128,
    /// bits set past the length, or a next hop over [`MAX_NEXT_HOP`].
    pub fn build(routes: &[Route6]) -> Result<Fib6, FibError> {
        let mut prefixes = Vec::with_capacity(routes.len());
        for r in routes {
            if r.len > 128 {
                return Err(FibError::BadPrefixLen { prefix: r.prefix.to_string(), len: r.len });
            }
            let key = u128::from(r.prefix);
            if key & u128::MAX.checked_shr(u32::from(r.len)).unwrap_or(0) != 0 {
                return Err(FibError::HostBitsSet { prefix: format!("{}/{}", r.prefix, r.len) });
            }
            if r.nh > MAX_NEXT_HOP {
                return Err(FibError::TooManyNextHops { prefix: format!("{}/{}", r.prefix, r.len), nh: r.nh });
            }
            prefixes.push(Prefix { key, len: r.len, nh: r.nh });
        }
        Ok(Fib6 { trie: trie::build(prefixes, true)? })
    }

    /// The next hop of the longest prefix covering `addr` (`u128::from(Ipv6Addr)`), or
    /// `None` if no route covers it.
    ///
    /// No allocation, no lock, no panic. One read for the root, then one per node (two
    /// for a sparse ply of over 7 runs), until a leaf.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<NextHopId> {
        let mut e = self.trie.root[(addr >> 112) as usize];
        let mut depth = ROOT_BITS;
        for _ in 0..MAX_STEPS {
            if trie::is_leaf(e) {
                break;
            }
            (e, depth) = self.step(e, depth, addr);
        }
        Self::answer(e)
    }

    /// [`lookup`](Self::lookup) for each of `addrs` into `out` (as many as the shorter
    /// of the two holds).
    ///
    /// The walks are interleaved 16 at a time, one node per address per round, so the
    /// reads of different addresses overlap instead of each walk waiting out its own
    /// cache misses: about 1.4× faster per address than `lookup` in a loop on tables
    /// of 100k–1M routes; no gain on tables that fit in the L2 cache.
    pub fn lookup_burst(&self, addrs: &[u128], out: &mut [Option<NextHopId>]) {
        for (addrs, out) in addrs.chunks(BURST_LANES).zip(out.chunks_mut(BURST_LANES)) {
            let mut e = [trie::NO_ROUTE; BURST_LANES];
            let mut depth = [ROOT_BITS; BURST_LANES];
            for (e, &a) in e.iter_mut().zip(addrs) {
                *e = self.trie.root[(a >> 112) as usize];
            }
            for _ in 0..MAX_STEPS {
                let mut walking = false;
                for ((e, depth), &a) in e.iter_mut().zip(&mut depth).zip(addrs) {
                    if !trie::is_leaf(*e) {
                        (*e, *depth) = self.step(*e, *depth, a);
                        walking = true;
                    }
                }
                if !walking {
                    break;
                }
            }
            for (o, &e) in out.iter_mut().zip(e.iter().take(addrs.len())) {
                *o = Self::answer(e);
            }
        }
    }

    /// Follows pointer `e` of a node at `depth` one node down for `addr`: the next entry
    /// and its depth. A dangling pointer (never, once built) reads as "no route".
    #[inline(always)]
    fn step(&self, e: u32, depth: u32, addr: u128) -> (u32, u32) {
        let t = &self.trie;
        let i = trie::index(e);
        let slot = addr.wrapping_shr(120u32.wrapping_sub(depth)) as u8;
        match trie::kind(e) {
            KIND_DENSE => (t.dense.get(i).map_or(trie::NO_ROUTE, |p| p[usize::from(slot)]), depth + STRIDE),
            KIND_SPARSE => (trie::sparse_get(&t.sparse, i, slot).unwrap_or(trie::NO_ROUTE), depth + STRIDE),
            _ => match t.skips.get(i) {
                Some(s) => (if s.matches(addr) { s.hit } else { s.miss }, u32::from(s.end)),
                None => (trie::NO_ROUTE, depth),
            },
        }
    }

    /// The answer an entry gives at the end of a walk (a leaf, unless the table is corrupt).
    #[inline(always)]
    fn answer(e: u32) -> Option<NextHopId> {
        if trie::is_leaf(e) {
            trie::leaf_nh(e)
        } else {
            None
        }
    }

    /// Distinct prefixes in the table (duplicates count once).
    pub fn len(&self) -> usize {
        self.trie.prefixes
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.trie.prefixes == 0
    }

    /// Bytes the table occupies (root, all nodes and the struct itself).
    pub fn memory_bytes(&self) -> usize {
        self.trie.memory_bytes()
    }

    /// Node counts: (dense plies, sparse plies, skips).
    pub fn nodes(&self) -> (usize, usize, usize) {
        (self.trie.dense.len(), self.trie.sparse_nodes, self.trie.skips.len())
    }
}

impl Default for Fib6 {
    /// The empty table (every lookup is `None`).
    fn default() -> Self {
        Fib6 { trie: trie::build(Vec::new(), true).unwrap_or_else(|_| unreachable!("empty table")) }
    }
}

impl fmt::Debug for Fib6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dense, sparse, skips) = self.nodes();
        f.debug_struct("Fib6")
            .field("prefixes", &self.len())
            .field("dense", &dense)
            .field("sparse", &sparse)
            .field("skips", &skips)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, nh: NextHopId) -> Route6 {
        let (a, l) = s.split_once('/').unwrap();
        Route6::new(a.parse().unwrap(), l.parse().unwrap(), nh)
    }

    fn ip(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn empty_table_misses() {
        let f = Fib6::build(&[]).unwrap();
        assert!(f.is_empty());
        assert_eq!(f.lookup(0), None);
        assert_eq!(f.lookup(u128::MAX), None);
        assert_eq!(f.nodes(), (0, 0, 0));
        assert!(f.memory_bytes() >= 256 * 1024 && f.memory_bytes() < 257 * 1024);
        assert_eq!(Fib6::default().lookup(1), None);
    }

    #[test]
    fn default_route_covers_everything() {
        let f = Fib6::build(&[r("::/0", 9)]).unwrap();
        for a in [0, 1, ip("2001:db8::1"), u128::MAX] {
            assert_eq!(f.lookup(a), Some(9));
        }
    }

    #[test]
    fn host_route_matches_only_itself() {
        let f = Fib6::build(&[
            r("2001:db8::1/128", 1),
            r("::/128", 2),
            r("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 3),
        ])
        .unwrap();
        assert_eq!(f.lookup(ip("2001:db8::1")), Some(1));
        assert_eq!(f.lookup(ip("2001:db8::")), None);
        assert_eq!(f.lookup(ip("2001:db8::2")), None);
        assert_eq!(f.lookup(ip("2001:db9::1")), None);
        assert_eq!(f.lookup(0), Some(2));
        assert_eq!(f.lookup(1), None);
        assert_eq!(f.lookup(u128::MAX), Some(3));
        assert_eq!(f.lookup(u128::MAX - 1), None);
    }

    #[test]
    fn nested_prefixes_resolve_to_the_longest() {
        let routes = [
            r("2001:db8:1:2::/64", 64),
            r("2001:db8::/32", 32),
            r("::/0", 0),
            r("2001:db8:1::/48", 48),
            r("2001:db8:1:2::8000/113", 113),
            r("2001:db8:1:2::8001/128", 128),
            r("2001::/16", 16),
            r("2001:db8:1::/56", 56),
        ];
        let f = Fib6::build(&routes).unwrap();
        assert_eq!(f.len(), 8);
        assert_eq!(f.lookup(ip("2002::")), Some(0));
        assert_eq!(f.lookup(ip("2001:1::")), Some(16));
        assert_eq!(f.lookup(ip("2001:db8:ffff::")), Some(32));
        assert_eq!(f.lookup(ip("2001:db8:1:ffff::")), Some(48));
        assert_eq!(f.lookup(ip("2001:db8:1:ff::")), Some(56));
        assert_eq!(f.lookup(ip("2001:db8:1:100::")), Some(48));
        assert_eq!(f.lookup(ip("2001:db8:1:2::1")), Some(64));
        assert_eq!(f.lookup(ip("2001:db8:1:2::8000")), Some(113));
        assert_eq!(f.lookup(ip("2001:db8:1:2::8001")), Some(128));
        assert_eq!(f.lookup(ip("2001:db8:1:2::ffff")), Some(113));
        assert_eq!(f.lookup(ip("2001:db8:1:2::1:0")), Some(64));
        assert_eq!(f.lookup(ip("2001:db8:1:3::")), Some(56));
    }

    #[test]
    fn lone_prefix_is_one_skip() {
        // A /64 alone below a /16: the plies for bits 16..64 collapse into one record.
        let f = Fib6::build(&[r("2001::/16", 1), r("2001:db8:aaaa:bbbb::/64", 2)]).unwrap();
        assert_eq!(f.nodes(), (0, 0, 1));
        assert_eq!(f.lookup(ip("2001:db8:aaaa:bbbb::1")), Some(2));
        assert_eq!(f.lookup(ip("2001:db8:aaaa:bbbc::1")), Some(1));
        assert_eq!(f.lookup(ip("2001:db9:aaaa:bbbb::1")), Some(1));
        assert_eq!(f.lookup(ip("2001:db8:aaaa:bbbb::1") ^ (1 << 64)), Some(1));
        assert_eq!(f.lookup(ip("2001:db8:aaaa:bbbb::1") ^ (1 << 111)), Some(1));
        assert_eq!(f.lookup(ip("2002:db8:aaaa:bbbb::1")), None);
    }

    #[test]
    fn skip_chain_breaks_where_the_covering_route_changes() {
        // /20 inside the skip's range: below it the default differs, so two skips.
        let f = Fib6::build(&[r("2001:db8::/32", 1), r("2001:db8:1:2::/64", 2), r("2001:db8:1::/48", 3)]).unwrap();
        assert_eq!(f.lookup(ip("2001:db8:1:2::9")), Some(2));
        assert_eq!(f.lookup(ip("2001:db8:1:3::9")), Some(3));
        assert_eq!(f.lookup(ip("2001:db8:2::")), Some(1));
        assert_eq!(f.lookup(ip("2001:db9::")), None);
        assert_eq!(f.lookup(ip("2001:db7::")), None);
        assert_eq!(f.nodes(), (0, 0, 3));
    }

    #[test]
    fn sparse_and_dense_plies() {
        // 8 /48s in one /40 (16 runs): a sparse ply of two lines. 256 of them: a dense one.
        let few: Vec<_> =
            (0..8u16).map(|i| Route6::new(Ipv6Addr::new(0x2001, 0xdb8, i * 32, 0, 0, 0, 0, 0), 48, i.into())).collect();
        let f = Fib6::build(&few).unwrap();
        assert_eq!(f.nodes().1, 1, "{f:?}");
        let many: Vec<_> =
            (0..256u16).map(|i| Route6::new(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), 48, i.into())).collect();
        let g = Fib6::build(&many).unwrap();
        assert_eq!(g.nodes().0, 1, "{g:?}");
        for i in 0..256u16 {
            let a = u128::from(Ipv6Addr::new(0x2001, 0xdb8, i, 7, 0, 0, 0, 1));
            assert_eq!(g.lookup(a), Some(i.into()));
            assert_eq!(f.lookup(a), if i % 32 == 0 { Some((i / 32).into()) } else { None });
        }
    }

    #[test]
    fn duplicates_last_wins() {
        let f = Fib6::build(&[
            r("2001:db8::/32", 1),
            r("2001:db8:1::/48", 5),
            r("2001:db8::/32", 2),
            r("2001:db8:1::/48", 6),
        ])
        .unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f.lookup(ip("2001:db8:2::")), Some(2));
        assert_eq!(f.lookup(ip("2001:db8:1::1")), Some(6));
    }

    #[test]
    fn bad_routes_are_rejected_by_name() {
        let e = Fib6::build(&[r("2001:db8::/129", 1)]).unwrap_err();
        assert_eq!(e, FibError::BadPrefixLen { prefix: "2001:db8::".into(), len: 129 });
        assert!(e.to_string().contains("2001:db8::/129"), "{e}");
        let e = Fib6::build(&[r("2001:db8::1/64", 1)]).unwrap_err();
        assert_eq!(e, FibError::HostBitsSet { prefix: "2001:db8::1/64".into() });
        assert!(Fib6::build(&[r("::1/0", 1)]).is_err());
        assert!(Fib6::build(&[r("::1/127", 1)]).is_err());
        assert!(matches!(Fib6::build(&[r("::/0", u32::MAX)]), Err(FibError::TooManyNextHops { .. })));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Fib6>();
    }
}
