//===- TensorParallelTest.cpp - Sharded kernels reproduce the unsharded ones ===//
//
// Tensor and sequence parallelism run every rank's shard through the same kernels with an offset or index
// mapping. The property checked here, for t = 2 and 4 ranks: running the sharded kernels rank by rank and
// combining the results as the compiled program does (the sum of the partial embeddings, the concatenation of
// shards, the cross-entropy's all-reduces emulated by a max and a sum over the ranks in rank order) gives the
// unsharded kernel's outputs and gradients: bitwise where the arithmetic is the same (gathers, scatters, dropout
// masks), to 1e-6 of the tensor's scale in float where it is not (sums split over ranks).
//
//===----------------------------------------------------------------------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

constexpr Index kRankCounts[] = {2, 4};

/// Where rank r's shard lies in a row-major tensor split t ways along one dimension: `outer` runs of localChunk
/// elements, run o at o·fullChunk + r·localChunk.
struct Split {
  Index outer = 1, fullChunk = 1, localChunk = 1;
};

Split splitAlong(const std::vector<Index> &shape, std::size_t dim, Index ranks) {
  Split s;
  Index inner = 1;
  for (std::size_t i = dim + 1; i < shape.size(); ++i)
    inner *= shape[i];
  for (std::size_t i = 0; i < dim; ++i)
    s.outer *= shape[i];
  s.fullChunk = shape[dim] * inner;
  s.localChunk = shape[dim] / ranks * inner;
  return s;
}

template <typename V> V takeShard(const V &full, const Split &s, Index rank) {
  V local(std::size_t(s.outer * s.localChunk));
  for (Index o = 0; o < s.outer; ++o)
    std::copy_n(full.begin() + o * s.fullChunk + rank * s.localChunk, s.localChunk, local.begin() + o * s.localChunk);
  return local;
}

template <typename V> void putShard(const V &local, const Split &s, Index rank, V &full) {
  for (Index o = 0; o < s.outer; ++o)
    std::copy_n(local.begin() + o * s.localChunk, s.localChunk, full.begin() + o * s.fullChunk + rank * s.localChunk);
}

//===----------------------------------------------------------------------===//
// Vocabulary-parallel embedding
//===----------------------------------------------------------------------===//

TEST(TensorParallel, VocabShardedEmbeddingSumsToTheLookup) {
  const Index vocab = 12, hidden = 5, tokens = 23;
  auto ids = randomIds(tokens, 1, std::int32_t(vocab));
  VecF table = toFloat(randomVec(vocab * hidden, 2)), dout = toFloat(randomVec(tokens * hidden, 3));
  VecF dtableStart = toFloat(randomVec(vocab * hidden, 4)); // accumulates into an existing gradient
  VecF out(tokens * hidden), dtable = dtableStart;
  ASSERT_TRUE(embeddingForward(EmbeddingShape{tokens, vocab, hidden}, ids.data(), table.data(), out.data()).ok());
  ASSERT_TRUE(embeddingBackward(EmbeddingShape{tokens, vocab, hidden}, ids.data(), dout.data(), dtable.data()).ok());
  for (Index t : kRankCounts) {
    const Split rows = splitAlong({vocab, hidden}, 0, t);
    VecF summed(out.size(), 0.0f), gathered(dtable.size());
    for (Index r = 0; r < t; ++r) {
      EmbeddingShape s{tokens, vocab / t, hidden, r * (vocab / t), vocab};
      VecF local(out.size(), std::numeric_limits<float>::quiet_NaN()), dlocal = takeShard(dtableStart, rows, r);
      ASSERT_TRUE(embeddingForward(s, ids.data(), takeShard(table, rows, r).data(), local.data()).ok());
      ASSERT_TRUE(embeddingBackward(s, ids.data(), dout.data(), dlocal.data()).ok());
      add(Index(summed.size()), summed.data(), local.data(), summed.data()); // the all-reduce
      putShard(dlocal, rows, r, gathered);
    }
    EXPECT_TRUE(sameBits(summed, out)) << t << " ranks";
    EXPECT_TRUE(sameBits(gathered, dtable)) << t << " ranks";
  }
}

TEST(TensorParallel, VocabShardedEmbeddingReportsIdsOutsideTheFullVocabulary) {
  const Index vocab = 8, hidden = 3, tokens = 5;
  VecF table(vocab / 2 * hidden, 1.0f), out(tokens * hidden, 7.0f), dtable(table.size(), 0.0f);
  for (std::int32_t bad : {8, -1, 1 << 30}) {
    std::vector<std::int32_t> ids = {1, 6, bad, 3, bad}; // 6 is the other rank's: fine
    for (Index r = 0; r < 2; ++r) {
      EmbeddingShape s{tokens, vocab / 2, hidden, r * (vocab / 2), vocab};
      for (IndexStatus status : {embeddingForward(s, ids.data(), table.data(), out.data()),
                                 embeddingBackward(s, ids.data(), out.data(), dtable.data())}) {
        EXPECT_EQ(status.position, 2);
        EXPECT_EQ(status.value, bad);
        EXPECT_EQ(status.limit, vocab) << "the message names the full vocabulary";
      }
      EXPECT_EQ(out, VecF(out.size(), 7.0f)) << "nothing is written on failure";
      EXPECT_EQ(dtable, VecF(dtable.size(), 0.0f));
    }
  }
}

//===----------------------------------------------------------------------===//
// Sequence-parallel position embedding
//===----------------------------------------------------------------------===//

TEST(TensorParallel, SequenceShardedPositionEmbeddingUsesItsPositions) {
  const Index batch = 3, seq = 8, hidden = 4, maxPositions = 10;
  VecF x = toFloat(randomVec(batch * seq * hidden, 1)), table = toFloat(randomVec(maxPositions * hidden, 2));
  VecF dout = toFloat(randomVec(x.size(), 3)), dtableStart = toFloat(randomVec(table.size(), 4));
  VecF out(x.size()), dtable = dtableStart;
  positionEmbeddingForward(PositionEmbeddingShape{batch, seq, hidden, maxPositions}, x.data(), table.data(),
                           out.data());
  positionEmbeddingBackward<float>(PositionEmbeddingShape{batch, seq, hidden, maxPositions}, dout.data(), nullptr,
                                   dtable.data());
  for (Index t : kRankCounts) {
    const Split chunks = splitAlong({batch, seq, hidden}, 1, t);
    const Index local = seq / t;
    VecF gathered(out.size());
    for (Index r = 0; r < t; ++r) {
      PositionEmbeddingShape s{batch, local, hidden, maxPositions, r * local};
      VecF y(chunks.outer * chunks.localChunk), dlocal = dtableStart; // the table is replicated
      positionEmbeddingForward(s, takeShard(x, chunks, r).data(), table.data(), y.data());
      positionEmbeddingBackward<float>(s, takeShard(dout, chunks, r).data(), nullptr, dlocal.data());
      putShard(y, chunks, r, gathered);
      // This rank's positions get the unsharded gradient; the others are untouched (another rank's part of the
      // gradient all-reduce).
      for (Index p = 0; p < maxPositions; ++p)
        for (Index h = 0; h < hidden; ++h) {
          const bool mine = p >= r * local && p < (r + 1) * local;
          EXPECT_EQ(dlocal[p * hidden + h], (mine ? dtable : dtableStart)[p * hidden + h])
              << "rank " << r << " of " << t << ", position " << p;
        }
    }
    EXPECT_TRUE(sameBits(gathered, out)) << t << " ranks";
  }
}

//===----------------------------------------------------------------------===//
// Dropout on a shard
//===----------------------------------------------------------------------===//

// Each rank's mask is the unsharded mask's shard, for every dimension and for sizes whose runs cross the
// kernel's 1024-element chunks and Philox's 4-word blocks at odd places.
TEST(TensorParallel, ShardedDropoutDrawsTheUnshardedMask) {
  const std::vector<std::vector<Index>> shapes = {{4, 4, 8}, {3, 1000, 7}, {2, 12, 5, 3}};
  for (const auto &shape : shapes) {
    Index n = 1;
    for (Index extent : shape)
      n *= extent;
    const DropoutConfig full{0.3, 1234, dropoutStream(5, 1, 7)};
    VecF x = toFloat(randomVec(n, 1)), y(n), dx(n);
    dropoutForward(n, full, x.data(), y.data());
    dropoutBackward(n, full, x.data(), dx.data());
    for (std::size_t dim = 0; dim < shape.size(); ++dim)
      for (Index t : kRankCounts) {
        if (shape[dim] % t != 0)
          continue;
        const Split split = splitAlong(shape, dim, t);
        VecF gathered(n), gatheredBackward(n);
        for (Index r = 0; r < t; ++r) {
          DropoutConfig config = full;
          config.shard = dropoutShard(split.localChunk, r, t);
          VecF local = takeShard(x, split, r), yl(local.size()), dxl(local.size());
          dropoutForward(Index(local.size()), config, local.data(), yl.data());
          dropoutBackward(Index(local.size()), config, local.data(), dxl.data());
          putShard(yl, split, r, gathered);
          putShard(dxl, split, r, gatheredBackward);
          const Index probe = Index(local.size()) - 1; // dropoutKeeps maps the same way
          EXPECT_EQ(dropoutKeeps(config, std::uint64_t(probe)),
                    dropoutKeeps(full, config.shard.fullIndex(std::uint64_t(probe))));
        }
        EXPECT_TRUE(sameBits(gathered, y)) << "dim " << dim << ", " << t << " ranks, " << n << " elements";
        EXPECT_TRUE(sameBits(gatheredBackward, dx)) << "dim " << dim << ", " << t << " ranks";
      }
  }
}

TEST(TensorParallel, DropoutShardIndexMapping) {
  // [2, 4] split in two along dim 1: rank 1 holds columns 2 and 3.
  const DropoutShard shard = dropoutShard(2, 1, 2);
  const std::uint64_t expected[] = {2, 3, 6, 7};
  for (std::uint64_t i = 0; i < 4; ++i)
    EXPECT_EQ(shard.fullIndex(i), expected[i]);
  EXPECT_EQ(DropoutShard().fullIndex(12345), 12345u) << "the default is the identity";
}

//===----------------------------------------------------------------------===//
// Attention on a share of the heads
//===----------------------------------------------------------------------===//

struct AttentionRun {
  VecF out, lse, dq, dk, dv;
};

AttentionRun runAttention(const AttentionShape &s, const AttentionConfig &config, const VecF &q, const VecF &k,
                          const VecF &v, const VecF &dout) {
  AttentionRun run{VecF(q.size()), VecF(s.batch * s.heads * s.querySeq), VecF(q.size()), VecF(k.size()),
                   VecF(v.size())};
  VecF workspace(attentionWorkspaceSize(s, numThreads()));
  const Index size = Index(workspace.size());
  attentionForward(s, config, q.data(), k.data(), v.data(), nullptr, static_cast<const float *>(nullptr),
                   run.out.data(), run.lse.data(), workspace.data(), size);
  attentionBackward(s, config, q.data(), k.data(), v.data(), nullptr, static_cast<const float *>(nullptr),
                    run.lse.data(), dout.data(), run.dq.data(), run.dk.data(), run.dv.data(),
                    static_cast<float *>(nullptr), workspace.data(), size);
  return run;
}

TEST(TensorParallel, HeadShardedAttentionDropsTheUnshardedProbabilities) {
  struct Case {
    Index heads, groups, ranks;
    AttentionMask mask;
  };
  for (const Case &c : {Case{4, 2, 2, AttentionMask::Bidirectional}, Case{4, 4, 4, AttentionMask::Causal},
                        Case{8, 4, 2, AttentionMask::Causal}}) {
    const AttentionShape full{2, 6, 6, c.heads, c.groups, 3};
    const AttentionConfig config{c.mask, 0.5, DropoutConfig{0.4, 99, dropoutStream(2, 0, 3)}};
    VecF q = toFloat(randomVec(2 * 6 * c.heads * 3, 1)), k = toFloat(randomVec(2 * 6 * c.groups * 3, 2));
    VecF v = toFloat(randomVec(k.size(), 3)), dout = toFloat(randomVec(q.size(), 4));
    const AttentionRun expected = runAttention(full, config, q, k, v, dout);
    const AttentionRun undropped = runAttention(full, AttentionConfig{c.mask, 0.5, DropoutConfig{}}, q, k, v, dout);
    ASSERT_GT(scaledError(toDouble(undropped.out), toDouble(expected.out)), 1e-2) << "the dropout must matter";

    const Index t = c.ranks;
    const Split qs = splitAlong({2, 6, c.heads, 3}, 2, t), kvs = splitAlong({2, 6, c.groups, 3}, 2, t);
    const Split lses = splitAlong({2, c.heads, 6}, 1, t);
    AttentionRun gathered{VecF(q.size()), VecF(expected.lse.size()), VecF(q.size()), VecF(k.size()), VecF(v.size())};
    for (Index r = 0; r < t; ++r) {
      AttentionShape local = full;
      local.heads /= t;
      local.groups /= t;
      AttentionConfig sharded = config;
      sharded.dropout.shard = dropoutShard(local.heads * local.querySeq * local.keySeq, r, t);
      const AttentionRun run = runAttention(local, sharded, takeShard(q, qs, r), takeShard(k, kvs, r),
                                            takeShard(v, kvs, r), takeShard(dout, qs, r));
      putShard(run.out, qs, r, gathered.out);
      putShard(run.lse, lses, r, gathered.lse);
      putShard(run.dq, qs, r, gathered.dq);
      putShard(run.dk, kvs, r, gathered.dk);
      putShard(run.dv, kvs, r, gathered.dv);
    }
    for (auto member :
         {&AttentionRun::out, &AttentionRun::lse, &AttentionRun::dq, &AttentionRun::dk, &AttentionRun::dv})
      EXPECT_LT(scaledError(toDouble(gathered.*member), toDouble(expected.*member)), 1e-6)
          << c.heads << " heads, " << c.groups << " groups, " << t << " ranks";
  }
}

//===----------------------------------------------------------------------===//
// Vocabulary-parallel cross-entropy
//===----------------------------------------------------------------------===//

struct CrossEntropyRun {
  float loss = 0;
  VecF lse, dlogits; // dlogits gathered over the ranks
};

/// The sharded forward and backward of `t` ranks, the all-reduces emulated in rank order.
template <typename T>
std::vector<T> shardedCrossEntropy(Index rows, Index vocab, Index t, const std::vector<T> &logits,
                                   const std::vector<std::int32_t> &labels, const T *mask, T dloss, T &loss,
                                   std::vector<T> &dlogits) {
  const Split columns = splitAlong({rows, vocab}, 1, t);
  std::vector<std::vector<T>> local(t), maxima(t), partials(t);
  std::vector<T> rowMax(rows, -std::numeric_limits<T>::infinity()), partial(2 * rows, T(0));
  for (Index r = 0; r < t; ++r) {
    local[r] = takeShard(logits, columns, r);
    maxima[r].resize(rows);
    crossEntropyRowMax(CrossEntropyShape{rows, vocab / t, r * (vocab / t), vocab}, local[r].data(), maxima[r].data());
    for (Index i = 0; i < rows; ++i)
      rowMax[i] = std::max(rowMax[i], maxima[r][i]);
  }
  for (Index r = 0; r < t; ++r) {
    partials[r].resize(2 * rows);
    CrossEntropyShape s{rows, vocab / t, r * (vocab / t), vocab};
    EXPECT_TRUE(
        crossEntropyPartialSums(s, local[r].data(), labels.data(), mask, rowMax.data(), partials[r].data()).ok());
    add(2 * rows, partial.data(), partials[r].data(), partial.data());
  }
  // Every rank finishes with the same reduced arrays, so every rank has the same loss and lse.
  std::vector<T> lse(rows);
  for (Index r = 0; r < t; ++r) {
    T rankLoss;
    std::vector<T> rankLse = rowMax; // lse may alias the row maxima, as the runtime binds it
    crossEntropyFinish(rows, rankLse.data(), partial.data(), mask, &rankLoss, rankLse.data());
    if (r == 0) {
      loss = rankLoss;
      lse = rankLse;
    }
    EXPECT_EQ(rankLoss, loss);
    std::vector<T> dlocal(local[r].size(), std::numeric_limits<T>::quiet_NaN());
    EXPECT_TRUE(crossEntropyBackward(CrossEntropyShape{rows, vocab / t, r * (vocab / t), vocab}, local[r].data(),
                                     labels.data(), mask, lse.data(), dloss, dlocal.data())
                    .ok());
    putShard(dlocal, columns, r, dlogits);
  }
  return lse;
}

TEST(TensorParallel, VocabParallelCrossEntropyMatchesTheWholeRows) {
  struct Case {
    Index rows, vocab;
    bool masked;
  };
  // 5000 columns: several of the kernel's 2048-logit blocks per rank.
  for (const Case &c : {Case{7, 12, false}, Case{9, 16, true}, Case{3, 5000, true}}) {
    VecF logits = toFloat(randomVec(c.rows * c.vocab, 1, -4.0, 4.0));
    auto labels = randomIds(c.rows, 2, std::int32_t(c.vocab));
    VecF mask(c.rows, 1.0f);
    if (c.masked)
      for (Index r = 0; r < c.rows; r += 3) {
        mask[r] = 0.0f;
        labels[r] = -1; // BERT's unread labels
      }
    const float *maskp = c.masked ? mask.data() : nullptr;
    const float dloss = 0.75f;
    float loss;
    VecF lse(c.rows), dlogits(logits.size());
    ASSERT_TRUE(crossEntropyForward(CrossEntropyShape{c.rows, c.vocab}, logits.data(), labels.data(), maskp, &loss,
                                    lse.data())
                    .ok());
    ASSERT_TRUE(crossEntropyBackward(CrossEntropyShape{c.rows, c.vocab}, logits.data(), labels.data(), maskp,
                                     lse.data(), dloss, dlogits.data())
                    .ok());
    for (Index t : {Index(1), Index(2), Index(4)}) {
      float shardedLoss;
      VecF gathered(logits.size());
      VecF shardedLse = shardedCrossEntropy(c.rows, c.vocab, t, logits, labels, maskp, dloss, shardedLoss, gathered);
      EXPECT_NEAR(shardedLoss, loss, 1e-6 * std::fabs(loss)) << t << " ranks, vocab " << c.vocab;
      EXPECT_LT(scaledError(toDouble(shardedLse), toDouble(lse)), 1e-6) << t << " ranks";
      EXPECT_LT(scaledError(toDouble(gathered), toDouble(dlogits)), 1e-6) << t << " ranks";
    }
  }
}

// In double the phases equal the one-pass kernel to double rounding: the formula is the same.
TEST(TensorParallel, VocabParallelCrossEntropyInDouble) {
  const Index rows = 6, vocab = 20;
  Vec logits = randomVec(rows * vocab, 3, -3.0, 3.0), mask = {1, 0, 1, 1, 0.5, 1};
  auto labels = randomIds(rows, 4, std::int32_t(vocab));
  double loss;
  Vec lse(rows), dlogits(logits.size());
  ASSERT_TRUE(crossEntropyForward(CrossEntropyShape{rows, vocab}, logits.data(), labels.data(), mask.data(), &loss,
                                  lse.data())
                  .ok());
  ASSERT_TRUE(crossEntropyBackward(CrossEntropyShape{rows, vocab}, logits.data(), labels.data(), mask.data(),
                                   lse.data(), 1.0, dlogits.data())
                  .ok());
  double shardedLoss;
  Vec gathered(logits.size());
  Vec shardedLse = shardedCrossEntropy(rows, vocab, 4, logits, labels, mask.data(), 1.0, shardedLoss, gathered);
  EXPECT_NEAR(shardedLoss, loss, 1e-13 * std::fabs(loss));
  EXPECT_LT(scaledError(shardedLse, lse), 1e-13);
  EXPECT_LT(scaledError(gathered, dlogits), 1e-13);
}

TEST(TensorParallel, VocabParallelCrossEntropyReportsLabelsOutsideTheFullVocabulary) {
  const Index rows = 4, vocab = 10;
  VecF logits = toFloat(randomVec(rows * vocab / 2, 1)), mask = {1, 1, 0, 1}, rowMax(rows, 0.0f);
  for (std::int32_t bad : {10, -1, 1 << 30}) {
    std::vector<std::int32_t> labels = {7, bad, bad, 2}; // row 2's label is not read (mask 0)
    for (Index r = 0; r < 2; ++r) {
      CrossEntropyShape s{rows, vocab / 2, r * (vocab / 2), vocab};
      VecF partial(2 * rows, 7.0f), dlogits(logits.size(), 7.0f);
      for (IndexStatus status :
           {crossEntropyPartialSums(s, logits.data(), labels.data(), mask.data(), rowMax.data(), partial.data()),
            crossEntropyBackward(s, logits.data(), labels.data(), mask.data(), rowMax.data(), 1.0f,
                                 dlogits.data())}) {
        EXPECT_EQ(status.position, 1);
        EXPECT_EQ(status.value, bad);
        EXPECT_EQ(status.limit, vocab) << "the message names the full vocabulary";
      }
      EXPECT_EQ(partial, VecF(partial.size(), 7.0f)) << "nothing is written on failure";
      EXPECT_EQ(dlogits, VecF(dlogits.size(), 7.0f));
    }
  }
}

//===----------------------------------------------------------------------===//
// The bias of a row-parallel linear
//===----------------------------------------------------------------------===//

TEST(TensorParallel, AddBiasBroadcastsOverRows) {
  const Index rows = 6, cols = 5;
  Vec x = randomVec(rows * cols, 1), bias = randomVec(cols, 2), y(x.size());
  addBias(rows, cols, x.data(), bias.data(), y.data());
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c)
      EXPECT_EQ(y[r * cols + c], x[r * cols + c] + bias[c]);
  addBias(rows, cols, x.data(), bias.data(), x.data()); // in place
  EXPECT_EQ(x, y);
}

} // namespace
