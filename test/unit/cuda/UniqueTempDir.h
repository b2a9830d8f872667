//===- UniqueTempDir.h - A fresh directory per test process -----*- C++ -*-===//
//
// The CUDA tests write kernel caches to disk. A fixed name under /tmp is shared by every checkout and build that
// runs the tests at the same time (CI beside a developer's build), and one run's clean-up removed the other's
// files mid-write; mkdtemp gives each process its own.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_UNIQUETEMPDIR_H
#define MEGATRON_TEST_UNIT_CUDA_UNIQUETEMPDIR_H

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace megatron::test {

/// A new, empty directory <TempDir>/<stem>-XXXXXX (an empty path, and a test failure, if it cannot be made).
inline std::filesystem::path uniqueTempDir(const std::string &stem) {
  std::string pattern = (std::filesystem::path(testing::TempDir()) / (stem + "-XXXXXX")).string();
  if (!mkdtemp(pattern.data())) {
    ADD_FAILURE() << "cannot create a directory like " << pattern;
    return {};
  }
  return pattern;
}

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_UNIQUETEMPDIR_H
