//===- CheckpointErrorTest.cpp - Every bad input gets a message -----------===//
//
// Each failure mode is produced on disk the way it happens in life (a missing file, a flipped byte, a truncated
// file, an edited field) and the whole message is checked: it names the problem, the file, and the tensor.
//
//===----------------------------------------------------------------------===//

#include "CheckpointTestUtil.h"

#include "runtime/checkpoint/Metadata.h"

namespace megatron::ckpt::test {
namespace {

using ::testing::HasSubstr;

class CheckpointErrorTest : public ::testing::Test {
protected:
  /// One checkpoint, saved once for the whole suite; each test damages its own copy.
  static void SetUpTestSuite() {
    saved = new TempDir;
    ASSERT_EQ(saveCheckpoint(saved->path, infoFor(10), toSave(smallModel(100))), "");
  }
  static void TearDownTestSuite() {
    delete saved;
    saved = nullptr;
  }

  void SetUp() override {
    tensors = smallModel(100);
    ASSERT_EQ(::rmdir(dir.path.c_str()), 0);
    copyTree(saved->path, dir.path);
    iter = dir / "iter_0000010";
    metadataPath = iter + "/metadata.json";
    dataPath = iter + "/model_optim_rng.bin";
  }

  /// The error of opening the checkpoint (and, when that succeeds, of loading it all).
  std::string openError() {
    CheckpointReader reader;
    std::string error = reader.open(iter);
    return error.empty() ? loadAndCompare(dir.path, tensors) : error;
  }

  /// Edits metadata.json in place (its checksum no longer matches).
  void editMetadata(const std::string &from, const std::string &to) {
    std::string text = readFile(metadataPath);
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    writeFile(metadataPath, text.replace(at, from.size(), to));
  }

  /// Edits metadata.json and re-signs it, so that only validation can catch the edit.
  void forge(const std::string &from, const std::string &to) {
    std::string text = readFile(metadataPath);
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    forgeMetadata(iter, text.replace(at, from.size(), to));
  }

  const TensorRecord &record(const std::string &name) {
    (void)reader.open(iter);
    const TensorRecord *r = reader.find(name);
    EXPECT_NE(r, nullptr) << name;
    return *r;
  }

  static TempDir *saved;
  TempDir dir;
  std::vector<OwnedTensor> tensors;
  std::string iter, metadataPath, dataPath;
  CheckpointReader reader;
};

TempDir *CheckpointErrorTest::saved = nullptr;

//===----------------------------------------------------------------------===//
// Finding the checkpoint
//===----------------------------------------------------------------------===//

TEST_F(CheckpointErrorTest, MissingLoadDirectory) {
  LatestCheckpoint latest;
  EXPECT_EQ(findLatestCheckpoint(dir / "nope", latest), "load directory '" + dir / "nope" + "' does not exist");
  EXPECT_EQ(findLatestCheckpoint(metadataPath, latest), "load directory '" + metadataPath + "' is not a directory");
  EXPECT_EQ(reader.open(dir / "iter_0000099"), "checkpoint directory '" + dir / "iter_0000099" + "' does not exist");
  EXPECT_EQ(reader.open(metadataPath), "checkpoint directory '" + metadataPath + "' is not a directory");
}

TEST_F(CheckpointErrorTest, NoLatestFile) {
  ASSERT_EQ(::unlink((dir / "latest_checkpointed_iteration.txt").c_str()), 0);
  EXPECT_FALSE(hasLatestCheckpoint(dir.path));
  LatestCheckpoint latest;
  EXPECT_EQ(findLatestCheckpoint(dir.path, latest),
            "no checkpoint in '" + dir.path + "': latest_checkpointed_iteration.txt is missing");
}

TEST_F(CheckpointErrorTest, LatestFileWithoutANumber) {
  writeFile(dir / "latest_checkpointed_iteration.txt", "ten\n");
  LatestCheckpoint latest;
  EXPECT_EQ(findLatestCheckpoint(dir.path, latest),
            "'" + dir / "latest_checkpointed_iteration.txt" + "' does not hold an iteration number: it holds \"ten\\n\"");
  writeFile(dir / "latest_checkpointed_iteration.txt", "");
  EXPECT_THAT(findLatestCheckpoint(dir.path, latest), HasSubstr("it holds \"\""));
  writeFile(dir / "latest_checkpointed_iteration.txt", "-5");
  EXPECT_THAT(findLatestCheckpoint(dir.path, latest), HasSubstr("does not hold an iteration number"));
}

TEST_F(CheckpointErrorTest, LatestNamesAMissingIteration) {
  writeFile(dir / "latest_checkpointed_iteration.txt", "20\n");
  LatestCheckpoint latest;
  std::string expected = "'" + dir / "latest_checkpointed_iteration.txt" + "' names iteration 20, but its directory '" +
                         dir / "iter_0000020" + "' does not exist";
  EXPECT_EQ(findLatestCheckpoint(dir.path, latest), expected);
  CheckpointInfo info;
  EXPECT_EQ(loadLatestCheckpoint(dir.path, {}, info), expected);
}

TEST_F(CheckpointErrorTest, LatestNamesAFile) {
  ASSERT_EQ(::rename(iter.c_str(), (dir / "elsewhere").c_str()), 0);
  writeFile(iter, "not a directory");
  LatestCheckpoint latest;
  EXPECT_EQ(findLatestCheckpoint(dir.path, latest), "'" + dir / "latest_checkpointed_iteration.txt" +
                                                        "' names a checkpoint directory '" + iter +
                                                        "' that is not a directory");
}

TEST_F(CheckpointErrorTest, DirectoryNamedForAnotherIteration) {
  ASSERT_EQ(::rename(iter.c_str(), (dir / "iter_0000011").c_str()), 0);
  EXPECT_EQ(reader.open(dir / "iter_0000011"), "checkpoint directory '" + dir / "iter_0000011" +
                                                   "' is named for iteration 11, but its metadata records iteration 10");
}

//===----------------------------------------------------------------------===//
// The metadata
//===----------------------------------------------------------------------===//

TEST_F(CheckpointErrorTest, MetadataMissing) {
  ASSERT_EQ(::unlink(metadataPath.c_str()), 0);
  EXPECT_EQ(openError(),
            "metadata file '" + metadataPath + "' is missing: '" + iter + "' is not a complete checkpoint");
}

TEST_F(CheckpointErrorTest, MetadataUnreadable) {
  ASSERT_EQ(::unlink(metadataPath.c_str()), 0);
  ASSERT_EQ(::mkdir(metadataPath.c_str(), 0777), 0);
  EXPECT_EQ(openError(), "cannot read metadata file '" + metadataPath + "': Is a directory");
}

TEST_F(CheckpointErrorTest, MetadataNotJson) {
  writeFile(metadataPath, "{\"format\": \"megatron-compiler-checkpoint\", \"version\": 1,\n  garbage");
  EXPECT_EQ(openError(), "metadata file '" + metadataPath +
                             "' is not valid JSON: parse error at line 2, column 3: syntax error while parsing object "
                             "key - invalid literal; last read: '1,<U+000A>  g'; expected string literal");
  writeFile(metadataPath, "");
  EXPECT_THAT(openError(), HasSubstr("' is not valid JSON: parse error at line 1, column 1"));
  writeFile(metadataPath, "[1, 2]");
  EXPECT_EQ(openError(), "metadata file '" + metadataPath + "' is not a JSON object");
}

TEST_F(CheckpointErrorTest, MetadataCorruptedButStillJson) {
  // A flipped digit keeps the JSON valid; the checksum in the data file's header catches it.
  editMetadata("\"shape\": [64, 16]", "\"shape\": [64, 17]");
  std::string error = openError();
  EXPECT_THAT(error, HasSubstr("checksum mismatch in metadata file '" + metadataPath + "': the header of '" +
                               dataPath + "' records xxh3 "));
  EXPECT_THAT(error, HasSubstr("the metadata was modified or damaged after saving, or the two files come from "
                               "different checkpoints"));
}

TEST_F(CheckpointErrorTest, MetadataFromAnotherCheckpoint) {
  TempDir other;
  ASSERT_EQ(saveCheckpoint(other.path, infoFor(10), toSave(smallModel(5))), "");
  writeFile(metadataPath, readFile(other / "iter_0000010/metadata.json"));
  EXPECT_THAT(openError(), HasSubstr("checksum mismatch in metadata file '" + metadataPath + "'"));
}

TEST_F(CheckpointErrorTest, WrongFormatName) {
  editMetadata("\"megatron-compiler-checkpoint\"", "\"safetensors\"");
  EXPECT_EQ(openError(), "metadata file '" + metadataPath +
                             "' is not a megatron-compiler-checkpoint checkpoint: its format is \"safetensors\", "
                             "expected \"megatron-compiler-checkpoint\"");
  writeFile(metadataPath, "{\"version\": 1}");
  EXPECT_EQ(openError(), "metadata file '" + metadataPath +
                             "' has no 'format' field: it is not a megatron-compiler-checkpoint checkpoint");
  // Megatron-LM's own torch_dist checkpoints also have a metadata.json.
  writeFile(metadataPath, "{\"sharded_backend\": \"torch_dist\", \"sharded_backend_version\": 1}");
  EXPECT_EQ(openError(), "metadata file '" + metadataPath +
                             "' belongs to a Megatron-LM distributed checkpoint (sharded_backend \"torch_dist\"), "
                             "which megatron-run does not read; convert its tensors by name");
}

TEST_F(CheckpointErrorTest, NewerAndOlderVersions) {
  editMetadata("\"version\": 1,", "\"version\": 2,");
  EXPECT_EQ(openError(), "checkpoint format version 2 in '" + metadataPath +
                             "' is newer than this build reads (1): load it with a newer megatron-run");
  editMetadata("\"version\": 2,", "\"version\": 0,");
  EXPECT_EQ(openError(), "checkpoint format version 0 in '" + metadataPath +
                             "' is older than the oldest this build reads (1)");
  editMetadata("\"version\": 0,", "\"version\": \"1\",");
  EXPECT_EQ(openError(), "metadata file '" + metadataPath + "': field 'version' must be an integer, not \"1\"");
}

TEST_F(CheckpointErrorTest, ForgedMetadataIsValidated) {
  // Metadata that passes its checksum but describes an impossible layout never reaches a pread.
  std::string prefix = "metadata file '" + metadataPath + "': ";
  std::string original = readFile(metadataPath);
  std::string header = readFile(dataPath).substr(0, 64);
  auto restore = [&] {
    writeFile(metadataPath, original);
    std::string data = readFile(dataPath);
    writeFile(dataPath, data.replace(0, 64, header));
  };

  forge("\"dtype\": \"bf16\"", "\"dtype\": \"fp8\"");
  EXPECT_EQ(openError(), prefix + "tensor 'decoder.layers.0.self_attention.linear_qkv.weight': unknown dtype 'fp8' "
                                  "(known: f32, f64, bf16, f16, i32, i64, u8)");
  restore();
  forge("\"shape\": [48, 16]", "\"shape\": [48, 17]");
  EXPECT_EQ(openError(), prefix + "tensor 'decoder.layers.0.self_attention.linear_qkv.weight': holds 1536 bytes, "
                                  "but bf16 [48, 17] needs 1632");
  restore();
  forge("\"shape\": [48, 16]", "\"shape\": [48, -16]");
  EXPECT_EQ(openError(), prefix + "tensor 'decoder.layers.0.self_attention.linear_qkv.weight': field 'shape' must be "
                                  "an array of non-negative integers, not [48,-16]");
  restore();
  forge("\"offset\": 64,", "\"offset\": 65,");
  EXPECT_EQ(openError(), prefix + "tensor 'embedding.word_embeddings.weight': offset 65 is not a multiple of 64 "
                                  "after the header");
  restore();
  forge("\"offset\": 64,", "\"offset\": 4160,"); // Onto the next tensor.
  EXPECT_EQ(openError(), prefix + "tensors 'embedding.word_embeddings.weight' and "
                                  "'decoder.layers.0.self_attention.linear_qkv.weight' overlap");
  restore();
  forge("\"name\": \"decoder.final_layernorm.bias\"", "\"name\": \"embedding.word_embeddings.weight\"");
  EXPECT_EQ(openError(), prefix + "tensor 'embedding.word_embeddings.weight' appears twice");
  restore();
  forge("\"iteration\": 10,", "");
  EXPECT_EQ(openError(), prefix + "field 'iteration' is missing");
  restore();
  forge("\"checksum\": \"xxh3-64\"", "\"checksum\": \"crc32\"");
  EXPECT_EQ(openError(), prefix + "unknown checksum algorithm 'crc32' (this build knows xxh3-64)");
  restore();
  EXPECT_EQ(openError(), "");
}

TEST_F(CheckpointErrorTest, RandomlyDamagedMetadataNeverCrashes) {
  // Every mutation, re-signed so that validation rather than the checksum sees it, ends in a message or a load.
  std::string original = readFile(metadataPath);
  std::vector<unsigned char> noise = randomBytes(4000, 99);
  for (int i = 0; i < 300; ++i) {
    std::string text = original;
    size_t at = (noise[4 * i % noise.size()] | noise[(4 * i + 1) % noise.size()] << 8) % text.size();
    text[at] = static_cast<char>(noise[(4 * i + 2) % noise.size()] % 2 ? noise[(4 * i + 3) % noise.size()]
                                                                       : "0123456789,[]{}\"-"[i % 17]);
    forgeMetadata(iter, text);
    CheckpointReader r;
    if (r.open(iter).empty())
      (void)r.verifyAll();
  }
}

//===----------------------------------------------------------------------===//
// The data file
//===----------------------------------------------------------------------===//

TEST_F(CheckpointErrorTest, DataFileMissing) {
  ASSERT_EQ(::unlink(dataPath.c_str()), 0);
  EXPECT_EQ(openError(), "data file '" + dataPath + "' is missing: '" + iter + "' is not a complete checkpoint");
}

TEST_F(CheckpointErrorTest, DataFileTruncated) {
  std::string data = readFile(dataPath);
  const TensorRecord &last = record("optimizer.step");
  writeFile(dataPath, data.substr(0, data.size() - 3));
  EXPECT_EQ(openError(), "data file '" + dataPath + "' is truncated: it has " + std::to_string(data.size() - 3) +
                             " bytes, the checkpoint needs " + std::to_string(data.size()) +
                             "; tensor 'optimizer.step' (bytes " + std::to_string(last.offset) + ".." +
                             std::to_string(last.offset + 8) + ") is cut off");
  writeFile(dataPath, data.substr(0, 5000));
  EXPECT_THAT(openError(), HasSubstr("is truncated: it has 5000 bytes, the checkpoint needs " +
                                     std::to_string(data.size()) +
                                     "; tensor 'decoder.layers.0.self_attention.linear_qkv.weight' (bytes 4160..5696) "
                                     "is cut off"));
  writeFile(dataPath, data.substr(0, 10));
  EXPECT_EQ(openError(), "data file '" + dataPath + "' is truncated: it has 10 bytes, less than its 64-byte header");
}

TEST_F(CheckpointErrorTest, DataFileTruncatedAfterOpening) {
  ASSERT_EQ(reader.open(iter), "");
  ASSERT_EQ(::truncate(dataPath.c_str(), 100), 0);
  EXPECT_EQ(reader.verifyAll(), "data file '" + dataPath +
                                    "' ends inside tensor 'embedding.word_embeddings.weight': it was truncated after "
                                    "the checkpoint was opened");
}

TEST_F(CheckpointErrorTest, DataFileWithTrailingBytes) {
  std::string data = readFile(dataPath);
  writeFile(dataPath, data + "x");
  EXPECT_EQ(openError(), "data file '" + dataPath + "' has " + std::to_string(data.size() + 1) + " bytes, more than the " +
                             std::to_string(data.size()) + " the checkpoint wrote: something was appended to it");
}

TEST_F(CheckpointErrorTest, DataFileHeaderDamaged) {
  flipByte(dataPath, 20);
  EXPECT_EQ(openError(), "data file '" + dataPath + "' has a corrupted header: its checksum does not match");
  flipByte(dataPath, 20);
  flipByte(dataPath, 0);
  EXPECT_EQ(openError(), "data file '" + dataPath + "' is not a checkpoint data file: it does not start with \"MEGACKPT\"");
}

TEST_F(CheckpointErrorTest, FlippedByteNamesTheTensor) {
  const TensorRecord &bias = record("decoder.final_layernorm.bias");
  flipByte(dataPath, bias.offset + 17);
  std::string expectedStart = "checksum mismatch in tensor 'decoder.final_layernorm.bias' of data file '" + dataPath +
                              "' (bytes " + std::to_string(bias.offset) + ".." + std::to_string(bias.offset + 64) +
                              "): recorded " + checksumHex(bias.checksum) + ", computed ";
  std::string error = openError();
  EXPECT_EQ(error.rfind(expectedStart, 0), 0u) << error;
  EXPECT_THAT(error, HasSubstr("; the file is corrupted"));
  EXPECT_EQ(reader.verifyAll().rfind(expectedStart, 0), 0u);

  // Reading only the other tensors succeeds: each is verified on its own.
  std::vector<unsigned char> weights(tensors[0].bytes.size());
  EXPECT_EQ(reader.readTensor({tensors[0].name, tensors[0].dtype, tensors[0].shape, weights.data(), nullptr}), "");
  EXPECT_EQ(weights, tensors[0].bytes);
}

//===----------------------------------------------------------------------===//
// What the caller expects
//===----------------------------------------------------------------------===//

TEST_F(CheckpointErrorTest, FingerprintMismatch) {
  ASSERT_EQ(reader.open(iter), "");
  EXPECT_EQ(reader.checkFingerprints("gpt-model-9999", "plan-abcd"),
            "checkpoint '" + iter + "' was saved for a different model: its model fingerprint is 'gpt-model-1234', "
                                    "this run's is 'gpt-model-9999'");
  EXPECT_EQ(reader.checkFingerprints("gpt-model-1234", "plan-tp2"),
            "checkpoint '" + iter + "' was saved with a different plan: its plan fingerprint is 'plan-abcd', this "
                                    "run's is 'plan-tp2'");
  LoadRequest request;
  request.modelFingerprint = "other-model";
  CheckpointInfo info;
  EXPECT_THAT(loadLatestCheckpoint(dir.path, request, info), HasSubstr("its model fingerprint is 'gpt-model-1234', "
                                                                        "this run's is 'other-model'"));
}

TEST_F(CheckpointErrorTest, MissingTensor) {
  ASSERT_EQ(reader.open(iter), "");
  std::vector<float> buffer(16);
  EXPECT_EQ(reader.readTensor({"decoder.final_layernorm.weight", DType::F32, {16}, buffer.data(), nullptr}),
            "checkpoint '" + iter + "' has no tensor 'decoder.final_layernorm.weight'");
  // readTensors checks every tensor before reading any.
  std::vector<float> weights(64 * 16);
  EXPECT_EQ(reader.readTensors({{tensors[0].name, DType::F32, {64, 16}, weights.data(), nullptr},
                                {"optimizer.exp_avg_sq.embedding.word_embeddings.weight", DType::F32, {64, 16},
                                 weights.data(), nullptr}}),
            "checkpoint '" + iter + "' has no tensor 'optimizer.exp_avg_sq.embedding.word_embeddings.weight'");
}

TEST_F(CheckpointErrorTest, TensorRequestedTwice) {
  ASSERT_EQ(reader.open(iter), "");
  std::vector<unsigned char> a(8), b(8);
  EXPECT_EQ(reader.readTensors({{"optimizer.step", DType::I64, {}, a.data(), nullptr},
                                {"optimizer.step", DType::I64, {}, b.data(), nullptr}}),
            "tensor 'optimizer.step' is requested twice");
}

TEST_F(CheckpointErrorTest, WrongShapeOrDtype) {
  ASSERT_EQ(reader.open(iter), "");
  std::vector<float> buffer(64 * 16);
  EXPECT_EQ(reader.readTensor({"embedding.word_embeddings.weight", DType::F32, {16, 64}, buffer.data(), nullptr}),
            "tensor 'embedding.word_embeddings.weight' in checkpoint '" + iter +
                "' has shape [64, 16], expected [16, 64]");
  EXPECT_EQ(reader.readTensor({"embedding.word_embeddings.weight", DType::BF16, {64, 16}, buffer.data(), nullptr}),
            "tensor 'embedding.word_embeddings.weight' in checkpoint '" + iter + "' has dtype f32, expected bf16");
  EXPECT_EQ(reader.readTensor({"optimizer.step", DType::I64, {1}, buffer.data(), nullptr}),
            "tensor 'optimizer.step' in checkpoint '" + iter + "' has shape [], expected [1]");
  EXPECT_EQ(reader.readTensor({"optimizer.step", DType::I64, {}, nullptr, nullptr}),
            "tensor 'optimizer.step' has no destination: set LoadTensor::data or LoadTensor::write");
}

TEST_F(CheckpointErrorTest, DestinationFailure) {
  ASSERT_EQ(reader.open(iter), "");
  LoadTensor sink{"optimizer.step", DType::I64, {}, nullptr,
                  [](uint64_t, const void *, size_t) -> std::string { return "cudaMemcpy failed: out of memory"; }};
  EXPECT_EQ(reader.readTensor(sink), "cannot store tensor 'optimizer.step': cudaMemcpy failed: out of memory");
}

TEST_F(CheckpointErrorTest, ReaderThatFailedToOpen) {
  EXPECT_NE(reader.open(dir / "nope"), "");
  EXPECT_EQ(reader.verifyAll(), "no checkpoint is open (CheckpointReader::open failed or was not called)");
}

//===----------------------------------------------------------------------===//
// Saving
//===----------------------------------------------------------------------===//

TEST_F(CheckpointErrorTest, InvalidSaveRequests) {
  std::string prefix = "cannot save checkpoint iteration 11 to '" + dir.path + "': ";
  std::vector<SaveTensor> save = toSave(tensors);
  save.push_back(save[0]);
  EXPECT_EQ(saveCheckpoint(dir.path, infoFor(11), save), prefix + "tensor 'embedding.word_embeddings.weight' is given twice");
  save = toSave(tensors);
  save[1].shape = {48, -16};
  EXPECT_EQ(saveCheckpoint(dir.path, infoFor(11), save),
            prefix + "tensor 'decoder.layers.0.self_attention.linear_qkv.weight' has a negative dimension in its shape "
                     "[48, -16]");
  save = toSave(tensors);
  save[2].data = nullptr;
  EXPECT_EQ(saveCheckpoint(dir.path, infoFor(11), save),
            prefix + "tensor 'decoder.final_layernorm.bias' has no source: set SaveTensor::data or SaveTensor::read");
  save = toSave(tensors);
  save[0].name = "";
  EXPECT_EQ(saveCheckpoint(dir.path, infoFor(11), save), prefix + "tensor #0 has no name");
  save = toSave(tensors);
  save[0].name = "bad\xff";
  EXPECT_EQ(saveCheckpoint(dir.path, infoFor(11), save), prefix + "the name of tensor #0 is not valid UTF-8");
  CheckpointInfo info = infoFor(11);
  info.runState = nlohmann::json::array({1, 2});
  EXPECT_EQ(saveCheckpoint(dir.path, info, {}), prefix + "the run state must be a JSON object, not array");
  info = infoFor(-1);
  EXPECT_EQ(saveCheckpoint(dir.path, info, {}),
            "cannot save checkpoint iteration -1 to '" + dir.path + "': the iteration is negative");

  // None of this touched the checkpoint that was there.
  EXPECT_EQ(entries(dir.path), (std::set<std::string>{"iter_0000010", "latest_checkpointed_iteration.txt"}));
  EXPECT_EQ(loadAndCompare(dir.path, tensors), "");
}

TEST_F(CheckpointErrorTest, FailingSourceLeavesThePreviousCheckpoint) {
  std::vector<SaveTensor> save = toSave(smallModel(200));
  save[3].data = nullptr;
  save[3].read = [](uint64_t, void *, size_t) -> std::string { return "cudaMemcpy failed: illegal address"; };
  for (int64_t iteration : {10, 20}) { // Replacing the latest iteration, and adding a new one.
    EXPECT_EQ(saveCheckpoint(dir.path, infoFor(iteration), save),
              "cannot save checkpoint iteration " + std::to_string(iteration) + " to '" + dir.path +
                  "': reading tensor 'optimizer.exp_avg.embedding.word_embeddings.weight' from its source: cudaMemcpy "
                  "failed: illegal address");
    EXPECT_EQ(entries(dir.path), (std::set<std::string>{"iter_0000010", "latest_checkpointed_iteration.txt"}));
    EXPECT_EQ(loadAndCompare(dir.path, tensors), "");
  }
}

} // namespace
} // namespace megatron::ckpt::test
