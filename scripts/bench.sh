#!/usr/bin/env bash
# System benchmark: sluice vs the dpdk-testpmd ceiling on the same input.
#
# Both forward 64-byte UDP frames (generated pcap, --flows flows) replayed from memory by
# net_pcap (infinite_rx) to a net_null sink, with one forwarding core (CPU 1; CPU 0 runs
# the main/control thread). testpmd runs first (io forwarding: no packet is even read),
# then sluice (L2 learning bridge, known unicast through a static MAC). Never both at
# once. Prints one table: testpmd Mpps, sluice Mpps, sluice/testpmd, sluice cycles/pkt.
#
#   scripts/bench.sh [--flows N] [--packets N [--shuffle]] [--l3 N | --policy N [--syn]]
#                    [--max-flows N] [--seconds N] [--no-huge] [--skip-build]
#                    [--hugepages N] [--keep] [--repeat N]
#
#   --flows N       distinct UDP flows in the pcap (default 1024; 65536 for the 64k run)
#   --packets N     frames in the pcap, cycling over the flows (default: one per flow). The
#                   replay's own cost grows with the file (net_pcap copies every frame out
#                   of its own stored mbuf: 1M frames stream 1M cold buffers), so to
#                   compare flow counts alone give every run the same --packets
#   --shuffle       with --packets above --flows: after one round in order, the flows recur
#                   in a fixed shuffled order (not the order that created them)
#   --l3 N          route instead of bridge: the input arrives on an uplink of a routed
#                   network with N /24 routes (16.0.0.0/24 upwards) to a gateway on the sink;
#                   destinations spread over min(N, flows) of them (TTL-1, MAC rewrite)
#   --policy N      stateful: the input arrives on an uplink and goes to an endpoint through
#                   the flow table (conntrack) and NetworkPolicy with N ingress rules (0: no
#                   policy, the flow table only); one rule allows the traffic, N-1 others
#                   (ipBlocks and ports) are there to be compiled and looked through
#   --syn           TCP SYNs instead of UDP: every frame opens a connection (new-flow rate;
#                   use with --max-flows below --flows so each frame misses and evicts)
#   --max-flows N   flows.max_per_worker (default: 2 x --flows, at least 1024)
#   --seconds N     measured seconds per program (default 10, at least 3), after 1 s of warm-up
#   --no-huge       run both without hugepages (anonymous memory)
#   --hugepages N   2 MB pages to reserve (default 1024 = 2 GiB; env SLUICE_BENCH_HUGEPAGES)
#   --skip-build    use target/release/sluice as it is
#   --keep          keep the work directory (pcap, config, logs, stats JSON)
#   --repeat N      N runs of both programs, alternating (testpmd, sluice, testpmd, ...),
#                   each row printed, then the medians: on a noisy VM one pair's ratio moves
#                   with either program's luck (December 7: testpmd 32-51 Mpps on the 64k
#                   file within minutes), the median of pairs much less
# Env SLUICE_BIN=path measures that binary instead, without a build (to alternate builds).
#
# Needs root for hugepages (without them, or without root, it falls back to --no-huge and
# says so). Reserved hugepages are left reserved (the table footer says how to release
# them). Waits until no cargo/rustc/sluice/testpmd runs, and prints a WARNING when
# something ran beside a measurement (such a run is worthless on 2 CPUs). Quiet unless
# something fails; a failing step prints its log. Method and numbers: docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWS=1024
PACKETS=0
SHUFFLE=()
L3_ROUTES=0
POLICY=-1
SYN=0
MAX_FLOWS=0
DUR=10
NO_HUGE=0
SKIP_BUILD=0
KEEP=0
REPEAT=1
ARGS=("$@")
PAGES=${SLUICE_BENCH_HUGEPAGES:-1024}
# Fewest free pages a hugepage run needs (one program at a time: ~40-100 MB of pools with
# 1k flows, ~300 MB with 64k).
MIN_PAGES=256

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
note() { printf 'bench: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --flows) FLOWS=${2:?--flows needs a number}; shift 2 ;;
        --packets) PACKETS=${2:?--packets needs a number}; shift 2 ;;
        --shuffle) SHUFFLE=(--shuffle); shift ;;
        --l3) L3_ROUTES=${2:?--l3 needs a number of routes}; shift 2 ;;
        --policy) POLICY=${2:?--policy needs a number of rules}; shift 2 ;;
        --syn) SYN=1; shift ;;
        --max-flows) MAX_FLOWS=${2:?--max-flows needs a number}; shift 2 ;;
        --seconds) DUR=${2:?--seconds needs a number}; shift 2 ;;
        --hugepages) PAGES=${2:?--hugepages needs a number}; shift 2 ;;
        --no-huge) NO_HUGE=1; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --keep) KEEP=1; shift ;;
        --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[ "$PACKETS" != 0 ] || PACKETS=$FLOWS
for v in FLOWS PACKETS DUR PAGES REPEAT; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || die "${v,,} must be a positive integer"
done
[ "$PACKETS" -ge "$FLOWS" ] || die "--packets must be at least --flows (each flow needs a frame)"
[ "$DUR" -ge 3 ] || die "--seconds must be at least 3 (each program's median needs 3 one-second samples)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (main on 0, forwarding on 1)"
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found (scripts/setup.sh installs DPDK)"

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) exit 1; print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

if [ "$REPEAT" -gt 1 ]; then
    # Each run is this script without --repeat; only the first may build, the rest reuse it.
    once=()
    for ((i = 0; i < ${#ARGS[@]}; i++)); do
        if [ "${ARGS[i]}" = --repeat ]; then i=$((i + 1)); else once+=("${ARGS[i]}"); fi
    done
    rows=()
    for ((r = 1; r <= REPEAT; r++)); do
        [ "$r" = 1 ] || once+=(--skip-build)
        out=$("$0" "${once[@]}") || exit 1
        row=$(printf '%s\n' "$out" | grep -E '^(hugepages|no-huge) ')
        printf '%s\n' "$out" | grep -q '^WARNING' && row="$row   (WARNING: disturbed)"
        [ "$r" = 1 ] && printf '%s\n' "$out" | sed -n '2,5p'
        printf '%s\n' "$row"
        rows+=("$row")
    done
    col() { printf '%s\n' "${rows[@]}" | grep -v WARNING | awk -v c="$1" '{print $c}' | median; }
    printf '%-10s %-6s %12s %12s %15s %12s   (%s undisturbed runs)\n' median "$FLOWS" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" \
        "$(printf '%s\n' "${rows[@]}" | grep -vc WARNING)"
    exit 0
fi

WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
PID=
cleanup() {
    # Only ever the one process this script started and is waiting for.
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    if [ "$KEEP" = 1 ]; then note "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs "$@" with output to $1's log; on failure prints the log and exits.
step() {
    local name=$1; shift
    if ! "$@" >"$WORK/$name.log" 2>&1; then
        note "$name failed: $*"
        tail -n 40 "$WORK/$name.log" >&2
        exit 1
    fi
}

# --- build -----------------------------------------------------------------------------
SLUICE=${SLUICE_BIN:-target/release/sluice}
if [ "$SKIP_BUILD" = 0 ] && [ -z "${SLUICE_BIN:-}" ]; then
    step build timeout 3600 cargo build --release -p sluice
fi
[ -x "$SLUICE" ] || die "$SLUICE missing (build it, drop --skip-build, or fix SLUICE_BIN)"

# A benchmark beside a compile, a test run or another poller measures that instead.
# (Checked before and after each measurement; only 2 CPUs, and the poller takes one.)
others() {
    local p mine=" "
    [ -z "$PID" ] || mine=" $PID $(pgrep -P "$PID" | tr '\n' ' ')"
    # A stopped process (state T, e.g. a paused build) takes no CPU.
    for p in $(ps -eo pid=,stat=,comm= | awk '$2 !~ /^T/ && $3 ~ /^(rustc|cargo|sluice|dpdk-testpmd)$/ {print $1}'); do
        [[ $mine == *" $p "* ]] || echo "$p"
    done
}
# CPU time besides the poller, from /proc/stat over all CPUs (steal counts as busy: the
# hypervisor took it): catches what the process names above miss (test binaries, ...).
cpu_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
# Percent of one CPU used by anything but the poller between two cpu_ticks samples.
extra_load() {
    awk -v a="$1" -v b="$2" -v n="$(nproc)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); dt = y[2] - x[2]
        v = (dt > 0) ? ((y[1] - x[1]) / dt * n - 1) * 100 : 0
        printf "%.0f", (v < 0) ? 0 : v }'
}
MAX_EXTRA=15
busy_wait=0
disturbed=
while [ -n "$(others)" ]; do
    [ "$busy_wait" = 0 ] && note "waiting for running cargo/rustc/sluice/testpmd to finish (up to 30 min)..."
    busy_wait=$((busy_wait + 5))
    [ "$busy_wait" -le 1800 ] || die "other busy processes still running after 30 min: results would be worthless"
    sleep 5
done

# --- memory: hugepages or not ------------------------------------------------------------
HP=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
MODE=hugepages
reserved_note=
free_pages() { awk '/^HugePages_Free:/ {print $2}' /proc/meminfo; }
if [ "$NO_HUGE" = 1 ]; then
    MODE=no-huge
else
    fallback=
    if [ ! -w "$HP" ]; then
        fallback="cannot write $HP (not root?)"
    else
        before=$(cat "$HP")
        if [ "$before" -lt "$PAGES" ]; then
            echo "$PAGES" >"$HP" 2>/dev/null || true
        fi
        after=$(cat "$HP")
        [ "$after" -gt "$before" ] && reserved_note="reserved $((after - before)) hugepages (now $after x 2 MB); they stay reserved: echo $before > $HP releases them"
        if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
            mkdir -p /dev/hugepages
            mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || fallback="cannot mount hugetlbfs at /dev/hugepages"
        fi
        [ -n "$fallback" ] || [ "$(free_pages)" -ge "$MIN_PAGES" ] \
            || fallback="only $(free_pages) free 2 MB hugepages (need $MIN_PAGES)"
    fi
    if [ -n "$fallback" ]; then
        note "no hugepages: $fallback; falling back to --no-huge"
        MODE=no-huge
    fi
fi

# --- traffic ---------------------------------------------------------------------------
PCAP=$WORK/udp-$FLOWS-flows-$PACKETS${SHUFFLE:+-shuffled}.pcap
GEN_L3=()
if [ "$L3_ROUTES" -gt 0 ]; then
    [ "$L3_ROUTES" -le 1048576 ] || die "--l3 takes at most 1048576 routes (16.0.0.0/4 in /24s)"
    GEN_L3=(--dst-ip 16.0.0.1 --dst-prefixes $(( L3_ROUTES < FLOWS ? L3_ROUTES : FLOWS )))
fi
if [ "$POLICY" -ge 0 ]; then
    GEN_L3=(--dst-ip 10.1.0.10)
    [ "$SYN" = 1 ] && GEN_L3+=(--tcp-syn)
fi
[ "$MAX_FLOWS" -gt 0 ] || MAX_FLOWS=$(( FLOWS * 2 > 1024 ? FLOWS * 2 : 1024 ))
step gen-pcap timeout 300 "$SLUICE" gen-pcap -o "$PCAP" --flows "$FLOWS" --count "$PACKETS" --size 60 "${GEN_L3[@]}" "${SHUFFLE[@]}"

# net_pcap's infinite_rx keeps every frame of the file in an mbuf of the pool: large
# files need a larger pool than the defaults (testpmd 16384 here, sluice sized from its
# rings). Both get the same size then: 2^n - 1 >= frames + 16384.
TP_MBUFS=16384
SL_MBUFS=0
# Above 64k frames the pool would not fit in 2 GiB with 2 KB buffers: both programs then
# use 256-byte buffers (plenty for 60-byte frames).
SMALL_MBUFS=0
[ "$PACKETS" -gt 65536 ] && SMALL_MBUFS=1
TP_MBUF_SIZE=()
SL_MEM_YAML="  data_room: 2048"
MTU_YAML=""
if [ "$SMALL_MBUFS" = 1 ]; then
    TP_MBUF_SIZE=(--mbuf-size=384)
    SL_MEM_YAML="  data_room: 256"
    MTU_YAML="    mtu: 200"
fi
if [ "$PACKETS" -gt 4096 ]; then
    n=1
    while [ $((n - 1)) -lt $((PACKETS + 16384)) ]; do n=$((n * 2)); done
    TP_MBUFS=$((n - 1))
    SL_MBUFS=$((n - 1))
fi

# --- (a) the ceiling: testpmd io forwarding pcap -> null --------------------------------
# Two streams exist (paired topology); the null port has no-rx=1, so only pcap -> null
# carries packets (the other one polls an always-empty queue).
if [ "$MODE" = hugepages ]; then
    TP_MEM=(--in-memory)
else
    TP_MEM=(--no-huge --no-shconf -m 1024)
fi
TP_LOG=$WORK/testpmd.log
timeout -k 5 $((DUR + 60)) dpdk-testpmd -l 0,1 "${TP_MEM[@]}" --no-pci --log-level=error \
    --vdev "net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev "net_null0,no-rx=1" \
    -- --forward-mode=io --no-flush-rx --total-num-mbufs=$TP_MBUFS "${TP_MBUF_SIZE[@]}" --stats-period 1 \
    </dev/null >"$TP_LOG" 2>&1 &
PID=$!
# Port 0's Rx-pps, one value per stats block (the first block, at start, reads 0).
tp_samples() { awk '/NIC statistics for port 0/ {p=1} p && /Rx-pps:/ {print $2; p=0}' "$TP_LOG"; }
# Wait for the first non-zero second (warm-up), then $DUR more; bounded by startup time.
deadline=$((SECONDS + DUR + 45))
t0=
while kill -0 "$PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    got=$(tp_samples | awk '$1 > 0' | wc -l)
    [ "$got" -ge $((DUR + 1)) ] && break
    [ -n "$t0" ] || [ "$got" -lt 1 ] || t0=$(cpu_ticks)
    [ -z "$(others)" ] || disturbed=1
    sleep 0.5
done
TP_EXTRA=$(extra_load "${t0:-$(cpu_ticks)}" "$(cpu_ticks)")
kill -INT "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
PID=
mapfile -t tp < <(tp_samples | awk '$1 > 0 {n++; if (n > 1) print}' | head -n "$DUR")
if [ "${#tp[@]}" -lt 3 ]; then
    note "testpmd gave ${#tp[@]} samples"
    tail -n 40 "$TP_LOG" >&2
    exit 1
fi
TP_PPS=$(printf '%s\n' "${tp[@]}" | median)
TP_MPPS=$(awk -v v="$TP_PPS" 'BEGIN {printf "%.3f", v / 1e6}')

# --- (b) sluice: L2 learning bridge pcap -> null ------------------------------------------
NO_HUGE_YAML=false
[ "$MODE" = no-huge ] && NO_HUGE_YAML=true
CONF=$WORK/sluice.yaml
cat >"$CONF" <<EOF
# scripts/bench.sh: the embedded default (control/src/demo.rs) with the worker on CPU 1.
dpdk:
  no_huge: $NO_HUGE_YAML
  log_level: error
main_core: 0
mempool:
  mbufs: $SL_MBUFS           # 0: sized automatically
workers:
  cores: [1]
ports:
  - name: in0
    devargs: "net_pcap0,rx_pcap=$PCAP,infinite_rx=1"
  - name: out0
    devargs: "net_null0,no-rx=1"
    rx: false
bridges:
  - name: br0
    ports:
      - port: in0
      - port: out0
    static_macs:
      - mac: "02:00:00:00:00:02"
        port: out0
stats:
  interval_s: 1
EOF
if [ "$L3_ROUTES" -gt 0 ]; then
    # Routed instead: in0 is an uplink into network "bench" (its MAC is the frames'
    # destination), out0 an uplink with the gateway every route points at.
    cat >"$CONF" <<EOF
# scripts/bench.sh --l3 $L3_ROUTES: pcap -> uplink -> $L3_ROUTES routes -> gateway -> null.
dpdk:
  no_huge: $NO_HUGE_YAML
  log_level: error
main_core: 0
mempool:
  mbufs: $SL_MBUFS
workers:
  cores: [1]
ports:
  - name: in0
    devargs: "net_pcap0,rx_pcap=$PCAP,infinite_rx=1"
    uplink: {network: bench, ipv4: 192.0.2.2, mac: "02:00:00:00:00:02"}
  - name: out0
    devargs: "net_null0,no-rx=1"
    rx: false
    uplink: {network: bench, ipv4: 198.51.100.2, mac: "02:00:00:00:00:03"}
networks:
  - name: bench
    subnets: ["192.0.2.0/24"]
    gateway: {ipv4: 192.0.2.1}
stats:
  interval_s: 1
routes:
EOF
    awk -v n="$L3_ROUTES" 'BEGIN { for (i = 0; i < n; i++)
        printf "  - {network: bench, prefix: %d.%d.%d.0/24, via: {gateway: 198.51.100.1, port: out0, mac: \"02:00:00:00:aa:01\"}}\n",
            16 + int(i / 65536), int(i / 256) % 256, i % 256 }' >>"$CONF"
fi
if [ "$POLICY" -ge 0 ]; then
    # Stateful: in0 is an uplink of network "bench"; every frame goes to endpoint "web"
    # (10.1.0.10 on the sink) through the flow table and, with --policy N > 0, an ingress
    # NetworkPolicy of N rules selecting it.
    cat >"$CONF" <<EOF
# scripts/bench.sh --policy $POLICY: pcap -> uplink -> conntrack + policy -> endpoint -> null.
dpdk:
  no_huge: $NO_HUGE_YAML
  log_level: error
main_core: 0
mempool:
  mbufs: $SL_MBUFS
$SL_MEM_YAML
workers:
  cores: [1]
ports:
  - name: in0
    devargs: "net_pcap0,rx_pcap=$PCAP,infinite_rx=1"
$MTU_YAML
    uplink: {network: bench, ipv4: 192.0.2.2, mac: "02:00:00:00:00:02"}
  - name: out0
    devargs: "net_null0,no-rx=1"
    rx: false
$MTU_YAML
networks:
  - name: bench
    subnets: ["10.1.0.0/24", "192.0.2.0/24"]
    gateway: {ipv4: 10.1.0.1}
endpoints:
  - {name: web, network: bench, port: out0, mac: "02:00:00:00:01:0a", ips: [10.1.0.10], labels: {app: web}}
flows:
  track: always
  max_per_worker: $MAX_FLOWS
stats:
  interval_s: 1
EOF
    if [ "$POLICY" -gt 0 ]; then
        cat >>"$CONF" <<EOF
network_policies:
  - name: web
    namespace: default
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
EOF
        awk -v n="$((POLICY - 1))" 'BEGIN { for (i = 0; i < n; i++)
            printf "        - {from: [{ipBlock: {cidr: 172.%d.%d.%d/28}}], ports: [{protocol: UDP, port: %d}]}\n",
                16 + int(i / 4096) % 16, int(i / 16) % 256, (i % 16) * 16, 6000 + i % 50000 }' >>"$CONF"
        cat >>"$CONF" <<EOF
        - from: [{ipBlock: {cidr: 10.0.0.0/8}}]
          ports: [{protocol: UDP, port: 5001}, {protocol: TCP, port: 5001}]
EOF
    fi
fi
SL_JSON=$WORK/sluice-stats.json
# +1: the first line is the warm-up second.
timeout -k 5 $((DUR + 60)) "$SLUICE" --log error run --config "$CONF" \
    --duration $((DUR + 1)).5 --interval 1 --stats-json "$SL_JSON" >"$WORK/sluice.log" 2>&1 &
PID=$!
t0=
t1=
while kill -0 "$PID" 2>/dev/null; do
    got=$(awk '$1 == "rx" && $3 == "Mpps"' "$WORK/sluice.log" | wc -l)
    [ -n "$t0" ] || [ "$got" -lt 1 ] || t0=$(cpu_ticks)
    [ -n "$t1" ] || [ "$got" -lt $((DUR + 1)) ] || t1=$(cpu_ticks)
    [ -z "$(others)" ] || disturbed=1
    sleep 0.5
done
SL_EXTRA=$(extra_load "${t0:-$(cpu_ticks)}" "${t1:-$(cpu_ticks)}")
[ "$TP_EXTRA" -le "$MAX_EXTRA" ] && [ "$SL_EXTRA" -le "$MAX_EXTRA" ] || disturbed=1
rc=0
wait "$PID" || rc=$?
PID=
if [ "$rc" != 0 ]; then
    note "sluice failed (exit $rc)"
    tail -n 40 "$WORK/sluice.log" >&2
    exit 1
fi
mapfile -t sl < <(awk '$1 == "rx" && $3 == "Mpps" {n++; if (n > 1) print $2}' "$WORK/sluice.log" | head -n "$DUR")
if [ "${#sl[@]}" -lt 3 ]; then
    note "sluice gave ${#sl[@]} samples"
    tail -n 40 "$WORK/sluice.log" >&2
    exit 1
fi
SL_MPPS=$(printf '%s\n' "${sl[@]}" | median)
SL_MPPS=$(awk -v v="$SL_MPPS" 'BEGIN {printf "%.3f", v}')
if command -v jq >/dev/null; then
    CPP=$(jq -r '.workers[0].cycles_per_packet' "$SL_JSON")
else
    CPP=$(grep -o '"cycles_per_packet": *[0-9.eE+-]*' "$SL_JSON" | head -n 1 | sed 's/.*: *//')
fi
CPP=$(awk -v v="$CPP" 'BEGIN {printf "%.1f", v}')
RATIO=$(awk -v s="$SL_MPPS" -v t="$TP_MPPS" 'BEGIN {printf "%.2f", (t > 0) ? s / t : 0}')
SL_DROPS=$(grep -o '"drops_total": *[0-9]*' "$SL_JSON" | head -n 1 | sed 's/.*: *//')

# --- report ----------------------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
WHAT="L2 bridge"
[ "$L3_ROUTES" -gt 0 ] && WHAT="L3 routing, $L3_ROUTES routes"
if [ "$POLICY" -ge 0 ]; then
    WHAT="stateful: conntrack + $POLICY NetworkPolicy rules, max $MAX_FLOWS flows"
    [ "$SYN" = 1 ] && WHAT="$WHAT, TCP SYN (new flows)"
fi
printf '\nsluice system benchmark (%s): %s flows in %s frames of 64 bytes, pcap(infinite_rx) -> null, 1 forwarding core\n' "$WHAT" "$FLOWS" "$PACKETS"
printf 'mode: %s   cpu: %s x %s   samples: median of %s s (testpmd) / %s s (sluice) after 1 s warm-up\n\n' \
    "$MODE" "$(nproc)" "$cpu" "${#tp[@]}" "${#sl[@]}"
printf '%-10s %-6s %12s %12s %15s %12s\n' mode flows "testpmd Mpps" "sluice Mpps" "sluice/testpmd" "cycles/pkt"
printf '%-10s %-6s %12s %12s %15s %12s\n' "$MODE" "$FLOWS" "$TP_MPPS" "$SL_MPPS" "$RATIO" "$CPP"
printf '\nper-second samples (Mpps):\n  testpmd: %s\n  sluice:  %s\n' \
    "$(printf '%s\n' "${tp[@]}" | awk '{printf "%.2f ", $1 / 1e6}')" "$(printf '%.2f ' "${sl[@]}")"
[ "${SL_DROPS:-0}" = 0 ] || printf 'note: sluice dropped %s packets (see --keep and the stats JSON)\n' "$SL_DROPS"
if [ "$POLICY" -ge 0 ]; then
    fl() { grep -o "\"$1\": *[0-9]*" "$SL_JSON" | head -n 1 | sed 's/.*: *//'; }
    printf 'flow table: %s flows now, %s created, %s evicted, %s expired\n' "$(fl flows)" "$(fl flows_created)" "$(fl flows_evicted)" "$(fl flows_expired)"
fi
printf 'load besides the poller: %s%% of a CPU during testpmd, %s%% during sluice\n' "$TP_EXTRA" "$SL_EXTRA"
[ -z "$disturbed" ] || printf 'WARNING: something else ran beside the measurement (cargo/rustc/sluice/testpmd, or over %s%% of a CPU): numbers are not trustworthy\n' "$MAX_EXTRA"
[ "$busy_wait" = 0 ] || printf 'note: waited %s s for cargo/rustc to finish first\n' "$busy_wait"
[ -z "$reserved_note" ] || printf 'note: %s\n' "$reserved_note"
if [ "$MODE" = hugepages ] && [ -z "$reserved_note" ]; then
    printf 'note: hugepages were already reserved (%s x 2 MB); left as they were\n' "$(cat "$HP")"
fi
