//===- ToolErrors.cpp - How the plain-C++ tools stop on bad input ---------===//

#include "megatron/Support/ToolErrors.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace megatron {

namespace {
const char *toolName = "megatron";
} // namespace

void setToolName(const char *name) { toolName = name; }

void fail(const std::string &message) {
  std::fprintf(stderr, "%s: %s\n", toolName, message.c_str());
  std::exit(1);
}

uint64_t parsePositiveFlag(const std::string &flag, const std::string &text) {
  char *end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno == ERANGE || value == 0)
    fail(flag + ": '" + text + "' is not a positive integer");
  return value;
}

} // namespace megatron
