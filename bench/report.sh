#!/usr/bin/env bash
# Times `polyseal report` on a vault of N phones with a year's history (every phone rotated
# once, one in a hundred compromised: about 5N events), without and with the identity, and
# reports peak memory and the sizes of the three files. Results go in docs/PERFORMANCE.md.
#
# Usage: bash bench/report.sh [N=100000] [BINARY=target/release/polyseal]
# Needs: /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
phones=${1:-100000}
bin=$(realpath "${2:-target/release/polyseal}")
work=$(mktemp -d /var/tmp/polyseal-report.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo run -q --release -p polyseal-fleet --example report_fleet -- "$phones" "$work/vault"
chmod 600 "$work/vault.identity"
export POLYSEAL_VAULT=$work/vault
for run in without with; do
    out=$work/report-$run
    if [ "$run" = without ]; then
        /usr/bin/time -f "%e %M" -o "$work/time" env POLYSEAL_IDENTITY= "$bin" -q report --out "$out"
    else
        /usr/bin/time -f "%e %M" -o "$work/time" env POLYSEAL_IDENTITY="$work/vault.identity" \
            "$bin" -q report --out "$out"
    fi
    read -r wall kib < "$work/time"
    printf 'report %-7s identity: %5.2f s, peak %4.0f MB; index.html %s, report.json %s, inventory.csv %s\n' \
        "$run" "$wall" "$(echo "$kib / 1024" | bc -l)" \
        "$(du -h "$out/index.html" | cut -f1)" "$(du -h "$out/report.json" | cut -f1)" \
        "$(du -h "$out/inventory.csv" | cut -f1)"
done
