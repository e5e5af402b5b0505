//! sluice dataplane.
//!
//! Everything here except [`dpdk`] is plain safe Rust that sees packets through the
//! [`packet::PacketBuf`] trait, so it is unit-tested, fuzzed and benchmarked without DPDK.
//! [`dpdk`] is the one module (with the `sluice-ffi` crate) allowed to use `unsafe`.
//!
//! Layout (see shared/DESIGN.md): `wire` zero-copy header views, `packet` buffers and
//! metadata, `l2` bridge tables and the MAC learning table, `flow` the per-worker flow table,
//! connection tracking and fragment tracker, `pipeline` the burst stages,
//! `worker` the polling loop and its counters, `trace` and `capture` the
//! operator's packet trace and live capture, `tables` the immutable snapshot that the
//! control thread publishes to the workers.
#![deny(unsafe_code)]

pub mod capture;
pub mod drop;
#[allow(unsafe_code)]
pub mod dpdk;
pub mod flow;
pub mod l2;
pub mod l3;
pub mod local;
pub mod packet;
pub mod pipeline;
pub mod policy;
pub mod route;
pub mod tables;
pub mod trace;
pub mod wire;
pub mod worker;

pub use drop::DropReason;
