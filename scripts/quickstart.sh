#!/usr/bin/env bash
# The main job: build lthlang and take the quickstart experiment (synthetic shapes, resnet_tiny,
# CPU) as far as the interpreter goes today.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet
lthlang=./target/release/lthlang
$lthlang check experiments/quickstart.lth
$lthlang plan experiments/quickstart.lth
echo
echo "quickstart: checked and planned. The executor (lthlang run) is not built yet, so nothing"
echo "was trained; see the issues listed in README.md under 'Status'."
