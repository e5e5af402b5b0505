//! The stateful routing path per packet (`sluice_perf::stateful`): established UDP
//! connections through conntrack and a NetworkPolicy, 1 to 1M connections (in creation order and
//! shuffled), 10 and 10k rules, with the fast path and (`full/`) held to the full path. Results in
//! docs/PERFORMANCE.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_perf::stateful::StatefulBench;
use sluice_perf::BURST;

fn stateful(c: &mut Criterion) {
    let mut g = c.benchmark_group("stateful");
    g.throughput(Throughput::Elements(BURST as u64));
    // (name, connections, rules, fast path, shuffled replay)
    let cases: [(&str, u32, usize, bool, bool); 9] = [
        ("fast/1/10", 1, 10, true, false),
        ("fast/1k/10", 1024, 10, true, false),
        ("fast/1k/10k", 1024, 10_000, true, false),
        ("fast/64k/10", 65_536, 10, true, false),
        ("fast/64k/10/shuffled", 65_536, 10, true, true),
        ("fast/1M/10", 1 << 20, 10, true, false),
        ("fast/1M/10/shuffled", 1 << 20, 10, true, true),
        ("full/1k/10", 1024, 10, false, false),
        ("full/64k/10", 65_536, 10, false, false),
    ];
    for (name, flows, rules, fast, shuffled) in cases {
        // Built on first use: criterion calls the routine only for benchmarks its filter
        // selects, so `cargo bench --bench stateful -- 64k` does not build the 1M table.
        let mut b: Option<StatefulBench> = None;
        g.bench_function(BenchmarkId::from_parameter(name), |bench| {
            let b = b.get_or_insert_with(|| StatefulBench::new(flows, rules, fast, shuffled));
            bench.iter_custom(|iters| b.measure(iters))
        });
    }
    g.finish();
}

criterion_group!(benches, stateful);
criterion_main!(benches);
