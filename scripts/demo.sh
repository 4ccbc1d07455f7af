#!/usr/bin/env bash
# The main job on the embedded example: publish examples/provisioning with the example vault
# (keys-example/, PUBLIC and INSECURE, demonstration only) into ./out, then audit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
# git does not keep file modes; polyseal wants secret files readable by their owner only.
chmod -R go-rwx keys-example/vault keys-example/identity.txt
# POLYSEAL_BIN lets the test that runs this script use the binary it already built.
polyseal=${POLYSEAL_BIN:-}
if [ -z "$polyseal" ]; then
    cargo build --release --quiet -p polyseal
    polyseal=target/release/polyseal
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
