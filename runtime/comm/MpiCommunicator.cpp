//===- MpiCommunicator.cpp - One process per rank, over MPI ----------------===//
//
// Every collective is:
//   agreement: an MPI_Allgather of what each rank called (a fixed-size Header). Every rank then checks every
//              rank's arguments and compares the calls, so that a bad argument or a mismatch on one rank makes
//              every rank of the group return an error, instead of MPI hanging or reading the wrong memory;
//   movement:  MPI moves the bytes (all-gather, all-to-all, broadcast) as opaque elements of the type's size;
//   reduction: local, over the ranks in order 0..n-1 for every element, like the thread implementation: MPI's
//              own reductions are never used, since their order is the implementation's choice.
// Point-to-point: send() copies the message and posts two MPI_Isends from the copy, both with the caller's tag as
// the MPI tag: an envelope (the element type and count) and the data. MPI keeps the messages of one (source, tag,
// communicator) in order, so recv(peer, tag) gets the oldest envelope of that tag, compares type and count with
// its own before touching the caller's buffer, then receives the data that follows it. Completed sends are reaped
// at the next call and the destructor waits for the rest.
//
// Failure: the first error of the process is kept by its MpiSession (shared by all its communicators); later
// calls return at once. abort() and the destruction of a failed process's last communicator call MPI_Abort.
//
//===----------------------------------------------------------------------===//

#include "MpiCommunicator.h"

#include "Reduction.h"

#if MEGATRON_HAVE_MPI

// The C API only: Open MPI's (deprecated) C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <type_traits>
#include <vector>

namespace megatron::comm {

namespace {

//===- The process's MPI session ----------------------------------------------===//

struct Failure {
  int worldRank = -1;
  std::string group;
  int groupRank = -1;
  bool groupIsWorld = true;
  std::string reason;
};

std::string rankInGroup(int groupRank, const std::string &group, bool isWorld, int worldRank) {
  std::string text = "rank " + std::to_string(groupRank) + " of group \"" + group + "\"";
  if (!isWorld)
    text += " (world rank " + std::to_string(worldRank) + ")";
  return text;
}

/// What every MPI communicator of this process shares: whether MPI was started here (and must be finalized) and
/// the process's first failure.
class MpiSession {
public:
  MpiSession(bool initializedHere, int worldRank, int tagUpperBound)
      : initializedHere(initializedHere), worldRank(worldRank), tagUpperBound(tagUpperBound) {}
  ~MpiSession();

  const bool initializedHere;
  int worldRank; // in `world`
  /// The job's world: MPI_COMM_WORLD, or the processes joined after they started (adoptMpiWorld).
  MPI_Comm world = MPI_COMM_WORLD;
  /// MPI_TAG_UB, queried once: the largest tag this MPI carries (at least 32767; Open MPI's is 2^31 - 1).
  const int tagUpperBound;

  bool failed() const { return hasFailed.load(std::memory_order_acquire); }
  Failure failure() const {
    std::lock_guard<std::mutex> lock(mutex);
    return first;
  }
  /// Records the process's first failure; later ones change nothing.
  void fail(Failure failure) {
    std::lock_guard<std::mutex> lock(mutex);
    if (hasFailed.load(std::memory_order_relaxed))
      return;
    first = std::move(failure);
    hasFailed.store(true, std::memory_order_release);
  }

  /// Prints `message` and ends the whole job. MPI_Abort is the only way to stop peers blocked in MPI calls.
  [[noreturn]] static void abortJob(const std::string &message) {
    std::fprintf(stderr, "megatron-comm: %s\n", message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort(); // MPI_Abort does not return
  }

private:
  mutable std::mutex mutex;
  std::atomic<bool> hasFailed{false};
  Failure first;
};

std::mutex sessionMutex;
std::weak_ptr<MpiSession> currentSession; // guarded by sessionMutex

MpiSession::~MpiSession() {
  if (failed()) {
    const Failure f = failure();
    abortJob("world rank " + std::to_string(worldRank) + " destroyed its communicators after a failure (" +
             rankInGroup(f.groupRank, f.group, f.groupIsWorld, f.worldRank) + " failed: " + f.reason +
             "): aborting the MPI job so that no peer waits for it");
  }
  if (initializedHere) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Finalize();
  }
}

//===- Helpers ------------------------------------------------------------------===//

/// Data moves as opaque elements of the type's size (bf16 and f16 included); reductions are ours.
MPI_Datatype moveType(DType type) {
  switch (plan::bytesOf(type)) {
  case 2:
    return MPI_UINT16_T;
  case 4:
    return MPI_UINT32_T;
  case 8:
    return MPI_UINT64_T;
  default:
    return MPI_BYTE;
  }
}

std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

// dst[i] = rows[0][i] op rows[1][i] op ... op rows[n-1][i]; the rows are consecutive arrays of `len` elements. The
// thread implementation's reduction (Reduction.h), so the same bits.
void reduceRows(DType type, ReduceOp op, const void *rows, int n, int64_t len, void *dst) {
  std::vector<const void *> src(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k)
    src[static_cast<size_t>(k)] = static_cast<const char *>(rows) + k * len * plan::bytesOf(type);
  reduceInRankOrder(type, op, src.data(), n, &dst, 1, len);
}

char *at(void *base, int64_t elements, int64_t elementBytes) {
  return static_cast<char *>(base) + elements * elementBytes;
}

/// What one rank called, as exchanged at the agreement: CallInfo, which buffers are null, and split's arguments.
struct Header {
  int64_t op, type, reduce, count, outer, peer, hasSend, hasRecv, color, key, nameLength;
};
constexpr int kHeaderWords = sizeof(Header) / sizeof(int64_t);
static_assert(sizeof(Header) == kHeaderWords * sizeof(int64_t));

CallInfo callOf(const Header &h) {
  return CallInfo{static_cast<CommOp>(h.op), static_cast<DType>(h.type), static_cast<ReduceOp>(h.reduce), h.count,
                  h.outer, static_cast<int>(h.peer)};
}

/// What send() sends ahead of the data, with the same tag: the element type (DType) and the count. Two int64s.
struct Envelope {
  int64_t type, count;
};
constexpr int kEnvelopeWords = sizeof(Envelope) / sizeof(int64_t);
static_assert(sizeof(Envelope) == kEnvelopeWords * sizeof(int64_t));

const char kSomewhere = 0; // a non-null pointer, to validate a peer's arguments

//===- The communicator ------------------------------------------------------===//

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator(std::shared_ptr<MpiSession> session, MPI_Comm comm, std::string name, bool isWorld)
      : session(std::move(session)), comm(comm), groupName(std::move(name)), isWorld(isWorld) {
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &myRank);
    MPI_Comm_size(comm, &n);
    MPI_Group group, world;
    MPI_Comm_group(comm, &group);
    MPI_Comm_group(this->session->world, &world); // (the parameter `session` was moved from)
    std::vector<int> ranks(n);
    std::iota(ranks.begin(), ranks.end(), 0);
    worldRanks.resize(n);
    MPI_Group_translate_ranks(group, n, ranks.data(), world, worldRanks.data());
    MPI_Group_free(&group);
    MPI_Group_free(&world);
  }

  ~MpiCommunicator() override {
    if (!session->failed()) {
      // Sends still in flight complete when their receivers receive them; their buffers must live until then.
      for (PendingSend &p : pending)
        MPI_Waitall(2, p.requests, MPI_STATUSES_IGNORE);
      MPI_Comm_free(&comm);
    } else {
      // The job is about to be aborted (MpiSession's destructor); waiting could hang. The buffers of unfinished
      // sends are leaked on purpose, since MPI may still read them.
      for (PendingSend &p : pending)
        new std::vector<char>(std::move(p.bytes));
    }
  }

  int rank() const override { return myRank; }
  int size() const override { return n; }
  const std::string &name() const override { return groupName; }

  std::string allReduce(void *data, int64_t count, DType type, ReduceOp op) override;
  std::string allGather(const void *send, void *recv, int64_t countPerRank, DType type) override;
  std::string reduceScatter(const void *send, void *recv, int64_t countPerRank, DType type, ReduceOp op) override;
  std::string broadcast(void *data, int64_t count, DType type, int root) override;
  std::string allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type) override;
  std::string reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                               ReduceOp op) override;
  std::string send(const void *data, int64_t count, DType type, int peer, int tag) override;
  std::string recv(void *data, int64_t count, DType type, int peer, int tag) override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string &name, std::string &error) override;

  void abort(const std::string &reason) override {
    Failure f{worldRanks[myRank], groupName, myRank, isWorld, reason};
    session->fail(f);
    MpiSession::abortJob(rankInGroup(myRank, groupName, isWorld, worldRanks[myRank]) + " failed (" + reason +
                         "): aborting the MPI job");
  }

private:
  /// A send in flight: the envelope and the data, both from `bytes` ([Envelope][data]).
  struct PendingSend {
    MPI_Request requests[2];
    std::vector<char> bytes;
  };

  /// Records `error` as this rank's failure (the first of the process wins) and returns it.
  std::string fail(std::string error) {
    session->fail(Failure{worldRanks[myRank], groupName, myRank, isWorld, error});
    return error;
  }
  std::string mpiFailure(const CallInfo &call, const char *function, int code) {
    return fail(call.describe(groupName) + ": " + function + " failed on rank " + std::to_string(myRank) + ": " +
                mpiErrorText(code));
  }
  /// How a call reports the failure that this process had before it.
  std::string failureMessage(const CallInfo &call) const {
    const Failure f = session->failure();
    return rankInGroup(f.groupRank, f.group, f.groupIsWorld, f.worldRank) + " failed (" + f.reason +
           ") before rank " + std::to_string(myRank) + " called " + call.describe(groupName);
  }

  std::string agree(const CallInfo &call, const void *send, const void *recv, int color = 0, int key = 0,
                    const std::string *splitName = nullptr, std::vector<Header> *headers = nullptr);
  std::string checkCounts(const CallInfo &call, int64_t largestBuffer);
  std::string reapSends(const CallInfo &call);
  std::string beginPointToPoint(const CallInfo &call, const void *data);
  std::string gather(const void *send, void *recv, int64_t countPerRank, DType type, const CallInfo &call);

  std::shared_ptr<MpiSession> session;
  MPI_Comm comm;
  const std::string groupName;
  const bool isWorld;
  int myRank = 0, n = 1;
  std::vector<int> worldRanks; // group rank -> world rank
  std::vector<PendingSend> pending;
  /// The buffers of completed sends, reused by later ones (a buffer may be larger than its message).
  static constexpr size_t kSpareSendBuffers = 8;
  std::vector<std::vector<char>> spareSendBuffers;
  std::vector<char> takeSendBuffer(int64_t bytes) {
    std::vector<char> buffer;
    auto fits = std::find_if(spareSendBuffers.begin(), spareSendBuffers.end(),
                             [&](const std::vector<char> &b) { return b.size() >= static_cast<size_t>(bytes); });
    if (fits == spareSendBuffers.end() && !spareSendBuffers.empty())
      fits = spareSendBuffers.begin();
    if (fits != spareSendBuffers.end()) {
      buffer = std::move(*fits);
      spareSendBuffers.erase(fits);
    }
    if (buffer.size() < static_cast<size_t>(bytes))
      buffer.resize(static_cast<size_t>(bytes));
    return buffer;
  }
  /// The collectives' scratch, kept between calls: a fresh large allocation would cost its page faults every call.
  std::vector<char> scratchBuffer;
  char *scratch(int64_t bytes) {
    if (scratchBuffer.size() < static_cast<size_t>(bytes))
      scratchBuffer.resize(static_cast<size_t>(bytes));
    return scratchBuffer.data();
  }
};

// The agreement that starts every collective: exchange what every rank called, then every rank reaches the same
// verdict. Returns "" or the error (recorded as the process's failure).
std::string MpiCommunicator::agree(const CallInfo &call, const void *send, const void *recv, int color, int key,
                                   const std::string *splitName, std::vector<Header> *headers) {
  if (session->failed())
    return failureMessage(call);
  if (std::string error = reapSends(call); !error.empty())
    return error;
  Header mine{static_cast<int64_t>(call.op), static_cast<int64_t>(call.type), static_cast<int64_t>(call.reduce),
              call.count, call.outer, call.peer, send != nullptr, recv != nullptr, color, key,
              splitName ? static_cast<int64_t>(splitName->size()) : 0};
  std::vector<Header> all(n);
  if (int rc = MPI_Allgather(&mine, kHeaderWords, MPI_INT64_T, all.data(), kHeaderWords, MPI_INT64_T, comm);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Allgather", rc);

  // Bad arguments: this rank's own, else the lowest rank's.
  if (std::string problem = call.validate(n, send, recv); !problem.empty())
    return fail(call.describe(groupName) + ": " + problem);
  for (int r = 0; r < n; ++r) {
    CallInfo theirs = callOf(all[r]);
    std::string problem = theirs.validate(n, all[r].hasSend ? &kSomewhere : nullptr,
                                          all[r].hasRecv ? &kSomewhere : nullptr);
    if (problem.empty())
      continue;
    std::string reason = theirs.describe(groupName) + ": " + problem;
    session->fail(Failure{worldRanks[r], groupName, r, isWorld, reason});
    return rankInGroup(r, groupName, isWorld, worldRanks[r]) + " failed (" + reason + ") while rank " +
           std::to_string(myRank) + " waited in " + call.describe(groupName);
  }
  for (int r = 1; r < n; ++r)
    if (!callOf(all[r]).sameAs(callOf(all[0])))
      return fail("mismatched calls: rank 0 called " + callOf(all[0]).describe(groupName) + ", rank " +
                  std::to_string(r) + " called " + callOf(all[r]).describe(groupName));
  if (headers)
    *headers = std::move(all);
  return "";
}

// MPI counts elements in int. Every rank reaches the same verdict, since the calls agree.
std::string MpiCommunicator::checkCounts(const CallInfo &call, int64_t largestBuffer) {
  if (largestBuffer <= INT_MAX)
    return "";
  return fail(call.describe(groupName) + ": " + std::to_string(largestBuffer) +
              " elements exceed what MPI's int counts address (2^31 - 1); split the tensor");
}

std::string MpiCommunicator::reapSends(const CallInfo &call) {
  for (size_t i = 0; i < pending.size();) {
    int done = 0;
    if (int rc = MPI_Testall(2, pending[i].requests, &done, MPI_STATUSES_IGNORE); rc != MPI_SUCCESS)
      return mpiFailure(call, "MPI_Testall (of an earlier send)", rc);
    if (done) {
      if (spareSendBuffers.size() < kSpareSendBuffers)
        spareSendBuffers.push_back(std::move(pending[i].bytes));
      pending[i] = std::move(pending.back());
      pending.pop_back();
    } else {
      ++i;
    }
  }
  return "";
}

std::string MpiCommunicator::allReduce(void *data, int64_t count, DType type, ReduceOp op) {
  const CallInfo call{CommOp::AllReduce, type, op, count, 1, -1};
  if (std::string error = agree(call, data, data); !error.empty())
    return error;
  if (std::string error = checkCounts(call, count); !error.empty())
    return error;
  if (count == 0 || n == 1)
    return "";
  const int64_t eb = plan::bytesOf(type);
  const MPI_Datatype t = moveType(type);
  if (count * n * eb <= kMpiAllReduceGatherBytes) {
    // Small: gather every rank's buffer, and every rank reduces all of it.
    char *rows = scratch(n * count * eb);
    if (int rc = MPI_Allgather(data, static_cast<int>(count), t, rows, static_cast<int>(count), t, comm);
        rc != MPI_SUCCESS)
      return mpiFailure(call, "MPI_Allgather", rc);
    reduceRows(type, op, rows, n, count, data);
    return "";
  }
  // Large: rank k reduces elements [count·k/n, count·(k+1)/n) of every rank (an all-to-all brings them), then the
  // reduced chunks are gathered in place: the traffic of a ring all-reduce, and the thread implementation's split.
  std::vector<int> chunkCounts(n), chunkBegins(n);
  for (int k = 0; k < n; ++k) {
    chunkBegins[k] = static_cast<int>(count * k / n);
    chunkCounts[k] = static_cast<int>(count * (k + 1) / n) - chunkBegins[k];
  }
  const int mine = chunkCounts[myRank];
  std::vector<int> recvCounts(n, mine), recvBegins(n);
  for (int k = 0; k < n; ++k)
    recvBegins[k] = k * mine;
  char *rows = scratch(n * int64_t(mine) * eb);
  if (int rc = MPI_Alltoallv(data, chunkCounts.data(), chunkBegins.data(), t, rows, recvCounts.data(),
                             recvBegins.data(), t, comm);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Alltoallv", rc);
  reduceRows(type, op, rows, n, mine, at(data, chunkBegins[myRank], eb));
  if (int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, chunkCounts.data(), chunkBegins.data(), t,
                              comm);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Allgatherv", rc);
  return "";
}

// The data movement of all_gather, after the agreement.
std::string MpiCommunicator::gather(const void *send, void *recv, int64_t countPerRank, DType type,
                                    const CallInfo &call) {
  if (countPerRank == 0)
    return "";
  const int64_t eb = plan::bytesOf(type);
  const MPI_Datatype t = moveType(type);
  const int count = static_cast<int>(countPerRank);
  const bool inPlace = send == at(recv, myRank * countPerRank, eb);
  if (int rc = MPI_Allgather(inPlace ? MPI_IN_PLACE : send, inPlace ? 0 : count, inPlace ? MPI_DATATYPE_NULL : t,
                             recv, count, t, comm);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Allgather", rc);
  return "";
}

std::string MpiCommunicator::allGather(const void *send, void *recv, int64_t countPerRank, DType type) {
  const CallInfo call{CommOp::AllGather, type, ReduceOp::Sum, countPerRank, 1, -1};
  if (std::string error = agree(call, send, recv); !error.empty())
    return error;
  if (std::string error = checkCounts(call, n * countPerRank); !error.empty())
    return error;
  return gather(send, recv, countPerRank, type, call);
}

std::string MpiCommunicator::reduceScatter(const void *send, void *recv, int64_t countPerRank, DType type,
                                           ReduceOp op) {
  const CallInfo call{CommOp::ReduceScatter, type, op, countPerRank, 1, -1};
  if (std::string error = agree(call, send, recv); !error.empty())
    return error;
  if (std::string error = checkCounts(call, n * countPerRank); !error.empty())
    return error;
  if (countPerRank == 0)
    return "";
  // Rank k receives every rank's chunk k, then reduces them in rank order. `send` is read completely before
  // `recv` is written, so the in-place form (recv inside send) works.
  const int64_t eb = plan::bytesOf(type);
  const MPI_Datatype t = moveType(type);
  const int count = static_cast<int>(countPerRank);
  char *rows = scratch(n * countPerRank * eb);
  if (int rc = MPI_Alltoall(send, count, t, rows, count, t, comm); rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Alltoall", rc);
  reduceRows(type, op, rows, n, countPerRank, recv);
  return "";
}

std::string MpiCommunicator::broadcast(void *data, int64_t count, DType type, int root) {
  const CallInfo call{CommOp::Broadcast, type, ReduceOp::Sum, count, 1, root};
  if (std::string error = agree(call, data, data); !error.empty())
    return error;
  if (std::string error = checkCounts(call, count); !error.empty())
    return error;
  if (count == 0 || n == 1)
    return "";
  if (int rc = MPI_Bcast(data, static_cast<int>(count), moveType(type), root, comm); rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Bcast", rc);
  return "";
}

/// [outer][chunk] blocks `stride` elements apart, with the extent of one chunk: slice k of [outer][n][chunk] is this
/// type at element offset k·chunk, so that MPI moves every rank's slice in one call.
MPI_Datatype sliceType(MPI_Datatype element, int64_t eb, int64_t outer, int64_t chunk, int64_t stride) {
  MPI_Datatype vector, resized;
  MPI_Type_vector(static_cast<int>(outer), static_cast<int>(chunk), static_cast<int>(stride), element, &vector);
  MPI_Type_create_resized(vector, 0, chunk * eb, &resized);
  MPI_Type_free(&vector);
  MPI_Type_commit(&resized);
  return resized;
}

std::string MpiCommunicator::allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type) {
  const CallInfo call{CommOp::AllGatherDim, type, ReduceOp::Sum, chunk, outer, -1};
  if (std::string error = agree(call, send, recv); !error.empty())
    return error;
  if (std::string error = checkCounts(call, n * outer * chunk); !error.empty())
    return error;
  if (outer == 1 || outer * chunk == 0)
    return gather(send, recv, outer * chunk, type, call);
  // recv is [outer][n][chunk]: rank k's [outer][chunk] lands as a strided slice.
  const int64_t eb = plan::bytesOf(type);
  MPI_Datatype slice = sliceType(moveType(type), eb, outer, chunk, n * chunk);
  int rc = MPI_Allgather(send, static_cast<int>(outer * chunk), moveType(type), recv, 1, slice, comm);
  MPI_Type_free(&slice);
  return rc == MPI_SUCCESS ? "" : mpiFailure(call, "MPI_Allgather", rc);
}

std::string MpiCommunicator::reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                                              ReduceOp op) {
  const CallInfo call{CommOp::ReduceScatterDim, type, op, chunk, outer, -1};
  if (std::string error = agree(call, send, recv); !error.empty())
    return error;
  if (std::string error = checkCounts(call, n * outer * chunk); !error.empty())
    return error;
  if (outer * chunk == 0)
    return "";
  // send is [outer][n][chunk]: slice k (strided) goes to rank k, which receives [n][outer][chunk] contiguously and
  // reduces the n rows in rank order.
  const int64_t eb = plan::bytesOf(type);
  MPI_Datatype slice = sliceType(moveType(type), eb, outer, chunk, n * chunk);
  char *rows = scratch(n * outer * chunk * eb);
  int rc = MPI_Alltoall(send, 1, slice, rows, static_cast<int>(outer * chunk), moveType(type), comm);
  MPI_Type_free(&slice);
  if (rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Alltoall", rc);
  reduceRows(type, op, rows, n, outer * chunk, recv);
  return "";
}

// What send and recv check before touching MPI: a failed process, bad arguments, a tag or counts MPI cannot take;
// and the sends that completed since are released.
std::string MpiCommunicator::beginPointToPoint(const CallInfo &call, const void *data) {
  if (session->failed())
    return failureMessage(call);
  if (std::string problem = call.validate(n, data, data); !problem.empty())
    return fail(call.describe(groupName) + ": " + problem);
  if (call.tag > session->tagUpperBound)
    return fail(call.describe(groupName) + ": tag " + std::to_string(call.tag) +
                " exceeds the largest tag this MPI carries (MPI_TAG_UB = " + std::to_string(session->tagUpperBound) +
                ")");
  if (std::string error = checkCounts(call, call.count); !error.empty())
    return error;
  return reapSends(call);
}

std::string MpiCommunicator::send(const void *data, int64_t count, DType type, int peer, int tag) {
  const CallInfo call{CommOp::Send, type, ReduceOp::Sum, count, 1, peer, tag};
  if (std::string error = beginPointToPoint(call, data); !error.empty())
    return error;
  // The copy lets the caller reuse `data` at once, and the send not wait for the receiver (as with threads). The
  // envelope goes first, from the same buffer: [Envelope][data] (the data stays 16-byte aligned).
  const int64_t bytes = count * plan::bytesOf(type);
  PendingSend p{{MPI_REQUEST_NULL, MPI_REQUEST_NULL}, takeSendBuffer(int64_t(sizeof(Envelope)) + bytes)};
  const Envelope envelope{static_cast<int64_t>(type), count};
  std::memcpy(p.bytes.data(), &envelope, sizeof(Envelope));
  if (bytes > 0)
    std::memcpy(p.bytes.data() + sizeof(Envelope), data, static_cast<size_t>(bytes));
  if (int rc = MPI_Isend(p.bytes.data(), kEnvelopeWords, MPI_INT64_T, peer, tag, comm, &p.requests[0]);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Isend", rc);
  if (int rc = MPI_Isend(p.bytes.data() + sizeof(Envelope), static_cast<int>(count), moveType(type), peer, tag, comm,
                         &p.requests[1]);
      rc != MPI_SUCCESS) {
    pending.push_back(std::move(p)); // the envelope's send may be in flight: keep its buffer
    return mpiFailure(call, "MPI_Isend", rc);
  }
  pending.push_back(std::move(p)); // the vector's heap buffer does not move with it
  return "";
}

std::string MpiCommunicator::recv(void *data, int64_t count, DType type, int peer, int tag) {
  const CallInfo call{CommOp::Recv, type, ReduceOp::Sum, count, 1, peer, tag};
  if (std::string error = beginPointToPoint(call, data); !error.empty())
    return error;
  // The oldest envelope from `peer` with this tag (MPI keeps one source's messages of one tag in order; other tags
  // wait), then the data that the sender posted right after it.
  Envelope envelope{-1, -1};
  if (int rc = MPI_Recv(&envelope, kEnvelopeWords, MPI_INT64_T, peer, tag, comm, MPI_STATUS_IGNORE);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Recv (of the envelope)", rc);
  const bool knownType = envelope.type >= 0 && envelope.type <= static_cast<int64_t>(DType::I64);
  if (!knownType || envelope.count < 0 || envelope.count > INT_MAX)
    return fail(call.describe(groupName) + ": rank " + std::to_string(peer) +
                " sent an envelope this rank cannot read (type " + std::to_string(envelope.type) + ", count " +
                std::to_string(envelope.count) + ")");
  CallInfo sent{CommOp::Send, static_cast<DType>(envelope.type), ReduceOp::Sum, envelope.count, 1, myRank, tag};
  if (sent.type != type || sent.count != count) {
    // Receive the data anyway (as sent, into scratch), so that the sender's request completes, then fail; the
    // caller's buffer is not touched.
    std::vector<char> scratch(static_cast<size_t>(sent.count * plan::bytesOf(sent.type)));
    MPI_Recv(scratch.data(), static_cast<int>(sent.count), moveType(sent.type), peer, tag, comm, MPI_STATUS_IGNORE);
    return fail("mismatched calls: rank " + std::to_string(peer) + " called " + sent.describe(groupName) + ", rank " +
                std::to_string(myRank) + " called " + call.describe(groupName));
  }
  if (int rc = MPI_Recv(data, static_cast<int>(count), moveType(type), peer, tag, comm, MPI_STATUS_IGNORE);
      rc != MPI_SUCCESS)
    return mpiFailure(call, "MPI_Recv", rc);
  return "";
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key, const std::string &newName,
                                                     std::string &error) {
  CallInfo call;
  call.op = CommOp::Split;
  std::vector<Header> headers;
  error = agree(call, nullptr, nullptr, color, key, &newName, &headers);
  if (!error.empty())
    return nullptr;
  // Every rank checks that the ranks of each color agree on the name: gather the names.
  std::vector<int> lengths(n), begins(n);
  int total = 0;
  for (int r = 0; r < n; ++r) {
    lengths[r] = static_cast<int>(headers[r].nameLength);
    begins[r] = total;
    total += lengths[r];
  }
  std::string names(static_cast<size_t>(total), '\0');
  if (int rc = MPI_Allgatherv(newName.data(), static_cast<int>(newName.size()), MPI_CHAR, names.data(),
                              lengths.data(), begins.data(), MPI_CHAR, comm);
      rc != MPI_SUCCESS) {
    error = mpiFailure(call, "MPI_Allgatherv", rc);
    return nullptr;
  }
  // Members of each color ordered by key, then rank; the first one's name is the group's (as with threads).
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (headers[a].color != headers[b].color)
      return headers[a].color < headers[b].color;
    return headers[a].key < headers[b].key;
  });
  auto nameOf = [&](int r) { return names.substr(begins[r], lengths[r]); };
  for (int i = 0; i < n;) {
    const int leader = order[i]; // a run of one color starts with its first member in key order
    int j = i + 1;
    for (; j < n && headers[order[j]].color == headers[leader].color; ++j)
      if (headers[leader].color >= 0 && nameOf(order[j]) != nameOf(leader)) {
        const int r = order[j];
        error = fail("mismatched calls: ranks " + std::to_string(leader) + " and " + std::to_string(r) + " called " +
                     call.describe(groupName) + " with color " + std::to_string(headers[r].color) + " but names \"" +
                     nameOf(leader) + "\" and \"" + nameOf(r) + "\"");
        return nullptr;
      }
    i = j;
  }
  MPI_Comm newComm = MPI_COMM_NULL;
  if (int rc = MPI_Comm_split(comm, color < 0 ? MPI_UNDEFINED : color, key, &newComm); rc != MPI_SUCCESS) {
    error = mpiFailure(call, "MPI_Comm_split", rc);
    return nullptr;
  }
  if (newComm == MPI_COMM_NULL)
    return nullptr;
  return std::make_unique<MpiCommunicator>(session, newComm, newName, /*isWorld=*/false);
}

} // namespace

bool mpiAvailable() { return true; }

std::unique_ptr<Communicator> connectMpiWorld(std::string &error) {
  error.clear();
  std::lock_guard<std::mutex> lock(sessionMutex);
  std::shared_ptr<MpiSession> session = currentSession.lock();
  if (!session) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized) {
      error = "MPI was finalized in this process (its last communicator was destroyed) and cannot start again";
      return nullptr;
    }
    if (!initialized) {
      int provided = MPI_THREAD_SINGLE;
      if (int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided); rc != MPI_SUCCESS) {
        error = "MPI_Init_thread failed: " + mpiErrorText(rc);
        return nullptr;
      }
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int worldRank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
    // The largest tag, an attribute of MPI_COMM_WORLD (inherited by every communicator made from it).
    int *tagUpperBound = nullptr, hasTagUpperBound = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tagUpperBound, &hasTagUpperBound);
    const int tagLimit = hasTagUpperBound && tagUpperBound ? *tagUpperBound : 32767; // the standard's minimum
    session = std::make_shared<MpiSession>(/*initializedHere=*/!initialized, worldRank, tagLimit);
    currentSession = session;
  }
  if (session->failed()) {
    error = "this process already failed; MPI communicators are not created any more";
    return nullptr;
  }
  // Each handle has its own copy of the world (MPI_Comm_dup, collective), so that its messages never mix with
  // another handle's or with the application's own use of MPI_COMM_WORLD.
  MPI_Comm world = MPI_COMM_NULL;
  if (int rc = MPI_Comm_dup(session->world, &world); rc != MPI_SUCCESS) {
    error = "MPI_Comm_dup(MPI_COMM_WORLD) failed: " + mpiErrorText(rc);
    return nullptr;
  }
  return std::make_unique<MpiCommunicator>(std::move(session), world, "world", /*isWorld=*/true);
}

std::unique_ptr<Communicator> adoptMpiWorld(void *comm, std::string &error) {
  error.clear();
  std::lock_guard<std::mutex> lock(sessionMutex);
  std::shared_ptr<MpiSession> session = currentSession.lock();
  if (!session || !session->initializedHere || session->world != MPI_COMM_WORLD || session->failed()) {
    error = "adoptMpiWorld: this process has no MPI session of its own that connectMpiWorld started, or it already "
            "adopted a world, or it failed";
    return nullptr;
  }
  MPI_Comm joined = *static_cast<MPI_Comm *>(comm);
  MPI_Comm_set_errhandler(joined, MPI_ERRORS_RETURN);
  MPI_Comm_rank(joined, &session->worldRank);
  session->world = joined;
  MPI_Comm world = MPI_COMM_NULL;
  if (int rc = MPI_Comm_dup(joined, &world); rc != MPI_SUCCESS) {
    error = "MPI_Comm_dup of the joined world failed: " + mpiErrorText(rc);
    return nullptr;
  }
  return std::make_unique<MpiCommunicator>(std::move(session), world, "world", /*isWorld=*/true);
}

} // namespace megatron::comm

#else // !MEGATRON_HAVE_MPI

namespace megatron::comm {

bool mpiAvailable() { return false; }

std::unique_ptr<Communicator> connectMpiWorld(std::string &error) {
  error = "this build has no MPI communicator (MPI was not found when it was configured: install libopenmpi-dev "
          "and openmpi-bin, then reconfigure)";
  return nullptr;
}

std::unique_ptr<Communicator> adoptMpiWorld(void *, std::string &error) {
  return connectMpiWorld(error);
}

} // namespace megatron::comm

#endif
