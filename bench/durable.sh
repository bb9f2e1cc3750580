#!/usr/bin/env bash
# Durable sends against non-durable ones, in one run: starts its own shmqd (a
# private namespace and data directory on the disk under test), then runs
# shmq-bench throughput for 1 and 4 producers:
#   shared    sends confirmed in shared memory (the default)
#   stream    durable queue, sends stream on; a watcher times each confirm
#   each      durable queue, every send waits for its own confirm (fsync)
# and shmq-replay-bench: one consumer reading the journal against the ring.
# Usage: bench/durable.sh [BUILD_DIR] [DATA_DIR]
#   BUILD_DIR  default build;  DATA_DIR  default BUILD_DIR/bench-durable (the disk whose fsync is measured)
#   SHMQ_BENCH_WAIT=spin  busy-polling sides instead of blocking ones
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
data="${2:-$build/bench-durable}"
bench="$build/bench/shmq-bench"
# Blocking sides: on a small machine spinning producers and consumers would
# take the CPUs from shmqd's journal threads.
wait="${SHMQ_BENCH_WAIT:-block}"
export SHMQ_NAMESPACE="benchdurable$$"
# Consumers that fall a ring behind read the journal: they find it here, as shmqd does.
export SHMQ_DATA_DIR="$data"
rm -rf "$data" && mkdir -p "$data" && chmod 700 "$data"
"$build/daemon/shmqd" --data-dir "$data" --log-level warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$data"' EXIT
sleep 0.3
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, data dir $data on $(df --output=source,fstype "$data" | tail -1)"
for producers in 1 4; do
  "$bench" throughput --wait "$wait" --producers "$producers" --messages 1000000 | sed "s/^/shared p$producers: /"
  "$bench" throughput --wait "$wait" --producers "$producers" --messages 1000000 --durable | sed "s/^/stream p$producers: /"
  "$bench" throughput --wait "$wait" --producers "$producers" --messages 20000 --durable --confirm-each |
    sed "s/^/each p$producers: /"
done
"$build/bench/shmq-replay-bench" 500000 | sed "s/^/replay: /"
