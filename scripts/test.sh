#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs libtorch and chromium if missing, then runs
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# The report's browser test (tests/report_browser.rs) opens an HTML report in headless Chromium,
# Debian's `chromium` package.
if ! command -v chromium >/dev/null; then
  echo "lthlang: installing chromium for the report's browser test" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >/dev/null
fi
# The integration tests run `lthlang`, which starts `lthlang-worker` from beside it: build both.
echo "lthlang: building the workspace (release; the first build takes about 5 minutes)" >&2
cargo build --release --workspace --bins
# Layout and lints hold for the whole workspace, tests and benches included.
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
# The front end: its library, binary and the integration tests, in parallel (the Slurm tests
# skip themselves here: SLURM_CONF is not set yet).
env -u SLURM_CONF cargo test --release -p lthlang "$@"
# The Slurm executor's tests, on a real two-node cluster on this machine, one test at a time so
# each has both nodes; the cluster is stopped however the tests end.
scripts/slurm-cluster.sh start
trap 'scripts/slurm-cluster.sh stop' EXIT
SLURM_CONF=$(scripts/slurm-cluster.sh conf) cargo test --release -p lthlang --test slurm "$@" -- --test-threads=1
# The worker's tests run one at a time: libtorch has one random generator per process, and
# tests that seed it and then draw (to build a network, or its inputs) must not interleave.
cargo test --release -p lthlang-worker --lib --bins "$@" -- --test-threads=1
# The editor's TextMate grammar, on its own assertions and on every shipped file (npm installs
# the test tool into editors/vscode/node_modules once).
editors/vscode/test/grammar.sh
