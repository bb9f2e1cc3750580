#!/usr/bin/env bash
# Fuzzes shmq with libFuzzer: configures a clang build in build-fuzz/ (ASan +
# UBSan, coverage on libshmq, the tools' parsers and the journal), builds the
# fuzz targets of tests/fuzz/ and runs each from its committed corpus.
#   scripts/fuzz.sh [SECONDS [TARGET...]]   total time, shared by the targets
#   (default 60 s; targets: segment parse journal, default all)
# Environment: CXX (default clang++-14), FUZZ_JOBS (fuzzing processes per target, default 1).
# libFuzzer runs in fork mode and goes on after a crash, so the regressions kept
# in the corpus (until fixed) do not stop the search for new ones.
# New coverage found goes to build-fuzz/corpus/<target>/ (the committed corpus
# is only read); crashes go to build-fuzz/crashes/<target>/. A crash input worth
# keeping belongs in tests/fuzz/corpus/<target>/ as a regression: the normal
# build replays that folder as the CTest test fuzz.<target>.corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
total="${1:-60}"
cxx="${CXX:-clang++-14}"
jobs="${FUZZ_JOBS:-1}"
scripts/install-deps.sh  # clang-14 and libclang-rt-14-dev among them
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }

targets=(segment parse journal)
if [ $# -gt 1 ]; then targets=("${@:2}"); fi
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DSHMQ_FUZZ=ON -DSHMQ_SANITIZER=address -DSHMQ_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

per=$(( total / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
export SHMQ_NAMESPACE=fuzz

# Files of fuzz processes that crashed (fuzz_segment's segments, fuzz_journal's
# directories), named by their pid: only those of processes gone.
remove_leftovers() {
  local f pid
  for f in /dev/shm/shmq.fz[0-9]*.q /dev/shm/shmq-fuzz-journal.[0-9]*; do
    [ -e "$f" ] || continue
    pid="${f#/dev/shm/shmq.fz}"; pid="${pid%.q}"; pid="${pid#/dev/shm/shmq-fuzz-journal.}"
    kill -0 "$pid" 2>/dev/null || rm -rf "$f"
  done
}
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
  # New means written by this run: an input that crashed before and still
  # does (a kept regression not yet fixed) is rewritten under its old name.
  stamp="build-fuzz/crashes/.$t.start"
  touch "$stamp"
  echo "fuzz.sh: fuzz_$t for ${per}s"
  # Leaks are not the question here (a failed open may be cut short), and the
  # segment target's inputs are whole 12 KiB segments.
  if ! ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" \
       "build-fuzz/tests/fuzz/fuzz_$t" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
         -max_total_time="$per" -timeout=10 -rss_limit_mb=4096 -max_len=16384 \
         -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 \
         -artifact_prefix="build-fuzz/crashes/$t/" 2>"build-fuzz/fuzz_$t.log"; then
    status=1
    echo "fuzz.sh: fuzz_$t found a crash: see build-fuzz/fuzz_$t.log and build-fuzz/crashes/$t/" >&2
  fi
  # Fork mode's last status line: executions (all jobs'), coverage, corpus,
  # exec/s, crashes. Fork mode prints no stat:: lines: #N is the executions.
  last=$(grep -E "^#[0-9]+: cov:" "build-fuzz/fuzz_$t.log" | tail -1 || true)
  echo "  $t $last"
  execs="${last%%:*}"
  execs="${execs#\#}"
  echo "fuzz.sh: fuzz_$t: ${execs:-unknown} executions in ${per}s"
  # What went wrong, once per kind (sanitizer reports, the targets' own checks).
  grep -hE "SUMMARY: |runtime error: |^fuzz_[a-z]+: " "build-fuzz/fuzz_$t.log" | sed -E 's/0x[0-9a-f]+/0x_/g' |
    sort | uniq -c | sort -rn | head -8 | sed "s/^/  $t /" || true
  remove_leftovers
  found=$(find "build-fuzz/crashes/$t" -type f -newer "$stamp" | wc -l)
  if [ "$found" -gt 0 ]; then
    status=1
    echo "fuzz.sh: fuzz_$t: $found new crash inputs in build-fuzz/crashes/$t/ (replay one: build-fuzz/tests/fuzz/fuzz_$t FILE)" >&2
  fi
done
exit "$status"
