//! The IPv4 FIB: a 16-8-8 multibit trie with leaf pushing (see [`super::trie`]).

use std::fmt;
use std::net::Ipv4Addr;

use super::trie::{self, Prefix, Trie, MAX_NEXT_HOP};
use super::{FibError, NextHopId};

/// One IPv4 route: `prefix/len` → next hop `nh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route4 {
    /// Network address; bits past `len` must be zero.
    pub prefix: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
    /// Index into the VRF's next-hop table.
    pub nh: NextHopId,
}

impl Route4 {
    /// A route to `prefix/len` via `nh`.
    pub const fn new(prefix: Ipv4Addr, len: u8, nh: NextHopId) -> Self {
        Route4 { prefix, len, nh }
    }
}

/// An immutable IPv4 longest-prefix-match table.
///
/// A 65,536-entry root indexed by the top 16 bits, then 256-entry plies for bits 16..24
/// and 24..32, created only where a longer prefix needs them and filled with the covering
/// answer (leaf pushing). A lookup is at most three dependent reads: root, ply, ply.
/// An empty table costs the 256 KiB root; each /16 holding a longer prefix adds 1 KiB,
/// each /24 holding a prefix longer than /24 another 1 KiB.
///
/// Thread-safety: never mutated after [`build`](Self::build); `Send + Sync`, so one
/// instance behind an `Arc` in the published tables serves every worker.
pub struct Fib4 {
    trie: Trie,
}

impl Fib4 {
    /// Builds the table from the full route list of one VRF.
    ///
    /// Order does not matter, except that when the same prefix appears more than once the
    /// **last** occurrence wins. Errors name the first offending route: a length over 32,
    /// bits set past the length, or a next hop over [`MAX_NEXT_HOP`].
    pub fn build(routes: &[Route4]) -> Result<Fib4, FibError> {
        let mut prefixes = Vec::with_capacity(routes.len());
        for r in routes {
            if r.len > 32 {
                return Err(FibError::BadPrefixLen { prefix: r.prefix.to_string(), len: r.len });
            }
            let addr = u32::from(r.prefix);
            if addr & u32::MAX.checked_shr(u32::from(r.len)).unwrap_or(0) != 0 {
                return Err(FibError::HostBitsSet { prefix: format!("{}/{}", r.prefix, r.len) });
            }
            if r.nh > MAX_NEXT_HOP {
                return Err(FibError::TooManyNextHops { prefix: format!("{}/{}", r.prefix, r.len), nh: r.nh });
            }
            prefixes.push(Prefix { key: u128::from(addr) << 96, len: r.len, nh: r.nh });
        }
        Ok(Fib4 { trie: trie::build(prefixes, false)? })
    }

    /// The next hop of the longest prefix covering `addr` (host order:
    /// `u32::from(Ipv4Addr)`), or `None` if no route covers it.
    ///
    /// No allocation, no lock, no panic; at most three dependent memory reads.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHopId> {
        let t = &self.trie;
        let e = t.root[(addr >> 16) as usize];
        if trie::is_leaf(e) {
            return trie::leaf_nh(e);
        }
        let e = t.dense.get(trie::index(e))?[((addr >> 8) & 0xff) as usize];
        if trie::is_leaf(e) {
            return trie::leaf_nh(e);
        }
        let e = t.dense.get(trie::index(e))?[(addr & 0xff) as usize];
        trie::leaf_nh(e)
    }

    /// Distinct prefixes in the table (duplicates count once).
    pub fn len(&self) -> usize {
        self.trie.prefixes
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.trie.prefixes == 0
    }

    /// Bytes the table occupies (root, plies and the struct itself).
    pub fn memory_bytes(&self) -> usize {
        self.trie.memory_bytes()
    }

    /// 256-entry plies below the root.
    pub fn plies(&self) -> usize {
        self.trie.dense.len()
    }
}

impl Default for Fib4 {
    /// The empty table (every lookup is `None`).
    fn default() -> Self {
        Fib4 { trie: trie::build(Vec::new(), false).unwrap_or_else(|_| unreachable!("empty table")) }
    }
}

impl fmt::Debug for Fib4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fib4")
            .field("prefixes", &self.len())
            .field("plies", &self.plies())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, nh: NextHopId) -> Route4 {
        let (a, l) = s.split_once('/').unwrap();
        Route4::new(a.parse().unwrap(), l.parse().unwrap(), nh)
    }

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn empty_table_misses() {
        let f = Fib4::build(&[]).unwrap();
        assert!(f.is_empty());
        assert_eq!(f.lookup(0), None);
        assert_eq!(f.lookup(u32::MAX), None);
        assert_eq!(f.lookup(ip("10.1.2.3")), None);
        assert_eq!(f.plies(), 0);
        assert!(f.memory_bytes() >= 256 * 1024 && f.memory_bytes() < 257 * 1024);
        assert_eq!(Fib4::default().lookup(1), None);
    }

    #[test]
    fn default_route_covers_everything() {
        let f = Fib4::build(&[r("0.0.0.0/0", 7)]).unwrap();
        for a in [0, 1, ip("10.0.0.1"), ip("192.168.255.255"), u32::MAX] {
            assert_eq!(f.lookup(a), Some(7));
        }
        assert_eq!(f.plies(), 0);
    }

    #[test]
    fn host_route_matches_only_itself() {
        let f = Fib4::build(&[r("10.1.2.3/32", 1), r("255.255.255.255/32", 2), r("0.0.0.0/32", 3)]).unwrap();
        assert_eq!(f.lookup(ip("10.1.2.3")), Some(1));
        assert_eq!(f.lookup(ip("10.1.2.2")), None);
        assert_eq!(f.lookup(ip("10.1.2.4")), None);
        assert_eq!(f.lookup(u32::MAX), Some(2));
        assert_eq!(f.lookup(u32::MAX - 1), None);
        assert_eq!(f.lookup(0), Some(3));
        assert_eq!(f.lookup(1), None);
    }

    #[test]
    fn nested_prefixes_resolve_to_the_longest() {
        let routes = [
            r("10.1.2.128/25", 25),
            r("10.1.2.0/24", 24),
            r("10.0.0.0/8", 8),
            r("10.1.0.0/16", 16),
            r("0.0.0.0/0", 0),
            r("10.1.2.200/32", 32),
            r("10.1.128.0/17", 17),
        ];
        let f = Fib4::build(&routes).unwrap();
        assert_eq!(f.len(), 7);
        assert_eq!(f.lookup(ip("11.0.0.0")), Some(0));
        assert_eq!(f.lookup(ip("10.2.0.0")), Some(8));
        assert_eq!(f.lookup(ip("10.255.255.255")), Some(8));
        assert_eq!(f.lookup(ip("10.1.0.0")), Some(16));
        assert_eq!(f.lookup(ip("10.1.127.255")), Some(16));
        assert_eq!(f.lookup(ip("10.1.128.0")), Some(17));
        assert_eq!(f.lookup(ip("10.1.2.0")), Some(24));
        assert_eq!(f.lookup(ip("10.1.2.127")), Some(24));
        assert_eq!(f.lookup(ip("10.1.2.128")), Some(25));
        assert_eq!(f.lookup(ip("10.1.2.199")), Some(25));
        assert_eq!(f.lookup(ip("10.1.2.200")), Some(32));
        assert_eq!(f.lookup(ip("10.1.2.201")), Some(25));
        assert_eq!(f.lookup(ip("10.1.3.0")), Some(16));
        assert_eq!(f.lookup(ip("9.255.255.255")), Some(0));
    }

    #[test]
    fn short_prefixes_span_root_slots() {
        // /8 and /12 expand over 256 and 16 root slots; a /20 below the /12 gets a ply.
        let f = Fib4::build(&[r("172.16.0.0/12", 12), r("172.0.0.0/8", 8), r("172.20.16.0/20", 20)]).unwrap();
        assert_eq!(f.lookup(ip("172.15.255.255")), Some(8));
        assert_eq!(f.lookup(ip("172.16.0.0")), Some(12));
        assert_eq!(f.lookup(ip("172.31.255.255")), Some(12));
        assert_eq!(f.lookup(ip("172.32.0.0")), Some(8));
        assert_eq!(f.lookup(ip("172.20.16.1")), Some(20));
        assert_eq!(f.lookup(ip("172.20.31.255")), Some(20));
        assert_eq!(f.lookup(ip("172.20.32.0")), Some(12));
        assert_eq!(f.lookup(ip("173.0.0.0")), None);
        assert_eq!(f.plies(), 1);
    }

    #[test]
    fn duplicates_last_wins() {
        let f =
            Fib4::build(&[r("10.0.0.0/8", 1), r("10.1.1.0/24", 5), r("10.0.0.0/8", 2), r("10.1.1.0/24", 6)]).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f.lookup(ip("10.9.9.9")), Some(2));
        assert_eq!(f.lookup(ip("10.1.1.1")), Some(6));
    }

    #[test]
    fn uniform_ply_collapses_to_a_leaf() {
        // Two /17s with the same next hop cover their /16 evenly: no ply needed.
        let f = Fib4::build(&[r("10.1.0.0/17", 3), r("10.1.128.0/17", 3)]).unwrap();
        assert_eq!(f.plies(), 0);
        assert_eq!(f.lookup(ip("10.1.200.1")), Some(3));
        assert_eq!(f.lookup(ip("10.2.0.0")), None);
    }

    #[test]
    fn bad_routes_are_rejected_by_name() {
        let e = Fib4::build(&[r("10.0.0.0/8", 1), r("10.0.0.0/33", 1)]).unwrap_err();
        assert_eq!(e, FibError::BadPrefixLen { prefix: "10.0.0.0".into(), len: 33 });
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");

        let e = Fib4::build(&[r("10.1.0.0/8", 1)]).unwrap_err();
        assert_eq!(e, FibError::HostBitsSet { prefix: "10.1.0.0/8".into() });
        assert!(e.to_string().contains("10.1.0.0/8"), "{e}");
        assert!(Fib4::build(&[r("0.0.0.1/0", 1)]).is_err());
        assert!(Fib4::build(&[r("10.0.0.1/31", 1)]).is_err());

        let e = Fib4::build(&[r("10.0.0.0/8", MAX_NEXT_HOP + 1)]).unwrap_err();
        assert!(matches!(e, FibError::TooManyNextHops { .. }));
        assert!(e.to_string().contains("10.0.0.0/8"), "{e}");
        assert_eq!(Fib4::build(&[r("10.0.0.0/8", MAX_NEXT_HOP)]).unwrap().lookup(ip("10.0.0.1")), Some(MAX_NEXT_HOP));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Fib4>();
    }
}
