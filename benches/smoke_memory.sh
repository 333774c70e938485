#!/usr/bin/env bash
# Runs `lthlang run --smoke N FILE` on a CUB-layout folder and samples the worker's anonymous
# memory (RssAnon in /proc/<pid>/status) every 0.2 s, printing its peak and the run's per-node
# times. Compare a full-size folder with a quarter-size one (benches/make_cub.py --fraction 0.25):
#   benches/smoke_memory.sh /data/full/CUB_200_2011 /tmp/cache-full
#   benches/smoke_memory.sh /data/quarter/CUB_200_2011 /tmp/cache-quarter
# Build first: cargo build --release --workspace --bins. LTHLANG_BIN names another `lthlang` (with
# its worker beside it), so that a rebuild during a long run does not swap the worker under it.
set -euo pipefail
root=$1
cache=$2
file=${3:-experiments/cub200_resnet50.lth}
batches=${SMOKE_BATCHES:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${LTHLANG_BIN:-$here/target/release/lthlang}
CUB_ROOT=$root "$bin" run --smoke "$batches" --json --cache "$cache" "$file" > "$cache.events.jsonl" &
run=$!
peak=0
while kill -0 "$run" 2>/dev/null; do
  for pid in $(pgrep -P "$run" -x lthlang-worker || true); do
    kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    if [ "${kb:-0}" -gt "$peak" ]; then peak=$kb; fi
  done
  sleep 0.2
done
wait "$run" && status=0 || status=$?
echo "exit status $status; worker peak RssAnon: $((peak / 1024)) MiB"
name=$(basename "$file" .lth)
timings="$(dirname "$file")/runs/$name-smoke/timings.json"
[ -f "$timings" ] && python3 -c "
import json,sys
t=json.load(open(sys.argv[1]))
for n in t.get('nodes', t if isinstance(t, list) else []):
    outcome = n['outcome']['status'] if isinstance(n['outcome'], dict) else n['outcome']
    print(f\"{n['id']:40s} {outcome:10s} {n['seconds']:8.1f} s\")
" "$timings"
