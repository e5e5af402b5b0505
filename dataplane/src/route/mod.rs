//! Routing: the forwarding information base (longest-prefix match) and ECMP.
//!
//! Control builds one [`Fib4`] and one [`Fib6`] per VRF from that VRF's full route list,
//! puts them in the immutable tables it publishes, and never touches them again; a
//! change of routes is a new build and a new publish. Workers only call `lookup`: no
//! allocation, no lock, no panic. A route maps to a [`NextHopId`], an index into the
//! VRF's next-hop table (owned by the caller); an ECMP next hop is a group that the
//! caller resolves with [`ecmp::pick`] over a [`ecmp::flow_hash_v4`] / `_v6`.
//!
//! # Design
//!
//! Both families are multibit tries with a 16-bit root and 8-bit plies, entries of one
//! `u32` (a leaf — next hop plus "has route" bit — or a pointer), and leaf pushing, so a
//! lookup follows pointers until the first leaf and never backtracks (`trie.rs` has the
//! encoding). The root is 65,536 entries (256 KiB): that, not DIR-24-8's 64 MiB, is what
//! an empty or small table costs, so hundreds of VRFs fit.
//!
//! * IPv4 is the classic 16-8-8 (VPP's ip4 mtrie shape): dense plies only, at most three
//!   dependent reads.
//! * IPv6 with only dense plies would spend 1 KiB per level per route below the point
//!   where routes stop sharing bits: 2–6 GiB for 1M /48s and /64s. So a ply is stored
//!   one of three ways, chosen per node at build time: dense (1 KiB, busy nodes), sparse
//!   (run-length encoded: a 256-bit map of run starts, then one entry per run, in 64-byte
//!   lines; up to 7 runs is one line and one read) or, for a chain of plies that each
//!   branch one way only, a 32-byte skip record comparing all the chain's bits at once
//!   (path compression, as Linux's fib_trie does). A lone /64 under its /32 is one skip,
//!   not four plies. [`Fib6::lookup_burst`] interleaves 16 walks so their cache misses
//!   overlap.
//!
//! The build sorts routes by (address, length): in that order every route follows the
//! routes covering it, so painting slots in order leaves the longest match in each, and
//! duplicates paint in input order (the last one wins). It then builds each node once,
//! bottom-up, from the contiguous run of routes below it: O(routes × levels).
//!
//! # Measured
//!
//! `cargo bench -p sluice-perf --bench fib` on a 2-core AMD EPYC VM (2.6 GHz, 32 MiB L3),
//! release. Random tables: IPv4 a default, 60% /24, 35% /16–/23, 5% /25–/32; IPv6 a
//! default, 55% /48, 30% /64, the rest /32–/128, inside 4,096 random /32s. ns per lookup
//! over 4,096 pre-generated addresses (independent lookups, as in a burst): `random`
//! addresses (IPv6: in 2000::/3), and `routed` ones (inside a random route, so the walk
//! goes to the route's depth).
//!
//! ```text
//!            routes  build    memory     random   routed   routed via lookup_burst
//!  Fib4      empty   -        256 KiB      -        -
//!            1k      1 ms     1.2 MiB    0.9 ns   2.0 ns
//!            100k    48 ms    51 MiB     3.2 ns   4.5 ns
//!            1M      0.30 s   105 MiB    4.5 ns   4.2 ns
//!  Fib6      empty   -        256 KiB      -        -
//!            1k      1 ms     0.3 MiB    1.7 ns   12 ns    13 ns
//!            100k    52 ms    8.1 MiB    3.8 ns   32 ns    24 ns
//!            1M      0.54 s   45 MiB     3.8 ns   74 ns    53 ns
//! ```
//!
//! IPv4 at 1M is ~11 cycles a lookup: three reads, few mispredicted branches, so the CPU
//! overlaps the misses of consecutive lookups. IPv6 walks 3–6 nodes of varying kinds;
//! its cost is mostly mispredicted branches on the node kind and walk length (12 ns even
//! when the table sits in L2), plus misses that a mispredict serialises once the table
//! outgrows the L3. The 1M IPv6 table with only dense plies would not fit in memory; with
//! the sparse and skip nodes it is 45 MiB (4,096 dense, 348k sparse, 609k skips).

pub mod ecmp;
mod fib4;
mod fib6;
mod trie;

#[cfg(test)]
mod tests;

pub use fib4::{Fib4, Route4};
pub use fib6::{Fib6, Route6};
pub use trie::MAX_NEXT_HOP;

/// Index of a next hop in the VRF's next-hop table (owned by the caller). At most
/// [`MAX_NEXT_HOP`].
pub type NextHopId = u32;

/// Why a route list cannot be built into a FIB. Each names the offending route.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// Prefix length over 32 (IPv4) or 128 (IPv6).
    #[error("route {prefix}/{len}: prefix length out of range")]
    BadPrefixLen { prefix: String, len: u8 },
    /// Address bits set past the prefix length (`prefix` is `addr/len`).
    #[error("route {prefix}: address has bits set past the prefix length")]
    HostBitsSet { prefix: String },
    /// Next-hop id over [`MAX_NEXT_HOP`] (`prefix` is `addr/len`).
    #[error("route {prefix}: next hop id {nh} over the FIB's limit of {max}", max = MAX_NEXT_HOP)]
    TooManyNextHops { prefix: String, nh: NextHopId },
    /// More nodes than a 29-bit index can name (far beyond any real table).
    #[error("route table too large for the FIB's node index")]
    TableTooLarge,
}
