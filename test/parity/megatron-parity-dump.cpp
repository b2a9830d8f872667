//===- megatron-parity-dump.cpp - One train_step's inputs and gradients, for PyTorch to check --------===//
//
// Loads a plan, initialises its parameters, fills one deterministic micro-batch, runs train_step once and writes
// everything an independent reference needs to recompute the loss and the gradients (test/parity/
// torch_reference.py): a manifest and raw little-endian files for every parameter, every input and every
// parameter's gradient. MLIR-free: it links the runtime only.
//
//   megatron-parity-dump PLAN OUT_DIR [--seed N] [--plain-init] [--threads N] [--mask-zero-fraction F]
//
// Parameters. initializeParameters gives Megatron's init (std 0.02, norms at one, biases at zero), under which
// most gradients are tiny and the norms' and biases' gradients would be checked at an operating point where the
// norm is almost the identity. Unless --plain-init is given, the tool rescales the values it initialised so that
// every path carries signal: a normal parameter becomes std 1/sqrt(last dim) (fan-in of an [out, in] weight, so
// activations, attention scores and logits stay of order one), norm weights become 1 + 0.1·N(0,1) and biases
// 0.1·N(0,1). The values are what the reference reads back, so the rescaling needs no agreement with it.
//
// The batch. Token ids and labels are uniform in [0, rows of the table they index) (any id the model accepts);
// the loss mask is 1 with probability 1 − F (F = 0.25 by default) and 0 otherwise, never all 0; a padding mask
// keeps sequence 0 whole and pads the others after a random length of at least 1. GPT, BERT and T5 inputs.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/engine/Engine.h"
#include "runtime/train/TrainState.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace megatron;

namespace {

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "megatron-parity-dump: error: %s\n", message.c_str());
  std::exit(1);
}

void writeRaw(const std::string &path, const void *data, int64_t bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    fail("cannot write " + path);
  out.write(static_cast<const char *>(data), bytes);
  if (!out)
    fail("cannot write " + path);
}

const char *dtypeName(plan::DType type) {
  switch (type) {
  case plan::DType::F32:
    return "float32";
  case plan::DType::I32:
    return "int32";
  default:
    return nullptr;
  }
}

bool isLittleEndian() {
  const uint32_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// A file-system-safe name for a tensor.
std::string fileName(const std::string &prefix, const std::string &name) {
  std::string out = prefix;
  for (char c : name)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return out + ".bin";
}

void usage() {
  std::fprintf(stderr, "usage: megatron-parity-dump PLAN OUT_DIR [--seed N] [--plain-init] [--threads N] "
                       "[--mask-zero-fraction F]\n");
  std::exit(2);
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> positional;
  uint64_t seed = 1234;
  bool plainInit = false;
  int threads = 0;
  double maskZeroFraction = 0.25;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage();
      return argv[++i];
    };
    if (arg == "--seed")
      seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--plain-init")
      plainInit = true;
    else if (arg == "--threads")
      threads = std::atoi(value().c_str());
    else if (arg == "--mask-zero-fraction")
      maskZeroFraction = std::atof(value().c_str());
    else if (!arg.empty() && arg[0] == '-')
      usage();
    else
      positional.push_back(arg);
  }
  if (positional.size() != 2)
    usage();
  const std::string planPath = positional[0], outDir = positional[1];
  if (!isLittleEndian())
    fail("the dump format is little-endian; this machine is not");

  if (threads > 0)
    cpu::setNumThreads(threads); // before the engine sizes its workspace for the thread count
  std::string error;
  std::optional<plan::Plan> loaded = plan::readPlan(planPath, error);
  if (!loaded)
    fail(error);
  std::unique_ptr<runtime::Engine> engine = runtime::Engine::create(std::move(*loaded), error);
  if (!engine)
    fail(error);
  const plan::Plan &plan = engine->plan();
  if (!plan.program("train_step"))
    fail("the plan has no train_step program");

  // Dropout must be off: the reference has no way to draw our masks (the plan is compiled with
  // --attention-dropout 0 --hidden-dropout 0).
  for (const plan::Program &program : plan.programs)
    for (const plan::Step &step : program.steps) {
      for (const char *key : {"rate", "dropout"}) {
        auto it = step.attrs.find(key);
        if (it != step.attrs.end() && std::holds_alternative<double>(it->second) &&
            std::get<double>(it->second) != 0.0)
          fail("step '" + step.op + "' of " + step.loc + " has dropout " +
               std::to_string(std::get<double>(it->second)) +
               ": compile the model with --attention-dropout 0 --hidden-dropout 0 for a parity dump");
      }
    }

  // Parameters: the plan's init, then (by default) rescaled so that every path matters.
  train::initializeParameters(*engine, seed);
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::normal_distribution<double> normal(0.0, 1.0);
  if (!plainInit) {
    for (const plan::Param &param : plan.params) {
      const plan::Buffer &buffer = engine->buffer(param.buffer);
      float *value = engine->as<float>(param.buffer);
      int64_t n = buffer.numElements();
      switch (param.init) {
      case plan::InitKind::Normal: {
        double target = 1.0 / std::sqrt(static_cast<double>(buffer.shape.empty() ? 1 : buffer.shape.back()));
        double factor = param.initStd > 0 ? target / param.initStd : 0.0;
        for (int64_t i = 0; i < n; ++i)
          value[i] = static_cast<float>(value[i] * factor);
        break;
      }
      case plan::InitKind::Ones:
        for (int64_t i = 0; i < n; ++i)
          value[i] = static_cast<float>(1.0 + 0.1 * normal(rng));
        break;
      case plan::InitKind::Zeros:
        for (int64_t i = 0; i < n; ++i)
          value[i] = static_cast<float>(0.1 * normal(rng));
        break;
      }
    }
  }

  // The batch. Ids range over the table they index: tokens and labels over the word-embedding table (the padded
  // vocabulary), token types over the token-type table, sentence-order labels over the binary head's classes.
  auto rowsOf = [&](const std::string &name) -> int64_t {
    for (const plan::Param &param : plan.params)
      if (param.name == name)
        return engine->buffer(param.buffer).shape[0];
    return 0;
  };
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto endsWith = [](const std::string &s, const std::string &suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const plan::Input &input : plan.inputs) {
    const plan::Buffer &buffer = engine->buffer(input.buffer);
    int64_t n = buffer.numElements();
    int64_t idLimit = 0;
    const char *table = "";
    if (endsWith(input.name, "tokens") || input.name == "labels")
      idLimit = rowsOf(table = "embedding.word_embeddings.weight");
    else if (input.name == "tokentype_ids")
      idLimit = rowsOf(table = "embedding.tokentype_embeddings.weight");
    else if (input.name == "sentence_order")
      idLimit = rowsOf(table = "binary_head.weight");
    if (idLimit > 0) {
      if (buffer.dtype != plan::DType::I32)
        fail("input '" + input.name + "' is not i32");
      std::uniform_int_distribution<int32_t> ids(0, static_cast<int32_t>(idLimit - 1));
      int32_t *out = engine->as<int32_t>(input.buffer);
      for (int64_t i = 0; i < n; ++i)
        out[i] = ids(rng);
    } else if (*table) {
      fail("input '" + input.name + "': the plan has no parameter " + table + " to size its ids");
    } else if (input.name == "loss_mask") {
      if (buffer.dtype != plan::DType::F32)
        fail("input 'loss_mask' is not f32");
      float *mask = engine->as<float>(input.buffer);
      for (int64_t i = 0; i < n; ++i)
        mask[i] = uniform(rng) < maskZeroFraction ? 0.0f : 1.0f;
      mask[0] = 1.0f; // never all zero
    } else if (endsWith(input.name, "padding_mask")) {
      // [batch, seq]: sequence 0 unpadded, the others a random length in [1, seq] followed by padding.
      if (buffer.dtype != plan::DType::I32 || buffer.shape.size() != 2)
        fail("input '" + input.name + "' is not an i32 [batch, seq] mask");
      int64_t batch = buffer.shape[0], seq = buffer.shape[1];
      std::uniform_int_distribution<int64_t> length(1, seq);
      int32_t *mask = engine->as<int32_t>(input.buffer);
      for (int64_t b = 0; b < batch; ++b) {
        int64_t keep = b == 0 ? seq : length(rng);
        for (int64_t s = 0; s < seq; ++s)
          mask[b * seq + s] = s < keep ? 1 : 0;
      }
    } else {
      fail("input '" + input.name + "': no rule to fill it (tokens, labels, loss_mask, padding masks, token types, "
           "sentence order)");
    }
  }

  // One train_step from zeroed gradients, as training runs it (every dropout rate is 0, checked above).
  engine->zero(plan::Arena::Grads);
  if (std::string runError = engine->run("train_step", runtime::RunContext{true, 0}); !runError.empty())
    fail("train_step: " + runError);
  double loss = engine->loss("train_step");

  // The dump.
  if (::mkdir(outDir.c_str(), 0755) != 0 && errno != EEXIST)
    fail("cannot create " + outDir + ": " + std::strerror(errno));
  nlohmann::json manifest;
  manifest["format"] = "megatron-parity-dump";
  manifest["version"] = 1;
  manifest["plan"] = planPath;
  manifest["plan_fingerprint"] = plan::fingerprintOf(plan);
  manifest["seed"] = seed;
  manifest["init"] = plainInit ? "plan" : "rescaled";
  manifest["threads"] = cpu::numThreads();
  manifest["loss"] = loss;
  manifest["params"] = nlohmann::json::array();
  for (const plan::Param &param : plan.params) {
    const plan::Buffer &buffer = engine->buffer(param.buffer);
    const plan::Buffer &grad = engine->buffer(param.grad);
    if (buffer.dtype != plan::DType::F32 || grad.dtype != plan::DType::F32)
      fail("parameter " + param.name + " is not f32");
    std::string valueFile = fileName("param.", param.name), gradFile = fileName("grad.", param.name);
    writeRaw(outDir + "/" + valueFile, engine->data(param.buffer), buffer.bytes);
    writeRaw(outDir + "/" + gradFile, engine->data(param.grad), grad.bytes);
    manifest["params"].push_back({{"name", param.name},
                                  {"buffer", param.buffer},
                                  {"grad_buffer", param.grad},
                                  {"shape", buffer.shape},
                                  {"dtype", "float32"},
                                  {"file", valueFile},
                                  {"grad_file", gradFile}});
  }
  manifest["inputs"] = nlohmann::json::array();
  for (const plan::Input &input : plan.inputs) {
    const plan::Buffer &buffer = engine->buffer(input.buffer);
    const char *dtype = dtypeName(buffer.dtype);
    if (!dtype)
      fail("input " + input.name + " has an unsupported dtype");
    std::string file = fileName("input.", input.name);
    writeRaw(outDir + "/" + file, engine->data(input.buffer), buffer.bytes);
    manifest["inputs"].push_back({{"name", input.name},
                                  {"buffer", input.buffer},
                                  {"shape", buffer.shape},
                                  {"dtype", dtype},
                                  {"file", file}});
  }
  std::string text = manifest.dump(1) + "\n";
  writeRaw(outDir + "/manifest.json", text.data(), static_cast<int64_t>(text.size()));
  std::printf("megatron-parity-dump: %zu parameters, %zu inputs, loss %.9g -> %s\n", plan.params.size(),
              plan.inputs.size(), loss, outDir.c_str());
  return 0;
}
