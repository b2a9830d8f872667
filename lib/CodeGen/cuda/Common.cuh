//===- Common.cuh - Storage types, conversions and block reductions -------===//
//
// The first part of every generated kernel's source. Buffers are stored as float, double, __nv_bfloat16 or
// __half (a plan buffer's dtype); kernels compute in float (double for f64 buffers), so bf16 and f16 storage keeps
// fp32 arithmetic and fp32 statistics. The same text compiles as plain host C++ (MT_HD is empty there), so that
// unit tests can check the device arithmetic that does not need a GPU (Philox) against the CPU kernels. With
// MT_SIMULATE, g++ compiles the whole kernel for the host simulator (test/unit/cuda/sim, docs/cuda.md): CudaSim.h
// supplies CUDA's built-ins, bf16 and fp16, and runs the threads of a block as interleaving fibers.
//
//===----------------------------------------------------------------------===//

#if defined(MT_SIMULATE)
#include "CudaSim.h"
#define MT_HD inline
#define MT_DEVICE inline
#define MT_HAS_DEVICE_BUILTINS 1
#elif defined(__CUDACC__) || defined(__CUDACC_RTC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define MT_HD __host__ __device__ __forceinline__
#define MT_DEVICE __device__ __forceinline__
#define MT_HAS_DEVICE_BUILTINS 1
#else
#include <cstdint>
#define MT_HD inline
#endif

namespace mt {

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;

#if defined(MT_HAS_DEVICE_BUILTINS)

/// The arithmetic type of a storage type: float, except double for double.
template <typename T> struct Compute { typedef float type; };
template <> struct Compute<double> { typedef double type; };

MT_DEVICE float load(const float *p) { return *p; }
MT_DEVICE double load(const double *p) { return *p; }
MT_DEVICE float load(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
MT_DEVICE float load(const __half *p) { return __half2float(*p); }

// Stores round to nearest even, as torch's .to(bfloat16) and .half() do.
MT_DEVICE void store(float *p, float v) { *p = v; }
MT_DEVICE void store(float *p, double v) { *p = float(v); }
MT_DEVICE void store(double *p, double v) { *p = v; }
MT_DEVICE void store(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
MT_DEVICE void store(__half *p, float v) { *p = __float2half_rn(v); }

template <typename C> MT_DEVICE C infinity();
template <> MT_DEVICE float infinity<float>() { return __int_as_float(0x7f800000); }
template <> MT_DEVICE double infinity<double>() { return __longlong_as_double(0x7ff0000000000000ll); }

/// The global index of this thread and the stride of a grid-stride loop.
MT_DEVICE i64 globalThread() { return i64(blockIdx.x) * blockDim.x + threadIdx.x; }
MT_DEVICE i64 gridStride() { return i64(gridDim.x) * blockDim.x; }

struct Sum {
  template <typename C> MT_DEVICE C operator()(C a, C b) const { return a + b; }
};
struct Max {
  template <typename C> MT_DEVICE C operator()(C a, C b) const { return b > a ? b : a; }
};

/// op over the block's values of v, returned to every thread: a butterfly within each warp, then the warps in
/// order. The order of operations is fixed by the block size, so a kernel's result does not depend on scheduling.
/// Begins with a barrier, so that calls may follow one another.
template <int BLOCK, typename C, typename Op> MT_DEVICE C blockReduce(C v, Op op) {
  static_assert(BLOCK % 32 == 0 && BLOCK <= 1024, "whole warps");
  __shared__ C partial[BLOCK / 32];
  for (int offset = 16; offset > 0; offset >>= 1)
    v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();
  if (threadIdx.x % 32 == 0)
    partial[threadIdx.x / 32] = v;
  __syncthreads();
  C total = partial[0];
  for (int w = 1; w < BLOCK / 32; ++w)
    total = op(total, partial[w]);
  return total;
}

template <int BLOCK, typename C> MT_DEVICE C blockSum(C v) { return blockReduce<BLOCK>(v, Sum()); }
template <int BLOCK, typename C> MT_DEVICE C blockMax(C v) { return blockReduce<BLOCK>(v, Max()); }

/// Column sums of a [ROWS, COLS] operand by a block of 32 columns × 32 row lanes (1024 threads, grid
/// ceil(COLS / 32): KernelEmitter's perColumnTile): lane (tx, ty) adds term(r, c, acc) for rows r = ty, ty + 32, ...
/// of column c = blockIdx.x·32 + tx into N accumulators, and the 32 lanes' partials are then added in lane order
/// through shared memory; done(c, sums) runs once per column. The order is fixed by the tile, so runs repeat bit
/// for bit, and 32 lanes per column keep the GPU busy where a thread per column (a bias of 768 or 2048 values
/// over 8192 rows) would leave most of it idle.
constexpr int kColumnTile = 32, kRowLanes = 32;
template <int N, i64 ROWS, i64 COLS, typename C, typename Term, typename Done>
MT_DEVICE void columnSums(Term term, Done done) {
  const int tx = int(threadIdx.x) % kColumnTile, ty = int(threadIdx.x) / kColumnTile;
  const i64 c = i64(blockIdx.x) * kColumnTile + tx;
  C acc[N];
  for (int k = 0; k < N; ++k)
    acc[k] = C(0);
  if (c < COLS)
    for (i64 r = ty; r < ROWS; r += kRowLanes)
      term(r, c, acc);
  __shared__ C partial[N][kRowLanes][kColumnTile];
  for (int k = 0; k < N; ++k)
    partial[k][ty][tx] = acc[k];
  __syncthreads();
  if (ty != 0 || c >= COLS)
    return;
  for (int k = 0; k < N; ++k) {
    C total = partial[k][0][tx];
    for (int lane = 1; lane < kRowLanes; ++lane)
      total += partial[k][lane][tx];
    acc[k] = total;
  }
  done(c, acc);
}

/// Records a bad index (a token id or label outside its range): the smallest position wins, so the host reports
/// the first one as the CPU kernels do. *status starts at ~0ull; the host reads it after the step.
MT_DEVICE void reportBadIndex(u64 *status, i64 position) { atomicMin(status, u64(position)); }

#endif

} // namespace mt
