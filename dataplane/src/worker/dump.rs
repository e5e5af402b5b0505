//! The read path into a worker's private flow table (`show flows`).
//!
//! A worker's flow table is its own: no other thread may read it while the worker
//! changes it. So the control thread *asks* and the worker *copies*:
//!
//! 1. control stores a fresh request id in the worker's [`FlowDump`] (`request`);
//! 2. the worker, once per loop after its bursts, notices the new id, and copies
//!    summaries of at most [`DUMP_BUDGET`] slab positions of its table into the
//!    dump's bounded queue (a preallocated crossbeam `ArrayQueue`: no allocation, no
//!    lock); a full queue pauses the copy until control has drained it;
//! 3. when it has visited the whole slab it publishes the id in `done`;
//! 4. control drains the queue as entries arrive, keeps those tagged with its id, and
//!    stops at `done == id` with an empty queue, or at its timeout, or when it has
//!    enough (it then stores 0 in `request`, which cancels the copy).
//!
//! Thread-safety: `request` has one writer (control, which serialises dumps), `done` and
//! the queue's producer side one writer (the worker). `done` is stored with Release
//! after the last push and loaded with Acquire, so control that sees `done == id` and
//! then drains the queue has every summary of dump `id`. Summaries carry their dump id:
//! leftovers of a cancelled or timed-out dump are recognised and dropped.
//!
//! What a dump shows is a walk over a table that keeps changing: each connection that
//! lived for the whole walk appears exactly once; one created or removed during it may
//! or may not appear; none appears twice (slab positions are stable and the walk never
//! goes back). Idle cost per worker loop: one load and a compare.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::flow::{ConnState, FlowInfo, FlowKey, FlowTable};

/// Slab positions a worker visits per loop for a dump (bounds the loop's added latency).
pub const DUMP_BUDGET: u32 = 256;
/// Summaries in flight between a worker and control.
pub const DUMP_QUEUE: usize = 1024;

/// A copy of one connection as the worker sees it.
#[derive(Clone, Copy, Debug)]
pub struct FlowSummary<A> {
    /// The dump this summary belongs to.
    pub dump_id: u64,
    /// The connection in its original direction.
    pub key: FlowKey,
    pub ct: ConnState,
    /// Cached decision per direction (original, reply).
    pub action: [A; 2],
    /// Ruleset epoch the decision was made under (its low 32 bits).
    pub epoch: u64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub created_ms: u64,
    pub last_seen_ms: u64,
    pub timeout_ms: u64,
    /// The worker's clock when it copied the entry (ages are relative to it).
    pub now_ms: u64,
}

impl<A: Copy> FlowSummary<A> {
    fn of(e: &FlowInfo<A>, dump_id: u64, now_ms: u64) -> Self {
        FlowSummary {
            dump_id,
            key: e.key,
            ct: e.ct,
            action: e.action,
            epoch: u64::from(e.epoch),
            packets: e.packets,
            bytes: e.bytes,
            created_ms: e.created_ms,
            last_seen_ms: e.last_seen_ms,
            timeout_ms: e.timeout_ms,
            now_ms,
        }
    }
}

/// One worker's dump mailbox. See the module docs.
#[derive(Debug)]
pub struct FlowDump<A> {
    request: AtomicU64,
    done: AtomicU64,
    queue: ArrayQueue<FlowSummary<A>>,
}

impl<A> FlowDump<A> {
    /// A mailbox whose queue holds `capacity` summaries.
    pub fn new(capacity: usize) -> Self {
        FlowDump { request: AtomicU64::new(0), done: AtomicU64::new(0), queue: ArrayQueue::new(capacity.max(1)) }
    }

    /// Control: asks the worker for dump `id` (non-zero, never reused), cancelling any
    /// other. Summaries of earlier dumps still queued are the caller's to skip.
    pub fn start(&self, id: u64) {
        self.request.store(id, Ordering::Release);
    }

    /// Control: stops the current dump.
    pub fn cancel(&self) {
        self.request.store(0, Ordering::Release);
    }

    /// Control: whether the worker has copied all of dump `id` (drain the queue after
    /// this turned true to have every summary).
    pub fn finished(&self, id: u64) -> bool {
        self.done.load(Ordering::Acquire) == id
    }

    /// Control: the next queued summary.
    pub fn pop(&self) -> Option<FlowSummary<A>> {
        self.queue.pop()
    }
}

/// The worker's side of a dump: which one it is copying and where it stands.
#[derive(Debug, Default)]
pub struct DumpCursor {
    id: u64,
    pos: u32,
    active: bool,
}

impl DumpCursor {
    /// Copies at most `budget` slab positions' worth of `table` for the requested dump,
    /// if any. Call once per loop on the worker that owns `table`. Never allocates,
    /// never blocks.
    #[inline]
    pub fn step<A: Copy + Default>(&mut self, dump: &FlowDump<A>, table: &FlowTable<A>, budget: u32, now_ms: u64) {
        let req = dump.request.load(Ordering::Acquire);
        if req != self.id {
            *self = DumpCursor { id: req, pos: 0, active: req != 0 };
        }
        if !self.active {
            return;
        }
        let id = self.id;
        self.pos = if table.is_empty() {
            table.capacity() as u32
        } else {
            table.scan(self.pos, budget, |_, e| dump.queue.push(FlowSummary::of(&e, id, now_ms)).is_ok())
        };
        if self.pos as usize >= table.capacity() {
            self.active = false;
            dump.done.store(id, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::flow::FlowConfig;

    fn key(i: u32) -> FlowKey {
        FlowKey { src: u128::from(0x0a00_0000 + i), dst: 0x0a01_000a, vrf: 0, sport: 1000, dport: 53, proto: 17, v6: false }
    }

    fn table(cap: u32, n: u32) -> FlowTable<u32> {
        let mut t = FlowTable::new(&FlowConfig { capacity: cap, ..Default::default() });
        for i in 0..n {
            let k = key(i);
            let id = t.insert(&k, k.sym_hash(), 0, u32::MAX).unwrap();
            t.entry_mut(id).action = [i, i];
        }
        t
    }

    /// Drains what the worker copied so far into `seen` (count per source address).
    fn drain(d: &FlowDump<u32>, id: u64, seen: &mut BTreeMap<u128, u32>) {
        while let Some(s) = d.pop() {
            if s.dump_id == id {
                *seen.entry(s.key.src).or_default() += 1;
            }
        }
    }

    #[test]
    fn scan_with_a_budget_resumes_where_it_stopped() {
        let t = table(100, 60);
        let mut all = Vec::new();
        let mut pos = 0;
        let mut calls = 0;
        while (pos as usize) < t.capacity() {
            let before = pos;
            pos = t.scan(pos, 7, |id, e| {
                all.push((id, e.key.src));
                true
            });
            assert!(pos > before && pos - before <= 7, "bounded progress: {before} -> {pos}");
            calls += 1;
        }
        assert_eq!(calls, 100usize.div_ceil(7));
        assert_eq!(all.len(), 60, "every live entry once");
        let mut ids: Vec<_> = all.iter().map(|(i, _)| *i).collect();
        ids.dedup();
        assert_eq!(ids.len(), 60, "no duplicates, in slab order");
        // A refusing callback stops at that entry, and resuming visits it again.
        let mut n = 0;
        let stop = t.scan(0, 100, |_, _| {
            n += 1;
            n < 3
        });
        let mut first = None;
        t.scan(stop, 1, |id, _| {
            first = Some(id);
            true
        });
        assert_eq!(first, Some(stop), "the refused entry comes first on resume");
        assert_eq!(t.scan(500, 10, |_, _| true), 500, "past the end: nothing visited");
    }

    #[test]
    fn dump_copies_every_entry_once_through_a_small_queue() {
        let t = table(1000, 300);
        let d = FlowDump::new(16);
        let mut cur = DumpCursor::default();
        let mut seen = BTreeMap::new();
        cur.step(&d, &t, DUMP_BUDGET, 5);
        assert!(d.pop().is_none(), "nothing copied without a request");
        d.start(1);
        let mut loops = 0;
        while !d.finished(1) {
            cur.step(&d, &t, 32, 5);
            drain(&d, 1, &mut seen);
            loops += 1;
            assert!(loops < 10_000, "the dump ends");
        }
        drain(&d, 1, &mut seen);
        assert_eq!(seen.len(), 300);
        assert!(seen.values().all(|&n| n == 1), "no entry twice");
        // The worker stays idle until the next request.
        cur.step(&d, &t, 32, 5);
        assert!(d.pop().is_none());
    }

    #[test]
    fn churn_between_steps_never_duplicates() {
        let mut t = table(512, 200);
        let d = FlowDump::new(8);
        let mut cur = DumpCursor::default();
        let mut seen = BTreeMap::new();
        d.start(7);
        let mut next = 1000;
        let mut loops = 0;
        while !d.finished(7) {
            cur.step(&d, &t, 16, 0);
            drain(&d, 7, &mut seen);
            // Remove some entries and add new ones (slots get reused) between loops.
            let victims: Vec<_> = t.iter().map(|(id, _)| id).step_by(9).take(3).collect();
            for v in victims {
                t.remove(v);
            }
            for _ in 0..3 {
                let k = key(next);
                next += 1;
                let _ = t.insert(&k, k.sym_hash(), 0, u32::MAX);
            }
            loops += 1;
            assert!(loops < 10_000, "the dump ends");
        }
        drain(&d, 7, &mut seen);
        assert!(seen.values().all(|&n| n == 1), "no connection twice: {seen:?}");
        assert!(seen.len() <= t.capacity(), "bounded by the table");
        // Survivors of the original 200 that lived through the whole walk all appear.
        let survivors: Vec<u128> = t.iter().map(|(_, e)| e.key.src).filter(|s| *s < 0x0a00_0000 + 200).collect();
        assert!(survivors.iter().all(|s| seen.contains_key(s)), "every connection alive throughout appears");
    }

    #[test]
    fn a_new_request_restarts_and_stale_summaries_are_recognised() {
        let t = table(256, 100);
        let d = FlowDump::new(1024);
        let mut cur = DumpCursor::default();
        d.start(1);
        cur.step(&d, &t, 64, 0);
        assert!(!d.finished(1));
        // Control gives up on dump 1 and starts dump 2: leftovers of 1 stay queued.
        d.start(2);
        let mut seen = BTreeMap::new();
        while !d.finished(2) {
            cur.step(&d, &t, 64, 0);
        }
        drain(&d, 2, &mut seen);
        assert_eq!(seen.len(), 100);
        assert!(seen.values().all(|&n| n == 1));
        // Cancel: the worker stops copying.
        d.start(3);
        cur.step(&d, &t, 64, 0);
        d.cancel();
        while d.pop().is_some() {}
        cur.step(&d, &t, 64, 0);
        assert!(d.pop().is_none() && !d.finished(3));
        // An empty table finishes at once.
        let empty = table(64, 0);
        d.start(4);
        cur.step(&d, &empty, 1, 0);
        assert!(d.finished(4));
    }
}
