//! The flow table's hash index: cache-line buckets of (tag, slab index) pairs.
//!
//! Why not hashbrown: its removals leave tombstones that eventually force an O(n) in-place
//! rehash on some packet's insert, and its lookup reads a control group and a separate slot
//! array before the entry. Here a bucket is
//! one 64-byte line holding seven slots; the index is sized so that at most half the slots
//! are in use, so a lookup almost always reads exactly one line before the entry.
//!
//! Collisions overflow into the following buckets (linear probing by bucket). Each bucket
//! counts the entries that passed it because it was full (`displaced`); a lookup stops at
//! the first bucket with `displaced == 0`, so a miss costs one line too. Removal clears the
//! slot and decrements the counters the entry passed: no tombstones, nothing to rehash, no
//! allocation after construction.

use crate::dpdk::{match_tags7, prefetch, HugeArray};

/// Slots per bucket.
const SLOTS: usize = 7;
/// An empty slot's tag (tags of entries are odd).
const EMPTY: u32 = 0;

#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Bucket {
    tags: [u32; SLOTS],
    ids: [u32; SLOTS],
    /// Entries whose home bucket is this one or an earlier one but which live further on.
    displaced: u32,
    _pad: u32,
}

/// The tag of `hash`: its high half, odd so it is never `EMPTY`.
#[inline(always)]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32 | 1
}

/// Bucketed (tag, id) index. `id`s are slab indices; equality is decided by the caller.
#[derive(Debug)]
pub(super) struct FlowIndex {
    /// Huge-page backed: the index is read at random, once per packet.
    buckets: HugeArray<Bucket>,
}

impl FlowIndex {
    /// An index for up to `n` ids, half full when it holds `n`. The bucket count is not
    /// rounded to a power of two (that made the index up to twice this size, a quarter
    /// full: at 64k connections in a table of 128k, 4 MiB of lines where 2.3 do), since
    /// its lines compete for the cache with the entries and the packets.
    pub(super) fn with_capacity(n: usize) -> Self {
        let buckets = (2 * n).div_ceil(SLOTS).clamp(1, u32::MAX as usize);
        FlowIndex { buckets: HugeArray::new(buckets, |_| Bucket::default()) }
    }

    /// The bucket `hash` starts at: its low 32 bits scaled to the bucket count (a
    /// multiply and a shift, uniform for any count; the tag is the high half).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The bucket after `b`, the last wrapping to the first.
    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 >= self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// The id stored under `hash` for which `eq` holds.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = self.buckets.get(b)?;
            let mut m = match_tags7(&bucket.tags, tag);
            while m != 0 {
                if let Some(&id) = bucket.ids.get(m.trailing_zeros() as usize) {
                    if eq(id) {
                        return Some(id);
                    }
                }
                m &= m - 1;
            }
            if bucket.displaced == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Starts loading the home bucket of `hash` (see [`FlowTable::prefetch_index`]).
    #[inline(always)]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            prefetch(b);
        }
    }

    /// The first id in the home bucket of `hash` whose tag matches (unchecked: for
    /// prefetching the entry only).
    #[inline(always)]
    pub(super) fn candidate(&self, hash: u64) -> Option<u32> {
        let tag = tag_of(hash);
        let bucket = self.buckets.get(self.home(hash))?;
        bucket.ids.get(match_tags7(&bucket.tags, tag).trailing_zeros() as usize).copied()
    }

    /// Adds `id` under `hash` (the caller keeps the index at most half full, so there is
    /// always a free slot).
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, id: u32) {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            if let Some(s) = bucket.tags.iter().position(|t| *t == EMPTY) {
                bucket.tags[s] = tag;
                bucket.ids[s] = id;
                return;
            }
            bucket.displaced += 1;
            b = self.next(b);
        }
    }

    /// Removes `id` stored under `hash`; false if it is not there.
    #[inline]
    pub(super) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let tag = tag_of(hash);
        let home = self.home(hash);
        let mut b = home;
        for steps in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            if let Some(s) = (0..SLOTS).find(|&s| bucket.tags[s] == tag && bucket.ids[s] == id) {
                bucket.tags[s] = EMPTY;
                let mut p = home;
                for _ in 0..steps {
                    self.buckets[p].displaced -= 1;
                    p = self.next(p);
                }
                return true;
            }
            if bucket.displaced == 0 {
                return false;
            }
            b = self.next(b);
        }
        false
    }

    pub(super) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
    }

    /// Buckets and bytes allocated (fixed at construction).
    #[cfg(test)]
    pub(super) fn allocation(&self) -> (usize, usize) {
        (self.buckets.len(), std::mem::size_of_val(&*self.buckets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_mask_names_every_equal_slot() {
        let mut x = 0x9e37_79b9u32;
        for _ in 0..2000 {
            let mut tags = [0u32; SLOTS];
            for t in &mut tags {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Few distinct values, so repeats and every position occur.
                *t = x % 4;
            }
            for tag in 0..5 {
                let want = (0..SLOTS).fold(0, |m, s| m | (u32::from(tags[s] == tag) << s));
                assert_eq!(match_tags7(&tags, tag), want, "{tags:?} {tag}");
            }
        }
    }

    #[test]
    fn collisions_overflow_and_removal_restores_the_counters() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        // Twenty ids all homed in the first bucket (low hash bits 0), then in the last
        // (low bits all ones), whose overflow wraps to the first; distinct tags.
        for low in [0, u64::from(u32::MAX)] {
            let mut ix = FlowIndex::with_capacity(8);
            let n = ix.buckets.len();
            assert_eq!(n, 3, "16 slots' worth, not rounded up");
            let hash = |i: u32| (u64::from(i) << 33) | low;
            assert_eq!(ix.home(hash(1)), if low == 0 { 0 } else { n - 1 });
            for i in 0..20 {
                ix.insert(hash(i), i);
            }
            for i in 0..20 {
                assert_eq!(ix.find(hash(i), |id| id == i), Some(i));
            }
            assert_eq!(ix.find(hash(99), |_| true), None);
            for i in 0..20 {
                assert!(ix.remove(hash(i), i));
            }
            assert!(ix.buckets.iter().all(|b| b.displaced == 0 && b.tags.iter().all(|t| *t == EMPTY)));
            assert!(!ix.remove(hash(3), 3));
        }
    }

    #[test]
    fn homes_spread_evenly_over_any_bucket_count() {
        for n in [1usize, 3, 7, 1000, 37_450] {
            let ix = FlowIndex { buckets: HugeArray::new(n, |_| Bucket::default()) };
            let mut count = vec![0u32; n];
            let mut h = 0x243f_6a88_85a3_08d3u64;
            for _ in 0..(n * 64) {
                h = h.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(0x1405_7b7e_f767_814f);
                count[ix.home(h)] += 1;
            }
            // 64 per bucket on average; a fair spread keeps every bucket within 50 %.
            assert!(count.iter().all(|&c| (32..=96).contains(&c)), "{n} buckets: {:?}", &count[..n.min(8)]);
        }
    }
}
