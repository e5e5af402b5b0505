#!/usr/bin/env bash
# Installs what sluice needs on a Debian/Ubuntu machine, idempotently: DPDK (>= 22.11)
# with its PMDs, clang/libclang for bindgen, pkg-config, libpcap, and the test peers
# (tshark, tcpdump, iproute2, ping, scapy). Reserves 2 MB hugepages when it can
# (SLUICE_HUGEPAGES=N pages, default 512 = 1 GiB; 0 skips). Quick when all is there.
set -euo pipefail

PACKAGES=(dpdk dpdk-dev libdpdk-dev clang libclang-dev pkg-config libpcap-dev
          tshark tcpdump iproute2 iputils-ping python3-scapy procps udhcpc ethtool netcat-openbsd)

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else log "need root for: $*"; return 1
    fi
}

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { log "no apt-get: install by hand: ${missing[*]}"; exit 1; }
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    # tshark asks whether non-root users may capture; the default answer (no) is fine.
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! pkg-config --atleast-version=22.11 libdpdk; then
    log "DPDK >= 22.11 not found by pkg-config (libdpdk): $(pkg-config --modversion libdpdk 2>&1 || true)"
    exit 1
fi

# Hugepages: optional (everything also runs with --no-huge), used for full-speed runs.
want=${SLUICE_HUGEPAGES:-512}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ "$want" -gt 0 ] && [ -e "$hp" ]; then
    have=$(cat "$hp")
    if [ "$have" -lt "$want" ]; then
        echo "$want" | as_root tee "$hp" >/dev/null 2>&1 || true
        have=$(cat "$hp")
        [ "$have" -ge "$want" ] || log "reserved only $have of $want hugepages (fine: sluice also runs with --no-huge)"
    fi
    if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
        as_root mkdir -p /dev/hugepages
        as_root mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || log "could not mount hugetlbfs at /dev/hugepages"
    fi
fi
exit 0
