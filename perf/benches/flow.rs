//! Flow table: the per-packet and per-new-flow costs of `sluice_dataplane::flow`.
//!
//! Tables of 1k, 64k and 1M UDP/TCP flows (random IPv4 5-tuples, fixed seeds). Each
//! iteration runs 4,096 pre-generated packets of existing flows in random order (half of
//! them in the Reply direction), so cache misses count, and the time is reported per
//! packet. Every packet pays its `sym_hash` too, as the pipeline does.
//!
//! * `lookup_hit`: `sym_hash` + `lookup`.
//! * `lookup_update`: the same plus `update` (UDP: counters and the replied flag; TCP:
//!   an ACK on an established flow, liberal mode).
//! * `insert_evict`: a new flow per packet on a full table, so every insert evicts.
//! * `burst_miss_insert_evict`: the same as the pipeline does it, per new flow: a burst
//!   of 32 missing lookups, then the 32 inserts.
//! * `expire`: a table of 64k idle entries aged out in one `expire` call, per entry.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sluice_dataplane::flow::{tcp_flags, Dir, FlowConfig, FlowEntry, FlowKey, FlowTable, TcpSegment, Timeouts};

const SIZES: [(u32, &str); 3] = [(1_000, "1k"), (65_536, "64k"), (1_000_000, "1M")];
/// Packets per iteration.
const PKTS: usize = 4096;

/// splitmix64: a few lines, good enough for test data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn random_key(rng: &mut Rng, proto: u8) -> FlowKey {
    let a = rng.next();
    let b = rng.next();
    FlowKey {
        src: u128::from(a as u32),
        dst: u128::from((a >> 32) as u32),
        vrf: (b % 16) as u16,
        sport: (b >> 16) as u16,
        dport: [80, 443, 53, 8080][(b >> 32) as usize % 4],
        proto,
        v6: false,
    }
}

/// A key no table built by `build` holds (its source is outside the 32-bit space).
fn new_key(keys: &[FlowKey], i: u64) -> FlowKey {
    FlowKey { src: (1 << 40) | u128::from(i), ..keys[i as usize % keys.len()] }
}

/// A full table of `n` flows (alternately UDP and TCP) and their keys.
fn build(n: u32, rng: &mut Rng) -> (FlowTable<u32>, Vec<FlowKey>) {
    let mut t = FlowTable::new(&FlowConfig { capacity: n, timeouts: Timeouts::default(), tcp_strict: false });
    let mut keys = Vec::with_capacity(n as usize);
    while keys.len() < n as usize {
        let k = random_key(rng, if keys.len() % 2 == 0 { 17 } else { 6 });
        let h = k.sym_hash();
        if t.lookup(&k, h).is_none() {
            t.insert(&k, h, 0, u32::MAX).expect("room");
            keys.push(k);
        }
    }
    (t, keys)
}

/// `PKTS` packets of random existing flows, half of them reversed.
fn packets(keys: &[FlowKey], rng: &mut Rng) -> Vec<FlowKey> {
    (0..PKTS)
        .map(|_| {
            let r = rng.next();
            let k = keys[(r >> 1) as usize % keys.len()];
            if r & 1 == 0 { k } else { k.reversed() }
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow");
    g.throughput(Throughput::Elements(PKTS as u64));
    eprintln!("FlowEntry<u32>: {} bytes", size_of::<FlowEntry<u32>>());
    for (n, name) in SIZES {
        let mut rng = Rng(0xf10e_0000 + u64::from(n));
        let t0 = Instant::now();
        let (mut t, keys) = build(n, &mut rng);
        eprintln!("flow {name}: built in {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
        let pkts = packets(&keys, &mut rng);
        g.bench_function(BenchmarkId::new("lookup_hit", name), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for k in black_box(&pkts) {
                    acc = acc.wrapping_add(t.lookup(k, k.sym_hash()).map_or(u32::MAX, |(id, _)| id));
                }
                acc
            })
        });
        let ack = TcpSegment { flags: tcp_flags::ACK, seq: 1, ack: 1, window: 1000, payload_len: 1400, wscale: None };
        let mut now = 1000;
        g.bench_function(BenchmarkId::new("lookup_update", name), |b| {
            b.iter(|| {
                now += 1;
                let mut acc = 0u32;
                for k in black_box(&pkts) {
                    if let Some((id, dir)) = t.lookup(k, k.sym_hash()) {
                        let tcp = if k.proto == 6 { Some(&ack) } else { None };
                        t.update(id, dir, 1500, tcp, now);
                        acc = acc.wrapping_add(id);
                    }
                }
                acc
            })
        });
        let mut i = 0u64;
        g.bench_function(BenchmarkId::new("insert_evict", name), |b| {
            b.iter(|| {
                now += 1;
                for _ in 0..PKTS {
                    i += 1;
                    let k = new_key(&keys, i);
                    let id = t.insert(&k, k.sym_hash(), now, u32::MAX).expect("evicts");
                    t.update(id, Dir::Orig, 100, None, now);
                }
            })
        });
        // As the pipeline does it: a burst of 32 lookups (all missing; their index probes
        // overlap), then an insert + update per miss, whose probe is now in cache.
        g.bench_function(BenchmarkId::new("burst_miss_insert_evict", name), |b| {
            b.iter(|| {
                now += 1;
                for _ in 0..PKTS / 32 {
                    let mut burst = [(FlowKey::default(), 0u64); 32];
                    for slot in &mut burst {
                        i += 1;
                        let k = new_key(&keys, i);
                        *slot = (k, k.sym_hash());
                    }
                    let mut missing = [false; 32];
                    for (m, (k, h)) in missing.iter_mut().zip(&burst) {
                        *m = t.lookup(k, *h).is_none();
                    }
                    for (m, (k, h)) in missing.iter().zip(&burst) {
                        if *m {
                            let id = t.insert(k, *h, now, u32::MAX).expect("evicts");
                            t.update(id, Dir::Orig, 100, None, now);
                        }
                    }
                }
            })
        });
        eprintln!("flow {name}: {:?}", t.stats());
    }
    g.finish();
}

fn expire(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow");
    let n = 65_536u32;
    g.throughput(Throughput::Elements(u64::from(n)));
    g.bench_function(BenchmarkId::new("expire", "64k"), |b| {
        b.iter_batched(
            || build(n, &mut Rng(0xe4e1)).0,
            |mut t| {
                // Every entry is due (tcp_syn / udp_unreplied: 30 s).
                let expired = t.expire(31_000 + 1024, u32::MAX);
                assert_eq!(expired, n);
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, lookup, expire);
criterion_main!(benches);
