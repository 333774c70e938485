#!/usr/bin/env bash
# The CUDA checks of issue 13, for when a machine with an NVIDIA GPU is at hand:
#   1. builds lthlang, its worker and the CUDA bench;
#   2. runs every test that needs CUDA, with LTHLANG_REQUIRE_CUDA=1 so that they fail rather
#      than skip when libtorch sees no device;
#   3. runs the quickstart with `device = cuda` (a copy in a temporary folder, with its own cache)
#      and checks that its nodes ran on cuda:0;
#   4. times ResNet-50 training on 448-px images in the worker (bf16, channels-last) against
#      PyTorch eager with AMP and channels-last, in turn, twice each, and prints the ratio of the
#      best runs and each side's peak device memory (memory.used from nvidia-smi, sampled every
#      0.2 s, above what was in use before it started; the CUDA context is included on both sides).
# Usage: scripts/gpu-check.sh [--no-bench]. Bench settings: LTHLANG_GPU_BENCH_{IMAGES,SIZE,BATCH,
# EPOCHS,PRECISION,CLASSES} (defaults 2048, 448, 64, 3, bf16, 200), passed to both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

bench=1
case "${1:-}" in
  --no-bench) bench=0 ;;
  "") ;;
  *) echo "usage: scripts/gpu-check.sh [--no-bench]" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*"; }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: nvidia-smi sees no GPU; run this on a machine with an NVIDIA GPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=index,name,memory.total,compute_cap,driver_version --format=csv
export LTHLANG_REQUIRE_CUDA=1

step "building (release)"
cargo build --release --workspace --bins
cargo test --release -p lthlang-worker --lib --no-run
cargo test --release -p lthlang --test runs_as_written --no-run
if [ "$bench" = 1 ]; then
  cargo bench -p lthlang-worker --bench gpu_throughput --no-run
fi

step "tests that need CUDA"
# Every CUDA test has `cuda` in its name; each fails under LTHLANG_REQUIRE_CUDA=1 without a device.
cargo test --release -p lthlang-worker --lib -- cuda --nocapture
cargo test --release -p lthlang --test runs_as_written -- cuda

step "quickstart on the GPU"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed 's/^\([[:space:]]*device[[:space:]]*=[[:space:]]*\)auto[[:space:]]*$/\1cuda/' experiments/quickstart.lth > "$work/quickstart.lth"
if ! grep -q '^[[:space:]]*device[[:space:]]*=[[:space:]]*cuda[[:space:]]*$' "$work/quickstart.lth"; then
  echo "gpu-check: could not set \`device = cuda\` in a copy of experiments/quickstart.lth" >&2
  exit 1
fi
started=$SECONDS
./target/release/lthlang run "$work/quickstart.lth"
echo "quickstart on the GPU: $((SECONDS - started)) s"
timings=$(find "$work/runs" -name timings.json -print -quit)
if [ -z "$timings" ] || ! grep -q '"cuda:0"' "$timings"; then
  echo "gpu-check: the quickstart's timings.json does not record cuda:0 (${timings:-no timings.json})" >&2
  exit 1
fi

if [ "$bench" = 0 ]; then
  step "done (bench skipped)"
  exit 0
fi

step "ResNet-50, 448 px: the worker against PyTorch eager (AMP, channels-last)"
images=${LTHLANG_GPU_BENCH_IMAGES:-2048}
size=${LTHLANG_GPU_BENCH_SIZE:-448}
batch=${LTHLANG_GPU_BENCH_BATCH:-64}
epochs=${LTHLANG_GPU_BENCH_EPOCHS:-3}
precision=${LTHLANG_GPU_BENCH_PRECISION:-bf16}
classes=${LTHLANG_GPU_BENCH_CLASSES:-200}
export LTHLANG_GPU_BENCH_IMAGES=$images LTHLANG_GPU_BENCH_SIZE=$size LTHLANG_GPU_BENCH_BATCH=$batch \
  LTHLANG_GPU_BENCH_EPOCHS=$epochs LTHLANG_GPU_BENCH_PRECISION=$precision LTHLANG_GPU_BENCH_CLASSES=$classes
echo "$images images of $size px, batch $batch, $epochs timed epochs after one warm-up, $precision, $classes classes"

used_mib() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | tr -d ' '; }

# measure OUT -- COMMAND...: runs COMMAND with its stdout in OUT and prints the peak device memory
# it added, in MiB.
measure() {
  local out=$1 base peak used pid status=0
  shift
  base=$(used_mib)
  peak=$base
  "$@" >"$out" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    used=$(used_mib)
    if [ "$used" -gt "$peak" ]; then peak=$used; fi
    sleep 0.2
  done
  wait "$pid" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "gpu-check: \`$*\` failed with status $status" >&2
    return "$status"
  fi
  echo $((peak - base))
}

python=$LTHLANG_TORCH_ENV/bin/python
for round in 1 2; do
  ours_mib=$(measure "$work/ours-$round.json" cargo bench -q -p lthlang-worker --bench gpu_throughput)
  echo "$ours_mib" >"$work/ours-$round.mib"
  torch_mib=$(measure "$work/torch-$round.json" "$python" worker/benches/torch_eager_gpu.py \
    "$images" "$size" "$batch" "$epochs" "$precision" "$classes")
  echo "$torch_mib" >"$work/torch-$round.mib"
  echo "round $round: worker $(tail -n 1 "$work/ours-$round.json")"
  echo "round $round: PyTorch $(tail -n 1 "$work/torch-$round.json")"
done

"$python" - "$work" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
def side(name):
    runs = [(json.loads((work / f"{name}-{r}.json").read_text().strip().splitlines()[-1]),
             int((work / f"{name}-{r}.mib").read_text())) for r in (1, 2)]
    return max(r[0]["images_per_second"] for r in runs), max(r[1] for r in runs), runs[-1][0]
ours, ours_mib, _ = side("ours")
torch, torch_mib, last = side("torch")
print(f"worker   {ours:8.1f} images/s   peak device memory {ours_mib:6d} MiB (nvidia-smi)")
print(f"PyTorch  {torch:8.1f} images/s   peak device memory {torch_mib:6d} MiB (nvidia-smi; "
      f"allocator peak {last['max_memory_allocated_mb']:.0f} MiB allocated, {last['max_memory_reserved_mb']:.0f} MiB reserved)")
print(f"ratio (worker / PyTorch): {ours / torch:.2f}")
PY
