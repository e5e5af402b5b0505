//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! ```text
//!  checksum = ~fold( sum(16-bit big-endian words) )      odd length: pad one zero byte
//!  fold(x)  = add the carries above bit 15 back in until x fits 16 bits
//!  pseudo-header (IPv4, RFC 768/793):  src | dst | 0 | proto | L4 length (16)
//!  pseudo-header (IPv6, RFC 8200 8.1): src | dst | L4 length (32) | 0 0 0 | next header
//!  update (RFC 1624 eqn. 3):           HC' = ~(~HC + ~m + m')
//! ```
//! Partial sums are `u32` values congruent to the true sum modulo 0xffff. [`sum`] returns
//! at most 0xffff and the pseudo-header sums stay below 2^21, so callers add a few of them
//! in a `u32` without overflow and [`fold`] once at the end.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Ones-complement partial sum of `data` as big-endian 16-bit words, an odd last byte padded
/// with zero. The result is folded to at most 0xffff (zero only for all-zero data).
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // 32-bit words into a 64-bit accumulator: 2^16 = 1 (mod 0xffff), so summing u32 words
    // and folding gives the 16-bit ones-complement sum, with half the additions.
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// Whether 20 bytes with their checksum in place (an IPv4 header without options) verify
/// (`fold(sum(h)) == 0xffff`), in about a dozen instructions: no byte swaps, no folds.
///
/// The header is read as two u64 words and a u32 in the CPU's byte order and added with
/// end-around carry (a 64-bit ones'-complement sum, zero only for all-zero bytes). A
/// ones'-complement sum taken in the other byte order is the byte-swapped sum (RFC 1071
/// section 2(B)), and 0xffff is its own swap, so the byte order does not change the
/// answer. And 2^16 = 1 (mod 0xffff) with 0xffff dividing 2^64 - 1, so the 16-bit fold is
/// 0xffff exactly when the wide sum is a nonzero multiple of 0xffff: one multiply and a
/// compare (the compiler's divisibility test for a constant odd divisor).
#[inline(always)]
pub fn verifies20(h: &[u8; 20]) -> bool {
    // Constant indices into the array: checked when compiled.
    let q = |i: usize| u64::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3], h[i + 4], h[i + 5], h[i + 6], h[i + 7]]);
    let c = u64::from(u32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
    let add = |x: u64, y: u64| {
        let (s, carry) = x.overflowing_add(y);
        // No second carry: with one, s is at most 2^64 - 2.
        s + u64::from(carry)
    };
    let s = add(add(q(0), q(8)), c);
    s != 0 && s % 0xffff == 0
}

/// Folds the carries of a partial sum into 16 bits. Not complemented.
///
/// Two folds are enough for any `u32`, so no loop: the first leaves at most 0x1fffe, and
/// when that carries, its low half is at most 0xfffe.
#[inline]
pub const fn fold(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    ((sum & 0xffff) + (sum >> 16)) as u16
}

/// The Internet checksum of `data`: `!fold(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo-header for a TCP/UDP checksum (RFC 768, RFC 793).
#[inline]
pub const fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
    let s = u16::from_be_bytes([src[0], src[1]]) as u32 + u16::from_be_bytes([src[2], src[3]]) as u32;
    let d = u16::from_be_bytes([dst[0], dst[1]]) as u32 + u16::from_be_bytes([dst[2], dst[3]]) as u32;
    s + d + proto as u32 + len as u32
}

/// Partial sum of the IPv6 pseudo-header for an upper-layer checksum (RFC 8200 section 8.1).
#[inline]
pub const fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u32 {
    let mut acc = (len >> 16) + (len & 0xffff) + next_header as u32;
    let mut i = 0;
    while i < 16 {
        acc += u16::from_be_bytes([src[i], src[i + 1]]) as u32 + u16::from_be_bytes([dst[i], dst[i + 1]]) as u32;
        i += 2;
    }
    acc
}

/// [`pseudo_header_v4`] over `std::net` addresses.
#[inline]
pub(crate) fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    pseudo_header_v4(src.octets(), dst.octets(), proto, len as u16)
}

/// [`pseudo_header_v6`] over `std::net` addresses.
#[inline]
pub(crate) fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> u32 {
    pseudo_header_v6(src.octets(), dst.octets(), next_header, len as u32)
}

/// The checksum after one 16-bit word covered by `csum` changed from `old` to `new`
/// (RFC 1624 eqn. 3, which never yields the 0xffff that eqn. 2 can).
#[inline]
pub const fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold(!csum as u32 + !old as u32 + new as u32)
}

/// [`update16`] for a decrement by one of a word's high byte (an IPv4 header's TTL), on a
/// checksum read from the packet in the CPU's byte order (`u16::from_ne_bytes`) and
/// returned in that order (store it with `to_ne_bytes`).
///
/// `m' = m - 0x100`, so `~m + m' = 0xfeff` whatever `m` is, and the new checksum is
/// `~(~HC + 0xfeff)`. Ones'-complement addition commutes with a byte swap (RFC 1071 section
/// 2(B)), so in the CPU's order the constant is `0xfeff` as stored big-endian (0xfffe on a
/// little-endian CPU). One fold is enough: after a carry out of the 16-bit add at most
/// 0xfffd is left below it, so adding the carry back cannot carry again.
#[inline]
pub const fn update_ttl_decrement_ne(csum_ne: u16) -> u16 {
    let (s, carry) = (!csum_ne).overflowing_add(0xfeff_u16.to_be());
    !(s + carry as u16)
}

/// [`update16`] for a 32-bit field (an IPv4 address, a TCP sequence number).
#[inline]
pub const fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let o = !old;
    !fold(!csum as u32 + (o >> 16) + (o & 0xffff) + (new >> 16) + (new & 0xffff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The IPv4 header from RFC 1071's usual worked example (checksum 0xb861).
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, //
        0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn known_header_checksum() {
        let mut h = HEADER;
        assert_eq!(fold(sum(&h)), 0xffff, "a correct header sums to -0");
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn odd_length_is_zero_padded() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[0x12, 0x34, 0x56, 0x78, 0x9a]), u32::from(fold(0x1234 + 0x5678 + 0x9a00)));
        assert_eq!(sum(&[]), 0);
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(fold(0x0001_fffe), 0xffff);
        assert_eq!(fold(0xffff_ffff), 0xffff);
    }

    #[test]
    fn pseudo_headers_match_their_byte_layout() {
        let (s4, d4) = ([192, 0, 2, 1], [198, 51, 100, 7]);
        let mut ph = Vec::from(s4);
        ph.extend_from_slice(&d4);
        ph.extend_from_slice(&[0, 17, 0x01, 0x2c]);
        assert_eq!(fold(pseudo_header_v4(s4, d4, 17, 300)), fold(sum(&ph)));

        let s6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
        let d6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xffff, 0, 0, 2).octets();
        let mut ph = Vec::from(s6);
        ph.extend_from_slice(&d6);
        ph.extend_from_slice(&[0, 1, 0x00, 0x10, 0, 0, 0, 58]);
        assert_eq!(fold(pseudo_header_v6(s6, d6, 58, 0x1_0010)), fold(sum(&ph)));
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 section 4: eqn. 2 gives 0xffff here, recomputation and eqn. 3 give 0.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
        assert_eq!(!fold(0xcd7a + 0x3285), 0x0000);
    }

    fn word() -> impl Strategy<Value = u16> {
        prop_oneof![Just(0u16), Just(0xffff), Just(1), Just(0xfffe), any::<u16>()]
    }

    fn to_bytes(words: &[u16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// 0x0000 and 0xffff both stand for zero in ones-complement.
    fn same_value(a: u16, b: u16) -> bool {
        a == b || (a | b == 0xffff && a & b == 0)
    }

    proptest! {
        #[test]
        fn update16_equals_recomputation(
            mut words in proptest::collection::vec(word(), 1..40), at in any::<usize>(), new in word(),
        ) {
            let at = at % words.len();
            let before = checksum(&to_bytes(&words));
            let old = words[at];
            words[at] = new;
            let after = checksum(&to_bytes(&words));
            let inc = update16(before, old, new);
            if words.iter().any(|&w| w != 0) {
                prop_assert_eq!(inc, after);
            } else {
                // All-zero data is the one case with two spellings of zero.
                prop_assert!(same_value(inc, after));
            }
        }

        #[test]
        fn update32_equals_recomputation(
            mut words in proptest::collection::vec(word(), 2..40), at in any::<usize>(), hi in word(), lo in word(),
        ) {
            let at = at % (words.len() - 1);
            let before = checksum(&to_bytes(&words));
            let old = (u32::from(words[at]) << 16) | u32::from(words[at + 1]);
            words[at] = hi;
            words[at + 1] = lo;
            let after = checksum(&to_bytes(&words));
            let inc = update32(before, old, (u32::from(hi) << 16) | u32::from(lo));
            if words.iter().any(|&w| w != 0) {
                prop_assert_eq!(inc, after);
            } else {
                prop_assert!(same_value(inc, after));
            }
        }

        #[test]
        fn sum_equals_word_by_word(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut s: u32 = data.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
            while s >> 16 != 0 {
                s = (s & 0xffff) + (s >> 16);
            }
            prop_assert_eq!(sum(&data), s);
        }

        #[test]
        fn fold_equals_folding_until_no_carry(s in any::<u32>()) {
            let mut want = s;
            while want >> 16 != 0 {
                want = (want & 0xffff) + (want >> 16);
            }
            prop_assert_eq!(u32::from(fold(s)), want);
        }

        /// Random headers almost never verify, so each is tried as it is, with its
        /// checksum filled in (must verify), and with that one bit flipped (must not).
        #[test]
        fn verifies20_agrees_with_the_big_endian_sum(mut h in proptest::array::uniform20(any::<u8>()), bit in 0usize..160) {
            prop_assert_eq!(verifies20(&h), fold(sum(&h)) == 0xffff);
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verifies20(&h));
            prop_assert_eq!(fold(sum(&h)), 0xffff);
            h[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!verifies20(&h));
            prop_assert_eq!(verifies20(&h), fold(sum(&h)) == 0xffff);
        }

        #[test]
        fn ttl_decrement_in_the_cpu_byte_order_is_update16(csum in any::<u16>(), m in 0x100u16..) {
            let want = update16(csum, m, m - 0x100);
            let ne = u16::from_ne_bytes(csum.to_be_bytes());
            prop_assert_eq!(update_ttl_decrement_ne(ne).to_ne_bytes(), want.to_be_bytes());
        }

        #[test]
        fn ipv4_header_updates(mut h in proptest::array::uniform20(any::<u8>()), ttl in 2u8.., src in any::<u32>()) {
            // A real header never sums to zero (version 4), so incremental is exact there.
            h[0] = 0x45;
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let old_ttl_word = u16::from_be_bytes([h[8], h[9]]);
            let old_src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            h[8] = ttl - 1;
            h[12..16].copy_from_slice(&src.to_be_bytes());
            let mut c = update16(c, old_ttl_word, u16::from_be_bytes([h[8], h[9]]));
            c = update32(c, old_src, src);
            h[10..12].copy_from_slice(&[0, 0]);
            prop_assert_eq!(c, checksum(&h));
        }
    }
}
