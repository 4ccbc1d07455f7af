#!/usr/bin/env bash
# Issue 15's benchmarks (docs/PERFORMANCE.md, "serve and status"), in one run:
#   1. a boot storm of PHONES simulated phones (a mutual-TLS handshake with the phone's own
#      ECDSA P-256 device certificate, then master, key file, config, one upload), THREADS at a
#      time, against polyseal serve and then against nginx configured by nginx-config: the
#      same tree, certificates and client, side by side;
#   2. a ledger of LEDGER_PHONES polling daily for DAYS days, written through the ledger's own
#      writer (compacting), then status over it: time, and peak memory by /usr/bin/time.
#
#   bash bench/serve.sh [PHONES THREADS LEDGER_PHONES DAYS]   (default 10000 32 100000 30)
set -euo pipefail
phones=${1:-10000}
threads=${2:-32}
ledger_phones=${3:-100000}
days=${4:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet --bin polyseal --example boot_storm
echo "$(nproc) cores, $(uname -r), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')"
target/release/examples/boot_storm storm target/release/polyseal "$phones" "$threads"
/usr/bin/time -f "status benchmark: %e s wall, %M KB peak resident" \
    target/release/examples/boot_storm status "$ledger_phones" "$days"
