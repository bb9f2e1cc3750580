#!/usr/bin/env bash
# Builds shmq and runs every test. Usage: scripts/test.sh [default|tsan|asan]
#   default  the normal build (build/), all tests
#   tsan     ThreadSanitizer build (build-tsan/), the concurrency and crash tests
#   asan     Address+UndefinedBehavior build (build-asan/), all tests
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
scripts/install-deps.sh
jobs="$(nproc)"
# ThreadSanitizer runs the tests of three binaries: it builds only those
# (and what they run: shmqd), not the whole tree.
case "$preset" in
  tsan) targets=(--target concurrency_tests multiprocess_tests daemon_tests)
        filter=(-L 'concurrency_tests|multiprocess_tests|daemon_tests') ;;
  *) targets=(); filter=() ;;
esac
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs" "${targets[@]}"
ctest --preset "$preset" -j "$jobs" --output-on-failure "${filter[@]}"
