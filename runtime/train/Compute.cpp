//===- Compute.cpp - Where a rank's programs run ---------------------------===//

#include "Compute.h"

namespace megatron::train {

namespace {

class HostCompute final : public Compute {
public:
  explicit HostCompute(runtime::Engine &engine) : engine(engine) {}
  std::string run(const std::string &name, const runtime::RunContext &context) override {
    return engine.run(name, context);
  }
  std::string loss(const std::string &name, double &value) override {
    value = engine.loss(name);
    return {};
  }
  std::string zeroGradients() override {
    engine.zero(plan::Arena::Grads);
    return {};
  }
  std::string toDevice(int) override { return {}; }
  std::string toHost(int, int64_t, int64_t) override { return {}; }

private:
  runtime::Engine &engine;
};

/// Calls `move` on every parameter's value and AdamW moments: per parameter, or the distributed optimizer's flat
/// shard (the parameters' moments are -1 then).
template <typename Move> std::string forEachStateBuffer(const plan::Plan &plan, Move move) {
  for (const plan::Param &p : plan.params)
    for (int id : {p.buffer, p.expAvg, p.expAvgSq})
      if (id >= 0)
        if (std::string error = move(id); !error.empty())
          return "'" + p.name + "': " + error;
  if (plan.optimizerShard)
    for (int id : {plan.optimizerShard->expAvg, plan.optimizerShard->expAvgSq})
      if (std::string error = move(id); !error.empty())
        return "the distributed optimizer's moments: " + error;
  return {};
}

} // namespace

std::unique_ptr<Compute> hostCompute(runtime::Engine &engine) { return std::make_unique<HostCompute>(engine); }

std::string trainingStateToDevice(Compute &compute, const plan::Plan &plan) {
  std::string error = forEachStateBuffer(plan, [&](int id) { return compute.toDevice(id); });
  return error.empty() ? error : "copying the parameters and optimizer state to the device: " + error;
}

std::string trainingStateToHost(Compute &compute, const plan::Plan &plan) {
  std::string error = forEachStateBuffer(plan, [&](int id) { return compute.toHost(id); });
  return error.empty() ? error : "copying the parameters and optimizer state from the device: " + error;
}

} // namespace megatron::train
