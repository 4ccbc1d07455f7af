#!/usr/bin/env bash
# The main job on the embedded example: publish examples/provisioning with the example vault
# (keys-example/, PUBLIC and INSECURE, demonstration only) into ./out, audit the result, then
# serve it on loopback (polyseal serve, a throwaway test PKI) to the example's three phones,
# simulated, one of them given a file it cannot decrypt, and show what polyseal status makes of
# the ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
# git does not keep file modes; polyseal wants secret files readable by their owner only.
chmod -R go-rwx keys-example/vault keys-example/identity.txt
# POLYSEAL_BIN and BOOT_FLEET_BIN let the test that runs this script use what it already built.
polyseal=${POLYSEAL_BIN:-}
boot_fleet=${BOOT_FLEET_BIN:-}
if [ -z "$polyseal" ]; then
    cargo build --release --quiet -p polyseal --bin polyseal --example boot_fleet
    polyseal=target/release/polyseal
    boot_fleet=target/release/examples/boot_fleet
fi
export POLYSEAL_VAULT=keys-example/vault POLYSEAL_IDENTITY=keys-example/identity.txt

echo "== polyseal publish --src examples/provisioning --out out"
"$polyseal" publish --src examples/provisioning --out out
echo
echo "== what a phone is served (ls -l out; key files are 0600, per-phone files encrypted)"
ls -l out
"$polyseal" inspect out/*
echo
echo "== polyseal audit --tree out"
"$polyseal" audit --tree out
echo
echo "== polyseal serve on loopback, the three phones booted by the simulator, 64167fa10003"
echo "   given a file it cannot decrypt"
"$boot_fleet" "$polyseal" out "$POLYSEAL_VAULT" 64167fa10003
