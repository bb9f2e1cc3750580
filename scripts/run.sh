#!/usr/bin/env bash
# The main job: builds shmq, starts the shmqd watchdog, and runs the live demo
# (one producer process, two consumer processes, one of them killed midway),
# then shows the queue with shmq-stat; then a durable queue through a
# simulated power loss. Everything runs in namespace "demo".
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
  export SHMQ_DATA_DIR="$data_dir"  # where shmqd journals, and where shmq finds the journal
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

# A durable queue through a simulated power loss: shmqd journals it; its group
# 'audit' reads nothing while 10 rings of lines are sent, so it falls behind and
# reads the journal instead of stalling the sender; then shmqd is killed and the
# shared memory removed, and a new shmqd rebuilds the queue from its journal.
# Every line confirmed durable comes back, and a new group replays them all.
if [ -n "$daemon_pid" ] && [ -x "$bin/tools/shmq" ]; then
  shmq="$bin/tools/shmq"
  echo
  echo "run: durable queue 'ledger' (a 64 KiB ring): 10000 lines sent with --durable (confirmed once on disk)"
  "$shmq" create ledger --durable --capacity 64K
  "$shmq" recv ledger --group audit --count 0 --timeout 1ms >/dev/null  # the group exists before the sends
  seq 1 10000 | sed 's/^/entry /' | "$shmq" send ledger --producer books --durable --timeout 30s
  "$bin/tools/shmq-stat" ledger --sample 0 | grep -E "journal|audit" | sed 's/^/  /'
  echo "run: power loss: kill -9 shmqd, remove /dev/shm/shmq.demo.ledger"
  kill -KILL "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  rm -f /dev/shm/shmq.demo.ledger
  "$bin/daemon/shmqd" --namespace demo --data-dir "$data_dir" --foreground 2>>"$data_dir/shmqd.log" &
  daemon_pid=$!
  sleep 0.5
  grep "rebuilt" "$data_dir/shmqd.log" | sed 's/^/  shmqd: /'
  got=$("$shmq" recv ledger --group audit --timeout 500ms | wc -l)
  echo "run: group 'audit' received $got of 10000 entries after the rebuild (flagged redelivered)"
  got=$("$shmq" recv ledger --group replay --from oldest --timeout 500ms | wc -l)
  echo "run: a new group 'replay' --from oldest received $got entries, read from the journal"
  "$shmq" delete ledger 2>/dev/null
fi
