#!/usr/bin/env bash
# What a custody change costs on a fleet of N phones (docs/PERFORMANCE.md, "Custody changes"),
# side by side in one run: a change that keeps the data key (lowering a threshold, adding a
# recipient: the data key split or sealed anew) against one that replaces it (raising a
# threshold, removing a recipient: every record re-sealed).
#
#   bash bench/custody.sh [N]      (default 100000; needs a release build and age-keygen)
set -euo pipefail
phones=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
polyseal="$root/target/release/polyseal"
[ -x "$polyseal" ] || cargo build --release --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for name in alice bob carol dave; do age-keygen -o "$name.key" 2>/dev/null; done
python3 -c "
for i in range($phones):
    print('0004f2%06x' % i)" > phones.txt
export POLYSEAL_VAULT="$work/vault" POLYSEAL_LOCK_WAIT=0
"$polyseal" -q init --recipient alice.key --label alice --recipient bob.key --label bob \
    --recipient carol.key --label carol
"$polyseal" -q keys add --from phones.txt -i alice.key
timed() {
    local what=$1; shift
    local start end
    start=$(date +%s.%N)
    "$polyseal" -q "$@" > /dev/null
    end=$(date +%s.%N)
    printf '%-58s %6.2f s\n' "$what" "$(echo "$end - $start" | bc)" >&2
}
echo "$phones phones, $(nproc) cores, $(uname -r)"
timed "recipients threshold 2  (raise: new data key, re-seal)" recipients threshold 2 -i alice.key
timed "recipients threshold 1  (lower: same key, split anew)" recipients threshold 1 -i alice.key -i bob.key
timed "recipients add dave     (same key, sealed anew)" recipients add dave.key --label dave -i alice.key
timed "recipients remove dave  (new data key, re-seal)" recipients remove dave -i alice.key
timed "keys list               (no identity: reads every record)" keys list --format json > /dev/null
