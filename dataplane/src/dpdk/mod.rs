//! The safe face of DPDK: EAL, mempools, mbufs, bursts and ethdev ports.
//!
//! This module (with the `sluice-ffi` crate under it) is the only place in the
//! dataplane allowed to use `unsafe`; every block says why it holds. Everything
//! else reaches packets through [`crate::packet::PacketBuf`], which [`Mbuf`]
//! implements.
//!
//! Owns: the process-wide EAL guard ([`Eal`]), mbuf pools ([`Mempool`]), owned
//! mbufs ([`Mbuf`]) and the fixed-size arrays they travel in ([`Burst`]), and
//! ethdev ports ([`EthPort`]) with their per-queue handles ([`RxQueue`],
//! [`TxQueue`]).
//!
//! Lifetimes DPDK does not let the type system see, and how they are kept:
//! - a mempool must outlive every mbuf taken from it and every port queue set up
//!   on it: [`Mempool`]'s drop leaks the pool (with a warning) while any of its
//!   mbufs are still out, which includes those sitting in a port's rx ring;
//! - EAL must outlive every pool and port: [`Eal`]'s drop skips
//!   `rte_eal_cleanup` while any are alive;
//! - one port, one owner: [`EthPort`] claims its port id, so a second handle to
//!   the same port cannot be made.
//!
//! Hot paths (bursts, mbuf accessors) are panic-free and read mbuf fields
//! straight from the bindgen struct; the C shim is only called for bursts and
//! allocation.

mod burst;
mod eal;
mod hugemem;
mod mbuf;
mod mempool;
mod port;

#[cfg(test)]
mod tests;

use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use burst::{Burst, Drain};
pub use eal::{lcore_id, register_thread, socket_id, tsc, tsc_hz, unregister_thread, version, Eal};
pub use hugemem::{match_tags7, prefetch, prefetch_all, HugeArray};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{
    DevInfo, EthPort, LinkStatus, PortId, PortSetup, PortStats, RxQueue, TxQueue, MAX_PORTS, QUEUE_STAT_COUNTERS,
};

/// A failed DPDK call: which operation, the (positive) errno, and DPDK's text for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {msg} (errno {code})")]
pub struct DpdkError {
    /// The DPDK call or sluice operation that failed, e.g. `"rte_eth_dev_configure"`.
    pub op: &'static str,
    /// Positive errno (DPDK returns it negated, or sets `rte_errno`).
    pub code: i32,
    /// `rte_strerror(code)`, or our own explanation where DPDK gives none.
    pub msg: String,
}

/// Result of a DPDK operation.
pub type Result<T> = std::result::Result<T, DpdkError>;

impl DpdkError {
    /// An error for `code` (either sign), described by `rte_strerror`.
    pub fn new(op: &'static str, code: i32) -> Self {
        let code = code.saturating_abs();
        // SAFETY: rte_strerror accepts any int.
        let p = unsafe { sluice_ffi::rte_strerror(code) };
        // SAFETY: p is a NUL-terminated string (static, or DPDK's per-thread
        // buffer) that stays valid until the next call on this thread; it is
        // copied out right away.
        let msg = unsafe { CStr::from_ptr(p) };
        DpdkError {
            op,
            code,
            msg: msg.to_string_lossy().into_owned(),
        }
    }

    /// An error with our own message (for checks sluice makes before calling DPDK).
    pub fn with_msg(op: &'static str, code: i32, msg: impl Into<String>) -> Self {
        DpdkError {
            op,
            code: code.saturating_abs(),
            msg: msg.into(),
        }
    }

    /// The error DPDK left in this thread's `rte_errno` (for calls that return
    /// NULL or -1).
    pub fn from_rte_errno(op: &'static str) -> Self {
        // SAFETY: reads a thread-local int; no preconditions.
        let code = unsafe { sluice_ffi::sluice_errno() };
        Self::new(op, code)
    }
}

/// Maps DPDK's "negative errno on failure" convention to a `Result`.
#[inline]
fn check(op: &'static str, rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(DpdkError::new(op, rc))
    } else {
        Ok(rc)
    }
}

/// Linux errno values used by our own checks and when matching DPDK returns.
/// (DPDK runs on Linux here; these are fixed ABI numbers.)
mod errno {
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    pub const ENOTSUP: i32 = 95;
    pub const EALREADY: i32 = 114;
}

/// Live pools and ports; `rte_eal_cleanup` would pull memory from under them.
static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// Counts one live object that needs EAL until the guard drops.
#[derive(Debug)]
struct EalUse(());

impl EalUse {
    fn new() -> Self {
        LIVE_OBJECTS.fetch_add(1, Ordering::AcqRel);
        EalUse(())
    }
}

impl Drop for EalUse {
    fn drop(&mut self) {
        LIVE_OBJECTS.fetch_sub(1, Ordering::AcqRel);
    }
}
