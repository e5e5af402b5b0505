//! The L2 stage (`classify`) and the whole pipeline, per packet, on bursts of 32
//! 64-byte frames. See `sluice_perf` for the scenarios and docs/PERFORMANCE.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_perf::{PipelineBench, Scenario, StageBench, BURST};

const STAGE: [Scenario; 5] = [
    Scenario::Unicast { sources: 1 },
    Scenario::Unicast { sources: 1024 },
    Scenario::Flood,
    Scenario::FdbLookup { entries: 1024 },
    Scenario::FdbLookup { entries: 65536 },
];

const PIPELINE: [Scenario; 6] = [
    Scenario::Unicast { sources: 1 },
    Scenario::Unicast { sources: 1024 },
    Scenario::Flood,
    Scenario::VlanPush,
    Scenario::FdbLookup { entries: 1024 },
    Scenario::FdbLookup { entries: 65536 },
];

fn l2_stage(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2_stage");
    g.throughput(Throughput::Elements(BURST as u64));
    for s in STAGE {
        let mut b = StageBench::new(s);
        g.bench_function(BenchmarkId::from_parameter(s.name()), |bench| bench.iter_custom(|iters| b.measure(iters)));
    }
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    for s in PIPELINE {
        let mut b = PipelineBench::new(s);
        g.bench_function(BenchmarkId::from_parameter(s.name()), |bench| bench.iter_custom(|iters| b.measure(iters)));
    }
    g.finish();
}

criterion_group!(benches, l2_stage, pipeline);
criterion_main!(benches);
