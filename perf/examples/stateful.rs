//! Runs the stateful bench's rotation a fixed number of times, for tools that count
//! rather than time (the VM's clock is too noisy for few-percent changes). The pipeline is
//! inlined into `main`, so there is no function to toggle collection on: count two runs
//! that differ only in rounds, and divide the difference by the packets between them:
//!
//! ```text
//! cargo build --release -p sluice-perf --example stateful
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/stateful 1024 10 4
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/stateful 1024 10 12
//! # (I refs of the second - of the first) / (8 x 1024) = instructions per packet
//! ```
//!
//! Timing runs: pinned (`taskset -c 1`), alternating the builds compared, the minimum of
//! several runs as the estimate.
//!
//! Arguments: connections (default 1024), rules (10), rounds over all frames (16), then
//! any of `full` (hold packets to the full path) and `shuffled` (replay in a random
//! order). Prints the packets it timed and ns/packet.

use sluice_perf::stateful::StatefulBench;
use sluice_perf::BURST;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| args.get(i).map_or(default, |a| a.parse().expect("a number"));
    let (flows, rules, rounds) = (num(0, 1024) as u32, num(1, 10) as usize, num(2, 16));
    let flag = |f: &str| args.iter().skip(3).any(|a| a == f);
    let mut b = StatefulBench::new(flows, rules, !flag("full"), flag("shuffled"));
    let bursts = rounds * (b.frames() / BURST) as u64;
    let t = b.measure(bursts);
    let packets = bursts * BURST as u64;
    println!("{packets} packets, {:.1} ns/packet", t.as_nanos() as f64 / packets as f64);
}
