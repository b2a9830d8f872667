//===- CheckpointThroughputTest.cpp - Save and load speed of ~200 MB ------===//
//
// Not a test (speed is never asserted): a measurement, disabled by default. Run it with
//   build-ckpt/bin/megatron-checkpoint-tests --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
// (TMPDIR picks the file system). "cold" drops the data file from the page cache first (posix_fadvise).
//
//===----------------------------------------------------------------------===//

#include "CheckpointTestUtil.h"

#include <chrono>
#include <cstdio>

namespace megatron::ckpt::test {
namespace {

double seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void dropFromPageCache(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

TEST(CheckpointThroughput, DISABLED_TwoHundredMegabytes) {
  TempDir dir;
  // GPT-2 small's word embeddings (154 MB) plus 24 layer-sized tensors: about 200 MB, 25 tensors.
  std::vector<OwnedTensor> tensors = {OwnedTensor::make("embedding.word_embeddings.weight", DType::F32, {50304, 768}, 1)};
  for (int i = 0; i < 24; ++i)
    tensors.push_back(OwnedTensor::make("decoder.layers." + std::to_string(i) + ".mlp.linear_fc1.weight", DType::F32,
                                        {768, 640}, 100 + i));
  uint64_t total = 0;
  for (const OwnedTensor &t : tensors)
    total += t.bytes.size();
  double mb = total / 1e6;

  std::vector<std::vector<unsigned char>> loaded;
  std::vector<LoadTensor> request;
  for (const OwnedTensor &t : tensors)
    loaded.emplace_back(t.bytes.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i)
    request.push_back(LoadTensor{tensors[i].name, tensors[i].dtype, tensors[i].shape, loaded[i].data(), nullptr});

  for (int round = 0; round < 3; ++round) {
    auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10 + round), toSave(tensors)), "");
    double save = seconds(start);

    std::string data = iterationDirectory(dir.path, 10 + round) + "/" + std::string(kDataFileName);
    start = std::chrono::steady_clock::now();
    CheckpointReader reader;
    ASSERT_EQ(reader.open(iterationDirectory(dir.path, 10 + round)), "");
    ASSERT_EQ(reader.readTensors(request), "");
    double warm = seconds(start);

    dropFromPageCache(data);
    start = std::chrono::steady_clock::now();
    CheckpointReader cold;
    ASSERT_EQ(cold.open(iterationDirectory(dir.path, 10 + round)), "");
    ASSERT_EQ(cold.readTensors(request), "");
    double coldSeconds = seconds(start);

    for (size_t i = 0; i < tensors.size(); ++i)
      ASSERT_EQ(loaded[i], tensors[i].bytes);
    std::printf("%.0f MB, %zu tensors: save %.3f s (%.0f MB/s, fsync included), load warm %.3f s (%.0f MB/s), "
                "load cold %.3f s (%.0f MB/s)\n",
                mb, tensors.size(), save, mb / save, warm, mb / warm, coldSeconds, mb / coldSeconds);
  }
}

} // namespace
} // namespace megatron::ckpt::test
