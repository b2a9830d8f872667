#!/usr/bin/env bash
# Installs what is missing, configures (once) and builds everything into ${BUILD_DIR:-build}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

"$root/scripts/setup.sh"

# Compiler command lines contain absolute paths; with a base directory ccache rewrites them relative, so a fresh
# clone elsewhere (as CI makes) still hits the cache.
export CCACHE_BASEDIR="$root"

if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
fi
# Each MLIR translation unit takes up to ~700 MB to compile; one job per core fits any machine here.
ninja -C "$build" -j "$(nproc)"
