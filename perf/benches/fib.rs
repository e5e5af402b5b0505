//! FIB longest-prefix match: `Fib4::lookup` / `Fib6::lookup` on random tables of 1k,
//! 100k and 1M routes, over 4,096 pre-generated addresses per iteration (so cache misses
//! count), reported per lookup. Each table is built once per size; its build time, size
//! and node counts go to stderr.
//!
//! Tables (fixed seeds, so every run measures the same ones):
//! * IPv4: a default route; 60% /24, 35% /16–/23, 5% /25–/32, at random unicast
//!   addresses.
//! * IPv6: a default route; 55% /48, 30% /64, 5% /32–/47, 5% /49–/63, 5% /65–/128,
//!   inside 4,096 random /32 allocations in 2000::/3.
//!
//! Address sets: `random` (uniform: IPv4 over the whole space, IPv6 over 2000::/3, where
//! most addresses fall outside any specific route) and `routed` (a random route's prefix
//! with random host bits: every lookup walks to the route's depth). The lookups of one
//! iteration are independent, as in a burst, so this is throughput with memory-level
//! parallelism, not single-lookup latency. `fib6/routed_burst32` runs the `routed` set
//! through `Fib6::lookup_burst`, 32 addresses per call.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_dataplane::route::{Fib4, Fib6, Route4, Route6};

const SIZES: [(usize, &str); 3] = [(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")];
/// Addresses per iteration.
const ADDRS: usize = 4096;

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

    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    /// Uniform in `lo..=hi` (small ranges; the modulo bias is irrelevant here).
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }
}

fn mask4(len: u8) -> u32 {
    !u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    !u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

fn routes4(n: usize, rng: &mut Rng) -> Vec<Route4> {
    let mut v = vec![Route4::new(Ipv4Addr::UNSPECIFIED, 0, 0)];
    for i in 1..n {
        let len = match rng.range(0, 99) {
            0..=59 => 24,
            60..=94 => rng.range(16, 23),
            _ => rng.range(25, 32),
        } as u8;
        // Unicast 1.0.0.0–223.255.255.255.
        let addr = (rng.range(1, 223) << 24) | (rng.next() as u32 & 0x00ff_ffff);
        v.push(Route4::new(Ipv4Addr::from(addr & mask4(len)), len, i as u32));
    }
    v
}

fn routes6(n: usize, rng: &mut Rng) -> Vec<Route6> {
    let bases: Vec<u128> = (0..4096).map(|_| (rng.u128() & mask6(32) & !mask6(3)) | (1 << 125)).collect();
    let mut v = vec![Route6::new(Ipv6Addr::UNSPECIFIED, 0, 0)];
    for i in 1..n {
        let len = match rng.range(0, 99) {
            0..=54 => 48,
            55..=84 => 64,
            85..=89 => rng.range(32, 47),
            90..=94 => rng.range(49, 63),
            _ => rng.range(65, 128),
        } as u8;
        let addr = bases[rng.next() as usize % bases.len()] | (rng.u128() & !mask6(32));
        v.push(Route6::new(Ipv6Addr::from(addr & mask6(len)), len, i as u32));
    }
    v
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn fib4(c: &mut Criterion) {
    let mut g = c.benchmark_group("fib4");
    g.throughput(Throughput::Elements(ADDRS as u64));
    eprintln!("fib4 empty: {:.1} KiB", Fib4::default().memory_bytes() as f64 / 1024.0);
    for (n, name) in SIZES {
        let mut rng = Rng(0xf1b4_0000 + n as u64);
        let routes = routes4(n, &mut rng);
        let t = Instant::now();
        let fib = Fib4::build(&routes).expect("valid routes");
        let built = t.elapsed();
        eprintln!(
            "fib4 {name}: {} prefixes, build {:.1} ms, {:.2} MiB ({} plies)",
            fib.len(),
            built.as_secs_f64() * 1e3,
            mib(fib.memory_bytes()),
            fib.plies()
        );
        let random: Vec<u32> = (0..ADDRS).map(|_| rng.next() as u32).collect();
        let routed: Vec<u32> = (0..ADDRS)
            .map(|_| {
                let r = routes[rng.next() as usize % routes.len()];
                u32::from(r.prefix) | (rng.next() as u32 & !mask4(r.len))
            })
            .collect();
        for (set, addrs) in [("random", &random), ("routed", &routed)] {
            g.bench_function(BenchmarkId::new(set, name), |b| {
                b.iter(|| {
                    let mut acc = 0u32;
                    for &a in black_box(addrs) {
                        acc = acc.wrapping_add(fib.lookup(a).unwrap_or(u32::MAX));
                    }
                    acc
                })
            });
        }
    }
    g.finish();
}

fn fib6(c: &mut Criterion) {
    let mut g = c.benchmark_group("fib6");
    g.throughput(Throughput::Elements(ADDRS as u64));
    eprintln!("fib6 empty: {:.1} KiB", Fib6::default().memory_bytes() as f64 / 1024.0);
    for (n, name) in SIZES {
        let mut rng = Rng(0xf1b6_0000 + n as u64);
        let routes = routes6(n, &mut rng);
        let t = Instant::now();
        let fib = Fib6::build(&routes).expect("valid routes");
        let built = t.elapsed();
        let (dense, sparse, skips) = fib.nodes();
        eprintln!(
            "fib6 {name}: {} prefixes, build {:.1} ms, {:.2} MiB ({dense} dense, {sparse} sparse, {skips} skips)",
            fib.len(),
            built.as_secs_f64() * 1e3,
            mib(fib.memory_bytes()),
        );
        let random: Vec<u128> = (0..ADDRS).map(|_| (rng.u128() & !mask6(3)) | (1 << 125)).collect();
        let routed: Vec<u128> = (0..ADDRS)
            .map(|_| {
                let r = routes[rng.next() as usize % routes.len()];
                u128::from(r.prefix) | (rng.u128() & !mask6(r.len))
            })
            .collect();
        for (set, addrs) in [("random", &random), ("routed", &routed)] {
            g.bench_function(BenchmarkId::new(set, name), |b| {
                b.iter(|| {
                    let mut acc = 0u32;
                    for &a in black_box(addrs) {
                        acc = acc.wrapping_add(fib.lookup(a).unwrap_or(u32::MAX));
                    }
                    acc
                })
            });
        }
        // The same addresses through lookup_burst, 32 (a worker's rx burst) per call.
        let mut out = [None; 32];
        g.bench_function(BenchmarkId::new("routed_burst32", name), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for burst in black_box(&routed).chunks(32) {
                    fib.lookup_burst(burst, &mut out);
                    acc = out.iter().fold(acc, |acc, nh| acc.wrapping_add(nh.unwrap_or(u32::MAX)));
                }
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fib4, fib6);
criterion_main!(benches);
