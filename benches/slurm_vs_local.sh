#!/usr/bin/env bash
# The quickstart through the two-node test cluster against the local executor, in one run:
# wall time of each, whether metrics.json is byte-identical, and the per-job overhead of Slurm
# (submission to start: queueing and launch; start to first event: lthlang and libtorch loading
# in the job). Every figure comes from this run; nothing is hard-coded.
#
#   benches/slurm_vs_local.sh [EXPERIMENT [RUN ARGS...]]   # default experiments/quickstart.lth
#   benches/slurm_vs_local.sh experiments/quickstart.lth --smoke 2   # both runs get `--smoke 2`
#
# Needs the release build (cargo build --release --workspace --bins). Starts the test cluster
# when SLURM_CONF is unset, and stops it again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
experiment=${1:-experiments/quickstart.lth}
shift $(( $# > 0 ? 1 : 0 ))
run_args=("$@")
lthlang=$PWD/target/release/lthlang
work=$(mktemp -d "$PWD/target/slurm-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "${SLURM_CONF:-}" ]; then
  scripts/slurm-cluster.sh start
  trap 'scripts/slurm-cluster.sh stop; rm -rf "$work"' EXIT
  SLURM_CONF=$(scripts/slurm-cluster.sh conf)
  export SLURM_CONF
fi
name=$(basename "$experiment")
mkdir -p "$work/local" "$work/slurm"
cp "$experiment" "$work/local/$name"
cp "$experiment" "$work/slurm/$name"

timed() { # label, folder, extra args...
  local label=$1 dir=$2; shift 2
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && "$lthlang" run "$name" --cache cache --json ${run_args[@]+"${run_args[@]}"} "$@" > events.jsonl)
  end=$(date +%s.%N)
  echo "$label $(python3 -c "print(f'{$end - $start:.1f}')")" >> "$work/walls"
}
timed local "$work/local"
timed slurm "$work/slurm" --executor slurm

python3 - "$work" "${name%.lth}" "${run_args[*]:-}" <<'PY'
import json, os, sys, statistics, glob
work, experiment, run_args = sys.argv[1], sys.argv[2], sys.argv[3]
walls = dict(line.split() for line in open(os.path.join(work, "walls")))
# A smoke run writes runs/<experiment>-smoke/ and keeps its cache (Slurm records included) in
# cache/smoke-N/: take whichever run folder and records folder the runs made.
def one(pattern):
    found = sorted(glob.glob(pattern, recursive=True))
    if len(found) != 1:
        sys.exit(f"expected one match of {pattern}, found {found}")
    return found[0]
local_metrics = one(f"{work}/local/runs/{experiment}*/metrics.json")
slurm_metrics = one(f"{work}/slurm/runs/{experiment}*/metrics.json")
same = open(local_metrics, "rb").read() == open(slurm_metrics, "rb").read()
cache = os.path.dirname(one(f"{work}/slurm/cache*/**/slurm/jobs"))
jobs, clocks = {}, {}
for record in glob.glob(f"{cache}/jobs/*.json"):
    job = json.load(open(record))
    jobs[job["key"]] = job
    clocks[job["key"]] = {}
    for line in open(f"{cache}/logs/{job['key']}-{job['job']}.log"):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "clock" in event:
            clocks[job["key"]][event["clock"]] = event["at"]
queue, launch, hosts = [], [], {}
for key, job in jobs.items():
    c = clocks[key]
    if "start" not in c:
        continue
    # A job may start once it is submitted and every job it reads from has ended: the time from
    # then to its start is Slurm's scheduling and launch, not waiting on inputs; but when both
    # nodes are busy with other ready jobs it also holds the wait for a free node.
    request = json.load(open(f"{cache}/requests/{key}.json"))["request"]
    inputs = [os.path.basename(u["dir"]) for u in request["upstream"]]
    ready = max([job["submitted"]] + [clocks[k]["end"] for k in inputs if k in clocks and "end" in clocks[k]])
    queue.append(c["start"] - ready)
    if "first_event" in c:
        launch.append(c["first_event"] - c["start"])
for line in open(f"{work}/slurm/events.jsonl"):
    event = json.loads(line)
    if event.get("event") == "job" and event.get("host"):
        hosts[event["node"]] = event["host"]
def describe(values):
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} jobs" if values else "no jobs"
print(f"experiment                 {experiment} {run_args}".rstrip())
print(f"local (--jobs 1) wall      {walls['local']} s")
print(f"slurm (2 nodes) wall       {walls['slurm']} s  ({float(walls['slurm']) / float(walls['local']):.2f}x local)")
print(f"metrics.json identical     {same}")
print(f"jobs per node              {dict(sorted({h: list(hosts.values()).count(h) for h in set(hosts.values())}.items()))}")
print(f"ready -> job start         {describe(queue)}  (ready: submitted and every input's job ended; includes waiting for a free node)")
print(f"job start -> first event   {describe(launch)}")
PY
