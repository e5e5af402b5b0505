//! The Ethernet hot path: `EthernetFrame::new_checked` plus the four fields the L2
//! stage reads (dst, src, VLAN tag, EtherType), on 64-byte frames.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_dataplane::wire::{EtherType, EthernetFrame, MacAddr, VlanTag};
use sluice_perf::{dst_mac, frame, src_mac, BURST, FRAME_LEN};

/// Everything the L2 stage takes from a header, folded so nothing is optimised away.
#[inline(always)]
fn parse(f: &[u8]) -> Option<(MacAddr, MacAddr, Option<VlanTag>, EtherType)> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    Some((eth.dst(), eth.src(), eth.vlan(), eth.ethertype()))
}

fn bench(c: &mut Criterion) {
    let untagged = frame(dst_mac(1), src_mac(1), None);
    let tagged = frame(dst_mac(1), src_mac(1), Some(10));
    let mut g = c.benchmark_group("parse");
    g.bench_function("untagged_64B", |b| b.iter(|| parse(black_box(&untagged[..]))));
    g.bench_function("tagged_64B", |b| b.iter(|| parse(black_box(&tagged[..]))));
    // A burst of distinct frames, half tagged, as the stage sees them.
    let burst: Vec<[u8; FRAME_LEN]> =
        (0..BURST as u32).map(|i| frame(dst_mac(i), src_mac(i), (i % 2 == 1).then_some(10))).collect();
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_function("burst32_mixed", |b| {
        b.iter(|| {
            for f in black_box(&burst) {
                black_box(parse(&f[..]));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
