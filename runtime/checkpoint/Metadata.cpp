//===- Metadata.cpp - metadata.json: writing, parsing, validating ---------===//

#include "runtime/checkpoint/Metadata.h"

#include "runtime/checkpoint/Checksum.h"
#include "runtime/checkpoint/Format.h"

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace megatron::ckpt {

using nlohmann::json;

uint64_t TensorRecord::numElements() const {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<uint64_t>(d);
  return n;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

namespace {
/// A JSON value on one line; throws nlohmann::json::type_error for strings that are not UTF-8.
std::string compact(const json &value) { return value.dump(-1, ' ', false, json::error_handler_t::strict); }
} // namespace

std::string encodeMetadata(const Metadata &metadata, std::string &text) {
  const CheckpointInfo &info = metadata.info;
  std::string out;
  out.reserve(1024 + 160 * metadata.tensors.size());
  std::string what;
  try {
    out += "{\n";
    out += "  \"format\": " + compact(std::string(kFormatName)) + ",\n";
    out += "  \"version\": " + std::to_string(kFormatVersion) + ",\n";
    out += "  \"iteration\": " + std::to_string(info.iteration) + ",\n";
    what = "the model fingerprint";
    out += "  \"model_fingerprint\": " + compact(info.modelFingerprint) + ",\n";
    what = "the plan fingerprint";
    out += "  \"plan_fingerprint\": " + compact(info.planFingerprint) + ",\n";
    out += "  \"checksum\": " + compact(std::string(kChecksumName)) + ",\n";
    out += "  \"alignment\": " + std::to_string(kAlignment) + ",\n";
    out += "  \"data_file\": " + compact(std::string(kDataFileName)) + ",\n";
    out += "  \"data_bytes\": " + std::to_string(metadata.dataBytes) + ",\n";
    what = "the run state";
    std::string state = info.runState.is_null()
                            ? std::string("{}")
                            : info.runState.dump(2, ' ', false, json::error_handler_t::strict);
    size_t at = 0;
    while ((at = state.find('\n', at)) != std::string::npos) {
      state.insert(at + 1, "  ");
      at += 3;
    }
    out += "  \"run_state\": " + state + ",\n";
    out += "  \"tensors\": [";
    for (size_t i = 0; i < metadata.tensors.size(); ++i) {
      const TensorRecord &t = metadata.tensors[i];
      what = "the name of tensor #" + std::to_string(i);
      out += i ? ",\n    " : "\n    ";
      out += "{\"name\": " + compact(t.name);
      out += ", \"dtype\": \"" + std::string(dtypeName(t.dtype)) + "\"";
      out += ", \"shape\": " + shapeString(t.shape);
      out += ", \"offset\": " + std::to_string(t.offset);
      out += ", \"bytes\": " + std::to_string(t.bytes);
      out += ", \"xxh3\": \"" + checksumHex(t.checksum) + "\"}";
    }
    out += metadata.tensors.empty() ? "]\n" : "\n  ]\n";
    out += "}\n";
  } catch (const json::exception &) {
    return what + " is not valid UTF-8";
  }
  text = std::move(out);
  return {};
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

namespace {

/// nlohmann's messages start with "[json.exception.parse_error.101] "; the reader needs only what follows.
std::string withoutExceptionTag(const char *what) {
  std::string text = what;
  if (text.rfind("[json.exception.", 0) == 0) {
    size_t end = text.find("] ");
    if (end != std::string::npos)
      text.erase(0, end + 2);
  }
  return text;
}

/// A non-negative integer that fits in int64_t.
bool asCount(const json &value, uint64_t &out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return false;
}

class Decoder {
public:
  Decoder(const std::string &path, const json &document) : path(path), document(document) {}

  std::string fail(const std::string &message) const { return "metadata file '" + path + "': " + message; }

  const json *field(const char *name, std::string &error) const {
    auto it = document.find(name);
    if (it == document.end()) {
      error = fail(std::string("field '") + name + "' is missing");
      return nullptr;
    }
    return &*it;
  }

  std::string count(const char *name, uint64_t &out) const {
    std::string error;
    const json *value = field(name, error);
    if (!value)
      return error;
    if (!asCount(*value, out))
      return fail(std::string("field '") + name + "' must be a non-negative integer, not " + value->dump());
    return {};
  }

  std::string string(const char *name, std::string &out) const {
    std::string error;
    const json *value = field(name, error);
    if (!value)
      return error;
    if (!value->is_string())
      return fail(std::string("field '") + name + "' must be a string, not " + value->dump());
    out = value->get<std::string>();
    return {};
  }

  std::string tensor(size_t index, const json &entry, TensorRecord &record) const {
    std::string label = "tensor #" + std::to_string(index);
    auto bad = [&](const std::string &message) { return fail(label + ": " + message); };
    if (!entry.is_object())
      return bad("must be a JSON object, not " + entry.dump());
    auto get = [&](const char *name) -> const json * {
      auto it = entry.find(name);
      return it == entry.end() ? nullptr : &*it;
    };

    const json *name = get("name");
    if (!name || !name->is_string() || name->get_ref<const std::string &>().empty())
      return bad("field 'name' must be a non-empty string");
    record.name = name->get<std::string>();
    label = "tensor '" + record.name + "'";

    const json *dtype = get("dtype");
    if (!dtype || !dtype->is_string())
      return bad("field 'dtype' must be a string");
    std::optional<DType> parsed = parseDType(dtype->get<std::string>());
    if (!parsed)
      return bad("unknown dtype '" + dtype->get<std::string>() + "' (known: f32, f64, bf16, f16, i32, i64, u8)");
    record.dtype = *parsed;

    const json *shape = get("shape");
    if (!shape || !shape->is_array())
      return bad("field 'shape' must be an array of non-negative integers");
    record.shape.clear();
    uint64_t elements = 1;
    bool overflow = false;
    for (const json &dim : *shape) {
      uint64_t d;
      if (!asCount(dim, d))
        return bad("field 'shape' must be an array of non-negative integers, not " + shape->dump());
      record.shape.push_back(static_cast<int64_t>(d));
      overflow |= __builtin_mul_overflow(elements, d, &elements);
    }
    uint64_t expectedBytes = 0;
    overflow |= __builtin_mul_overflow(elements, dtypeBytes(record.dtype), &expectedBytes);

    const json *offset = get("offset");
    if (!offset || !asCount(*offset, record.offset))
      return bad("field 'offset' must be a non-negative integer");
    const json *bytes = get("bytes");
    if (!bytes || !asCount(*bytes, record.bytes))
      return bad("field 'bytes' must be a non-negative integer");
    if (overflow || record.bytes != expectedBytes)
      return bad("holds " + std::to_string(record.bytes) + " bytes, but " + std::string(dtypeName(record.dtype)) +
                 " " + shapeString(record.shape) + " needs " + (overflow ? "more than 2^64" : std::to_string(expectedBytes)));

    const json *hash = get("xxh3");
    std::optional<uint64_t> value;
    if (hash && hash->is_string())
      value = parseChecksumHex(hash->get<std::string>());
    if (!value)
      return bad("field 'xxh3' must be a string of 16 hex digits");
    record.checksum = *value;
    return {};
  }

private:
  const std::string &path;
  const json &document;
};

} // namespace

std::string parseMetadataHead(const std::string &path, const std::string &text, json &document) {
  try {
    document = json::parse(text);
  } catch (const json::parse_error &e) {
    return "metadata file '" + path + "' is not valid JSON: " + withoutExceptionTag(e.what());
  }
  if (!document.is_object())
    return "metadata file '" + path + "' is not a JSON object";

  auto format = document.find("format");
  if (format == document.end()) {
    auto backend = document.find("sharded_backend");
    if (backend != document.end())
      return "metadata file '" + path + "' belongs to a Megatron-LM distributed checkpoint (sharded_backend " +
             backend->dump() + "), which megatron-run does not read; convert its tensors by name";
    return "metadata file '" + path + "' has no 'format' field: it is not a " + std::string(kFormatName) +
           " checkpoint";
  }
  if (!format->is_string() || format->get_ref<const std::string &>() != kFormatName)
    return "metadata file '" + path + "' is not a " + std::string(kFormatName) + " checkpoint: its format is " +
           format->dump() + ", expected \"" + std::string(kFormatName) + "\"";

  auto version = document.find("version");
  if (version == document.end())
    return "metadata file '" + path + "' has no 'version' field";
  if (!version->is_number_integer())
    return "metadata file '" + path + "': field 'version' must be an integer, not " + version->dump();
  bool tooNew = version->is_number_unsigned() ? version->get<uint64_t>() > static_cast<uint64_t>(kFormatVersion)
                                              : version->get<int64_t>() > kFormatVersion;
  if (tooNew)
    return "checkpoint format version " + version->dump() + " in '" + path + "' is newer than this build reads (" +
           std::to_string(kFormatVersion) + "): load it with a newer megatron-run";
  if (version->get<int64_t>() < kFormatVersion)
    return "checkpoint format version " + version->dump() + " in '" + path +
           "' is older than the oldest this build reads (" + std::to_string(kFormatVersion) + ")";
  return {};
}

std::string decodeMetadata(const std::string &path, const json &document, Metadata &metadata) {
  Decoder d(path, document);
  std::string error;
  CheckpointInfo &info = metadata.info;

  uint64_t iteration;
  if (!(error = d.count("iteration", iteration)).empty())
    return error;
  info.iteration = static_cast<int64_t>(iteration);
  if (!(error = d.string("model_fingerprint", info.modelFingerprint)).empty() ||
      !(error = d.string("plan_fingerprint", info.planFingerprint)).empty())
    return error;

  std::string text;
  if (!(error = d.string("checksum", text)).empty())
    return error;
  if (text != kChecksumName)
    return d.fail("unknown checksum algorithm '" + text + "' (this build knows " + std::string(kChecksumName) + ")");
  uint64_t alignment;
  if (!(error = d.count("alignment", alignment)).empty())
    return error;
  if (alignment != kAlignment)
    return d.fail("alignment " + std::to_string(alignment) + " is not " + std::to_string(kAlignment));
  if (!(error = d.string("data_file", text)).empty())
    return error;
  if (text != kDataFileName)
    return d.fail("data file '" + text + "' is not '" + std::string(kDataFileName) + "'");
  if (!(error = d.count("data_bytes", metadata.dataBytes)).empty())
    return error;
  if (metadata.dataBytes < kDataHeaderBytes)
    return d.fail("data_bytes " + std::to_string(metadata.dataBytes) + " is smaller than the data file's header");

  const json *state = d.field("run_state", error);
  if (!state)
    return error;
  if (!state->is_object())
    return d.fail("field 'run_state' must be a JSON object, not " + state->dump());
  info.runState = *state;

  const json *tensors = d.field("tensors", error);
  if (!tensors)
    return error;
  if (!tensors->is_array())
    return d.fail("field 'tensors' must be an array");
  metadata.tensors.clear();
  metadata.tensors.reserve(tensors->size());
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < tensors->size(); ++i) {
    TensorRecord record;
    if (!(error = d.tensor(i, (*tensors)[i], record)).empty())
      return error;
    if (!names.insert(record.name).second)
      return d.fail("tensor '" + record.name + "' appears twice");
    metadata.tensors.push_back(std::move(record));
  }

  // The layout: every tensor aligned, after the header, inside the data file, and no two overlapping.
  std::vector<const TensorRecord *> byOffset;
  for (const TensorRecord &t : metadata.tensors) {
    std::string label = "tensor '" + t.name + "'";
    if (t.offset % kAlignment != 0 || t.offset < kDataHeaderBytes)
      return d.fail(label + ": offset " + std::to_string(t.offset) + " is not a multiple of " +
                    std::to_string(kAlignment) + " after the header");
    uint64_t end;
    if (__builtin_add_overflow(t.offset, t.bytes, &end) || end > metadata.dataBytes)
      return d.fail(label + ": bytes " + std::to_string(t.offset) + ".." + std::to_string(t.offset + t.bytes) +
                    " lie outside the data file's " + std::to_string(metadata.dataBytes) + " bytes");
    if (t.bytes)
      byOffset.push_back(&t);
  }
  std::stable_sort(byOffset.begin(), byOffset.end(),
            [](const TensorRecord *a, const TensorRecord *b) { return a->offset < b->offset; });
  for (size_t i = 1; i < byOffset.size(); ++i)
    if (byOffset[i - 1]->offset + byOffset[i - 1]->bytes > byOffset[i]->offset)
      return d.fail("tensors '" + byOffset[i - 1]->name + "' and '" + byOffset[i]->name + "' overlap");
  return {};
}

} // namespace megatron::ckpt
