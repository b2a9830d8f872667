//===- KernelEmitter.h - Assembling one generated CUDA kernel ----*- C++ -*-===//
//
// Internal to lib/CodeGen. A KernelEmitter turns a plan step into one kernel: it declares the kernel's parameters
// from the step's buffers (their storage types become C types), reads the step's attributes, and wraps a call of
// a device-library function (lib/CodeGen/cuda/*.cuh) in an extern "C" __global__ function whose name is derived
// from the source, so equal kernels of different steps get one name.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_LIB_CODEGEN_KERNELEMITTER_H
#define MEGATRON_LIB_CODEGEN_KERNELEMITTER_H

#include "megatron/CodeGen/CudaKernels.h"

#include <string>
#include <vector>

namespace megatron::codegen::detail {

using codegen::cTypeOf;
/// A double as a C++ literal that reads back to the same value.
std::string literal(double value);

/// "mt::function<templateArgs...>(args...)": a call of a device-library function.
std::string deviceCall(const std::string &function, const std::vector<std::string> &templateArgs,
                       const std::vector<std::string> &args);
/// An integer as a template argument.
inline std::string num(int64_t value) { return std::to_string(value); }

/// Threads per block of the grid-stride kernels, and the most blocks they launch (the loop covers the rest).
inline constexpr int kThreads = 256;
inline constexpr int64_t kMaxBlocks = 8192;

/// A grid-stride launch over `n` work items.
LaunchConfig gridStride(int64_t n);
/// One block of `block` threads per row.
LaunchConfig perRow(int64_t rows, int block);
/// One thread per column.
LaunchConfig perColumn(int64_t columns);
/// Common.cuh's columnSums: one block of 32 columns × 32 row lanes per 32 columns.
LaunchConfig perColumnTile(int64_t columns);
/// Threads per block for one block per row of `width` elements: a power of two from 32 to `most`, about a
/// quarter of the width, so that each thread keeps a few elements in registers.
int rowBlock(int64_t width, int most = 1024);

class KernelEmitter {
public:
  /// `files`: the device-library files the call needs, after Common.cuh.
  KernelEmitter(const plan::Plan &plan, const plan::Step &step, std::string role, std::vector<std::string> files);

  const plan::Buffer &inBuffer(size_t i) const;
  const plan::Buffer &outBuffer(size_t i) const;
  /// Storage C types of the step's operands, for template arguments.
  std::string inType(size_t i) const { return cTypeOf(inBuffer(i).dtype); }
  std::string outType(size_t i) const { return cTypeOf(outBuffer(i).dtype); }

  /// Declare the step's operand as the next kernel parameter; returns its name in the source.
  std::string in(size_t i);
  std::string out(size_t i);
  /// Declare a run-time value (KernelArg's names) as the next kernel parameter.
  std::string runtime(const std::string &name, const std::string &cType);
  /// Declare the step's integer attribute `name` as the next kernel parameter.
  std::string attribute(const std::string &name, const std::string &cType);

  /// Attributes; a required one that is absent makes finish() fail, naming it.
  double attrDouble(const char *name, double fallback) const;
  double requiredDouble(const char *name);
  int64_t requiredInt(const char *name);
  std::string attrString(const char *name, const std::string &fallback) const;
  bool flag(const char *name) const;
  /// The tensor-parallel group size the plan was compiled for.
  int64_t tensorParallel() const { return plan.parallel.tensor; }

  /// The kernel's body: usually one call of a device-library function with the parameters declared above.
  void body(std::string text) { bodyText = std::move(text); }
  /// File-scope declarations placed before the kernel: tables the generator computes on the host.
  void globals(std::string text) { globalText = std::move(text); }
  LaunchConfig launch;

  /// The kernel, or an empty name and `error` set when a required attribute is missing.
  CudaKernel finish(std::string &error) const;

private:
  void declare(ArgSource source, int index, std::string name, std::string cType);

  const plan::Plan &plan;
  const plan::Step &step;
  std::string role;
  std::vector<std::string> files;
  std::vector<KernelArg> args;
  std::string bodyText;
  std::string globalText;
  std::string missing;
};

} // namespace megatron::codegen::detail

#endif // MEGATRON_LIB_CODEGEN_KERNELEMITTER_H
