//===- ToolErrors.h - How the plain-C++ tools stop on bad input -*- C++ -*-===//
//
// The data tools (megatron-preprocess, megatron-merge-datasets, megatron-train-bpe) parse their own flags, as
// Megatron-LM's argparse scripts do, and stop on the first problem with one line "<tool>: <problem>" on standard
// error and exit code 1. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_SUPPORT_TOOLERRORS_H
#define MEGATRON_SUPPORT_TOOLERRORS_H

#include <cstdint>
#include <string>

namespace megatron {

/// The name fail() prints before each message; set once at the start of main.
void setToolName(const char *name);

/// Prints "<tool>: message" to standard error and exits with code 1.
[[noreturn]] void fail(const std::string &message);

/// `text` as a positive decimal integer, or fail() naming the flag.
uint64_t parsePositiveFlag(const std::string &flag, const std::string &text);

} // namespace megatron

#endif // MEGATRON_SUPPORT_TOOLERRORS_H
