//===- Checkpoint.h - Megatron-style training checkpoints --------*- C++ -*-===//
//
// megatron-run's --save / --load: one directory per saved iteration, laid out as Megatron-LM lays it out,
//
//   <save-dir>/latest_checkpointed_iteration.txt      "10"
//   <save-dir>/iter_0000010/metadata.json              format, version, iteration, fingerprints, run state,
//                                                      and the table of tensors (name, dtype, shape, offset,
//                                                      size, XXH3-64 checksum)
//   <save-dir>/iter_0000010/model_optim_rng.bin        a 64-byte header (which holds the metadata's checksum),
//                                                      then every tensor's raw little-endian bytes, 64-byte aligned
//
// Saving is atomic (a temporary directory, fsync, rename, then the latest file), loading verifies every checksum
// it reads, and every failure is an error string naming the problem and the file (and the tensor). Nothing here
// throws or asserts on bad input. See docs/checkpoints.md.
//
// Plain C++17: no MLIR or LLVM. Run state is a nlohmann::json object.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CHECKPOINT_CHECKPOINT_H
#define MEGATRON_RUNTIME_CHECKPOINT_CHECKPOINT_H

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace megatron::ckpt {

//===----------------------------------------------------------------------===//
// The format
//===----------------------------------------------------------------------===//

/// The "format" field of every metadata file.
inline constexpr std::string_view kFormatName = "megatron-compiler-checkpoint";
/// The version this build writes, and the only one it reads.
inline constexpr int64_t kFormatVersion = 1;
/// Every tensor starts at a multiple of this offset in the data file (and the header is this long).
inline constexpr uint64_t kAlignment = 64;

inline constexpr std::string_view kLatestFileName = "latest_checkpointed_iteration.txt";
inline constexpr std::string_view kMetadataFileName = "metadata.json";
inline constexpr std::string_view kDataFileName = "model_optim_rng.bin";

/// Element types of checkpointed tensors.
enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, U8 };

/// "f32", "f64", "bf16", "f16", "i32", "i64", "u8".
std::string_view dtypeName(DType dtype);
/// The inverse of dtypeName; nullopt for anything else.
std::optional<DType> parseDType(std::string_view name);
/// Bytes per element.
uint64_t dtypeBytes(DType dtype);

/// "[2, 3]" (and "[]" for a scalar), as the error messages print shapes.
std::string shapeString(const std::vector<int64_t> &shape);

/// "iter_0000010": Megatron-LM's name, the iteration zero-padded to 7 digits.
std::string iterationDirectoryName(int64_t iteration);
/// <saveDir>/iter_0000010.
std::string iterationDirectory(const std::string &saveDir, int64_t iteration);

//===----------------------------------------------------------------------===//
// What a checkpoint holds besides its tensors
//===----------------------------------------------------------------------===//

struct CheckpointInfo {
  /// The training iteration the checkpoint was taken after (Megatron's `iteration`).
  int64_t iteration = 0;
  /// Opaque strings the runtime computes; loading refuses a checkpoint whose fingerprints differ from the run's.
  std::string modelFingerprint;
  std::string planFingerprint;
  /// Free-form run state: LR scheduler, data loader position, RNG seed, consumed samples, the run's flags...
  /// Must be a JSON object (null counts as an empty object). String key/values are just string members.
  nlohmann::json runState = nlohmann::json::object();
};

//===----------------------------------------------------------------------===//
// Saving
//===----------------------------------------------------------------------===//

/// One tensor to save. Its bytes are streamed from the caller's memory, never copied whole: either `data` points
/// at numElements * dtypeBytes bytes of host memory, or `read` produces them piece by piece (for memory the
/// library cannot read directly, such as a GPU's): it fills `buffer` with `size` bytes starting at byte `offset`
/// of the tensor and returns "" or an error message. Exactly one of the two must be set (neither, for a tensor of
/// no elements).
struct SaveTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
  std::function<std::string(uint64_t offset, void *buffer, size_t size)> read;
};

/// The points of the save protocol, in order; SaveOptions::afterStep is called after each (tests use it to
/// simulate a crash there).
enum class SaveStep {
  TemporaryWritten,   ///< .iter_N.tmp-*/ holds the complete, fsynced checkpoint.
  OldMovedAside,      ///< Replacing without RENAME_EXCHANGE: iter_N was renamed to .iter_N.old.
  Renamed,            ///< iter_N is the new checkpoint (renamed, or exchanged with the old one) and durable.
  LatestUpdated,      ///< latest_checkpointed_iteration.txt names the iteration.
  Done,               ///< The replaced iteration's old copy is removed.
};

struct SaveOptions {
  /// Point latest_checkpointed_iteration.txt at the saved iteration (Megatron always does).
  bool updateLatest = true;
  /// Replace an existing iteration with renameat2(RENAME_EXCHANGE) where the file system has it; false forces
  /// the two-rename fallback (for tests).
  bool allowRenameExchange = true;
  /// Called after each step of the protocol (for tests).
  std::function<void(SaveStep)> afterStep;
};

/// Saves `tensors` and `info` as <saveDir>/iter_<info.iteration>/, creating saveDir if needed, then points
/// latest_checkpointed_iteration.txt at it. Atomic: a failure or a crash at any point leaves the previous
/// checkpoints and the latest file as they were (or, once the new iteration is in place, complete). An existing
/// directory for the same iteration is replaced. Leftovers of interrupted saves are removed first. Needs only a
/// few MiB of memory beyond the caller's tensors. Returns "" on success, otherwise a message that starts with
/// "cannot save checkpoint iteration N to '<saveDir>'" and names the reason.
[[nodiscard]] std::string saveCheckpoint(const std::string &saveDir, const CheckpointInfo &info,
                                         const std::vector<SaveTensor> &tensors, const SaveOptions &options = {});

//===----------------------------------------------------------------------===//
// Finding the checkpoint to load
//===----------------------------------------------------------------------===//

struct LatestCheckpoint {
  int64_t iteration = 0;
  /// The latest file said "release" (Megatron's name for a converted checkpoint): the directory is release/.
  bool release = false;
  /// The iteration's directory.
  std::string directory;
};

/// True when <loadDir>/latest_checkpointed_iteration.txt exists (Megatron starts from scratch when it does not).
bool hasLatestCheckpoint(const std::string &loadDir);

/// Reads <loadDir>/latest_checkpointed_iteration.txt and finds the directory it names. Errors: the load directory
/// is missing, the latest file is missing or does not hold an iteration number, the iteration's directory is
/// missing. Returns "" on success.
[[nodiscard]] std::string findLatestCheckpoint(const std::string &loadDir, LatestCheckpoint &latest);

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

/// A tensor as the checkpoint records it.
struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0; ///< In the data file.
  uint64_t bytes = 0;
  uint64_t checksum = 0; ///< XXH3-64 of the bytes.

  uint64_t numElements() const;
};

/// One tensor to load, with the dtype and shape the caller expects. Its bytes go straight into `data` (host memory
/// of numElements * dtypeBytes bytes), or, when `write` is set instead, piece by piece to `write` (for memory the
/// library cannot write directly): it receives `size` bytes for byte `offset` of the tensor and returns "" or an
/// error message. Exactly one of the two must be set (neither, for a tensor of no elements).
struct LoadTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  void *data = nullptr;
  std::function<std::string(uint64_t offset, const void *bytes, size_t size)> write;
};

/// An opened checkpoint directory. open() reads and verifies the metadata (format, version, checksum, the table of
/// tensors, the data file's header and size); reading a tensor verifies its checksum. Reads use pread() on one open
/// file, so several threads may read tensors of the same reader at once.
class CheckpointReader {
public:
  CheckpointReader() = default;
  ~CheckpointReader();
  CheckpointReader(CheckpointReader &&other) noexcept;
  CheckpointReader &operator=(CheckpointReader &&other) noexcept;
  CheckpointReader(const CheckpointReader &) = delete;
  CheckpointReader &operator=(const CheckpointReader &) = delete;

  /// Opens the checkpoint in `directory` (an iter_NNNNNNN directory). Returns "" on success.
  [[nodiscard]] std::string open(const std::string &directory);

  const std::string &directory() const { return dir; }
  std::string metadataPath() const;
  std::string dataPath() const;
  const CheckpointInfo &info() const { return checkpointInfo; }
  const std::vector<TensorRecord> &tensors() const { return records; }
  /// The record of tensor `name`, or nullptr.
  const TensorRecord *find(std::string_view name) const;

  /// Refuses a checkpoint saved for another model or plan: "" when both match; an empty expected value is not
  /// checked.
  [[nodiscard]] std::string checkFingerprints(std::string_view modelFingerprint,
                                              std::string_view planFingerprint) const;

  /// Checks that `tensor` exists with its dtype and shape, then reads it into tensor.data (or through
  /// tensor.write) and verifies its checksum. On error the destination's contents are unspecified.
  [[nodiscard]] std::string readTensor(const LoadTensor &tensor) const;
  /// Checks every tensor's name, dtype and shape before reading any, then reads them in file order.
  [[nodiscard]] std::string readTensors(const std::vector<LoadTensor> &tensors) const;
  /// Reads every tensor of the checkpoint and verifies its checksum, storing nothing.
  [[nodiscard]] std::string verifyAll() const;

private:
  [[nodiscard]] std::string openChecked();
  [[nodiscard]] std::string check(const LoadTensor &tensor, const TensorRecord *&record) const;
  [[nodiscard]] std::string readRecord(const TensorRecord &record, void *data,
                                       const std::function<std::string(uint64_t, const void *, size_t)> &write) const;
  void close();

  std::string dir;
  CheckpointInfo checkpointInfo;
  std::vector<TensorRecord> records;
  std::unordered_map<std::string, size_t> index; // Name -> position in records.
  int dataFd = -1;
};

/// What --load needs from one call.
struct LoadRequest {
  /// Compared with the checkpoint's; empty: not checked.
  std::string modelFingerprint;
  std::string planFingerprint;
  std::vector<LoadTensor> tensors;
};

/// Finds the latest checkpoint in `loadDir`, opens it, checks the fingerprints, reads `request.tensors` into the
/// caller's memory and fills `info`. Returns "" on success.
[[nodiscard]] std::string loadLatestCheckpoint(const std::string &loadDir, const LoadRequest &request,
                                               CheckpointInfo &info);

} // namespace megatron::ckpt

#endif // MEGATRON_RUNTIME_CHECKPOINT_CHECKPOINT_H
