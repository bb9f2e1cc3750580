#!/usr/bin/env bash
# Builds the Debian package from the normal build (build/, as scripts/test.sh
# makes it; CPack builds whatever is not built yet): build/shmq_<version>_<arch>.deb.
# Prints the package's path last. Usage: scripts/package.sh [BUILD_DIR]
#   BUILD_DIR  an already configured build to package instead of build/
# What is in it: packaging/deb.cmake; how to install and run it: docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
scripts/install-deps.sh
if [ "$build" = build ]; then
  cmake --preset default >/dev/null
elif [ ! -f "$build/CPackConfig.cmake" ]; then
  echo "package.sh: $build is not a configured shmq build (no CPackConfig.cmake)" >&2
  exit 2
fi
command -v help2man >/dev/null ||
  echo "package.sh: WARNING: help2man is missing: the package will have NO MAN PAGES" >&2
# The package's name, from the CPack configuration.
name="$(sed -n 's/^set(CPACK_DEBIAN_FILE_NAME "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")"
[ -n "$name" ] || { echo "package.sh: no CPACK_DEBIAN_FILE_NAME in $build/CPackConfig.cmake" >&2; exit 1; }
rm -f "$build/$name"
(cd "$build" && cpack -G DEB --config CPackConfig.cmake) >&2
rm -rf "$build/_CPack_Packages"  # CPack's staging tree: a second copy of everything
[ -f "$build/$name" ] || { echo "package.sh: cpack made no $build/$name" >&2; exit 1; }
echo "$build/$name"
