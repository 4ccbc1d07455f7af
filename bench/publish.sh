#!/usr/bin/env bash
# Benchmarks `polyseal publish` (from nothing, and again with nothing changed) and
# `polyseal audit` on a fleet of N phones with one ~5 KB per-phone configuration each, and
# the same work done the way people do it today: a shell loop of `openssl enc` and `age`, one
# process per file, measured on M phones and extrapolated. Results go in docs/PERFORMANCE.md.
#
# Usage: bash bench/publish.sh [N=100000] [M=1000]
# Needs: cargo, python3, age, age-keygen, openssl, /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
phones=${1:-100000}
loop_phones=${2:-1000}
work=$(mktemp -d /var/tmp/polyseal-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p polyseal
polyseal=$PWD/target/release/polyseal
python3 bench/make-fleet.py "$phones" "$work/src"
age-keygen -o "$work/identity.txt" 2>/dev/null
export POLYSEAL_VAULT=$work/vault POLYSEAL_IDENTITY=$work/identity.txt
"$polyseal" -q init --recipient "$work/identity.txt"

measure_width=40
# shellcheck source=bench/lib.sh
source bench/lib.sh

machine
echo "fleet: $phones phones, $(du -sh "$work/src" | cut -f1) of source"
sync
measure "publish, from nothing ($phones phones)" "$polyseal" -q publish --src "$work/src" --out "$work/out"
measure "publish again, nothing changed" "$polyseal" -q publish --src "$work/src" --out "$work/out"
measure "audit, no identity (headers, modes)" env POLYSEAL_IDENTITY= "$polyseal" -q audit --tree "$work/out"
measure "audit with identity (also decrypts)" "$polyseal" -q audit --tree "$work/out"
measure "keys list (inventory, no identity)" "$polyseal" -q keys list --format csv
# Last, as it empties the page cache: the same from nothing with the sources read from the
# disk, into a second vault and tree; only where this user may drop the cache (root).
if [ -w /proc/sys/vm/drop_caches ]; then
    POLYSEAL_VAULT=$work/vault-cold "$polyseal" -q init --recipient "$work/identity.txt"
    sync && echo 1 > /proc/sys/vm/drop_caches
    measure "publish, from nothing, cold page cache" env POLYSEAL_VAULT="$work/vault-cold" \
        "$polyseal" -q publish --src "$work/src" --out "$work/out-cold"
fi

# Today's way, on $loop_phones phones: per phone a random key with openssl, the file
# encrypted with `openssl enc`, and the key sealed with `age` to the same recipient.
recipient=$(grep -o 'age1[0-9a-z]*' "$work/identity.txt" | head -1)
mkdir -p "$work/loop"
loop() {
    for file in $(ls "$work/src" | grep -- '-sip.cfg$' | head -n "$loop_phones"); do
        key=$(openssl rand -hex 16)
        iv=$(openssl rand -hex 16)
        openssl enc -aes-128-cbc -K "$key" -iv "$iv" -in "$work/src/$file" -out "$work/loop/$file"
        echo "$key" | age -r "$recipient" -o "$work/loop/$file.key.age"
    done
}
start=$(date +%s.%N)
loop
end=$(date +%s.%N)
per_phone=$(echo "($end - $start) / $loop_phones" | bc -l)
printf '%-40s %8.2f s wall (%.2f ms a phone; %.0f s for %d phones)\n' \
    "shell loop, $loop_phones phones" "$(echo "$end - $start" | bc -l)" \
    "$(echo "$per_phone * 1000" | bc -l)" "$(echo "$per_phone * $phones" | bc -l)" "$phones"
