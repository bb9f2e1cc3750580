#!/usr/bin/env bash
# Builds shmq and runs every test. Usage: scripts/test.sh [default|tsan|asan]
#   default  the normal build (build/), all tests
#   tsan     ThreadSanitizer build (build-tsan/), the concurrency, crash and bridge tests
#   asan     Address+UndefinedBehavior build (build-asan/), all tests
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
scripts/install-deps.sh
jobs="$(nproc)"
# ThreadSanitizer runs the tests of four binaries: it builds only those
# (and what they run: shmqd, shmq-bridge), not the whole tree. The bridge's
# add about 2 min of build and 20 s of tests on 2 CPUs.
case "$preset" in
  tsan) targets=(--target concurrency_tests multiprocess_tests daemon_tests bridge_tests)
        filter=(-L 'concurrency_tests|multiprocess_tests|daemon_tests|bridge') ;;
  *) targets=(); filter=() ;;
esac
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs" "${targets[@]}"
ctest --preset "$preset" -j "$jobs" --output-on-failure "${filter[@]}"
