//! Packet mbuf pools.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use sluice_ffi::rte_mempool;

use super::{errno, Burst, DpdkError, EalUse, Mbuf, Result};

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`).
///
/// Thread-safety: `Send + Sync`. The pool uses DPDK's default multi-producer /
/// multi-consumer ring, so any thread may allocate and free; registered threads
/// also get a per-lcore cache of `cache_size` mbufs.
///
/// Cloning makes another handle to the same pool. A port set up on the pool
/// keeps a handle until it is closed, since its rx queues allocate from it.
/// When the last handle goes, the pool is freed only if every mbuf is back
/// (none held by [`Mbuf`]s, bursts or port rings); otherwise it is leaked with
/// a warning, since freeing it would leave those mbufs dangling.
#[derive(Clone, Debug)]
pub struct Mempool {
    /// Cached `owner.ptr`, so the hot paths skip the `Arc` indirection.
    ptr: NonNull<rte_mempool>,
    _owner: Arc<PoolOwner>,
}

/// Frees the pool when the last [`Mempool`] handle drops.
#[derive(Debug)]
struct PoolOwner {
    ptr: NonNull<rte_mempool>,
    _eal: EalUse,
}

// SAFETY: an rte_mempool is built for concurrent use from many threads (MP/MC
// ring ops, per-lcore caches); the handle is only a pointer to it plus an Arc.
unsafe impl Send for Mempool {}
// SAFETY: as above: every operation through `&Mempool` is thread-safe in DPDK.
unsafe impl Sync for Mempool {}
// SAFETY: the owner only frees the pool, once, from whichever thread drops the
// last handle; DPDK allows rte_mempool_free from any thread.
unsafe impl Send for PoolOwner {}
// SAFETY: `&PoolOwner` gives no access to the pool at all.
unsafe impl Sync for PoolOwner {}

impl Mempool {
    /// Creates a pool of `n_mbufs` mbufs, each with `data_room` bytes of buffer
    /// (headroom included: 2048 + 128 is DPDK's default), a per-lcore cache of
    /// `cache_size`, on NUMA `socket` (`-1` for any).
    ///
    /// `name` must be unique among live pools (DPDK's limit is 25 bytes).
    pub fn create(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool> {
        let cname = CString::new(name).map_err(|_| {
            DpdkError::with_msg(
                "rte_pktmbuf_pool_create",
                errno::EINVAL,
                "pool name contains a NUL byte",
            )
        })?;
        // SAFETY: cname is a valid C string for the call; DPDK copies the name.
        // The other arguments are plain values DPDK validates.
        let p = unsafe {
            sluice_ffi::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n_mbufs,
                cache_size,
                0,
                data_room,
                socket,
            )
        };
        match NonNull::new(p) {
            Some(ptr) => Ok(Mempool {
                ptr,
                _owner: Arc::new(PoolOwner {
                    ptr,
                    _eal: EalUse::new(),
                }),
            }),
            None => Err(DpdkError::from_rte_errno("rte_pktmbuf_pool_create")),
        }
    }

    /// Total mbufs in the pool.
    pub fn capacity(&self) -> u32 {
        // SAFETY: the pool is alive while `self` is; `size` is fixed at creation.
        unsafe { (*self.ptr.as_ptr()).size }
    }

    /// Mbufs free in the pool (ring plus per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count is a read of ring and cache sizes.
        unsafe { sluice_ffi::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs taken out of the pool and not yet returned.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive; the count is a read of ring and cache sizes.
        unsafe { sluice_ffi::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// One fresh mbuf (empty frame, default headroom), or `None` when the pool
    /// is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive and is a pktmbuf pool (made by
        // rte_pktmbuf_pool_create), which is what the alloc requires.
        let m = unsafe { sluice_ffi::sluice_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-NULL result is a fresh mbuf that nobody else holds.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m.as_ptr()) })
    }

    /// Allocates `n` fresh mbufs into the free tail of `burst`, all or none.
    /// Returns false (and allocates nothing) when they do not fit or the pool
    /// cannot supply them all.
    #[inline]
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut Burst<N>, n: usize) -> bool {
        let Ok(count) = u32::try_from(n) else {
            return false;
        };
        if n > N - burst.len() {
            return false;
        }
        let tail = burst.spare_ptr();
        // SAFETY: `tail` points at N - len free slots and n fits in them; the
        // pool is a live pktmbuf pool. On failure nothing is written.
        let rc = unsafe { sluice_ffi::sluice_pktmbuf_alloc_bulk(self.ptr.as_ptr(), tail, count) };
        if rc != 0 {
            return false;
        }
        // SAFETY: DPDK wrote n valid, exclusively owned mbufs into the tail.
        unsafe { burst.assume_filled(n) };
        true
    }

    /// Fresh mbuf holding a copy of `frame` (default headroom), or `None` when
    /// the pool is empty or `frame` does not fit one buffer.
    pub fn alloc_frame(&self, frame: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.extend_from_slice(frame).then_some(m)
    }

    /// The raw pool, for the few DPDK calls that take one (queue setup).
    pub fn as_ptr(&self) -> *mut rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for PoolOwner {
    fn drop(&mut self) {
        // SAFETY: the pool is still alive: this is the only place that frees it.
        let in_use = unsafe { sluice_ffi::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            tracing::warn!(in_use, "mempool dropped with mbufs still out: leaking it");
            return;
        }
        // SAFETY: this is the last handle (no `Mempool` and so no port queue can
        // reach the pool any more) and no mbuf of the pool is held anywhere
        // (in_use == 0), so nothing can touch the pool after this.
        unsafe { sluice_ffi::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
