//! Memory latency and parallelism of this machine as the flow table sees them: a random
//! cyclic walk over one 64-byte line per step in a [`HugeArray`] of N MiB (the flow
//! table's own allocation: 2 MiB aligned, transparent huge pages advised), timed as one
//! dependent chain (latency) and as 8 independent chains (what a burst's prefetches can
//! overlap). Where the latency jumps says how much of the table can be random-accessed
//! at cache speed; on a VM that is not the cache size the CPU reports (see
//! docs/PERFORMANCE.md).
//!
//! ```text
//! cargo run --release -p sluice-perf --example memlat -- 1 4 8 16 32 64 256
//! ```

use std::hint::black_box;
use std::time::Instant;

use sluice_dataplane::dpdk::HugeArray;
use sluice_perf::shuffle;

/// One cache line: the index of the next line of the walk, and padding.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line {
    next: u32,
    _pad: [u32; 15],
}

const STEPS: usize = 20_000_000;
const CHAINS: usize = 8;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("MiB")).collect();
    for mib in if sizes.is_empty() { vec![1, 4, 8, 16, 32, 64, 256] } else { sizes } {
        let n = (mib << 20) / 64;
        // A random cyclic permutation: every line visited once per cycle, in an order no
        // prefetcher can follow.
        let mut order: Vec<u32> = (0..n as u32).collect();
        shuffle(&mut order, 0x2545_f491_4f6c_dd1d);
        let mut lines: HugeArray<Line> = HugeArray::new(n, |_| Line::default());
        for i in 0..n {
            lines[order[i] as usize].next = order[(i + 1) % n];
        }
        let t = Instant::now();
        let mut p = order[0];
        for _ in 0..STEPS {
            p = lines[p as usize].next;
        }
        let dependent = t.elapsed().as_nanos() as f64 / STEPS as f64;
        black_box(p);
        let mut q: [u32; CHAINS] = std::array::from_fn(|k| order[k * n / CHAINS]);
        let t = Instant::now();
        for _ in 0..STEPS / CHAINS {
            for c in q.iter_mut() {
                *c = lines[*c as usize].next;
            }
        }
        let parallel = t.elapsed().as_nanos() as f64 / (STEPS / CHAINS * CHAINS) as f64;
        black_box(q);
        println!(
            "{mib:5} MiB (huge pages advised: {}): {dependent:6.1} ns per dependent load, {parallel:5.1} ns per load over {CHAINS} chains",
            lines.huge_pages_advised()
        );
    }
}
