#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 (bookworm) machine.
# Idempotent: when every package is already present it only checks, which takes well under a second.
set -euo pipefail

packages=(
  # Build tools.
  build-essential cmake ninja-build ccache git pkg-config
  # MLIR/LLVM 19 (mlir-19-tools is required by find_package(MLIR): it ships mlir-pdll and mlir-tblgen).
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools
  # Libraries.
  libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev libopenblas0-pthread
  libopenmpi-dev openmpi-bin
  # Checkpoints: JSON metadata and XXH3-64 checksums (runtime/checkpoint).
  nlohmann-json3-dev libxxhash-dev
  # The GPT-2 tokenizer: ICU's Unicode character classes (lib/Tokenizer).
  libicu-dev
  # Python for lit and for test references (Debian's python3, not a pyenv one): PyTorch is the independent
  # reference of the parity test and the peer of the step benchmark.
  python3 python3-numpy python3-torch
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

lit=/usr/lib/llvm-19/build/utils/lit/lit.py
[ -f "$lit" ] || { echo "setup: $lit is missing after installing llvm-19-tools" >&2; exit 1; }
