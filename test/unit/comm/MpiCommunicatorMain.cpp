//===- MpiCommunicatorMain.cpp - megatron-mpi-comm-check: the MPI communicator under mpirun ===//
//
// Run as `mpirun -np 4 --oversubscribe megatron-mpi-comm-check` (ctest does, test/unit/comm/CMakeLists.txt). Each
// process is one rank: it joins the world through the launcher bootstrap (detectLaunch, connectWorld) and runs
// every operation of the Communicator interface against the serial references of the thread tests (Reference.h),
// bitwise. Results that every rank must share are also hashed and the hashes gathered to rank 0 (with MPI
// itself, independently of the communicator under test), which checks that all ranks hold the same bits. Exits 0
// when everything matched, 1 otherwise (every mismatch is printed, prefixed with the rank).
//
// With --fail=MODE it runs one failure scenario instead, for test/unit/comm/mpi-test.sh:
//   abort          world rank 3 (rank 1 of its "tp" group) calls abort() while the others wait in an all-reduce;
//   mismatch       rank 1 all-reduces 9 elements, the others 8: every rank must return the same error;
//   bad-argument   rank 3 broadcasts -1 elements: it gets the argument error, the others that rank 3 failed;
//   p2p-mismatch   rank 0 sends 12 floats with tag 4, then 8 with tag 0; rank 1 receives 12 with tag 0: it gets
//                  the mismatch and aborts the job.
// In the last two, every rank prints what it got; rank 0 then says whether all ranks agreed, and the processes
// leave main() with their communicators failed, which aborts the job.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Launch.h"
#include "test/unit/comm/Reference.h"

// The C API only: Open MPI's (deprecated) C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace megatron::comm;
using namespace megatron::comm::reference;
using megatron::plan::toString;

namespace {

int worldRank = -1;

/// Failures of this rank, and the hashes of the results every rank must share.
struct Results {
  int failures = 0;
  std::vector<uint64_t> sharedHashes;
  std::vector<std::string> sharedNames;

  void fail(const std::string &what) {
    if (++failures <= 20)
      std::printf("rank %d: FAILED: %s\n", worldRank, what.c_str());
  }
  bool ok(const std::string &error, const std::string &what) {
    if (!error.empty())
      fail(what + ": " + error);
    return error.empty();
  }
  template <typename T> void expectBitwise(const std::vector<T> &got, const std::vector<T> &want, const std::string &what) {
    if (got.size() != want.size() || (!got.empty() && std::memcmp(got.data(), want.data(), got.size() * sizeof(T))))
      fail(what + ": differs from the serial reference");
  }
  /// `data` must be bitwise the same on every rank (checked at the end, on rank 0).
  template <typename T> void shared(const std::vector<T> &data, const std::string &what) {
    uint64_t hash = 1469598103934665603ull; // FNV-1a
    const unsigned char *bytes = reinterpret_cast<const unsigned char *>(data.data());
    for (size_t i = 0; i < data.size() * sizeof(T); ++i)
      hash = (hash ^ bytes[i]) * 1099511628211ull;
    sharedHashes.push_back(hash ^ data.size());
    sharedNames.push_back(what);
  }
};

std::string label(const Communicator &c, DType type, int64_t count, const std::string &extra = "") {
  return std::string(toString(type)) + ", count " + std::to_string(count) + " on group \"" + c.name() + "\" of " +
         std::to_string(c.size()) + (extra.empty() ? "" : " " + extra);
}

template <typename F> void withType(DType type, F &&f) {
  switch (type) {
  case DType::F32:
    return f(float{});
  case DType::F64:
    return f(double{});
  case DType::I32:
    return f(int32_t{});
  default:
    return;
  }
}

const DType kTypes[] = {DType::F32, DType::F64, DType::I32};

//===- The collectives, on any group (its ranks play the references' ranks) -----===//

void checkCollectives(Communicator &c, Results &out) {
  const int n = c.size(), me = c.rank();
  for (DType type : kTypes)
    withType(type, [&](auto zero) {
      using T = decltype(zero);
      for (int64_t count : kCounts) {
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
          std::vector<T> data = valuesOf<T>(me, count, 1);
          if (out.ok(c.allReduce(data.data(), count, type, op), "all_reduce"))
            out.expectBitwise(data, reduced<T>(n, count, 1, op), "all_reduce " + label(c, type, count, toString(op)));
          out.shared(data, "all_reduce " + label(c, type, count, toString(op)));

          std::vector<T> send = valuesOf<T>(me, n * count, 3), recv(count, T(-1));
          if (out.ok(c.reduceScatter(send.data(), recv.data(), count, type, op), "reduce_scatter"))
            out.expectBitwise(recv, reduced<T>(n, count, 3, op, me * count),
                              "reduce_scatter " + label(c, type, count, toString(op)));
        }
        std::vector<T> send = valuesOf<T>(me, count, 2), gathered(n * count, T(-1)), want;
        for (int r = 0; r < n; ++r)
          for (T v : valuesOf<T>(r, count, 2))
            want.push_back(v);
        if (out.ok(c.allGather(send.data(), gathered.data(), count, type), "all_gather"))
          out.expectBitwise(gathered, want, "all_gather " + label(c, type, count));
        out.shared(gathered, "all_gather " + label(c, type, count));
      }

      // In place: all_gather from this rank's slot of the receive buffer, reduce_scatter into the send buffer.
      const int64_t count = 1001;
      std::vector<T> gathered(n * count, T(-1)), want;
      std::vector<T> mine = valuesOf<T>(me, count, 4);
      std::copy(mine.begin(), mine.end(), gathered.begin() + me * count);
      for (int r = 0; r < n; ++r)
        for (T v : valuesOf<T>(r, count, 4))
          want.push_back(v);
      if (out.ok(c.allGather(gathered.data() + me * count, gathered.data(), count, type), "in-place all_gather"))
        out.expectBitwise(gathered, want, "in-place all_gather " + label(c, type, count));
      std::vector<T> scattered = valuesOf<T>(me, n * count, 5);
      if (out.ok(c.reduceScatter(scattered.data(), scattered.data() + me * count, count, type, ReduceOp::Sum),
                 "in-place reduce_scatter"))
        out.expectBitwise(std::vector<T>(scattered.begin() + me * count, scattered.begin() + (me + 1) * count),
                          reduced<T>(n, count, 5, ReduceOp::Sum, me * count),
                          "in-place reduce_scatter " + label(c, type, count));

      // Broadcast from every root.
      for (int root = 0; root < n; ++root)
        for (int64_t count : {int64_t(0), int64_t(1), int64_t(7), int64_t(4099)}) {
          std::vector<T> data = valuesOf<T>(me, count, 6);
          std::string what = "broadcast " + label(c, type, count, "from root " + std::to_string(root));
          if (out.ok(c.broadcast(data.data(), count, type, root), what))
            out.expectBitwise(data, valuesOf<T>(root, count, 6), what);
        }

      // The *Dim variants: the MPI datatype path against the base class's default path and the reference.
      for (int64_t outer : {1, 3, 5})
        for (int64_t chunk : {0, 1, 7, 300}) {
          std::vector<T> send = valuesOf<T>(me, outer * chunk, 7), full = valuesOf<T>(me, outer * n * chunk, 8);
          std::vector<T> gather(outer * n * chunk, T(-1)), gatherDefault = gather;
          std::vector<T> scatter(outer * chunk, T(-1)), scatterDefault = scatter;
          std::string what = label(c, type, chunk, "outer " + std::to_string(outer));
          if (!out.ok(c.allGatherDim(send.data(), gather.data(), outer, chunk, type), "all_gather_dim " + what) ||
              !out.ok(c.Communicator::allGatherDim(send.data(), gatherDefault.data(), outer, chunk, type),
                      "all_gather_dim (default) " + what) ||
              !out.ok(c.reduceScatterDim(full.data(), scatter.data(), outer, chunk, type, ReduceOp::Sum),
                      "reduce_scatter_dim " + what) ||
              !out.ok(c.Communicator::reduceScatterDim(full.data(), scatterDefault.data(), outer, chunk, type,
                                                       ReduceOp::Sum),
                      "reduce_scatter_dim (default) " + what))
            continue;
          std::vector<T> gatherWant(outer * n * chunk), scatterWant(outer * chunk);
          for (int64_t o = 0; o < outer; ++o) {
            for (int k = 0; k < n; ++k)
              for (int64_t i = 0; i < chunk; ++i)
                gatherWant[(o * n + k) * chunk + i] = valueOf<T>(k, o * chunk + i, 7);
            std::vector<T> part = reduced<T>(n, chunk, 8, ReduceOp::Sum, (o * n + me) * chunk);
            std::copy(part.begin(), part.end(), scatterWant.begin() + o * chunk);
          }
          out.expectBitwise(gather, gatherWant, "all_gather_dim " + what);
          out.expectBitwise(gatherDefault, gatherWant, "all_gather_dim (default) " + what);
          out.expectBitwise(scatter, scatterWant, "reduce_scatter_dim " + what);
          out.expectBitwise(scatterDefault, scatterWant, "reduce_scatter_dim (default) " + what);
        }
    });
}

// NaN wins a max, integer sums wrap around, i64 reduces, bf16 moves: as with threads.
void checkSpecialValues(Communicator &c, Results &out) {
  const int n = c.size(), me = c.rank();
  std::vector<float> floats = {me == 1 ? NAN : 1.0f, float(me), -float(me)};
  std::vector<int32_t> ints = {me == 0 ? INT32_MAX : 1};
  std::vector<int64_t> longs = {int64_t(1) << 40, me};
  if (out.ok(c.allReduce(floats.data(), 3, DType::F32, ReduceOp::Max), "max with NaN") &&
      (!std::isnan(floats[0]) || floats[1] != float(n - 1) || floats[2] != 0.0f))
    out.fail("max with NaN: NaN must win, got " + std::to_string(floats[0]));
  if (out.ok(c.allReduce(ints.data(), 1, DType::I32, ReduceOp::Sum), "i32 sum") &&
      ints[0] != static_cast<int32_t>(uint32_t(INT32_MAX) + uint32_t(n - 1)))
    out.fail("i32 sum must wrap around, got " + std::to_string(ints[0]));
  if (out.ok(c.allReduce(longs.data(), 2, DType::I64, ReduceOp::Sum), "i64 sum") &&
      (longs[0] != (int64_t(n) << 40) || longs[1] != int64_t(n) * (n - 1) / 2))
    out.fail("i64 sum");
  uint16_t bf16[2] = {uint16_t(0x3f80 + me), uint16_t(0x4000 + me)};
  std::vector<uint16_t> gathered(2 * n, 0), want;
  for (int r = 0; r < n; ++r)
    want.insert(want.end(), {uint16_t(0x3f80 + r), uint16_t(0x4000 + r)});
  if (out.ok(c.allGather(bf16, gathered.data(), 2, DType::BF16), "bf16 all_gather"))
    out.expectBitwise(gathered, want, "bf16 all_gather");
}

//===- Point-to-point -----------------------------------------------------------===//

void checkPointToPoint(Communicator &c, Results &out) {
  const int n = c.size(), me = c.rank();
  if (n < 2)
    return;
  // Pairs (0,1), (2,3)...: the even rank sends first, then the odd one; then both send first. Small and large
  // messages (the large ones are beyond MPI's eager limit, so a blocking send would deadlock when both send first).
  const int partner = me ^ 1;
  if (partner < n)
    for (int64_t count : {int64_t(0), int64_t(10), int64_t(300000)}) {
      std::vector<float> mine = valuesOf<float>(me, count, 9), theirs(count, -1.0f);
      std::string what = "send/recv of " + std::to_string(count) + " x f32 with rank " + std::to_string(partner);
      std::string e = me % 2 == 0 ? c.send(mine.data(), count, DType::F32, partner, 0) : "";
      if (e.empty())
        e = c.recv(theirs.data(), count, DType::F32, partner, 0);
      if (e.empty() && me % 2 == 1)
        e = c.send(mine.data(), count, DType::F32, partner, 0);
      if (out.ok(e, what + ", one after the other"))
        out.expectBitwise(theirs, valuesOf<float>(partner, count, 9), what + ", one after the other");

      std::vector<float> again(count, -1.0f);
      e = c.send(mine.data(), count, DType::F32, partner, 0);
      mine.assign(count, -2.0f); // the send copied the message: the buffer may change at once
      if (e.empty())
        e = c.recv(again.data(), count, DType::F32, partner, 0);
      if (out.ok(e, what + ", both sending first"))
        out.expectBitwise(again, valuesOf<float>(partner, count, 9), what + ", both sending first");
    }

  // A ring, everyone sending before receiving, three messages in flight that must arrive in order.
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  std::string e;
  for (int m = 0; m < 3 && e.empty(); ++m) {
    std::vector<double> message = valuesOf<double>(me, 1000 * (m + 1), 10 + m);
    e = c.send(message.data(), int64_t(message.size()), DType::F64, next, 0);
  }
  for (int m = 0; m < 3 && e.empty(); ++m) {
    std::vector<double> got(1000 * (m + 1), -1.0);
    e = c.recv(got.data(), int64_t(got.size()), DType::F64, prev, 0);
    if (e.empty())
      out.expectBitwise(got, valuesOf<double>(prev, 1000 * (m + 1), 10 + m), "ring message " + std::to_string(m));
  }
  out.ok(e, "ring on group \"" + c.name() + "\"");

  // Tags. Within each pair, one rank sends tags 1, 2, 3 (the second beyond the eager limit) and the other receives
  // 3, 1, 2; then the other way round.
  if (partner < n)
    for (int sender : {0, 1}) {
      const int64_t sizes[4] = {0, 10, 200000, 20};
      e.clear();
      if (me % 2 == sender) {
        for (int tag : {1, 2, 3}) {
          std::vector<float> message = valuesOf<float>(me, sizes[tag], 20 + tag);
          if (e.empty())
            e = c.send(message.data(), sizes[tag], DType::F32, partner, tag);
        }
        out.ok(e, "sends with tags 1, 2, 3");
      } else {
        for (int tag : {3, 1, 2}) {
          std::vector<float> got(sizes[tag], -1.0f);
          if (e.empty())
            e = c.recv(got.data(), sizes[tag], DType::F32, partner, tag);
          if (e.empty())
            out.expectBitwise(got, valuesOf<float>(partner, sizes[tag], 20 + tag),
                              "message of tag " + std::to_string(tag) + " received out of order");
        }
        out.ok(e, "receives of tags 3, 1, 2");
      }
    }

  // FIFO within a tag: the even rank of a pair sends tags 5, 6, 5, 6, 5, 6 (a sequence number each), the odd one
  // receives tag 6 three times, then tag 5 three times.
  if (partner < n) {
    e.clear();
    if (me % 2 == 0) {
      for (int32_t m = 0; m < 6 && e.empty(); ++m) {
        int32_t message[2] = {5 + m % 2, m / 2};
        e = c.send(message, 2, DType::I32, partner, 5 + m % 2);
      }
    } else {
      for (int32_t m = 0; m < 6 && e.empty(); ++m) {
        const int32_t tag = m < 3 ? 6 : 5, sequence = m % 3;
        int32_t message[2] = {-1, -1};
        e = c.recv(message, 2, DType::I32, partner, tag);
        if (e.empty() && (message[0] != tag || message[1] != sequence))
          out.fail("tag " + std::to_string(tag) + ": expected message " + std::to_string(sequence) + ", got tag " +
                   std::to_string(message[0]) + " message " + std::to_string(message[1]));
      }
    }
    out.ok(e, "FIFO within a tag");
  }

  // To itself.
  int32_t self = 42 + me, back = 0;
  e = c.send(&self, 1, DType::I32, me, 0);
  if (e.empty())
    e = c.recv(&back, 1, DType::I32, me, 0);
  if (out.ok(e, "send to itself") && back != 42 + me)
    out.fail("send to itself: got " + std::to_string(back));
}

//===- Groups -------------------------------------------------------------------===//

void checkGroups(Communicator &world, Results &out) {
  const int n = world.size(), me = world.rank();
  std::string error;
  // Tensor-parallel groups of 2 consecutive ranks and data-parallel groups across them.
  std::unique_ptr<Communicator> tp = world.split(me / 2, me, "tp", error);
  if (!tp)
    return out.fail("split into tp: " + error);
  std::unique_ptr<Communicator> dp = world.split(me % 2, me, "dp", error);
  if (!dp)
    return out.fail("split into dp: " + error);
  const int tpSize = std::min(2, n - me / 2 * 2);
  if (tp->name() != "tp" || tp->rank() != me % 2 || tp->size() != tpSize)
    out.fail("tp group: rank " + std::to_string(tp->rank()) + " of " + std::to_string(tp->size()));
  if (dp->name() != "dp" || dp->rank() != me / 2 || dp->size() != (n - me % 2 + 1) / 2)
    out.fail("dp group: rank " + std::to_string(dp->rank()) + " of " + std::to_string(dp->size()));

  // Every collective and point-to-point again inside the groups (their ranks play the references' ranks).
  checkCollectives(*tp, out);
  checkPointToPoint(*tp, out);
  checkCollectives(*dp, out);

  // Reducing over tp, then over dp, sums over the world (integers: exact whatever the order).
  int32_t twoStep[2] = {me + 1, 10 * me}, direct[2] = {me + 1, 10 * me};
  if (out.ok(tp->allReduce(twoStep, 2, DType::I32, ReduceOp::Sum), "tp all_reduce") &&
      out.ok(dp->allReduce(twoStep, 2, DType::I32, ReduceOp::Sum), "dp all_reduce") &&
      out.ok(world.allReduce(direct, 2, DType::I32, ReduceOp::Sum), "world all_reduce") &&
      (twoStep[0] != direct[0] || twoStep[1] != direct[1] || direct[0] != n * (n + 1) / 2))
    out.fail("tp then dp all_reduce differs from the world's");

  // Keys order the new group (here reversed); a negative color takes no part; nested splits.
  std::unique_ptr<Communicator> reversed = world.split(0, n - me, "reversed", error);
  if (!reversed || reversed->rank() != n - 1 - me)
    out.fail("split ordered by key: " + (reversed ? "rank " + std::to_string(reversed->rank()) : error));
  std::unique_ptr<Communicator> some = world.split(me == 0 ? -1 : 1, me, "some", error);
  if (me == 0 && (some || !error.empty()))
    out.fail("split with a negative color must give no group and no error: " + error);
  if (me != 0 && (!some || some->size() != n - 1 || some->rank() != me - 1))
    out.fail("split without rank 0: " + error);
  if (some) {
    std::vector<int32_t> data = {me};
    if (out.ok(some->allReduce(data.data(), 1, DType::I32, ReduceOp::Max), "all_reduce without rank 0") &&
        data[0] != n - 1)
      out.fail("all_reduce without rank 0: got " + std::to_string(data[0]));
  }
  std::unique_ptr<Communicator> inner = tp->split(0, -tp->rank(), "tp_reversed", error);
  if (!inner || inner->rank() != tp->size() - 1 - tp->rank())
    out.fail("nested split: " + error);
}

// Many small all-reduces back to back: the latency of one (the agreement plus the gather).
void checkManySmallAllReduces(Communicator &c, Results &out, double &microseconds) {
  const int n = c.size(), iterations = 500;
  auto start = std::chrono::steady_clock::now();
  int bad = 0;
  for (int it = 0; it < iterations; ++it) {
    double x[3] = {double(c.rank() + it), 1.0, double(c.rank())};
    if (!out.ok(c.allReduce(x, 3, DType::F64, it % 2 ? ReduceOp::Max : ReduceOp::Sum), "small all_reduce"))
      return;
    bad += x[0] != (it % 2 ? double(n - 1 + it) : double(n * it + n * (n - 1) / 2)) || x[1] != (it % 2 ? 1.0 : n);
  }
  microseconds =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / iterations;
  if (bad)
    out.fail(std::to_string(bad) + " of " + std::to_string(iterations) + " small all-reduces wrong");
}

//===- Failure scenarios --------------------------------------------------------===//

/// Every rank reports its error; rank 0 prints them all and whether they are the expected ones. Uses MPI directly
/// (the communicator under test has failed). Returns the exit code: 1 (a failure was injected).
int reportErrors(Communicator &world, const std::string &error, const std::function<std::string(int)> &expected) {
  const int n = world.size(), me = world.rank();
  // Fixed-size records, gathered to rank 0.
  constexpr int kChars = 1024;
  std::vector<char> mine(kChars, '\0'), all(n * kChars, '\0');
  std::strncpy(mine.data(), error.c_str(), kChars - 1);
  MPI_Gather(mine.data(), kChars, MPI_CHAR, all.data(), kChars, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (me == 0) {
    int agreeing = 0;
    for (int r = 0; r < n; ++r) {
      std::string got(all.data() + r * kChars);
      std::printf("rank %d returned: %s\n", r, got.c_str());
      agreeing += got == expected(r);
      if (got != expected(r))
        std::printf("rank %d: expected: %s\n", r, expected(r).c_str());
    }
    std::printf("%d of %d ranks returned the expected error\n", agreeing, n);
  }
  std::fflush(stdout);
  // Every rank returned, none is stuck in MPI: meet once more so that rank 0's report is out before anyone
  // aborts the job on leaving main().
  MPI_Barrier(MPI_COMM_WORLD);
  return 1;
}

int runFailure(const std::string &mode, Communicator &world) {
  const int me = world.rank();
  std::vector<float> data(8, 1.0f);
  if (mode == "abort") {
    std::string error;
    std::unique_ptr<Communicator> tp = world.split(me / 2, me, "tp", error);
    if (!tp || !world.allReduce(data.data(), 8, DType::F32, ReduceOp::Sum).empty())
      return 2;
    if (me == 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200)); // the others are blocked by now
      tp->abort("injected failure on purpose");
    }
    world.allReduce(data.data(), 8, DType::F32, ReduceOp::Sum); // never completes: rank 3 aborts the job
    std::printf("rank %d: the all-reduce returned although rank 3 aborted\n", me);
    return 3;
  }
  if (mode == "mismatch") {
    data.resize(me == 1 ? 9 : 8, 1.0f);
    std::string error = world.allReduce(data.data(), int64_t(data.size()), DType::F32, ReduceOp::Sum);
    return reportErrors(world, error, [](int) {
      return "mismatched calls: rank 0 called all_reduce (group \"world\", 8 x f32, sum), rank 1 called "
             "all_reduce (group \"world\", 9 x f32, sum)";
    });
  }
  if (mode == "bad-argument") {
    std::string error = world.broadcast(data.data(), me == 3 ? -1 : 4, DType::F32, 0);
    // Every later call of a failed process returns at once, naming the first failure.
    std::string later = world.allReduce(data.data(), 8, DType::F32, ReduceOp::Sum);
    const std::string cause = "broadcast (group \"world\", -1 x f32, root 0): negative element count";
    const std::string laterWant = "rank 3 of group \"world\" failed (" + cause + ") before rank " +
                                  std::to_string(me) + " called all_reduce (group \"world\", 8 x f32, sum)";
    if (later != laterWant)
      error += " | AND a later call returned: " + later;
    return reportErrors(world, error, [&](int r) {
      return r == 3 ? cause
                    : "rank 3 of group \"world\" failed (" + cause + ") while rank " + std::to_string(r) +
                          " waited in broadcast (group \"world\", 4 x f32, root 0)";
    });
  }
  if (mode == "p2p-mismatch") {
    // Rank 0 sends 8 floats, rank 1 expects 12: rank 1 gets the error and aborts the job, as an application
    // should; the others wait in an all-reduce that never completes. Before them rank 0 sends 12 floats with tag 4,
    // which rank 1's receive of tag 0 must not take.
    std::string error;
    std::vector<float> other(12, 2.0f);
    if (me == 0)
      error = world.send(other.data(), 12, DType::F32, 1, 4);
    if (me == 0 && error.empty())
      error = world.send(data.data(), 8, DType::F32, 1, 0);
    if (me == 1) {
      std::vector<float> got(12);
      error = world.recv(got.data(), 12, DType::F32, 0, 0);
      std::printf("rank 1 returned: %s\n", error.c_str());
      std::fflush(stdout);
      world.abort(error);
    }
    world.allReduce(data.data(), 8, DType::F32, ReduceOp::Sum);
    std::printf("rank %d: the all-reduce returned although rank 1 aborted (%s)\n", me, error.c_str());
    return 3;
  }
  std::fprintf(stderr, "megatron-mpi-comm-check: unknown --fail mode \"%s\"\n", mode.c_str());
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  std::string failMode;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--fail=", 0) == 0) {
      failMode = arg.substr(7);
    } else {
      std::fprintf(stderr, "usage: mpirun -np N megatron-mpi-comm-check [--fail=abort|mismatch|bad-argument|p2p-mismatch]\n");
      return 2;
    }
  }
  std::string error;
  LaunchInfo info = detectLaunch(processEnvironment(), error);
  if (!error.empty()) {
    std::fprintf(stderr, "megatron-mpi-comm-check: %s\n", error.c_str());
    return 2;
  }
  if (!info.multiProcess()) {
    std::fprintf(stderr, "megatron-mpi-comm-check: run it under mpirun, e.g. mpirun -np 4 --oversubscribe %s\n",
                 argv[0]);
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Communicator> world = connectWorld(info, error);
  if (!world) {
    std::fprintf(stderr, "megatron-mpi-comm-check: %s\n", error.c_str());
    return 2;
  }
  worldRank = world->rank();
  if (!failMode.empty())
    return runFailure(failMode, *world);

  Results out;
  checkCollectives(*world, out);
  checkSpecialValues(*world, out);
  checkPointToPoint(*world, out);
  checkGroups(*world, out);
  double smallMicroseconds = 0;
  checkManySmallAllReduces(*world, out, smallMicroseconds);

  // Rank 0 compares the hashes of the shared results (the same checks ran on every rank, in the same order).
  const int n = world->size();
  int count = static_cast<int>(out.sharedHashes.size()), minCount = 0, maxCount = 0;
  MPI_Allreduce(&count, &minCount, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&count, &maxCount, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (minCount != maxCount) {
    out.fail("the ranks ran different numbers of checks");
  } else {
    std::vector<uint64_t> all(static_cast<size_t>(n) * count);
    MPI_Gather(out.sharedHashes.data(), count, MPI_UINT64_T, all.data(), count, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (worldRank == 0)
      for (int r = 1; r < n; ++r)
        for (int i = 0; i < count; ++i)
          if (all[r * count + i] != all[i])
            out.fail(out.sharedNames[i] + ": rank " + std::to_string(r) + " holds other bits than rank 0");
  }
  int failures = 0;
  MPI_Reduce(&out.failures, &failures, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (worldRank == 0)
    std::printf("megatron-mpi-comm-check: %s; %d ranks; %d shared results compared across ranks; %d failures; "
                "%.2f s; %.1f us per small all-reduce\n",
                info.describe().c_str(), n, count, failures, seconds, smallMicroseconds);
  return out.failures ? 1 : 0;
}
