//! The control API: HTTP/1.1 + JSON on a unix socket (mode 0600).
//!
//! Resources are the kinds of the configuration that can change while running —
//! `ports`, `bridges`, `networks`, `endpoints`, `routes`, policies — with
//! list/get/create/replace/delete, plus
//! `apply` of a whole desired state (YAML or JSON). Every change goes through one path,
//! [`Control::apply`]: validate and compile everything first, then publish the new tables
//! (workers pick them up on their next loop) and save the state; or change nothing and
//! answer with an error naming the field. Reads (`/v1/stats`, `/v1/config`, `/metrics`)
//! only sum the workers' counters. The operator's views (`/v1/show/...`, see
//! [`crate::show`]) add rates, a clear baseline, the effective routes and the workers'
//! connections. The control thread never blocks a worker.

pub mod client;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_dataplane::dpdk::EthPort;
use sluice_dataplane::tables::TablesHandle;
use sluice_dataplane::wire::MacAddr;
use sluice_dataplane::worker::Shared;
use tokio::sync::Mutex;

use crate::capture::{CaptureRequest, CaptureStatus, Captures};
use crate::config::{Config, ConfigError};
use crate::trace::TraceStore;
use crate::plan::Plan;
use crate::state::{self, Diff, StateFile};
use crate::stats::{self, Report};

/// Everything the control thread owns while the switch runs.
pub struct Control {
    pub config: Config,
    pub plan: Plan,
    /// Each port's device MAC, by slot.
    pub macs: Vec<MacAddr>,
    pub tables: Arc<TablesHandle>,
    pub shared: Arc<Shared>,
    /// The open ports, in plan (configuration) order.
    pub ports: Vec<EthPort>,
    /// Removed ports that not every worker acknowledged in time: never closed under a
    /// worker, they are closed at shutdown, after the workers stopped.
    pub retired: Vec<EthPort>,
    pub state: Option<StateFile>,
    pub started: Instant,
    pub startup_ms: f64,
    /// Changes the log filter (`PUT /v1/log`).
    pub set_log: Option<crate::run::SetLog>,
    /// The packet trace's records (`/v1/trace`).
    pub trace: TraceStore,
    /// Live captures (`/v1/captures`).
    pub captures: Captures,
    /// Clear baseline and rate samples of the show views.
    pub views: crate::show::Views,
    /// The last flow-dump id; held while a dump runs (one dump at a time).
    pub dumps: Arc<Mutex<u64>>,
}

/// An API error: HTTP status plus the field and reason, as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: String,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, field: field.into(), message: message.into() }
    }
    fn invalid(e: ConfigError) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.path, e.msg)
    }
    fn not_found(what: String) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "", format!("{what} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"field": self.field, "message": self.message}}))).into_response()
    }
}

/// What an apply answers.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub applied: bool,
    pub epoch: u64,
    pub diff: Diff,
}

impl Control {
    /// Validates, compiles and (unless `dry_run`) publishes and saves `new`. All or nothing.
    ///
    /// Ports: new ones are hot-plugged and started before anything is published (a
    /// failure detaches them again and changes nothing); the tables and I/O map are
    /// published with them and without removed ones; removed ones are stopped, closed and
    /// detached only after every worker acknowledged that snapshot.
    pub fn apply(&mut self, new: Config, dry_run: bool) -> Result<Applied, ApiError> {
        let started = std::time::Instant::now();
        new.validate().map_err(ApiError::invalid)?;
        state::check_runtime_change(&self.config, &new)
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.path, e.msg))?;
        let (mut plan, mut tables) = Plan::next(&new, &self.plan, &self.macs).map_err(ApiError::invalid)?;
        let diff = state::diff(&self.config, &new);
        if new == self.config {
            return Ok(Applied { applied: false, epoch: self.tables.epoch(), diff });
        }
        let known = |plan: &Plan, name: &str| plan.ports.iter().any(|p| p.name == name);
        let added: Vec<usize> = (0..plan.ports.len()).filter(|&i| !known(&self.plan, &plan.ports[i].name)).collect();
        let removed: Vec<usize> = (0..self.plan.ports.len()).filter(|&i| !known(&plan, &self.plan.ports[i].name)).collect();
        let mut macs = self.macs.clone();
        let mut opened: Vec<(usize, EthPort)> = Vec::with_capacity(added.len());
        if !added.is_empty() {
            let conflict = |path: String, msg: String| ApiError::new(StatusCode::CONFLICT, path, msg);
            let mut need = 0;
            for &i in &added {
                let pp = &plan.ports[i];
                if removed.iter().any(|&o| self.plan.ports[o].device == pp.device) {
                    let key = if new.ports[i].pci.is_some() { "pci" } else { "devargs" };
                    return Err(conflict(
                        format!("ports[{i}].{key}"),
                        format!("device {} belongs to a port this apply removes: remove it first, then add it", pp.device),
                    ));
                }
                need += crate::ports::ring_mbufs(pp);
            }
            let free = self.shared.pool.available() as u64;
            if need > free {
                return Err(conflict(
                    "mempool.mbufs".into(),
                    format!("the new ports' rings can hold {need} mbufs but only {free} are free; start sluice with a larger mempool.mbufs (or smaller rx_desc/tx_desc)"),
                ));
            }
        }
        // A dry run answers after every check that needs no device.
        if dry_run {
            return Ok(Applied { applied: false, epoch: self.tables.epoch(), diff });
        }
        if !added.is_empty() {
            for &i in &added {
                match crate::ports::open(i, &new.ports[i], &plan.ports[i], &self.shared.pool, true) {
                    Ok(p) => opened.push((i, p)),
                    Err(e) => {
                        opened.into_iter().for_each(|(_, p)| crate::ports::detach(p));
                        return Err(ApiError::invalid(e));
                    }
                }
            }
            for (i, p) in &opened {
                let pp = &mut plan.ports[*i];
                if let (Some(m), Ok(info)) = (macs.get_mut(pp.idx as usize), p.info()) {
                    *m = MacAddr(info.mac);
                }
                // The slot is unused now (a removal completed before this apply began, and
                // no worker touches a slot outside its I/O map): the port counts from 0.
                self.shared.reset_port_counters(pp.idx);
            }
            match plan.tables(&macs) {
                Ok(t) => tables = t,
                Err(e) => {
                    opened.into_iter().for_each(|(_, p)| crate::ports::detach(p));
                    return Err(ApiError::invalid(e));
                }
            }
        }
        if let Some(sf) = &self.state {
            // Saved before it takes effect: a crash right after never loses an applied state.
            if let Err(e) = sf.save(&new) {
                opened.into_iter().for_each(|(_, p)| crate::ports::detach(p));
                return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "", format!("saving state: {e}")));
            }
        }
        // Nothing fails from here. The ports in the new plan order; what is left leaves.
        let mut old: Vec<Option<EthPort>> = std::mem::take(&mut self.ports).into_iter().map(Some).collect();
        let mut ports = Vec::with_capacity(plan.ports.len());
        for (i, pp) in plan.ports.iter().enumerate() {
            let from_old = self.plan.ports.iter().position(|o| o.name == pp.name).and_then(|o| old.get_mut(o)?.take());
            let from_new = || opened.iter().position(|(j, _)| *j == i).map(|k| opened.swap_remove(k).1);
            if let Some(p) = from_old.or_else(from_new) {
                ports.push(p);
            }
        }
        self.ports = ports;
        let leaving_slots = old
            .iter()
            .zip(&self.plan.ports)
            .filter(|(p, _)| p.is_some())
            .fold(0u32, |m, (_, pp)| m | 1u32.checked_shl(u32::from(pp.idx)).unwrap_or(0));
        let leaving: Vec<EthPort> = old.into_iter().flatten().collect();
        let devs = crate::ports::devs_by_slot(&plan, &self.ports);
        tables.io = plan.io_map(&crate::ports::dev_lookup(&devs));
        let epoch = self.tables.publish(tables);
        if !leaving.is_empty() {
            // Quiescent-state reclamation: once every worker runs on `epoch`, none polls,
            // sends on or buffers for a removed port.
            if self.shared.wait_quiescent(epoch, REMOVAL_WAIT) {
                leaving.into_iter().for_each(crate::ports::detach);
            } else {
                tracing::error!(epoch, ports = leaving.len(), "a worker did not acknowledge the removal: ports stay open until shutdown");
                // Their slots are never given to another port while this process runs.
                plan.quarantined |= leaving_slots;
                self.retired.extend(leaving);
            }
        }
        let count = |m: &BTreeMap<&'static str, Vec<String>>| m.values().map(Vec::len).sum::<usize>();
        let apply_ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(epoch, apply_ms, added = count(&diff.added), changed = count(&diff.changed), removed = count(&diff.removed), "applied");
        self.config = new;
        self.plan = plan;
        self.macs = macs;
        Ok(Applied { applied: true, epoch, diff })
    }

    /// The counters now. `mempool.in_use_after_stop` only means something after a stop
    /// (mbufs sit in rings and bursts while running): it reads 0 here.
    pub fn report(&self) -> Report {
        let mut r = stats::report(&self.plan, &self.shared, &self.ports);
        r.startup_ms = self.startup_ms;
        r.duration_s = self.started.elapsed().as_secs_f64();
        r.mempool.in_use_after_stop = 0;
        r
    }
}

/// How long a removal waits for every worker to acknowledge the snapshot without the
/// port (a worker does within one loop iteration: microseconds).
const REMOVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

type Ctl = Arc<Mutex<Control>>;

/// The API's routes.
pub fn router(ctl: Ctl) -> Router {
    Router::new()
        .route("/v1/config", get(get_config))
        .route("/v1/apply", post(apply))
        .route("/v1/stats", get(get_stats))
        .route("/v1/log", axum::routing::put(put_log))
        .route("/v1/trace", get(get_trace).post(post_trace).delete(delete_trace))
        .route("/v1/captures", get(list_captures).post(post_capture))
        .route("/v1/captures/{id}", get(get_capture).delete(delete_capture))
        .route("/v1/captures/{id}/stop", post(stop_capture))
        .route("/v1/captures/{id}/pcapng", get(capture_file))
        .route("/v1/stats/clear", post(clear_stats))
        .route("/v1/show/routes", get(show_routes))
        .route("/v1/show/flows", get(show_flows))
        .route("/v1/show/{what}", get(show_stats))
        .route("/v1/{kind}", get(list).post(create))
        .route("/v1/{kind}/{name}", get(get_one).put(replace).delete(remove))
        .route("/metrics", get(metrics))
        .with_state(ctl)
}

#[derive(Deserialize)]
struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

/// Parses a body as JSON (by content type) or YAML.
fn parse_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    let text = std::str::from_utf8(body).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "", "body is not UTF-8"))?;
    let bad = |path: String, msg: String| ApiError::new(StatusCode::BAD_REQUEST, path, msg);
    // Plain deserialization first (path tracking costs on big bodies: 10k routes); only a
    // body that fails is parsed again with the path, for an error that names the field.
    if json {
        if let Ok(v) = serde_json::from_str(text) {
            return Ok(v);
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| bad(e.path().to_string(), e.into_inner().to_string()))
    } else {
        if let Ok(v) = serde_yaml_ng::from_str(text) {
            return Ok(v);
        }
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| bad(e.path().to_string(), e.into_inner().to_string()))
    }
}

async fn get_config(State(ctl): State<Ctl>) -> Json<Config> {
    Json(ctl.lock().await.config.clone())
}

async fn apply(State(ctl): State<Ctl>, Query(q): Query<DryRun>, headers: HeaderMap, body: Bytes) -> Result<Json<Applied>, ApiError> {
    let new: Config = parse_body(&headers, &body)?;
    ctl.lock().await.apply(new, q.dry_run).map(Json)
}

async fn get_stats(State(ctl): State<Ctl>) -> Json<Report> {
    Json(ctl.lock().await.report())
}

async fn metrics(State(ctl): State<Ctl>) -> impl IntoResponse {
    let r = ctl.lock().await.report();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&r))
}

#[derive(Deserialize)]
struct ShowQuery {
    /// Seconds the rates are taken over (default 1).
    interval: Option<f64>,
}

/// `GET /v1/show/{stats,ports,workers,drops}`: counters since the last clear, with rates.
async fn show_stats(State(ctl): State<Ctl>, UrlPath(what): UrlPath<String>, Query(q): Query<ShowQuery>) -> Result<Json<Value>, ApiError> {
    let interval = match q.interval {
        None => std::time::Duration::from_secs(1),
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => std::time::Duration::from_secs_f64(s),
        Some(_) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "interval", "must be seconds in (0, 3600]")),
    };
    let c = ctl.lock().await;
    let v = c.views.view(Instant::now(), &c.report(), interval);
    let meta = json!({"cleared_s_ago": v.cleared_s_ago, "interval_s": v.interval_s});
    let mut out = match what.as_str() {
        "stats" => return Ok(Json(json!(v))),
        "ports" => json!({"ports": v.report.ports}),
        "workers" => json!({"workers": v.report.workers, "rx_queues": crate::show::rxq_rows(&v.report.ports)}),
        "drops" => json!({
            "totals": v.report.totals,
            "workers": v.report.workers.iter().map(|w| json!({"id": w.id, "drops": w.drops})).collect::<Vec<_>>(),
        }),
        _ => return Err(ApiError::not_found(format!("show {what:?} (stats, ports, workers, drops, routes, flows)"))),
    };
    if let (Some(o), Some(m)) = (out.as_object_mut(), meta.as_object()) {
        o.extend(m.clone());
    }
    Ok(Json(out))
}

/// `POST /v1/stats/clear`: the show views count from now. The raw counters (`/v1/stats`,
/// `/metrics`) stay monotonic.
async fn clear_stats(State(ctl): State<Ctl>) -> Json<Value> {
    let mut c = ctl.lock().await;
    let r = c.report();
    c.views.clear(Instant::now(), r);
    Json(json!({"cleared": true}))
}

#[derive(Deserialize)]
struct RoutesQuery {
    network: Option<String>,
}

/// `GET /v1/show/routes[?network=N]`: the effective FIB of each network.
async fn show_routes(State(ctl): State<Ctl>, Query(q): Query<RoutesQuery>) -> Result<Json<Value>, ApiError> {
    let tables = ctl.lock().await.tables.load_full();
    crate::show::routes(&tables, q.network.as_deref())
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "network", format!("no network {:?}", q.network.unwrap_or_default())))
}

#[derive(Deserialize)]
struct FlowsQuery {
    network: Option<String>,
    limit: Option<usize>,
}

/// Most connections one `show flows` returns.
const FLOWS_MAX_LIMIT: usize = 1_000_000;
/// How long `show flows` waits for the workers' copies.
const FLOWS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /v1/show/flows[?network=N][&limit=L]`: every worker's connections, copied out by
/// the workers themselves (`worker::dump`); partial (`complete: false`) if a worker did
/// not finish within the timeout.
async fn show_flows(State(ctl): State<Ctl>, Query(q): Query<FlowsQuery>) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > FLOWS_MAX_LIMIT {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "limit", format!("must be 1..={FLOWS_MAX_LIMIT}")));
    }
    let (shared, tables, dumps) = {
        let c = ctl.lock().await;
        (Arc::clone(&c.shared), c.tables.load_full(), Arc::clone(&c.dumps))
    };
    let vrf = match &q.network {
        None => None,
        Some(n) => Some(
            tables
                .l3
                .vrfs
                .iter()
                .position(|v| v.name == *n)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "network", format!("no network {n:?}")))?,
        ),
    };
    // One dump at a time: the mailboxes are shared by every caller.
    let mut last = dumps.lock().await;
    *last += 1;
    let id = *last;
    for d in shared.dumps.iter() {
        d.start(id);
    }
    let deadline = Instant::now() + FLOWS_TIMEOUT;
    let mut done = vec![false; shared.dumps.len()];
    let mut flows = Vec::new();
    let mut truncated = false;
    'gather: loop {
        for (w, d) in shared.dumps.iter().enumerate() {
            if done[w] {
                continue;
            }
            // Finished first, then drain: everything of dump `id` is queued by then.
            let finished = d.finished(id);
            while let Some(s) = d.pop() {
                if s.dump_id != id || vrf.is_some_and(|v| usize::from(s.key.vrf) != v) {
                    continue;
                }
                if flows.len() == limit {
                    truncated = true;
                    break 'gather;
                }
                flows.push(crate::show::flow_json(&tables, w, &s));
            }
            done[w] = finished;
        }
        if done.iter().all(|d| *d) || Instant::now() >= deadline || !shared.running.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    for d in shared.dumps.iter() {
        d.cancel();
    }
    drop(last);
    let workers: Vec<Value> = done.iter().enumerate().map(|(w, d)| json!({"worker": w, "complete": d})).collect();
    Ok(Json(json!({
        "complete": !truncated && done.iter().all(|d| *d),
        "truncated": truncated,
        "epoch": tables.epoch,
        "count": flows.len(),
        "workers": workers,
        "flows": flows,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogLevel {
    level: String,
}

async fn put_log(State(ctl): State<Ctl>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let l: LogLevel = parse_body(&headers, &body)?;
    let c = ctl.lock().await;
    let Some(set) = &c.set_log else { return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "", "log level is fixed")) };
    set(&l.level).map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "level", m))?;
    Ok(StatusCode::NO_CONTENT)
}

impl Control {
    /// The slot (`PortIdx`, what the workers see) and device of the port named `name`; an
    /// error naming `field` otherwise. Not its position in the config: with ports added
    /// and removed at runtime the two differ.
    fn port_slot(&self, name: &str, field: &str) -> Result<(u16, String), ApiError> {
        self.plan.ports.iter().find(|p| p.name == name).map(|p| (p.idx, p.device.clone())).ok_or_else(|| {
            let known: Vec<&str> = self.plan.ports.iter().map(|p| p.name.as_str()).collect();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, field, format!("no port {name:?} (ports: {})", known.join(", ")))
        })
    }
}

/// `POST /v1/trace`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceRequest {
    count: u32,
    #[serde(default)]
    port: Option<String>,
}

/// Arms the packet trace for the next `count` packets (of `port`), forgetting earlier records.
async fn post_trace(State(ctl): State<Ctl>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: TraceRequest = parse_body(&headers, &body)?;
    let max = sluice_dataplane::trace::TRACE_MAX;
    if req.count == 0 || req.count > max {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "count", format!("must be 1..={max}, got {}", req.count)));
    }
    let mut guard = ctl.lock().await;
    let c = &mut *guard;
    let port = match req.port {
        Some(name) => Some((c.port_slot(&name, "port")?.0, name)),
        None => None,
    };
    c.trace.arm(&c.shared.trace, req.count, port);
    Ok(Json(json!({"armed": req.count, "port": c.trace.port})))
}

/// The records traced since the last arming.
async fn get_trace(State(ctl): State<Ctl>) -> Json<Value> {
    let mut guard = ctl.lock().await;
    let c = &mut *guard;
    c.trace.collect(&c.shared.trace);
    let tables = c.tables.load();
    Json(c.trace.to_json(&c.shared.trace, &tables, &c.config))
}

async fn delete_trace(State(ctl): State<Ctl>) -> StatusCode {
    let mut guard = ctl.lock().await;
    let c = &mut *guard;
    c.trace.clear(&c.shared.trace);
    StatusCode::NO_CONTENT
}

/// Starts a live capture (one at a time).
async fn post_capture(State(ctl): State<Ctl>, headers: HeaderMap, body: Bytes) -> Result<(StatusCode, Json<CaptureStatus>), ApiError> {
    let req: CaptureRequest = parse_body(&headers, &body)?;
    if req.count == Some(0) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "count", "must be at least 1 (leave it out for no limit)"));
    }
    let max = sluice_dataplane::capture::CAPTURE_SNAPLEN_MAX as u32;
    if let Some(s) = req.snaplen {
        if !(64..=max).contains(&s) {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "snaplen", format!("must be 64..={max}, got {s}")));
        }
    }
    let mut guard = ctl.lock().await;
    let c = &mut *guard;
    let (port, device) = c.port_slot(&req.port, "port")?;
    if let Some(id) = c.captures.running() {
        return Err(ApiError::new(StatusCode::CONFLICT, "", format!("capture {id} is running (one at a time; stop it first)")));
    }
    c.captures
        .start(&c.shared, port, &device, req)
        .map(|s| (StatusCode::CREATED, Json(s)))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "", format!("starting the capture: {e}")))
}

async fn list_captures(State(ctl): State<Ctl>) -> Json<Vec<CaptureStatus>> {
    Json(ctl.lock().await.captures.list())
}

async fn get_capture(State(ctl): State<Ctl>, UrlPath(id): UrlPath<u32>) -> Result<Json<CaptureStatus>, ApiError> {
    ctl.lock().await.captures.status(id).map(Json).ok_or_else(|| ApiError::not_found(format!("capture {id}")))
}

/// Asks a capture to stop; it is finished once `running` turns false.
async fn stop_capture(State(ctl): State<Ctl>, UrlPath(id): UrlPath<u32>) -> Result<Json<CaptureStatus>, ApiError> {
    ctl.lock().await.captures.request_stop(id).map(Json).ok_or_else(|| ApiError::not_found(format!("capture {id}")))
}

/// The pcapng file of a finished capture.
async fn capture_file(State(ctl): State<Ctl>, UrlPath(id): UrlPath<u32>) -> Result<Response, ApiError> {
    let path = ctl.lock().await.captures.file(id).map_err(|running| {
        if running {
            ApiError::new(StatusCode::CONFLICT, "", format!("capture {id} is still running (stop it first)"))
        } else {
            ApiError::not_found(format!("capture {id}"))
        }
    })?;
    let shown = path.display().to_string();
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "", format!("reading {shown}: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Stops a capture (if running) and removes it and its file.
async fn delete_capture(State(ctl): State<Ctl>, UrlPath(id): UrlPath<u32>) -> Result<StatusCode, ApiError> {
    if ctl.lock().await.captures.remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("capture {id}")))
    }
}

/// The resources that change while running, as JSON lists keyed by name.
fn kind_list(cfg: &Config, kind: &str) -> Result<Vec<(String, Value)>, ApiError> {
    let items: Vec<(String, Value)> = match kind {
        "bridges" => cfg.bridges.iter().map(|b| (b.name.clone(), json!(b))).collect(),
        "networks" => cfg.networks.iter().map(|n| (n.name.clone(), json!(n))).collect(),
        "endpoints" => cfg.endpoints.iter().map(|e| (e.name.clone(), json!(e))).collect(),
        "routes" => cfg.routes.iter().map(|r| (route_key(&r.network, &r.prefix), json!(r))).collect(),
        "ports" => cfg.ports.iter().map(|p| (p.name.clone(), json!(p))).collect(),
        "namespaces" => cfg.namespaces.iter().map(|n| (n.name.clone(), json!(n))).collect(),
        "network_policies" => cfg.network_policies.iter().map(|p| (p.key(), json!(p))).collect(),
        "global_rules" => cfg.global_rules.iter().map(|g| (g.name.clone(), json!(g))).collect(),
        _ => {
            return Err(ApiError::not_found(format!(
                "kind {kind:?} (bridges, networks, endpoints, routes, ports, namespaces, network_policies, global_rules)"
            )))
        }
    };
    Ok(items)
}

/// A route's name: `network:prefix` with the prefix in canonical form (e.g.
/// `blue:0.0.0.0/0`; URL-encode the slash), so every spelling of a prefix names one route.
pub fn route_key(network: &str, prefix: &str) -> String {
    format!("{network}:{}", crate::config::canonical_prefix(prefix))
}

/// Returns `cfg` with the item `name` of `kind` replaced by `item` (None: removed).
fn with_item(cfg: &Config, kind: &str, name: &str, item: Option<Value>, must_exist: Option<bool>) -> Result<Config, ApiError> {
    let mut c = cfg.clone();
    let exists = kind_list(cfg, kind)?.iter().any(|(n, _)| n == name);
    match must_exist {
        Some(true) if !exists => return Err(ApiError::not_found(format!("{kind}/{name}"))),
        Some(false) if exists => return Err(ApiError::new(StatusCode::CONFLICT, "name", format!("{kind}/{name} exists"))),
        _ => {}
    }
    macro_rules! edit {
        ($list:expr, $key:expr) => {{
            let pos = $list.iter().position(|x| $key(x) == name);
            match (item, pos) {
                (Some(v), Some(i)) => $list[i] = from_value(v)?,
                (Some(v), None) => $list.push(from_value(v)?),
                (None, Some(i)) => {
                    $list.remove(i);
                }
                (None, None) => return Err(ApiError::not_found(format!("{kind}/{name}"))),
            }
        }};
    }
    match kind {
        "bridges" => edit!(c.bridges, |b: &crate::config::BridgeConfig| b.name.clone()),
        "networks" => edit!(c.networks, |n: &crate::config::NetworkConfig| n.name.clone()),
        "endpoints" => edit!(c.endpoints, |e: &crate::config::EndpointConfig| e.name.clone()),
        "routes" => edit!(c.routes, |r: &crate::config::RouteConfig| route_key(&r.network, &r.prefix)),
        "namespaces" => edit!(c.namespaces, |n: &crate::config::NamespaceConfig| n.name.clone()),
        "network_policies" => edit!(c.network_policies, |p: &crate::config::NetworkPolicyConfig| p.key()),
        "global_rules" => edit!(c.global_rules, |g: &crate::config::GlobalRuleConfig| g.name.clone()),
        "ports" => edit!(c.ports, |p: &crate::config::PortConfig| p.name.clone()),
        _ => return Err(ApiError::not_found(format!("kind {kind:?}"))),
    }
    Ok(c)
}

fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.path().to_string(), e.into_inner().to_string()))
}

/// The name a body gives itself, for its kind.
fn body_name(kind: &str, v: &Value) -> Result<String, ApiError> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let name = match kind {
        "routes" => s("network").zip(s("prefix")).map(|(n, p)| route_key(&n, &p)),
        // A manifest (metadata.name/namespace) or the short form (name/namespace).
        "network_policies" => {
            let meta = |k: &str| v.get("metadata").and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_string);
            s("name").or_else(|| meta("name")).map(|n| {
                let ns = s("namespace").or_else(|| meta("namespace"));
                format!("{}/{n}", ns.as_deref().unwrap_or(crate::config::DEFAULT_NAMESPACE))
            })
        }
        _ => s("name"),
    };
    name.ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, if kind == "routes" { "prefix" } else { "name" }, "missing"))
}

async fn list(State(ctl): State<Ctl>, UrlPath(kind): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let c = ctl.lock().await;
    Ok(Json(Value::Array(kind_list(&c.config, &kind)?.into_iter().map(|(_, v)| v).collect())))
}

async fn get_one(State(ctl): State<Ctl>, UrlPath((kind, name)): UrlPath<(String, String)>) -> Result<Json<Value>, ApiError> {
    let c = ctl.lock().await;
    kind_list(&c.config, &kind)?
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| Json(v))
        .ok_or_else(|| ApiError::not_found(format!("{kind}/{name}")))
}

async fn create(
    State(ctl): State<Ctl>,
    UrlPath(kind): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Applied>), ApiError> {
    let v: Value = parse_body(&headers, &body)?;
    let name = body_name(&kind, &v)?;
    let mut c = ctl.lock().await;
    let new = with_item(&c.config, &kind, &name, Some(v), Some(false))?;
    c.apply(new, false).map(|a| (StatusCode::CREATED, Json(a)))
}

async fn replace(
    State(ctl): State<Ctl>,
    UrlPath((kind, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Applied>, ApiError> {
    let v: Value = parse_body(&headers, &body)?;
    if body_name(&kind, &v)? != name {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "name", format!("the body names another {kind} than {name:?}")));
    }
    let mut c = ctl.lock().await;
    let new = with_item(&c.config, &kind, &name, Some(v), None)?;
    c.apply(new, false).map(Json)
}

async fn remove(State(ctl): State<Ctl>, UrlPath((kind, name)): UrlPath<(String, String)>) -> Result<Json<Applied>, ApiError> {
    let mut c = ctl.lock().await;
    let new = with_item(&c.config, &kind, &name, None, Some(true))?;
    c.apply(new, false).map(Json)
}

/// The whole API behind a bearer token, for the optional loopback TCP listener: a request
/// without `Authorization: Bearer <token>` (or with another token) gets 401.
pub fn router_with_token(ctl: Ctl, token: Arc<str>) -> Router {
    router(ctl).layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let token = Arc::clone(&token);
        async move {
            let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(t) if token_eq(t.as_bytes(), token.as_bytes()) => next.run(req).await,
                _ => {
                    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "authorization", "a valid bearer token is required").into_response();
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
                    r
                }
            }
        }
    }))
}

/// Compares tokens in time that depends only on their lengths.
fn token_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Only `/metrics`, for the optional TCP listener.
pub fn metrics_router(ctl: Ctl) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(ctl)
}

/// Binds the API socket: creates its directory, removes a stale socket (none answering),
/// and restricts it to the owner (0600).
pub fn bind_unix(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        // Only ever remove a stale *socket*: a typo must not delete a file.
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{} exists and is not a socket", path.display())));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, format!("{} is in use by a running sluice", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let l = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// The default API socket.
pub const DEFAULT_SOCKET: &str = "/run/sluice/sluice.sock";

/// Kinds and what they map to, for docs and the CLI.
pub fn kinds() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("bridges", "L2 bridges"),
        ("networks", "virtual networks (VRFs)"),
        ("endpoints", "workloads"),
        ("routes", "routes, named network:prefix"),
        ("ports", "ports: added (hot-plugged) and removed while running; only `uplink` of an existing port changes"),
        ("namespaces", "namespaces and their labels"),
        ("network_policies", "Kubernetes NetworkPolicy objects, named namespace/name"),
        ("global_rules", "ordered global policy rules"),
    ])
}
