#!/usr/bin/env bash
# Installs the Debian 12 packages shmq builds with. Idempotent: does nothing
# when they are all present. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev libconcurrentqueue-dev libbenchmark-dev libgtest-dev libgmock-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  python3 python3-dev python3-pytest tmux util-linux gnuplot-nox
  help2man  # the man pages (packaging/): from the programs' --help and --version
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh: clang's libFuzzer and sanitizer runtimes
  nats-server libnats-dev  # shmq-bridge (bridge/) and its tests, which start nats-server themselves
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "shmq: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
