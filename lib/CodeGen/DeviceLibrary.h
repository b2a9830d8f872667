//===- DeviceLibrary.h - The CUDA device code the kernels are made of -*- C++ -*-===//
//
// Internal to lib/CodeGen. The files of lib/CodeGen/cuda/ (Common.cuh, Norms.cuh, ...) are compiled into the
// library as text (CMake embeds them), and each generated kernel's source is Common.cuh, the files its op needs
// and its extern "C" wrapper. So a kernel's source is self-contained: NVRTC needs only the toolkit's headers.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_LIB_CODEGEN_DEVICELIBRARY_H
#define MEGATRON_LIB_CODEGEN_DEVICELIBRARY_H

#include <string_view>

namespace megatron::codegen::detail {

/// The text of lib/CodeGen/cuda/<name>; asserts that the file exists.
std::string_view deviceLibraryFile(std::string_view name);

} // namespace megatron::codegen::detail

#endif // MEGATRON_LIB_CODEGEN_DEVICELIBRARY_H
