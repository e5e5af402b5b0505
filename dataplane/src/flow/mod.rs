//! Flows: the per-worker flow table with timer-wheel aging, connection tracking for
//! TCP/UDP/ICMP, and the fragment tracker.
//!
//! This module owns the per-connection state a worker keeps between packets: one
//! [`FlowTable`] and one [`FragTable`] per worker, never shared (no locks, no atomics).
//! The pipeline looks a packet's [`FlowKey`] up, inserts on a miss, caches its decision
//! in [`FlowEntry::action`] (tagged with the ruleset `epoch` it was made under), and
//! calls [`FlowTable::update`] per packet; the worker loop calls [`FlowTable::expire`]
//! with a budget every iteration.
//!
//! # Design
//!
//! * One entry per connection, found from both directions: the key hashes symmetrically
//!   ([`FlowKey::sym_hash`]) and the lookup compares the stored Orig key against the
//!   packet's key both ways round, which also tells the packet's [`Dir`].
//! * Everything is allocated by `new` at full size: a slab of entries with an intrusive
//!   free list, a bucketed index of slab indices (`index.rs`: 64-byte buckets of 7
//!   tagged slots) sized for twice the capacity (so it never grows), 65,536 per-VRF
//!   counters, and the timer wheel.
//! * An entry is one cache line (64 bytes), all a packet of an established connection
//!   touches: the key in 16 bytes (addresses folded to 32 bits, exact for IPv4), both
//!   directions' cached actions, epoch, last-seen time, 32-bit counters and conntrack
//!   state; the idle timeout is derived from the state. What inserts, aging, strict TCP
//!   window tracking and `show flows` read (IPv6 addresses, the counters' high halves,
//!   creation time, TCP windows) sits in a parallel cold array, and the wheel links in
//!   another. An IPv6 lookup whose folds match compares the addresses in the cold array.
//!   A lookup is one index line and one entry line; 64k connections are 4 MiB of hot
//!   entries (two lines per entry before: 8 MiB).
//! * Aging is a hashed timer wheel (`wheel.rs`: 4,096 slots × 1.024 s) linked through
//!   the links array. It is lazy: a packet only stores `last_seen_ms` (and a FIN or RST
//!   that shortens the timeout relinks); when a slot fires, each entry in it either
//!   expired or is relinked at its real expiry. A full table evicts the entry nearest
//!   to expiry on the wheel.
//! * Conntrack (`conntrack.rs`) is Linux's TCP machine and window tracking, liberal by
//!   default; UDP/ICMP/other only note whether a reply was seen.
//! * [`FragTable`] maps a datagram's fragments to its first fragment's decision.
//!
//! # Measured
//!
//! `cargo bench -p sluice-perf --bench flow` on the shared 2-core EPYC VM (noisy: two
//! short runs, 1 s warm-up, 2–3 s measurement; the range is run-to-run). ns per packet
//! over 4,096 random packets of existing flows (half in Reply direction), `sym_hash`
//! included (measured with the earlier 256-byte entry). 1M flows are 128 MiB of hot
//! entries + 40 MiB cold + 32 MiB of index, on transparent huge pages: every 1M access
//! misses the cache.
//!
//! ```text
//!  flows   lookup_hit  lookup+update  insert+evict  burst(32 misses)+insert+evict
//!  1k      12–13       22–24          43–58         72
//!  64k     23–27       51–52          51–63         87
//!  1M      42–67       76–111         350–455       345
//!  expire: 14–20 ns per expired entry (64k idle entries in one call)
//! ```
//!
//! Lookups of a burst are independent, so their misses overlap. An insert with eviction
//! is a chain of dependent misses (victim, its index bucket, the new key's bucket, the
//! wheel neighbours): at 1M on this VM (nested paging) that is ~350 ns, over the
//! ~100 ns goal; at 64k (fits the L3) it is ~60 ns.

mod conntrack;
mod frag;
mod index;
mod key;
mod table;
mod wheel;

#[cfg(test)]
mod tests;

pub use conntrack::{
    tcp_flags, tcp_may_open, ConnState, CtVerdict, InvalidReason, TcpConn, TcpDir, TcpSegment, TcpState, Timeouts,
};
pub use frag::FragTable;
pub use key::{Dir, FlowKey, FragKey};
pub use table::{FlowConfig, FlowEntry, FlowId, FlowInfo, FlowStats, FlowTable, InsertError};

/// Length of one aging tick in milliseconds: entries expire at most this much after
/// their timeout.
pub const TICK_MS: u64 = 1 << wheel::TICK_SHIFT;
