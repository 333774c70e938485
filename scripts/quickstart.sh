#!/usr/bin/env bash
# The main job: build lthlang and run the quickstart experiment (synthetic shapes, resnet_tiny,
# CPU): train, prune six rounds with IMP and at random, explain every round by concepts (PCBM)
# and pixels (Grad-CAM), compare, and write the report. A second call finds everything cached.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
echo "lthlang: building lthlang and its worker (release; the first build takes about 5 minutes)" >&2
cargo build --release --workspace --bins
lthlang=./target/release/lthlang
$lthlang check experiments/quickstart.lth
$lthlang run experiments/quickstart.lth "$@"
