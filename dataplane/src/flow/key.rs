//! Flow and fragment keys, their hashes, and the packet direction within a flow.

/// A connection in one VRF, in the direction of one packet. IPv4 addresses are stored as
/// their u32 value in the low bits of the u128 with `v6 == false`.
///
/// `repr(C)` keeps the five small fields together in the last 8 bytes after the two
/// addresses, so comparing them compiles to one 8-byte compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FlowKey {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// VRF the packet is routed in.
    pub vrf: u16,
    /// Source port (TCP/UDP), ICMP identifier, or 0.
    pub sport: u16,
    /// Destination port (TCP/UDP), or 0 (ICMP echo: also the identifier, so both
    /// directions of a ping share one key).
    pub dport: u16,
    /// IP protocol number (IPv6: the upper-layer protocol after extension headers).
    pub proto: u8,
    /// IPv6 addresses.
    pub v6: bool,
}

// Digits of pi: arbitrary odd-looking constants with no structure the inputs share.
const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

/// 64×64→128 multiply folded to 64 bits (the foldhash / wyhash mixer): one `mul`, and
/// every input bit reaches the high and the low half of the result.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hash of one end of a connection (address and port together, so a swap of the two
/// ends swaps whole terms and the sum below is unchanged).
#[inline(always)]
fn endpoint(addr: u128, port: u16) -> u64 {
    fold_mul(addr as u64 ^ K0, (addr >> 64) as u64 ^ u64::from(port) ^ K1)
}

impl FlowKey {
    /// The same connection seen from the other side (src<->dst, sport<->dport).
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport, ..*self }
    }

    /// Symmetric hash: `sym_hash(k) == sym_hash(&k.reversed())`, so both directions of a
    /// connection find the one entry; every bit of the result depends on every input bit
    /// (the flow index takes its tag from the high half and its bucket from the low one).
    ///
    /// IPv4 (both addresses within 32 bits): each end as one 48-bit word (address, port),
    /// the two ordered (the commutative step: min and max, exact, no sum to collide in),
    /// the VRF and the protocol in their top bits, then one folded multiply (foldhash's
    /// integer hash). Wider keys: one multiply per end, summed, then a final mix with the
    /// VRF, protocol and family. The fast path builds IPv4 keys only, so it pays the
    /// one multiply (the branch is on values it knows).
    ///
    /// Not keyed: an attacker who can choose many source addresses and ports could aim
    /// for collisions. The per-VRF limit and the fixed capacity bound the damage.
    #[inline(always)]
    pub fn sym_hash(&self) -> u64 {
        if !self.v6 && (self.src | self.dst) >> 32 == 0 {
            let a = ((self.src as u64) << 16) | u64::from(self.sport);
            let b = ((self.dst as u64) << 16) | u64::from(self.dport);
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            return fold_mul(lo ^ (u64::from(self.vrf) << 48) ^ K0, hi ^ (u64::from(self.proto) << 48) ^ K1);
        }
        let ends = endpoint(self.src, self.sport).wrapping_add(endpoint(self.dst, self.dport));
        let small = u64::from(self.vrf) | (u64::from(self.proto) << 16) | (u64::from(self.v6) << 24);
        fold_mul(ends ^ K2, small ^ K3)
    }

    /// The five small fields packed in one word (for cheap equality): the ports in the
    /// low half (sport low), so the other direction's word is that half rotated by 16
    /// bits; then the VRF, the protocol and the family bit.
    #[inline(always)]
    pub(crate) fn small(&self) -> u64 {
        u64::from(self.sport)
            | (u64::from(self.dport) << 16)
            | (u64::from(self.vrf) << 32)
            | (u64::from(self.proto) << 48)
            | (u64::from(self.v6) << 56)
    }

    /// The key with addresses `src`, `dst` and the small fields unpacked from `small` (the
    /// inverse of [`small`](Self::small); bits above the family bit are ignored).
    #[inline]
    pub(crate) fn from_small(src: u128, dst: u128, small: u64) -> Self {
        FlowKey {
            src,
            dst,
            sport: small as u16,
            dport: (small >> 16) as u16,
            vrf: (small >> 32) as u16,
            proto: (small >> 48) as u8,
            v6: (small >> 56) & 1 != 0,
        }
    }
}

/// Direction of a packet within its connection: the direction of the packet that created
/// the entry (`Orig`), or the opposite (`Reply`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dir {
    /// Same direction as the packet that created the entry.
    Orig = 0,
    /// The opposite direction.
    Reply = 1,
}

impl Dir {
    /// 0 for `Orig`, 1 for `Reply`: the index into the per-direction arrays of an entry.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The other direction.
    #[inline(always)]
    pub const fn flip(self) -> Dir {
        match self {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        }
    }
}

/// Fragments of one datagram: (vrf, v6, src, dst, IP id (IPv6: 32-bit identification), proto).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address (IPv4 in the low 32 bits).
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// IPv4 identification (16 bits) or IPv6 fragment-header identification.
    pub id: u32,
    /// VRF.
    pub vrf: u16,
    /// IP protocol (IPv6: the fragment header's next header).
    pub proto: u8,
    /// IPv6 addresses.
    pub v6: bool,
}

impl FragKey {
    /// A 64-bit hash of every field (not symmetric: a datagram has one direction).
    #[inline]
    pub fn frag_hash(&self) -> u64 {
        let a = fold_mul(self.src as u64 ^ K0, (self.src >> 64) as u64 ^ K1);
        let b = fold_mul(self.dst as u64 ^ K2, (self.dst >> 64) as u64 ^ K3);
        let small = u64::from(self.id)
            | (u64::from(self.vrf) << 32)
            | (u64::from(self.proto) << 48)
            | (u64::from(self.v6) << 56);
        fold_mul(a ^ small, b ^ K0)
    }
}
