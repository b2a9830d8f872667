//===- Nvrtc.h - CUDA C++ to PTX or CUBIN at run time ------------*- C++ -*-===//
//
// The CUDA backend compiles its generated kernels (lib/CodeGen) with NVRTC for the device it runs on, so one
// binary serves every architecture and kernels can specialise on the plan's shapes. NVRTC needs no GPU and no
// driver: CI compiles every kernel for sm_90 on machines without either (test/unit/cuda). Built without the CUDA
// toolkit, compileKernel fails with a message saying so.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_NVRTC_H
#define MEGATRON_RUNTIME_CUDA_NVRTC_H

#include <optional>
#include <string>
#include <vector>

namespace megatron::cuda {

enum class CodeKind {
  Ptx,   ///< virtual architecture compute_XX: the driver JIT-compiles it for the device (and newer ones)
  Cubin, ///< real architecture sm_XX: loads only on that architecture, with no JIT at load time
};

struct CompileOptions {
  int arch = 90; ///< compute capability major·10 + minor: 90 for H100
  CodeKind kind = CodeKind::Cubin;
  std::vector<std::string> extra; ///< further NVRTC options, e.g. "-lineinfo"
};

/// Whether this build has NVRTC (the CUDA toolkit was found at configure time).
bool haveNvrtc();
/// NVRTC's version, "13.0"; empty without NVRTC. Part of the kernel cache's key.
std::string nvrtcVersion();
/// The complete option list given to NVRTC: architecture, C++17, the toolkit's include directory (for
/// cuda_bf16.h and cuda_fp16.h), then `extra`. Part of the kernel cache's key.
std::vector<std::string> nvrtcOptions(const CompileOptions &options);
/// "compute_90" or "sm_90".
std::string archName(const CompileOptions &options);

/// Compiles `source` (one translation unit defining the kernel `name`) to PTX text or a CUBIN image. On failure
/// returns nullopt and sets `error` to a message naming the kernel and the architecture, followed by NVRTC's log.
std::optional<std::string> compileKernel(const std::string &name, const std::string &source,
                                         const CompileOptions &options, std::string &error);

} // namespace megatron::cuda

#endif // MEGATRON_RUNTIME_CUDA_NVRTC_H
