//===- PlanJson.cpp - Plans as versioned JSON ------------------------------===//
//
// nlohmann-json parses and prints; everything read is checked before the runtime can index with it, so a
// corrupt, foreign or outdated plan is an error message, not an out-of-bounds access.
//
//===----------------------------------------------------------------------===//

#include "megatron/Plan/Plan.h"
#include "megatron/Support/Fnv.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace megatron::plan {

using nlohmann::json;

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

namespace {
struct DTypeInfo {
  DType type;
  const char *name;
  int64_t bytes;
};
constexpr DTypeInfo dtypes[] = {{DType::F32, "f32", 4}, {DType::F64, "f64", 8}, {DType::BF16, "bf16", 2},
                                {DType::F16, "f16", 2}, {DType::I32, "i32", 4}, {DType::I64, "i64", 8}};
constexpr const char *arenaNames[kNumArenas] = {"inputs", "params", "grads", "optimizer", "activations",
                                                "stash",  "weights"};
constexpr const char *initNames[] = {"normal", "zeros", "ones"};
} // namespace

const char *toString(DType type) {
  for (const DTypeInfo &d : dtypes)
    if (d.type == type)
      return d.name;
  return "?";
}

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeInfo &d : dtypes)
    if (name == d.name)
      return d.type;
  return std::nullopt;
}

int64_t bytesOf(DType type) {
  for (const DTypeInfo &d : dtypes)
    if (d.type == type)
      return d.bytes;
  return 0;
}

const char *toString(Arena arena) { return arenaNames[static_cast<int>(arena)]; }

std::optional<Arena> parseArena(const std::string &name) {
  for (int i = 0; i < kNumArenas; ++i)
    if (name == arenaNames[i])
      return static_cast<Arena>(i);
  return std::nullopt;
}

int64_t Buffer::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

const Program *Plan::program(const std::string &name) const {
  for (const Program &p : programs)
    if (p.name == name)
      return &p;
  return nullptr;
}

bool Plan::sumsTiedEmbedding() const {
  const Program *finalize = program("finalize_grads");
  return finalize && std::any_of(finalize->steps.begin(), finalize->steps.end(), [](const Step &step) {
           auto group = step.attrs.find("group");
           return group != step.attrs.end() && std::get_if<std::string>(&group->second) &&
                  std::get<std::string>(group->second) == "embedding";
         });
}

int64_t distributedOptimizerChunk(int64_t gradsArenaBytes, int64_t dataParallel) {
  int64_t elements = gradsArenaBytes / static_cast<int64_t>(sizeof(float));
  int64_t d = std::max<int64_t>(dataParallel, 1);
  return (elements + d - 1) / d;
}

int64_t Plan::allocatedBytes(Arena arena) const {
  int64_t bytes = arenaBytes[static_cast<int>(arena)];
  if (arena == Arena::Stash)
    return bytes * pipeline.stashSlots;
  if ((arena == Arena::Params || arena == Arena::Grads) && optimizerShard)
    return std::max<int64_t>(bytes, parallel.data * optimizerShard->elements * int64_t(sizeof(float)));
  return bytes;
}

int64_t Plan::totalBytes() const {
  int64_t total = 0;
  for (int arena = 0; arena < kNumArenas; ++arena)
    total += allocatedBytes(static_cast<Arena>(arena));
  return total;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

namespace {
json attrToJson(const AttrValue &value) {
  return std::visit([](const auto &v) { return json(v); }, value);
}

json pipelineToJson(const PipelineInfo &p) {
  json schedule = json::array();
  for (const PipelineStep &step : p.schedule)
    schedule.push_back({step.forward ? "F" : "B", step.microBatch, step.chunk});
  return {{"stages", p.stages},
          {"virtual_stages", p.virtualStages},
          {"stage", p.stage},
          {"micro_batches", p.microBatches},
          {"stash_slots", p.stashSlots},
          {"schedule", schedule}};
}

/// Everything but the fingerprint, in a fixed key order (nlohmann sorts object keys).
json contentOf(const Plan &plan) {
  json buffers = json::array();
  for (const Buffer &b : plan.buffers)
    buffers.push_back({{"arena", toString(b.arena)},
                       {"offset", b.offset},
                       {"bytes", b.bytes},
                       {"dtype", toString(b.dtype)},
                       {"shape", b.shape}});
  json arenas = json::object();
  for (int i = 0; i < kNumArenas; ++i)
    arenas[arenaNames[i]] = plan.arenaBytes[i];
  json inputs = json::array();
  for (const Input &in : plan.inputs)
    inputs.push_back({{"name", in.name}, {"buffer", in.buffer}});
  json params = json::array();
  for (const Param &p : plan.params) {
    json shard = nullptr;
    if (p.shard.isSharded()) {
      json spans = json::array();
      for (const auto &rank : p.shard.spans) {
        json flat = json::array();
        for (auto [start, length] : rank)
          flat.insert(flat.end(), {start, length});
        spans.push_back(flat);
      }
      shard = {{"dim", p.shard.dim}, {"spans", spans}};
    }
    params.push_back({{"name", p.name},
                      {"index", p.index},
                      {"shape", p.shape},
                      {"shard", shard},
                      {"buffer", p.buffer},
                      {"grad", p.grad},
                      {"exp_avg", p.expAvg},
                      {"exp_avg_sq", p.expAvgSq},
                      {"init", initNames[static_cast<int>(p.init)]},
                      {"init_std", p.initStd},
                      {"weight_decay", p.weightDecay}});
  }
  json programs = json::array();
  for (const Program &program : plan.programs) {
    json steps = json::array();
    for (const Step &s : program.steps) {
      json attrs = json::object();
      for (const auto &[key, value] : s.attrs)
        attrs[key] = attrToJson(value);
      steps.push_back({{"op", s.op},
                       {"loc", s.loc},
                       {"in", s.inputs},
                       {"out", s.outputs},
                       {"accumulate", s.accumulate},
                       {"attrs", attrs}});
    }
    programs.push_back({{"name", program.name},
                        {"chunk", program.chunk},
                        {"loss", program.loss},
                        {"peak_activation_bytes", program.peakActivationBytes},
                        {"steps", steps}});
  }
  return {{"format", kPlanFormat},
          {"version", kPlanVersion},
          {"model",
           {{"family", plan.model.family},
            {"fingerprint", plan.model.fingerprint},
            {"num_micro_batches", plan.model.numMicroBatches},
            {"parameters", plan.model.parameters},
            {"forward_flops_per_micro_batch", plan.model.forwardFlopsPerMicroBatch}}},
          {"parallel",
           {{"tensor", plan.parallel.tensor},
            {"sequence", plan.parallel.sequence},
            {"data", plan.parallel.data},
            {"distributed_optimizer", plan.parallel.distributedOptimizer}}},
          {"pipeline", pipelineToJson(plan.pipeline)},
          {"arenas", arenas},
          {"buffers", buffers},
          {"optimizer_shard", plan.optimizerShard ? json{{"exp_avg", plan.optimizerShard->expAvg},
                                                         {"exp_avg_sq", plan.optimizerShard->expAvgSq},
                                                         {"elements", plan.optimizerShard->elements}}
                                                  : json(nullptr)},
          {"inputs", inputs},
          {"params", params},
          {"programs", programs}};
}

} // namespace

std::string fingerprintText(const std::string &text) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(fnv1a(text)));
  return out;
}

std::string fingerprintOf(const Plan &plan) { return fingerprintText(contentOf(plan).dump()); }

std::string toJson(const Plan &plan) {
  json document = contentOf(plan);
  std::string fingerprint = fingerprintText(document.dump());
  // One buffer, parameter or step per line: a plan stays readable and diffable without growing huge.
  std::string out = "{\n";
  out += "\"format\": " + json(kPlanFormat).dump() + ",\n\"version\": " + std::to_string(kPlanVersion) + ",\n";
  out += "\"fingerprint\": " + json(fingerprint).dump() + ",\n";
  out += "\"model\": " + document["model"].dump() + ",\n";
  out += "\"parallel\": " + document["parallel"].dump() + ",\n";
  out += "\"pipeline\": " + document["pipeline"].dump() + ",\n";
  out += "\"arenas\": " + document["arenas"].dump() + ",\n";
  out += "\"optimizer_shard\": " + document["optimizer_shard"].dump() + ",\n";
  auto list = [&](const char *key, const json &items, const char *indent) {
    std::string text = std::string("\"") + key + "\": [";
    for (size_t i = 0; i < items.size(); ++i)
      text += (i ? ",\n" : "\n") + std::string(indent) + items[i].dump();
    return text + "]";
  };
  out += list("inputs", document["inputs"], " ") + ",\n";
  out += list("params", document["params"], " ") + ",\n";
  out += list("buffers", document["buffers"], " ") + ",\n";
  out += "\"programs\": [";
  for (size_t i = 0; i < document["programs"].size(); ++i) {
    json program = document["programs"][i];
    json steps = program["steps"];
    program.erase("steps");
    std::string head = program.dump();
    head.pop_back(); // reopen the object to append its steps
    out += (i ? ",\n " : "\n ") + head + ",\n " + list("steps", steps, "  ") + "}";
  }
  return out + "]\n}\n";
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

namespace {
/// Thrown inside the reader only, and turned into the error message.
struct PlanError {
  std::string message;
};

[[noreturn]] void fail(const std::string &message) { throw PlanError{message}; }

const json &field(const json &object, const char *key, const std::string &where) {
  if (!object.is_object() || !object.contains(key))
    fail(where + " has no '" + key + "'");
  return object.at(key);
}

template <typename T> T get(const json &object, const char *key, const std::string &where) {
  const json &value = field(object, key, where);
  try {
    return value.get<T>();
  } catch (const json::exception &) {
    fail(where + "." + key + " has the wrong type: " + value.dump());
  }
}

int bufferId(const json &value, const Plan &plan, const std::string &where) {
  if (!value.is_number_integer())
    fail(where + " is not a buffer id: " + value.dump());
  int64_t id = value.get<int64_t>();
  if (id < 0 || id >= static_cast<int64_t>(plan.buffers.size()))
    fail(where + " names buffer " + std::to_string(id) + " of " + std::to_string(plan.buffers.size()));
  return static_cast<int>(id);
}

void readBuffers(const json &document, Plan &plan) {
  const json &arenas = field(document, "arenas", "the plan");
  for (int i = 0; i < kNumArenas; ++i) {
    plan.arenaBytes[i] = get<int64_t>(arenas, arenaNames[i], "arenas");
    if (plan.arenaBytes[i] < 0)
      fail(std::string("arena '") + arenaNames[i] + "' has a negative size");
  }
  const json &buffers = field(document, "buffers", "the plan");
  if (!buffers.is_array())
    fail("'buffers' is not a list");
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::string where = "buffer " + std::to_string(i);
    Buffer b;
    std::optional<Arena> arena = parseArena(get<std::string>(buffers[i], "arena", where));
    std::optional<DType> dtype = parseDType(get<std::string>(buffers[i], "dtype", where));
    if (!arena || !dtype)
      fail(where + " has an unknown arena or dtype");
    b.arena = *arena;
    b.dtype = *dtype;
    b.offset = get<int64_t>(buffers[i], "offset", where);
    b.bytes = get<int64_t>(buffers[i], "bytes", where);
    b.shape = get<std::vector<int64_t>>(buffers[i], "shape", where);
    for (int64_t d : b.shape)
      if (d <= 0 || d > (int64_t(1) << 40))
        fail(where + " has an invalid dimension " + std::to_string(d));
    if (b.bytes != b.numElements() * bytesOf(b.dtype))
      fail(where + " has " + std::to_string(b.bytes) + " bytes for its shape and dtype");
    if (b.offset < 0 || b.offset % kAlignment != 0 || b.offset + b.bytes > plan.arenaBytes[static_cast<int>(b.arena)])
      fail(where + " lies outside its arena '" + toString(b.arena) + "'");
    plan.buffers.push_back(std::move(b));
  }
}

void readPrograms(const json &document, Plan &plan) {
  const json &programs = field(document, "programs", "the plan");
  if (!programs.is_array())
    fail("'programs' is not a list");
  for (const json &p : programs) {
    Program program;
    program.name = get<std::string>(p, "name", "a program");
    std::string where = "program '" + program.name + "'";
    // A program without a result (finalize_grads) records -1.
    program.chunk = get<int>(p, "chunk", where);
    if (program.chunk < -1 || program.chunk >= plan.pipeline.virtualStages)
      fail(where + ".chunk " + std::to_string(program.chunk) + " is not one of the stage's " +
           std::to_string(plan.pipeline.virtualStages) + " chunks");
    const json &loss = field(p, "loss", where);
    program.loss = loss == -1 ? -1 : bufferId(loss, plan, where + ".loss");
    program.peakActivationBytes = get<int64_t>(p, "peak_activation_bytes", where);
    const json &steps = field(p, "steps", where);
    if (!steps.is_array())
      fail(where + ".steps is not a list");
    for (size_t i = 0; i < steps.size(); ++i) {
      std::string stepWhere = where + " step " + std::to_string(i);
      Step s;
      s.op = get<std::string>(steps[i], "op", stepWhere);
      s.loc = get<std::string>(steps[i], "loc", stepWhere);
      for (const json &id : field(steps[i], "in", stepWhere))
        s.inputs.push_back(bufferId(id, plan, stepWhere + " (" + s.op + ") input"));
      for (const json &id : field(steps[i], "out", stepWhere))
        s.outputs.push_back(bufferId(id, plan, stepWhere + " (" + s.op + ") output"));
      s.accumulate = get<std::vector<bool>>(steps[i], "accumulate", stepWhere);
      if (s.accumulate.size() != s.outputs.size())
        fail(stepWhere + " has " + std::to_string(s.accumulate.size()) + " accumulate flags for " +
             std::to_string(s.outputs.size()) + " outputs");
      for (const auto &[key, value] : field(steps[i], "attrs", stepWhere).items()) {
        if (value.is_boolean())
          s.attrs[key] = value.get<bool>();
        else if (value.is_number_integer())
          s.attrs[key] = value.get<int64_t>();
        else if (value.is_number())
          s.attrs[key] = value.get<double>();
        else if (value.is_string())
          s.attrs[key] = value.get<std::string>();
        else
          fail(stepWhere + " attribute '" + key + "' has an unsupported value " + value.dump());
      }
      program.steps.push_back(std::move(s));
    }
    plan.programs.push_back(std::move(program));
  }
}

/// A parameter's shard: every rank's spans inside the whole shape and adding up to the buffer's extent.
void readShard(const json &shard, int64_t ranks, const std::vector<int64_t> &local, Param &param,
               const std::string &where) {
  if (shard.is_null()) {
    if (param.shape != local)
      fail(where + " is not sharded, so its buffer must have its whole shape");
    return;
  }
  param.shard.dim = get<int>(shard, "dim", where + " shard");
  int dim = param.shard.dim;
  if (dim < 0 || dim >= static_cast<int>(local.size()) || param.shape.size() != local.size())
    fail(where + " is sharded along dimension " + std::to_string(dim) + ", which its shape does not have");
  for (size_t d = 0; d < local.size(); ++d)
    if (static_cast<int>(d) != dim && param.shape[d] != local[d])
      fail(where + ": its buffer differs from its whole shape outside the sharded dimension");
  const json &spans = field(shard, "spans", where + " shard");
  if (!spans.is_array() || static_cast<int64_t>(spans.size()) != ranks)
    fail(where + " needs one list of spans per tensor-parallel rank (" + std::to_string(ranks) + ")");
  for (const json &rank : spans) {
    std::vector<int64_t> flat;
    for (const json &value : rank.is_array() ? rank : json::array()) {
      if (!value.is_number_integer())
        fail(where + " has a span bound that is not an integer: " + value.dump());
      flat.push_back(value.get<int64_t>());
    }
    if (flat.empty() || flat.size() % 2 != 0)
      fail(where + " has a rank without (start, length) spans");
    int64_t total = 0;
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (size_t i = 0; i < flat.size(); i += 2) {
      if (flat[i] < 0 || flat[i + 1] <= 0 || flat[i] + flat[i + 1] > param.shape[dim])
        fail(where + " has a span outside its dimension " + std::to_string(dim));
      pairs.push_back({flat[i], flat[i + 1]});
      total += flat[i + 1];
    }
    if (total != local[dim])
      fail(where + ": a rank's spans add up to " + std::to_string(total) + ", not its buffer's " +
           std::to_string(local[dim]));
    param.shard.spans.push_back(std::move(pairs));
  }
}

void readPipeline(const json &document, Plan &plan) {
  const json &pipeline = field(document, "pipeline", "the plan");
  PipelineInfo &p = plan.pipeline;
  p.stages = get<int64_t>(pipeline, "stages", "pipeline");
  p.virtualStages = get<int64_t>(pipeline, "virtual_stages", "pipeline");
  p.stage = get<int64_t>(pipeline, "stage", "pipeline");
  p.microBatches = get<int64_t>(pipeline, "micro_batches", "pipeline");
  p.stashSlots = get<int64_t>(pipeline, "stash_slots", "pipeline");
  if (p.stages < 1 || p.virtualStages < 1 || p.stage < 0 || p.stage >= p.stages || p.microBatches < 1)
    fail("pipeline: stages, virtual_stages and micro_batches must be positive and stage one of the stages");
  if (p.stashSlots < 0 || (p.stages > 1 && p.stashSlots < 1))
    fail("pipeline.stash_slots must be at least 1 for a pipeline stage");
  const json &schedule = field(pipeline, "schedule", "pipeline");
  if (!schedule.is_array())
    fail("pipeline.schedule is not a list");
  for (const json &step : schedule) {
    if (!step.is_array() || step.size() != 3 || !step[0].is_string() || !step[1].is_number_integer() ||
        !step[2].is_number_integer())
      fail("pipeline.schedule: a step must be [\"F\" or \"B\", micro-batch, chunk], got " + step.dump());
    PipelineStep s{step[0] == "F", step[1].get<int64_t>(), step[2].get<int64_t>()};
    if ((step[0] != "F" && step[0] != "B") || s.microBatch < 0 || s.microBatch >= p.microBatches || s.chunk < 0 ||
        s.chunk >= p.virtualStages)
      fail("pipeline.schedule: step " + step.dump() + " names no micro-batch and chunk of this stage");
    p.schedule.push_back(s);
  }
}

void readModel(const json &document, Plan &plan) {
  const json &model = field(document, "model", "the plan");
  plan.model.family = get<std::string>(model, "family", "model");
  plan.model.fingerprint = get<std::string>(model, "fingerprint", "model");
  plan.model.numMicroBatches = get<int64_t>(model, "num_micro_batches", "model");
  plan.model.parameters = get<uint64_t>(model, "parameters", "model");
  plan.model.forwardFlopsPerMicroBatch = get<uint64_t>(model, "forward_flops_per_micro_batch", "model");
  if (plan.model.numMicroBatches <= 0)
    fail("model.num_micro_batches must be positive");
  const json &parallel = field(document, "parallel", "the plan");
  plan.parallel.tensor = get<int64_t>(parallel, "tensor", "parallel");
  plan.parallel.sequence = get<bool>(parallel, "sequence", "parallel");
  plan.parallel.data = get<int64_t>(parallel, "data", "parallel");
  plan.parallel.distributedOptimizer = get<bool>(parallel, "distributed_optimizer", "parallel");
  if (plan.parallel.tensor < 1)
    fail("parallel.tensor must be at least 1");
  if (plan.parallel.data < 1 || plan.model.numMicroBatches % plan.parallel.data != 0)
    fail("parallel.data must be at least 1 and divide model.num_micro_batches");

  for (const json &in : field(document, "inputs", "the plan")) {
    Input input{get<std::string>(in, "name", "an input"), -1};
    input.buffer = bufferId(field(in, "buffer", "input"), plan, "input '" + input.name + "'");
    plan.inputs.push_back(std::move(input));
  }
  for (const json &p : field(document, "params", "the plan")) {
    Param param;
    param.name = get<std::string>(p, "name", "a parameter");
    std::string where = "parameter '" + param.name + "'";
    param.index = get<int64_t>(p, "index", where);
    if (param.index < 0)
      fail(where + " has a negative index");
    param.buffer = bufferId(field(p, "buffer", where), plan, where);
    param.grad = bufferId(field(p, "grad", where), plan, where + " gradient");
    if (plan.parallel.distributedOptimizer) {
      // The moments are the flat optimizer_shard.
      for (const char *moment : {"exp_avg", "exp_avg_sq"})
        if (const json &id = field(p, moment, where); !id.is_number_integer() || id.get<int64_t>() != -1)
          fail(where + ": under the distributed optimizer its " + moment +
               " must be -1 (the moments are the plan's optimizer_shard)");
    } else {
      param.expAvg = bufferId(field(p, "exp_avg", where), plan, where + " exp_avg");
      param.expAvgSq = bufferId(field(p, "exp_avg_sq", where), plan, where + " exp_avg_sq");
    }
    std::string init = get<std::string>(p, "init", where);
    if (init == "normal")
      param.init = InitKind::Normal;
    else if (init == "zeros")
      param.init = InitKind::Zeros;
    else if (init == "ones")
      param.init = InitKind::Ones;
    else
      fail(where + " has an unknown init '" + init + "'");
    param.initStd = get<double>(p, "init_std", where);
    param.weightDecay = get<bool>(p, "weight_decay", where);
    const Buffer &value = plan.buffers[param.buffer];
    for (int id : {param.grad, param.expAvg, param.expAvgSq})
      if (id >= 0 && plan.buffers[id].shape != value.shape)
        fail(where + ": its gradient and optimizer state must have its shape");
    param.shape = get<std::vector<int64_t>>(p, "shape", where);
    readShard(field(p, "shard", where), plan.parallel.tensor, value.shape, param, where);
    plan.params.push_back(std::move(param));
  }

  const json &shard = field(document, "optimizer_shard", "the plan");
  if (shard.is_null() == plan.parallel.distributedOptimizer)
    fail(plan.parallel.distributedOptimizer
             ? "parallel.distributed_optimizer needs an optimizer_shard (AdamW's moments of the replica's chunk)"
             : "optimizer_shard is only for parallel.distributed_optimizer");
  if (!shard.is_null()) {
    OptimizerShard s;
    s.expAvg = bufferId(field(shard, "exp_avg", "optimizer_shard"), plan, "optimizer_shard exp_avg");
    s.expAvgSq = bufferId(field(shard, "exp_avg_sq", "optimizer_shard"), plan, "optimizer_shard exp_avg_sq");
    s.elements = get<int64_t>(shard, "elements", "optimizer_shard");
    int64_t chunk =
        distributedOptimizerChunk(plan.arenaBytes[static_cast<int>(Arena::Grads)], plan.parallel.data);
    if (s.elements != chunk)
      fail("optimizer_shard has " + std::to_string(s.elements) + " elements, but a replica's chunk of the " +
           "gradients arena is " + std::to_string(chunk));
    for (int id : {s.expAvg, s.expAvgSq}) {
      const Buffer &b = plan.buffers[id];
      if (b.arena != Arena::Optimizer || b.dtype != DType::F32 || b.shape != std::vector<int64_t>{chunk})
        fail("optimizer_shard's buffers must be f32 [" + std::to_string(chunk) + "] in the optimizer arena");
    }
    plan.optimizerShard = s;
  }
}
} // namespace

std::optional<Plan> parsePlan(const std::string &text, const std::string &path, std::string &error) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    error = "'" + path + "' is not a plan: it is not valid JSON";
    return std::nullopt;
  }
  try {
    if (!document.is_object() || document.value("format", "") != kPlanFormat)
      fail("it is not a megatron plan (no \"format\": \"megatron-plan\")");
    int version = get<int>(document, "version", "the plan");
    if (version != kPlanVersion)
      fail("it is a plan of format version " + std::to_string(version) + ", and this megatron-run reads version " +
           std::to_string(kPlanVersion) + "; compile the model again with this release's megatron-opt");
    Plan plan;
    readBuffers(document, plan);
    readPipeline(document, plan);
    readModel(document, plan);
    readPrograms(document, plan);
    std::string recorded = get<std::string>(document, "fingerprint", "the plan");
    if (recorded != fingerprintOf(plan))
      fail("its content does not match its fingerprint (the file was modified or damaged)");
    return plan;
  } catch (const PlanError &e) {
    error = "plan '" + path + "': " + e.message;
    return std::nullopt;
  }
}

std::string toJson(const std::vector<Plan> &stages) {
  if (stages.size() == 1)
    return toJson(stages.front());
  std::string out = "{\"format\": " + json(kPlanFormat).dump() + ", \"version\": " + std::to_string(kPlanVersion) +
                    ", \"pipeline_stages\": [\n";
  for (size_t i = 0; i < stages.size(); ++i)
    out += (i ? ",\n" : "") + toJson(stages[i]);
  return out + "]}\n";
}

namespace {
std::optional<std::string> readText(const std::string &path, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read plan '" + path + "': no such file or not readable";
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
} // namespace

std::optional<Plan> readPlan(const std::string &path, std::string &error) {
  std::optional<std::string> text = readText(path, error);
  return text ? parsePlan(*text, path, error) : std::nullopt;
}

std::optional<std::vector<Plan>> parsePlanStages(const std::string &text, const std::string &path,
                                                 std::string &error) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("pipeline_stages")) {
    std::optional<Plan> one = parsePlan(text, path, error);
    if (!one)
      return std::nullopt;
    if (one->pipeline.stages != 1) {
      error = "plan '" + path + "': it is one stage of a " + std::to_string(one->pipeline.stages) +
              "-stage pipeline, without the others";
      return std::nullopt;
    }
    return std::vector<Plan>{std::move(*one)};
  }
  const json &list = document["pipeline_stages"];
  std::vector<Plan> stages;
  if (!list.is_array() || list.size() < 2) {
    error = "plan '" + path + "': 'pipeline_stages' must list at least two stage plans";
    return std::nullopt;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    std::optional<Plan> stage = parsePlan(list[i].dump(), path + " stage " + std::to_string(i), error);
    if (!stage)
      return std::nullopt;
    const PipelineInfo &p = stage->pipeline;
    if (p.stages != static_cast<int64_t>(list.size()) || p.stage != static_cast<int64_t>(i) ||
        (i > 0 && (stage->model.fingerprint != stages[0].model.fingerprint ||
                   p.virtualStages != stages[0].pipeline.virtualStages ||
                   stage->parallel.tensor != stages[0].parallel.tensor ||
                   stage->parallel.data != stages[0].parallel.data))) {
      error = "plan '" + path + "': stage " + std::to_string(i) + " does not belong with the others (its stage, " +
              "stage count, model or layout differs)";
      return std::nullopt;
    }
    stages.push_back(std::move(*stage));
  }
  return stages;
}

std::optional<std::vector<Plan>> readPlanStages(const std::string &path, std::string &error) {
  std::optional<std::string> text = readText(path, error);
  return text ? parsePlanStages(*text, path, error) : std::nullopt;
}

} // namespace megatron::plan
