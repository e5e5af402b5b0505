//! The multibit trie behind [`Fib4`](super::Fib4) and [`Fib6`](super::Fib6): the entry
//! encoding, the node arenas, and the one builder both families use.
//!
//! Addresses are handled as left-aligned `u128` keys (an IPv4 address is `addr << 96`), so
//! "bit `d`" always means the `d`-th bit from the top and both families share one builder.
//! The root indexes the top [`ROOT_BITS`] bits; every level below indexes [`STRIDE`] more.
//!
//! # Entries
//!
//! Every root slot and every ply slot is one `u32`:
//!
//! ```text
//!  31 30 29 28                                   0
//! | 0| R|          next hop id (30 bits)          |  leaf: R = a route covers it
//! | 1| kind|        node index (29 bits)          |  pointer: kind 0 dense, 1 sparse, 2 skip
//! ```
//!
//! A leaf without R is "no route" (the all-zero entry). Leaves are pushed down (prefix
//! expansion): every slot holds the answer for its whole address range, so a lookup stops
//! at the first leaf it meets and never backtracks.
//!
//! # Nodes
//!
//! * **Dense ply** `[u32; 256]`: one entry per value of the next 8 bits. The only node
//!   kind IPv4 uses (16-8-8, at most 3 dependent reads).
//! * **Sparse ply** (IPv6 only): the same 256 slots run-length encoded: a 256-bit map of
//!   where runs start, one byte offset per 64 slots, then one entry per run, in whole
//!   64-byte lines ([`sparse_get`]). One population count finds the entry. A ply of up to 7 runs
//!   (three routes or branches) is one line and one read, as a dense ply; up to
//!   [`SPARSE_MAX_RUNS`] is two lines.
//! * **Skip** (IPv6 only, path compression): a chain of plies that each differ from one
//!   default in a single slot (what a lone /48 or /64 below its covering route looks like)
//!   collapses into one 32-byte record: "if bits `start..end` of the address equal `key`,
//!   continue with `hit`, else the answer is `miss`".
//!
//! The builder picks the kind per node from its 256 entries: all equal → no node (the
//! parent gets the leaf); one exception → skip (merged with a skip below that has the
//! same default); at most [`SPARSE_MAX_RUNS`] runs → sparse; else dense.

use super::{FibError, NextHopId};

/// Bits indexed by the root table (65,536 entries, 256 KiB).
pub(crate) const ROOT_BITS: u32 = 16;
/// Root entries.
pub(crate) const ROOT_SIZE: usize = 1 << ROOT_BITS;
/// Bits indexed by every ply below the root.
pub(crate) const STRIDE: u32 = 8;
/// Entries of a ply.
pub(crate) const PLY: usize = 1 << STRIDE;

/// Pointer flag; clear means leaf.
pub(crate) const PTR: u32 = 1 << 31;
/// Leaf flag: a route covers this slot.
pub(crate) const ROUTE: u32 = 1 << 30;
/// Largest next-hop id a FIB can hold (30 bits).
pub const MAX_NEXT_HOP: NextHopId = (1 << 30) - 1;
const KIND_SHIFT: u32 = 29;
pub(crate) const KIND_DENSE: u32 = 0;
pub(crate) const KIND_SPARSE: u32 = 1;
pub(crate) const KIND_SKIP: u32 = 2;
/// Index bits of a pointer.
pub(crate) const IDX_MASK: u32 = (1 << KIND_SHIFT) - 1;
/// The "no route" leaf.
pub(crate) const NO_ROUTE: u32 = 0;

/// A ply with at most this many runs of equal entries is stored sparse (IPv6 only):
/// (9 + 23) × 4 = 128 bytes, an eighth of a dense ply. Denser plies stay dense so the
/// busy upper levels of a big table keep their single read.
pub(crate) const SPARSE_MAX_RUNS: usize = 23;

/// The leaf for next hop `nh` (checked against [`MAX_NEXT_HOP`] by the caller).
#[inline(always)]
pub(crate) const fn leaf(nh: NextHopId) -> u32 {
    ROUTE | nh
}

/// The answer a leaf gives.
#[inline(always)]
pub(crate) const fn leaf_nh(e: u32) -> Option<NextHopId> {
    if e & ROUTE != 0 {
        Some(e & MAX_NEXT_HOP)
    } else {
        None
    }
}

#[inline(always)]
pub(crate) const fn is_leaf(e: u32) -> bool {
    e & PTR == 0
}

#[inline(always)]
pub(crate) const fn kind(e: u32) -> u32 {
    (e >> KIND_SHIFT) & 3
}

#[inline(always)]
pub(crate) const fn index(e: u32) -> usize {
    (e & IDX_MASK) as usize
}

const fn pointer(kind: u32, index: usize) -> u32 {
    PTR | (kind << KIND_SHIFT) | index as u32
}

/// One 64-byte line of the sparse-ply arena.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Line(pub [u32; 16]);

/// Words of a sparse ply before its runs: the 256-bit run-start map as 8 `u32`s (low
/// half of each 64-bit word first), then one word of four byte-sized run offsets.
const SPARSE_HEADER: usize = 9;

/// The entry for `slot` in the sparse ply starting at line `at`, or `None` if the node
/// is corrupt (never, once built).
///
/// Layout (`u32` words from the node's first line, 64-byte aligned):
///
/// ```text
/// 0..8   map: bit s set where slot s starts a new run (slot 0 always does)
/// 8      byte w: SPARSE_HEADER - 1 + runs starting in map words before w
/// 9..    one entry per run
/// ```
///
/// So the entry is word `offset[w] + popcnt(map[w] & bits 0..=s)`; with up to 7 runs the
/// node is one cache line and costs a single read, like a dense ply.
#[inline(always)]
pub(crate) fn sparse_get(lines: &[Line], at: usize, slot: u8) -> Option<u32> {
    let head = &lines.get(at)?.0;
    let w = usize::from(slot >> 6);
    let map = u64::from(head[2 * w]) | (u64::from(head[2 * w + 1]) << 32);
    let below = map & (u64::MAX >> (63 - (slot & 63)));
    let pos = ((head[8] >> (8 * w)) & 0xff) as usize + below.count_ones() as usize;
    Some(lines.get(at + pos / 16)?.0[pos % 16])
}

/// A compressed chain of single-exception plies (path compression), 32 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Skip {
    /// The expected address bits `start..end`, in place; every other bit zero.
    pub key: u128,
    /// Where to continue when the bits match.
    pub hit: u32,
    /// The answer for every other address below this node (a leaf).
    pub miss: u32,
    /// First bit compared.
    pub start: u8,
    /// Bit after the last one compared: the depth `hit` continues at.
    pub end: u8,
    /// `128 - (end - start)`: `((addr ^ key) << start) >> rshift` is the compared bits.
    pub rshift: u8,
}

impl Skip {
    /// Whether `addr` has the bits this skip expects.
    #[inline(always)]
    pub fn matches(&self, addr: u128) -> bool {
        ((addr ^ self.key).wrapping_shl(u32::from(self.start))).wrapping_shr(u32::from(self.rshift)) == 0
    }
}

/// The built table: root plus node arenas. Never mutated after [`build`].
pub(crate) struct Trie {
    pub root: Box<[u32; ROOT_SIZE]>,
    pub dense: Vec<[u32; PLY]>,
    /// Sparse plies, each one or more whole lines.
    pub sparse: Vec<Line>,
    /// Sparse plies in [`Self::sparse`].
    pub sparse_nodes: usize,
    pub skips: Vec<Skip>,
    /// Distinct prefixes loaded.
    pub prefixes: usize,
}

impl Trie {
    /// Bytes allocated by the table (heap and inline).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        size_of::<Self>()
            + ROOT_SIZE * size_of::<u32>()
            + self.dense.capacity() * size_of::<[u32; PLY]>()
            + self.sparse.capacity() * size_of::<Line>()
            + self.skips.capacity() * size_of::<Skip>()
    }
}

/// A validated route: left-aligned key with no bits past `len`, next hop already checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefix {
    pub key: u128,
    pub len: u8,
    pub nh: NextHopId,
}

/// Builds the trie from validated prefixes. `compress` enables the sparse and skip node
/// kinds (IPv6); without it every node is a dense ply (IPv4: 16-8-8).
///
/// Duplicates of a prefix: the last one in `prefixes` wins.
pub(crate) fn build(mut prefixes: Vec<Prefix>, compress: bool) -> Result<Trie, FibError> {
    // Sorted by (address, length), a route comes after every route that covers it, so
    // painting in this order leaves the longest match in each slot; the stable sort keeps
    // duplicates in input order, so the last one paints last. Address order also makes
    // the build walk the table front to back.
    prefixes.sort_by_key(|p| (p.key, p.len));
    let distinct =
        prefixes.len() - prefixes.windows(2).filter(|w| w[0].key == w[1].key && w[0].len == w[1].len).count();

    let mut b = Builder { dense: Vec::new(), sparse: Vec::new(), sparse_nodes: 0, skips: Vec::new(), compress };
    let mut root: Box<[u32; ROOT_SIZE]> =
        vec![NO_ROUTE; ROOT_SIZE].into_boxed_slice().try_into().unwrap_or_else(|_| unreachable!("vec of ROOT_SIZE"));
    b.fill(&mut root[..], 0, ROOT_BITS, &prefixes)?;

    b.dense.shrink_to_fit();
    b.sparse.shrink_to_fit();
    b.skips.shrink_to_fit();
    Ok(Trie {
        root,
        dense: b.dense,
        sparse: b.sparse,
        sparse_nodes: b.sparse_nodes,
        skips: b.skips,
        prefixes: distinct,
    })
}

struct Builder {
    dense: Vec<[u32; PLY]>,
    sparse: Vec<Line>,
    sparse_nodes: usize,
    skips: Vec<Skip>,
    compress: bool,
}

/// The `bits`-wide slot of `key` below bit `depth`.
#[inline]
fn slot(key: u128, depth: u32, bits: u32) -> usize {
    ((key << depth) >> (128 - bits)) as usize
}

impl Builder {
    /// Fills `table` (2^`bits` slots for the bits `depth..depth + bits`, pre-set to the
    /// covering answer) from `routes`: every route lies below this node and is longer
    /// than `depth`, sorted by (address, length).
    fn fill(&mut self, table: &mut [u32], depth: u32, bits: u32, routes: &[Prefix]) -> Result<(), FibError> {
        let end = depth + bits;
        // Routes ending in this node: expand each over its slots (leaf pushing).
        for r in routes.iter().filter(|r| u32::from(r.len) <= end) {
            let first = slot(r.key, depth, bits);
            let n = 1usize << (end - u32::from(r.len));
            table[first..first + n].fill(leaf(r.nh));
        }
        // Longer routes: one child per slot, over the contiguous run of routes in it. In
        // that run the routes ending here (all at the slot's first address) come first.
        let mut i = 0;
        while i < routes.len() {
            let s = slot(routes[i].key, depth, bits);
            let k = i + routes[i..].partition_point(|r| slot(r.key, depth, bits) == s);
            let long = i + routes[i..k].partition_point(|r| u32::from(r.len) <= end);
            if long < k {
                table[s] = self.node(end, &routes[long..k], table[s])?;
            }
            i = k;
        }
        Ok(())
    }

    /// The entry for the node at `depth` holding `routes`, below a covering answer `dflt`.
    fn node(&mut self, depth: u32, routes: &[Prefix], dflt: u32) -> Result<u32, FibError> {
        let mut e = [dflt; PLY];
        self.fill(&mut e, depth, STRIDE, routes)?;

        let runs = 1 + e.windows(2).filter(|w| w[0] != w[1]).count();
        if runs == 1 {
            return Ok(e[0]);
        }
        if self.compress {
            // One slot differs from all the others: path-compress.
            let common = if e[0] == e[1] { e[0] } else { e[2] };
            let mut odd = e.iter().enumerate().filter(|(_, &v)| v != common);
            if let (Some((s, &hit)), None) = (odd.next(), odd.next()) {
                return self.skip(depth, s, hit, common);
            }
            if runs <= SPARSE_MAX_RUNS {
                return self.sparse(&e, runs);
            }
        }
        if self.dense.len() > IDX_MASK as usize {
            return Err(FibError::TableTooLarge);
        }
        self.dense.push(e);
        Ok(pointer(KIND_DENSE, self.dense.len() - 1))
    }

    /// A skip for "slot `s` of the ply at `depth` leads to `hit`, every other slot is
    /// `miss`", merged into `hit` when that is a skip starting right below with the
    /// same `miss`.
    fn skip(&mut self, depth: u32, s: usize, hit: u32, miss: u32) -> Result<u32, FibError> {
        let bits = (s as u128) << (128 - depth - STRIDE);
        if !is_leaf(hit) && kind(hit) == KIND_SKIP {
            let below = &mut self.skips[index(hit)];
            if u32::from(below.start) == depth + STRIDE && below.miss == miss {
                below.key |= bits;
                below.start = depth as u8;
                below.rshift -= STRIDE as u8;
                return Ok(hit);
            }
        }
        if self.skips.len() > IDX_MASK as usize {
            return Err(FibError::TableTooLarge);
        }
        let end = depth + STRIDE;
        self.skips.push(Skip {
            key: bits,
            hit,
            miss,
            start: depth as u8,
            end: end as u8,
            rshift: (128 - STRIDE) as u8,
        });
        Ok(pointer(KIND_SKIP, self.skips.len() - 1))
    }

    /// A sparse ply for entries `e` that have `runs` runs (see [`sparse_get`]).
    fn sparse(&mut self, e: &[u32; PLY], runs: usize) -> Result<u32, FibError> {
        let at = self.sparse.len();
        if at > IDX_MASK as usize {
            return Err(FibError::TableTooLarge);
        }
        let mut words = [0u32; SPARSE_HEADER + PLY];
        let mut n = SPARSE_HEADER;
        for s in 0..PLY {
            if s % 64 == 0 {
                words[8] |= ((n - 1) as u32) << (8 * (s / 64));
            }
            if s == 0 || e[s] != e[s - 1] {
                words[s / 32] |= 1 << (s % 32);
                words[n] = e[s];
                n += 1;
            }
        }
        debug_assert_eq!(n, SPARSE_HEADER + runs);
        for chunk in words[..n].chunks(16) {
            let mut line = Line::default();
            line.0[..chunk.len()].copy_from_slice(chunk);
            self.sparse.push(line);
        }
        self.sparse_nodes += 1;
        Ok(pointer(KIND_SPARSE, at))
    }
}
