//===- KernelLaunch.cpp - A generated kernel's parameters bound to a plan step ---===//

#include "runtime/device/KernelLaunch.h"

#include <cstring>

namespace megatron::device {

namespace {

template <typename V> void put(std::byte *slot, V value) { std::memcpy(slot, &value, sizeof value); }

/// An integer in the parameter's own C type: the kernel reads exactly that many bytes.
void putInteger(std::byte *slot, const std::string &cType, long long value) {
  if (cType == "int")
    put(slot, int(value));
  else if (cType == "long long")
    put(slot, value);
  else
    put(slot, (unsigned long long)value);
}

bool knownRuntimeValue(const std::string &name) {
  return name == "tp_rank" || name == "dropout_seed" || name == "training" || name == "loss_scale" ||
         name == "index_status" || name == "workspace";
}

} // namespace

std::optional<KernelLaunch> KernelLaunch::bind(const codegen::CudaKernel &kernel, const plan::Step &step,
                                               const std::function<void *(int)> &address, std::string &error) {
  KernelLaunch launch(kernel);
  launch.slots.assign(kernel.args.size() * 8, std::byte{0});
  launch.pointers.resize(kernel.args.size());
  for (size_t i = 0; i < kernel.args.size(); ++i) {
    const codegen::KernelArg &arg = kernel.args[i];
    std::byte *slot = launch.slots.data() + i * 8;
    switch (arg.source) {
    case codegen::ArgSource::Input:
    case codegen::ArgSource::Output: {
      const std::vector<int> &ids = arg.source == codegen::ArgSource::Input ? step.inputs : step.outputs;
      if (arg.index < 0 || size_t(arg.index) >= ids.size()) {
        error = kernel.name + ": parameter " + arg.name + " names operand " + std::to_string(arg.index) +
                ", which the step does not have";
        return std::nullopt;
      }
      put(slot, address(ids[size_t(arg.index)]));
      break;
    }
    case codegen::ArgSource::Attribute: {
      auto it = step.attrs.find(arg.name);
      const int64_t *value = it == step.attrs.end() ? nullptr : std::get_if<int64_t>(&it->second);
      putInteger(slot, arg.cType, value ? *value : 0);
      break;
    }
    case codegen::ArgSource::Runtime:
      if (!knownRuntimeValue(arg.name)) {
        error = kernel.name + ": unknown run-time argument '" + arg.name + "'";
        return std::nullopt;
      }
      launch.runtimeSlots.push_back(i);
      break;
    }
  }
  return launch;
}

void **KernelLaunch::arguments(const RuntimeValues &values) {
  for (size_t i : runtimeSlots) {
    const codegen::KernelArg &arg = kernelPtr->args[i];
    std::byte *slot = slots.data() + i * 8;
    if (arg.name == "tp_rank")
      putInteger(slot, arg.cType, values.tpRank);
    else if (arg.name == "dropout_seed")
      putInteger(slot, arg.cType, (long long)values.dropoutSeed);
    else if (arg.name == "training")
      putInteger(slot, arg.cType, values.training ? 1 : 0);
    else if (arg.name == "loss_scale")
      put(slot, values.lossScale);
    else if (arg.name == "workspace")
      put(slot, values.workspace);
    else // index_status: bind() admits no other name
      put(slot, values.indexStatus);
  }
  // Computed here rather than in bind(), so that moving a KernelLaunch (its slots' storage) keeps them valid.
  for (size_t i = 0; i < pointers.size(); ++i)
    pointers[i] = slots.data() + i * 8;
  return pointers.data();
}

bool KernelLaunch::reportsIndices() const {
  for (const codegen::KernelArg &arg : kernelPtr->args)
    if (arg.source == codegen::ArgSource::Runtime && arg.name == "index_status")
      return true;
  return false;
}

} // namespace megatron::device
