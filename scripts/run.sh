#!/usr/bin/env bash
# The main job: builds shmq, starts the shmqd watchdog, and runs the live demo
# (one producer process, two consumer processes, one of them killed midway),
# then shows the queue with shmq-stat. Everything runs in namespace "demo".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default >/dev/null
targets=(shmq-demo)
[ -f daemon/CMakeLists.txt ] && targets+=(shmqd)
[ -f tools/CMakeLists.txt ] && targets+=(shmq_tool shmq_stat)
echo "run: building ${targets[*]} (log: build/run-build.log)"
cmake --build --preset default -j "$(nproc)" --target "${targets[@]}" >build/run-build.log 2>&1 ||
  { tail -30 build/run-build.log; exit 1; }

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
