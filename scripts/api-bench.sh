#!/usr/bin/env bash
# API benchmark (issue: control plane): the time to apply a desired state with 10k routes
# and 10k NetworkPolicy rules to a running sluice — validate, compile, publish, save — and
# the forwarding rate around the apply (it must not dip).
#
#   scripts/api-bench.sh [--routes N] [--rules N] [--skip-build]
#
# Traffic: 1k UDP flows replayed from memory (net_pcap infinite_rx) into an uplink, through
# the flow table and policy to an endpoint on a net_null sink, one worker on CPU 1. After
# 4 s the CLI applies base + N routes + a policy of N rules (the traffic stays allowed),
# timed end to end (CLI round trip) and server side (the daemon's "applied" log line).
# Then the per-second rates before/around/after the apply are printed. Needs root for
# hugepages (falls back to --no-huge). Waits for a quiet machine like scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTES=10000
RULES=10000
SKIP_BUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --routes) ROUTES=${2:?}; shift 2 ;;
        --rules) RULES=${2:?}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        *) echo "usage: $0 [--routes N] [--rules N] [--skip-build]" >&2; exit 2 ;;
    esac
done
SLUICE=target/release/sluice
[ "$SKIP_BUILD" = 1 ] || cargo build --release -p sluice
while pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null || pgrep -x sluice >/dev/null || pgrep -f dpdk-testpmd >/dev/null; do sleep 2; done
WORK=$(mktemp -d /tmp/sluice-api-bench.XXXXXX)
trap 'kill $PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
NO_HUGE=true
if [ -w /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages ] && [ "$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)" -ge 256 ]; then
    NO_HUGE=false
fi
"$SLUICE" gen-pcap -o "$WORK/in.pcap" --flows 1024 --count 1024 --size 60 --dst-ip 10.1.0.10 >/dev/null
base() {
    cat <<YAML
dpdk: {no_huge: $NO_HUGE, log_level: error}
main_core: 0
workers: {cores: [1]}
ports:
  - {name: in0, devargs: "net_pcap0,rx_pcap=$WORK/in.pcap,infinite_rx=1", uplink: {network: bench, ipv4: 192.0.2.2, mac: "02:00:00:00:00:02"}}
  - {name: out0, devargs: "net_null0,no-rx=1", rx: false}
networks:
  - {name: bench, subnets: ["10.1.0.0/24", "192.0.2.0/24"], gateway: {ipv4: 10.1.0.1}}
endpoints:
  - {name: web, network: bench, port: out0, mac: "02:00:00:00:01:0a", ips: [10.1.0.10], labels: {app: web}}
# Stateful from the start, so the rate before and after compares the same work.
flows: {track: always}
YAML
}
base >"$WORK/base.yaml"
{
    base
    echo "routes:"
    awk -v n="$ROUTES" 'BEGIN { for (i = 0; i < n; i++)
        printf "  - {network: bench, prefix: %d.%d.%d.0/24, via: {endpoint: web}}\n", 16 + int(i / 65536), int(i / 256) % 256, i % 256 }'
    cat <<YAML
network_policies:
  - name: web
    namespace: default
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
YAML
    awk -v n="$((RULES - 1))" 'BEGIN { for (i = 0; i < n; i++)
        printf "        - {from: [{ipBlock: {cidr: 172.%d.%d.%d/28}}], ports: [{protocol: UDP, port: %d}]}\n",
            16 + int(i / 4096) % 16, int(i / 16) % 256, (i % 16) * 16, 6000 + i % 50000 }'
    echo "        - {from: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{protocol: UDP, port: 5001}]}"
} >"$WORK/desired.yaml"
SOCK=$WORK/api.sock
"$SLUICE" --log info run --config "$WORK/base.yaml" --api-socket "$SOCK" --interval 1 --duration 12 >"$WORK/out.log" 2>"$WORK/err.log" &
PID=$!
sleep 4
ms_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", (b - a) * 1000}'; }
t0=$(date +%s.%N)
"$SLUICE" apply -f "$WORK/desired.yaml" --socket "$SOCK" >"$WORK/apply.log"
FIRST=$(ms_since "$t0")
# Four more: back to the base state, then the big state again (each timed the same way).
AGAIN=()
for _ in 1 2 3 4; do
    "$SLUICE" apply -f "$WORK/base.yaml" --socket "$SOCK" >/dev/null
    t0=$(date +%s.%N)
    "$SLUICE" apply -f "$WORK/desired.yaml" --socket "$SOCK" >/dev/null
    AGAIN+=("$(ms_since "$t0")")
done
wait $PID || true
PID=
printf 'apply of %s routes + %s policy rules (%s bytes of YAML), end to end (CLI): first %s ms on a fresh daemon; again: %s ms\n' \
    "$ROUTES" "$RULES" "$(stat -c %s "$WORK/desired.yaml")" "$FIRST" "${AGAIN[*]}"
printf 'server side (validate, compile, save, publish), each big apply: %s ms\n' "$(cat "$WORK/err.log" "$WORK/out.log" | sed 's/\x1b\[[0-9;]*m//g' \
    | grep 'applied' | grep -v 'added=0 ' | grep -o 'apply_ms=[0-9.]*' | cut -d= -f2 | xargs printf '%.0f ')"
head -n 1 "$WORK/apply.log"
echo "forwarding rate per second (Mpps), the applies happened from second ~4 on:"
awk '$1 == "rx" && $3 == "Mpps" {printf "%s ", $2} END {print ""}' "$WORK/out.log"
grep -E 'drops' "$WORK/out.log" | tail -n 1 || true
