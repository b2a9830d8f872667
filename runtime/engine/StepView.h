//===- StepView.h - Reading a plan step's buffers and attributes -*- C++ -*-===//
//
// Shared by the step binder's translation units (StepBinder.cpp, CollectiveSteps.cpp). Private to
// runtime/engine.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_ENGINE_STEPVIEW_H
#define MEGATRON_RUNTIME_ENGINE_STEPVIEW_H

#include "Engine.h"

#include "runtime/cpu/Kernels.h"

#include <string>
#include <type_traits>
#include <vector>

namespace megatron::runtime {

using cpu::Index;

/// Whether a boolean attribute is present and true (the sharding attributes; absent means unsharded).
inline bool flagOf(const plan::Step &step, const char *name) {
  auto it = step.attrs.find(name);
  if (it == step.attrs.end())
    return false;
  const bool *value = std::get_if<bool>(&it->second);
  return value && *value;
}

/// Reads a step's buffers and attributes for one binding.
template <typename T> struct StepView {
  Engine &engine;
  const plan::Step &step;
  std::string where; // "step 12 of train_step (embedding at 'embedding.word_embeddings')"
  std::string missing;

  T *in(size_t i) const { return engine.as<T>(step.inputs[i]); }
  T *out(size_t i) const { return engine.as<T>(step.outputs[i]); }
  std::int32_t *inInt(size_t i) const { return engine.as<std::int32_t>(step.inputs[i]); }
  const std::vector<int64_t> &inShape(size_t i) const { return engine.buffer(step.inputs[i]).shape; }
  const std::vector<int64_t> &outShape(size_t i) const { return engine.buffer(step.outputs[i]).shape; }
  Index inCount(size_t i) const { return engine.buffer(step.inputs[i]).numElements(); }
  Index outCount(size_t i) const { return engine.buffer(step.outputs[i]).numElements(); }
  bool accumulates(size_t i) const { return step.accumulate[i]; }

  template <typename V> V attr(const char *name, V fallback) const {
    auto it = step.attrs.find(name);
    if (it == step.attrs.end())
      return fallback;
    if (const V *value = std::get_if<V>(&it->second))
      return *value;
    if constexpr (std::is_same_v<V, double>)
      if (const int64_t *i = std::get_if<int64_t>(&it->second))
        return static_cast<double>(*i);
    return fallback;
  }
  bool flag(const char *name) const { return flagOf(step, name); }
  template <typename V> V required(const char *name) {
    if (!step.attrs.count(name))
      missing = name;
    return attr<V>(name, V());
  }
};

template <typename T> constexpr plan::DType dtypeOf() {
  return std::is_same_v<T, double> ? plan::DType::F64 : plan::DType::F32;
}

} // namespace megatron::runtime

#endif // MEGATRON_RUNTIME_ENGINE_STEPVIEW_H
