//===- Nvrtc.cpp - CUDA C++ to PTX or CUBIN at run time -------------------------===//

#include "runtime/cuda/Nvrtc.h"

#include <cstdlib>

#if MEGATRON_HAVE_CUDA
#include <nvrtc.h>
#endif

namespace megatron::cuda {

std::string archName(const CompileOptions &options) {
  return (options.kind == CodeKind::Ptx ? "compute_" : "sm_") + std::to_string(options.arch);
}

std::vector<std::string> nvrtcOptions(const CompileOptions &options) {
  std::vector<std::string> list = {"--gpu-architecture=" + archName(options), "-std=c++17"};
  // NVRTC does not know where the toolkit is; cuda_bf16.h and cuda_fp16.h come from there: the toolkit this was
  // built with, unless $MEGATRON_CUDA_INCLUDE_DIR names another (a machine whose toolkit lives elsewhere, e.g. in
  // Python's nvidia-cuda-runtime package).
  if (const char *dir = std::getenv("MEGATRON_CUDA_INCLUDE_DIR"); dir && *dir)
    list.push_back(std::string("--include-path=") + dir);
#ifdef MEGATRON_CUDA_INCLUDE_DIR
  else
    list.push_back(std::string("--include-path=") + MEGATRON_CUDA_INCLUDE_DIR);
#endif
  list.insert(list.end(), options.extra.begin(), options.extra.end());
  return list;
}

#if MEGATRON_HAVE_CUDA

bool haveNvrtc() { return true; }

std::string nvrtcVersion() {
  int major = 0, minor = 0;
  if (::nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
    return "unknown";
  return std::to_string(major) + "." + std::to_string(minor);
}

namespace {

// Destroys the program on every path.
struct Program {
  nvrtcProgram handle = nullptr;
  ~Program() {
    if (handle)
      nvrtcDestroyProgram(&handle);
  }
};

std::string logOf(nvrtcProgram program) {
  size_t size = 0;
  if (nvrtcGetProgramLogSize(program, &size) != NVRTC_SUCCESS || size <= 1)
    return std::string();
  std::string log(size, '\0');
  nvrtcGetProgramLog(program, log.data());
  log.resize(size - 1); // the terminating NUL
  return log;
}

} // namespace

std::optional<std::string> compileKernel(const std::string &name, const std::string &source,
                                         const CompileOptions &options, std::string &error) {
  const std::string what = "NVRTC could not compile kernel '" + name + "' for " + archName(options);
  Program program;
  nvrtcResult result = nvrtcCreateProgram(&program.handle, source.c_str(), (name + ".cu").c_str(), 0, nullptr,
                                          nullptr);
  if (result != NVRTC_SUCCESS) {
    error = what + ": " + nvrtcGetErrorString(result);
    return std::nullopt;
  }
  std::vector<std::string> list = nvrtcOptions(options);
  std::vector<const char *> argv;
  for (const std::string &option : list)
    argv.push_back(option.c_str());
  result = nvrtcCompileProgram(program.handle, int(argv.size()), argv.data());
  if (result != NVRTC_SUCCESS) {
    error = what + " (" + nvrtcGetErrorString(result) + "):\n" + logOf(program.handle);
    return std::nullopt;
  }
  size_t size = 0;
  std::string code;
  if (options.kind == CodeKind::Ptx) {
    result = nvrtcGetPTXSize(program.handle, &size);
    code.resize(size);
    if (result == NVRTC_SUCCESS)
      result = nvrtcGetPTX(program.handle, code.data());
    if (!code.empty())
      code.pop_back(); // PTX is NUL-terminated text
  } else {
    result = nvrtcGetCUBINSize(program.handle, &size);
    code.resize(size);
    if (result == NVRTC_SUCCESS)
      result = nvrtcGetCUBIN(program.handle, code.data());
  }
  if (result != NVRTC_SUCCESS || code.empty()) {
    error = what + ": retrieving the code failed (" + nvrtcGetErrorString(result) + ")";
    return std::nullopt;
  }
  return code;
}

#else

bool haveNvrtc() { return false; }

std::string nvrtcVersion() { return std::string(); }

std::optional<std::string> compileKernel(const std::string &name, const std::string &, const CompileOptions &options,
                                         std::string &error) {
  error = "cannot compile kernel '" + name + "' for " + archName(options) +
          ": this build has no NVRTC (configured without the CUDA toolkit or with MEGATRON_ENABLE_CUDA=OFF)";
  return std::nullopt;
}

#endif

} // namespace megatron::cuda
