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
//! `cargo bench -p sluice-perf --bench flow` on the shared 2-core EPYC VM, pinned
//! (`taskset -c 1`, 1 s warm-up, 2 s measurement). ns per packet over 4,096 random
//! packets of existing flows (half in Reply direction), `sym_hash` included. December 3,
//! two alternating runs each of the two-line entry (dd80195) and this one-line entry; the
//! VM moved by up to 50 % between runs of one binary, so the ranges overlap:
//!
//! ```text
//!              lookup_hit  lookup+update  insert+evict  burst(32 misses)+insert+evict
//!  1k  2 lines  8–11       20–27          49–59         60–61
//!      1 line   12–13      22–25          72–75         90
//!  64k 2 lines  16–21      27–46          106–153       114–138
//!      1 line   21–24      33–40          152–160       128–142
//!  1M  2 lines  32–35      64–68          219–230       181–190
//!      1 line   37–38      59–74          241–244       224–228
//!  expire (64k idle entries in one call): 40–75 ns per expired entry, either entry
//! ```
//!
//! In this bench (random keys over the whole table) one line instead of two did not make
//! lookups faster, and inserts got slower: an insert now writes three arrays (entry,
//! cold, wheel links) instead of two, and eviction derives each candidate's timeout from
//! its state (callgrind, insert + evict + update on a full 1k table: 343 → 370
//! instructions, most of the difference bounds checks of the third array). Where it pays
//! is the system run, which moves more than a lookup's lines: at 1M connections the
//! stateful pipeline went from 7.0 to 7.6–8.5 Mpps (docs/PERFORMANCE.md, "One-line flow
//! entries").
//!
//! Lookups of a burst are independent, so their misses overlap. An insert with eviction
//! is a chain of dependent misses (victim, its index bucket, the new key's bucket, the
//! wheel neighbours).

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
pub use table::{FlowConfig, FlowEntry, FlowId, FlowInfo, FlowStats, FlowTable, InsertError, LineKey};

/// Length of one aging tick in milliseconds: entries expire at most this much after
/// their timeout.
pub const TICK_MS: u64 = 1 << wheel::TICK_SHIFT;
