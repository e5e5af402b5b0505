//! Ethdev ports and their rx/tx queues.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_ffi::{
    rte_device, rte_eth_conf, rte_eth_dev_info, rte_eth_link,
    rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_NONE, rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS, rte_eth_stats,
    rte_ether_addr, SLUICE_ETH_RSS_IP, SLUICE_ETH_RSS_TCP, SLUICE_ETH_RSS_UDP,
    SLUICE_ETH_RX_OFFLOAD_RSS_HASH, SLUICE_MAX_ETHPORTS,
};

use super::{check, errno, Burst, DpdkError, EalUse, Mempool, Result};

/// A DPDK ethdev port id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl std::fmt::Display for PortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How to bring a port up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSetup {
    /// Rx queues (one per worker); more than one turns RSS on where the device has it.
    pub rx_queues: u16,
    /// Tx queues (one per worker).
    pub tx_queues: u16,
    /// Rx ring size per queue (rounded to what the device accepts).
    pub rx_desc: u16,
    /// Tx ring size per queue (rounded to what the device accepts).
    pub tx_desc: u16,
    /// MTU to set, if not the device default. Setting it fails if the device cannot.
    pub mtu: Option<u16>,
    /// Receive every frame, not only those to our MAC.
    pub promiscuous: bool,
}

impl Default for PortSetup {
    fn default() -> Self {
        PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: None,
            promiscuous: true,
        }
    }
}

/// What a device is and can do (from `rte_eth_dev_info_get`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    /// PMD name, e.g. `"net_null"`.
    pub driver: String,
    /// Most rx queues the device supports.
    pub max_rx_queues: u16,
    /// Most tx queues the device supports.
    pub max_tx_queues: u16,
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// NUMA socket of the device (`-1` when unknown, as for most vdevs).
    pub socket: i32,
    /// Largest MTU the device accepts.
    pub max_mtu: u16,
}

/// Basic port counters (from `rte_eth_stats_get`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub ipackets: u64,
    /// Frames sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Frames the device dropped because rx rings were full.
    pub imissed: u64,
    /// Erroneous frames received.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Rx mbuf allocation failures.
    pub rx_nombuf: u64,
    /// Per-queue counters of the first [`QUEUE_STAT_COUNTERS`] queues (drivers that do
    /// not keep them leave zeros): received frames and bytes per rx queue, sent frames
    /// and bytes per tx queue.
    pub q_ipackets: [u64; QUEUE_STAT_COUNTERS],
    pub q_ibytes: [u64; QUEUE_STAT_COUNTERS],
    pub q_opackets: [u64; QUEUE_STAT_COUNTERS],
    pub q_obytes: [u64; QUEUE_STAT_COUNTERS],
    /// Per rx queue: erroneous frames (driver-specific).
    pub q_errors: [u64; QUEUE_STAT_COUNTERS],
}

/// Queues `rte_eth_stats` counts one by one (`RTE_ETHDEV_QUEUE_STAT_CNTRS`).
pub const QUEUE_STAT_COUNTERS: usize = 16;

/// Link state (from `rte_eth_link_get_nowait`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown or down).
    pub speed_mbps: u32,
}

/// Most ethdev ports a process can have (`RTE_MAX_ETHPORTS`).
pub const MAX_PORTS: usize = SLUICE_MAX_ETHPORTS as usize;
// Port slots and per-port counters are sized without DPDK (`tables::MAX_PORTS`).
const _: () = assert!(MAX_PORTS == crate::tables::MAX_PORTS);

/// Port ids with a live [`EthPort`]: one owner per port.
static CLAIMED: [AtomicBool; MAX_PORTS] = [const { AtomicBool::new(false) }; MAX_PORTS];

/// An ethdev port, owned: configure, start, read counters, stop, close.
///
/// Not `Clone`: exactly one handle exists per port id (a second `by_name` of the
/// same port fails with `EBUSY` until the first is dropped). Dropping a port that
/// was set up stops and closes it; dropping one that was only looked up leaves
/// the device as it was.
///
/// Thread-safety: control-plane methods take `&mut self` where DPDK requires
/// them to be serialised; `stats`/`link`/`info` may run while workers burst.
/// The data path goes through [`RxQueue`]/[`TxQueue`] handles instead.
#[derive(Debug)]
pub struct EthPort {
    /// DPDK port id.
    pub id: PortId,
    /// Device name (`net_null0`, a PCI address, ...).
    pub name: String,
    state: State,
    rx_queues: u16,
    tx_queues: u16,
    /// Came from `probe` (hotplug): closing also removes the device.
    hotplugged: bool,
    /// The pool the rx queues allocate from, kept alive until close.
    pool: Option<Mempool>,
    _eal: EalUse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Found, not configured by us.
    Idle,
    /// Configured, queues set up, started.
    Started,
    /// Configured but stopped.
    Stopped,
    /// Closed: nothing more to do.
    Closed,
}

impl EthPort {
    /// The port DPDK knows by `name`: a vdev given to EAL with `--vdev` (its
    /// name is the part before the first comma, e.g. `net_ring0`) or a PCI
    /// address.
    pub fn by_name(name: &str) -> Result<EthPort> {
        let cname = CString::new(name).map_err(|_| {
            DpdkError::with_msg(
                "rte_eth_dev_get_port_by_name",
                errno::EINVAL,
                "name contains a NUL byte",
            )
        })?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string; id is a valid out-pointer.
        let rc = unsafe { sluice_ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc < 0 {
            return Err(DpdkError::with_msg(
                "rte_eth_dev_get_port_by_name",
                rc,
                format!("no DPDK port named {name:?}"),
            ));
        }
        let claim = CLAIMED.get(usize::from(id)).ok_or_else(|| {
            DpdkError::with_msg(
                "rte_eth_dev_get_port_by_name",
                errno::ENODEV,
                "port id out of range",
            )
        })?;
        if claim.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::with_msg(
                "EthPort::by_name",
                errno::EBUSY,
                format!("port {name:?} is already owned by another EthPort"),
            ));
        }
        Ok(EthPort {
            id: PortId(id),
            name: name.to_owned(),
            state: State::Idle,
            rx_queues: 0,
            tx_queues: 0,
            hotplugged: false,
            pool: None,
            _eal: EalUse::new(),
        })
    }

    /// Hot-plugs a device at run time from a devargs string (as `--vdev` or
    /// `-a` would take it, e.g. `net_vhost1,iface=/run/vm1.sock`) and returns
    /// its port. If the device already exists, this returns the existing port.
    /// Closing a hot-plugged port also removes the device.
    pub fn probe(devargs: &str) -> Result<EthPort> {
        let cargs = CString::new(devargs).map_err(|_| {
            DpdkError::with_msg("rte_dev_probe", errno::EINVAL, "devargs contain a NUL byte")
        })?;
        // SAFETY: cargs is a valid C string; DPDK parses and copies it.
        let rc = unsafe { sluice_ffi::rte_dev_probe(cargs.as_ptr()) };
        let fresh = match rc {
            0 => true,
            rc if -rc == errno::EEXIST => false,
            rc => return Err(DpdkError::new("rte_dev_probe", rc)),
        };
        let name = devargs.split(',').next().unwrap_or(devargs).trim();
        let mut port = Self::by_name(name)?;
        port.hotplugged = fresh;
        Ok(port)
    }

    /// Whether [`probe`](Self::probe) attached this device (rather than finding it
    /// already there).
    pub fn hotplugged(&self) -> bool {
        self.hotplugged
    }

    fn raw_info(&self) -> Result<rte_eth_dev_info> {
        let mut info = rte_eth_dev_info::default();
        // SAFETY: info is a valid, writable rte_eth_dev_info.
        check("rte_eth_dev_info_get", unsafe {
            sluice_ffi::rte_eth_dev_info_get(self.id.0, &mut info)
        })?;
        Ok(info)
    }

    /// The PMD's name in `info` (empty if it gives none).
    fn driver_name(info: &rte_eth_dev_info) -> String {
        if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-NULL driver_name is the PMD's static C string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        }
    }

    /// What the device is and can do.
    pub fn info(&self) -> Result<DevInfo> {
        let info = self.raw_info()?;
        let driver = Self::driver_name(&info);
        let mut mac = rte_ether_addr::default();
        // SAFETY: mac is a valid, writable rte_ether_addr.
        check("rte_eth_macaddr_get", unsafe {
            sluice_ffi::rte_eth_macaddr_get(self.id.0, &mut mac)
        })?;
        Ok(DevInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            mac: mac.addr_bytes,
            socket: self.socket(),
            max_mtu: info.max_mtu,
        })
    }

    fn socket(&self) -> i32 {
        // SAFETY: plain query on a port id; returns -1 (any) for unknown.
        unsafe { sluice_ffi::rte_eth_dev_socket_id(self.id.0) }
    }

    /// Configures the port, sets up its queues on the device's NUMA socket with
    /// rx buffers from `pool`, starts it and sets promiscuous mode.
    ///
    /// More than one rx queue turns on RSS (IP/TCP/UDP hashing, hash delivered
    /// in the mbuf) when the device supports it. A started port is stopped and
    /// reconfigured.
    pub fn setup(&mut self, s: &PortSetup, pool: &Mempool) -> Result<()> {
        if self.state == State::Closed {
            return Err(DpdkError::with_msg(
                "EthPort::setup",
                errno::ENODEV,
                "port is closed",
            ));
        }
        let info = self.raw_info()?;
        if s.rx_queues == 0
            || s.tx_queues == 0
            || s.rx_queues > info.max_rx_queues
            || s.tx_queues > info.max_tx_queues
        {
            return Err(DpdkError::with_msg(
                "EthPort::setup",
                errno::EINVAL,
                format!(
                    "{}: {} rx / {} tx queues asked, device has 1..={} rx / 1..={} tx",
                    self.name, s.rx_queues, s.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        if self.state == State::Started {
            self.stop()?;
        }

        let mut conf = rte_eth_conf::default();
        conf.rxmode.mq_mode = rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_NONE;
        if s.rx_queues > 1 {
            if info.flow_type_rss_offloads != 0 {
                let want = SLUICE_ETH_RSS_IP | SLUICE_ETH_RSS_TCP | SLUICE_ETH_RSS_UDP;
                let hf = match want & info.flow_type_rss_offloads {
                    0 => info.flow_type_rss_offloads,
                    hf => hf,
                };
                conf.rxmode.mq_mode = rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_key = std::ptr::null_mut();
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
                if info.rx_offload_capa & SLUICE_ETH_RX_OFFLOAD_RSS_HASH != 0 {
                    conf.rxmode.offloads |= SLUICE_ETH_RX_OFFLOAD_RSS_HASH;
                }
            } else {
                tracing::warn!(port = %self.name, "no RSS on this device: all traffic arrives on rx queue 0");
            }
        }
        // SAFETY: conf is a fully initialised rte_eth_conf that DPDK only reads.
        check("rte_eth_dev_configure", unsafe {
            sluice_ffi::rte_eth_dev_configure(self.id.0, s.rx_queues, s.tx_queues, &conf)
        })?;
        // From here the device is configured: a failure below leaves it stopped.
        self.state = State::Stopped;
        self.rx_queues = 0;
        self.tx_queues = 0;

        let (mut rx_desc, mut tx_desc) = (s.rx_desc, s.tx_desc);
        // SAFETY: both pointers are valid, writable u16s.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            sluice_ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id.0, &mut rx_desc, &mut tx_desc)
        })?;

        if let Some(mtu) = s.mtu {
            // SAFETY: plain call on a configured, stopped port.
            check("rte_eth_dev_set_mtu", unsafe {
                sluice_ffi::rte_eth_dev_set_mtu(self.id.0, mtu)
            })
            .map_err(|e| DpdkError {
                msg: format!("{}: mtu {mtu}: {}", self.name, e.msg),
                ..e
            })?;
        }

        let socket = self.socket();
        // The queues allocate from the pool from now on: keep it alive.
        self.pool = Some(pool.clone());
        // DPDK takes the socket id as unsigned; SOCKET_ID_ANY (-1) wraps to the
        // value it expects.
        let socket_arg = socket as u32;
        for q in 0..s.rx_queues {
            // SAFETY: the port is configured with s.rx_queues queues; a NULL
            // rxconf asks for the device defaults; the pool is a live pktmbuf
            // pool that self.pool keeps alive as long as the queue can use it.
            check("rte_eth_rx_queue_setup", unsafe {
                sluice_ffi::rte_eth_rx_queue_setup(
                    self.id.0,
                    q,
                    rx_desc,
                    socket_arg,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })?;
        }
        for q in 0..s.tx_queues {
            // SAFETY: the port is configured with s.tx_queues queues; a NULL
            // txconf asks for the device defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                sluice_ffi::rte_eth_tx_queue_setup(
                    self.id.0,
                    q,
                    tx_desc,
                    socket_arg,
                    std::ptr::null(),
                )
            })?;
        }

        // SAFETY: the port is configured and all its queues are set up.
        check("rte_eth_dev_start", unsafe {
            sluice_ffi::rte_eth_dev_start(self.id.0)
        })?;
        self.state = State::Started;
        self.rx_queues = s.rx_queues;
        self.tx_queues = s.tx_queues;

        if s.promiscuous {
            // SAFETY: plain call on a started port.
            let rc = unsafe { sluice_ffi::rte_eth_promiscuous_enable(self.id.0) };
            if -rc == errno::ENOTSUP {
                tracing::info!(port = %self.name, "device has no promiscuous mode; continuing without");
            } else {
                check("rte_eth_promiscuous_enable", rc)?;
            }
        }
        if Self::driver_name(&info) == "net_af_packet" {
            self.discard_queued_rx();
        }
        tracing::info!(
            port = %self.name, id = self.id.0, rx_queues = s.rx_queues, tx_queues = s.tx_queues,
            rx_desc, tx_desc, socket, rss = conf.rxmode.mq_mode == rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS,
            "port started"
        );
        Ok(())
    }

    /// Frees what the rx queues hold before anyone polls them (af_packet only).
    ///
    /// DPDK's af_packet PMD (22.11) opens each queue's socket for `ETH_P_ALL`, maps its
    /// ring, and binds it to the interface only then: in between, the ring takes frames
    /// from every interface of the namespace (loopback, other veths), which a worker
    /// would then forward as if they had arrived on this port. Seen as a stray untagged
    /// frame on a trunk in the netns tests. Nothing forwards yet, so dropping what is
    /// queued loses nothing that was meant for sluice; bounded by twice the PMD's
    /// default ring (512 frames).
    fn discard_queued_rx(&self) {
        let mut junk = Burst::<32>::new();
        let mut discarded = 0usize;
        for q in 0..self.rx_queues {
            let rxq = self.rx_queue(q);
            for _ in 0..32 {
                let n = rxq.rx_burst(&mut junk);
                junk.clear();
                if n == 0 {
                    break;
                }
                discarded += n;
            }
        }
        if discarded > 0 {
            tracing::info!(port = %self.name, discarded, "af_packet: discarded frames queued before the socket was bound");
        }
    }

    /// Current counters (all zero if the device will not say).
    pub fn stats(&self) -> PortStats {
        let mut st = rte_eth_stats::default();
        // SAFETY: st is a valid, writable rte_eth_stats.
        let rc = unsafe { sluice_ffi::rte_eth_stats_get(self.id.0, &mut st) };
        if rc < 0 {
            return PortStats::default();
        }
        PortStats {
            ipackets: st.ipackets,
            opackets: st.opackets,
            ibytes: st.ibytes,
            obytes: st.obytes,
            imissed: st.imissed,
            ierrors: st.ierrors,
            oerrors: st.oerrors,
            rx_nombuf: st.rx_nombuf,
            q_ipackets: st.q_ipackets,
            q_ibytes: st.q_ibytes,
            q_opackets: st.q_opackets,
            q_obytes: st.q_obytes,
            q_errors: st.q_errors,
        }
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        // SAFETY: plain call on a port id.
        let rc = unsafe { sluice_ffi::rte_eth_stats_reset(self.id.0) };
        if rc < 0 {
            tracing::debug!(port = %self.name, error = %DpdkError::new("rte_eth_stats_reset", rc), "stats reset failed");
        }
    }

    /// Link state, without waiting for autonegotiation.
    pub fn link(&self) -> LinkStatus {
        let mut link = rte_eth_link::default();
        // SAFETY: link is a valid, writable rte_eth_link.
        let rc = unsafe { sluice_ffi::rte_eth_link_get_nowait(self.id.0, &mut link) };
        if rc < 0 {
            return LinkStatus::default();
        }
        let up = link.link_status() != 0;
        // RTE_ETH_SPEED_NUM_UNKNOWN is u32::MAX.
        let speed_mbps = if up && link.link_speed != u32::MAX {
            link.link_speed
        } else {
            0
        };
        LinkStatus { up, speed_mbps }
    }

    /// Stops the port: its queues receive and send nothing until the next
    /// [`EthPort::setup`]. Have the workers stop polling first. A no-op unless
    /// started.
    pub fn stop(&mut self) -> Result<()> {
        if self.state != State::Started {
            return Ok(());
        }
        // SAFETY: plain call on a started port; after it the burst functions are
        // DPDK's placeholders, so queue handles still held stay memory-safe.
        check("rte_eth_dev_stop", unsafe {
            sluice_ffi::rte_eth_dev_stop(self.id.0)
        })?;
        self.state = State::Stopped;
        Ok(())
    }

    /// Stops and closes the port, releasing its queues (and removing the device
    /// if it was hot-plugged with [`EthPort::probe`]).
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Stops and closes the port, then removes its device from its bus
    /// (`rte_dev_remove`) whether it was hot-plugged or given to EAL at start:
    /// `ovs-vsctl del-port` for a DPDK port. The same devargs can be probed again
    /// afterwards. Have every worker stop polling and sending on it first.
    pub fn detach(mut self) -> Result<()> {
        self.hotplugged = true;
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.stop()?;
        // Found before close: the port's device pointer is gone after it.
        let device: *mut rte_device = if self.hotplugged {
            self.raw_info()
                .map(|i| i.device)
                .unwrap_or(std::ptr::null_mut())
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: plain call on a stopped port; after it the port id is released
        // and burst calls on it hit DPDK's dummies.
        check("rte_eth_dev_close", unsafe {
            sluice_ffi::rte_eth_dev_close(self.id.0)
        })?;
        self.state = State::Closed;
        self.rx_queues = 0;
        self.tx_queues = 0;
        // Queues are released: the pool may go.
        self.pool = None;
        if !device.is_null() {
            // SAFETY: device is the rte_device behind the port we just closed;
            // it stays registered on its bus until this removal.
            check("rte_dev_remove", unsafe {
                sluice_ffi::rte_dev_remove(device)
            })?;
        }
        Ok(())
    }

    /// The handle for rx queue `q`, for the one worker that polls it.
    ///
    /// # Panics
    /// If `q` is not a queue set up by the last [`EthPort::setup`] (a
    /// programming error, caught here rather than as a NULL queue in the PMD).
    pub fn rx_queue(&self, q: u16) -> RxQueue {
        assert!(
            q < self.rx_queues,
            "{}: rx queue {q} not set up ({} queues)",
            self.name,
            self.rx_queues
        );
        RxQueue {
            port: self.id,
            queue: q,
        }
    }

    /// The handle for tx queue `q`, for the one worker that sends on it.
    ///
    /// # Panics
    /// If `q` is not a queue set up by the last [`EthPort::setup`].
    pub fn tx_queue(&self, q: u16) -> TxQueue {
        assert!(
            q < self.tx_queues,
            "{}: tx queue {q} not set up ({} queues)",
            self.name,
            self.tx_queues
        );
        TxQueue {
            port: self.id,
            queue: q,
        }
    }
}

impl Drop for EthPort {
    fn drop(&mut self) {
        if matches!(self.state, State::Started | State::Stopped) {
            if let Err(e) = self.shutdown() {
                tracing::warn!(port = %self.name, error = %e, "closing port on drop failed");
            }
        }
        if let Some(claim) = CLAIMED.get(usize::from(self.id.0)) {
            claim.store(false, Ordering::Release);
        }
    }
}

/// One rx queue of a port: the data-path handle a worker polls.
///
/// Thread-safety: DPDK rx queues are not thread-safe. A queue must be polled by
/// one thread only, the worker that owns it; the handle is `Copy` and `Send` so
/// it can be given to that worker, not so it can be shared.
#[derive(Clone, Copy, Debug)]
pub struct RxQueue {
    /// The port.
    pub port: PortId,
    /// Queue index on the port.
    pub queue: u16,
}

impl RxQueue {
    /// Receives into the free tail of `b` (up to its spare room) and returns how
    /// many mbufs arrived. On a stopped or closed port DPDK's placeholder returns 0
    /// but logs an error with a stack dump each call: stop polling first.
    #[inline]
    pub fn rx_burst<const N: usize>(&self, b: &mut Burst<N>) -> usize {
        let room = u16::try_from(b.spare()).unwrap_or(u16::MAX);
        if room == 0 {
            return 0;
        }
        let tail = b.spare_ptr();
        // SAFETY: `tail` has room for `room` pointers. The queue index was
        // checked against the port's setup when the handle was made, and this
        // queue is polled by this thread only (the handle's contract).
        let n = unsafe { sluice_ffi::sluice_rx_burst(self.port.0, self.queue, tail, room) };
        let n = usize::from(n.min(room));
        // SAFETY: the PMD wrote n received mbufs, now ours, into the tail.
        unsafe { b.assume_filled(n) };
        n
    }
}

/// One tx queue of a port: the data-path handle a worker sends on.
///
/// Thread-safety: DPDK tx queues are not thread-safe. A queue must be used by
/// one thread only, the worker that owns it; the handle is `Copy` and `Send` so
/// it can be given to that worker, not so it can be shared.
#[derive(Clone, Copy, Debug)]
pub struct TxQueue {
    /// The port.
    pub port: PortId,
    /// Queue index on the port.
    pub queue: u16,
}

impl TxQueue {
    /// Sends from the front of `b` and returns how many went. Sent mbufs belong
    /// to the PMD now and leave `b`; unsent ones stay in `b`, in order, at the
    /// front (retry or drop them). On a stopped or closed port DPDK's placeholder
    /// sends nothing but logs an error each call: stop sending first.
    #[inline]
    pub fn tx_burst<const N: usize>(&self, b: &mut Burst<N>) -> usize {
        let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
        if len == 0 {
            return 0;
        }
        let held = b.held_ptr();
        // SAFETY: `held` points at `len` owned mbufs. The PMD takes ownership of
        // the first n it returns; the queue index was checked at handle creation
        // and this queue is used by this thread only (the handle's contract).
        let n = unsafe { sluice_ffi::sluice_tx_burst(self.port.0, self.queue, held, len) };
        let n = usize::from(n.min(len));
        b.consume_front(n);
        n
    }
}
