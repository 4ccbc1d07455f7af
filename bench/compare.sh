#!/usr/bin/env bash
# Compares two polyseal binaries side by side on one fleet: publish from nothing, publish
# again with nothing changed, audit without and with the identity, the inventory listing, and
# one phone's state change on the full vault. The runs alternate
# (A B, then B A, ...) so that a slow minute of this shared machine hits both alike, and no
# tree is deleted until the end (ext4 without a journal slows file creation for minutes after
# a large deletion: docs/PERFORMANCE.md). Results go in docs/PERFORMANCE.md.
#
# Usage: bash bench/compare.sh OLD_BINARY NEW_BINARY [N=100000] [ROUNDS=2]
# Needs: python3, age-keygen, /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1")
new=$(realpath "$2")
phones=${3:-100000}
rounds=${4:-2}
work=$(mktemp -d /var/tmp/polyseal-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 bench/make-fleet.py "$phones" "$work/src"
age-keygen -o "$work/identity.txt" 2>/dev/null
export POLYSEAL_IDENTITY=$work/identity.txt

seconds() { # command... -> wall seconds and peak RSS in MB
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
    read -r wall kib < "$work/time"
    printf '%.2f s %3.0f MB' "$wall" "$(echo "$kib / 1024" | bc -l)"
}

run() { # label binary round
    local label=$1 bin=$2 round=$3
    local vault=$work/vault-$label-$round out=$work/out-$label-$round
    POLYSEAL_VAULT=$vault "$bin" -q init --recipient "$work/identity.txt"
    sync
    export POLYSEAL_VAULT=$vault
    printf '%-4s round %d  publish %s  rerun %s  audit %s  audit+identity %s  keys-list %s  keys-state %s\n' \
        "$label" "$round" \
        "$(seconds "$bin" -q publish --src "$work/src" --out "$out")" \
        "$(seconds "$bin" -q publish --src "$work/src" --out "$out")" \
        "$(seconds env POLYSEAL_IDENTITY= "$bin" -q audit --tree "$out")" \
        "$(seconds "$bin" -q audit --tree "$out")" \
        "$(seconds "$bin" -q keys list)" \
        "$(seconds "$bin" -q keys state 0004f2000001 deactivated)"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); fleet: $phones phones"
echo "old: $old"
echo "new: $new"
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then
        run old "$old" "$round"; run new "$new" "$round"
    else
        run new "$new" "$round"; run old "$old" "$round"
    fi
done
