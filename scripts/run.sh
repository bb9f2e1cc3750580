#!/usr/bin/env bash
# The main job: builds shmq, starts the shmqd watchdog, and runs the live demo
# (one producer process, two consumer processes, one of them killed midway),
# then shows the queue with shmq-stat. Everything runs in namespace "demo".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target shmq-demo $( [ -f daemon/CMakeLists.txt ] && echo shmqd ) \
  $( [ -f tools/CMakeLists.txt ] && echo shmq shmq-stat )

export SHMQ_NAMESPACE=demo
bin=build
daemon_pid=""
if [ -x "$bin/daemon/shmqd" ]; then
  data_dir="$(mktemp -d /tmp/shmq-demo.XXXXXX)"
  "$bin/daemon/shmqd" --namespace demo --data-dir "$data_dir" --foreground 2>"$data_dir/shmqd.log" &
  daemon_pid=$!
  trap 'kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; rm -rf "$data_dir"' EXIT
  sleep 0.3
  echo "run: shmqd started (pid $daemon_pid, log $data_dir/shmqd.log)"
fi
"$bin/examples/shmq-demo" "${1:-1000000}"
if [ -x "$bin/tools/shmq-stat" ]; then
  echo
  "$bin/tools/shmq-stat" demo
fi
