#!/usr/bin/env bash
# Benchmarks `polyseal rollout` on a fleet of N phones against `publish` of the same fleet,
# side by side in one run: `rollout start` (every key made, every per-phone file in plaintext)
# against `publish` from nothing into another vault; `rollout advance` of a 25 % wave against
# `publish` again with nothing changed; `rollout status` over a ledger of one boot per phone,
# and over the same boots as nginx's access log records them (no KeyDesc: each per-phone file
# a phone fetched is read in the published tree).
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

measure_width=46
# shellcheck source=bench/lib.sh
source bench/lib.sh

# One boot per phone after its wave, as serve's ledger records it (FORMAT=ledger) or nginx's
# access log in polyseal's format (FORMAT=nginx): the key file, its encrypted -sip.cfg,
# site.cfg, then its master again (a poll).
boots() { # format first_phone count
    python3 - "$1" "$2" "$3" <<'PY'
import sys, time
form, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seconds = time.time() + 1
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
for n in range(first, first + count):
    mac = "0004f2%06x" % (n + 1)
    for path, extra in ((f"/{mac}-key.cfg", f',"key_served":"{mac}-g1"'),
                        (f"/{mac}-sip.cfg", f',"key_desc":"{mac}-g1"'),
                        ("/site.cfg", ""), ("/000000000000.cfg", "")):
        if form == "nginx":
            print(f'{{"time":{seconds:.3f},"mac":"{mac}","client":"","method":"GET",'
                  f'"path":"{path}","status":200,"bytes":100}}')
        else:
            print(f'{{"time":"{now}","mac":"{mac}","method":"GET","path":"{path}",'
                  f'"status":200,"bytes":100{extra}}}')
PY
}

machine
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
boots ledger 0 1 >> "$work/ledger.jsonl"
sleep 2
POLYSEAL_VAULT=$work/vault-publish measure "publish again, nothing changed" \
    "$polyseal" -q publish --src "$work/src" --out "$work/out-publish"
measure "rollout advance, a 25 % wave" "$polyseal" -q rollout advance --wave 25 \
    --ledger "$work/ledger.jsonl" --src "$work/src" --out "$work/out"
boots ledger 1 "$((phones / 4))" >> "$work/ledger.jsonl"
boots nginx 0 "$((phones / 4 + 1))" > "$work/access.log"
echo "ledger: $(wc -l < "$work/ledger.jsonl") lines, $(du -sh "$work/ledger.jsonl" | cut -f1)"
measure "status over that ledger" "$polyseal" -q status --ledger "$work/ledger.jsonl" --format json
measure "rollout status over that ledger" "$polyseal" -q rollout status \
    --ledger "$work/ledger.jsonl" --format json
measure "rollout status over nginx's log of it" "$polyseal" -q rollout status \
    --nginx-log "$work/access.log" --out "$work/out" --format json
echo "vault.toml: $(du -h "$work/vault-rollout/vault.toml" | cut -f1)"
