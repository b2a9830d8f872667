//===- DataMover.cpp - Host memory as the thread world's data mover ----------===//

#include "DataMover.h"

#include "Reduction.h"

#include <cstdlib>
#include <cstring>

namespace megatron::comm {

DataMover::~DataMover() = default;

namespace {

class HostDataMover final : public DataMover {
public:
  std::string describe() const override { return "host memory"; }
  std::string publish() override { return {}; }
  std::string complete() override { return {}; }
  std::string copy(void *to, const void *from, std::size_t bytes) override {
    if (bytes > 0 && to != from)
      std::memcpy(to, from, bytes);
    return {};
  }
  std::string reduce(DType type, ReduceOp op, const void *const *src, int n, void *const *dst, int numDst,
                     std::int64_t len) override {
    reduceInRankOrder(type, op, src, n, dst, numDst, len);
    return {};
  }
  bool reduces(DType type) const override { return isReducible(type); }
  std::string stage(const void *data, std::size_t bytes, std::shared_ptr<void> &copy) override {
    copy = std::shared_ptr<void>(std::malloc(bytes ? bytes : 1), std::free);
    if (!copy)
      return "out of host memory for a " + std::to_string(bytes) + "-byte message";
    if (bytes > 0)
      std::memcpy(copy.get(), data, bytes);
    return {};
  }
};

} // namespace

std::shared_ptr<DataMover> hostDataMover() {
  static const std::shared_ptr<DataMover> host = std::make_shared<HostDataMover>();
  return host;
}

} // namespace megatron::comm
