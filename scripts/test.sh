#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs libtorch if missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo test --release "$@"
