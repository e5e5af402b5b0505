//! EAL start-up and shutdown, thread registration, time.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{errno, DpdkError, Result, LIVE_OBJECTS};

/// Set by the first [`Eal::init`]; DPDK's EAL can start once per process.
static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// The EAL of this process. Dropping it runs `rte_eal_cleanup`.
///
/// Thread-safety: the guard holds no state; keep it on the main thread and drop
/// it last, after every [`super::Mempool`] and [`super::EthPort`] (the drop
/// skips the cleanup, with a warning, while any are alive).
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Starts EAL with command-line style `args` (`args[0]` is the program
    /// name), e.g. `["sluice", "-l", "0-1", "--vdev", "net_null0"]`.
    ///
    /// The calling thread becomes the main lcore. Fails with `EALREADY` when EAL
    /// has already been started in this process.
    pub fn init(args: &[String]) -> Result<Eal> {
        if args.is_empty() {
            return Err(DpdkError::with_msg(
                "rte_eal_init",
                errno::EINVAL,
                "no program name in args",
            ));
        }
        let cargs = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                DpdkError::with_msg(
                    "rte_eal_init",
                    errno::EINVAL,
                    "argument contains a NUL byte",
                )
            })?;
        let argc = c_int::try_from(cargs.len()).map_err(|_| {
            DpdkError::with_msg("rte_eal_init", errno::EINVAL, "too many arguments")
        })?;
        if EAL_STARTED.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::with_msg(
                "rte_eal_init",
                errno::EALREADY,
                "EAL is already initialised in this process",
            ));
        }
        // EAL keeps pointers into argv (argv[0] becomes the syslog ident) and
        // getopt permutes the array, so both live for the rest of the process.
        let argv: &'static mut [*mut c_char] =
            Vec::leak(cargs.into_iter().map(CString::into_raw).collect::<Vec<_>>());
        // SAFETY: argv holds argc valid NUL-terminated strings that are never
        // freed; EAL may reorder the array, which nothing else reads.
        let rc = unsafe { sluice_ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let err = DpdkError::from_rte_errno("rte_eal_init");
            // EAL resets its own run-once flag on failures it can retry; let it
            // decide on the next call.
            EAL_STARTED.store(false, Ordering::Release);
            return Err(err);
        }
        tracing::info!(version = %version(), main_lcore = lcore_id(), "DPDK EAL initialised");
        Ok(Eal { _private: () })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        let live = LIVE_OBJECTS.load(Ordering::Acquire);
        if live != 0 {
            tracing::warn!(
                live,
                "DPDK pools or ports still alive: skipping rte_eal_cleanup"
            );
            return;
        }
        // SAFETY: EAL was initialised by this guard, and no pool or port built
        // on its memory is alive any more.
        let rc = unsafe { sluice_ffi::rte_eal_cleanup() };
        if rc < 0 {
            tracing::warn!(error = %DpdkError::new("rte_eal_cleanup", rc), "EAL cleanup failed");
        }
    }
}

/// The DPDK version string, e.g. `"DPDK 22.11.11"`.
pub fn version() -> String {
    // SAFETY: no preconditions; returns a pointer to a static string.
    let p = unsafe { sluice_ffi::rte_version() };
    // SAFETY: p is DPDK's static NUL-terminated version string.
    let v = unsafe { std::ffi::CStr::from_ptr(p) };
    v.to_string_lossy().into_owned()
}

/// Registers the calling (non-EAL) thread with DPDK and returns its lcore id,
/// so per-lcore mempool caches and lcore-aware APIs work on it.
///
/// Call once per worker thread, before its first burst, and never on the main
/// lcore (it already has one). Fails if EAL is not initialised or no lcore id is
/// free.
pub fn register_thread() -> Result<u32> {
    if !EAL_STARTED.load(Ordering::Acquire) {
        return Err(DpdkError::with_msg(
            "rte_thread_register",
            errno::EINVAL,
            "EAL is not initialised",
        ));
    }
    // SAFETY: EAL is initialised; registration only touches this thread's
    // per-lcore variables and EAL's lcore table under its own lock.
    let rc = unsafe { sluice_ffi::rte_thread_register() };
    if rc < 0 {
        return Err(DpdkError::from_rte_errno("rte_thread_register"));
    }
    Ok(lcore_id())
}

/// Releases the calling thread's lcore id (the reverse of [`register_thread`]).
/// Free any per-lcore cached objects (stop using mempools) before calling.
pub fn unregister_thread() {
    if !EAL_STARTED.load(Ordering::Acquire) {
        return;
    }
    // SAFETY: EAL is initialised; a thread that never registered is a no-op
    // (its lcore id is LCORE_ID_ANY).
    unsafe { sluice_ffi::rte_thread_unregister() }
}

/// The calling thread's lcore id; `u32::MAX` (`LCORE_ID_ANY`) for a thread
/// DPDK does not know.
#[inline]
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local variable; no preconditions.
    unsafe { sluice_ffi::sluice_lcore_id() }
}

/// NUMA socket of the calling thread (`-1` when unknown).
pub fn socket_id() -> i32 {
    // SAFETY: reads per-lcore state; no preconditions.
    let s = unsafe { sluice_ffi::rte_socket_id() };
    // SOCKET_ID_ANY comes back as u32::MAX through the unsigned return type.
    i32::try_from(s).unwrap_or(sluice_ffi::SLUICE_SOCKET_ID_ANY)
}

/// TSC ticks per second (measured by EAL at start-up; 0 before).
#[inline]
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init; no preconditions.
    unsafe { sluice_ffi::rte_get_tsc_hz() }
}

/// The current TSC value (`rdtsc`).
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the CPU time-stamp counter; no preconditions.
    unsafe { sluice_ffi::sluice_get_tsc_cycles() }
}
