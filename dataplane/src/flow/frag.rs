//! The fragment tracker: the decision taken on each datagram's first fragment, for its
//! other fragments (which carry no ports, so they cannot find the flow themselves).
//!
//! A 4-way set-associative array indexed by [`FragKey::frag_hash`]: a record goes to the
//! key's way if present, else a free or timed-out way, else the way recorded longest
//! ago. Bounded work, no allocation after `new`, and under a flood of first fragments
//! the oldest datagrams lose their record first (their tails are then dropped: the
//! safe failure).

use super::key::FragKey;

/// Ways per set.
const WAYS: usize = 4;

#[derive(Clone, Copy, Debug)]
struct Slot<D> {
    key: FragKey,
    d: D,
    recorded_ms: u64,
}

/// Remembers the decision of each datagram's first fragment so the non-first fragments
/// follow it; fixed capacity, entries time out after `timeout_ms`. A tail whose first
/// fragment was not seen (or was overwritten) finds nothing, and the caller drops it.
pub struct FragTable<D> {
    slots: Box<[Option<Slot<D>>]>,
    /// Sets - 1 (the number of sets is a power of two).
    set_mask: u64,
    timeout_ms: u64,
    used: usize,
}

impl<D: Copy> FragTable<D> {
    /// Room for `capacity` datagrams, rounded up to a power of two of 4-way sets
    /// (capacity 0: records nothing, finds nothing).
    pub fn new(capacity: u32, timeout_ms: u64) -> Self {
        let sets = if capacity == 0 { 0 } else { (capacity as usize).div_ceil(WAYS).next_power_of_two() };
        FragTable {
            slots: vec![None; sets * WAYS].into_boxed_slice(),
            set_mask: (sets as u64).saturating_sub(1),
            timeout_ms,
            used: 0,
        }
    }

    /// The ways of `key`'s set (empty if the table has no capacity).
    #[inline]
    fn set_range(&self, key: &FragKey) -> std::ops::Range<usize> {
        if self.slots.is_empty() {
            return 0..0;
        }
        let set = (key.frag_hash() & self.set_mask) as usize;
        set * WAYS..set * WAYS + WAYS
    }

    #[inline]
    fn alive(&self, recorded_ms: u64, now_ms: u64) -> bool {
        now_ms < recorded_ms.saturating_add(self.timeout_ms)
    }

    /// Records decision `d` for the datagram `key` (its first fragment), replacing any
    /// earlier record of the same key.
    pub fn record(&mut self, key: &FragKey, d: D, now_ms: u64) {
        let range = self.set_range(key);
        let new = Some(Slot { key: *key, d, recorded_ms: now_ms });
        let Some(set) = self.slots.get(range.clone()) else { return };
        // The key's own way, else a free way, else a timed-out one, else the oldest.
        let mut pick: Option<(usize, u64)> = None;
        for (w, s) in set.iter().enumerate() {
            let rank = match s {
                Some(s) if s.key == *key => 0,
                None => 1,
                Some(s) if !self.alive(s.recorded_ms, now_ms) => 2,
                Some(s) => s.recorded_ms.saturating_add(3),
            };
            if pick.is_none_or(|(_, r)| rank < r) {
                pick = Some((w, rank));
            }
        }
        let Some((w, rank)) = pick else { return };
        if let Some(slot) = self.slots.get_mut(range.start + w) {
            if rank == 1 {
                self.used += 1;
            }
            *slot = new;
        }
    }

    /// The decision recorded for `key`, if recorded less than `timeout_ms` ago.
    #[inline]
    pub fn lookup(&self, key: &FragKey, now_ms: u64) -> Option<D> {
        let set = self.slots.get(self.set_range(key))?;
        set.iter().flatten().find(|s| s.key == *key && self.alive(s.recorded_ms, now_ms)).map(|s| s.d)
    }

    /// Records held, including ones that timed out but were not yet reused: an upper
    /// bound on the live ones (exact under a steady flow of fragments, which reuses
    /// timed-out ways first).
    pub fn len(&self) -> usize {
        self.used
    }

    /// No record held.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Ways in total (the capacity after rounding).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}
