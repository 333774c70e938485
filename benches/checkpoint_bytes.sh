#!/usr/bin/env bash
# Bytes written per training epoch of ResNet-50 (issue 13, "Checkpoints"): trains the same
# ResNet-50 on 16 tiny synthetic images for 1 and for 4 epochs, each from an empty cache, and
# divides the difference in bytes written by 3. Everything but the epochs (dataset, initial
# weights, final weights, report) is the same in both runs, so it cancels.
#
# Bytes are the `wchar` and `write_bytes` of /proc/<shell>/io after the run: the kernel adds a
# reaped child's I/O counters to its parent's, so the shell that waited for `lthlang` counts
# lthlang's and its worker's writes too. `wchar` is every byte passed to write(2) (checkpoints
# are written that way); `write_bytes` is what reached the storage layer (0 on tmpfs).
#
# Usage: benches/checkpoint_bytes.sh [path/to/lthlang]   (default target/release/lthlang)
set -euo pipefail
LTHLANG=${1:-$(dirname "$0")/../target/release/lthlang}
LTHLANG=$(realpath "$LTHLANG")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
measure() {
  local epochs=$1
  mkdir -p "$work/$epochs"
  cat >"$work/$epochs/bytes.lth" <<LTH
dataset data = shapes { classes = 4  train = 16  val = 10  test = 10  image = 32  seed = 3 }
model net = resnet50 { classes = data.classes }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = $epochs  batch = 16  lr = 0.01 }
LTH
  bash -c '"$1" run "$2" --cache "$3" --colour never -q >/dev/null 2>"$3.log" || { cat "$3.log" >&2; exit 1; }
           awk "/^(wchar|write_bytes):/ { printf \"%s \", \$2 }" /proc/$$/io' \
    _ "$LTHLANG" "$work/$epochs/bytes.lth" "$work/$epochs/cache"
}
read -r w1 b1 <<<"$(measure 1)"
read -r w4 b4 <<<"$(measure 4)"
awk -v w1="$w1" -v w4="$w4" -v b1="$b1" -v b4="$b4" 'BEGIN {
  printf "1 epoch:  wchar %d, write_bytes %d\n4 epochs: wchar %d, write_bytes %d\n", w1, b1, w4, b4
  printf "per epoch: %.1f MB passed to write(2), %.1f MB to storage\n", (w4 - w1) / 3 / 1e6, (b4 - b1) / 3 / 1e6
}'
