//! The per-worker MAC learning table (forwarding database).
//!
//! Thread-safety: owned by one worker; nobody else reads or writes it. Workers tell each
//! other what they learned through bounded lock-free queues ([`LearnEvent`]), so a MAC
//! learned on one worker is forwarded, not flooded, by the others too. A lost event (a
//! full queue) only costs a flood until the peer learns the MAC itself.
//!
//! No allocation after construction: the map is created at its full capacity and never
//! grows past it (a full table stops learning and counts `fdb_full`).

use hashbrown::HashMap;

use super::{BridgeInfo, DomainId, L2Tables};
use crate::tables::PortIdx;
use crate::wire::MacAddr;

/// A learned (or re-learned after a move) MAC, sent to the other workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnEvent {
    pub domain: DomainId,
    pub mac: MacAddr,
    pub port: PortIdx,
}

/// What [`Fdb::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdbEvent {
    /// Known on this port: refreshed.
    Refreshed,
    /// New MAC.
    Learned,
    /// Known on another port: moved here.
    Moved,
    /// Static entry on another port: not moved.
    StaticConflict,
    /// New MAC but the bridge's table is full: not learned.
    Full,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    port: PortIdx,
    is_static: bool,
    bridge: u16,
    last_seen_ms: u64,
}

#[inline]
fn key(domain: DomainId, mac: MacAddr) -> u64 {
    // 48 bits of MAC, 16 of domain: control keeps domain ids below 65536.
    ((domain as u64) << 48) | mac.to_u64()
}

/// A bounded MAC table for every bridge domain of one worker.
///
/// In front of the hash table sit two one-entry caches, as in VPP's l2-learn and
/// l2-fwd: the last (MAC, port) refreshed and the last destination looked up, both
/// valid for the current millisecond only. Consecutive frames of a burst mostly share
/// their MACs, so most frames skip both hash probes. Every change to the table that
/// could make a cached answer wrong clears the caches.
#[derive(Debug)]
pub struct Fdb {
    map: HashMap<u64, Entry>,
    /// (key, port, now_ms) of the last learn that left `key` on `port` fresh at `now_ms`.
    last_learn: Option<(u64, PortIdx, u64)>,
    /// (key, answer, now_ms) of the last lookup.
    last_lookup: Option<(u64, Option<PortIdx>, u64)>,
    /// Dynamic entries per bridge, and each bridge's limit and aging.
    per_bridge: Vec<BridgeCount>,
    capacity: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct BridgeCount {
    dynamic: u32,
    limit: u32,
    aging_ms: u64,
}

impl Fdb {
    /// An empty table with room for `capacity` entries (dynamic and static together).
    pub fn with_capacity(capacity: usize) -> Self {
        Fdb {
            map: HashMap::with_capacity(Self::slots(capacity)),
            last_learn: None,
            last_lookup: None,
            per_bridge: Vec::new(),
            capacity,
        }
    }

    /// Slots to allocate for `capacity` entries. Twice the entries: hashbrown reclaims
    /// the tombstones left by aging with an in-place rehash only while the table is at
    /// most half full; fuller, it would reallocate on the fast path.
    fn slots(capacity: usize) -> usize {
        capacity.saturating_mul(2)
    }

    /// The capacity a table for `l2` needs: every bridge's limit plus its static entries.
    pub fn capacity_for(l2: &L2Tables) -> usize {
        l2.bridges.iter().map(|b| b.mac_table_size as usize + b.static_macs.len()).sum()
    }

    /// Resets the table for a new snapshot: forgets everything, loads static entries and
    /// per-bridge limits. Allocates only if the new snapshot needs more room.
    pub fn reseed(&mut self, l2: &L2Tables) {
        let needed = Self::capacity_for(l2);
        self.forget_cached();
        self.map.clear();
        if needed > self.capacity {
            self.map.reserve(Self::slots(needed));
            self.capacity = needed;
        }
        self.per_bridge.clear();
        self.per_bridge.extend(l2.bridges.iter().map(|b: &BridgeInfo| BridgeCount {
            dynamic: 0,
            limit: b.mac_table_size,
            aging_ms: b.mac_aging_ms,
        }));
        for (bi, b) in l2.bridges.iter().enumerate() {
            for s in b.static_macs.iter() {
                self.map.insert(
                    key(s.domain, s.mac),
                    Entry { port: s.port, is_static: true, bridge: bi as u16, last_seen_ms: 0 },
                );
            }
        }
    }

    #[inline]
    fn forget_cached(&mut self) {
        self.last_learn = None;
        self.last_lookup = None;
    }

    /// Number of entries, static included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Learns (or refreshes) `mac` on `port` in `domain` of `bridge` at `now_ms`.
    #[inline]
    pub fn learn(&mut self, bridge: u16, domain: DomainId, mac: MacAddr, port: PortIdx, now_ms: u64) -> FdbEvent {
        let k = key(domain, mac);
        if self.last_learn == Some((k, port, now_ms)) {
            return FdbEvent::Refreshed;
        }
        if let Some(e) = self.map.get_mut(&k) {
            if e.port == port {
                if !e.is_static && e.last_seen_ms != now_ms {
                    e.last_seen_ms = now_ms;
                }
                self.last_learn = Some((k, port, now_ms));
                return FdbEvent::Refreshed;
            }
            if e.is_static {
                return FdbEvent::StaticConflict;
            }
            e.port = port;
            e.last_seen_ms = now_ms;
            self.last_lookup = None;
            self.last_learn = Some((k, port, now_ms));
            return FdbEvent::Moved;
        }
        let Some(count) = self.per_bridge.get_mut(bridge as usize) else {
            return FdbEvent::Full;
        };
        if count.dynamic >= count.limit || self.map.len() >= self.capacity {
            return FdbEvent::Full;
        }
        count.dynamic += 1;
        self.map.insert(k, Entry { port, is_static: false, bridge, last_seen_ms: now_ms });
        self.last_lookup = None;
        self.last_learn = Some((k, port, now_ms));
        FdbEvent::Learned
    }

    /// The port `mac` was last seen on in `domain`, unless it has aged out.
    #[inline]
    pub fn lookup(&mut self, domain: DomainId, mac: MacAddr, now_ms: u64) -> Option<PortIdx> {
        let k = key(domain, mac);
        if let Some((ck, answer, t)) = self.last_lookup {
            if ck == k && t == now_ms {
                return answer;
            }
        }
        let answer = self.lookup_uncached(k, now_ms);
        self.last_lookup = Some((k, answer, now_ms));
        answer
    }

    fn lookup_uncached(&self, k: u64, now_ms: u64) -> Option<PortIdx> {
        let e = self.map.get(&k)?;
        if e.is_static {
            return Some(e.port);
        }
        let aging = self.per_bridge.get(e.bridge as usize).map_or(0, |b| b.aging_ms);
        (now_ms.saturating_sub(e.last_seen_ms) <= aging).then_some(e.port)
    }

    /// Removes dynamic entries idle for longer than their bridge's aging time.
    /// Returns how many were removed. Call about once a second, not per packet.
    pub fn age(&mut self, now_ms: u64) -> usize {
        self.forget_cached();
        let per_bridge = &mut self.per_bridge;
        let before = self.map.len();
        self.map.retain(|_, e| {
            if e.is_static {
                return true;
            }
            let Some(b) = per_bridge.get_mut(e.bridge as usize) else { return false };
            let keep = now_ms.saturating_sub(e.last_seen_ms) <= b.aging_ms;
            if !keep {
                b.dynamic -= 1;
            }
            keep
        });
        before - self.map.len()
    }

    /// Forgets every dynamic entry pointing at `port` (port removed or link down).
    pub fn flush_port(&mut self, port: PortIdx) -> usize {
        self.forget_cached();
        let per_bridge = &mut self.per_bridge;
        let before = self.map.len();
        self.map.retain(|_, e| {
            let drop = !e.is_static && e.port == port;
            if drop {
                if let Some(b) = per_bridge.get_mut(e.bridge as usize) {
                    b.dynamic -= 1;
                }
            }
            !drop
        });
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::{BridgeInfo, StaticMac};

    fn tables(limit: u32, aging_ms: u64, statics: &[StaticMac]) -> L2Tables {
        L2Tables {
            bridges: vec![BridgeInfo {
                name: "br0".into(),
                mac_table_size: limit,
                mac_aging_ms: aging_ms,
                static_macs: statics.into(),
            }]
            .into(),
            ..Default::default()
        }
    }

    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }

    #[test]
    fn learns_refreshes_and_moves() {
        let mut f = Fdb::with_capacity(0);
        f.reseed(&tables(16, 1000, &[]));
        assert_eq!(f.lookup(0, mac(1), 0), None);
        assert_eq!(f.learn(0, 0, mac(1), 3, 0), FdbEvent::Learned);
        assert_eq!(f.lookup(0, mac(1), 10), Some(3));
        assert_eq!(f.lookup(1, mac(1), 10), None, "domains are separate");
        assert_eq!(f.learn(0, 0, mac(1), 3, 20), FdbEvent::Refreshed);
        assert_eq!(f.learn(0, 0, mac(1), 4, 30), FdbEvent::Moved);
        assert_eq!(f.lookup(0, mac(1), 30), Some(4));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn ages_out_on_lookup_and_on_sweep() {
        let mut f = Fdb::with_capacity(0);
        f.reseed(&tables(16, 1000, &[]));
        f.learn(0, 0, mac(1), 1, 0);
        f.learn(0, 0, mac(2), 2, 600);
        assert_eq!(f.lookup(0, mac(1), 1000), Some(1), "exactly the aging time is still alive");
        assert_eq!(f.lookup(0, mac(1), 1001), None, "expired entries are misses before the sweep");
        assert_eq!(f.age(1001), 1);
        assert_eq!(f.lookup(0, mac(2), 1001), Some(2));
        // The freed slot counts again: the bridge can learn a new MAC.
        assert_eq!(f.age(5000), 1);
        assert!(f.is_empty());
    }

    #[test]
    fn full_table_stops_learning_until_aged() {
        let mut f = Fdb::with_capacity(0);
        f.reseed(&tables(2, 100, &[]));
        assert_eq!(f.learn(0, 0, mac(1), 1, 0), FdbEvent::Learned);
        assert_eq!(f.learn(0, 0, mac(2), 1, 0), FdbEvent::Learned);
        assert_eq!(f.learn(0, 0, mac(3), 1, 0), FdbEvent::Full);
        assert_eq!(f.lookup(0, mac(3), 0), None);
        // Existing entries still move and refresh when full.
        assert_eq!(f.learn(0, 0, mac(2), 2, 50), FdbEvent::Moved);
        f.age(120); // mac(1) idle 120 > 100, mac(2) idle 70
        assert_eq!(f.learn(0, 0, mac(3), 1, 120), FdbEvent::Learned);
        assert_eq!(f.learn(0, 0, mac(4), 1, 120), FdbEvent::Full);
    }

    #[test]
    fn static_entries_never_move_or_age() {
        let s = StaticMac { domain: 0, mac: mac(9), port: 7 };
        let mut f = Fdb::with_capacity(0);
        f.reseed(&tables(1, 10, &[s]));
        assert_eq!(f.lookup(0, mac(9), u64::MAX), Some(7));
        assert_eq!(f.learn(0, 0, mac(9), 1, 5), FdbEvent::StaticConflict);
        assert_eq!(f.age(1_000_000), 0);
        assert_eq!(f.flush_port(7), 0);
        assert_eq!(f.lookup(0, mac(9), 0), Some(7));
        // Statics do not use up the dynamic limit.
        assert_eq!(f.learn(0, 0, mac(1), 1, 0), FdbEvent::Learned);
    }

    #[test]
    fn flush_port_forgets_only_that_port() {
        let mut f = Fdb::with_capacity(0);
        f.reseed(&tables(8, 1000, &[]));
        f.learn(0, 0, mac(1), 1, 0);
        f.learn(0, 0, mac(2), 2, 0);
        f.learn(0, 5, mac(3), 1, 0);
        assert_eq!(f.flush_port(1), 2);
        assert_eq!(f.lookup(0, mac(2), 0), Some(2));
        assert_eq!(f.learn(0, 0, mac(1), 2, 0), FdbEvent::Learned);
    }

    #[test]
    fn caches_never_hide_a_change() {
        let mut f = Fdb::with_capacity(0);
        f.reseed(&tables(16, 1000, &[]));
        // Negative answer cached, then the MAC is learned in the same millisecond.
        assert_eq!(f.lookup(0, mac(1), 5), None);
        assert_eq!(f.learn(0, 0, mac(1), 3, 5), FdbEvent::Learned);
        assert_eq!(f.lookup(0, mac(1), 5), Some(3));
        // A move in the same millisecond is seen by lookup and by the next learn.
        assert_eq!(f.learn(0, 0, mac(1), 4, 5), FdbEvent::Moved);
        assert_eq!(f.lookup(0, mac(1), 5), Some(4));
        assert_eq!(f.learn(0, 0, mac(1), 3, 5), FdbEvent::Moved);
        assert_eq!(f.learn(0, 0, mac(1), 3, 5), FdbEvent::Refreshed);
        // Flushing the port forgets the cached answer.
        assert_eq!(f.flush_port(3), 1);
        assert_eq!(f.lookup(0, mac(1), 5), None);
        assert_eq!(f.learn(0, 0, mac(1), 3, 5), FdbEvent::Learned, "not a cached refresh of a flushed entry");
        // Aging is judged afresh in a later millisecond.
        assert_eq!(f.lookup(0, mac(1), 1005), Some(3));
        assert_eq!(f.lookup(0, mac(1), 1006), None);
        f.reseed(&tables(16, 1000, &[]));
        assert_eq!(f.lookup(0, mac(1), 1006), None);
        assert_eq!(f.learn(0, 0, mac(1), 3, 1006), FdbEvent::Learned);
    }

    #[test]
    fn reseed_allocates_once_and_clears() {
        let t = tables(100, 1000, &[]);
        let mut f = Fdb::with_capacity(Fdb::capacity_for(&t));
        f.reseed(&t);
        f.learn(0, 0, mac(1), 1, 0);
        f.reseed(&t);
        assert!(f.is_empty());
    }
}
