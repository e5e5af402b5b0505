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
//! lookup follows pointers until the first leaf and never backtracks ([`trie`] has the
//! encoding). The root is 65,536 entries (256 KiB): that, not DIR-24-8's 64 MiB, is what
//! an empty or small table costs, so hundreds of VRFs fit.
//!
//! * IPv4 is the classic 16-8-8 (VPP's ip4 mtrie shape): dense plies only, at most three
//!   dependent reads.
//! * IPv6 with only dense plies would spend 1 KiB per level per route below the point
//!   where routes stop sharing bits: 4–6 GiB for 1M /48s and /64s. So a ply is stored
//!   one of three ways, chosen per node at build time: dense (1 KiB, busy nodes), sparse
//!   (run-length encoded with a 256-bit map and a popcount, 64 B + 4 B per run) or, for
//!   a chain of plies that each branch one way only, a 32-byte skip record comparing all
//!   the chain's bits at once (path compression, as Linux's fib_trie does). A lone /64
//!   under its /32 is one skip, not six plies.
//!
//! The build sorts routes by (address, length): in that order every route follows the
//! routes covering it, so painting slots in order leaves the longest match in each, and
//! duplicates paint in input order (the last one wins). It then builds each node once,
//! bottom-up, from the contiguous run of routes below it: O(routes × levels).
//!
//! # Measured
//!
//! (2-core VM, release, criterion; random tables as in `perf/benches/fib.rs`: IPv4
//! mostly /24 with /16–/23 and a few /25–/32 plus a default; IPv6 mostly /48 and /64
//! inside 4,096 random /32s. Lookups over 4,096 pre-generated addresses.)
//!
//! MEASURED_TABLE

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
