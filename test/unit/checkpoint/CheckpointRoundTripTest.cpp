//===- CheckpointRoundTripTest.cpp - Save, load, layout, latest, overwrite ===//

#include "CheckpointTestUtil.h"

#include <fstream>

namespace megatron::ckpt::test {
namespace {

TEST(CheckpointNames, MegatronLayout) {
  EXPECT_EQ(iterationDirectoryName(10), "iter_0000010");
  EXPECT_EQ(iterationDirectoryName(0), "iter_0000000");
  EXPECT_EQ(iterationDirectoryName(12345678), "iter_12345678");
  EXPECT_EQ(iterationDirectory("/ckpt", 500), "/ckpt/iter_0000500");
  EXPECT_EQ(iterationDirectory("/ckpt/", 500), "/ckpt/iter_0000500");
  EXPECT_EQ(iterationOfDirectoryName("iter_0000500"), 500);
  EXPECT_EQ(iterationOfDirectoryName("iter_500"), -1);
  EXPECT_EQ(iterationOfDirectoryName(".iter_0000500.old"), -1);
  for (DType d : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8})
    EXPECT_EQ(parseDType(dtypeName(d)), d);
  EXPECT_EQ(parseDType("float32"), std::nullopt);
  EXPECT_EQ(dtypeBytes(DType::BF16), 2u);
  EXPECT_EQ(shapeString({}), "[]");
  EXPECT_EQ(shapeString({2, 3}), "[2, 3]");
}

TEST(CheckpointRoundTrip, EveryDtypeBitwise) {
  TempDir dir;
  std::vector<OwnedTensor> tensors = {
      OwnedTensor::make("a.f32", DType::F32, {3, 5}, 1),
      OwnedTensor::make("b.f64", DType::F64, {7}, 2),
      OwnedTensor::make("c.bf16", DType::BF16, {2, 3, 5}, 3), // 60 bytes: the next tensor needs padding.
      OwnedTensor::make("d.f16", DType::F16, {9}, 4),
      OwnedTensor::make("e.i32", DType::I32, {1, 1, 1}, 5),
      OwnedTensor::make("f.i64", DType::I64, {}, 6), // A scalar.
      OwnedTensor::make("g.u8", DType::U8, {13}, 7),
      OwnedTensor::make("h.empty", DType::F32, {0, 4}, 8),
      OwnedTensor::make("i.after-empty \"quoted\" \xc3\xa9", DType::F32, {2}, 9),
  };
  // NaN payloads and signed zeros must survive: the format copies bytes, it never converts.
  uint32_t nan = 0x7fc01234u, negZero = 0x80000000u;
  std::memcpy(tensors[0].bytes.data(), &nan, 4);
  std::memcpy(tensors[0].bytes.data() + 4, &negZero, 4);

  CheckpointInfo saved = infoFor(10);
  ASSERT_EQ(saveCheckpoint(dir.path, saved, toSave(tensors)), "");

  CheckpointInfo loaded;
  ASSERT_EQ(loadAndCompare(dir.path, tensors, &loaded), "");
  EXPECT_EQ(loaded.iteration, 10);
  EXPECT_EQ(loaded.modelFingerprint, saved.modelFingerprint);
  EXPECT_EQ(loaded.planFingerprint, saved.planFingerprint);
  EXPECT_EQ(loaded.runState, saved.runState);
  EXPECT_EQ(loaded.runState["lr_scheduler"]["max_lr"].get<double>(), 6e-4);

  CheckpointReader reader;
  ASSERT_EQ(reader.open(iterationDirectory(dir.path, 10)), "");
  ASSERT_EQ(reader.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRecord &r = reader.tensors()[i];
    EXPECT_EQ(r.name, tensors[i].name);
    EXPECT_EQ(r.dtype, tensors[i].dtype);
    EXPECT_EQ(r.shape, tensors[i].shape);
    EXPECT_EQ(r.bytes, tensors[i].bytes.size());
    EXPECT_EQ(r.offset % kAlignment, 0u) << r.name;
    EXPECT_EQ(r.checksum, checksum(tensors[i].bytes.data(), tensors[i].bytes.size()));
  }
  EXPECT_EQ(reader.verifyAll(), "");
  EXPECT_EQ(reader.checkFingerprints("gpt-model-1234", "plan-abcd"), "");
  EXPECT_EQ(reader.checkFingerprints("", ""), "");
}

TEST(CheckpointRoundTrip, LayoutIsMegatronsAndMetadataIsReadable) {
  TempDir dir;
  std::vector<OwnedTensor> tensors = smallModel(0);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(tensors)), "");

  EXPECT_EQ(entries(dir.path), (std::set<std::string>{"iter_0000010", "latest_checkpointed_iteration.txt"}));
  EXPECT_EQ(readFile(dir / "latest_checkpointed_iteration.txt"), "10\n");
  std::string iter = dir / "iter_0000010";
  EXPECT_EQ(entries(iter), (std::set<std::string>{"metadata.json", "model_optim_rng.bin"}));

  std::string text = readFile(iter + "/metadata.json");
  nlohmann::json metadata = nlohmann::json::parse(text);
  EXPECT_EQ(metadata["format"], "megatron-compiler-checkpoint");
  EXPECT_EQ(metadata["version"], 1);
  EXPECT_EQ(metadata["iteration"], 10);
  EXPECT_EQ(metadata["checksum"], "xxh3-64");
  EXPECT_EQ(metadata["alignment"], 64);
  EXPECT_EQ(metadata["data_file"], "model_optim_rng.bin");
  EXPECT_EQ(metadata["run_state"]["consumed_samples"], 5120);
  ASSERT_EQ(metadata["tensors"].size(), tensors.size());
  EXPECT_EQ(metadata["tensors"][1]["dtype"], "bf16");
  EXPECT_EQ(metadata["tensors"][1]["shape"], nlohmann::json({48, 16}));
  // The format and version come first, and each tensor is one line.
  EXPECT_EQ(text.rfind("{\n  \"format\": \"megatron-compiler-checkpoint\",\n  \"version\": 1,\n", 0), 0u) << text;
  EXPECT_NE(text.find("\n    {\"name\": \"decoder.final_layernorm.bias\", \"dtype\": \"f32\", \"shape\": [16], "
                      "\"offset\": "),
            std::string::npos)
      << text;

  std::string data = readFile(iter + "/model_optim_rng.bin");
  EXPECT_EQ(data.substr(0, 8), "MEGACKPT");
  EXPECT_EQ(data.size(), metadata["data_bytes"].get<uint64_t>());
  // Tensors are raw little-endian bytes at their offsets.
  const nlohmann::json &first = metadata["tensors"][0];
  EXPECT_EQ(first["offset"], 64);
  EXPECT_EQ(std::memcmp(data.data() + 64, tensors[0].bytes.data(), tensors[0].bytes.size()), 0);
}

TEST(CheckpointRoundTrip, SavingIsDeterministic) {
  TempDir a, b;
  std::vector<OwnedTensor> tensors = smallModel(7);
  ASSERT_EQ(saveCheckpoint(a.path, infoFor(3), toSave(tensors)), "");
  ASSERT_EQ(saveCheckpoint(b.path, infoFor(3), toSave(tensors)), "");
  for (const char *file : {"metadata.json", "model_optim_rng.bin"})
    EXPECT_EQ(readFile(a / "iter_0000003/" + file), readFile(b / "iter_0000003/" + file)) << file;
}

TEST(CheckpointRoundTrip, LatestPointsAtTheLastSave) {
  TempDir dir;
  EXPECT_FALSE(hasLatestCheckpoint(dir.path));
  std::vector<OwnedTensor> at10 = smallModel(10), at20 = smallModel(20);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(at10)), "");
  EXPECT_TRUE(hasLatestCheckpoint(dir.path));
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(20), toSave(at20)), "");
  EXPECT_EQ(readFile(dir / "latest_checkpointed_iteration.txt"), "20\n");

  LatestCheckpoint latest;
  ASSERT_EQ(findLatestCheckpoint(dir.path, latest), "");
  EXPECT_EQ(latest.iteration, 20);
  EXPECT_FALSE(latest.release);
  EXPECT_EQ(latest.directory, dir / "iter_0000020");
  CheckpointInfo info;
  ASSERT_EQ(loadAndCompare(dir.path, at20, &info), "");
  EXPECT_EQ(info.iteration, 20);

  // The older iteration stays loadable by its directory (Megatron's --ckpt-step).
  CheckpointReader reader;
  ASSERT_EQ(reader.open(dir / "iter_0000010"), "");
  EXPECT_EQ(reader.info().iteration, 10);
  EXPECT_EQ(reader.verifyAll(), "");

  // Saving without updating latest leaves it alone.
  SaveOptions options;
  options.updateLatest = false;
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(30), toSave(at10), options), "");
  EXPECT_EQ(readFile(dir / "latest_checkpointed_iteration.txt"), "20\n");
  EXPECT_TRUE(exists(dir / "iter_0000030"));

  // Megatron-LM writes the number without a newline, and "release" for converted checkpoints.
  writeFile(dir / "latest_checkpointed_iteration.txt", "10");
  ASSERT_EQ(findLatestCheckpoint(dir.path, latest), "");
  EXPECT_EQ(latest.iteration, 10);
  ASSERT_EQ(::rename((dir / "iter_0000020").c_str(), (dir / "release").c_str()), 0);
  writeFile(dir / "latest_checkpointed_iteration.txt", "release\n");
  ASSERT_EQ(findLatestCheckpoint(dir.path, latest), "");
  EXPECT_TRUE(latest.release);
  EXPECT_EQ(latest.directory, dir / "release");
  EXPECT_EQ(loadAndCompare(dir.path, at20), "");
}

TEST(CheckpointRoundTrip, SavingAnExistingIterationReplacesIt) {
  for (bool exchange : {true, false}) {
    SCOPED_TRACE(exchange ? "RENAME_EXCHANGE" : "two renames");
    TempDir dir;
    std::vector<OwnedTensor> first = smallModel(1), second = smallModel(2);
    second.push_back(OwnedTensor::make("extra", DType::U8, {100}, 3));
    SaveOptions options;
    options.allowRenameExchange = exchange;
    ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(first), options), "");
    CheckpointInfo info = infoFor(10);
    info.runState["replaced"] = true;
    ASSERT_EQ(saveCheckpoint(dir.path, info, toSave(second), options), "");

    CheckpointInfo loaded;
    ASSERT_EQ(loadAndCompare(dir.path, second, &loaded), "");
    EXPECT_EQ(loaded.runState["replaced"], true);
    // Nothing is left of the old copy or of the temporaries.
    EXPECT_EQ(entries(dir.path), (std::set<std::string>{"iter_0000010", "latest_checkpointed_iteration.txt"}));
  }
}

TEST(CheckpointRoundTrip, CallbackSourcesAndDestinations) {
  // Memory the library cannot address (a GPU's) is saved and loaded piece by piece; 5 MiB spans several pieces.
  TempDir dir;
  OwnedTensor big = OwnedTensor::make("big", DType::F32, {5, 1 << 18}, 42);
  SaveTensor source{big.name, big.dtype, big.shape, nullptr,
                    [&](uint64_t offset, void *buffer, size_t size) -> std::string {
                      if (offset + size > big.bytes.size())
                        return "out of range";
                      std::memcpy(buffer, big.bytes.data() + offset, size);
                      return {};
                    }};
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(1), {source}), "");

  std::vector<unsigned char> copy(big.bytes.size());
  size_t pieces = 0;
  LoadTensor sink{big.name, big.dtype, big.shape, nullptr,
                  [&](uint64_t offset, const void *bytes, size_t size) -> std::string {
                    std::memcpy(copy.data() + offset, bytes, size);
                    ++pieces;
                    return {};
                  }};
  CheckpointReader reader;
  ASSERT_EQ(reader.open(dir / "iter_0000001"), "");
  ASSERT_EQ(reader.readTensor(sink), "");
  EXPECT_GT(pieces, 1u);
  EXPECT_EQ(copy, big.bytes);
}

TEST(CheckpointRoundTrip, ReadsASubsetInAnyOrder) {
  // --no-load-optim: the runtime asks for the weights only.
  TempDir dir;
  std::vector<OwnedTensor> tensors = smallModel(5);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(2), toSave(tensors)), "");
  std::vector<OwnedTensor> subset = {tensors[2], tensors[0]};
  EXPECT_EQ(loadAndCompare(dir.path, subset), "");
}

TEST(CheckpointRoundTrip, RunStateAsStrings) {
  TempDir dir;
  CheckpointInfo info;
  info.iteration = 4;
  info.runState = nullptr; // Null counts as an empty object.
  ASSERT_EQ(saveCheckpoint(dir.path, info, {}), "");
  CheckpointInfo loaded;
  ASSERT_EQ(loadAndCompare(dir.path, {}, &loaded), "");
  EXPECT_EQ(loaded.runState, nlohmann::json::object());

  info.runState = {{"data_loader", "epoch=3,offset=1234"}, {"rng", "philox:0x1234"}};
  ASSERT_EQ(saveCheckpoint(dir.path, info, {}), "");
  ASSERT_EQ(loadAndCompare(dir.path, {}, &loaded), "");
  EXPECT_EQ(loaded.runState["data_loader"], "epoch=3,offset=1234");
}

/// Peak resident memory since the last reset, in KiB; -1 where Linux cannot reset it.
long peakResidentKiB(bool reset) {
  if (reset) {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    if (!clear)
      return -1;
  }
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

TEST(CheckpointRoundTrip, StreamsWithoutCopyingTensors) {
  // 24 MiB of tensors saved and loaded with a few MiB of extra memory: tensors are streamed from and into the
  // caller's memory, never copied whole (a copy of the largest would cost 16 MiB).
  TempDir dir;
  std::vector<OwnedTensor> tensors = {OwnedTensor::make("w", DType::F32, {4 << 20}, 1),
                                      OwnedTensor::make("optimizer.exp_avg.w", DType::F32, {2 << 20}, 2)};
  std::vector<std::vector<unsigned char>> loaded;
  for (const OwnedTensor &t : tensors)
    loaded.emplace_back(t.bytes.size(), 1); // Touched, so already resident.
  long before = peakResidentKiB(true);
  if (before < 0)
    GTEST_SKIP() << "/proc/self/clear_refs cannot reset the peak resident memory here";
  { // The measurement sees a copy of the largest tensor.
    std::vector<unsigned char> copy(tensors[0].bytes);
    long withCopy = peakResidentKiB(false);
    ASSERT_GT(withCopy - before, 15 * 1024) << "the peak resident memory does not see a 16 MiB copy";
  }
  before = peakResidentKiB(true);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(1), toSave(tensors)), "");
  long afterSave = peakResidentKiB(false);

  peakResidentKiB(true);
  before = peakResidentKiB(false);
  CheckpointReader reader;
  ASSERT_EQ(reader.open(dir / "iter_0000001"), "");
  std::vector<LoadTensor> request;
  for (size_t i = 0; i < tensors.size(); ++i)
    request.push_back(LoadTensor{tensors[i].name, tensors[i].dtype, tensors[i].shape, loaded[i].data(), nullptr});
  ASSERT_EQ(reader.readTensors(request), "");
  long afterLoad = peakResidentKiB(false);
  for (size_t i = 0; i < tensors.size(); ++i)
    EXPECT_EQ(loaded[i], tensors[i].bytes);

  EXPECT_LT(afterSave - before, 8 * 1024) << "saving 24 MiB took " << afterSave - before << " KiB more";
  EXPECT_LT(afterLoad - before, 8 * 1024) << "loading 24 MiB took " << afterLoad - before << " KiB more";
  std::printf("extra peak memory: save %ld KiB, load %ld KiB\n", afterSave - before, afterLoad - before);
}

} // namespace
} // namespace megatron::ckpt::test
