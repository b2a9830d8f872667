//===- NcclCommunicatorTest.cpp - comm::Communicator on NCCL, on one GPU -----------===//
//
// NCCL refuses two ranks on one GPU, and the machines lent here have one, so what runs here is a world of one rank
// (bootstrapped through a ThreadCommunicator world, as megatron-run bootstraps through MPI or the rendezvous):
// every call is issued through NCCL on device buffers and must leave them as a group of one leaves them, the
// strided *Dim layouts included, and a bad call must be refused by name. Several ranks are covered by the
// same-device communicator's tests; NCCL across GPUs awaits a machine with several. Without a GPU, it skips.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/NcclCommunicator.h"

#include <gtest/gtest.h>

#include <numeric>

using namespace megatron;

namespace {

TEST(NcclCommunicator, AWorldOfOneRankOnTheGpu) {
  std::string why;
  std::unique_ptr<cuda::CudaBackend> backend = cuda::createCudaBackend({}, why);
  if (!backend)
    GTEST_SKIP() << why;
  if (!cuda::haveNccl())
    GTEST_SKIP() << "this build has no NCCL";
  std::string failure = comm::runRanks(1, [&](int, comm::Communicator &hostWorld) -> std::string {
    std::string error;
    std::unique_ptr<comm::Communicator> world = cuda::createNcclWorld(hostWorld, *backend, error);
    if (!world)
      return error;
    EXPECT_EQ(world->rank(), 0);
    EXPECT_EQ(world->size(), 1);
    EXPECT_EQ(world->name(), "world");
    const int64_t n = 6 * 5;
    std::vector<float> host(n), back(n);
    std::iota(host.begin(), host.end(), 1.0f);
    float *a = static_cast<float *>(backend->allocate(n * 4, error));
    float *b = static_cast<float *>(backend->allocate(n * 4, error));
    if (!a || !b)
      return error;
    auto check = [&](const char *what, const float *device) {
      EXPECT_EQ(backend->copyToHost(back.data(), device, n * 4), "") << what;
      EXPECT_EQ(back, host) << what;
    };
    EXPECT_EQ(backend->copyToDevice(a, host.data(), n * 4), "");
    EXPECT_EQ(world->allReduce(a, n, comm::DType::F32, comm::ReduceOp::Sum), "");
    check("all_reduce", a);
    EXPECT_EQ(world->allGather(a, b, n, comm::DType::F32), "");
    check("all_gather", b);
    EXPECT_EQ(world->allGatherDim(a, b, 6, 5, comm::DType::F32), "");
    check("all_gather_dim", b);
    EXPECT_EQ(world->reduceScatterDim(b, a, 6, 5, comm::DType::F32, comm::ReduceOp::Sum), "");
    check("reduce_scatter_dim", a);
    EXPECT_EQ(world->broadcast(a, n, comm::DType::F32, 0), "");
    check("broadcast", a);
    std::unique_ptr<comm::Communicator> tp = world->split(0, 0, "tp", error);
    if (!tp)
      return "split: " + error;
    EXPECT_EQ(tp->name(), "tp");
    EXPECT_EQ(tp->allReduce(a, n, comm::DType::BF16, comm::ReduceOp::Sum), ""); // NCCL reduces 16-bit types
    const std::string refused = tp->broadcast(a, n, comm::DType::F32, 3);
    EXPECT_NE(refused.find("broadcast"), std::string::npos) << refused;
    EXPECT_NE(refused.find("\"tp\""), std::string::npos) << refused;
    backend->release(a);
    backend->release(b);
    return "";
  });
  EXPECT_EQ(failure, "");
}

} // namespace
