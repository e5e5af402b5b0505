//! The per-worker flow table: slab of entries, hash index, per-VRF counts, and aging.


use super::index::FlowIndex;
use crate::dpdk::{prefetch_all, HugeArray};
use super::conntrack::{ConnState, CtVerdict, TcpConn, TcpDir, TcpSegment, Timeouts};
use super::key::{Dir, FlowKey};
use super::wheel::{tick_at_or_after, tick_of, Link, Wheel, NIL, SLOTS};

/// Index of an entry (stable for the entry's life).
pub type FlowId = u32;

/// Flow-table configuration, fixed at construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most entries per worker: the table never grows past it and never reallocates.
    pub capacity: u32,
    /// Idle timeouts per protocol and state.
    pub timeouts: Timeouts,
    /// false: liberal like Linux `nf_conntrack_tcp_be_liberal=1` + `tcp_loose=1`
    /// (mid-stream pickup, window not enforced, only gross invalids flagged); true: a
    /// TCP flow may only be opened by a SYN (no ACK), and out-of-window segments are
    /// Invalid.
    pub tcp_strict: bool,
}

impl Default for FlowConfig {
    /// 64Ki entries, default timeouts, liberal TCP.
    fn default() -> Self {
        FlowConfig { capacity: 1 << 16, timeouts: Timeouts::default(), tcp_strict: false }
    }
}

/// Why [`FlowTable::insert`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The key's VRF already has `vrf_limit` flows (counted in `stats.vrf_limited`).
    VrfLimit,
    /// Nothing could be evicted (capacity 0).
    Full,
}

/// The top bit of a stored key's packed small fields: set in the key of every live entry,
/// so a vacant entry (key all zero) never matches a packet.
const LIVE: u64 = 1 << 63;
/// The next bit: an address of the key does not fit 32 bits (IPv6, in practice), so the
/// folds in the line are not the addresses and the cold array holds them.
const WIDE: u64 = 1 << 62;
/// The next: set in no stored key, so a line key with it matches nothing
/// ([`LineKey::barred`]).
const BARRED: u64 = 1 << 61;

/// Whether `k` has an address that does not fit 32 bits.
#[inline(always)]
fn wide(k: &FlowKey) -> bool {
    (k.src | k.dst) >> 32 != 0
}

/// An address folded to 32 bits: the address itself when it fits (every IPv4 address),
/// else its four words xor'ed.
#[inline(always)]
fn fold32(a: u128) -> u32 {
    let x = (a as u64) ^ ((a >> 64) as u64);
    (x as u32) ^ ((x >> 32) as u32)
}

/// A [`FlowKey`] as the entry's line stores it, in 16 bytes: both addresses folded to 32
/// bits ([`fold32`], exact for IPv4) and the small fields packed in one word
/// ([`FlowKey::small`]) with [`LIVE`] and [`WIDE`]. A wide entry (IPv6) keeps its full
/// addresses in the cold array, and a lookup that matches the folds compares them there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct HotKey {
    src: u32,
    dst: u32,
    small: u64,
}

impl HotKey {
    /// The flag bits of a live entry's `small`.
    #[inline(always)]
    fn flags(wide: bool) -> u64 {
        LIVE | if wide { WIDE } else { 0 }
    }

    /// `k`'s line key; `wide` is [`wide`]`(k)`.
    #[inline(always)]
    fn of(k: &FlowKey, wide: bool) -> Self {
        HotKey { src: fold32(k.src), dst: fold32(k.dst), small: k.small() | Self::flags(wide) }
    }

    /// The key, with a wide key's addresses from `cold`.
    fn key(&self, cold: &Cold) -> FlowKey {
        let (src, dst) = if self.small & WIDE != 0 {
            (cold.addrs[0], cold.addrs[1])
        } else {
            (u128::from(self.src), u128::from(self.dst))
        };
        FlowKey::from_small(src, dst, self.small)
    }

    /// The key of the other direction (`HotKey::of(&k.reversed(), w)` of `HotKey::of(k, w)`):
    /// the addresses and the ports swapped, the flags, VRF and protocol kept.
    #[inline(always)]
    fn reversed(&self) -> Self {
        let s = self.small;
        // The ports are the low half of `small` (sport low): swapped by one rotate.
        let small = (s & !0xffff_ffff) | u64::from((s as u32).rotate_left(16));
        HotKey { src: self.dst, dst: self.src, small }
    }
}

/// An IPv4 connection's key as an entry's line stores it (16 bytes: both addresses and
/// the small fields in one word), for the fast path: built once per packet by its parse,
/// then compared to an entry's line in both directions with no 128-bit key to fold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineKey(HotKey);

impl LineKey {
    /// `k`'s line key, or `None` when an address does not fit 32 bits (IPv6: the line
    /// holds folds of those, and only [`FlowTable::lookup`] compares the full addresses).
    #[inline(always)]
    pub fn narrow(k: &FlowKey) -> Option<LineKey> {
        (!wide(k)).then(|| LineKey(HotKey::of(k, false)))
    }

    /// This key made to match no entry in either direction (no stored key has
    /// [`BARRED`] set): for a packet the fast path must leave to the full path.
    #[inline(always)]
    pub fn barred(self) -> LineKey {
        LineKey(HotKey { small: self.0.small | BARRED, ..self.0 })
    }

    /// The IP protocol of the key.
    #[inline(always)]
    pub fn proto(&self) -> u8 {
        (self.0.small >> 48) as u8
    }
}

/// One connection: the one cache line (64 bytes, aligned) a packet of an established
/// connection reads and writes. It holds the key (16 bytes, [`HotKey`]), both
/// directions' cached actions (the routing stage's `FlowAction` is 9 bytes, packed), the
/// epoch, the last-seen time, 32-bit counters and the conntrack state. The idle timeout
/// is not stored: it is a function of the state ([`ConnState::timeout_ms`]). What
/// inserts, aging, strict TCP tracking and `show flows` need — IPv6 addresses, the high
/// halves of the counters, creation time, TCP windows — lives in the table's cold array,
/// and the wheel links in a third; so 64k connections are 4 MiB of hot entries.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct FlowEntry<A> {
    key: HotKey,
    /// Last packet accounted by [`FlowTable::update`] (or the insert time).
    pub last_seen_ms: u64,
    /// Packets per [`Dir`], low 32 bits (the high halves are in the cold array).
    packets: [u32; 2],
    /// Bytes per [`Dir`], low 32 bits.
    bytes: [u32; 2],
    /// Ruleset epoch the actions were decided under (caller-owned; the low 32 bits of
    /// the snapshot epoch: a wrong match would need an entry to stay idle, without
    /// expiring, through exactly 2^32 publishes).
    pub epoch: u32,
    /// Caller-owned cached decision per [`Dir`].
    pub action: [A; 2],
    /// Connection-tracking state.
    pub ct: ConnState,
}

/// A copy of one live entry with everything the table knows of it (for `show flows`,
/// dumps and tests: it reads the cold array, so it is not for the fast path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo<A> {
    /// The connection in its Orig direction.
    pub key: FlowKey,
    pub ct: ConnState,
    pub action: [A; 2],
    pub epoch: u32,
    /// Packets per [`Dir`].
    pub packets: [u64; 2],
    /// Bytes per [`Dir`].
    pub bytes: [u64; 2],
    pub created_ms: u64,
    pub last_seen_ms: u64,
    /// Idle timeout of the current state.
    pub timeout_ms: u64,
}

/// What an entry keeps outside its hot line (96 bytes: an insert writes the first 24, which
/// never straddle a line, plus the windows in strict mode and the addresses of a wide key).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Cold {
    /// Insert time.
    created_ms: u64,
    /// High halves of the hot line's packet and byte counters, per [`Dir`].
    packets_hi: [u32; 2],
    bytes_hi: [u32; 2],
    /// TCP window tracking (strict mode only: liberal mode neither reads nor resets it).
    tcp: [TcpDir; 2],
    /// Wide keys (IPv6): the full addresses (Orig src, dst); stale otherwise.
    addrs: [u128; 2],
}

const _: () = assert!(std::mem::size_of::<Cold>() == 96, "an insert's 24 bytes of Cold never straddle a line");

impl<A: Copy + Default> FlowEntry<A> {
    fn vacant() -> Self {
        FlowEntry {
            key: HotKey::default(),
            last_seen_ms: 0,
            packets: [0; 2],
            bytes: [0; 2],
            epoch: 0,
            action: [A::default(); 2],
            ct: ConnState::Other { replied: false },
        }
    }
}

impl<A> FlowEntry<A> {
    /// Counts a packet of `len` bytes in `dir` at `now_ms`; `Some((dir index, packets
    /// carried, bytes carried))` when a low half wrapped and the cold array needs the carry.
    #[inline(always)]
    fn account(&mut self, dir: Dir, len: u32, now_ms: u64) -> Option<(usize, bool, bool)> {
        let d = dir.index() & 1;
        let (packets, p_carry) = self.packets[d].overflowing_add(1);
        let (bytes, b_carry) = self.bytes[d].overflowing_add(len);
        self.packets[d] = packets;
        self.bytes[d] = bytes;
        self.last_seen_ms = now_ms;
        (p_carry | b_carry).then_some((d, p_carry, b_carry))
    }

    /// Whether the entry holds a connection (not free).
    #[inline(always)]
    fn live(&self) -> bool {
        self.key.small & LIVE != 0
    }
}

/// `hi:lo` as one counter.
#[inline(always)]
fn join(hi: u32, lo: u32) -> u64 {
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Table counters (monotonic since construction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Entries inserted.
    pub inserted: u64,
    /// Entries removed by [`FlowTable::remove`] or [`FlowTable::clear`].
    pub removed: u64,
    /// Entries aged out by [`FlowTable::expire`].
    pub expired: u64,
    /// Entries evicted to make room for an insert.
    pub evicted: u64,
    /// Inserts refused by the per-VRF limit.
    pub vrf_limited: u64,
    /// Packets conntrack found invalid.
    pub invalid: u64,
}

/// How many wheel entries eviction looks at, at most, to find one that is really close to
/// expiry (an entry is linked at or before its real expiry, so the nearest slot can hold
/// flows refreshed by traffic since).
const EVICT_CANDIDATES: u32 = 4;

/// The per-worker flow table. See the module docs.
pub struct FlowTable<A> {
    cfg: FlowConfig,
    /// Huge-page backed, like the index: entries are read at random.
    slab: HugeArray<FlowEntry<A>>,
    /// Per-entry fields off the packet path, by slab index.
    cold: HugeArray<Cold>,
    /// Wheel links by slab index (`next` also chains the free list).
    links: HugeArray<Link>,
    /// Slab indices, hashed by the keys' `sym_hash`; sized for the slab at most half full,
    /// it never grows.
    index: FlowIndex,
    /// Flows per VRF id.
    vrf_count: Box<[u32; 65536]>,
    wheel: Wheel,
    /// Head of the free list (through `links[i].next`), or NIL.
    free: u32,
    len: u32,
    stats: FlowStats,
}

/// The free list over `cap` entries, in slab order.
fn free_links(i: usize, cap: usize) -> Link {
    Link { tick: 0, next: if i + 1 < cap { i as u32 + 1 } else { NIL }, prev: NIL }
}

impl<A: Copy + Default> FlowTable<A> {
    /// Allocates everything for `cfg.capacity` entries (slab + hash index + wheel), once.
    pub fn new(cfg: &FlowConfig) -> Self {
        let cap = cfg.capacity as usize;
        let vrf_count: Box<[u32; 65536]> =
            vec![0u32; 65536].into_boxed_slice().try_into().expect("65536 counters");
        FlowTable {
            cfg: cfg.clone(),
            slab: HugeArray::new(cap, |_| FlowEntry::vacant()),
            cold: HugeArray::new(cap, |_| Cold::default()),
            links: HugeArray::new(cap, |i| free_links(i, cap)),
            index: FlowIndex::with_capacity(cap),
            vrf_count,
            wheel: Wheel::new(),
            free: if cap > 0 { 0 } else { NIL },
            len: 0,
            stats: FlowStats::default(),
        }
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Starts loading the index line `hash` lives in. First of two prefetch passes over a
    /// burst: the index lines of all its packets load together, then
    /// [`prefetch_entry`](Self::prefetch_entry) reads them and starts the entries.
    #[inline(always)]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading the entry the index most likely holds for `hash` (its line), and
    /// returns it: a hint for [`lookup_line`](Self::lookup_line), which then need
    /// not read the index line again.
    #[inline(always)]
    pub fn prefetch_entry(&self, hash: u64) -> Option<FlowId> {
        let id = self.index.candidate(hash)?;
        prefetch_all(self.slab.get(id as usize)?);
        Some(id)
    }

    /// Finds the connection of `key` in either direction; `hash` must be `key.sym_hash()`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64) -> Option<(FlowId, Dir)> {
        let w = wide(key);
        let fwd = HotKey::of(key, w);
        let rev = fwd.reversed();
        self.find_dir(hash, |i| self.holds(i, key, w, &fwd, &rev))
    }

    /// The entry under `hash` for which `holds` names a direction.
    #[inline(always)]
    fn find_dir(&self, hash: u64, holds: impl Fn(FlowId) -> Option<Dir>) -> Option<(FlowId, Dir)> {
        let mut dir = Dir::Orig;
        self.index
            .find(hash, |i| match holds(i) {
                Some(d) => {
                    dir = d;
                    true
                }
                None => false,
            })
            .map(|i| (i, dir))
    }

    /// [`lookup`](Self::lookup) of a narrow key (IPv4), trying entry `hint` first (from
    /// [`prefetch_entry`](Self::prefetch_entry); possibly stale, since inserts and
    /// evictions may have reused the entry: its key decides, keys being unique). A
    /// narrow key is exact in the line, so neither direction needs the cold array, and a
    /// wide entry (its flag set in the line) never matches.
    #[inline(always)]
    pub fn lookup_line(&self, key: &LineKey, hash: u64, hint: Option<FlowId>) -> Option<(FlowId, Dir)> {
        let (fwd, rev) = (key.0, key.0.reversed());
        // Inline, so a right hint costs no call; the index search is out of line.
        if let Some(i) = hint {
            if let Some(d) = self.line_holds(i, &fwd, &rev) {
                return Some((i, d));
            }
        }
        self.find_line(*key, hash)
    }

    /// The index search of [`lookup_line`](Self::lookup_line), the key by value (two
    /// registers).
    #[inline(never)]
    fn find_line(&self, key: LineKey, hash: u64) -> Option<(FlowId, Dir)> {
        let (fwd, rev) = (key.0, key.0.reversed());
        self.find_dir(hash, |i| self.line_holds(i, &fwd, &rev))
    }

    /// Whether entry `i`'s line is `fwd` (Orig) or `rev` (Reply).
    #[inline(always)]
    fn line_holds(&self, i: FlowId, fwd: &HotKey, rev: &HotKey) -> Option<Dir> {
        let e = self.slab.get(i as usize)?;
        if e.key == *fwd {
            Some(Dir::Orig)
        } else if e.key == *rev {
            Some(Dir::Reply)
        } else {
            None
        }
    }

    /// Whether entry `i` is `key`'s connection, and in which direction (`fwd`, `rev`: the
    /// key's line keys both ways, `w`: [`wide`]).
    #[inline(always)]
    fn holds(&self, i: FlowId, key: &FlowKey, w: bool, fwd: &HotKey, rev: &HotKey) -> Option<Dir> {
        let e = self.slab.get(i as usize)?;
        // Wide (IPv6): the line matched the folded addresses; the cold array has the real ones.
        let exact = |a: [u128; 2]| !w || self.cold.get(i as usize).is_some_and(|c| c.addrs == a);
        if e.key == *fwd && exact([key.src, key.dst]) {
            Some(Dir::Orig)
        } else if e.key == *rev && exact([key.dst, key.src]) {
            Some(Dir::Reply)
        } else {
            None
        }
    }

    /// Inserts a new connection with `key` as its Orig direction (caller checked it is
    /// absent). `vrf_limit`: the most flows `key.vrf` may have in this table (u32::MAX:
    /// none) -> Err(VrfLimit), counted. When the table is full, evicts the entry closest
    /// to expiry (approximate, via the wheel; counted as evicted) — never fails for
    /// capacity > 0. The new entry has ct state for its protocol (TCP: state before any
    /// segment; the caller then calls `update` with the first packet), action/epoch
    /// Default/0.
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, hash: u64, now_ms: u64, vrf_limit: u32) -> Result<FlowId, InsertError> {
        let vrf = usize::from(key.vrf);
        if self.vrf_count[vrf] >= vrf_limit {
            self.stats.vrf_limited += 1;
            return Err(InsertError::VrfLimit);
        }
        if self.len == 0 {
            // Nothing to age: skip the ticks no one processed (a fresh table starts at 0).
            self.wheel.next_tick = self.wheel.next_tick.max(tick_of(now_ms));
        }
        if self.free == NIL {
            let victim = self.pick_victim().ok_or(InsertError::Full)?;
            self.release(victim);
            self.stats.evicted += 1;
        }
        let id = self.free;
        let ct = ConnState::new(key.proto);
        let timeout_ms = ct.timeout_ms(&self.cfg.timeouts);
        let (Some(e), Some(cold), Some(link)) =
            (self.slab.get_mut(id as usize), self.cold.get_mut(id as usize), self.links.get(id as usize))
        else {
            return Err(InsertError::Full);
        };
        self.free = link.next;
        let w = wide(key);
        *e = FlowEntry {
            key: HotKey::of(key, w),
            last_seen_ms: now_ms,
            packets: [0; 2],
            bytes: [0; 2],
            epoch: 0,
            action: [A::default(); 2],
            ct,
        };
        cold.created_ms = now_ms;
        cold.packets_hi = [0; 2];
        cold.bytes_hi = [0; 2];
        if self.cfg.tcp_strict {
            cold.tcp = [TcpDir::default(); 2];
        }
        if w {
            cold.addrs = [key.src, key.dst];
        }
        let tick = self.wheel.clamp(tick_at_or_after(now_ms.saturating_add(timeout_ms)));
        self.wheel.link(&mut self.links, id, tick);
        self.index.insert(hash, id);
        self.vrf_count[vrf] += 1;
        self.len += 1;
        self.stats.inserted += 1;
        Ok(id)
    }

    /// The entry `id` (from `lookup`/`insert` in the same burst). Panics if `id` is out of
    /// range; a removed entry's id gives a vacant entry.
    #[inline]
    pub fn entry(&self, id: FlowId) -> &FlowEntry<A> {
        &self.slab[id as usize]
    }

    /// The entry `id`, mutable (for `action` and `epoch`). Panics like [`entry`](Self::entry).
    #[inline]
    pub fn entry_mut(&mut self, id: FlowId) -> &mut FlowEntry<A> {
        &mut self.slab[id as usize]
    }

    /// Everything about live entry `id`; None for a free or out-of-range id.
    pub fn info(&self, id: FlowId) -> Option<FlowInfo<A>> {
        let (e, c) = (self.slab.get(id as usize)?, self.cold.get(id as usize)?);
        e.live().then(|| self.info_of(e, c))
    }

    fn info_of(&self, e: &FlowEntry<A>, c: &Cold) -> FlowInfo<A> {
        FlowInfo {
            key: e.key.key(c),
            ct: e.ct,
            action: e.action,
            epoch: e.epoch,
            packets: [join(c.packets_hi[0], e.packets[0]), join(c.packets_hi[1], e.packets[1])],
            bytes: [join(c.bytes_hi[0], e.bytes[0]), join(c.bytes_hi[1], e.bytes[1])],
            created_ms: c.created_ms,
            last_seen_ms: e.last_seen_ms,
            timeout_ms: e.ct.timeout_ms(&self.cfg.timeouts),
        }
    }

    /// When entry `e` expires unless a packet refreshes it.
    #[inline]
    fn expires_ms(&self, e: &FlowEntry<A>) -> u64 {
        e.last_seen_ms.saturating_add(e.ct.timeout_ms(&self.cfg.timeouts))
    }

    /// Accounts one packet of `len` bytes in `dir`: counters, last_seen and conntrack
    /// state (`tcp`: Some for TCP). Invalid segments change nothing in the entry (not even
    /// its counters or last_seen, so invalid traffic cannot keep a flow alive) and are
    /// counted in stats.invalid; in liberal mode only gross invalids (bad flag
    /// combinations) are reported.
    ///
    /// Touches only the entry's line, unless strict mode tracks TCP windows (the cold
    /// array), a 32-bit counter carries (the cold array, once per 2^32), or the new state
    /// has a shorter timeout (a FIN or RST), when the entry is relinked if it would
    /// otherwise fire late. A refreshed entry is found still alive when its slot fires and
    /// relinked then. `now_ms` never goes back (the worker's clock is monotonic), so
    /// only a shorter timeout can make an entry due earlier.
    ///
    /// Inline for the common packet that changes no state (no TCP segment to track, and a
    /// UDP/ICMP/other connection already replied or this packet in its Orig direction):
    /// the counters and the time only, what the general case below does for it.
    #[inline(always)]
    pub fn update(&mut self, id: FlowId, dir: Dir, len: u32, tcp: Option<&TcpSegment>, now_ms: u64) -> CtVerdict {
        if tcp.is_none() {
            if let Some(e) = self.slab.get_mut(id as usize) {
                let steady = match e.ct {
                    ConnState::Udp { replied } | ConnState::Icmp { replied } | ConnState::Other { replied } => {
                        replied || dir == Dir::Orig
                    }
                    ConnState::Tcp(_) => true,
                };
                if steady && e.live() {
                    if let Some((d, p_carry, b_carry)) = e.account(dir, len, now_ms) {
                        self.carry(id, d, p_carry, b_carry);
                    }
                    return CtVerdict::Ok;
                }
            }
        }
        self.update_any(id, dir, len, tcp, now_ms)
    }

    /// The high halves of entry `id`'s counters in direction `d`, after a low half carried.
    #[cold]
    #[inline(never)]
    fn carry(&mut self, id: FlowId, d: usize, p_carry: bool, b_carry: bool) {
        if let Some(c) = self.cold.get_mut(id as usize) {
            c.packets_hi[d] = c.packets_hi[d].wrapping_add(u32::from(p_carry));
            c.bytes_hi[d] = c.bytes_hi[d].wrapping_add(u32::from(b_carry));
        }
    }

    /// [`update`](Self::update) of any packet.
    #[inline(never)]
    fn update_any(&mut self, id: FlowId, dir: Dir, len: u32, tcp: Option<&TcpSegment>, now_ms: u64) -> CtVerdict {
        let strict = self.cfg.tcp_strict;
        let Some(e) = self.slab.get_mut(id as usize) else { return CtVerdict::Ok };
        if !e.live() {
            return CtVerdict::Ok;
        }
        let before = e.ct;
        let verdict = match (&mut e.ct, tcp) {
            (ConnState::Tcp(state), Some(seg)) => {
                // Only strict mode reads or keeps the windows (the cold line).
                let cold = if strict { self.cold.get_mut(id as usize) } else { None };
                let mut c = TcpConn { state: *state, dirs: cold.as_ref().map_or_else(Default::default, |c| c.tcp) };
                let v = c.update(dir, seg, strict);
                *state = c.state;
                if let Some(cold) = cold {
                    cold.tcp = c.dirs;
                }
                v
            }
            (ConnState::Udp { replied } | ConnState::Icmp { replied } | ConnState::Other { replied }, _) => {
                *replied |= dir == Dir::Reply;
                CtVerdict::Ok
            }
            (ConnState::Tcp(_), None) => CtVerdict::Ok,
        };
        if verdict != CtVerdict::Ok {
            self.stats.invalid += 1;
            return verdict;
        }
        let carried = e.account(dir, len, now_ms);
        let after = e.ct;
        if let Some((d, p_carry, b_carry)) = carried {
            self.carry(id, d, p_carry, b_carry);
        }
        let t = &self.cfg.timeouts;
        if after != before && after.timeout_ms(t) < before.timeout_ms(t) {
            let due = tick_at_or_after(now_ms.saturating_add(after.timeout_ms(t)));
            if self.links.get(id as usize).is_some_and(|l| due < u64::from(l.tick)) {
                self.wheel.unlink(&mut self.links, id);
                let tick = self.wheel.clamp(due);
                self.wheel.link(&mut self.links, id, tick);
            }
        }
        verdict
    }

    /// Removes entry `id` (a vacant or out-of-range id is ignored).
    pub fn remove(&mut self, id: FlowId) {
        if self.slab.get(id as usize).is_some_and(|e| e.live()) {
            self.release(id);
            self.stats.removed += 1;
        }
    }

    /// Expires idle entries whose timeout passed by `now_ms`, at most `budget` of them per
    /// call (bounded work per worker loop). Returns how many expired.
    ///
    /// Processes the wheel's ticks from the last one processed up to `now_ms`'s. Each
    /// entry of a firing slot is either expired or, if traffic refreshed it since it was
    /// linked, relinked at its real expiry. `budget` bounds the entries looked at, expired
    /// or relinked; the next call resumes where this one stopped. Between ticks (1.024 s)
    /// a call costs a compare.
    pub fn expire(&mut self, now_ms: u64, budget: u32) -> u32 {
        let now_tick = tick_of(now_ms);
        if self.wheel.next_tick > now_tick {
            return 0;
        }
        if self.len == 0 {
            self.wheel.next_tick = now_tick + 1;
            return 0;
        }
        // One revolution visits every slot: after a long pause, skip the ticks in between.
        self.wheel.next_tick = self.wheel.next_tick.max((now_tick + 1).saturating_sub(SLOTS as u64));
        let (mut touched, mut expired) = (0u32, 0u32);
        while self.wheel.next_tick <= now_tick {
            loop {
                let i = self.wheel.head(self.wheel.current_slot());
                if i == NIL {
                    break;
                }
                if touched == budget {
                    return expired;
                }
                touched += 1;
                let Some(e) = self.slab.get(i as usize) else { break };
                let due = self.expires_ms(e);
                if due <= now_ms {
                    self.release(i);
                    self.stats.expired += 1;
                    expired += 1;
                } else {
                    // due > now_ms >= next_tick's start, so the new tick is a later one.
                    self.wheel.unlink(&mut self.links, i);
                    let tick = self.wheel.clamp(tick_at_or_after(due).max(self.wheel.next_tick + 1));
                    self.wheel.link(&mut self.links, i, tick);
                }
            }
            self.wheel.next_tick += 1;
        }
        expired
    }

    /// Live entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// No live entry.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `config().capacity`.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// Live entries of `vrf`.
    #[inline]
    pub fn vrf_len(&self, vrf: u16) -> u32 {
        self.vrf_count[usize::from(vrf)]
    }

    /// Counters since construction.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Every live entry (for `show flows` and tests; not for the fast path: walks the
    /// whole slab).
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, FlowInfo<A>)> + '_ {
        self.slab.iter().zip(self.cold.iter()).enumerate().filter(|(_, (e, _))| e.live()).map(|(i, (e, c))| (i as FlowId, self.info_of(e, c)))
    }

    /// Calls `f` on each live entry at slab positions `from..`, visiting at most `budget`
    /// positions (live or not), and returns the position to resume from: the table's
    /// capacity once the whole slab was visited. `f` returning false stops the scan at
    /// that entry, which the next call (from the returned position) visits again.
    ///
    /// For reading a worker's table a little per loop (`show flows`): positions are
    /// stable, so resuming never visits a position twice in one pass; an entry inserted
    /// behind the cursor meanwhile is missed and one inserted ahead of it is seen.
    pub fn scan(&self, from: u32, budget: u32, mut f: impl FnMut(FlowId, FlowInfo<A>) -> bool) -> u32 {
        let end = (from as usize).saturating_add(budget as usize).min(self.slab.len());
        let mut i = from as usize;
        while i < end {
            if let (Some(e), Some(c)) = (self.slab.get(i), self.cold.get(i)) {
                if e.live() && !f(i as FlowId, self.info_of(e, c)) {
                    break;
                }
            }
            i += 1;
        }
        i as u32
    }

    /// Removes everything (keeps the allocation); counted in `stats.removed`.
    pub fn clear(&mut self) {
        let cap = self.slab.len();
        self.slab.fill(FlowEntry::vacant());
        for (i, l) in self.links.iter_mut().enumerate() {
            *l = free_links(i, cap);
        }
        self.free = if cap > 0 { 0 } else { NIL };
        self.index.clear();
        self.wheel.clear();
        self.vrf_count.fill(0);
        self.stats.removed += u64::from(self.len);
        self.len = 0;
    }

    /// Unlinks `id` from the wheel, the index and its VRF's count, and frees it.
    fn release(&mut self, id: FlowId) {
        self.wheel.unlink(&mut self.links, id);
        let (Some(e), Some(c), Some(l)) =
            (self.slab.get_mut(id as usize), self.cold.get(id as usize), self.links.get_mut(id as usize))
        else {
            return;
        };
        let key = e.key.key(c);
        let (hash, vrf) = (key.sym_hash(), usize::from(key.vrf));
        e.key.small &= !LIVE;
        l.next = self.free;
        l.prev = NIL;
        self.free = id;
        self.index.remove(hash, id);
        self.vrf_count[vrf] = self.vrf_count[vrf].saturating_sub(1);
        self.len -= 1;
    }

    /// The entry to evict: walks the wheel from the next tick to fire, over the nearest
    /// non-empty slots, and takes the first entry still linked at its real expiry (no
    /// traffic since it was linked, so nothing expires much sooner); failing that, the
    /// soonest-expiring of the first [`EVICT_CANDIDATES`] looked at. Approximate LRU: an
    /// entry linked early and refreshed since is skipped unless all candidates are.
    fn pick_victim(&self) -> Option<FlowId> {
        let start = self.wheel.next_occupied(self.wheel.current_slot())?;
        let mut slot = start;
        let mut best: Option<(u64, u32)> = None;
        let mut seen = 0;
        loop {
            let mut i = self.wheel.head(slot);
            while let (Some(e), Some(l)) = (self.slab.get(i as usize), self.links.get(i as usize)) {
                let due = self.expires_ms(e);
                if tick_at_or_after(due) <= u64::from(l.tick) {
                    return Some(i);
                }
                if best.is_none_or(|(b, _)| due < b) {
                    best = Some((due, i));
                }
                seen += 1;
                if seen == EVICT_CANDIDATES {
                    return best.map(|(_, i)| i);
                }
                i = l.next;
            }
            slot = self.wheel.next_occupied(slot + 1)?;
            if slot == start {
                return best.map(|(_, i)| i);
            }
        }
    }

    /// Sets the low halves of entry `id`'s counters in `dir` (tests of the carry).
    #[cfg(test)]
    pub(super) fn set_low_counters(&mut self, id: FlowId, dir: Dir, packets: u32, bytes: u32) {
        let e = &mut self.slab[id as usize];
        e.packets[dir.index()] = packets;
        e.bytes[dir.index()] = bytes;
    }

    /// The index's buckets and bytes allocated (tests check they never change).
    #[cfg(test)]
    pub(super) fn index_allocation(&self) -> (usize, usize) {
        self.index.allocation()
    }
}

#[cfg(test)]
mod line_key_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The line key's own reversal (one rotate of the ports) is the line key of the
        /// reversed key, and the line key unpacks to the key (a wide one with its
        /// addresses from the cold array).
        #[test]
        fn the_line_key_reverses_and_unpacks_as_the_key(
            src in any::<u128>(), dst in any::<u128>(), narrow in any::<bool>(),
            vrf in any::<u16>(), sport in any::<u16>(), dport in any::<u16>(), proto in any::<u8>(), v6 in any::<bool>(),
        ) {
            let (src, dst) = if narrow { (src & 0xffff_ffff, dst & 0xffff_ffff) } else { (src, dst) };
            let k = FlowKey { src, dst, vrf, sport, dport, proto, v6 };
            let w = wide(&k);
            let hot = HotKey::of(&k, w);
            prop_assert_eq!(hot.reversed(), HotKey::of(&k.reversed(), w));
            prop_assert_eq!(hot.reversed().reversed(), hot);
            let cold = Cold { addrs: [src, dst], ..Cold::default() };
            prop_assert_eq!(hot.key(&cold), k);
        }
    }
}
