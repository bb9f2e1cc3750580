#!/usr/bin/env bash
# The Debian package, end to end without installing it on this machine:
# built from this build (CPack; or $SHMQ_DEB, an already built package),
# its file list checked (dpkg-deb -c), its Depends, then unpacked into a
# scratch root (dpkg -x) where the installed programs run: shmq --version,
# create/send/recv, shmq-stat (and --check), shmqd --version; its man pages
# and its unit are there; and a C++ program builds and runs with the flags of
# `pkg-config --cflags --libs shmq` from the unpacked shmq.pc.
# Usage: run_package_test.sh BUILD_DIR SOURCE_DIR CXX [MORE_PROGRAMS]
#   MORE_PROGRAMS  programs the build has besides the three (shmq-bridge), each
#                  expected in /usr/bin with its man page in section 1
# Exit 77: skipped (no dpkg-deb).
set -euo pipefail
build="$1" source="$2" cxx="$3" more_programs="${4:-}"
for tool in dpkg-deb dpkg pkg-config; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed: the package was not tested" >&2; exit 77; }
done
scratch="$(mktemp -d)"
ns="pkg$$"
trap 'rm -f /dev/shm/shmq.$ns.*; rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

deb="${SHMQ_DEB:-}"
if [ -z "$deb" ]; then
  # CPack's own output and staging go to the scratch folder, not the build.
  (cd "$build" && cpack -G DEB --config CPackConfig.cmake -B "$scratch/cpack") > "$scratch/cpack.log" 2>&1 ||
    { cat "$scratch/cpack.log" >&2; fail "cpack failed"; }
  deb="$(ls "$scratch"/cpack/shmq_*.deb)"
fi
echo "package: $deb"
[[ "$(basename "$deb")" =~ ^shmq_[0-9]+\.[0-9]+\.[0-9]+_[a-z0-9]+\.deb$ ]] ||
  fail "name $(basename "$deb") is not shmq_<version>_<arch>.deb"

# The files.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$scratch/files"
expected=(
  /usr/bin/shmq /usr/bin/shmq-stat /usr/bin/shmqd
  /usr/lib/libshmq.a /usr/lib/libshmq.so /usr/lib/libshmq.so.0
  /usr/include/shmq/shmq.hpp /usr/include/shmq/shmq.h /usr/include/shmq/version.hpp
  /usr/lib/cmake/shmq/shmqConfig.cmake /usr/lib/cmake/shmq/shmqTargets.cmake
  /usr/lib/pkgconfig/shmq.pc
  /usr/lib/systemd/system/shmqd@.service
  /usr/share/bash-completion/completions/shmq /usr/share/bash-completion/completions/shmq-stat
  /usr/share/doc/shmq/examples/shmqd.conf.example
)
for program in $more_programs; do
  expected+=("/usr/bin/$program")
  command -v help2man >/dev/null && expected+=("/usr/share/man/man1/$program.1.gz")
done
if command -v help2man >/dev/null; then
  expected+=(/usr/share/man/man1/shmq.1.gz /usr/share/man/man1/shmq-stat.1.gz /usr/share/man/man8/shmqd.8.gz)
else
  echo "WARNING: help2man is not installed: the man pages were not built and are not checked" >&2
fi
for f in "${expected[@]}"; do
  grep -qxF -- "$f" "$scratch/files" || fail "the package lacks $f"
done
if grep -E '/(shmq-demo|_shmq[^/]*\.so)$' "$scratch/files"; then
  fail "the package holds the examples or the Python module"
fi

# Its control data: Depends from dpkg-shlibdeps (libc6, libstdc++6, ...).
depends="$(dpkg-deb -f "$deb" Depends)"
echo "Depends: $depends"
[[ "$depends" == *libc6* ]] || fail "Depends names no libc6: '$depends'"
[ "$(dpkg-deb -f "$deb" Package)" = shmq ] || fail "the package is not named shmq"

# Unpacked into a scratch root; the programs run from there.
root="$scratch/root"
dpkg -x "$deb" "$root"
export LD_LIBRARY_PATH="$root/usr/lib" SHMQ_NAMESPACE="$ns"
"$root/usr/bin/shmq" --version | grep -q '^shmq [0-9]' || fail "shmq --version"
"$root/usr/bin/shmqd" --version | grep -q '^shmqd [0-9]' || fail "shmqd --version"
"$root/usr/bin/shmq" create orders --capacity 64K
printf 'one\ntwo\n' | "$root/usr/bin/shmq" send orders
got="$("$root/usr/bin/shmq" recv orders --count 2)"
[ "$got" = "$(printf 'one\ntwo')" ] || fail "recv gave '$got'"
"$root/usr/bin/shmq-stat" orders | grep -q orders || fail "shmq-stat shows no queue orders"
"$root/usr/bin/shmq-stat" --check orders || fail "shmq-stat --check on a healthy queue"
"$root/usr/bin/shmq" delete orders
if command -v help2man >/dev/null; then
  zcat "$root/usr/share/man/man8/shmqd.8.gz" | grep -q '^\.TH SHMQD "8"' || fail "shmqd(8) is no man page"
fi
grep -q '^ExecStart=.*/usr/bin/shmqd' "$root/usr/lib/systemd/system/shmqd@.service" ||
  fail "the unit runs no /usr/bin/shmqd"
# Bash completion: a subcommand, and a queue name from the installed `shmq list`.
"$root/usr/bin/shmq" create orders --capacity 64K >/dev/null
completed="$(PATH="$root/usr/bin:$PATH" bash -c '
  source "$1/usr/share/bash-completion/completions/shmq"
  source "$1/usr/share/bash-completion/completions/shmq-stat"
  COMP_WORDS=(shmq se); COMP_CWORD=1; _shmq; echo "${COMPREPLY[*]}"
  COMP_WORDS=(shmq-stat or); COMP_CWORD=1; _shmq_stat; echo "${COMPREPLY[*]}"' completion "$root")"
[ "$completed" = "$(printf 'send\norders')" ] || fail "bash completion gave '$completed'"
"$root/usr/bin/shmq" delete orders >/dev/null

# pkg-config from the unpacked tree (its prefix from the .pc file's folder).
export PKG_CONFIG_PATH="$root/usr/lib/pkgconfig"
flags="$(pkg-config --cflags --libs shmq)"
echo "pkg-config --cflags --libs shmq: $flags"
[[ "$flags" == *"$root/usr/lib/pkgconfig/../../include"* ]] || fail "pkg-config's flags do not point into $root"
# shellcheck disable=SC2086
"$cxx" -std=c++20 "$source/tests/install/consumer/main.cpp" -o "$scratch/consumer" $flags
"$scratch/consumer" | grep -q "installed package works" || fail "the pkg-config-built program"
echo "the package works"
