//===- NcclCommunicatorTest.cpp - comm::Communicator on NCCL, on one GPU -----------===//
//
// NCCL refuses two ranks on one GPU, and the machines lent here have one, so what runs here is a world of one rank
// (bootstrapped through a ThreadCommunicator world, as megatron-run bootstraps through MPI or the rendezvous):
// every call is issued through NCCL on device buffers and must leave them as a group of one leaves them, the
// strided *Dim layouts included, and a bad call must be refused by name. Several ranks are covered by the
// same-device communicator's tests; NCCL across GPUs awaits a machine with several. The watchdog is checked both
// ways on that one rank: with a tiny timeout it leaves operations that complete alone, and a collective held
// behind a host function on the stream (as a peer that never arrives holds NCCL's kernel) stops the world by
// name. Without a GPU, every test skips.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/NcclCommunicator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>

#if MEGATRON_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

using namespace megatron;

namespace {

/// The GPU's backend when this build has NCCL; else null and why the test skips.
std::unique_ptr<cuda::CudaBackend> gpuWithNccl(std::string &why) {
  if (!cuda::haveNccl()) {
    why = "this build has no NCCL";
    return nullptr;
  }
  return cuda::createCudaBackend({}, why);
}

TEST(NcclCommunicator, AWorldOfOneRankOnTheGpu) {
  std::string why;
  std::unique_ptr<cuda::CudaBackend> backend = gpuWithNccl(why);
  if (!backend)
    GTEST_SKIP() << why;
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

// With a timeout of 2 s, the watchdog forgets the operations that finish: 3 s after they did (over a hundred
// polls), the world is healthy and keeps working.
TEST(NcclCommunicator, TheWatchdogLeavesOperationsThatCompleteAlone) {
  std::string why;
  std::unique_ptr<cuda::CudaBackend> backend = gpuWithNccl(why);
  if (!backend)
    GTEST_SKIP() << why;
  std::string failure = comm::runRanks(1, [&](int, comm::Communicator &hostWorld) -> std::string {
    cuda::NcclWorldOptions options;
    options.timeout = std::chrono::milliseconds(2000);
    std::string error;
    std::unique_ptr<comm::Communicator> world = cuda::createNcclWorld(hostWorld, *backend, error, options);
    if (!world)
      return error;
    const int64_t n = 1024;
    std::vector<float> host(n), back(n);
    std::iota(host.begin(), host.end(), 1.0f);
    float *a = static_cast<float *>(backend->allocate(n * 4, error));
    if (!a)
      return error;
    EXPECT_EQ(backend->copyToDevice(a, host.data(), n * 4), "");
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(world->allReduce(a, n, comm::DType::F32, comm::ReduceOp::Sum), "");
    EXPECT_EQ(backend->copyToHost(back.data(), a, n * 4), ""); // after the stream's work
    EXPECT_EQ(back, host);
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    EXPECT_EQ(world->allReduce(a, n, comm::DType::F32, comm::ReduceOp::Sum), "");
    std::unique_ptr<comm::Communicator> tp = world->split(0, 0, "tp", error);
    EXPECT_NE(tp, nullptr) << error;
    if (tp) {
      EXPECT_EQ(tp->broadcast(a, n, comm::DType::F32, 0), "");
    }
    EXPECT_EQ(backend->copyToHost(back.data(), a, n * 4), "");
    backend->release(a);
    return "";
  });
  EXPECT_EQ(failure, "");
}

#if MEGATRON_HAVE_CUDA
/// A host function that holds its stream until `*flag` is set.
void CUDART_CB holdUntilReleased(void *flag) {
  while (!static_cast<std::atomic<bool> *>(flag)->load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}
#endif

// A collective that cannot complete stops the world after the timeout: the next calls return the watchdog's
// message, naming the rank, the collective, the group and the timeout, instead of waiting.
TEST(NcclCommunicator, ACollectiveThatNeverCompletesStopsTheWorldNamingIt) {
#if MEGATRON_HAVE_CUDA
  std::string why;
  std::unique_ptr<cuda::CudaBackend> backend = gpuWithNccl(why);
  if (!backend)
    GTEST_SKIP() << why;
  comm::runRanks(1, [&](int, comm::Communicator &hostWorld) -> std::string {
    cuda::NcclWorldOptions options;
    options.timeout = std::chrono::milliseconds(500);
    std::string error;
    std::unique_ptr<comm::Communicator> world = cuda::createNcclWorld(hostWorld, *backend, error, options);
    if (!world)
      return error;
    float *a = static_cast<float *>(backend->allocate(30 * 4, error));
    if (!a)
      return error;
    std::atomic<bool> released{false};
    auto stream = static_cast<cudaStream_t>(backend->nativeStream());
    EXPECT_EQ(cudaLaunchHostFunc(stream, holdUntilReleased, &released), cudaSuccess);
    EXPECT_EQ(world->allReduce(a, 30, comm::DType::F32, comm::ReduceOp::Sum), ""); // enqueued behind the hold
    std::this_thread::sleep_for(std::chrono::milliseconds(2000)); // four timeouts
    released = true; // whatever ncclCommAbort waits for on the stream can finish now
    const std::string expected = "rank 0: all_reduce of 120 B (f32, sum) on group \"world\" did not complete within "
                                 "500 ms (a peer never joined it, or hung)";
    const std::string after = world->allReduce(a, 30, comm::DType::F32, comm::ReduceOp::Sum);
    EXPECT_NE(after.find(expected), std::string::npos) << after;
    std::unique_ptr<comm::Communicator> tp = world->split(0, 0, "tp", error);
    EXPECT_EQ(tp, nullptr);
    EXPECT_EQ(error, expected);
    cudaStreamSynchronize(stream); // the aborted collective has left the stream
    backend->release(a);
    return "";
  });
#else
  GTEST_SKIP() << "this build has no CUDA";
#endif
}

/// groupStart/groupEnd (ncclGroupStart/ncclGroupEnd on a non-blocking communicator) in a world of one rank: a rank's
/// send to itself and its recv from itself complete only together, so they need a group, and the group must move
/// the bytes, settle, and leave the world healthy for the next call; a group that does not close is refused by name.
TEST(NcclGroup, ASendToItselfAndItsRecvCompleteAsOneGroup) {
  std::string why;
  std::unique_ptr<cuda::CudaBackend> backend = gpuWithNccl(why);
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
