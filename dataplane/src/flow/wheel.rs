//! The hashed timer wheel that ages flow entries: 4,096 slots of 1.024 s ticks, each a
//! doubly-linked list threaded through the entries' [`Link`]s (an array beside the slab),
//! plus a bitmap of non-empty slots so eviction finds the nearest occupied slot in at most
//! 64 word reads.
//!
//! Why these numbers: timeouts are at least 10 s, so a tick of 1.024 s (a shift, not a
//! division) costs under 10% precision at worst, and an entry never expires early, only
//! up to one tick late. 4,096 slots span 70 min: every timeout but TCP Established (2 h
//! 4 min) lands in its exact slot, and an idle established flow takes one extra look
//! (a "round"). The wheel is 16 KiB + 512 B per worker.
//!
//! The wheel itself only links and unlinks; the table decides what a firing slot means
//! (see `FlowTable::expire`).

/// An entry's place on the wheel, by slab index (kept apart from the entry's line: only
/// inserts, aging and a shortened timeout touch it).
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    /// Tick the entry is linked at (at most its real expiry tick; 32 bits of 1.024 s
    /// ticks last 139 years).
    pub(super) tick: u32,
    /// Next in the slot's list; also chains the free list.
    pub(super) next: u32,
    pub(super) prev: u32,
}

/// log2 of the tick length in ms.
pub(super) const TICK_SHIFT: u32 = 10;
/// Number of slots (a power of two).
pub(super) const SLOTS: usize = 4096;
const MASK: u64 = SLOTS as u64 - 1;
const WORDS: usize = SLOTS / 64;
/// End of a list / no entry.
pub(super) const NIL: u32 = u32::MAX;

/// The tick at or after `ms` (an entry linked there fires no earlier than `ms`).
#[inline(always)]
pub(super) fn tick_at_or_after(ms: u64) -> u64 {
    ms.div_ceil(1 << TICK_SHIFT)
}

/// The tick `ms` falls in.
#[inline(always)]
pub(super) fn tick_of(ms: u64) -> u64 {
    ms >> TICK_SHIFT
}

#[inline(always)]
fn slot(tick: u64) -> usize {
    (tick & MASK) as usize
}

/// Slot heads and the occupancy bitmap.
pub(super) struct Wheel {
    heads: Box<[u32; SLOTS]>,
    occupied: Box<[u64; WORDS]>,
    /// Every tick before this one has been processed.
    pub(super) next_tick: u64,
}

impl Wheel {
    pub(super) fn new() -> Wheel {
        Wheel { heads: Box::new([NIL; SLOTS]), occupied: Box::new([0; WORDS]), next_tick: 0 }
    }

    /// Empties every slot (the entries are reset by the caller).
    pub(super) fn clear(&mut self) {
        self.heads.fill(NIL);
        self.occupied.fill(0);
    }

    /// First entry of `slot`, or [`NIL`].
    #[inline]
    pub(super) fn head(&self, slot: usize) -> u32 {
        self.heads[slot % SLOTS]
    }

    /// The tick an entry expiring at `tick` is linked at: not in the past (that slot
    /// would wait a whole revolution) and within one revolution (beyond the horizon the
    /// entry is looked at early and relinked: a round). The cap also keeps a relinked
    /// entry out of the slot being drained.
    #[inline]
    pub(super) fn clamp(&self, tick: u64) -> u64 {
        tick.clamp(self.next_tick, self.next_tick + SLOTS as u64 - 1)
    }

    /// Links entry `i` at the head of the slot of `tick` (already clamped).
    #[inline]
    pub(super) fn link(&mut self, links: &mut [Link], i: u32, tick: u64) {
        let s = slot(tick);
        let head = self.heads[s];
        if let Some(h) = links.get_mut(head as usize) {
            h.prev = i;
        }
        if let Some(e) = links.get_mut(i as usize) {
            e.next = head;
            e.prev = NIL;
            // Ticks fit 32 bits for 139 years (see `Link::tick`).
            e.tick = tick as u32;
        }
        self.heads[s] = i;
        self.occupied[s / 64] |= 1 << (s % 64);
    }

    /// Unlinks entry `i` from its slot.
    #[inline]
    pub(super) fn unlink(&mut self, links: &mut [Link], i: u32) {
        let Some(e) = links.get(i as usize) else { return };
        let (prev, next, s) = (e.prev, e.next, slot(u64::from(e.tick)));
        match links.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.heads[s] = next,
        }
        if let Some(n) = links.get_mut(next as usize) {
            n.prev = prev;
        }
        if self.heads[s] == NIL {
            self.occupied[s / 64] &= !(1 << (s % 64));
        }
    }

    /// The first non-empty slot at or after `from` (wrapping), or None if all are empty.
    pub(super) fn next_occupied(&self, from: usize) -> Option<usize> {
        let from = from % SLOTS;
        let (w0, b0) = (from / 64, from % 64);
        for step in 0..=WORDS {
            let w = (w0 + step) % WORDS;
            let mut bits = self.occupied[w];
            if step == 0 {
                bits &= !0u64 << b0;
            } else if step == WORDS {
                // Back at the first word: only the bits before `from`.
                bits &= (1u64 << b0) - 1;
            }
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
        }
        None
    }

    /// The slot of the next tick to process.
    #[inline]
    pub(super) fn current_slot(&self) -> usize {
        slot(self.next_tick)
    }
}
