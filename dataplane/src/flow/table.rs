//! The per-worker flow table: slab of entries, hash index, per-VRF counts, and aging.


use super::index::FlowIndex;
use crate::dpdk::{prefetch_all, HugeArray};
use super::conntrack::{ConnState, CtVerdict, TcpConn, TcpDir, TcpSegment, Timeouts};
use super::key::{Dir, FlowKey};
use super::wheel::{tick_at_or_after, tick_of, Wheel, NIL, SLOTS};

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

/// A [`FlowKey`] as an entry stores it: the addresses as `u64` pairs and the small
/// fields packed in one word ([`FlowKey::small`]), so it takes 40 bytes with 8-byte
/// alignment (`FlowKey`'s `u128`s align it to 16 and pad it to 48, which would push the
/// cached actions out of the entry's first line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct StoredKey {
    src: [u64; 2],
    dst: [u64; 2],
    small: u64,
}

#[inline(always)]
fn halves(a: u128) -> [u64; 2] {
    [a as u64, (a >> 64) as u64]
}

impl StoredKey {
    #[inline(always)]
    fn of(k: &FlowKey) -> Self {
        StoredKey { src: halves(k.src), dst: halves(k.dst), small: k.small() }
    }

    /// The key of the other direction (`k.reversed()`, stored).
    #[inline(always)]
    fn reversed_of(k: &FlowKey) -> Self {
        StoredKey { src: halves(k.dst), dst: halves(k.src), small: k.small_reversed() }
    }

    fn key(&self) -> FlowKey {
        let join = |h: [u64; 2]| u128::from(h[0]) | (u128::from(h[1]) << 64);
        let s = self.small;
        FlowKey {
            src: join(self.src),
            dst: join(self.dst),
            vrf: s as u16,
            sport: (s >> 16) as u16,
            dport: (s >> 32) as u16,
            proto: (s >> 48) as u8,
            v6: (s >> 56) & 1 != 0,
        }
    }
}

/// One connection: the two cache lines (128 bytes, one aligned pair) that a packet of
/// an established connection touches. Line 0 is what a lookup and a cache hit read —
/// the key and both directions' cached actions (with the routing stage's 12-byte
/// `FlowAction`: 40 + 24 bytes); line 1 what the packet's accounting writes — epoch,
/// timeout, last-seen time, counters, wheel links and conntrack state. What only
/// inserts, strict TCP tracking and `show flows` need lives in the table's separate
/// cold array, so the hot working set is 128 bytes per connection.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct FlowEntry<A> {
    key: StoredKey,
    /// Caller-owned cached decision per [`Dir`].
    pub action: [A; 2],
    /// Ruleset epoch the actions were decided under (caller-owned; the low 32 bits of
    /// the snapshot epoch: a wrong match would need an entry to stay idle, without
    /// expiring, through exactly 2^32 publishes).
    pub epoch: u32,
    /// Idle timeout of the current state (at most 864,000 s by config).
    timeout_ms: u32,
    /// Last packet accounted by [`FlowTable::update`] (or the insert time).
    pub last_seen_ms: u64,
    /// Packets per [`Dir`].
    pub packets: [u64; 2],
    /// Bytes per [`Dir`].
    pub bytes: [u64; 2],
    /// Wheel tick the entry is linked at (at most its real expiry tick; 32 bits of
    /// 1.024 s ticks last 139 years).
    pub(super) tick: u32,
    /// Wheel list links; `next` also chains the free list.
    pub(super) next: u32,
    pub(super) prev: u32,
    /// Connection-tracking state.
    pub ct: ConnState,
    pub(super) live: bool,
}

/// What an entry keeps outside its hot lines.
#[derive(Clone, Copy, Debug, Default)]
struct Cold {
    /// Insert time.
    created_ms: u64,
    /// TCP window tracking (strict mode).
    tcp: [TcpDir; 2],
}

impl<A: Copy + Default> FlowEntry<A> {
    fn vacant(next: u32) -> Self {
        FlowEntry {
            key: StoredKey::default(),
            action: [A::default(); 2],
            epoch: 0,
            timeout_ms: 0,
            last_seen_ms: 0,
            packets: [0; 2],
            bytes: [0; 2],
            tick: 0,
            next,
            prev: NIL,
            ct: ConnState::Other { replied: false },
            live: false,
        }
    }
}

impl<A> FlowEntry<A> {
    /// The connection in its Orig direction.
    #[inline]
    pub fn key(&self) -> FlowKey {
        self.key.key()
    }

    /// Idle timeout of the entry's current state.
    #[inline]
    pub fn timeout_ms(&self) -> u64 {
        u64::from(self.timeout_ms)
    }

    /// When the entry expires unless a packet refreshes it (`expire` removes it at most
    /// one wheel tick, 1.024 s, later).
    #[inline]
    pub fn expires_ms(&self) -> u64 {
        self.last_seen_ms.saturating_add(u64::from(self.timeout_ms))
    }
}

/// A timeout as the entry stores it (config bounds timeouts far below `u32::MAX` ms).
#[inline(always)]
fn timeout32(ms: u64) -> u32 {
    ms.min(u64::from(u32::MAX)) as u32
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
    /// Slab indices, hashed by the keys' `sym_hash`; sized for the slab at most half full,
    /// it never grows.
    index: FlowIndex,
    /// Flows per VRF id.
    vrf_count: Box<[u32; 65536]>,
    wheel: Wheel,
    /// Head of the free list (through `next`), or NIL.
    free: u32,
    len: u32,
    stats: FlowStats,
}

impl<A: Copy + Default> FlowTable<A> {
    /// Allocates everything for `cfg.capacity` entries (slab + hash index + wheel), once.
    ///
    pub fn new(cfg: &FlowConfig) -> Self {
        let cap = cfg.capacity;
        let slab = HugeArray::new(cap as usize, |i| {
            let i = i as u32;
            FlowEntry::vacant(if i + 1 < cap { i + 1 } else { NIL })
        });
        let vrf_count: Box<[u32; 65536]> =
            vec![0u32; 65536].into_boxed_slice().try_into().expect("65536 counters");
        FlowTable {
            cfg: cfg.clone(),
            slab,
            cold: HugeArray::new(cap as usize, |_| Cold::default()),
            index: FlowIndex::with_capacity(cap as usize),
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

    /// Starts loading the entry the index most likely holds for `hash` (its two lines).
    #[inline(always)]
    pub fn prefetch_entry(&self, hash: u64) {
        if let Some(e) = self.index.candidate(hash).and_then(|id| self.slab.get(id as usize)) {
            prefetch_all(e);
        }
    }

    /// Finds the connection of `key` in either direction; `hash` must be `key.sym_hash()`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64) -> Option<(FlowId, Dir)> {
        let (fwd, rev) = (StoredKey::of(key), StoredKey::reversed_of(key));
        let slab = &*self.slab;
        let mut dir = Dir::Orig;
        self.index
            .find(hash, |i| {
                let Some(e) = slab.get(i as usize) else { return false };
                if e.key == fwd {
                    dir = Dir::Orig;
                    true
                } else if e.key == rev {
                    dir = Dir::Reply;
                    true
                } else {
                    false
                }
            })
            .map(|i| (i, dir))
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
        let (Some(e), Some(cold)) = (self.slab.get_mut(id as usize), self.cold.get_mut(id as usize)) else {
            return Err(InsertError::Full);
        };
        self.free = e.next;
        *e = FlowEntry {
            key: StoredKey::of(key),
            action: [A::default(); 2],
            epoch: 0,
            timeout_ms: timeout32(timeout_ms),
            last_seen_ms: now_ms,
            packets: [0; 2],
            bytes: [0; 2],
            tick: 0,
            next: NIL,
            prev: NIL,
            ct,
            live: true,
        };
        *cold = Cold { created_ms: now_ms, tcp: [TcpDir::default(); 2] };
        let tick = self.wheel.clamp(tick_at_or_after(now_ms.saturating_add(timeout_ms)));
        self.wheel.link(&mut self.slab, id, tick);
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

    /// Accounts one packet of `len` bytes in `dir`: counters, last_seen, conntrack state
    /// (`tcp`: Some for TCP), and the entry's timeout for its new state. Invalid segments
    /// change nothing in the entry (not even its counters or last_seen, so invalid
    /// traffic cannot keep a flow alive) and are counted in stats.invalid; in liberal
    /// mode only gross invalids (bad flag combinations) are reported.
    ///
    /// Does not relink in the wheel unless the new timeout expires before the tick the
    /// entry is linked at (a FIN or RST): a refreshed entry is found still alive when
    /// its slot fires and relinked then, so the per-packet cost is a few stores.
    #[inline]
    pub fn update(&mut self, id: FlowId, dir: Dir, len: u32, tcp: Option<&TcpSegment>, now_ms: u64) -> CtVerdict {
        let strict = self.cfg.tcp_strict;
        let Some(e) = self.slab.get_mut(id as usize) else { return CtVerdict::Ok };
        if !e.live {
            return CtVerdict::Ok;
        }
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
        let d = dir.index() & 1;
        e.packets[d] += 1;
        e.bytes[d] += u64::from(len);
        e.last_seen_ms = now_ms;
        e.timeout_ms = timeout32(e.ct.timeout_ms(&self.cfg.timeouts));
        let due = tick_at_or_after(e.expires_ms());
        if due < u64::from(e.tick) {
            self.wheel.unlink(&mut self.slab, id);
            let tick = self.wheel.clamp(due);
            self.wheel.link(&mut self.slab, id, tick);
        }
        verdict
    }

    /// Removes entry `id` (a vacant or out-of-range id is ignored).
    pub fn remove(&mut self, id: FlowId) {
        if self.slab.get(id as usize).is_some_and(|e| e.live) {
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
                let due = e.expires_ms();
                if due <= now_ms {
                    self.release(i);
                    self.stats.expired += 1;
                    expired += 1;
                } else {
                    // due > now_ms >= next_tick's start, so the new tick is a later one.
                    self.wheel.unlink(&mut self.slab, i);
                    let tick = self.wheel.clamp(tick_at_or_after(due).max(self.wheel.next_tick + 1));
                    self.wheel.link(&mut self.slab, i, tick);
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

    /// When entry `id` was inserted (0 for an id out of range).
    pub fn created_ms(&self, id: FlowId) -> u64 {
        self.cold.get(id as usize).map_or(0, |c| c.created_ms)
    }

    /// Every live entry (for `show flows`; not for the fast path: walks the whole slab).
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, &FlowEntry<A>)> {
        self.slab.iter().enumerate().filter(|(_, e)| e.live).map(|(i, e)| (i as FlowId, e))
    }

    /// Calls `f` on each live entry at slab positions `from..`, visiting at most `budget`
    /// positions (live or not), and returns the position to resume from: the table's
    /// capacity once the whole slab was visited. `f` returning false stops the scan at
    /// that entry, which the next call (from the returned position) visits again.
    ///
    /// For reading a worker's table a little per loop (`show flows`): positions are
    /// stable, so resuming never visits a position twice in one pass; an entry inserted
    /// behind the cursor meanwhile is missed and one inserted ahead of it is seen.
    pub fn scan(&self, from: u32, budget: u32, mut f: impl FnMut(FlowId, &FlowEntry<A>) -> bool) -> u32 {
        let end = (from as usize).saturating_add(budget as usize).min(self.slab.len());
        let mut i = from as usize;
        while i < end {
            if let Some(e) = self.slab.get(i) {
                if e.live && !f(i as FlowId, e) {
                    break;
                }
            }
            i += 1;
        }
        i as u32
    }

    /// Removes everything (keeps the allocation); counted in `stats.removed`.
    pub fn clear(&mut self) {
        let cap = self.slab.len() as u32;
        for (i, e) in self.slab.iter_mut().enumerate() {
            let i = i as u32;
            *e = FlowEntry::vacant(if i + 1 < cap { i + 1 } else { NIL });
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
        self.wheel.unlink(&mut self.slab, id);
        let Some(e) = self.slab.get_mut(id as usize) else { return };
        let key = e.key();
        let (hash, vrf) = (key.sym_hash(), usize::from(key.vrf));
        e.live = false;
        e.next = self.free;
        e.prev = NIL;
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
            while let Some(e) = self.slab.get(i as usize) {
                let due = e.expires_ms();
                if tick_at_or_after(due) <= u64::from(e.tick) {
                    return Some(i);
                }
                if best.is_none_or(|(b, _)| due < b) {
                    best = Some((due, i));
                }
                seen += 1;
                if seen == EVICT_CANDIDATES {
                    return best.map(|(_, i)| i);
                }
                i = e.next;
            }
            slot = self.wheel.next_occupied(slot + 1)?;
            if slot == start {
                return best.map(|(_, i)| i);
            }
        }
    }

    /// The index's buckets and bytes allocated (tests check they never change).
    #[cfg(test)]
    pub(super) fn index_allocation(&self) -> (usize, usize) {
        self.index.allocation()
    }
}
