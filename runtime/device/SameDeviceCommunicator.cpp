//===- SameDeviceCommunicator.cpp - Several ranks sharing one device --------===//

#include "runtime/device/SameDeviceCommunicator.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/comm/DataMover.h"

#include <map>
#include <tuple>

namespace megatron::device {

namespace {

/// One rank's copies and reductions, on its own backend (stream). Every pointer it is given is a device pointer
/// of the shared device; it never reads one on the host.
class DeviceDataMover final : public comm::DataMover {
public:
  explicit DeviceDataMover(DeviceBackend &backend) : backend(backend) {}

  std::string describe() const override { return backend.describe(); }
  std::string publish() override { return backend.synchronize(); }
  std::string complete() override { return backend.synchronize(); }

  std::string copy(void *to, const void *from, std::size_t bytes) override {
    if (bytes == 0 || to == from)
      return {};
    return backend.copyOnDevice(to, from, bytes);
  }

  std::string reduce(plan::DType type, comm::ReduceOp op, const void *const *src, int n, void *const *dst,
                     int numDst, std::int64_t len) override {
    if (n > codegen::kMaxReduceRanks || numDst > codegen::kMaxReduceRanks)
      return "a reduction over " + std::to_string(n) + " ranks exceeds the " +
             std::to_string(codegen::kMaxReduceRanks) + " that the rank reduction kernel reads";
    if (len == 0)
      return {};
    const codegen::CudaKernel *kernel = nullptr;
    if (std::string error = reductionKernel(type, op == comm::ReduceOp::Max, len, kernel); !error.empty())
      return error;
    struct RankPointers { // mt::RankPointers (lib/CodeGen/cuda/RankReduction.cuh)
      const void *at[codegen::kMaxReduceRanks];
    } sources{}, destinations{};
    for (int r = 0; r < n; ++r)
      sources.at[r] = src[r];
    for (int d = 0; d < numDst; ++d)
      destinations.at[d] = dst[d];
    int ranks = n, destinationCount = numDst;
    long long elements = len;
    void *args[] = {&sources, &destinations, &ranks, &destinationCount, &elements};
    return backend.launch(*kernel, args);
  }

  bool reduces(plan::DType type) const override {
    return type == plan::DType::F32 || type == plan::DType::F64 || type == plan::DType::BF16 ||
           type == plan::DType::F16 || type == plan::DType::I32 || type == plan::DType::I64;
  }

  std::string stage(const void *data, std::size_t bytes, std::shared_ptr<void> &copy) override {
    std::string error;
    void *memory = backend.allocate(bytes ? bytes : 1, error);
    if (!memory)
      return "cannot stage a " + std::to_string(bytes) + "-byte message: " + error;
    DeviceBackend *owner = &backend;
    copy = std::shared_ptr<void>(memory, [owner](void *p) { owner->release(p); });
    if (bytes == 0)
      return {};
    if (error = backend.copyOnDevice(memory, data, bytes); !error.empty())
      return error;
    return backend.synchronize(); // the receiver's stream reads it
  }

private:
  /// The reduction kernel of (type, op, grid), generated and prepared on this backend at its first use.
  std::string reductionKernel(plan::DType type, bool max, std::int64_t len, const codegen::CudaKernel *&kernel) {
    const bool small = len <= codegen::kSmallRankReduction;
    auto key = std::make_tuple(type, max, small);
    auto found = kernels.find(key);
    if (found == kernels.end()) {
      codegen::CudaKernel generated = codegen::rankReductionKernel(type, max, len);
      if (std::string error = backend.prepare({generated}); !error.empty())
        return "cannot prepare the rank reduction kernel " + generated.name + ": " + error;
      found = kernels.emplace(key, std::move(generated)).first;
    }
    kernel = &found->second;
    return {};
  }

  DeviceBackend &backend;
  std::map<std::tuple<plan::DType, bool, bool>, codegen::CudaKernel> kernels;
};

std::string moversFor(const std::vector<DeviceBackend *> &backends,
                      std::vector<std::shared_ptr<comm::DataMover>> &movers) {
  if (backends.empty())
    return "a same-device world needs at least one rank";
  if (backends.size() > size_t(codegen::kMaxReduceRanks))
    return "a same-device world of " + std::to_string(backends.size()) + " ranks exceeds the " +
           std::to_string(codegen::kMaxReduceRanks) + " that one reduction kernel reads";
  for (size_t r = 0; r < backends.size(); ++r) {
    if (!backends[r])
      return "rank " + std::to_string(r) + " of the same-device world has no backend";
    movers.push_back(deviceDataMover(*backends[r]));
  }
  return {};
}

} // namespace

std::shared_ptr<comm::DataMover> deviceDataMover(DeviceBackend &backend) {
  return std::make_shared<DeviceDataMover>(backend);
}

std::unique_ptr<comm::ThreadWorld> createSameDeviceWorld(const std::vector<DeviceBackend *> &backends,
                                                         std::string &error, comm::ThreadWorldOptions options) {
  std::vector<std::shared_ptr<comm::DataMover>> movers;
  if (error = moversFor(backends, movers); !error.empty())
    return nullptr;
  return std::make_unique<comm::ThreadWorld>(int(backends.size()), options, std::move(movers));
}

std::string runRanksOnDevice(const std::vector<DeviceBackend *> &backends,
                             const std::function<std::string(int rank, comm::Communicator &world)> &body,
                             comm::ThreadWorldOptions options) {
  std::vector<std::shared_ptr<comm::DataMover>> movers;
  if (std::string error = moversFor(backends, movers); !error.empty())
    return "runRanksOnDevice: " + error;
  return comm::runRanks(int(backends.size()), body, options, std::move(movers));
}

} // namespace megatron::device
