#!/usr/bin/env bash
# Stops the single-node Slurm that slurm-up.sh started: each daemon by its pid file, waiting until it has exited.
set -uo pipefail
dir="${PIPELINE_SLURM_DIR:-/tmp/pipeline-slurm}"
stop() {
  local pidfile="$1"
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
stop "$dir/slurmd.pid"
stop "$dir/slurmctld.pid"
stop "$dir/slurmdbd.pid"
stop /run/mysqld/mysqld.pid
stop /run/munge/munged.pid
