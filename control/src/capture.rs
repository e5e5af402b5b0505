//! `sluice capture`: the control side of the live capture. One capture runs at a time;
//! a writer thread (never a worker core's business) drains the frames the workers copied
//! ([`sluice_dataplane::capture`]) into a pcapng file in the daemon's temporary
//! directory: a section header, one interface description block for the port (its name,
//! its device, nanosecond timestamps) and one enhanced packet block per frame (with the
//! inbound/outbound flag). The CLI downloads the file once the capture stopped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use serde::{Deserialize, Serialize};
use sluice_dataplane::capture::{CaptureDir, CAPTURE_SLOTS, CAPTURE_SNAPLEN_MAX};
use sluice_dataplane::dpdk;
use sluice_dataplane::worker::Shared;

/// Which frames of the port a capture takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Rx,
    Tx,
    #[default]
    Both,
}

/// `POST /v1/captures`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    pub port: String,
    #[serde(default)]
    pub direction: Direction,
    /// Stop after this many frames (none: until stopped).
    #[serde(default)]
    pub count: Option<u64>,
    /// Bytes kept of each frame (default and maximum 16384).
    #[serde(default)]
    pub snaplen: Option<u32>,
}

/// A capture's state, as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaptureStatus {
    pub id: u32,
    pub port: String,
    pub direction: Direction,
    pub count: Option<u64>,
    pub snaplen: u32,
    pub running: bool,
    /// Frames written to the file.
    pub packets: u64,
    /// Frames the workers could not copy (all buffers in use): capture drops, never
    /// traffic drops.
    pub capture_drops: u64,
    pub error: Option<String>,
}

/// What the writer thread and the API share.
#[derive(Debug, Default)]
struct Progress {
    stop: AtomicBool,
    done: AtomicBool,
    packets: AtomicU64,
    drops: AtomicU64,
    error: Mutex<Option<String>>,
}

#[derive(Debug)]
struct Job {
    req: CaptureRequest,
    snaplen: u32,
    path: PathBuf,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
}

/// The daemon's captures: at most one running, finished ones kept until deleted.
#[derive(Debug, Default)]
pub struct Captures {
    next_id: u32,
    jobs: BTreeMap<u32, Job>,
}

/// Frame buffers a capture uses.
const SLOTS: usize = CAPTURE_SLOTS;

impl Captures {
    /// Whether a capture is running.
    pub fn running(&self) -> Option<u32> {
        self.jobs.iter().find(|(_, j)| !j.progress.done.load(Ordering::Acquire)).map(|(id, _)| *id)
    }

    /// Starts a capture of port `port` (index) named `req.port`, described as `device`.
    pub fn start(&mut self, shared: &Arc<Shared>, port: u16, device: &str, req: CaptureRequest) -> std::io::Result<CaptureStatus> {
        self.next_id += 1;
        let id = self.next_id;
        let snaplen = req.snaplen.unwrap_or(CAPTURE_SNAPLEN_MAX as u32).clamp(64, CAPTURE_SNAPLEN_MAX as u32);
        let path = std::env::temp_dir().join(format!("sluice-capture-{}-{id}.pcapng", std::process::id()));
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?
        };
        let mut w = PcapNgWriter::new(BufWriter::new(file)).map_err(std::io::Error::other)?;
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(req.port.clone())),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(format!("sluice port {} ({device})", req.port))),
                // pcap-file writes EPB timestamps as nanoseconds.
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        w.write_pcapng_block(idb).map_err(std::io::Error::other)?;
        let progress = Arc::new(Progress::default());
        let (rx, tx) = match req.direction {
            Direction::Rx => (true, false),
            Direction::Tx => (false, true),
            Direction::Both => (true, true),
        };
        // Wall clock of the TSC the workers stamp frames with.
        let clock = Clock { tsc0: dpdk::tsc(), hz: dpdk::tsc_hz().max(1), wall0: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() };
        let generation = shared.capture.start(port, rx, tx, SLOTS, snaplen as usize);
        let (sh, pr, limit) = (Arc::clone(shared), Arc::clone(&progress), req.count);
        let thread = std::thread::Builder::new()
            .name(format!("sluice-cap{id}"))
            .spawn(move || write_loop(&sh, &pr, w, generation, limit, clock))
            .inspect_err(|_| {
                shared.capture.stop();
                let _ = std::fs::remove_file(&path);
            })?;
        tracing::info!(id, port = %req.port, direction = ?req.direction, count = ?req.count, "capture started");
        self.jobs.insert(id, Job { req, snaplen, path, progress, thread: Some(thread) });
        Ok(self.status(id).unwrap_or_else(|| unreachable_status(id)))
    }

    /// A capture's state.
    pub fn status(&self, id: u32) -> Option<CaptureStatus> {
        let j = self.jobs.get(&id)?;
        let p = &j.progress;
        Some(CaptureStatus {
            id,
            port: j.req.port.clone(),
            direction: j.req.direction,
            count: j.req.count,
            snaplen: j.snaplen,
            running: !p.done.load(Ordering::Acquire),
            packets: p.packets.load(Ordering::Relaxed),
            capture_drops: p.drops.load(Ordering::Relaxed),
            error: p.error.lock().ok().and_then(|e| e.clone()),
        })
    }

    /// Every capture's state.
    pub fn list(&self) -> Vec<CaptureStatus> {
        self.jobs.keys().filter_map(|id| self.status(*id)).collect()
    }

    /// Asks a capture to stop (it finishes its file within a few ms; `running` then
    /// turns false). `None`: no such capture.
    pub fn request_stop(&self, id: u32) -> Option<CaptureStatus> {
        self.jobs.get(&id)?.progress.stop.store(true, Ordering::Release);
        self.status(id)
    }

    /// Stops a capture and waits for its file to be complete. `None`: no such capture.
    pub fn stop(&mut self, id: u32) -> Option<CaptureStatus> {
        let j = self.jobs.get_mut(&id)?;
        j.progress.stop.store(true, Ordering::Release);
        if let Some(t) = j.thread.take() {
            let _ = t.join();
        }
        self.status(id)
    }

    /// The finished capture's pcapng file. `Err(true)`: still running; `Err(false)`: none.
    pub fn file(&self, id: u32) -> Result<PathBuf, bool> {
        let j = self.jobs.get(&id).ok_or(false)?;
        if !j.progress.done.load(Ordering::Acquire) {
            return Err(true);
        }
        Ok(j.path.clone())
    }

    /// Stops and forgets a capture, removing its file.
    pub fn remove(&mut self, id: u32) -> bool {
        if self.stop(id).is_none() {
            return false;
        }
        if let Some(j) = self.jobs.remove(&id) {
            let _ = std::fs::remove_file(&j.path);
        }
        true
    }

    /// Stops every capture and removes the files (daemon shutdown).
    pub fn shutdown(&mut self) {
        let ids: Vec<u32> = self.jobs.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }
}

fn unreachable_status(id: u32) -> CaptureStatus {
    CaptureStatus {
        id,
        port: String::new(),
        direction: Direction::Both,
        count: None,
        snaplen: 0,
        running: false,
        packets: 0,
        capture_drops: 0,
        error: None,
    }
}

#[derive(Clone, Copy)]
struct Clock {
    tsc0: u64,
    hz: u64,
    wall0: Duration,
}

impl Clock {
    fn at(&self, tsc: u64) -> Duration {
        let delta = tsc.wrapping_sub(self.tsc0) as i64 as i128;
        let ns = self.wall0.as_nanos() as i128 + delta * 1_000_000_000 / self.hz as i128;
        Duration::from_nanos(ns.max(0) as u64)
    }
}

/// The writer thread: drains copied frames into the file until the count is reached or
/// a stop is asked, then drains what workers still had in flight and closes the file.
fn write_loop(sh: &Shared, p: &Progress, w: PcapNgWriter<BufWriter<File>>, generation: u16, limit: Option<u64>, clock: Clock) {
    let cap = &sh.capture;
    let mut w = w;
    let mut written = 0u64;
    let mut failed = None;
    let mut draining_since: Option<std::time::Instant> = None;
    loop {
        let mut got = false;
        while let Some(f) = cap.take() {
            got = true;
            let wanted = f.generation == generation && limit.is_none_or(|n| written < n) && failed.is_none();
            if wanted {
                let flags = match f.dir {
                    CaptureDir::Rx => 1,
                    CaptureDir::Tx => 2,
                };
                let epb = EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: clock.at(f.tsc),
                    original_len: f.orig_len,
                    data: Cow::Borrowed(f.bytes()),
                    options: vec![EnhancedPacketOption::Flags(flags)],
                };
                match w.write_pcapng_block(epb) {
                    Ok(_) => {
                        written += 1;
                        p.packets.store(written, Ordering::Relaxed);
                    }
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            cap.give_back(f);
            if limit.is_some_and(|n| written >= n) && cap.active() {
                cap.stop();
            }
        }
        p.drops.store(cap.drops(), Ordering::Relaxed);
        let finished = failed.is_some() || limit.is_some_and(|n| written >= n) || p.stop.load(Ordering::Acquire);
        if finished {
            cap.stop();
            // A worker that loaded the switch just before the stop may still be copying
            // one burst: give it a moment, then drain once more.
            match draining_since {
                None => draining_since = Some(std::time::Instant::now()),
                Some(t) if t.elapsed() >= Duration::from_millis(20) && !got => break,
                Some(_) => {}
            }
        }
        if !got {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    while let Some(f) = cap.take() {
        drop(f);
    }
    let r = w.into_inner().into_inner().map_err(|e| e.into_error().to_string()).and_then(|f| f.sync_all().map_err(|e| e.to_string()));
    if let Err(e) = r {
        failed.get_or_insert(e);
    }
    if let Some(e) = &failed {
        tracing::warn!(error = %e, "capture file incomplete");
    }
    if let Ok(mut slot) = p.error.lock() {
        *slot = failed;
    }
    tracing::info!(packets = written, capture_drops = cap.drops(), "capture stopped");
    p.done.store(true, Ordering::Release);
}
