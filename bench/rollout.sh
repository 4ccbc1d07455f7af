#!/usr/bin/env bash
# Benchmarks `polyseal rollout` on a fleet of N phones against `publish` of the same fleet,
# side by side in one run: `rollout start` (every key made, every per-phone file in plaintext)
# against `publish` from nothing into another vault; `rollout advance` of a 25 % wave against
# `publish` again with nothing changed; `rollout status` over a ledger of one boot per phone.
# Results go in docs/PERFORMANCE.md.
#
# Usage: bash bench/rollout.sh [N=100000]
# Needs: cargo, python3, age-keygen, /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
phones=${1:-100000}
work=$(mktemp -d /var/tmp/polyseal-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p polyseal
polyseal=$PWD/target/release/polyseal
python3 bench/make-fleet.py "$phones" "$work/src"
# Every phone must upload encrypted for a rollout (docs/ROLLOUT.md).
sed -i 's|</polycomConfig>|<sec sec.encryption.upload.overrides="1"/></polycomConfig>|' \
    "$work/src/site.cfg"
age-keygen -o "$work/identity.txt" 2>/dev/null
export POLYSEAL_IDENTITY=$work/identity.txt
for vault in vault-publish vault-rollout; do
    POLYSEAL_VAULT=$work/$vault "$polyseal" -q init --recipient "$work/identity.txt"
done

measure() { # label command...
    local label=$1; shift
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >/dev/null
    read -r seconds kib user system < "$work/time"
    printf '%-46s %8.2f s wall %8.1f MB peak RSS  (CPU: %.1f s user, %.1f s system)\n' \
        "$label" "$seconds" "$(echo "$kib / 1024" | bc -l)" "$user" "$system"
}

# One boot per phone after its wave, as serve's ledger records it: the key file, its
# encrypted -sip.cfg, site.cfg, then its master again (a poll).
ledger_of_boots() { # first_phone count
    python3 - "$1" "$2" <<'PY'
import sys, time
first, count = int(sys.argv[1]), int(sys.argv[2])
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
for n in range(first, first + count):
    mac = "0004f2%06x" % (n + 1)
    for path, extra in ((f"/{mac}-key.cfg", f',"key_served":"{mac}-g1"'),
                        (f"/{mac}-sip.cfg", f',"key_desc":"{mac}-g1"'),
                        ("/site.cfg", ""), ("/000000000000.cfg", "")):
        print(f'{{"time":"{now}","mac":"{mac}","method":"GET","path":"{path}",'
              f'"status":200,"bytes":100{extra}}}')
PY
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m), $(rustc --version)"
echo "fleet: $phones phones, $(du -sh "$work/src" | cut -f1) of source"
sync
POLYSEAL_VAULT=$work/vault-publish measure "publish, from nothing ($phones phones)" \
    "$polyseal" -q publish --src "$work/src" --out "$work/out-publish"
export POLYSEAL_VAULT=$work/vault-rollout
measure "rollout start, from nothing ($phones phones)" \
    "$polyseal" -q rollout start --src "$work/src" --out "$work/out"
"$polyseal" -q format set --i-accept-the-risk digest=sha256
: > "$work/ledger.jsonl"
"$polyseal" -q rollout advance --ledger "$work/ledger.jsonl" --src "$work/src" --out "$work/out"
ledger_of_boots 0 1 >> "$work/ledger.jsonl"
sleep 2
POLYSEAL_VAULT=$work/vault-publish measure "publish again, nothing changed" \
    "$polyseal" -q publish --src "$work/src" --out "$work/out-publish"
measure "rollout advance, a 25 % wave" "$polyseal" -q rollout advance --wave 25 \
    --ledger "$work/ledger.jsonl" --src "$work/src" --out "$work/out"
ledger_of_boots 1 "$((phones / 4))" >> "$work/ledger.jsonl"
echo "ledger: $(wc -l < "$work/ledger.jsonl") lines, $(du -sh "$work/ledger.jsonl" | cut -f1)"
measure "status over that ledger" "$polyseal" -q status --ledger "$work/ledger.jsonl" --format json
measure "rollout status over that ledger" "$polyseal" -q rollout status \
    --ledger "$work/ledger.jsonl" --format json
echo "vault.toml: $(du -h "$work/vault-rollout/vault.toml" | cut -f1)"
