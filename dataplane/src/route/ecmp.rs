//! Equal-cost multipath: a stable flow hash and the choice of one group member.
//!
//! The hash is unkeyed and the same on every run and every worker, so every packet of a
//! flow takes the same member whichever worker decides it (and again after a restart).
//! It only spreads flows; it is not meant to resist someone choosing tuples to collide.

/// Seed folded into every hash, so a zero tuple does not hash to zero.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// MurmurHash3's 64-bit finaliser: a bijection whose every output bit depends on every
/// input bit.
#[inline]
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Protocol and ports in one word.
#[inline]
const fn l4(proto: u8, sport: u16, dport: u16) -> u64 {
    ((proto as u64) << 32) | ((sport as u64) << 16) | dport as u64
}

/// Folds a 64-bit hash to 32 bits, keeping the high half's quality in the high bits
/// that [`pick`] uses.
#[inline]
const fn fold(h: u64) -> u32 {
    ((h >> 32) ^ h) as u32
}

/// Stable hash of an IPv4 5-tuple (addresses in host order). Not symmetric: the two
/// directions of a flow hash differently.
#[inline]
pub fn flow_hash_v4(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u32 {
    let addrs = ((src as u64) << 32) | dst as u64;
    fold(fmix64(addrs ^ fmix64(l4(proto, sport, dport) ^ SEED)))
}

/// Stable hash of an IPv6 5-tuple (`u128::from(Ipv6Addr)`). Not symmetric.
#[inline]
pub fn flow_hash_v6(src: u128, dst: u128, proto: u8, sport: u16, dport: u16) -> u32 {
    // Two independent chains (source, destination) so the multiplies overlap.
    let s = fmix64(fmix64((src >> 64) as u64 ^ SEED) ^ src as u64);
    let d = fmix64(fmix64((dst >> 64) as u64 ^ l4(proto, sport, dport)) ^ dst as u64);
    fold(fmix64(s ^ d.rotate_left(29)))
}

/// The member of an ECMP group of `group_len` members for flow hash `hash`: Lemire's
/// multiply-shift reduction, `hash * len / 2^32`. Stable for a given hash and length,
/// even over members when hashes are uniform, and no division.
///
/// Always below `group_len` when `group_len > 0`; an empty group yields 0, which the
/// caller must not use (it has no member to send to).
#[inline]
pub fn pick(group_len: usize, hash: u32) -> usize {
    ((u128::from(hash) * group_len as u128) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn flow_hashes_are_stable_and_pinned() {
        let a = flow_hash_v4(0x0a00_0001, 0x0a00_0002, 6, 1234, 80);
        assert_eq!(a, flow_hash_v4(0x0a00_0001, 0x0a00_0002, 6, 1234, 80));
        let b = flow_hash_v6(1, 2, 17, 53, 53);
        assert_eq!(b, flow_hash_v6(1, 2, 17, 53, 53));
        // Pinned values: a change here changes every flow's path on upgrade.
        assert_eq!(a, 0x245e_32e6, "{a:#x}");
        assert_eq!(b, 0x44b9_3dad, "{b:#x}");
    }

    #[test]
    fn flow_hashes_differ_for_different_tuples() {
        let base4 = (0x0a00_0001u32, 0x0a00_0002u32, 6u8, 1234u16, 80u16);
        let h = |t: (u32, u32, u8, u16, u16)| flow_hash_v4(t.0, t.1, t.2, t.3, t.4);
        let variants = [
            (base4.0 + 1, base4.1, base4.2, base4.3, base4.4),
            (base4.0, base4.1 + 1, base4.2, base4.3, base4.4),
            (base4.0, base4.1, 17, base4.3, base4.4),
            (base4.0, base4.1, base4.2, base4.3 + 1, base4.4),
            (base4.0, base4.1, base4.2, base4.3, base4.4 + 1),
            (base4.1, base4.0, base4.2, base4.4, base4.3),
        ];
        for v in variants {
            assert_ne!(h(v), h(base4), "{v:?}");
        }
        let h6 = flow_hash_v6(1 << 100, 2, 6, 1, 2);
        assert_ne!(h6, flow_hash_v6(1 << 101, 2, 6, 1, 2));
        assert_ne!(h6, flow_hash_v6(1 << 100, 3, 6, 1, 2));
        assert_ne!(h6, flow_hash_v6(1 << 100, 2, 17, 1, 2));
        assert_ne!(h6, flow_hash_v6(1 << 100, 2, 6, 2, 2));
        assert_ne!(h6, flow_hash_v6(1 << 100, 2, 6, 1, 3));

        // 100k flows differing in the source port only: (almost) no collisions.
        let mut seen4 = HashSet::new();
        let mut seen6 = HashSet::new();
        for port in 0..100_000u32 {
            let (sport, dport) = (port as u16, 80 + (port >> 16) as u16);
            seen4.insert(flow_hash_v4(0x0a00_0001, 0x0a00_0002, 6, sport, dport));
            seen6.insert(flow_hash_v6(7, 9, 6, sport, dport));
        }
        // Expected birthday collisions among 100k 32-bit values: ~1.2.
        assert!(seen4.len() > 99_990 && seen6.len() > 99_990, "{} {}", seen4.len(), seen6.len());
    }

    #[test]
    fn pick_is_stable_and_in_range() {
        for len in 1..=64 {
            for hash in [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
                let m = pick(len, hash);
                assert!(m < len);
                assert_eq!(m, pick(len, hash));
            }
            assert_eq!(pick(len, 0), 0);
            assert_eq!(pick(len, u32::MAX), len - 1);
        }
        assert_eq!(pick(0, 12345), 0);
        assert!(pick(usize::MAX, u32::MAX) < usize::MAX);
    }

    /// Counts 100k hashes per member of groups of 2..=16 and checks every member within
    /// 5% of even (so every member is covered).
    fn check_spread(name: &str, hashes: &[u32]) {
        for len in 2..=16 {
            let mut count = vec![0u32; len];
            for &h in hashes {
                count[pick(len, h)] += 1;
            }
            let even = hashes.len() as f64 / len as f64;
            for (m, &c) in count.iter().enumerate() {
                let off = (f64::from(c) - even).abs() / even;
                assert!(off <= 0.05, "{name}: group of {len}, member {m}: {c} vs {even:.0}");
            }
        }
    }

    #[test]
    fn pick_spreads_evenly() {
        let mut s = 42;
        let random: Vec<u32> = (0..100_000).map(|_| splitmix(&mut s) as u32).collect();
        check_spread("random", &random);
        // Structured inputs through the flow hashes: consecutive source ports, addresses.
        let ports: Vec<u32> =
            (0..100_000u32).map(|p| flow_hash_v4(0xc0a8_0001, 0x0a00_0001, 17, p as u16, (p >> 16) as u16)).collect();
        check_spread("v4 ports", &ports);
        let srcs: Vec<u32> =
            (0..100_000u32).map(|i| flow_hash_v4(0x0a00_0000 + i, 0x0a00_0001, 6, 40000, 443)).collect();
        check_spread("v4 sources", &srcs);
        let srcs6: Vec<u32> =
            (0..100_000u128).map(|i| flow_hash_v6((0x2001_0db8u128 << 96) | i, 1, 6, 40000, 443)).collect();
        check_spread("v6 sources", &srcs6);
    }
}
