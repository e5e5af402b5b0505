//! Both FIBs against a naive reference (linear scan for the longest match) on random
//! route sets built to nest: routes are drawn near a few random base addresses, so
//! prefixes share long stretches of bits, cover each other and repeat.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

use super::*;

/// Longest match by linear scan; among equal prefixes the later route wins.
fn reference<A: Copy>(routes: &[(A, u8, NextHopId)], addr: A, covers: impl Fn(A, u8, A) -> bool) -> Option<NextHopId> {
    let mut best: Option<(u8, NextHopId)> = None;
    for &(p, len, nh) in routes {
        if covers(p, len, addr) && best.is_none_or(|(l, _)| len >= l) {
            best = Some((len, nh));
        }
    }
    best.map(|(_, nh)| nh)
}

fn mask4(len: u8) -> u32 {
    !u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    !u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

fn config() -> Config {
    Config { cases: 64, rng_seed: RngSeed::Fixed(0x5eed_f1b0), failure_persistence: None, ..Config::default() }
}

/// (base index, random bits, how many low bits of the base to randomise, length, next hop).
type Spec<R> = (Index, R, u32, u8, NextHopId);

fn len4() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(0u8), 2 => 0u8..=32, 3 => 8u8..=24, 3 => 16u8..=32, 2 => 22u8..=32]
}

fn len6() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(0u8), 2 => 0u8..=128, 3 => 16u8..=64, 3 => 40u8..=72, 2 => 96u8..=128]
}

fn routes4(specs: &[Spec<u32>], bases: &[u32]) -> Vec<Route4> {
    specs
        .iter()
        .map(|&(bi, rnd, bits, len, nh)| {
            let near = bases[bi.index(bases.len())] ^ (rnd & !mask4((32 - bits) as u8));
            Route4::new(Ipv4Addr::from(near & mask4(len)), len, nh)
        })
        .collect()
}

fn routes6(specs: &[Spec<u128>], bases: &[u128]) -> Vec<Route6> {
    specs
        .iter()
        .map(|&(bi, rnd, bits, len, nh)| {
            let near = bases[bi.index(bases.len())] ^ (rnd & !mask6((128 - bits) as u8));
            Route6::new(Ipv6Addr::from(near & mask6(len)), len, nh)
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fib4_matches_reference(
        bases in prop::collection::vec(any::<u32>(), 1..4),
        specs in prop::collection::vec((any::<Index>(), any::<u32>(), 0u32..=32, len4(), 0u32..6), 0..200),
        extra in prop::collection::vec(any::<u32>(), 0..64),
    ) {
        let routes = routes4(&specs, &bases);
        let fib = Fib4::build(&routes).unwrap();
        let table: Vec<_> = routes.iter().map(|r| (u32::from(r.prefix), r.len, r.nh)).collect();
        let covers = |p: u32, len: u8, a: u32| a & mask4(len) == p;
        // Every route's first and last address, its neighbours outside, a random host
        // inside, plus random addresses and the bases.
        let mut probes = extra;
        probes.extend(&bases);
        for (r, &(_, rnd, ..)) in routes.iter().zip(&specs) {
            let first = u32::from(r.prefix);
            let last = first | !mask4(r.len);
            probes.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1), first | (rnd & !mask4(r.len))]);
        }
        for a in probes {
            prop_assert_eq!(fib.lookup(a), reference(&table, a, covers), "{}", Ipv4Addr::from(a));
        }
    }

    #[test]
    fn fib6_matches_reference(
        bases in prop::collection::vec(any::<u128>(), 1..4),
        specs in prop::collection::vec((any::<Index>(), any::<u128>(), 0u32..=128, len6(), 0u32..6), 0..200),
        extra in prop::collection::vec(any::<u128>(), 0..64),
    ) {
        let routes = routes6(&specs, &bases);
        let fib = Fib6::build(&routes).unwrap();
        let table: Vec<_> = routes.iter().map(|r| (u128::from(r.prefix), r.len, r.nh)).collect();
        let covers = |p: u128, len: u8, a: u128| a & mask6(len) == p;
        let mut probes = extra;
        probes.extend(&bases);
        for (r, &(_, rnd, ..)) in routes.iter().zip(&specs) {
            let first = u128::from(r.prefix);
            let last = first | !mask6(r.len);
            probes.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1), first | (rnd & !mask6(r.len))]);
            // One bit flipped at every level boundary inside the prefix: the skip and
            // sparse compare paths.
            for bit in (16..u32::from(r.len)).step_by(8) {
                probes.push(first ^ (1u128 << (127 - bit)));
            }
        }
        for &a in &probes {
            prop_assert_eq!(fib.lookup(a), reference(&table, a, covers), "{}", Ipv6Addr::from(a));
        }
        // The burst walk gives the same answers, whatever the burst length.
        let mut out = vec![Some(u32::MAX); probes.len() + 1];
        fib.lookup_burst(&probes, &mut out);
        for (i, &a) in probes.iter().enumerate() {
            prop_assert_eq!(out[i], fib.lookup(a), "{}", Ipv6Addr::from(a));
        }
        prop_assert_eq!(out[probes.len()], Some(u32::MAX));
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A bigger IPv6 table with every node kind (dense, sparse, skip) in one trie.
#[test]
fn fib6_mixed_nodes_match_reference() {
    let mut s = 7;
    let base: u128 = 0x2001_0db8 << 96;
    let mut routes = vec![Route6::new(Ipv6Addr::UNSPECIFIED, 0, 0), Route6::new(Ipv6Addr::from(base), 32, 1)];
    for i in 0..3000u32 {
        let r = (u128::from(splitmix(&mut s)) << 64) | u128::from(splitmix(&mut s));
        let len = [40u8, 44, 48, 48, 48, 56, 64, 64, 96, 128][i as usize % 10];
        // Half dense in one /40, half spread thin over the /32.
        let near = if i % 2 == 0 { base | (r >> 40) } else { base | (r >> 32) };
        routes.push(Route6::new(Ipv6Addr::from(near & mask6(len)), len, i % 1000 + 2));
    }
    let fib = Fib6::build(&routes).unwrap();
    let (dense, sparse, skips) = fib.nodes();
    assert!(dense > 0 && sparse > 0 && skips > 0, "{fib:?}");
    let table: Vec<_> = routes.iter().map(|r| (u128::from(r.prefix), r.len, r.nh)).collect();
    for r in routes.iter().step_by(3) {
        let first = u128::from(r.prefix);
        let inside = first | (u128::from(splitmix(&mut s)) & !mask6(r.len));
        for a in [first, inside, first.wrapping_sub(1), (first | !mask6(r.len)).wrapping_add(1)] {
            assert_eq!(fib.lookup(a), reference(&table, a, |p, len, a| a & mask6(len) == p), "{}", Ipv6Addr::from(a));
        }
    }
}
