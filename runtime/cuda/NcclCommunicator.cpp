//===- NcclCommunicator.cpp - comm::Communicator on NCCL, for device buffers -----===//

#include "runtime/cuda/NcclCommunicator.h"

#if MEGATRON_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <mutex>
#endif

namespace megatron::cuda {

#if MEGATRON_HAVE_NCCL

bool haveNccl() { return true; }

namespace {

using comm::CallInfo;
using comm::CommOp;
using comm::DType;
using comm::ReduceOp;

bool ncclTypeOf(DType type, ncclDataType_t &nccl) {
  switch (type) {
  case DType::F32: nccl = ncclFloat32; return true;
  case DType::F64: nccl = ncclFloat64; return true;
  case DType::BF16: nccl = ncclBfloat16; return true;
  case DType::F16: nccl = ncclFloat16; return true;
  case DType::I32: nccl = ncclInt32; return true;
  case DType::I64: nccl = ncclInt64; return true;
  }
  return false;
}

/// The first failure of the world, shared by every communicator split off it in this process.
struct Failure {
  std::mutex mutex;
  std::string reason;
};

class NcclCommunicator final : public comm::Communicator {
public:
  NcclCommunicator(ncclComm_t comm, CudaBackend &backend, std::string name, std::shared_ptr<Failure> failure)
      : handle(comm), backend(backend), groupName(std::move(name)), failure(std::move(failure)) {
    ncclCommUserRank(handle, &myRank);
    ncclCommCount(handle, &count);
  }

  ~NcclCommunicator() override {
    cudaSetDevice(backend.deviceIndex());
    if (scratch)
      cudaFree(scratch);
    if (!failed().empty())
      ncclCommAbort(handle); // a failed world may never finish its operations
    else
      ncclCommDestroy(handle);
  }

  int rank() const override { return myRank; }
  int size() const override { return count; }
  const std::string &name() const override { return groupName; }

  std::string allReduce(void *data, int64_t n, DType type, ReduceOp op) override {
    return issue({CommOp::AllReduce, type, op, n}, data, data, [&](ncclDataType_t t, cudaStream_t s) {
      return ncclAllReduce(data, data, size_t(n), t, ncclOpOf(op), handle, s);
    });
  }

  std::string allGather(const void *send, void *recv, int64_t perRank, DType type) override {
    return issue({CommOp::AllGather, type, ReduceOp::Sum, perRank}, send, recv, [&](ncclDataType_t t, cudaStream_t s) {
      return ncclAllGather(send, recv, size_t(perRank), t, handle, s);
    });
  }

  std::string reduceScatter(const void *send, void *recv, int64_t perRank, DType type, ReduceOp op) override {
    return issue({CommOp::ReduceScatter, type, op, perRank}, send, recv, [&](ncclDataType_t t, cudaStream_t s) {
      return ncclReduceScatter(send, recv, size_t(perRank), t, ncclOpOf(op), handle, s);
    });
  }

  std::string broadcast(void *data, int64_t n, DType type, int root) override {
    return issue({CommOp::Broadcast, type, ReduceOp::Sum, n, 1, root}, data, data,
                 [&](ncclDataType_t t, cudaStream_t s) {
                   return ncclBroadcast(data, data, size_t(n), t, root, handle, s);
                 });
  }

  std::string send(const void *data, int64_t n, DType type, int peer, int tag) override {
    return issue({CommOp::Send, type, ReduceOp::Sum, n, 1, peer, tag}, data, data,
                 [&](ncclDataType_t t, cudaStream_t s) { return ncclSend(data, size_t(n), t, peer, handle, s); });
  }

  std::string recv(void *data, int64_t n, DType type, int peer, int tag) override {
    return issue({CommOp::Recv, type, ReduceOp::Sum, n, 1, peer, tag}, data, data,
                 [&](ncclDataType_t t, cudaStream_t s) { return ncclRecv(data, size_t(n), t, peer, handle, s); });
  }

  // NCCL only knows contiguous per-rank blocks: the [outer][size][chunk] layouts go through [size][outer][chunk]
  // in device scratch, one strided copy (cudaMemcpy2DAsync) per rank, on the same stream.
  std::string allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type) override {
    if (outer == 1)
      return allGather(send, recv, chunk, type);
    const size_t chunkBytes = size_t(chunk * plan::bytesOf(type));
    std::string error = reserve(size_t(count) * size_t(outer) * chunkBytes);
    if (error.empty())
      error = allGather(send, scratch, outer * chunk, type);
    for (int r = 0; error.empty() && r < count; ++r)
      error = copy2d(static_cast<char *>(recv) + size_t(r) * chunkBytes, size_t(count) * chunkBytes,
                     static_cast<char *>(scratch) + size_t(r) * size_t(outer) * chunkBytes, chunkBytes, chunkBytes,
                     size_t(outer));
    return error;
  }

  std::string reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                               ReduceOp op) override {
    if (outer == 1)
      return reduceScatter(send, recv, chunk, type, op);
    const size_t chunkBytes = size_t(chunk * plan::bytesOf(type));
    std::string error = reserve(size_t(count) * size_t(outer) * chunkBytes);
    for (int r = 0; error.empty() && r < count; ++r)
      error = copy2d(static_cast<char *>(scratch) + size_t(r) * size_t(outer) * chunkBytes, chunkBytes,
                     static_cast<const char *>(send) + size_t(r) * chunkBytes, size_t(count) * chunkBytes, chunkBytes,
                     size_t(outer));
    return error.empty() ? reduceScatter(scratch, recv, outer * chunk, type, op) : error;
  }

  std::unique_ptr<Communicator> split(int color, int key, const std::string &newName, std::string &error) override {
    if (error = failed(); !error.empty())
      return nullptr;
    cudaSetDevice(backend.deviceIndex());
    ncclComm_t child = nullptr;
    if (ncclResult_t result = ncclCommSplit(handle, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &child, nullptr);
        result != ncclSuccess) {
      error = "split of group \"" + groupName + "\" into \"" + newName + "\" on rank " + std::to_string(myRank) +
              ": " + ncclGetErrorString(result) + " (" + ncclGetLastError(handle) + ")";
      abort(error);
      return nullptr;
    }
    if (!child)
      return nullptr;
    return std::make_unique<NcclCommunicator>(child, backend, newName, failure);
  }

  void abort(const std::string &reason) override {
    std::lock_guard<std::mutex> lock(failure->mutex);
    if (failure->reason.empty())
      failure->reason = "rank " + std::to_string(myRank) + " of group \"" + groupName + "\" failed: " + reason;
  }

private:
  static ncclRedOp_t ncclOpOf(ReduceOp op) { return op == ReduceOp::Max ? ncclMax : ncclSum; }

  std::string failed() const {
    std::lock_guard<std::mutex> lock(failure->mutex);
    return failure->reason;
  }

  /// Validates the call as every implementation does, checks the world and NCCL's asynchronous state, then
  /// issues it on the backend's stream.
  template <typename Issue> std::string issue(CallInfo call, const void *send, const void *recv, Issue issueCall) {
    const std::string where = call.describe(groupName) + " on rank " + std::to_string(myRank);
    // comm::Communicator's host implementations refuse 16-bit reductions; NCCL performs them.
    if (std::string problem = call.validate(count, send, recv, /*sixteenBitReductions=*/true); !problem.empty()) {
      abort(where + ": " + problem);
      return where + ": " + problem;
    }
    if (std::string reason = failed(); !reason.empty())
      return where + ": " + reason;
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(handle, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress) {
      const std::string error = where + ": an earlier operation failed: " + ncclGetErrorString(async);
      abort(error);
      return error;
    }
    ncclDataType_t type;
    if (!ncclTypeOf(call.type, type))
      return where + ": NCCL has no such type";
    cudaSetDevice(backend.deviceIndex());
    if (ncclResult_t result = issueCall(type, static_cast<cudaStream_t>(backend.nativeStream()));
        result != ncclSuccess) {
      const std::string error = where + ": " + ncclGetErrorString(result) + " (" + ncclGetLastError(handle) + ")";
      abort(error);
      return error;
    }
    return {};
  }

  /// At least `bytes` of device scratch (grown by reallocating; cudaFree waits for the work that used it).
  std::string reserve(size_t bytes) {
    if (bytes <= scratchBytes)
      return {};
    cudaSetDevice(backend.deviceIndex());
    if (scratch)
      cudaFree(scratch);
    scratch = nullptr;
    scratchBytes = 0;
    if (cudaError_t status = cudaMalloc(&scratch, bytes); status != cudaSuccess)
      return "group \"" + groupName + "\" on rank " + std::to_string(myRank) + ": cannot allocate " +
             std::to_string(bytes) + " bytes of scratch: " + cudaGetErrorName(status);
    scratchBytes = bytes;
    return {};
  }

  std::string copy2d(void *to, size_t toPitch, const void *from, size_t fromPitch, size_t width, size_t rows) {
    cudaError_t status = cudaMemcpy2DAsync(to, toPitch, from, fromPitch, width, rows, cudaMemcpyDeviceToDevice,
                                           static_cast<cudaStream_t>(backend.nativeStream()));
    return status == cudaSuccess ? std::string()
                                 : "group \"" + groupName + "\": cudaMemcpy2DAsync failed: " + cudaGetErrorName(status);
  }

  ncclComm_t handle;
  CudaBackend &backend;
  std::string groupName;
  std::shared_ptr<Failure> failure;
  int myRank = 0, count = 1;
  void *scratch = nullptr;
  size_t scratchBytes = 0;
};

} // namespace

std::unique_ptr<comm::Communicator> createNcclWorld(comm::Communicator &hostWorld, CudaBackend &backend,
                                                    std::string &error) {
  const std::string where = "NCCL world on rank " + std::to_string(hostWorld.rank());
  ncclUniqueId id{};
  static_assert(sizeof id % 4 == 0, "the id travels as 32-bit words");
  if (hostWorld.rank() == 0)
    if (ncclResult_t result = ncclGetUniqueId(&id); result != ncclSuccess) {
      error = where + ": ncclGetUniqueId: " + ncclGetErrorString(result);
      hostWorld.abort(error); // the other ranks' broadcast then fails instead of waiting
      return nullptr;
    }
  if (error = hostWorld.broadcast(&id, int64_t(sizeof id / 4), DType::I32, 0); !error.empty())
    return nullptr;
  cudaSetDevice(backend.deviceIndex());
  ncclComm_t comm = nullptr;
  if (ncclResult_t result = ncclCommInitRank(&comm, hostWorld.size(), id, hostWorld.rank()); result != ncclSuccess) {
    error = where + " (" + backend.describe() + "): ncclCommInitRank: " + ncclGetErrorString(result) + " (" +
            ncclGetLastError(nullptr) + ")";
    hostWorld.abort(error);
    return nullptr;
  }
  return std::make_unique<NcclCommunicator>(comm, backend, hostWorld.name(), std::make_shared<Failure>());
}

#else

bool haveNccl() { return false; }

std::unique_ptr<comm::Communicator> createNcclWorld(comm::Communicator &, CudaBackend &, std::string &error) {
  error = "no NCCL: this build has no CUDA toolkit with NCCL (configured without it or with MEGATRON_ENABLE_CUDA=OFF)";
  return nullptr;
}

#endif

} // namespace megatron::cuda
