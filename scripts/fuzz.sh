#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on the stable toolchain: the targets are built with
# the coverage instrumentation cargo-fuzz uses (sancov), whose flags are all stable, and run by
# libFuzzer directly. Usage: bash scripts/fuzz.sh [SECONDS per target, default 20].
# A crash stops the run with libFuzzer's report and the input that caused it (crash-*).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target, RUSTFLAGS instrument the targets but not build scripts (which
# could not link without libFuzzer).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --manifest-path fuzz/Cargo.toml --target-dir fuzz/target --target "$host"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
for target in header decrypt scan vault_files; do
    mkdir -p "$corpus/$target"
    echo "== fuzz $target for ${seconds}s"
    fuzz/target/"$host"/release/"$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="fuzz/$target-" "$corpus/$target"
done
