#!/usr/bin/env bash
# A real two-node Slurm cluster on this one machine, for the Slurm executor's tests and benches:
# Debian's slurmctld, one slurmd per node (n1 and n2, one CPU each, both on this host) and munge,
# started as plain daemons (no systemd) with every file under one folder.
#
#   scripts/slurm-cluster.sh start    # installs the packages if missing (apt-get, as root)
#   export SLURM_CONF=$LTHLANG_SLURM_DIR/etc/slurm.conf   # default folder: /tmp/lthlang-slurm
#   scripts/slurm-cluster.sh stop     # cancels every job and stops the daemons
#   scripts/slurm-cluster.sh conf     # prints the SLURM_CONF path
#
# Settings that matter to lthlang: `DependencyParameters=kill_invalid_depend` (a failed job's
# dependants are cancelled instead of pending forever), `MinJobAge=3600` (finished jobs stay in
# `squeue -t all`, which the executor reads), and `jobcomp/filetxt` (one line per finished job in
# log/jobcomp.txt, naming the node it ran on). Cgroup plugins are left out: they would need
# /sys/fs/cgroup. Jobs run as the submitting user, in the submitting folder, with its environment.
set -euo pipefail
DIR=${LTHLANG_SLURM_DIR:-/tmp/lthlang-slurm}
NODES=${LTHLANG_SLURM_NODES:-2}
CONF=$DIR/etc/slurm.conf
SOCKET=$DIR/munge/run/munge.socket.2
export SLURM_CONF=$CONF

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=0
  for tool in slurmctld slurmd sbatch munged mungekey; do command -v "$tool" >/dev/null || missing=1; done
  [ "$missing" -eq 0 ] && return
  echo "slurm-cluster: installing slurmctld, slurmd, slurm-client and munge" >&2
  local as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  # Their postinst scripts try to start services and are refused without systemd: harmless.
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null 2>&1
}

start_munge() {
  mkdir -p "$DIR/munge/run" "$DIR/munge/lib" "$DIR/munge/log"
  chmod 755 "$DIR/munge" "$DIR/munge/run"
  chmod 700 "$DIR/munge/lib" "$DIR/munge/log"
  [ -s "$DIR/munge/munge.key" ] || mungekey --create --keyfile="$DIR/munge/munge.key"
  chmod 400 "$DIR/munge/munge.key"
  if ! alive "$DIR/munge/run/munged.pid"; then
    rm -f "$SOCKET" "$SOCKET.lock"
    munged --key-file="$DIR/munge/munge.key" --socket="$SOCKET" --pid-file="$DIR/munge/run/munged.pid" \
      --seed-file="$DIR/munge/lib/munged.seed" --log-file="$DIR/munge/log/munged.log"
  fi
  # A credential that round-trips proves the daemon and the key work before Slurm relies on them.
  munge -S "$SOCKET" -n | unmunge -S "$SOCKET" >/dev/null
}

write_conf() {
  local host memory names=""
  host=$(hostname -s)
  # Memory as slurmd measures it, split between the nodes so their sum is the real machine.
  memory=$(slurmd -C | head -1 | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  memory=$(( ${memory:-2048} / NODES ))
  mkdir -p "$DIR/etc"
  {
    echo "ClusterName=lthlang"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    echo "AuthInfo=socket=$SOCKET"
    echo "SlurmctldPort=${LTHLANG_SLURM_PORT:-6817}"
    echo "SlurmdPort=6818"
    echo "StateSaveLocation=$DIR/state"
    echo "SlurmdSpoolDir=$DIR/spool/%n"
    echo "SlurmctldPidFile=$DIR/run/slurmctld.pid"
    echo "SlurmdPidFile=$DIR/run/slurmd-%n.pid"
    echo "SlurmctldLogFile=$DIR/log/slurmctld.log"
    echo "SlurmdLogFile=$DIR/log/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "MpiDefault=none"
    echo "SchedulerType=sched/backfill"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/filetxt"
    echo "JobCompLoc=$DIR/log/jobcomp.txt"
    echo "DependencyParameters=kill_invalid_depend"
    echo "ReturnToService=2"
    echo "MinJobAge=3600"
    echo "MailProg=/bin/true"
    for i in $(seq 1 "$NODES"); do
      # Each slurmd listens on a port of its own, since all of them share this host's address.
      echo "NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((17000 + i)) CPUs=1 RealMemory=$memory State=UNKNOWN"
      names+="${names:+,}n$i"
    done
    echo "PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP"
  } > "$CONF"
}

start() {
  install_packages
  # Daemons left from an earlier start hold the ports: stop them first.
  if alive "$DIR/run/slurmctld.pid"; then stop; fi
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"
  start_munge
  write_conf
  slurmctld -f "$CONF"
  for i in $(seq 1 "$NODES"); do
    mkdir -p "$DIR/spool/n$i"
    slurmd -f "$CONF" -N "n$i"
  done
  for _ in $(seq 1 60); do
    if [ "$(sinfo -h -o %T 2>/dev/null | sort -u)" = idle ]; then
      echo "slurm-cluster: $NODES nodes idle; export SLURM_CONF=$CONF" >&2
      return
    fi
    sleep 0.5
  done
  echo "slurm-cluster: the nodes did not become idle; see $DIR/log" >&2
  sinfo -N >&2 || true
  exit 1
}

stop() {
  local ids
  ids=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id per word
    scancel $ids 2>/dev/null || true
    sleep 1
  fi
  for pidfile in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/munge/run/munged.pid"; do
    alive "$pidfile" || continue
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  conf) echo "$CONF" ;;
  *) echo "usage: $0 start|stop|conf" >&2; exit 2 ;;
esac
