#!/usr/bin/env bash
# Runs every test of the workspace, after installing the real tools the tests use.
# A test whose tool is missing fails; none skips.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
cargo test --workspace "$@"
