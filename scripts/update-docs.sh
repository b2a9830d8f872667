#!/usr/bin/env bash
# Copies the references that mlir-tblgen generates from the .td files into docs/reference/.
# test/docs/reference-up-to-date.test fails until this is run after an op, attribute or pass changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
ninja -C "$build" MegatronMtIncGen MegatronPassesIncGen
cp "$build/dialects/mt/MtDialectReference.md" "$root/docs/reference/mt-dialect.md"
cp "$build/passes/PassesReference.md" "$root/docs/reference/passes.md"
