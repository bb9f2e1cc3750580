#!/usr/bin/env bash
# The systemd unit packaging/systemd/shmqd@.service: `systemd-analyze verify`
# on an instance of it (skipped, exit 77, where systemd-analyze is missing),
# and none of the options that would hide the queues or the clients from
# shmqd. Usage: verify_unit.sh UNIT_FILE
set -euo pipefail
unit="$1"
hiding='^(PrivateIPC|PrivateDevices|PrivatePIDs|PrivateUsers|ProtectProc=invisible|ProcSubset=pid|InaccessiblePaths=.*/dev/shm)'
if grep -En "$hiding" "$unit"; then
  echo "FAIL: an option above would hide /dev/shm or the client processes from shmqd" >&2
  exit 1
fi
grep -q '^Type=notify$' "$unit" || { echo "FAIL: not Type=notify" >&2; exit 1; }
grep -q '^ReadWritePaths=.*/dev/shm' "$unit" ||
  { echo "FAIL: /dev/shm is not writable under ProtectSystem=strict" >&2; exit 1; }
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed (Debian package systemd); the unit was not verified" >&2
  exit 77
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp "$unit" "$scratch/shmqd@verify.service"
# --man=no: the man pages are installed by the package, not here.
out="$(systemd-analyze verify --man=no "$scratch/shmqd@verify.service" 2>&1)" || { echo "$out" >&2; exit 1; }
# verify exits 0 on some warnings: any line naming the unit is one.
if grep -F 'shmqd@verify.service' <<<"$out"; then
  echo "FAIL: systemd-analyze verify warns about the unit" >&2
  exit 1
fi
echo "systemd-analyze verify: clean"
