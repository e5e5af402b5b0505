//! Tests against a real EAL (no hugepages, no PCI, vdevs only).
//!
//! EAL starts once per process, so everything that needs it runs from the one
//! `#[test]` below, in steps; each step leaves every mbuf back in the pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::packet::PacketBuf;

/// Scratch files of the test (pcap in/out, vhost socket), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("sluice-dpdk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // EAL leaves an empty runtime dir for our --file-prefix behind.
        let _ = std::fs::remove_dir(Path::new("/var/run/dpdk").join(file_prefix()));
    }
}

/// Our own EAL file prefix, so parallel test processes never share runtime files.
fn file_prefix() -> String {
    format!("sluice-test-{}", std::process::id())
}

/// An Ethernet frame of `len` bytes carrying `seq` (local experimental
/// ethertype 0x88b5), so order and content can be checked after a round trip.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(18)];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(seq as u8);
    }
    f
}

fn seq_of(m: &Mbuf) -> u32 {
    let d = m.data();
    u32::from_be_bytes([d[14], d[15], d[16], d[17]])
}

/// A classic little-endian pcap file (Ethernet link type) holding `frames`.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// The frames of a pcap file written by [`write_pcap`] or libpcap (either
/// timestamp resolution, little-endian host).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).expect("read pcap");
    assert!(b.len() >= 24, "pcap too short");
    let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    assert!(
        magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d,
        "unexpected pcap magic {magic:#x}"
    );
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]) as usize;
        at += 16;
        frames.push(b[at..at + incl].to_vec());
        at += incl;
    }
    frames
}

/// Polls `q` until `want` mbufs are in `b` or a second passes.
fn rx_until<const N: usize>(q: RxQueue, b: &mut Burst<N>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while b.len() < want && Instant::now() < deadline {
        if q.rx_burst(b) == 0 {
            std::thread::yield_now();
        }
    }
}

#[test]
fn dpdk_eal_pool_mbuf_burst_ports() {
    let started = Instant::now();
    let tmp = TempDir::new();
    let pcap_in = tmp.path("in.pcap");
    let pcap_out = tmp.path("out.pcap");
    let vhost_sock = tmp.path("vhost.sock");
    let pcap_frames: Vec<Vec<u8>> = vec![frame(1, 60), frame(2, 342), frame(3, 1514)];
    write_pcap(&pcap_in, &pcap_frames);

    let args: Vec<String> = [
        "dpdk-test",
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "-l",
        "0",
        // tap complains about qdiscs the kernel lacks; not our concern here.
        // (EAL applies saved levels to plugin log types first-given-wins.)
        "--log-level",
        "pmd.net.tap:critical",
        "--log-level",
        "*:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--file-prefix={}", file_prefix()),
        "--vdev=net_null0".to_owned(),
        "--vdev=net_null1".to_owned(),
        "--vdev=net_ring0".to_owned(),
        format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            pcap_in.display(),
            pcap_out.display()
        ),
        format!(
            "--vdev=net_vhost0,iface={},client=0,queues=1",
            vhost_sock.display()
        ),
    ])
    .collect();
    let eal = Eal::init(&args).expect("EAL init");
    let again = Eal::init(&args).expect_err("second EAL init must fail");
    assert_eq!(again.code, errno::EALREADY);
    assert!(tsc_hz() > 0);
    let t0 = tsc();
    assert!(tsc() >= t0);
    assert_eq!(lcore_id(), 0, "the init thread is the main lcore");
    assert!(version().contains("22.11") || version().starts_with("DPDK"));

    let pool = Mempool::create(
        "test_pool",
        4095,
        0,
        sluice_ffi::SLUICE_MBUF_DEFAULT_BUF_SIZE,
        -1,
    )
    .expect("mempool");
    assert!(
        Mempool::create("test_pool", 63, 0, 2176, -1).is_err(),
        "duplicate pool name"
    );

    mempool_accounting(&pool);
    mbuf_packetbuf_ops(&pool);
    mbuf_copy(&pool);
    burst_semantics(&pool);
    thread_registration(&pool);
    null_ports(&pool);
    ring_loopback(&pool);
    pcap_round_trip(&pool, &pcap_frames, &pcap_out);
    vhost_and_hotplug(&pool, &vhost_sock);

    assert_eq!(pool.in_use(), 0, "every mbuf is back in the pool");
    drop(pool);
    assert_eq!(
        LIVE_OBJECTS.load(Ordering::Acquire),
        0,
        "no pool or port outlives the test"
    );
    drop(eal);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

fn mempool_accounting(pool: &Mempool) {
    assert_eq!(pool.capacity(), 4095);
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.available(), 4095);
    let a = pool.alloc().expect("alloc");
    let b = pool.alloc().expect("alloc");
    assert_eq!(pool.in_use(), 2);
    assert_eq!(pool.available(), 4093);
    drop(a);
    assert_eq!(pool.in_use(), 1);
    drop(b);
    assert_eq!(pool.in_use(), 0);

    // Exhaustion gives None, not a crash; everything comes back.
    let small = Mempool::create("test_small", 7, 0, 2176, -1).expect("small pool");
    let held: Vec<Mbuf> = std::iter::from_fn(|| small.alloc()).take(100).collect();
    assert_eq!(held.len(), 7);
    assert!(small.alloc().is_none());
    assert_eq!(small.in_use(), 7);
    drop(held);
    assert_eq!(small.in_use(), 0);

    // A pool handle clone keeps the pool alive.
    let clone = small.clone();
    drop(small);
    assert!(clone.alloc().is_some());
    assert_eq!(clone.in_use(), 0);
}

fn mbuf_packetbuf_ops(pool: &Mempool) {
    let mut m = pool.alloc().expect("alloc");
    assert_eq!(m.nb_segs(), 1);
    assert!(m.is_contiguous());
    assert_eq!(m.len(), 0);
    assert!(m.is_empty());
    assert_eq!(
        m.headroom(),
        usize::from(sluice_ffi::SLUICE_PKTMBUF_HEADROOM)
    );
    assert_eq!(m.tailroom(), 2048);
    assert_eq!(m.rss_hash(), None);

    let f = frame(7, 100);
    assert!(m.extend_from_slice(&f));
    assert_eq!(m.data(), &f[..]);
    assert_eq!(m.pkt_len(), 100);
    assert_eq!(m.tailroom(), 2048 - 100);

    // prepend: within headroom only; lengths move together.
    assert!(!m.prepend(129));
    assert!(m.prepend(8));
    assert_eq!(m.headroom(), 120);
    assert_eq!(m.len(), 108);
    assert_eq!(m.pkt_len(), 108);
    m.data_mut()[..8].copy_from_slice(b"ENCAPHDR");
    assert_eq!(&m.data()[8..], &f[..]);
    assert!(m.adj(8));
    assert_eq!(m.data(), &f[..]);
    assert_eq!(m.headroom(), 128);

    // adj / trim bounds, and nothing changes on failure.
    assert!(!m.adj(101));
    assert!(!m.trim(101));
    assert_eq!(m.len(), 100);
    assert!(m.trim(10));
    assert_eq!(m.data(), &f[..90]);
    assert_eq!(m.pkt_len(), 90);
    assert!(m.adj(90));
    assert!(m.is_empty());
    assert_eq!(m.pkt_len(), 0);
    assert_eq!(m.headroom(), 218);
    assert!(m.prepend(218));
    assert_eq!(m.headroom(), 0);
    assert!(!m.prepend(1));

    // append: tailroom bound.
    let mut n = pool.alloc().expect("alloc");
    assert!(!n.append(2049));
    assert!(n.append(2048));
    assert_eq!(n.tailroom(), 0);
    assert!(!n.extend_from_slice(&[1]));
    assert_eq!(n.len(), 2048);

    // A full-size frame fits, one byte more does not.
    assert!(pool.alloc_frame(&[0u8; 2048]).is_some());
    assert!(pool.alloc_frame(&[0u8; 2049]).is_none());

    // into_raw / from_raw hand ownership over exactly once.
    let raw = n.into_raw();
    assert_eq!(pool.in_use(), 2);
    // SAFETY: raw came from into_raw just above and is not used again.
    let n = unsafe { Mbuf::from_raw(raw) };
    drop((m, n));
    assert_eq!(pool.in_use(), 0);
}

fn mbuf_copy(pool: &Mempool) {
    let mut m = pool.alloc_frame(&frame(9, 200)).expect("frame");
    assert!(m.adj(14));
    let c = m.copy(pool).expect("copy");
    assert_eq!(c.data(), m.data());
    assert_eq!(c.headroom(), m.headroom(), "the copy keeps the headroom");
    assert_eq!(c.pkt_len(), m.pkt_len());
    assert_ne!(c.data().as_ptr(), m.data().as_ptr(), "a deep copy");
    m.data_mut()[0] ^= 0xff;
    assert_ne!(c.data()[0], m.data()[0]);
    assert_eq!(pool.in_use(), 2);

    // Into a pool of smaller buffers: same headroom while it fits, else the default.
    let other = Mempool::create("test_copy_dst", 15, 0, 128 + 512, -1).expect("pool");
    let mut big = pool.alloc().expect("alloc");
    assert!(big.append(472));
    assert!(big.adj(72));
    let bc = big.copy(&other).expect("copy to small pool");
    assert_eq!((bc.data(), bc.headroom()), (big.data(), 200));
    assert!(big.append(100));
    let bc2 = big.copy(&other).expect("copy to small pool");
    assert_eq!((bc2.data(), bc2.headroom()), (big.data(), 128));
    assert!(bc2.is_contiguous());
    drop(bc2);
    drop((m, c, big, bc));
    assert_eq!(pool.in_use(), 0);
    assert_eq!(other.in_use(), 0);
}

fn burst_semantics(pool: &Mempool) {
    let mut b: Burst<4> = Burst::new();
    assert!(b.is_empty());
    assert_eq!(b.capacity(), 4);
    for seq in 0..4 {
        b.push(pool.alloc_frame(&frame(seq, 64)).expect("frame"))
            .expect("room");
    }
    assert!(b.is_full());
    let extra = pool.alloc_frame(&frame(99, 64)).expect("frame");
    let extra = b.push(extra).expect_err("full burst hands the mbuf back");
    assert_eq!(seq_of(&extra), 99);
    drop(extra);
    assert_eq!(pool.in_use(), 4);
    assert_eq!(
        b.as_slice().iter().map(seq_of).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    b.as_mut_slice().swap(0, 3);
    assert_eq!(
        b.as_slice().iter().map(seq_of).collect::<Vec<_>>(),
        [3, 1, 2, 0]
    );
    b.as_mut_slice().swap(0, 3);

    // drain yields in order and empties the burst.
    let seqs: Vec<u32> = b.drain().map(|m| seq_of(&m)).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert!(b.is_empty());
    assert_eq!(pool.in_use(), 0);

    // A partly consumed drain frees the rest.
    assert!(pool.alloc_bulk(&mut b, 4));
    assert_eq!(pool.in_use(), 4);
    {
        let mut d = b.drain();
        assert_eq!(d.len(), 4);
        let first = d.next().expect("first");
        assert_eq!(pool.in_use(), 4);
        drop(d);
        assert_eq!(pool.in_use(), 1);
        drop(first);
    }
    assert_eq!(pool.in_use(), 0);

    // alloc_bulk is all-or-nothing and respects the spare room.
    assert!(pool.alloc_bulk(&mut b, 3));
    assert!(!pool.alloc_bulk(&mut b, 2));
    assert_eq!(b.len(), 3);
    let last = b.pop().expect("pop");
    assert_eq!(b.len(), 2);
    drop(last);

    // clear and drop free in bulk.
    b.clear();
    assert!(b.is_empty());
    assert_eq!(pool.in_use(), 0);
    let mut b2: Burst<32> = Burst::new();
    assert!(pool.alloc_bulk(&mut b2, 32));
    assert_eq!(pool.in_use(), 32);
    drop(b2);
    assert_eq!(pool.in_use(), 0);
}

fn thread_registration(pool: &Mempool) {
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(lcore_id(), u32::MAX, "an unregistered thread has no lcore");
            let id = register_thread().expect("register");
            assert!(id > 0 && id < sluice_ffi::SLUICE_MAX_LCORE, "lcore {id}");
            assert_eq!(lcore_id(), id);
            // Mbufs allocated here are freed on the main thread and vice versa.
            let m = pool.alloc().expect("alloc");
            unregister_thread();
            assert_eq!(lcore_id(), u32::MAX);
            m
        })
        .join()
        .expect("worker thread");
    });
    assert_eq!(pool.in_use(), 0);
}

fn null_ports(pool: &Mempool) {
    assert!(EthPort::by_name("net_nope9").is_err());
    let mut port = EthPort::by_name("net_null0").expect("net_null0 from --vdev");
    assert_eq!(
        EthPort::by_name("net_null0")
            .expect_err("one owner per port")
            .code,
        errno::EBUSY
    );
    let info = port.info().expect("info");
    assert_eq!(info.driver, "net_null");
    assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);

    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 256,
        tx_desc: 256,
        mtu: None,
        promiscuous: true,
    };
    port.setup(&setup, pool).expect("setup net_null0");
    assert!(port.link().up);
    port.reset_stats();
    let rxq = port.rx_queue(0);
    let txq = port.tx_queue(0);

    // net_null makes 64-byte frames out of the rx pool, and frees what it is given.
    let mut b: Burst<32> = Burst::new();
    let got = rxq.rx_burst(&mut b);
    assert_eq!(got, 32);
    assert_eq!(b.len(), 32);
    assert!(b
        .as_slice()
        .iter()
        .all(|m| m.len() == 64 && m.is_contiguous()));
    assert_eq!(pool.in_use(), 32);
    assert_eq!(rxq.rx_burst(&mut b), 0, "a full burst takes nothing");
    let sent = txq.tx_burst(&mut b);
    assert_eq!(sent, 32);
    assert!(b.is_empty());
    assert_eq!(pool.in_use(), 0);
    let st = port.stats();
    assert_eq!((st.ipackets, st.opackets), (32, 32));
    // (net_null counts packets only; its byte counters stay 0.)
    port.reset_stats();
    assert_eq!(port.stats(), PortStats::default());

    // Reconfiguring a started port works; stopped ports burst nothing.
    port.setup(&setup, pool).expect("setup again");
    port.stop().expect("stop");
    port.close().expect("close");

    // More than one rx queue takes the RSS configuration path.
    let mut port1 = EthPort::by_name("net_null1").expect("net_null1");
    let mq = PortSetup {
        rx_queues: 2,
        tx_queues: 2,
        mtu: Some(1500),
        ..setup.clone()
    };
    port1.setup(&mq, pool).expect("setup 2 queues");
    let mut b1: Burst<8> = Burst::new();
    assert_eq!(port1.rx_queue(1).rx_burst(&mut b1), 8);
    assert_eq!(port1.tx_queue(1).tx_burst(&mut b1), 8);
    let too_many = PortSetup {
        rx_queues: info.max_rx_queues.saturating_add(1),
        ..setup
    };
    assert_eq!(
        port1
            .setup(&too_many, pool)
            .expect_err("too many queues")
            .code,
        errno::EINVAL
    );
    drop(port1); // drop stops and closes
    assert_eq!(pool.in_use(), 0);
}

fn ring_loopback(pool: &Mempool) {
    let mut port = EthPort::by_name("net_ring0").expect("net_ring0 from --vdev");
    assert_eq!(port.info().expect("info").driver, "net_ring");
    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 512,
        tx_desc: 512,
        mtu: None,
        promiscuous: true,
    };
    port.setup(&setup, pool).expect("setup net_ring0");
    let (rxq, txq) = (port.rx_queue(0), port.tx_queue(0));

    // A `net_ring0` vdev uses the same rings for tx and rx: what goes out comes back.
    let mut tx: Burst<32> = Burst::new();
    for seq in 0..5 {
        tx.push(
            pool.alloc_frame(&frame(seq, 60 + seq as usize))
                .expect("frame"),
        )
        .expect("room");
    }
    assert_eq!(txq.tx_burst(&mut tx), 5);
    assert!(tx.is_empty());
    let mut rx: Burst<32> = Burst::new();
    assert_eq!(rxq.rx_burst(&mut rx), 5);
    for (seq, m) in rx.drain().enumerate() {
        assert_eq!(m.data(), &frame(seq as u32, 60 + seq)[..]);
    }
    let st = port.stats();
    assert_eq!((st.ipackets, st.opackets), (5, 5));

    // Fill the ring until tx stalls: unsent mbufs stay in the burst, in order.
    let mut next_seq = 0u32;
    let mut sent_total = 0usize;
    let stalled = loop {
        while !tx.is_full() {
            tx.push(pool.alloc_frame(&frame(next_seq, 64)).expect("frame"))
                .expect("room");
            next_seq += 1;
        }
        let before: Vec<u32> = tx.as_slice().iter().map(seq_of).collect();
        let sent = txq.tx_burst(&mut tx);
        sent_total += sent;
        if sent < before.len() {
            let left: Vec<u32> = tx.as_slice().iter().map(seq_of).collect();
            assert_eq!(
                left,
                before[sent..],
                "unsent mbufs keep their order at the front"
            );
            break true;
        }
        if sent_total > 4096 {
            break false;
        }
    };
    assert!(stalled, "the ring never filled");
    assert_eq!(pool.in_use() as usize, sent_total + tx.len());
    // Everything sent comes back in order.
    let mut expect = 0u32;
    loop {
        let n = rxq.rx_burst(&mut rx);
        if n == 0 {
            break;
        }
        for m in rx.drain() {
            assert_eq!(seq_of(&m), expect);
            expect += 1;
        }
    }
    assert_eq!(expect as usize, sent_total);
    tx.clear();
    port.close().expect("close");
    assert_eq!(pool.in_use(), 0);
}

fn pcap_round_trip(pool: &Mempool, frames: &[Vec<u8>], out: &Path) {
    let mut port = EthPort::by_name("net_pcap0").expect("net_pcap0 from --vdev");
    assert_eq!(port.info().expect("info").driver, "net_pcap");
    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 64,
        tx_desc: 64,
        mtu: None,
        promiscuous: true,
    };
    port.setup(&setup, pool).expect("setup net_pcap0");

    let mut b: Burst<32> = Burst::new();
    rx_until(port.rx_queue(0), &mut b, frames.len());
    assert_eq!(b.len(), frames.len(), "every frame of rx_pcap arrives");
    for (m, f) in b.as_slice().iter().zip(frames) {
        assert_eq!(m.data(), &f[..]);
        assert_eq!(m.pkt_len() as usize, f.len());
    }
    assert_eq!(port.tx_queue(0).tx_burst(&mut b), frames.len());
    let st = port.stats();
    assert_eq!(
        (st.ipackets, st.opackets),
        (frames.len() as u64, frames.len() as u64)
    );
    port.close().expect("close");
    assert_eq!(read_pcap(out), frames, "tx_pcap holds what was sent");
}

fn vhost_and_hotplug(pool: &Mempool, vhost_sock: &Path) {
    let mut vhost = EthPort::by_name("net_vhost0").expect("net_vhost0 from --vdev");
    assert_eq!(vhost.info().expect("info").driver, "net_vhost");
    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 256,
        tx_desc: 256,
        mtu: None,
        promiscuous: true,
    };
    vhost.setup(&setup, pool).expect("setup net_vhost0");
    assert!(vhost_sock.exists(), "vhost-user server socket is listening");
    assert!(!vhost.link().up, "no guest attached yet");
    let mut b: Burst<8> = Burst::new();
    assert_eq!(vhost.rx_queue(0).rx_burst(&mut b), 0);

    // Hotplug at run time: a vdev EAL was not told about.
    let mut hp = EthPort::probe("net_null7,size=128").expect("hotplug net_null7");
    assert_eq!(hp.name, "net_null7");
    hp.setup(&setup, pool).expect("setup net_null7");
    assert_eq!(hp.rx_queue(0).rx_burst(&mut b), 8);
    assert!(b.as_slice().iter().all(|m| m.len() == 128));
    b.clear();
    hp.close().expect("close removes the hotplugged device");
    assert!(EthPort::by_name("net_null7").is_err(), "removed");
    // And again under the same name: removal really freed it.
    EthPort::probe("net_null7")
        .expect("re-probe net_null7")
        .close()
        .expect("close");

    // virtio-user as the guest side of our vhost-user socket: hotplug it,
    // wait for both links, and send across.
    let virtio_args = format!(
        "net_virtio_user0,path={},queues=1,mac=02:00:00:00:00:10",
        vhost_sock.display()
    );
    let mut virtio = EthPort::probe(&virtio_args).expect("hotplug virtio_user on the vhost socket");
    assert_eq!(virtio.info().expect("info").driver, "net_virtio_user");
    virtio.setup(&setup, pool).expect("setup virtio_user");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(vhost.link().up && virtio.link().up) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        vhost.link().up && virtio.link().up,
        "vhost-user negotiation completed"
    );
    for seq in 0..4 {
        b.push(
            pool.alloc_frame(&frame(seq, 64 + seq as usize))
                .expect("frame"),
        )
        .expect("room");
    }
    assert_eq!(virtio.tx_queue(0).tx_burst(&mut b), 4);
    let mut r: Burst<8> = Burst::new();
    rx_until(vhost.rx_queue(0), &mut r, 4);
    assert_eq!(r.len(), 4);
    for (seq, m) in r.drain().enumerate() {
        assert_eq!(m.data(), &frame(seq as u32, 64 + seq)[..]);
    }
    virtio.close().expect("close virtio_user");

    // Devices that need privileges or kernel interfaces: probe when possible.
    for devargs in ["net_af_packet0,iface=lo", "net_tap0,iface=sluicetst0"] {
        match EthPort::probe(devargs) {
            Ok(p) => {
                assert!(p.info().is_ok());
                p.close().expect("close");
            }
            Err(e) => eprintln!("skipping {devargs}: {e}"),
        }
    }
    vhost.close().expect("close vhost");
    assert_eq!(pool.in_use(), 0);
}
