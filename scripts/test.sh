#!/usr/bin/env bash
# Sets up, builds and runs every test (lit + FileCheck and GoogleTest, through one ctest run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

"$root/scripts/build.sh"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
