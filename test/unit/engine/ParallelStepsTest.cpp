//===- ParallelStepsTest.cpp - Sharded plan steps bound by the engine ======//
//
// Hand-written one-rank plans whose steps carry the tensor- and sequence-parallel attributes (vocab_shard,
// sequence_shard, shard_dim, head_shard, vocab_parallel) and the add_bias step, run by engines created for each
// rank of a group. Combining the ranks' results as the compiled program would (a sum of partial embeddings, a
// concatenation of shards) gives what the unsharded plan computes. The vocab-parallel cross-entropy runs its
// ranks on threads joined by an in-process all-reduce, standing in for the communicator. No MLIR: the plans are
// written here, not compiled.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

using namespace megatron;
using runtime::Engine;
using runtime::ParallelRank;
using runtime::RunContext;

namespace {

using Attrs = std::map<std::string, plan::AttrValue>;
using Shape = std::vector<int64_t>;

/// A plan written by hand: buffers one after another in their arenas, one program `train_step`.
class HandPlan {
public:
  int buffer(Shape shape, plan::Arena arena = plan::Arena::Activations, plan::DType dtype = plan::DType::F32) {
    plan::Buffer b;
    b.arena = arena;
    b.dtype = dtype;
    b.shape = std::move(shape);
    b.bytes = b.numElements() * plan::bytesOf(dtype);
    int64_t &end = value.arenaBytes[static_cast<int>(arena)];
    b.offset = end;
    end += (b.bytes + plan::kAlignment - 1) / plan::kAlignment * plan::kAlignment;
    value.buffers.push_back(std::move(b));
    return static_cast<int>(value.buffers.size()) - 1;
  }
  int ids(Shape shape) { return buffer(std::move(shape), plan::Arena::Inputs, plan::DType::I32); }

  void step(std::string op, std::vector<int> in, std::vector<int> out, Attrs attrs = {},
            std::vector<bool> accumulate = {}) {
    accumulate.resize(out.size(), false);
    program.steps.push_back(
        plan::Step{std::move(op), "test", std::move(in), std::move(out), std::move(accumulate), std::move(attrs)});
  }

  std::unique_ptr<Engine> create(ParallelRank rank, std::string &error) const {
    plan::Plan p = value;
    p.programs = {program};
    p.programs[0].name = "train_step";
    p.programs[0].loss = std::max(program.loss, 0);
    return Engine::create(std::move(p), error, rank);
  }
  /// An engine over a tensor-parallel group: the plan says it is compiled for the group's size.
  std::unique_ptr<Engine> create(comm::Communicator &group, std::string &error) const {
    plan::Plan p = value;
    p.parallel.tensor = group.size();
    p.programs = {program};
    p.programs[0].name = "train_step";
    p.programs[0].loss = std::max(program.loss, 0);
    return Engine::create(std::move(p), error, &group);
  }
  std::unique_ptr<Engine> create(ParallelRank rank = {}) const {
    std::string error;
    std::unique_ptr<Engine> engine = create(rank, error);
    EXPECT_TRUE(engine) << error;
    return engine;
  }

  plan::Plan value;
  plan::Program program;
};

using Floats = std::vector<float>;

Floats randomFloats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Floats v(n);
  for (float &x : v)
    x = dist(gen);
  return v;
}

template <typename T> void write(Engine &engine, int id, const std::vector<T> &values) {
  ASSERT_EQ(static_cast<int64_t>(values.size()), engine.buffer(id).numElements());
  std::copy(values.begin(), values.end(), engine.as<T>(id));
}

Floats read(Engine &engine, int id) {
  const float *p = engine.as<float>(id);
  return Floats(p, p + engine.buffer(id).numElements());
}

/// Rank r's shard of a row-major tensor split t ways along one dimension (`outer` runs of `chunk` elements).
struct Split {
  int64_t outer = 1, full = 1, chunk = 1;
  Split(const Shape &shape, std::size_t dim, int64_t ranks) {
    int64_t inner = 1;
    for (std::size_t i = dim + 1; i < shape.size(); ++i)
      inner *= shape[i];
    for (std::size_t i = 0; i < dim; ++i)
      outer *= shape[i];
    full = shape[dim] * inner;
    chunk = shape[dim] / ranks * inner;
  }
  template <typename V> V take(const V &whole, int64_t rank) const {
    V local(static_cast<std::size_t>(outer * chunk));
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(whole.begin() + o * full + rank * chunk, chunk, local.begin() + o * chunk);
    return local;
  }
  template <typename V> void put(const V &local, int64_t rank, V &whole) const {
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(local.begin() + o * chunk, chunk, whole.begin() + o * full + rank * chunk);
  }
};

bool sameBits(const Floats &a, const Floats &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// max |a − b| / max |b|.
double scaledError(const Floats &a, const Floats &b) {
  double diff = 0, scale = 1e-30;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return a.size() == b.size() ? diff / scale : std::numeric_limits<double>::infinity();
}

constexpr int kRanks = 2;

//===----------------------------------------------------------------------===//
// vocab_shard
//===----------------------------------------------------------------------===//

struct EmbeddingPlan {
  HandPlan plan;
  int ids, table, out, dout, dtable;
  EmbeddingPlan(int64_t rows, bool shard) {
    ids = plan.ids({2, 5});
    table = plan.buffer({rows, 4}, plan::Arena::Params);
    dtable = plan.buffer({rows, 4}, plan::Arena::Grads);
    dout = plan.buffer({2, 5, 4}, plan::Arena::Inputs);
    out = plan.buffer({2, 5, 4});
    Attrs attrs = shard ? Attrs{{"vocab_shard", true}} : Attrs{};
    plan.step("embedding", {ids, table}, {out}, attrs);
    plan.step("embedding_grad", {ids, dout}, {dtable}, attrs, {true});
  }
};

TEST(ParallelSteps, VocabShardedEmbedding) {
  const int64_t vocab = 8;
  const std::vector<std::int32_t> ids = {0, 7, 3, 4, 4, 1, 6, 2, 5, 7};
  const Floats table = randomFloats(vocab * 4, 1), dout = randomFloats(40, 2);
  EmbeddingPlan whole(vocab, false);
  std::unique_ptr<Engine> full = whole.plan.create();
  write(*full, whole.ids, ids);
  write(*full, whole.table, table);
  write(*full, whole.dout, dout);
  ASSERT_EQ(full->run("train_step", RunContext{}), "");

  EmbeddingPlan sharded(vocab / kRanks, true);
  const Split rows({vocab, 4}, 0, kRanks);
  Floats summed(40, 0.0f), dtable(table.size());
  for (int r = 0; r < kRanks; ++r) {
    std::unique_ptr<Engine> engine = sharded.plan.create({r, kRanks});
    write(*engine, sharded.ids, ids);
    write(*engine, sharded.table, rows.take(table, r));
    write(*engine, sharded.dout, dout);
    ASSERT_EQ(engine->run("train_step", RunContext{}), "");
    Floats out = read(*engine, sharded.out);
    for (std::size_t i = 0; i < summed.size(); ++i) // the all-reduce of the partial embeddings
      summed[i] += out[i];
    rows.put(read(*engine, sharded.dtable), r, dtable);
  }
  EXPECT_TRUE(sameBits(summed, read(*full, whole.out)));
  EXPECT_TRUE(sameBits(dtable, read(*full, whole.dtable)));
}

TEST(ParallelSteps, VocabShardedEmbeddingNamesTheFullVocabularyInErrors) {
  std::vector<std::int32_t> ids(10, 1);
  ids[3] = 8;
  EmbeddingPlan whole(8, false), sharded(4, true);
  std::unique_ptr<Engine> full = whole.plan.create();
  write(*full, whole.ids, ids);
  const std::string expected = full->run("train_step", RunContext{});
  EXPECT_NE(expected.find("token id 8 at position 3 is outside [0, 8)"), std::string::npos) << expected;
  for (int r = 0; r < kRanks; ++r) {
    std::unique_ptr<Engine> engine = sharded.plan.create({r, kRanks});
    write(*engine, sharded.ids, ids);
    EXPECT_EQ(engine->run("train_step", RunContext{}), expected);
  }
}

TEST(ParallelSteps, ParallelRankIsChecked) {
  EmbeddingPlan sharded(4, true);
  for (ParallelRank bad : {ParallelRank{2, 2}, ParallelRank{-1, 2}, ParallelRank{0, 0}}) {
    std::string error;
    EXPECT_FALSE(sharded.plan.create(bad, error));
    EXPECT_NE(error.find("tensor-parallel rank"), std::string::npos) << error;
  }
}

//===----------------------------------------------------------------------===//
// sequence_shard
//===----------------------------------------------------------------------===//

struct PositionPlan {
  HandPlan plan;
  int x, table, y, dy, dtable;
  PositionPlan(int64_t seq, int64_t tableRows, bool shard) {
    table = plan.buffer({tableRows, 3}, plan::Arena::Params);
    dtable = plan.buffer({tableRows, 3}, plan::Arena::Grads);
    x = plan.buffer({2, seq, 3}, plan::Arena::Inputs);
    dy = plan.buffer({2, seq, 3}, plan::Arena::Inputs);
    y = plan.buffer({2, seq, 3});
    Attrs attrs = shard ? Attrs{{"sequence_shard", true}} : Attrs{};
    plan.step("add_position_embedding", {x, table}, {y}, attrs);
    plan.step("position_embedding_grad", {dy}, {dtable}, attrs, {true});
  }
};

TEST(ParallelSteps, SequenceShardedPositionEmbedding) {
  const int64_t seq = 6, tableRows = 8;
  const Floats x = randomFloats(2 * seq * 3, 1), table = randomFloats(tableRows * 3, 2),
               dy = randomFloats(x.size(), 3);
  PositionPlan whole(seq, tableRows, false);
  std::unique_ptr<Engine> full = whole.plan.create();
  write(*full, whole.x, x);
  write(*full, whole.table, table);
  write(*full, whole.dy, dy);
  ASSERT_EQ(full->run("train_step", RunContext{}), "");
  const Floats fullDtable = read(*full, whole.dtable);

  PositionPlan sharded(seq / kRanks, tableRows, true);
  const Split chunks({2, seq, 3}, 1, kRanks);
  Floats y(x.size()), dtable(table.size(), 0.0f);
  for (int r = 0; r < kRanks; ++r) {
    std::unique_ptr<Engine> engine = sharded.plan.create({r, kRanks});
    write(*engine, sharded.x, chunks.take(x, r));
    write(*engine, sharded.table, table);
    write(*engine, sharded.dy, chunks.take(dy, r));
    ASSERT_EQ(engine->run("train_step", RunContext{}), "");
    chunks.put(read(*engine, sharded.y), r, y);
    const Floats partial = read(*engine, sharded.dtable);
    for (std::size_t i = 0; i < dtable.size(); ++i) // the gradient all-reduce of a replicated table
      dtable[i] += partial[i];
  }
  EXPECT_TRUE(sameBits(y, read(*full, whole.y)));
  EXPECT_TRUE(sameBits(dtable, fullDtable)) << "each position's row comes from exactly one rank";
}

TEST(ParallelSteps, SequenceShardBeyondTheTableIsRefused) {
  PositionPlan sharded(4, 6, true); // rank 1's positions [4, 8) of a 6-row table
  std::string error;
  EXPECT_TRUE(sharded.plan.create({0, kRanks}, error)) << error;
  EXPECT_FALSE(sharded.plan.create({1, kRanks}, error));
  EXPECT_NE(error.find("positions [4, 8) are outside the table's 6 rows"), std::string::npos) << error;
}

//===----------------------------------------------------------------------===//
// shard_dim (dropout, forward and backward are the same step)
//===----------------------------------------------------------------------===//

TEST(ParallelSteps, ShardedDropoutDrawsTheUnshardedMask) {
  const Shape shape = {2, 6, 4};
  const Floats x = randomFloats(48, 1);
  const RunContext context{true, 0x5eed};
  auto dropoutPlan = [](Shape s, std::optional<int64_t> dim) {
    HandPlan plan;
    int in = plan.buffer(s, plan::Arena::Inputs), out = plan.buffer(s);
    Attrs attrs{{"rate", 0.5}, {"rng_stream", int64_t(3)}};
    if (dim)
      attrs["shard_dim"] = *dim;
    plan.step("dropout", {in}, {out}, attrs);
    return std::make_tuple(plan, in, out);
  };
  auto [whole, in, out] = dropoutPlan(shape, std::nullopt);
  std::unique_ptr<Engine> full = whole.create();
  write(*full, in, x);
  ASSERT_EQ(full->run("train_step", context), "");
  const Floats expected = read(*full, out);
  ASSERT_GT(std::count(expected.begin(), expected.end(), 0.0f), 5) << "the mask drops something";

  for (std::size_t dim = 0; dim < shape.size(); ++dim) {
    Shape local = shape;
    local[dim] /= kRanks;
    auto [sharded, lin, lout] = dropoutPlan(local, int64_t(dim));
    const Split split(shape, dim, kRanks);
    Floats gathered(x.size());
    for (int r = 0; r < kRanks; ++r) {
      std::unique_ptr<Engine> engine = sharded.create({r, kRanks});
      write(*engine, lin, split.take(x, r));
      ASSERT_EQ(engine->run("train_step", context), "");
      split.put(read(*engine, lout), r, gathered);
    }
    EXPECT_TRUE(sameBits(gathered, expected)) << "shard_dim " << dim;
  }

  std::string error;
  EXPECT_FALSE(std::get<0>(dropoutPlan(shape, int64_t(3))).create({0, kRanks}, error));
  EXPECT_NE(error.find("shard_dim 3 is not a dimension of the 3-d operand"), std::string::npos) << error;
}

//===----------------------------------------------------------------------===//
// head_shard
//===----------------------------------------------------------------------===//

struct AttentionPlan {
  HandPlan plan;
  int q, k, v, dout, out, lse, dq, dk, dv;
  AttentionPlan(int64_t heads, int64_t groups, bool shard) {
    q = plan.buffer({2, 5, heads, 3}, plan::Arena::Inputs);
    k = plan.buffer({2, 5, groups, 3}, plan::Arena::Inputs);
    v = plan.buffer({2, 5, groups, 3}, plan::Arena::Inputs);
    dout = plan.buffer({2, 5, heads, 3}, plan::Arena::Inputs);
    out = plan.buffer({2, 5, heads, 3});
    lse = plan.buffer({2, heads, 5});
    dq = plan.buffer({2, 5, heads, 3});
    dk = plan.buffer({2, 5, groups, 3});
    dv = plan.buffer({2, 5, groups, 3});
    Attrs attrs{
        {"mask_type", std::string("causal")}, {"softmax_scale", 0.6}, {"dropout", 0.3}, {"rng_stream", int64_t(1)}};
    if (shard)
      attrs["head_shard"] = true;
    plan.step("attention", {q, k, v}, {out, lse}, attrs);
    plan.step("attention_grad", {dout, out, q, k, v, lse}, {dq, dk, dv}, attrs);
  }
};

TEST(ParallelSteps, HeadShardedAttention) {
  const int64_t heads = 4, groups = 2;
  const Floats q = randomFloats(2 * 5 * heads * 3, 1), k = randomFloats(2 * 5 * groups * 3, 2),
               v = randomFloats(k.size(), 3), dout = randomFloats(q.size(), 4);
  const RunContext context{true, 77};
  AttentionPlan whole(heads, groups, false);
  std::unique_ptr<Engine> full = whole.plan.create();
  for (auto [id, values] : {std::pair{whole.q, &q}, {whole.k, &k}, {whole.v, &v}, {whole.dout, &dout}})
    write(*full, id, *values);
  ASSERT_EQ(full->run("train_step", context), "");

  AttentionPlan sharded(heads / kRanks, groups / kRanks, true);
  const Split qs({2, 5, heads, 3}, 2, kRanks), kvs({2, 5, groups, 3}, 2, kRanks);
  Floats out(q.size()), dq(q.size()), dk(k.size()), dv(v.size());
  for (int r = 0; r < kRanks; ++r) {
    std::unique_ptr<Engine> engine = sharded.plan.create({r, kRanks});
    write(*engine, sharded.q, qs.take(q, r));
    write(*engine, sharded.k, kvs.take(k, r));
    write(*engine, sharded.v, kvs.take(v, r));
    write(*engine, sharded.dout, qs.take(dout, r));
    ASSERT_EQ(engine->run("train_step", context), "");
    qs.put(read(*engine, sharded.out), r, out);
    qs.put(read(*engine, sharded.dq), r, dq);
    kvs.put(read(*engine, sharded.dk), r, dk);
    kvs.put(read(*engine, sharded.dv), r, dv);
  }
  EXPECT_LT(scaledError(out, read(*full, whole.out)), 1e-6);
  EXPECT_LT(scaledError(dq, read(*full, whole.dq)), 1e-6);
  EXPECT_LT(scaledError(dk, read(*full, whole.dk)), 1e-6);
  EXPECT_LT(scaledError(dv, read(*full, whole.dv)), 1e-6);
}

//===----------------------------------------------------------------------===//
// add_bias, and its backward sum_rows
//===----------------------------------------------------------------------===//

TEST(ParallelSteps, AddBiasAndItsBackward) {
  HandPlan plan;
  int x = plan.buffer({2, 3, 4}, plan::Arena::Inputs), bias = plan.buffer({4}, plan::Arena::Params);
  int dy = plan.buffer({2, 3, 4}, plan::Arena::Inputs), dbias = plan.buffer({4}, plan::Arena::Grads);
  int y = plan.buffer({2, 3, 4});
  plan.step("add_bias", {x, bias}, {y});
  plan.step("sum_rows", {dy}, {dbias}, {}, {true});
  std::unique_ptr<Engine> engine = plan.create();
  const Floats xs = randomFloats(24, 1), bs = randomFloats(4, 2), dys = randomFloats(24, 3);
  write(*engine, x, xs);
  write(*engine, bias, bs);
  write(*engine, dy, dys);
  ASSERT_EQ(engine->run("train_step", RunContext{}), "");
  const Floats ys = read(*engine, y), dbs = read(*engine, dbias);
  for (int i = 0; i < 24; ++i)
    EXPECT_EQ(ys[i], xs[i] + bs[i % 4]);
  for (int c = 0; c < 4; ++c) {
    float sum = 0;
    for (int r = 0; r < 6; ++r)
      sum += dys[r * 4 + c];
    EXPECT_FLOAT_EQ(dbs[c], sum);
  }
}

//===----------------------------------------------------------------------===//
// vocab_parallel cross-entropy: two all-reduces through the engine's hook
//===----------------------------------------------------------------------===//

/// The all-reduce of ranks that are threads of this process: the last rank to arrive combines the ranks'
/// arrays in rank order and copies the result to every rank.
class ThreadGroup {
public:
  explicit ThreadGroup(int size) : size(size), buffers(size) {}

  runtime::AllReduceFn allReduceOf(int rank) {
    return [this, rank](void *data, int64_t count, plan::DType dtype, bool max) -> std::string {
      if (dtype != plan::DType::F32)
        return "the test group reduces f32 only";
      return reduce(rank, static_cast<float *>(data), count, max);
    };
  }

  std::vector<std::pair<int64_t, bool>> calls; ///< (count, max) of every rank's calls

private:
  std::string reduce(int rank, float *data, int64_t count, bool max) {
    std::unique_lock<std::mutex> lock(mutex);
    calls.push_back({count, max});
    const int round = rounds;
    buffers[rank] = data;
    if (++arrived < size) {
      done.wait(lock, [&] { return rounds != round; });
      return "";
    }
    std::vector<float> result(buffers[0], buffers[0] + count);
    for (int r = 1; r < size; ++r)
      for (int64_t i = 0; i < count; ++i)
        result[i] = max ? std::max(result[i], buffers[r][i]) : result[i] + buffers[r][i];
    for (float *buffer : buffers)
      std::copy(result.begin(), result.end(), buffer);
    arrived = 0;
    ++rounds;
    done.notify_all();
    return "";
  }

  int size;
  std::vector<float *> buffers;
  int arrived = 0, rounds = 0;
  std::mutex mutex;
  std::condition_variable done;
};

struct CrossEntropyPlan {
  HandPlan plan;
  int logits, labels, mask, loss, lse, dloss, dlogits;
  CrossEntropyPlan(int64_t vocab, bool parallel) {
    logits = plan.buffer({2, 3, vocab}, plan::Arena::Inputs);
    labels = plan.ids({2, 3});
    mask = plan.buffer({2, 3}, plan::Arena::Inputs);
    loss = plan.buffer({});
    lse = plan.buffer({2, 3});
    dloss = plan.buffer({});
    dlogits = plan.buffer({2, 3, vocab});
    Attrs attrs = parallel ? Attrs{{"vocab_parallel", true}} : Attrs{};
    plan.step("cross_entropy", {logits, labels, mask}, {loss, lse}, attrs);
    plan.step("fill", {}, {dloss}, {{"value", 1.0}});
    plan.step("cross_entropy_grad", {dloss, logits, labels, mask, lse}, {dlogits}, attrs);
    plan.program.loss = loss;
  }
};

const std::vector<std::int32_t> kLabels = {3, 9, -1, 0, 5, 11};
const Floats kMask = {1, 1, 0, 1, 1, 1};

TEST(ParallelSteps, VocabParallelCrossEntropyOverThreads) {
  const int64_t vocab = 12;
  const Floats logits = randomFloats(6 * vocab, 1);
  CrossEntropyPlan whole(vocab, false);
  std::unique_ptr<Engine> full = whole.plan.create();
  write(*full, whole.logits, logits);
  write(*full, whole.labels, kLabels);
  write(*full, whole.mask, kMask);
  ASSERT_EQ(full->run("train_step", RunContext{}), "");

  CrossEntropyPlan sharded(vocab / kRanks, true);
  const Split columns({6, vocab}, 1, kRanks);
  ThreadGroup group(kRanks);
  std::vector<std::unique_ptr<Engine>> engines;
  for (int r = 0; r < kRanks; ++r) {
    engines.push_back(sharded.plan.create({r, kRanks}));
    engines[r]->allReduce = group.allReduceOf(r);
    write(*engines[r], sharded.logits, columns.take(logits, r));
    write(*engines[r], sharded.labels, kLabels);
    write(*engines[r], sharded.mask, kMask);
  }
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] { errors[r] = engines[r]->run("train_step", RunContext{}); });
  for (std::thread &thread : threads)
    thread.join();
  Floats dlogits(logits.size());
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_EQ(errors[r], "");
    EXPECT_NEAR(engines[r]->loss("train_step"), full->loss("train_step"), 1e-6 * full->loss("train_step"));
    EXPECT_LT(scaledError(read(*engines[r], sharded.lse), read(*full, whole.lse)), 1e-6);
    columns.put(read(*engines[r], sharded.dlogits), r, dlogits);
  }
  EXPECT_LT(scaledError(dlogits, read(*full, whole.dlogits)), 1e-6);
  // One max of the row maxima, one sum of the [rows, 2] partials, per rank.
  const std::vector<std::pair<int64_t, bool>> perRank = {{6, true}, {12, false}};
  EXPECT_EQ(std::count(group.calls.begin(), group.calls.end(), perRank[0]), kRanks);
  EXPECT_EQ(std::count(group.calls.begin(), group.calls.end(), perRank[1]), kRanks);
}

TEST(ParallelSteps, VocabParallelCrossEntropyOnOneRankIsThePlainKernel) {
  const int64_t vocab = 10;
  const Floats logits = randomFloats(6 * vocab, 2);
  std::vector<std::int32_t> labels = {3, 9, -1, 0, 5, 1};
  CrossEntropyPlan whole(vocab, false), parallel(vocab, true);
  std::unique_ptr<Engine> a = whole.plan.create(), b = parallel.plan.create(); // no all-reduce: one rank
  for (auto [engine, p] : {std::pair{a.get(), &whole}, {b.get(), &parallel}}) {
    write(*engine, p->logits, logits);
    write(*engine, p->labels, labels);
    write(*engine, p->mask, kMask);
    ASSERT_EQ(engine->run("train_step", RunContext{}), "");
  }
  EXPECT_NEAR(b->loss("train_step"), a->loss("train_step"), 1e-6 * a->loss("train_step"));
  EXPECT_LT(scaledError(read(*b, parallel.lse), read(*a, whole.lse)), 1e-6);
  EXPECT_TRUE(sameBits(read(*b, parallel.dlogits), read(*a, whole.dlogits)) ||
              scaledError(read(*b, parallel.dlogits), read(*a, whole.dlogits)) < 1e-6);

  labels[1] = 10; // read (mask 1) and outside the vocabulary: the same message either way
  write(*a, whole.labels, labels);
  write(*b, parallel.labels, labels);
  const std::string expected = a->run("train_step", RunContext{});
  EXPECT_NE(expected.find("label 10 at position 1 is outside [0, 10)"), std::string::npos) << expected;
  EXPECT_EQ(b->run("train_step", RunContext{}), expected);
}

TEST(ParallelSteps, VocabParallelCrossEntropyNeedsAnAllReduceOnSeveralRanks) {
  CrossEntropyPlan sharded(6, true);
  std::unique_ptr<Engine> engine = sharded.plan.create({1, kRanks});
  write(*engine, sharded.labels, kLabels);
  const std::string error = engine->run("train_step", RunContext{});
  EXPECT_NE(error.find("needs the engine's all-reduce"), std::string::npos) << error;
}

//===----------------------------------------------------------------------===//
// The collective steps over a communicator (ranks as threads)
//===----------------------------------------------------------------------===//

/// Rank r's values of an input that differs between ranks.
Floats rankFloats(std::size_t n, int rank, unsigned which) { return randomFloats(n, 100 * which + rank); }

/// The tp group of a runRanks world, as megatron-run makes it.
std::unique_ptr<comm::Communicator> tpGroup(comm::Communicator &world) {
  std::string error;
  std::unique_ptr<comm::Communicator> tp = world.split(0, world.rank(), "tp", error);
  EXPECT_TRUE(tp) << error;
  return tp;
}

TEST(ParallelSteps, CollectiveStepsOverACommunicator) {
  const int t = 4;
  HandPlan p;
  int a = p.buffer({2, 3, 4}, plan::Arena::Inputs), gathered = p.buffer({2, 3 * t, 4});
  int b = p.buffer({2, 3 * t, 4}, plan::Arena::Inputs), scattered = p.buffer({2, 3, 4});
  int w = p.buffer({2, 3, 4 * t}, plan::Arena::Inputs), sliced = p.buffer({2, 3, 4});
  int c = p.buffer({5}, plan::Arena::Inputs), reduced = p.buffer({5});
  int g1 = p.buffer({3}, plan::Arena::Grads), g2 = p.buffer({4, 2}, plan::Arena::Grads);
  p.step("all_gather", {a}, {gathered}, {{"dim", int64_t(1)}, {"group", std::string("tp")}});
  p.step("reduce_scatter", {b}, {scattered}, {{"dim", int64_t(1)}, {"group", std::string("tp")}});
  p.step("shard_slice", {w}, {sliced}, {{"dim", int64_t(2)}, {"group", std::string("tp")}});
  p.step("all_reduce", {c}, {reduced}, {{"group", std::string("tp")}});
  p.step("all_reduce_grads", {}, {g1}, {{"group", std::string("tp")}});
  // Rows 1 and 2 of g2 summed over pairs of ranks (a key/value head that two ranks share).
  p.step("all_reduce_grads", {}, {g2},
         {{"group", std::string("tp")}, {"group_size", int64_t(2)}, {"row_offset", int64_t(1)},
          {"row_count", int64_t(2)}});

  std::vector<Floats> outGathered(t), outScattered(t), outSliced(t), outReduced(t), outG1(t), outG2(t);
  std::string error = comm::runRanks(t, [&](int rank, comm::Communicator &world) -> std::string {
    std::unique_ptr<comm::Communicator> tp = tpGroup(world);
    std::string createError;
    std::unique_ptr<Engine> engine = p.create(*tp, createError);
    if (!engine)
      return createError;
    write(*engine, a, rankFloats(24, rank, 1));
    write(*engine, b, rankFloats(24 * t, rank, 2));
    write(*engine, w, rankFloats(24 * t, rank, 3));
    write(*engine, c, rankFloats(5, rank, 4));
    write(*engine, g1, rankFloats(3, rank, 5));
    write(*engine, g2, rankFloats(8, rank, 6));
    if (std::string e = engine->run("train_step", RunContext{}); !e.empty())
      return e;
    outGathered[rank] = read(*engine, gathered);
    outScattered[rank] = read(*engine, scattered);
    outSliced[rank] = read(*engine, sliced);
    outReduced[rank] = read(*engine, reduced);
    outG1[rank] = read(*engine, g1);
    outG2[rank] = read(*engine, g2);
    return "";
  });
  ASSERT_EQ(error, "");

  const Split seq({2, 3 * t, 4}, 1, t), hidden({2, 3, 4 * t}, 2, t);
  Floats wholeA(24 * t), sumB(24 * t, 0.0f), sumC(5, 0.0f), sumG1(3, 0.0f);
  for (int r = 0; r < t; ++r) {
    seq.put(rankFloats(24, r, 1), r, wholeA);
    Floats br = rankFloats(24 * t, r, 2), cr = rankFloats(5, r, 4), g1r = rankFloats(3, r, 5);
    for (std::size_t i = 0; i < br.size(); ++i)
      sumB[i] += br[i];
    for (std::size_t i = 0; i < 5; ++i)
      sumC[i] += cr[i];
    for (std::size_t i = 0; i < 3; ++i)
      sumG1[i] += g1r[i];
  }
  for (int r = 0; r < t; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_TRUE(sameBits(outGathered[r], wholeA));
    EXPECT_TRUE(sameBits(outScattered[r], seq.take(sumB, r))); // rank-order sums, as the loop above
    EXPECT_TRUE(sameBits(outSliced[r], hidden.take(rankFloats(24 * t, r, 3), r)));
    EXPECT_TRUE(sameBits(outReduced[r], sumC));
    EXPECT_TRUE(sameBits(outG1[r], sumG1));
    // g2: rows 0 and 3 are the rank's own, rows 1 and 2 the sum over the pair {2·(r/2), 2·(r/2) + 1}.
    Floats own = rankFloats(8, r, 6), first = rankFloats(8, r / 2 * 2, 6), second = rankFloats(8, r / 2 * 2 + 1, 6);
    Floats expected = own;
    for (int i = 2; i < 6; ++i)
      expected[i] = first[i] + second[i];
    EXPECT_TRUE(sameBits(outG2[r], expected));
  }
}

TEST(ParallelSteps, ARankThatFailsStopsItsPeersAndIsNamed) {
  // Rank 1 reads a token id outside the vocabulary; rank 0 waits for it in the all-gather that follows. Nobody
  // hangs: rank 0's collective fails at once, naming rank 1, and runRanks reports rank 1's own error.
  HandPlan p;
  int ids = p.ids({2, 3}), table = p.buffer({16, 4}, plan::Arena::Params), e = p.buffer({2, 3, 4});
  int gathered = p.buffer({2, 3, 8});
  p.step("embedding", {ids, table}, {e});
  p.step("all_gather", {e}, {gathered}, {{"dim", int64_t(2)}, {"group", std::string("tp")}});
  std::vector<std::string> errors(kRanks);
  auto start = std::chrono::steady_clock::now();
  std::string error = comm::runRanks(
      kRanks,
      [&](int rank, comm::Communicator &world) -> std::string {
        std::unique_ptr<comm::Communicator> tp = tpGroup(world);
        std::string createError;
        std::unique_ptr<Engine> engine = p.create(*tp, createError);
        if (!engine)
          return createError;
        write(*engine, ids, std::vector<std::int32_t>{1, 2, 3, 4, rank == 1 ? 99 : 5, 6});
        if (rank == 0) // rank 1 fails first
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        errors[rank] = engine->run("train_step", RunContext{});
        return errors[rank];
      },
      comm::ThreadWorldOptions{std::chrono::milliseconds(30'000)});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10.0);
  EXPECT_EQ(error, "rank 1: step 0 of train_step (embedding at 'test'): token id 99 at position 4 is outside "
                   "[0, 16)");
  // The engine aborts the group when a step fails, so the peers' message names the group "tp".
  EXPECT_EQ(errors[0].rfind("step 1 of train_step (all_gather at 'test'): rank 1 of group \"tp\" (world rank 1) "
                            "failed (step 0 of train_step (embedding at 'test'): token id 99",
                            0),
            0u)
      << errors[0];
  EXPECT_NE(errors[0].find("all_gather_dim (group \"tp\", 6 x 4 x f32 per rank)"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("token id 99"), std::string::npos) << errors[0];
}

TEST(ParallelSteps, CreateChecksTheLayoutAgainstTheCommunicator) {
  HandPlan p;
  int x = p.buffer({4}, plan::Arena::Inputs), y = p.buffer({4});
  p.step("all_reduce", {x}, {y}, {{"group", std::string("tp")}});
  plan::Plan twoRanks = p.value;
  twoRanks.programs = {p.program};
  twoRanks.programs[0].name = "train_step";
  twoRanks.parallel.tensor = 2;
  std::string error;
  EXPECT_FALSE(Engine::create(twoRanks, error));
  EXPECT_EQ(error, "the plan is compiled for 2 tensor-parallel ranks, but no tensor-parallel communicator was "
                   "given (a single rank)");

  std::vector<std::string> errors(4);
  EXPECT_NE(comm::runRanks(4,
                           [&](int rank, comm::Communicator &world) -> std::string {
                             std::unique_ptr<comm::Communicator> tp = tpGroup(world);
                             std::unique_ptr<Engine> engine = Engine::create(twoRanks, errors[rank], tp.get());
                             return engine ? "" : errors[rank];
                           }),
            "");
  EXPECT_EQ(errors[0], "the plan is compiled for 2 tensor-parallel ranks, but the group \"tp\" has 4 ranks");

  // Without a communicator, a collective over several ranks cannot be bound.
  std::unique_ptr<Engine> engine = p.create({1, kRanks}, error);
  EXPECT_FALSE(engine);
  EXPECT_NE(error.find("step 0 of train_step (all_reduce at 'test'): a collective over 2 tensor-parallel ranks "
                       "needs the group's communicator"),
            std::string::npos)
      << error;
}

TEST(ParallelSteps, ShardSliceNeedsNoCommunicator) {
  HandPlan p;
  int x = p.buffer({2, 6}, plan::Arena::Inputs), y = p.buffer({2, 3});
  p.step("shard_slice", {x}, {y}, {{"dim", int64_t(1)}, {"group", std::string("tp")}});
  std::unique_ptr<Engine> engine = p.create({1, kRanks});
  ASSERT_TRUE(engine);
  write(*engine, x, Floats{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  ASSERT_EQ(engine->run("train_step", RunContext{}), "");
  EXPECT_EQ(read(*engine, y), (Floats{3, 4, 5, 9, 10, 11}));
}

TEST(ParallelSteps, GroupSizeMustDivideTheGroup) {
  HandPlan p;
  int g = p.buffer({4}, plan::Arena::Grads);
  p.step("all_reduce_grads", {}, {g}, {{"group", std::string("tp")}, {"group_size", int64_t(3)}});
  std::vector<std::string> errors(4);
  comm::runRanks(4, [&](int rank, comm::Communicator &world) -> std::string {
    std::unique_ptr<comm::Communicator> tp = tpGroup(world);
    std::unique_ptr<Engine> engine = p.create(*tp, errors[rank]);
    return engine ? "" : errors[rank];
  });
  EXPECT_EQ(errors[0], "step 0 of train_step (all_reduce_grads): group_size must be a positive divisor of the "
                       "tensor-parallel size 4");
}

//===----------------------------------------------------------------------===//
// Data parallelism: all_reduce_grads over "dp"
//===----------------------------------------------------------------------===//

/// A world of tp x dp ranks split as megatron-run splits it (Megatron's order, tensor-parallel fastest), and an
/// engine for each rank.
std::string runTpDp(int tp, int dp, const plan::Plan &plan,
                    const std::function<std::string(int rank, Engine &engine)> &body) {
  return comm::runRanks(tp * dp, [&](int rank, comm::Communicator &world) -> std::string {
    std::string error;
    std::unique_ptr<comm::Communicator> tpGroup = world.split(rank / tp, rank % tp, "tp", error);
    if (!tpGroup)
      return error;
    std::unique_ptr<comm::Communicator> dpGroup = world.split(rank % tp, rank / tp, "dp", error);
    if (!dpGroup)
      return error;
    std::unique_ptr<Engine> engine = Engine::create(plan, error, tpGroup.get(), dpGroup.get());
    if (!engine)
      return error;
    return body(rank, *engine);
  });
}

TEST(ParallelSteps, DataParallelGradientsAreSummedOverTheReplicas) {
  // tp = 2, dp = 3: world rank w is tp rank w % 2 of replica w / 2. g1 and g2 lie back to back (summed in place);
  // g5 lies between g4 and g6 (so they are packed); g3 is not summed; row_offset packs too.
  const int tp = 2, dp = 3;
  HandPlan p;
  int g1 = p.buffer({3}, plan::Arena::Grads), g2 = p.buffer({4, 2}, plan::Arena::Grads);
  int g3 = p.buffer({5}, plan::Arena::Grads), g4 = p.buffer({2, 3}, plan::Arena::Grads);
  int g5 = p.buffer({3, 2}, plan::Arena::Grads), g6 = p.buffer({7}, plan::Arena::Grads);
  p.step("all_reduce_grads", {}, {g2, g1}, {{"group", std::string("dp")}});
  p.step("all_reduce_grads", {}, {g6, g4}, {{"group", std::string("dp")}});
  p.step("all_reduce_grads", {}, {g5}, {{"group", std::string("dp")}, {"row_offset", int64_t(1)},
                                        {"row_count", int64_t(2)}});
  plan::Plan plan = p.value;
  plan.parallel.tensor = tp;
  plan.parallel.data = dp;
  plan.programs = {p.program};
  plan.programs[0].name = "finalize_grads";
  const std::vector<std::pair<int, int>> grads = {{g1, 3}, {g2, 8}, {g3, 5}, {g4, 6}, {g5, 6}, {g6, 7}};
  std::vector<std::vector<Floats>> out(tp * dp);
  std::string error = runTpDp(tp, dp, plan, [&](int rank, Engine &engine) -> std::string {
    for (auto [id, n] : grads)
      write(engine, id, rankFloats(n, rank, id));
    if (std::string e = engine.run("finalize_grads", RunContext{}); !e.empty())
      return e;
    for (auto [id, n] : grads)
      out[rank].push_back(read(engine, id));
    return "";
  });
  ASSERT_EQ(error, "");
  for (int rank = 0; rank < tp * dp; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    for (size_t i = 0; i < grads.size(); ++i) {
      auto [id, n] = grads[i];
      Floats expected = rankFloats(n, rank, id);
      if (id != g3) {
        // The replicas of this tp rank, summed in replica order.
        Floats sum(n, 0.0f);
        for (int replica = 0; replica < dp; ++replica) {
          Floats term = rankFloats(n, replica * tp + rank % tp, id);
          for (int k = 0; k < n; ++k)
            sum[k] += term[k];
        }
        for (int k = id == g5 ? 2 : 0; k < (id == g5 ? 6 : n); ++k)
          expected[k] = sum[k];
      }
      EXPECT_TRUE(sameBits(out[rank][i], expected)) << "gradient " << i;
    }
  }
}

TEST(ParallelSteps, DataParallelLayoutAndStepsAreChecked) {
  HandPlan p;
  int g = p.buffer({4}, plan::Arena::Grads), x = p.buffer({4}, plan::Arena::Inputs), y = p.buffer({4});
  p.step("all_reduce_grads", {}, {g}, {{"group", std::string("dp")}});
  plan::Plan twoReplicas = p.value;
  twoReplicas.programs = {p.program};
  twoReplicas.programs[0].name = "finalize_grads";
  twoReplicas.parallel.data = 2;
  std::string error;
  EXPECT_FALSE(Engine::create(twoReplicas, error));
  EXPECT_EQ(error, "the plan is compiled for 2 data-parallel ranks, but no data-parallel communicator was given "
                   "(a single replica)");
  // One replica: the step sums nothing.
  plan::Plan one = twoReplicas;
  one.parallel.data = 1;
  std::unique_ptr<Engine> engine = Engine::create(one, error);
  ASSERT_TRUE(engine) << error;
  write(*engine, g, Floats{1, 2, 3, 4});
  ASSERT_EQ(engine->run("finalize_grads", RunContext{}), "");
  EXPECT_EQ(read(*engine, g), (Floats{1, 2, 3, 4}));

  // Over "dp" the engine runs all_reduce_grads only; group_size is the tensor-parallel group's.
  HandPlan q;
  x = q.buffer({4}, plan::Arena::Inputs), y = q.buffer({4});
  q.step("all_reduce", {x}, {y}, {{"group", std::string("dp")}});
  EXPECT_FALSE(q.create({}, error));
  EXPECT_EQ(error, "step 0 of train_step (all_reduce at 'test'): over the group \"dp\" the engine runs "
                   "all_reduce_grads only, not all_reduce");
  HandPlan r;
  g = r.buffer({4}, plan::Arena::Grads);
  r.step("all_reduce_grads", {}, {g}, {{"group", std::string("dp")}, {"group_size", int64_t(2)}});
  EXPECT_FALSE(r.create({}, error));
  EXPECT_EQ(error, "step 0 of train_step (all_reduce_grads at 'test'): group_size applies to the tensor-parallel "
                   "group only");
  HandPlan s;
  x = s.buffer({4}, plan::Arena::Inputs), y = s.buffer({4});
  s.step("all_reduce", {x}, {y}, {{"group", std::string("pp")}});
  EXPECT_FALSE(s.create({}, error));
  EXPECT_NE(error.find("the engine runs collectives over the groups \"tp\", \"dp\" and \"embedding\" only"),
            std::string::npos)
      << error;
}

} // namespace
