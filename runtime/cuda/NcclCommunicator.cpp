//===- NcclCommunicator.cpp - comm::Communicator on NCCL, for device buffers -----===//
//
// Why the communicators are non-blocking (ncclConfig_t::blocking = 0). A watchdog is only as good as its abort:
// - NCCL's kernels spin on the GPU until their peers arrive; ncclCommAbort raises the flag they poll, so they exit
//   and a cudaStreamSynchronize behind them returns. That works in either mode, from any thread.
// - But a blocking communicator can also block the host thread inside NCCL: ncclCommInitRank and ncclCommSplit
//   wait for every peer, and a collective may connect to its peers when first issued (NCCL connects lazily). No
//   other thread may call ncclCommAbort on a communicator while a call on it is in progress (communicators are not
//   thread-safe), so such a hang could not be broken.
// - A non-blocking communicator returns at once from every call but ncclCommAbort and ncclCommDestroy: ncclSuccess,
//   an error, or ncclInProgress, after which NCCL's header and guide require polling ncclCommGetAsyncError until
//   the state leaves ncclInProgress before any other NCCL call on it or any other work on its stream. This file
//   does that poll itself (NcclWorld::settle) with the world's deadline, so a call returns with the work enqueued,
//   as in blocking mode, or with an error naming the operation; and every NCCL call on a communicator holds its
//   Handle's mutex only for that brief call, so the watchdog's thread can always take it to query or abort.
//
// Failing the world (NcclWorld::fail), from whichever thread finds the failure: the reason becomes the world's first
// failure, which every later call of every communicator of this world returns; the watchdog is dismissed;
// ncclCommAbort ends every communicator of this process; and the host world that bootstrapped NCCL is aborted
// (MPI: the job ends, which is the only way to stop peers blocked in NCCL kernels or MPI calls).
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/NcclCommunicator.h"

#if MEGATRON_HAVE_NCCL
#include "runtime/comm/CollectiveWatchdog.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>
#endif

namespace megatron::cuda {

#if MEGATRON_HAVE_NCCL

bool haveNccl() { return true; }

namespace {

using comm::CallInfo;
using comm::CollectiveWatchdog;
using comm::CommOp;
using comm::DType;
using comm::OperationStatus;
using comm::ReduceOp;
using SteadyClock = std::chrono::steady_clock;

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

/// NCCL's name for `result`, with its last error message when it has one. `comm` may be null.
std::string ncclReason(ncclResult_t result, ncclComm_t comm) {
  std::string text = ncclGetErrorString(result);
  const char *last = ncclGetLastError(comm);
  if (last && *last)
    text += std::string(" (") + last + ")";
  return text;
}

/// One NCCL communicator, shared by its NcclCommunicator, the world (which aborts it) and the watchdog's queries.
/// Every NCCL call on `comm` holds `mutex`; none of them blocks (non-blocking mode), so nobody holds it for long.
struct Handle {
  explicit Handle(int device) : device(device) {}
  std::mutex mutex;
  ncclComm_t comm = nullptr; // null once aborted or destroyed; guarded by mutex
  const int device;
};

/// A CUDA event recorded behind one operation on the stream: its completion.
struct CompletionEvent {
  cudaEvent_t event = nullptr;
  ~CompletionEvent() {
    if (event)
      cudaEventDestroy(event); // safe before it completes: CUDA releases it then
  }
};

/// What every communicator of one NCCL world in this process shares: the first failure, the communicators to abort,
/// the host world to abort, and the watchdog. Must not outlive the host world.
class NcclWorld {
public:
  NcclWorld(comm::Communicator &hostWorld, int device, std::chrono::milliseconds timeout)
      : hostWorld(hostWorld), device(device), limit(timeout), worldRank(hostWorld.rank()) {
    CollectiveWatchdog::Options options;
    options.rank = worldRank;
    options.timeout = timeout;
    // Megatron's 10 minutes are polled every 100 ms (as PyTorch's watchdog); short test timeouts more often.
    options.pollInterval = std::clamp(std::chrono::milliseconds(timeout.count() / 20), std::chrono::milliseconds(1),
                                      std::chrono::milliseconds(100));
    watchdog = std::make_unique<CollectiveWatchdog>(options, [this](const std::string &reason) { fail(reason); });
  }

  /// Registers a communicator (the world's own while NCCL initializes it, a split's once made), so that a failure
  /// aborts it.
  void adopt(const std::shared_ptr<Handle> &handle) {
    std::lock_guard<std::mutex> lock(mutex);
    handles.erase(std::remove_if(handles.begin(), handles.end(),
                                 [](const std::weak_ptr<Handle> &h) { return h.expired(); }),
                  handles.end());
    handles.push_back(handle);
  }

  std::string failure() const {
    std::lock_guard<std::mutex> lock(mutex);
    return first;
  }

  /// See the file comment. The first failure wins; later ones change nothing. Callable from any thread that holds
  /// no Handle's mutex (the watchdog's included).
  void fail(const std::string &reason) {
    std::vector<std::shared_ptr<Handle>> live;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!first.empty())
        return;
      first = reason;
      for (const std::weak_ptr<Handle> &weak : handles)
        if (std::shared_ptr<Handle> handle = weak.lock())
          live.push_back(std::move(handle));
    }
    watchdog->dismiss();
    cudaSetDevice(device);
    for (const std::shared_ptr<Handle> &handle : live) {
      std::lock_guard<std::mutex> lock(handle->mutex);
      if (handle->comm)
        ncclCommAbort(handle->comm);
      handle->comm = nullptr;
    }
    hostWorld.abort(reason);
  }

  /// Waits until none of `handles` (null ones skipped) is in ncclInProgress, for at most the timeout. Returns "",
  /// or how the operation ended, as the end of a sentence: "failed: <NCCL's error>", or "did not complete within 10
  /// minutes (a peer never joined it, or hung)". Takes each handle's mutex only to query it.
  std::string settle(std::initializer_list<Handle *> waitFor) const {
    const SteadyClock::time_point deadline = SteadyClock::now() + limit;
    std::chrono::microseconds pause(10);
    for (;;) {
      bool busy = false;
      for (Handle *handle : waitFor) {
        if (!handle)
          continue;
        std::lock_guard<std::mutex> lock(handle->mutex);
        if (!handle->comm) { // aborted meanwhile: the world failed
          std::string reason = failure();
          return "failed: " + (reason.empty() ? std::string("its communicator was aborted") : reason);
        }
        ncclResult_t state = ncclSuccess;
        if (ncclResult_t result = ncclCommGetAsyncError(handle->comm, &state); result != ncclSuccess)
          state = result;
        if (state == ncclInProgress)
          busy = true;
        else if (state != ncclSuccess)
          return "failed: " + ncclReason(state, handle->comm);
      }
      if (!busy)
        return {};
      if (SteadyClock::now() >= deadline)
        return "did not complete within " + comm::describeDuration(limit) + " (a peer never joined it, or hung)";
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(1000));
    }
  }

  /// Watches one operation just issued on the stream: `event`, recorded behind it, says when it finished, and the
  /// communicator's asynchronous error whether it failed.
  /// `operation`: comm::describeIssued of the call, or a group of sends and recvs.
  void watch(std::string operation, const std::string &group, std::shared_ptr<Handle> handle,
             std::shared_ptr<CompletionEvent> event) {
    watchdog->watch(std::move(operation), group, [handle = std::move(handle), event = std::move(event)] {
      cudaSetDevice(handle->device); // the watchdog's thread
      {
        std::lock_guard<std::mutex> lock(handle->mutex);
        ncclResult_t state = ncclSuccess;
        if (handle->comm && ncclCommGetAsyncError(handle->comm, &state) == ncclSuccess && state != ncclSuccess &&
            state != ncclInProgress)
          return OperationStatus::failed("NCCL reports " + ncclReason(state, handle->comm));
      }
      cudaError_t status = cudaEventQuery(event->event);
      if (status == cudaSuccess)
        return OperationStatus::done();
      if (status == cudaErrorNotReady)
        return OperationStatus::running();
      return OperationStatus::failed(std::string("the device reports ") + cudaGetErrorName(status) + ": " +
                                     cudaGetErrorString(status));
    });
  }

  int rank() const { return worldRank; }

private:
  comm::Communicator &hostWorld;
  const int device;
  const std::chrono::milliseconds limit;
  const int worldRank;
  mutable std::mutex mutex;
  std::string first;                          // guarded by mutex
  std::vector<std::weak_ptr<Handle>> handles; // guarded by mutex
  std::unique_ptr<CollectiveWatchdog> watchdog; // last: its thread stops before the rest goes
};

class NcclCommunicator final : public comm::Communicator {
public:
  NcclCommunicator(std::shared_ptr<Handle> handle, CudaBackend &backend, std::string name,
                   std::shared_ptr<NcclWorld> world)
      : world(std::move(world)), handle(std::move(handle)), backend(backend), groupName(std::move(name)) {
    std::lock_guard<std::mutex> lock(this->handle->mutex);
    ncclCommUserRank(this->handle->comm, &myRank);
    ncclCommCount(this->handle->comm, &count);
  }

  ~NcclCommunicator() override {
    cudaSetDevice(backend.deviceIndex());
    if (scratch)
      cudaFree(scratch); // waits for the device; a hang there is the watchdog's to end
    release();
  }

  int rank() const override { return myRank; }
  int size() const override { return count; }
  const std::string &name() const override { return groupName; }

  std::string allReduce(void *data, int64_t n, DType type, ReduceOp op) override {
    return issue({CommOp::AllReduce, type, op, n}, data, data, [&](ncclComm_t c, ncclDataType_t t, cudaStream_t s) {
      return ncclAllReduce(data, data, size_t(n), t, ncclOpOf(op), c, s);
    });
  }

  std::string allGather(const void *send, void *recv, int64_t perRank, DType type) override {
    return issue({CommOp::AllGather, type, ReduceOp::Sum, perRank}, send, recv,
                 [&](ncclComm_t c, ncclDataType_t t, cudaStream_t s) {
                   return ncclAllGather(send, recv, size_t(perRank), t, c, s);
                 });
  }

  std::string reduceScatter(const void *send, void *recv, int64_t perRank, DType type, ReduceOp op) override {
    return issue({CommOp::ReduceScatter, type, op, perRank}, send, recv,
                 [&](ncclComm_t c, ncclDataType_t t, cudaStream_t s) {
                   return ncclReduceScatter(send, recv, size_t(perRank), t, ncclOpOf(op), c, s);
                 });
  }

  std::string broadcast(void *data, int64_t n, DType type, int root) override {
    return issue({CommOp::Broadcast, type, ReduceOp::Sum, n, 1, root}, data, data,
                 [&](ncclComm_t c, ncclDataType_t t, cudaStream_t s) {
                   return ncclBroadcast(data, data, size_t(n), t, root, c, s);
                 });
  }

  std::string send(const void *data, int64_t n, DType type, int peer, int tag) override {
    return issue({CommOp::Send, type, ReduceOp::Sum, n, 1, peer, tag}, data, data,
                 [&](ncclComm_t c, ncclDataType_t t, cudaStream_t s) { return ncclSend(data, size_t(n), t, peer, c, s); });
  }

  std::string recv(void *data, int64_t n, DType type, int peer, int tag) override {
    return issue({CommOp::Recv, type, ReduceOp::Sum, n, 1, peer, tag}, data, data,
                 [&](ncclComm_t c, ncclDataType_t t, cudaStream_t s) { return ncclRecv(data, size_t(n), t, peer, c, s); });
  }

  /// ncclGroupStart: the sends and recvs until groupEnd are only recorded by NCCL (each call returns at once,
  /// neither settled nor watched alone); ncclGroupEnd issues them together on the stream.
  std::string groupStart() override {
    const std::string where = groupWhere();
    if (inGroup)
      return where + ": groupStart inside a group (groups do not nest)";
    if (std::string reason = world->failure(); !reason.empty())
      return where + ": " + reason;
    cudaSetDevice(backend.deviceIndex());
    if (ncclResult_t result = ncclGroupStart(); result != ncclSuccess) {
      std::string error = where + ": ncclGroupStart: " + ncclReason(result, nullptr);
      abort(error);
      return error;
    }
    inGroup = true;
    grouped.clear();
    return {};
  }

  /// ncclGroupEnd, which a non-blocking communicator may answer with ncclInProgress: settled against the deadline
  /// as any call, then one completion event behind the whole group for the watchdog.
  std::string groupEnd() override {
    const std::string where = groupWhere();
    if (!inGroup)
      return where + ": groupEnd without groupStart";
    inGroup = false;
    std::vector<CallInfo> calls = std::move(grouped);
    grouped.clear();
    cudaSetDevice(backend.deviceIndex());
    ncclResult_t result = ncclSuccess;
    bool aborted = false;
    {
      std::lock_guard<std::mutex> lock(handle->mutex);
      aborted = !handle->comm;
      result = ncclGroupEnd(); // also after an abort: the group must be closed on this thread
    }
    if (aborted)
      return where + ": " + world->failure();
    if (result != ncclSuccess && result != ncclInProgress) {
      std::string error = where + ": ncclGroupEnd: " + ncclReason(result, nullptr);
      abort(error);
      return error;
    }
    std::string operation = "a group of " + std::to_string(calls.size()) + " sends and recvs (";
    for (size_t i = 0; i < calls.size(); ++i)
      operation += (i ? ", " : "") + comm::describeIssued(calls[i]);
    operation += ")";
    if (result == ncclInProgress)
      if (std::string ending = world->settle({handle.get()}); !ending.empty()) {
        std::string error = "rank " + std::to_string(world->rank()) + ": " + operation + " on group \"" + groupName +
                            "\" " + ending;
        world->fail(error);
        return error;
      }
    if (calls.empty())
      return {};
    return watchBehind(operation, where);
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

  /// ncclCommSplit, non-blocking like its parent: the split is a collective over this group, run by NCCL in the
  /// background as an operation of the parent, so the parent is settled against the deadline (a rank that never
  /// calls it fails the world instead of hanging the others). NCCL writes the child's handle when the split is
  /// complete, from its own thread: `child` is read, and joins the world, only after the parent has settled.
  std::unique_ptr<Communicator> split(int color, int key, const std::string &newName, std::string &error) override {
    if (error = world->failure(); !error.empty())
      return nullptr;
    const std::string what = "split of group \"" + groupName + "\" into \"" + newName + "\"";
    cudaSetDevice(backend.deviceIndex());
    auto child = std::make_shared<Handle>(backend.deviceIndex());
    {
      std::lock_guard<std::mutex> lock(handle->mutex);
      if (!handle->comm) {
        error = what + ": " + world->failure();
        return nullptr;
      }
      // No config: the child inherits its parent's, non-blocking included.
      ncclResult_t result =
          ncclCommSplit(handle->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &child->comm, nullptr);
      if (result != ncclSuccess && result != ncclInProgress)
        error = what + " on rank " + std::to_string(myRank) + ": " + ncclReason(result, handle->comm);
    }
    if (!error.empty()) {
      abort(error);
      return nullptr;
    }
    std::string ending = world->settle({handle.get()});
    if (ending.empty() && child->comm)
      ending = world->settle({child.get()});
    if (!ending.empty()) {
      error = "rank " + std::to_string(world->rank()) + ": " + what + " " + ending;
      world->fail(error); // aborting the parent ends the split in NCCL's thread first
      if (child->comm) {
        ncclCommAbort(child->comm);
        child->comm = nullptr;
      }
      return nullptr;
    }
    if (!child->comm) // a negative color: no group
      return nullptr;
    world->adopt(child);
    return std::make_unique<NcclCommunicator>(child, backend, newName, world);
  }

  void abort(const std::string &reason) override {
    world->fail("rank " + std::to_string(myRank) + " of group \"" + groupName + "\" failed: " + reason);
  }

private:
  static ncclRedOp_t ncclOpOf(ReduceOp op) { return op == ReduceOp::Max ? ncclMax : ncclSum; }

  /// Validates the call as every implementation does, checks the world and NCCL's asynchronous state, issues it on
  /// the backend's stream, waits until NCCL has enqueued it (non-blocking mode), records an event behind it and
  /// hands it to the watchdog.
  template <typename Issue> std::string issue(CallInfo call, const void *send, const void *recv, Issue issueCall) {
    const std::string where = call.describe(groupName) + " on rank " + std::to_string(myRank);
    // comm::Communicator's host implementations refuse 16-bit reductions; NCCL performs them.
    if (std::string problem = call.validate(count, send, recv, /*sixteenBitReductions=*/true); !problem.empty()) {
      abort(where + ": " + problem);
      return where + ": " + problem;
    }
    if (std::string reason = world->failure(); !reason.empty())
      return where + ": " + reason;
    ncclDataType_t type;
    if (!ncclTypeOf(call.type, type))
      return where + ": NCCL has no such type";
    cudaSetDevice(backend.deviceIndex());
    cudaStream_t stream = static_cast<cudaStream_t>(backend.nativeStream());
    std::string error;
    ncclResult_t result = ncclSuccess;
    {
      std::lock_guard<std::mutex> lock(handle->mutex);
      if (!handle->comm)
        return where + ": " + world->failure();
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(handle->comm, &async) == ncclSuccess && async != ncclSuccess &&
          async != ncclInProgress)
        error = where + ": an earlier operation failed: " + ncclReason(async, handle->comm);
      else if (result = issueCall(handle->comm, type, stream); result != ncclSuccess && result != ncclInProgress)
        error = where + ": " + ncclReason(result, handle->comm);
    }
    if (!error.empty()) {
      abort(error);
      return error;
    }
    if (inGroup) { // NCCL issues it at groupEnd, which settles and watches the group
      grouped.push_back(call);
      return {};
    }
    if (result == ncclInProgress)
      if (std::string ending = world->settle({handle.get()}); !ending.empty()) {
        error = "rank " + std::to_string(world->rank()) + ": " + comm::describeIssued(call) + " on group \"" +
                groupName + "\" " + ending;
        world->fail(error);
        return error;
      }
    return watchBehind(comm::describeIssued(call), where);
  }

  /// Records an event behind the work just issued on the stream and hands `operation` to the watchdog.
  std::string watchBehind(const std::string &operation, const std::string &where) {
    cudaStream_t stream = static_cast<cudaStream_t>(backend.nativeStream());
    auto event = std::make_shared<CompletionEvent>();
    cudaError_t status = cudaEventCreateWithFlags(&event->event, cudaEventDisableTiming);
    if (status == cudaSuccess)
      status = cudaEventRecord(event->event, stream);
    if (status != cudaSuccess) {
      std::string error = where + ": cannot record its completion event: " + cudaGetErrorName(status);
      abort(error);
      return error;
    }
    world->watch(operation, groupName, handle, std::move(event));
    return {};
  }

  std::string groupWhere() const {
    return "a group of sends and recvs (group \"" + groupName + "\") on rank " + std::to_string(myRank);
  }

  /// Ends the communicator: after a failure with ncclCommAbort; otherwise ncclCommFinalize (which completes its
  /// operations, settled against the deadline) and ncclCommDestroy. A finalize that fails or times out fails the
  /// world, so that no peer waits for this rank.
  void release() {
    ncclResult_t result = ncclSuccess;
    {
      std::lock_guard<std::mutex> lock(handle->mutex);
      if (!handle->comm)
        return;
      if (!world->failure().empty()) {
        ncclCommAbort(handle->comm);
        handle->comm = nullptr;
        return;
      }
      result = ncclCommFinalize(handle->comm);
    }
    std::string ending = result == ncclSuccess || result == ncclInProgress
                             ? world->settle({handle.get()})
                             : "failed: " + std::string(ncclGetErrorString(result));
    if (!ending.empty()) {
      world->fail("rank " + std::to_string(world->rank()) + ": destroying group \"" + groupName + "\" " + ending);
      return; // fail() aborted it
    }
    std::lock_guard<std::mutex> lock(handle->mutex);
    if (handle->comm)
      ncclCommDestroy(handle->comm);
    handle->comm = nullptr;
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

  std::shared_ptr<NcclWorld> world; // first: outlives the rest, so the watchdog runs until this is released
  std::shared_ptr<Handle> handle;
  CudaBackend &backend;
  std::string groupName;
  int myRank = 0, count = 1;
  void *scratch = nullptr;
  size_t scratchBytes = 0;
  bool inGroup = false;          // between groupStart and groupEnd
  std::vector<CallInfo> grouped; // the group's calls so far, for the watchdog's message
};

} // namespace

std::unique_ptr<comm::Communicator> createNcclWorld(comm::Communicator &hostWorld, CudaBackend &backend,
                                                    std::string &error, const NcclWorldOptions &options) {
  const std::string where = "NCCL world on rank " + std::to_string(hostWorld.rank());
  if (options.timeout <= std::chrono::milliseconds(0)) {
    error = where + ": the timeout must be positive, got " + std::to_string(options.timeout.count()) + " ms";
    hostWorld.abort(error);
    return nullptr;
  }
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
  auto world = std::make_shared<NcclWorld>(hostWorld, backend.deviceIndex(), options.timeout);
  auto handle = std::make_shared<Handle>(backend.deviceIndex());
  world->adopt(handle);
  ncclResult_t result = ncclSuccess;
  {
    std::lock_guard<std::mutex> lock(handle->mutex);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0; // see the file comment
    result = ncclCommInitRankConfig(&handle->comm, hostWorld.size(), id, hostWorld.rank(), &config);
    if (result != ncclSuccess && result != ncclInProgress)
      error = where + " (" + backend.describe() + "): ncclCommInitRankConfig: " + ncclReason(result, handle->comm);
  }
  if (error.empty())
    if (std::string ending = world->settle({handle.get()}); !ending.empty())
      error = "rank " + std::to_string(hostWorld.rank()) + ": ncclCommInitRank of group \"" + hostWorld.name() +
              "\" (" + std::to_string(hostWorld.size()) + " ranks, " + backend.describe() + ") " + ending;
  if (!error.empty()) {
    world->fail(error); // aborts the half-made communicator and the host world
    return nullptr;
  }
  return std::make_unique<NcclCommunicator>(handle, backend, hostWorld.name(), world);
}

#else

bool haveNccl() { return false; }

std::unique_ptr<comm::Communicator> createNcclWorld(comm::Communicator &, CudaBackend &, std::string &error,
                                                    const NcclWorldOptions &) {
  error = "no NCCL: this build has no CUDA toolkit with NCCL (configured without it or with MEGATRON_ENABLE_CUDA=OFF)";
  return nullptr;
}

#endif

} // namespace megatron::cuda
