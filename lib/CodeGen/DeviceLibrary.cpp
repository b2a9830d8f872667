//===- DeviceLibrary.cpp - The embedded lib/CodeGen/cuda files ----------------===//

#include "DeviceLibrary.h"

#include <cassert>
#include <utility>

namespace megatron::codegen::detail {

namespace {

// {file name, contents} of every lib/CodeGen/cuda/*.cuh, written by EmbedDeviceLibrary.cmake.
const std::pair<std::string_view, std::string_view> kFiles[] = {
#include "lib/CodeGen/DeviceLibrary.inc"
};

} // namespace

std::string_view deviceLibraryFile(std::string_view name) {
  for (const auto &[file, text] : kFiles)
    if (file == name)
      return text;
  assert(false && "no such file in lib/CodeGen/cuda");
  return {};
}

} // namespace megatron::codegen::detail
