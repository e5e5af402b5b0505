//! Flow table, wheel, conntrack and fragment tracker: unit walks with controlled time,
//! and proptests against a `HashMap` model.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use super::*;

const S: u64 = 1000;

fn tcp_key(i: u32) -> FlowKey {
    FlowKey { src: 0x0a00_0000 | u128::from(i), dst: 0x0a01_0001, vrf: 1, sport: 1024 + (i % 60_000) as u16, dport: 80, proto: 6, v6: false }
}

fn proto_key(i: u32, proto: u8) -> FlowKey {
    FlowKey { proto, ..tcp_key(i) }
}

fn table(capacity: u32, tcp_strict: bool) -> FlowTable<u32> {
    FlowTable::new(&FlowConfig { capacity, timeouts: Timeouts::default(), tcp_strict })
}

fn insert(t: &mut FlowTable<u32>, k: &FlowKey, now: u64) -> FlowId {
    t.insert(k, k.sym_hash(), now, u32::MAX).expect("room")
}

fn seg(flags: u8, seq: u32, ack: u32, payload_len: u32) -> TcpSegment {
    TcpSegment { flags, seq, ack, window: 65535, payload_len, wscale: None }
}

fn tcp_state(t: &FlowTable<u32>, id: FlowId) -> TcpState {
    match t.entry(id).ct {
        ConnState::Tcp(s) => s,
        other => panic!("not TCP: {other:?}"),
    }
}

/// Runs a SYN / SYN-ACK / ACK handshake (client ISN 1000, server ISN 5000) at `now`.
fn handshake(t: &mut FlowTable<u32>, id: FlowId, now: u64) {
    assert_eq!(t.update(id, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), now), CtVerdict::Ok);
    assert_eq!(tcp_state(t, id), TcpState::SynSent);
    assert_eq!(t.update(id, Dir::Reply, 60, Some(&seg(SYN | ACK, 5000, 1001, 0)), now), CtVerdict::Ok);
    assert_eq!(tcp_state(t, id), TcpState::SynRecv);
    assert_eq!(t.update(id, Dir::Orig, 52, Some(&seg(ACK, 1001, 5001, 0)), now), CtVerdict::Ok);
    assert_eq!(tcp_state(t, id), TcpState::Established);
}

fn config() -> Config {
    Config { cases: 64, rng_seed: RngSeed::Fixed(0xf10e_5eed), failure_persistence: None, ..Config::default() }
}

fn any_key() -> impl Strategy<Value = FlowKey> {
    (any::<u128>(), any::<u128>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u8>(), any::<bool>()).prop_map(
        |(src, dst, vrf, sport, dport, proto, v6)| {
            let (src, dst) = if v6 { (src, dst) } else { (src & 0xffff_ffff, dst & 0xffff_ffff) };
            FlowKey { src, dst, vrf, sport, dport, proto, v6 }
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sym_hash_is_symmetric(k in any_key()) {
        prop_assert_eq!(k.sym_hash(), k.reversed().sym_hash());
        prop_assert_eq!(k.reversed().reversed(), k);
    }

    /// The fast path's lookup by line key gives the full lookup's answer for every narrow
    /// key, either direction, with any hint (right, stale, out of range, none), in a
    /// table small enough to evict; and either lookup of the reversed key finds the same
    /// entry in the other direction.
    #[test]
    fn line_lookup_agrees_with_the_full_lookup(
        keys in proptest::collection::vec(any_key(), 1..40),
        probes in proptest::collection::vec((any::<usize>(), any::<bool>(), any::<Option<u32>>()), 1..60),
    ) {
        let mut t = table(16, false);
        for (i, k) in keys.iter().enumerate() {
            if t.lookup(k, k.sym_hash()).is_none() {
                insert(&mut t, k, i as u64);
            }
        }
        for (j, rev, hint) in probes {
            let k = keys[j % keys.len()];
            let k = if rev { k.reversed() } else { k };
            let want = t.lookup(&k, k.sym_hash());
            // The other direction finds the same entry, flipped.
            prop_assert_eq!(t.lookup(&k.reversed(), k.sym_hash()), want.map(|(i, d)| (i, d.flip())));
            match LineKey::narrow(&k) {
                Some(line) => {
                    prop_assert_eq!(line.proto(), k.proto);
                    prop_assert_eq!(t.lookup_line(&line, k.sym_hash(), hint.map(|h| h % 20)), want);
                    prop_assert_eq!(t.lookup_line(&line, k.sym_hash(), want.map(|w| w.0)), want);
                }
                None => prop_assert!((k.src | k.dst) >> 32 != 0),
            }
        }
    }
}

#[test]
fn sym_hash_spreads_over_tags_and_index_bits() {
    let mut hashes: Vec<u64> = (0..100_000).map(|i| tcp_key(i).sym_hash()).collect();
    let mut tags = [0u32; 128];
    let mut low = [0u32; 256];
    for h in &hashes {
        tags[(h >> 57) as usize] += 1;
        low[(h & 0xff) as usize] += 1;
    }
    // 100k over 128 tags: ~781 each; over 256 low bytes: ~390 each.
    assert!(tags.iter().all(|&n| (600..1000).contains(&n)), "{tags:?}");
    assert!(low.iter().all(|&n| (250..550).contains(&n)), "{low:?}");
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 100_000);
}

/// The IPv4 hash takes the VRF and the protocol into its one multiply: one 5-tuple in
/// 4096 VRFs, or under every protocol, gives as many distinct hashes, spread over the
/// index's buckets (its low half) and tags (its high half).
#[test]
fn sym_hash_separates_vrfs_and_protocols() {
    let base = tcp_key(7);
    let vrfs: Vec<u64> = (0..4096u16).map(|vrf| FlowKey { vrf, ..base }.sym_hash()).collect();
    let protos: Vec<u64> = (0..=255u8).map(|proto| FlowKey { proto, ..base }.sym_hash()).collect();
    for hashes in [vrfs, protos] {
        let n = hashes.len();
        let (mut low, mut high) = ([0u32; 16], [0u32; 16]);
        for h in &hashes {
            low[(*h & 15) as usize] += 1;
            high[(*h >> 60) as usize] += 1;
        }
        // n / 16 expected in each; a fair spread stays within half of it either way.
        let fair = |c: &[u32; 16]| c.iter().all(|&x| (n / 32..=n * 3 / 32).contains(&(x as usize)));
        assert!(fair(&low) && fair(&high), "{n}: {low:?} {high:?}");
        let mut d = hashes.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), n);
    }
}

#[test]
fn lookup_finds_both_directions() {
    let mut t = table(16, false);
    let k = proto_key(1, 17);
    assert_eq!(t.lookup(&k, k.sym_hash()), None);
    let id = insert(&mut t, &k, 0);
    assert_eq!(t.lookup(&k, k.sym_hash()), Some((id, Dir::Orig)));
    let r = k.reversed();
    assert_eq!(t.lookup(&r, r.sym_hash()), Some((id, Dir::Reply)));
    // Same addresses, different port / VRF / protocol: other connections.
    for other in [FlowKey { sport: 9, ..k }, FlowKey { vrf: 2, ..k }, FlowKey { proto: 6, ..k }, FlowKey { v6: true, ..k }] {
        assert_eq!(t.lookup(&other, other.sym_hash()), None, "{other:?}");
    }
    assert_eq!(t.info(id).unwrap().key, k);
    assert_eq!(t.entry(id).ct, ConnState::Udp { replied: false });
    assert_eq!((t.entry(id).epoch, t.entry(id).action), (0, [0, 0]));
}

#[test]
fn ipv6_keys_that_fold_alike_are_told_apart_by_their_addresses() {
    // The line holds each address folded to 32 bits (its words xor'ed): swapping two
    // words keeps the fold. Force one hash for all, so they meet in one index bucket.
    let a = FlowKey { src: 0xfd00_0000_0000_0000_0000_0000_0000_0001, dst: 0xfd00_0000_0000_0000_0000_0000_0000_0002, vrf: 1, sport: 7, dport: 7, proto: 17, v6: true };
    let swap = |x: u128| x.rotate_right(64);
    let b = FlowKey { src: swap(a.src), ..a };
    let c = FlowKey { src: a.dst, dst: a.src, ..a }; // a reversed (sport == dport)
    let d = FlowKey { src: swap(a.dst), dst: swap(a.src), ..a }; // folds like c, is not a reversed
    let h = a.sym_hash();
    let mut t = table(16, false);
    let ia = t.insert(&a, h, 0, u32::MAX).unwrap();
    assert_eq!(t.lookup(&b, h), None, "b folds like a");
    assert_eq!(t.lookup(&d, h), None, "d folds like a reversed");
    assert_eq!(t.lookup(&c, h), Some((ia, Dir::Reply)));
    let ib = t.insert(&b, h, 0, u32::MAX).unwrap();
    let id = t.insert(&d, h, 0, u32::MAX).unwrap();
    assert_eq!(t.lookup(&a, h), Some((ia, Dir::Orig)));
    assert_eq!(t.lookup(&b, h), Some((ib, Dir::Orig)));
    assert_eq!(t.lookup(&d, h), Some((id, Dir::Orig)));
    assert_eq!(t.lookup(&a.reversed(), h), Some((ia, Dir::Reply)));
    assert_eq!([t.info(ia).unwrap().key, t.info(ib).unwrap().key, t.info(id).unwrap().key], [a, b, d]);
    // An IPv4 key with a's low words is another connection too.
    let v4 = FlowKey { src: 1, dst: 2, v6: false, ..a };
    assert_eq!(t.lookup(&v4, h), None);
}

#[test]
fn keys_with_addresses_beyond_32_bits_are_exact_whatever_the_family_flag() {
    // The line folds any address that does not fit 32 bits, v6 flag or not (a caller's
    // IPv4 key with high bits set must not alias another): evict through such keys and
    // every survivor is found, every evicted one is gone.
    let mut t = table(16, false);
    let key = |i: u64| FlowKey { src: (1 << 40) | u128::from(i), ..tcp_key(1) };
    for i in 0..200 {
        let k = key(i);
        assert_eq!(t.lookup(&k, k.sym_hash()), None, "{i}");
        let id = insert(&mut t, &k, i * S);
        assert_eq!(t.lookup(&k, k.sym_hash()), Some((id, Dir::Orig)));
        assert_eq!(t.info(id).unwrap().key, k);
    }
    assert_eq!((t.len(), t.stats().evicted), (16, 184));
    let live: Vec<FlowKey> = t.iter().map(|(_, e)| e.key).collect();
    for i in 0..200 {
        let k = key(i);
        assert_eq!(t.lookup(&k, k.sym_hash()).is_some(), live.contains(&k), "{i}");
    }
    // (1 << 40) | 1 folds to (1 << 8) | 1: under one hash, each finds only itself.
    let mut t = table(16, false);
    let (a, b) = (key(1), FlowKey { src: (1 << 8) | 1, ..key(1) });
    let h = a.sym_hash();
    let ia = t.insert(&a, h, 0, u32::MAX).unwrap();
    assert_eq!(t.lookup(&b, h), None);
    // Nor does the fast path's line lookup of b, even told to look at a's entry: a is
    // stored wide (flagged), b narrow.
    assert_eq!(LineKey::narrow(&a), None);
    let line_b = LineKey::narrow(&b).unwrap();
    assert_eq!(t.lookup_line(&line_b, h, Some(ia)), None);
    let ib = t.insert(&b, h, 0, u32::MAX).unwrap();
    assert_eq!((t.lookup(&a, h), t.lookup(&b, h)), (Some((ia, Dir::Orig)), Some((ib, Dir::Orig))));
    assert_eq!(t.lookup_line(&line_b, h, Some(ia)), Some((ib, Dir::Orig)));
}

#[test]
fn counters_carry_past_32_bits() {
    let mut t = table(4, false);
    let k = proto_key(1, 17);
    let id = insert(&mut t, &k, 0);
    t.set_low_counters(id, Dir::Reply, u32::MAX, u32::MAX - 99);
    assert_eq!(t.update(id, Dir::Reply, 100, None, 1), CtVerdict::Ok);
    assert_eq!(t.update(id, Dir::Reply, 100, None, 2), CtVerdict::Ok);
    assert_eq!(t.update(id, Dir::Orig, 60, None, 3), CtVerdict::Ok);
    let e = t.info(id).unwrap();
    assert_eq!(e.packets, [1, (1 << 32) + 1]);
    assert_eq!(e.bytes, [60, (1 << 32) + 100]);
}

#[test]
fn insert_remove_len_and_iter() {
    let mut t = table(8, false);
    assert!(t.is_empty());
    let ids: Vec<_> = (0..5).map(|i| insert(&mut t, &tcp_key(i), 0)).collect();
    assert_eq!((t.len(), t.capacity(), t.vrf_len(1)), (5, 8, 5));
    t.remove(ids[2]);
    t.remove(ids[2]); // stale: ignored
    assert_eq!((t.len(), t.vrf_len(1)), (4, 4));
    let k = tcp_key(2);
    assert_eq!(t.lookup(&k, k.sym_hash()), None);
    let mut live: Vec<_> = t.iter().map(|(id, _)| id).collect();
    live.sort_unstable();
    assert_eq!(live, [ids[0], ids[1], ids[3], ids[4]]);
    t.entry_mut(ids[0]).action = [7, 8];
    assert_eq!(t.entry(ids[0]).action, [7, 8]);
    let s = t.stats();
    assert_eq!((s.inserted, s.removed), (5, 1));
    t.clear();
    assert_eq!((t.len(), t.vrf_len(1), t.capacity(), t.stats().removed), (0, 0, 8, 5));
    assert_eq!(t.iter().count(), 0);
    let id = insert(&mut t, &k, 0);
    assert_eq!(t.lookup(&k, k.sym_hash()), Some((id, Dir::Orig)));
}

#[test]
fn vrf_limit_is_enforced_and_counted() {
    let mut t = table(16, false);
    for i in 0..3 {
        let k = tcp_key(i);
        t.insert(&k, k.sym_hash(), 0, 3).expect("under the limit");
    }
    let k = tcp_key(3);
    assert_eq!(t.insert(&k, k.sym_hash(), 0, 3), Err(InsertError::VrfLimit));
    let other = FlowKey { vrf: 2, ..k };
    assert!(t.insert(&other, other.sym_hash(), 0, 3).is_ok());
    assert_eq!((t.vrf_len(1), t.vrf_len(2), t.stats().vrf_limited), (3, 1, 1));
}

#[test]
fn full_table_evicts_the_entry_expiring_soonest() {
    let mut t = table(4, false);
    // Three established TCP flows and one unreplied UDP flow, all inserted at t=0: all
    // are first linked at the 30 s tick, but only the UDP one really expires then.
    let udp = proto_key(100, 17);
    insert(&mut t, &udp, 0);
    for i in 0..3 {
        let id = insert(&mut t, &tcp_key(i), 0);
        t.update(id, Dir::Orig, 52, Some(&seg(ACK, 1, 1, 0)), 0);
    }
    let k = tcp_key(9);
    let id = insert(&mut t, &k, S);
    assert_eq!(t.lookup(&udp, udp.sym_hash()), None);
    assert_eq!(t.lookup(&k, k.sym_hash()), Some((id, Dir::Orig)));
    assert_eq!((t.len(), t.stats().evicted, t.vrf_len(1)), (4, 1, 4));
    for i in 0..3 {
        assert!(t.lookup(&tcp_key(i), tcp_key(i).sym_hash()).is_some());
    }
}

#[test]
fn capacity_zero_is_full() {
    let mut t = table(0, false);
    let k = tcp_key(0);
    assert_eq!(t.insert(&k, k.sym_hash(), 0, u32::MAX), Err(InsertError::Full));
    assert_eq!(t.expire(100 * S, 10), 0);
}

#[test]
fn tcp_syn_only_expires_but_established_stays() {
    let mut t = table(16, false);
    let t0 = 1_000_000 * S; // not at 0: the wheel starts from the first insert
    let syn = insert(&mut t, &tcp_key(1), t0);
    t.update(syn, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), t0);
    let est = insert(&mut t, &tcp_key(2), t0);
    handshake(&mut t, est, t0);
    assert_eq!(t.expire(t0 + 29 * S, 100), 0);
    assert_eq!(t.expire(t0 + 30 * S + TICK_MS, 100), 1);
    assert_eq!(t.lookup(&tcp_key(1), tcp_key(1).sym_hash()), None);
    assert!(t.lookup(&tcp_key(2), tcp_key(2).sym_hash()).is_some());
    // Established: 7440 s, past the wheel's 70 min horizon.
    for m in 1..124 {
        assert_eq!(t.expire(t0 + m * 60 * S, 100), 0, "minute {m}");
    }
    assert_eq!(t.expire(t0 + 7440 * S + TICK_MS, 100), 1);
    assert!(t.is_empty());
    assert_eq!(t.stats().expired, 2);
}

#[test]
fn udp_unreplied_and_replied_timeouts() {
    let mut t = table(16, false);
    let (a, b) = (proto_key(1, 17), proto_key(2, 17));
    let ia = insert(&mut t, &a, 0);
    t.update(ia, Dir::Orig, 100, None, 0);
    let ib = insert(&mut t, &b, 0);
    t.update(ib, Dir::Orig, 100, None, 0);
    t.update(ib, Dir::Reply, 100, None, 0);
    assert_eq!(t.entry(ib).ct, ConnState::Udp { replied: true });
    assert_eq!((t.info(ib).unwrap().packets, t.info(ib).unwrap().bytes), ([1, 1], [100, 100]));
    assert_eq!(t.expire(29 * S, 100), 0);
    assert_eq!(t.expire(31 * S + TICK_MS, 100), 1);
    assert!(t.lookup(&b, b.sym_hash()).is_some());
    assert_eq!(t.expire(119 * S, 100), 0);
    assert_eq!(t.expire(121 * S + TICK_MS, 100), 1);
    assert!(t.is_empty());
}

#[test]
fn traffic_keeps_an_entry_alive_across_wheel_rounds() {
    let mut t = table(16, false);
    let k = proto_key(1, 17);
    let id = insert(&mut t, &k, 0);
    t.update(id, Dir::Reply, 1, None, 0);
    // Three hours of a packet a minute: nearly three turns of the 70 min wheel.
    for m in 1..=180 {
        let now = m * 60 * S;
        t.update(id, Dir::Orig, 1, None, now);
        assert_eq!(t.expire(now + 59 * S, 100), 0, "minute {m}");
    }
    let last = 180 * 60 * S;
    assert_eq!(t.expire(last + 119 * S, 100), 0);
    assert_eq!(t.expire(last + 120 * S + TICK_MS, 100), 1);
}

#[test]
fn timeouts_beyond_the_horizon_expire_on_time() {
    let timeouts = Timeouts { other_ms: 5 * 3600 * S, ..Timeouts::default() };
    let mut t: FlowTable<u32> = FlowTable::new(&FlowConfig { capacity: 4, timeouts, tcp_strict: false });
    let k = proto_key(1, 47);
    insert(&mut t, &k, 0);
    for m in 1..300 {
        assert_eq!(t.expire(m * 60 * S, 100), 0, "minute {m}");
    }
    assert_eq!(t.expire(5 * 3600 * S - 1, 100), 0);
    assert_eq!(t.expire(5 * 3600 * S + TICK_MS, 100), 1);
}

#[test]
fn a_long_pause_between_expire_calls_still_expires_everything() {
    let mut t = table(64, false);
    for i in 0..50 {
        insert(&mut t, &proto_key(i, 17), u64::from(i) * 1000 * S);
    }
    assert_eq!(t.expire(1_000_000 * S, 1000), 50);
}

#[test]
fn budgeted_expire_resumes() {
    let mut t = table(128, false);
    for i in 0..100 {
        insert(&mut t, &proto_key(i, 17), 0);
    }
    let now = 40 * S;
    assert_eq!([t.expire(now, 30), t.expire(now, 30), t.expire(now, 30), t.expire(now, 30)], [30, 30, 30, 10]);
    assert!(t.is_empty());
    assert_eq!(t.expire(now, 30), 0);
    assert_eq!(t.expire(now, 0), 0);
}

#[test]
fn rst_shortens_the_timeout_at_once() {
    let mut t = table(16, false);
    let id = insert(&mut t, &tcp_key(1), 0);
    handshake(&mut t, id, 0);
    assert_eq!(t.update(id, Dir::Reply, 40, Some(&seg(RST, 5001, 0, 0)), 100 * S), CtVerdict::Ok);
    assert_eq!(tcp_state(&t, id), TcpState::Close);
    assert_eq!(t.info(id).unwrap().timeout_ms, 10 * S);
    assert_eq!(t.expire(109 * S, 100), 0);
    assert_eq!(t.expire(110 * S + TICK_MS, 100), 1);
}

#[test]
fn tcp_fin_walk_to_time_wait_and_reopen() {
    let mut t = table(16, false);
    let id = insert(&mut t, &tcp_key(1), 0);
    handshake(&mut t, id, 0);
    let steps = [
        (Dir::Orig, FIN | ACK, 1001, 5001, TcpState::FinWait),
        (Dir::Reply, ACK, 5001, 1002, TcpState::CloseWait),
        (Dir::Reply, FIN | ACK, 5001, 1002, TcpState::LastAck),
        (Dir::Orig, ACK, 1002, 5002, TcpState::TimeWait),
    ];
    for (dir, flags, sq, ak, state) in steps {
        assert_eq!(t.update(id, dir, 40, Some(&seg(flags, sq, ak, 0)), S), CtVerdict::Ok);
        assert_eq!(tcp_state(&t, id), state);
    }
    assert_eq!(t.info(id).unwrap().timeout_ms, Timeouts::default().tcp_closed_ms);
    // Port reuse: a new SYN on TimeWait starts over.
    assert_eq!(t.update(id, Dir::Orig, 60, Some(&seg(SYN, 90_000, 0, 0)), 2 * S), CtVerdict::Ok);
    assert_eq!(tcp_state(&t, id), TcpState::SynSent);
}

#[test]
fn tcp_simultaneous_fin_and_syn_retransmit() {
    let mut t = table(16, false);
    let id = insert(&mut t, &tcp_key(1), 0);
    t.update(id, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), 0);
    t.update(id, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), S); // retransmit
    assert_eq!(tcp_state(&t, id), TcpState::SynSent);
    assert_eq!(t.info(id).unwrap().packets, [2, 0]);
    t.update(id, Dir::Reply, 60, Some(&seg(SYN | ACK, 5000, 1001, 0)), S);
    t.update(id, Dir::Orig, 60, Some(&seg(ACK, 1001, 5001, 0)), S);
    t.update(id, Dir::Orig, 60, Some(&seg(FIN | ACK, 1001, 5001, 0)), S);
    t.update(id, Dir::Reply, 60, Some(&seg(FIN | ACK, 5001, 1001, 0)), S);
    assert_eq!(tcp_state(&t, id), TcpState::LastAck);
    t.update(id, Dir::Orig, 60, Some(&seg(ACK, 1002, 5002, 0)), S);
    assert_eq!(tcp_state(&t, id), TcpState::TimeWait);
}

#[test]
fn tcp_simultaneous_open() {
    let mut t = table(16, true);
    let id = insert(&mut t, &tcp_key(1), 0);
    assert_eq!(t.update(id, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), 0), CtVerdict::Ok);
    assert_eq!(t.update(id, Dir::Reply, 60, Some(&seg(SYN, 5000, 0, 0)), 0), CtVerdict::Ok);
    assert_eq!(tcp_state(&t, id), TcpState::SynSent2);
    assert_eq!(t.update(id, Dir::Orig, 60, Some(&seg(SYN | ACK, 1000, 5001, 0)), 0), CtVerdict::Ok);
    assert_eq!(tcp_state(&t, id), TcpState::SynRecv);
}

#[test]
fn tcp_rst_closes_from_any_open_state() {
    for steps in 0..3 {
        let mut t = table(4, false);
        let id = insert(&mut t, &tcp_key(1), 0);
        let segs = [(Dir::Orig, seg(SYN, 1000, 0, 0)), (Dir::Reply, seg(SYN | ACK, 5000, 1001, 0)), (Dir::Orig, seg(ACK, 1001, 5001, 0))];
        for (d, s) in &segs[..=steps] {
            t.update(id, *d, 60, Some(s), 0);
        }
        assert_eq!(t.update(id, Dir::Reply, 40, Some(&seg(RST | ACK, 5001, 1001, 0)), 0), CtVerdict::Ok);
        assert_eq!(tcp_state(&t, id), TcpState::Close, "after {steps} steps");
    }
}

#[test]
fn tcp_may_open_by_mode() {
    assert!(tcp_may_open(SYN, true));
    assert!(!tcp_may_open(ACK, true));
    assert!(!tcp_may_open(SYN | ACK, true));
    assert!(tcp_may_open(ACK, false));
    assert!(tcp_may_open(ACK | PSH, false));
    assert!(tcp_may_open(SYN, false));
    assert!(!tcp_may_open(RST, false));
    assert!(!tcp_may_open(SYN | FIN, false));
    assert!(!tcp_may_open(0, false));
}

#[test]
fn liberal_picks_up_mid_stream_and_flags_only_gross_invalids() {
    let mut t = table(16, false);
    let id = insert(&mut t, &tcp_key(1), 0);
    assert_eq!(t.update(id, Dir::Orig, 1500, Some(&seg(ACK | PSH, 77_777, 4242, 1448)), 0), CtVerdict::Ok);
    assert_eq!(tcp_state(&t, id), TcpState::Established);
    assert_eq!(t.info(id).unwrap().timeout_ms, Timeouts::default().tcp_established_ms);
    // Wildly out of window: accepted in liberal mode.
    assert_eq!(t.update(id, Dir::Reply, 1500, Some(&seg(ACK, 1, 2_000_000_000, 1448)), 0), CtVerdict::Ok);
    // A SYN-ACK with no transition: accepted unchanged.
    assert_eq!(t.update(id, Dir::Reply, 60, Some(&seg(SYN | ACK, 1, 1, 0)), 0), CtVerdict::Ok);
    for bad in [SYN | FIN, SYN | RST, 0, FIN] {
        assert_eq!(t.update(id, Dir::Orig, 40, Some(&seg(bad, 1, 1, 0)), 0), CtVerdict::Invalid(InvalidReason::BadFlags));
    }
    assert_eq!(tcp_state(&t, id), TcpState::Established);
    assert_eq!(t.info(id).unwrap().packets, [1, 2]);
    assert_eq!(t.stats().invalid, 4);
}

#[test]
fn strict_requires_a_syn_and_the_window() {
    let mut t = table(16, true);
    let id = insert(&mut t, &tcp_key(1), 0);
    assert_eq!(t.update(id, Dir::Orig, 60, Some(&seg(ACK, 1, 1, 0)), 0), CtVerdict::Invalid(InvalidReason::NotSyn));
    assert_eq!(tcp_state(&t, id), TcpState::None);
    handshake(&mut t, id, 0);
    // In window: data right after the handshake, and its ack.
    assert_eq!(t.update(id, Dir::Orig, 1500, Some(&seg(ACK | PSH, 1001, 5001, 1448)), 0), CtVerdict::Ok);
    assert_eq!(t.update(id, Dir::Reply, 52, Some(&seg(ACK, 5001, 1001 + 1448, 0)), 0), CtVerdict::Ok);
    // Data far beyond what the receiver allowed.
    assert_eq!(
        t.update(id, Dir::Orig, 1500, Some(&seg(ACK, 1001 + 10_000_000, 5001, 1448)), 0),
        CtVerdict::Invalid(InvalidReason::OutOfWindow)
    );
    // An ack for data never sent.
    assert_eq!(
        t.update(id, Dir::Reply, 52, Some(&seg(ACK, 5001, 1001 + 5_000_000, 0)), 0),
        CtVerdict::Invalid(InvalidReason::OutOfWindow)
    );
    // A SYN-ACK before any SYN on a fresh entry.
    let other = insert(&mut t, &tcp_key(2), 0);
    assert_eq!(
        t.update(other, Dir::Reply, 60, Some(&seg(SYN | ACK, 1, 1, 0)), 0),
        CtVerdict::Invalid(InvalidReason::NotSyn)
    );
    t.update(other, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), 0);
    assert_eq!(
        t.update(other, Dir::Orig, 60, Some(&seg(ACK, 1001, 0, 0)), 0),
        CtVerdict::Invalid(InvalidReason::BadTransition)
    );
    assert_eq!(t.stats().invalid, 5);
    assert_eq!(tcp_state(&t, id), TcpState::Established);
}

#[test]
fn strict_window_scaling() {
    let mut t = table(4, true);
    let id = insert(&mut t, &tcp_key(1), 0);
    let syn = TcpSegment { flags: SYN, seq: 1000, ack: 0, window: 65535, payload_len: 0, wscale: Some(7) };
    let synack = TcpSegment { flags: SYN | ACK, seq: 5000, ack: 1001, window: 65535, payload_len: 0, wscale: Some(7) };
    assert_eq!(t.update(id, Dir::Orig, 60, Some(&syn), 0), CtVerdict::Ok);
    assert_eq!(t.update(id, Dir::Reply, 60, Some(&synack), 0), CtVerdict::Ok);
    assert_eq!(t.update(id, Dir::Orig, 52, Some(&seg(ACK, 1001, 5001, 0)), 0), CtVerdict::Ok);
    // The server opens its window, 65535 << 7 (8 MiB): 4 MiB ahead is in window.
    assert_eq!(t.update(id, Dir::Reply, 52, Some(&seg(ACK, 5001, 1001, 0)), 0), CtVerdict::Ok);
    let mut seq = 1001u32;
    for _ in 0..2800 {
        assert_eq!(t.update(id, Dir::Orig, 1500, Some(&seg(ACK, seq, 5001, 1448)), 0), CtVerdict::Ok);
        seq = seq.wrapping_add(1448);
    }
    // Without scaling the same stream would pass the 64 KiB window after 45 segments.
    let id = insert(&mut t, &tcp_key(2), 0);
    t.update(id, Dir::Orig, 60, Some(&seg(SYN, 1000, 0, 0)), 0);
    t.update(id, Dir::Reply, 60, Some(&synack), 0);
    t.update(id, Dir::Orig, 52, Some(&seg(ACK, 1001, 5001, 0)), 0);
    t.update(id, Dir::Reply, 52, Some(&seg(ACK, 5001, 1001, 0)), 0);
    let verdicts: Vec<_> = (0..50u32).map(|i| t.update(id, Dir::Orig, 1500, Some(&seg(ACK, 1001 + i * 1448, 5001, 1448)), 0)).collect();
    assert_eq!(verdicts[44], CtVerdict::Ok);
    assert_eq!(verdicts[46], CtVerdict::Invalid(InvalidReason::OutOfWindow));
}

#[test]
fn no_reallocation_under_churn() {
    let cap = 1000u32;
    let mut t = table(cap, false);
    let (index_alloc, slab_ptr) = (t.index_allocation(), t.entry(0) as *const FlowEntry<u32>);
    let mut rng = 0x1234_5678_u64;
    let mut now = 0;
    let mut ids = Vec::new();
    for i in 0..10 * cap {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = proto_key(i, [6, 17, 1][(rng % 3) as usize]);
        ids.push(insert(&mut t, &k, now));
        if rng % 4 == 0 {
            let victim = ids.swap_remove((rng >> 8) as usize % ids.len());
            t.remove(victim);
        }
        if i % 100 == 0 {
            now += 7 * S;
            t.expire(now, 50);
        }
        // Same buckets, same bytes: never grown nor reallocated; at most half the
        // index's 7-slot buckets' slots in use.
        assert_eq!(t.index_allocation(), index_alloc);
        assert!(t.index_allocation().0 * 7 >= 2 * cap as usize);
    }
    assert_eq!(t.entry(0) as *const FlowEntry<u32>, slab_ptr);
    assert_eq!(t.capacity(), cap as usize);
    assert_eq!(t.vrf_len(1) as usize, t.len());
    let s = t.stats();
    assert_eq!(s.inserted - s.removed - s.expired - s.evicted, t.len() as u64);
    assert!(s.evicted > 0 && s.expired > 0);
    // Everything still findable.
    for (id, e) in t.iter() {
        assert_eq!(t.lookup(&e.key, e.key.sym_hash()), Some((id, Dir::Orig)));
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(usize),
    Remove(usize),
    Lookup(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..64usize).prop_map(Op::Insert),
        2 => (0..64usize).prop_map(Op::Remove),
        3 => (0..64usize, any::<bool>()).prop_map(|(i, r)| Op::Lookup(i, r)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn table_agrees_with_a_hashmap(keys in proptest::collection::vec(any_key(), 64), ops in proptest::collection::vec(op(), 1..300)) {
        let mut t = table(128, false);
        let mut model: HashMap<FlowKey, FlowId> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(i) => {
                    let k = keys[i];
                    let found = t.lookup(&k, k.sym_hash());
                    let modeled = model.get(&k).or_else(|| model.get(&k.reversed()));
                    prop_assert_eq!(found.map(|f| f.0), modeled.copied());
                    if found.is_none() {
                        let id = t.insert(&k, k.sym_hash(), 0, u32::MAX).expect("room");
                        model.insert(k, id);
                    }
                }
                Op::Remove(i) => {
                    let k = keys[i];
                    if let Some(id) = model.remove(&k) {
                        t.remove(id);
                    }
                }
                Op::Lookup(i, reversed) => {
                    let k = if reversed { keys[i].reversed() } else { keys[i] };
                    let expect = match (model.get(&k), model.get(&k.reversed())) {
                        (Some(&id), _) => Some((id, Dir::Orig)),
                        (None, Some(&id)) => Some((id, Dir::Reply)),
                        (None, None) => None,
                    };
                    prop_assert_eq!(t.lookup(&k, k.sym_hash()), expect);
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
    }
}

fn frag_key(id: u32) -> FragKey {
    FragKey { src: 0x0a00_0001, dst: 0x0a00_0002, id, vrf: 3, proto: 17, v6: false }
}

#[test]
fn frag_record_lookup_timeout_overwrite() {
    let mut f: FragTable<u8> = FragTable::new(64, 2 * S);
    assert!(f.is_empty());
    f.record(&frag_key(1), 10, 0);
    assert_eq!(f.lookup(&frag_key(1), S), Some(10));
    assert_eq!(f.lookup(&frag_key(2), S), None);
    assert_eq!(f.lookup(&FragKey { v6: true, ..frag_key(1) }, S), None);
    f.record(&frag_key(1), 11, S);
    assert_eq!(f.lookup(&frag_key(1), S), Some(11));
    assert_eq!(f.len(), 1);
    assert_eq!(f.lookup(&frag_key(1), 3 * S), None);
}

#[test]
fn frag_full_set_replaces_the_oldest() {
    let mut f: FragTable<u32> = FragTable::new(4, 60 * S); // one set of four ways
    assert_eq!(f.capacity(), 4);
    for i in 0..4 {
        f.record(&frag_key(i), i, u64::from(i));
    }
    f.record(&frag_key(99), 99, 10);
    assert_eq!(f.lookup(&frag_key(0), 10), None);
    for i in 1..4 {
        assert_eq!(f.lookup(&frag_key(i), 10), Some(i));
    }
    assert_eq!(f.lookup(&frag_key(99), 10), Some(99));
    assert_eq!(f.len(), 4);
    let mut empty: FragTable<u32> = FragTable::new(0, S);
    empty.record(&frag_key(1), 1, 0);
    assert_eq!(empty.lookup(&frag_key(1), 0), None);
}

/// A hint from `prefetch_entry` only saves the index read: a stale one (the entry evicted
/// and reused by another connection, freed, out of range, or another connection's) gives
/// the same answer as a plain lookup, and a right one gives the direction too.
#[test]
fn a_stale_lookup_hint_gives_the_plain_lookups_answer() {
    let mut t = table(2, false);
    let lookup = |t: &FlowTable<u32>, k: &FlowKey, hint| t.lookup_line(&LineKey::narrow(k).unwrap(), k.sym_hash(), hint);
    let (a, b, c) = (tcp_key(1), tcp_key(2), tcp_key(3));
    let ia = insert(&mut t, &a, 0);
    let ib = insert(&mut t, &b, 0);
    assert_eq!(t.prefetch_entry(a.sym_hash()), Some(ia));
    assert_eq!(lookup(&t, &a, Some(ia)), Some((ia, Dir::Orig)));
    assert_eq!(lookup(&t, &a.reversed(), Some(ia)), Some((ia, Dir::Reply)));
    // Another connection's entry, an id past the slab, none at all.
    for hint in [Some(ib), Some(99), None] {
        assert_eq!(lookup(&t, &a, hint), Some((ia, Dir::Orig)), "hint {hint:?}");
        assert_eq!(lookup(&t, &c, hint), None, "hint {hint:?}");
    }
    // The table is full: c evicts one of them and takes its entry; a hint naming that
    // entry for the evicted key must miss, and the survivor is still found.
    let ic = insert(&mut t, &c, 1);
    let (gone, kept, ik) = if ic == ia { (a, b, ib) } else { (b, a, ia) };
    assert_eq!(lookup(&t, &gone, Some(ic)), None);
    assert_eq!(lookup(&t, &c, Some(ik)), Some((ic, Dir::Orig)));
    assert_eq!(lookup(&t, &kept, Some(ic)), Some((ik, Dir::Orig)));
    // A freed entry matches nothing, not even the key it held.
    t.remove(ic);
    assert_eq!(lookup(&t, &c, Some(ic)), None);
}
