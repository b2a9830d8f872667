#!/usr/bin/env bash
# The GPU check of the CUDA backend (docs/cuda.md, "Checking on a GPU"): the GPU tests, then the training-step
# benchmark against PyTorch. Three forms:
#
#   scripts/gpu-check.sh                 on a machine with the toolchain and a GPU: pack, then run
#   scripts/gpu-check.sh pack            build here (scripts/build.sh, CUDA on), compile the test and benchmark plans,
#                                        and put the MLIR-free binaries, their libraries and the plans into
#                                        .gpu/bundle.tar.xz (ignored by git)
#   scripts/gpu-check.sh run [OUT_DIR]   on a GPU machine without our toolchain (the lent ones have CUDA, a driver and
#                                        PyTorch, but no MLIR, OpenBLAS or network): unpack .gpu/bundle.tar.xz and
#                                        run; logs and a summary go to OUT_DIR (default $OUT, else gpu-check-out)
#
# The lent machines take a 64 MiB working tree: `pack` here, then `run` there with .gpu carried. Only binaries that
# link neither MLIR nor LLVM travel (libLLVM alone is 129 MB): megatron-cuda-tests (the backend's calls),
# megatron-cuda-gpu-tests (every generated kernel, whole programs and training iterations against the CPU engine,
# on plans compiled here) and device-train-step-bench. The CUDA libraries (cudart, NVRTC, cuBLASLt) are the
# GPU machine's own.
#
# Settings: BUILD_DIR (default build), and bench/gpu-train-step.sh's (SHAPES, ROUNDS, STEPS, WARMUP).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
BUNDLE=$ROOT/.gpu/bundle.tar.xz
BINARIES=(megatron-cuda-tests megatron-cuda-gpu-tests device-train-step-bench)

say() { echo "gpu-check: $*"; }
die() { echo "gpu-check: $*" >&2; exit 1; }

# Libraries every Linux machine has, and CUDA's, which must come from the GPU machine's own toolkit and driver.
system_library() {
  case $(basename "$1") in
    libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux* | libgcc_s.so* | libstdc++.so*) return 0 ;;
    libcuda.so* | libcudart.so* | libnvrtc* | libcublas* | libnccl.so*) return 0 ;;
  esac
  return 1
}

pack() {
  BUILD_DIR=$BUILD "$ROOT/scripts/build.sh"
  readelf -d "$BUILD/bin/megatron-cuda-tests" | grep -q 'libcudart' \
    || die "$BUILD was built without CUDA (no toolkit at /usr/local/cuda?): nothing to check on a GPU"
  local stage
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/bin" "$stage/lib" "$stage/plans" "$stage/test-plans"
  for binary in "${BINARIES[@]}"; do
    [[ -x $BUILD/bin/$binary ]] || die "$BUILD/bin/$binary was not built"
    if readelf -d "$BUILD/bin/$binary" | grep -q 'libLLVM'; then
      die "$binary links libLLVM, which cannot travel to the GPU machines (129 MB); keep it MLIR-free"
    fi
    cp "$BUILD/bin/$binary" "$stage/bin/"
    strip "$stage/bin/$binary"
    ldd "$BUILD/bin/$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r library; do
      system_library "$library" || cp -L "$library" "$stage/lib/"
    done
  done
  "$BUILD/bin/megatron-cuda-test-plans" "$stage/test-plans"
  "$ROOT/bench/gpu-train-step.sh" plans "$BUILD" "$stage/plans"
  mkdir -p "$ROOT/.gpu" # ignored (.gitignore), so that the device tool can carry it
  tar -C "$stage" -cf - . | xz -T0 -6 > "$BUNDLE.tmp"
  mv "$BUNDLE.tmp" "$BUNDLE"
  local bytes
  bytes=$(stat -c %s "$BUNDLE")
  say "packed $BUNDLE: $((bytes / 1024 / 1024)) MiB ($(ls "$stage/bin" | tr '\n' ' '); libraries: $(ls "$stage/lib" | tr '\n' ' '))"
  ((bytes < 56 * 1024 * 1024)) || die "the bundle is over 56 MiB: it and the tree must stay under 64 MiB"
}

# The directory holding `name` among the places a CUDA toolkit or its Python wheels put it, or nothing.
find_cuda_file() {
  local name=$1 found
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/include /usr/lib/x86_64-linux-gnu; do
    [[ -e $dir/$name ]] && { echo "$dir"; return; }
  done
  found=$(find /usr/local /opt /usr/lib -name "$name" -not -path '*/proc/*' 2>/dev/null | head -1 || true)
  [[ -n $found ]] && dirname "$found"
}

run() {
  local out=$1 unpacked
  [[ -f $BUNDLE ]] || die "$BUNDLE is missing: run 'scripts/gpu-check.sh pack' on a machine with the toolchain"
  mkdir -p "$out"
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  xz -dc "$BUNDLE" | tar -C "$unpacked" -xf -
  {
    echo "## Machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 || true
  } | tee "$out/machine.txt"
  nvidia-smi -L > /dev/null 2>&1 || die "no GPU on this machine (nvidia-smi -L fails): run this where there is one"

  # cudart, NVRTC (with its builtins) and cuBLASLt of CUDA 13, and the headers NVRTC includes.
  local libpath="$unpacked/lib"
  for library in libcudart.so.13 libnvrtc.so.13 libnvrtc-builtins.so.13.0 libcublasLt.so.13 libcublas.so.13; do
    local dir
    dir=$(find_cuda_file "$library")
    [[ -n $dir ]] || die "no $library on this machine"
    [[ :$libpath: == *:$dir:* ]] || libpath="$libpath:$dir"
  done
  export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local include
  include=$(find_cuda_file cuda_bf16.h)
  [[ -n $include ]] || die "no cuda_bf16.h on this machine (NVRTC needs the CUDA headers)"
  export MEGATRON_CUDA_INCLUDE_DIR=$include
  export MEGATRON_KERNEL_CACHE=${MEGATRON_KERNEL_CACHE:-/tmp/megatron-kernels}
  export MEGATRON_TEST_PLANS=$unpacked/test-plans
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH MEGATRON_CUDA_INCLUDE_DIR=$include" | tee -a "$out/machine.txt"
  if ldd "$unpacked"/bin/* | grep 'not found'; then die "a library is missing (above)"; fi

  local status=0
  for tests in megatron-cuda-tests megatron-cuda-gpu-tests; do
    say "$tests"
    "$unpacked/bin/$tests" --gtest_color=no 2>&1 | tee "$out/$tests.log" | grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) ' \
      || true
    grep -q '^\[  PASSED  \]' "$out/$tests.log" && ! grep -q '^\[  FAILED  \]' "$out/$tests.log" || status=1
    # On a GPU machine a skipped test means the backend could not be made: a failure of this check.
    if grep -q '^\[  SKIPPED \] .*\.' "$out/$tests.log"; then
      say "$tests skipped tests on a GPU machine (see $out/$tests.log)"
      status=1
    fi
  done
  say "benchmark"
  "$ROOT/bench/gpu-train-step.sh" run "$unpacked/bin" "$unpacked/plans" 2>&1 | tee "$out/benchmark.log" || status=1
  say "$( ((status == 0)) && echo "every test passed" || echo "FAILED: see $out")"
  return $status
}

case ${1:-all} in
  pack) pack ;;
  run) run "${2:-${OUT:-gpu-check-out}}" ;;
  all) pack && run "${OUT:-gpu-check-out}" ;;
  *) die "usage: scripts/gpu-check.sh [pack | run [OUT_DIR]]" ;;
esac
