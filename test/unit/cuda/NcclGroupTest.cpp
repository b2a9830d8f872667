//===- NcclGroupTest.cpp - NCCL groups of sends and recvs, on one GPU -----------===//
//
// comm::Communicator::groupStart/groupEnd on NCCL (ncclGroupStart/ncclGroupEnd on a non-blocking communicator),
// in a world of one rank, as NcclCommunicatorTest's: a rank's send to itself and its recv from itself complete
// only together, so they need a group, and the group must move the bytes, settle, and leave the world healthy for
// the next call; a group that does not close is refused by name. Without a GPU the test skips.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/NcclCommunicator.h"

#include <gtest/gtest.h>

#include <numeric>

using namespace megatron;

namespace {

TEST(NcclGroup, ASendToItselfAndItsRecvCompleteAsOneGroup) {
  std::string why;
  if (!cuda::haveNccl())
    GTEST_SKIP() << "this build has no NCCL";
  std::unique_ptr<cuda::CudaBackend> backend = cuda::createCudaBackend({}, why);
  if (!backend)
    GTEST_SKIP() << why;
  std::string failure = comm::runRanks(1, [&](int, comm::Communicator &hostWorld) -> std::string {
    std::string error;
    std::unique_ptr<comm::Communicator> world = cuda::createNcclWorld(hostWorld, *backend, error);
    if (!world)
      return error;
    const int64_t n = 64;
    std::vector<float> host(n), back(n, 0);
    std::iota(host.begin(), host.end(), 1.0f);
    float *a = static_cast<float *>(backend->allocate(n * 4, error));
    float *b = static_cast<float *>(backend->allocate(n * 4, error));
    if (!a || !b)
      return error;
    EXPECT_EQ(backend->copyToDevice(a, host.data(), n * 4), "");
    EXPECT_EQ(backend->fill(b, 0, n * 4), "");
    EXPECT_EQ(world->groupStart(), "");
    const std::string nested = world->groupStart();
    EXPECT_NE(nested.find("groups do not nest"), std::string::npos) << nested;
    EXPECT_EQ(world->send(a, n, comm::DType::F32, 0, 3), "");
    EXPECT_EQ(world->recv(b, n, comm::DType::F32, 0, 3), "");
    EXPECT_EQ(world->groupEnd(), "");
    EXPECT_EQ(backend->synchronize(), "");
    EXPECT_EQ(backend->copyToHost(back.data(), b, n * 4), "");
    EXPECT_EQ(back, host) << "the group moved the bytes";
    const std::string unopened = world->groupEnd();
    EXPECT_NE(unopened.find("groupEnd without groupStart"), std::string::npos) << unopened;
    EXPECT_EQ(world->allReduce(a, n, comm::DType::F32, comm::ReduceOp::Sum), "") << "the world is healthy";
    EXPECT_EQ(backend->synchronize(), "");
    backend->release(a);
    backend->release(b);
    return "";
  });
  EXPECT_EQ(failure, "");
}

} // namespace
