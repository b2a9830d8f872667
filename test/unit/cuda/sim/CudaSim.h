//===- CudaSim.h - CUDA's device built-ins for host C++: the kernel simulator's shim ---*- C++ -*-===//
//
// lib/CodeGen/cuda/Common.cuh includes this instead of the toolkit's headers when MT_SIMULATE is defined, so that
// the exact source of a generated kernel compiles with g++ into a shared object and runs on the host
// (docs/cuda.md, "The host simulator"). The built-ins are declared here and implemented by Scheduler.cpp in the
// test binary, which exports them; a kernel's shared object resolves them when it is loaded.
//
// - threadIdx, blockIdx, blockDim and gridDim are globals that the scheduler sets whenever it switches to another
//   CUDA thread. A switch happens only inside a call of __syncthreads or a warp shuffle, which the compiler cannot
//   see through, so it never keeps a stale index across one.
// - __shared__ is `static`: the blocks of a launch run one after the other on one OS thread, so one static array
//   is exactly one block's shared memory.
// - Atomics are plain read-modify-writes: no CUDA thread can run between the read and the write, because threads
//   switch only at barriers and shuffles.
// - Math functions are the host's (<math.h> has the float overloads of exp, tanh, erf, ... that CUDA's math API
//   has). Fast-math intrinsics (__expf, __fdividef, ...) are deliberately absent.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIM_CUDASIM_H
#define MEGATRON_TEST_UNIT_CUDA_SIM_CUDASIM_H

#include "SixteenBit.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

extern "C" {
/// The running CUDA thread's indices and the launch's shape.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

/// Waits until every thread of the block has reached this barrier (the same file and line). Fails the launch on
/// a divergent barrier: a thread that exits, or reaches another barrier, while others wait.
void mt_sim_syncthreads(const char *file, int line);
/// One lane's part of a warp shuffle: `value` (`bytes` of it) is replaced by the value of the source lane that
/// `mode` and `operand` select, once every lane of `mask` has arrived at the same shuffle.
void mt_sim_shuffle(unsigned mask, int mode, int operand, int width, void *value, int bytes, const char *file,
                    int line);
}

namespace mt_sim {

enum ShuffleMode { ShuffleIndex = 0, ShuffleUp = 1, ShuffleDown = 2, ShuffleXor = 3 };

template <typename T> inline T shuffle(unsigned mask, T value, int mode, int operand, int width, const char *file,
                                       int line) {
  static_assert(sizeof(T) <= 8, "a shuffle moves at most 8 bytes");
  mt_sim_shuffle(mask, mode, operand, width, &value, int(sizeof(T)), file, line);
  return value;
}

template <typename To, typename From> inline To bitCast(From from) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To to;
  memcpy(&to, &from, sizeof to);
  return to;
}

} // namespace mt_sim

// The call site (file, line) identifies a barrier or shuffle, as the program counter does on the GPU.
inline void __syncthreads(const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  mt_sim_syncthreads(file, line);
}
template <typename T>
inline T __shfl_sync(unsigned mask, T value, int lane, int width = 32, const char *file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  return mt_sim::shuffle(mask, value, mt_sim::ShuffleIndex, lane, width, file, line);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32, const char *file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  return mt_sim::shuffle(mask, value, mt_sim::ShuffleUp, int(delta), width, file, line);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32,
                          const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return mt_sim::shuffle(mask, value, mt_sim::ShuffleDown, int(delta), width, file, line);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T value, int laneMask, int width = 32, const char *file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  return mt_sim::shuffle(mask, value, mt_sim::ShuffleXor, laneMask, width, file, line);
}

inline float __int_as_float(int x) { return mt_sim::bitCast<float>(x); }
inline int __float_as_int(float x) { return mt_sim::bitCast<int>(x); }
inline float __uint_as_float(unsigned x) { return mt_sim::bitCast<float>(x); }
inline unsigned __float_as_uint(float x) { return mt_sim::bitCast<unsigned>(x); }
inline double __longlong_as_double(long long x) { return mt_sim::bitCast<double>(x); }
inline long long __double_as_longlong(double x) { return mt_sim::bitCast<long long>(x); }

namespace mt_sim {
/// *address = update(*address), returning the old value as CUDA's atomics do. Atomic here: no other CUDA thread
/// runs before the caller reaches a barrier or shuffle.
template <typename T, typename F> inline T readModifyWrite(T *address, F update) {
  const T old = *address;
  *address = update(old);
  return old;
}
} // namespace mt_sim

template <typename T> inline T atomicAdd(T *address, T value) {
  return mt_sim::readModifyWrite(address, [value](T old) { return old + value; });
}
template <typename T> inline T atomicMin(T *address, T value) {
  return mt_sim::readModifyWrite(address, [value](T old) { return value < old ? value : old; });
}
template <typename T> inline T atomicMax(T *address, T value) {
  return mt_sim::readModifyWrite(address, [value](T old) { return value > old ? value : old; });
}
template <typename T> inline T atomicExch(T *address, T value) {
  return mt_sim::readModifyWrite(address, [value](T) { return value; });
}
template <typename T> inline T atomicCAS(T *address, T compare, T value) {
  return mt_sim::readModifyWrite(address, [compare, value](T old) { return old == compare ? value : old; });
}

#endif // MEGATRON_TEST_UNIT_CUDA_SIM_CUDASIM_H
