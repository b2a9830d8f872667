//===- Kernels.h - CPU forward and backward kernels of the mt ops -*- C++ -*-===//
//
// The CPU backend's kernel library: the forward and backward of every mt op, AdamW and the gradient-norm
// helpers. megatron-run calls them from a compiled plan; docs/cpu-kernels.md is the manual (semantics, saved
// tensors, workspaces, the dropout RNG, threading and determinism).
//
// Conventions shared by every kernel:
// - Tensors are contiguous and row-major; a kernel gets raw pointers and a plain shape struct. Shapes are
//   trusted (the plan was checked when it was compiled); data that is used as an index is not (IndexStatus).
// - Every kernel is a template on the element type T, instantiated for float (training) and double (the
//   finite-difference tests).
// - Backward kernels ACCUMULATE into parameter gradients (dW += ...), so that micro-batches accumulate, and
//   OVERWRITE activation gradients (dx = ...). Each declaration says which of its outputs is which.
// - Kernels allocate nothing. The few that need scratch memory take a caller-provided workspace whose size a
//   function states, so that the compile-time memory planner can place every buffer.
// - Kernels run on the calling thread's OpenMP team of numThreads() threads, GEMMs included (OpenBLAS runs
//   single-threaded on blocks the team splits). For a given thread count the results are bitwise identical from
//   run to run: reductions run in a fixed order, never through atomics. Several threads may run kernels at once
//   (tensor-parallel ranks), each with its own team.
//
// Never include MLIR or LLVM here: the runtime is MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CPU_KERNELS_H
#define MEGATRON_RUNTIME_CPU_KERNELS_H

#include <cstdint>
#include <string>

namespace megatron::cpu {

/// Element counts and indices.
using Index = std::int64_t;

//===----------------------------------------------------------------------===//
// Threads
//===----------------------------------------------------------------------===//

/// Sets the number of threads of every kernel that the calling thread runs: its OpenMP team size (a setting of
/// the calling thread, so each tensor-parallel rank sets its own). n < 1 means 1. The first call also makes
/// OpenBLAS single-threaded for the process: the kernels' GEMMs run on the OpenMP team (Threads.cpp).
void setNumThreads(int n);
/// The calling thread's thread count (OpenMP's max threads).
int numThreads();

/// The name of the GEMM kernels OpenBLAS chose ("SkylakeX", "Haswell", ...): what it detected, or what
/// OPENBLAS_CORETYPE forced.
std::string blasCore();
/// A warning when those kernels leave AVX-512 unused on a CPU that has it (OPENBLAS_CORETYPE=Haswell is set on
/// some machines; it makes the GEMMs, most of a step, about 45% slower), or "" when they fit the CPU.
/// `coreType` is OPENBLAS_CORETYPE's value, or null when it is unset.
std::string blasCoreWarning(const std::string &core, bool cpuHasAvx512, const char *coreType);
/// blasCoreWarning for this process and machine.
std::string blasCoreWarning();

//===----------------------------------------------------------------------===//
// Data-dependent indices
//===----------------------------------------------------------------------===//

/// The result of a kernel that indexes with data (embedding ids, labels). On failure the kernel has written
/// nothing: the runtime turns the status into an error message naming the tensor, the position and the value.
struct IndexStatus {
  Index position = -1;    ///< flat position of the first out-of-range entry; -1 when every entry is valid
  std::int64_t value = 0; ///< that entry's value
  Index limit = 0;        ///< the valid range, [0, limit)
  bool ok() const { return position < 0; }
};

//===----------------------------------------------------------------------===//
// Elementwise: residual add, gradient fan-in, scaling (Elementwise.cpp)
//===----------------------------------------------------------------------===//

/// out = a + b (mt.add). out may alias a or b. Its backward is the identity for both operands: no kernel.
template <typename T> void add(Index n, const T *a, const T *b, T *out);
/// dst += src: sums the gradients of a value used more than once (fan-out in the forward).
template <typename T> void accumulate(Index n, const T *src, T *dst);
/// x *= factor (gradient clipping, loss scaling).
template <typename T> void scale(Index n, T factor, T *x);
/// Mixed precision on f32 storage (Precision.cpp): x rounded to the nearest bf16 / IEEE fp16 value, ties to
/// even, as a GPU's 16-bit store rounds; fp16 overflows to infinity above 65504 and has subnormals down to 2^-24.
float roundToBf16(float x);
float roundToF16(float x);
void roundToBf16(Index n, float *x);
void roundToF16(Index n, float *x);
/// dst = src (split_heads / merge_heads are views; a copy when the plan needs one). No overlap.
template <typename T> void copy(Index n, const T *src, T *dst);
/// x = 0 (clearing gradient buffers before a step's first micro-batch).
template <typename T> void fillZero(Index n, T *x);
/// x = value (mt.fill: the loss gradient's seed).
template <typename T> void fill(Index n, T value, T *x);

//===----------------------------------------------------------------------===//
// Activations (Activations.cpp)
//===----------------------------------------------------------------------===//

/// mt.gelu's approximation attribute.
enum class GeluApproximation { None, Tanh };

/// y = gelu(x): Tanh is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), None is 0.5·x·(1 + erf(x/√2)).
/// y may alias x. Saved for backward: x.
template <typename T> void geluForward(Index n, GeluApproximation approx, const T *x, T *y);
/// dx = dy · gelu'(x) (overwrite). dx may alias dy.
template <typename T> void geluBackward(Index n, GeluApproximation approx, const T *x, const T *dy, T *dx);

/// SwiGLU on x[rows, 2·ffn] -> y[rows, ffn]: y = silu(x[:, :ffn]) · x[:, ffn:], silu(a) = a·sigmoid(a).
struct SwigluShape {
  Index rows = 0;
  Index ffn = 0;
};
/// Saved for backward: x.
template <typename T> void swigluForward(const SwigluShape &shape, const T *x, T *y);
/// dx[rows, 2·ffn] (overwrite) from dy[rows, ffn].
template <typename T> void swigluBackward(const SwigluShape &shape, const T *x, const T *dy, T *dx);

//===----------------------------------------------------------------------===//
// Dropout and its counter-based RNG (Random.cpp)
//===----------------------------------------------------------------------===//

/// Philox4x32-10 (Salmon et al., SC'11), the Random123 reference: out = philox(counter, key).
void philox4x32x10(const std::uint32_t counter[4], const std::uint32_t key[2], std::uint32_t out[4]);
/// The 32 random bits of element `index` of stream `stream` under `seed`: word index % 4 of
/// philox4x32x10(counter = {index/4 low, index/4 high, stream low, stream high}, key = {seed low, seed high}).
std::uint32_t randomBits(std::uint64_t seed, std::uint64_t stream, std::uint64_t index);
/// randomBits(...) / 2^32, uniform in [0, 1).
double randomUniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index);

/// An inverted dropout: element i is kept iff randomUniform(seed, stream, i) >= rate, and kept elements are
/// scaled by 1/(1 - rate). Stateless: forward and backward regenerate the same mask from (seed, stream), so no
/// mask is stored. Every dropout op of a step needs its own stream (or seed). rate 0 is the identity.
///
/// Under tensor or sequence parallelism a rank applies the op to its shard of a larger tensor. The shard's
/// elements then draw the random bits of their index in the FULL tensor, so that t ranks together draw exactly
/// the mask of the unsharded op (and a run's masks do not depend on its parallel layout). A shard that is a
/// contiguous 1/t of the full tensor along one dimension is, flattened, `outer` runs of localChunk elements,
/// run o starting at full index o·fullChunk + offset:
///   full index of local element o·localChunk + i  =  o·fullChunk + offset + i,   0 <= i < localChunk.
/// localChunk = 0 (the default) is the identity: the tensor is not sharded.
struct DropoutShard {
  std::uint64_t localChunk = 0;
  std::uint64_t fullChunk = 0;
  std::uint64_t offset = 0;
  std::uint64_t fullIndex(std::uint64_t local) const {
    return localChunk == 0 ? local : local / localChunk * fullChunk + offset + local % localChunk;
  }
};
/// The shard of rank `rank` of `size` along one dimension: localChunk = (the shard's extent of that dimension) ·
/// (the product of the dimensions after it); fullChunk = size·localChunk, offset = rank·localChunk.
DropoutShard dropoutShard(Index localChunk, Index rank, Index size);

struct DropoutConfig {
  double rate = 0.0;
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  DropoutShard shard; ///< identity unless the op runs on a shard
};
/// The stream of one dropout op in one micro-batch: mt.dropout's mask is a function of the run's seed, the
/// iteration, the micro-batch and the op's rng_stream. Packs them without collision:
/// iteration·2^32 + microBatch·2^16 + rngStream, for iteration < 2^32, microBatch < 2^16, rngStream < 2^16.
std::uint64_t dropoutStream(std::uint64_t iteration, std::uint64_t microBatch, std::uint64_t rngStream);
/// Whether (local) element `index` is kept.
bool dropoutKeeps(const DropoutConfig &config, std::uint64_t index);
/// y = x · keep / (1 - rate). y may alias x. Saved for backward: nothing (the mask is regenerated).
template <typename T> void dropoutForward(Index n, const DropoutConfig &config, const T *x, T *y);
/// dx = dy · keep / (1 - rate) (overwrite). dx may alias dy.
template <typename T> void dropoutBackward(Index n, const DropoutConfig &config, const T *dy, T *dx);
/// y = residual + dropout(x) in one pass (mt.dropout_add). When the op computes in 16 bits, `round`
/// (roundToBf16 or roundToF16) rounds the dropout's values first, as the unfused pair stored its intermediate, so
/// the result is the pair's bit for bit. y may alias x or residual.
template <typename T>
void dropoutAdd(Index n, const DropoutConfig &config, const T *x, const T *residual, T *y,
                void (*round)(Index, T *) = nullptr);

//===----------------------------------------------------------------------===//
// Embeddings: token lookup, learned absolute positions, T5's relative position bias (Embeddings.cpp)
//===----------------------------------------------------------------------===//

/// mt.embedding: out[tokens, hidden] = table[ids[tokens], :], table [vocab, hidden]. tokens is the product of
/// the ids' dimensions.
///
/// Vocabulary-parallel (tensor parallelism, Megatron's VocabParallelEmbedding): the table holds rows
/// [vocabOffset, vocabOffset + vocab) of a vocabulary of fullVocab ids. An id of another rank's rows gives a zero
/// row (the ranks' outputs are then summed by an all-reduce) and contributes nothing to dtable. fullVocab = 0
/// means vocab (the table is whole).
struct EmbeddingShape {
  Index tokens = 0;
  Index vocab = 0; ///< rows of the (local) table
  Index hidden = 0;
  Index vocabOffset = 0; ///< the id of the table's row 0
  Index fullVocab = 0;   ///< ids must lie in [0, fullVocab); 0 = vocab
  Index idLimit() const { return fullVocab > 0 ? fullVocab : vocab; }
};
/// Fails (writing nothing) on the first id outside [0, idLimit()). Saved for backward: ids.
template <typename T>
IndexStatus embeddingForward(const EmbeddingShape &shape, const std::int32_t *ids, const T *table, T *out);
/// dtable[vocab, hidden] += Σ over tokens t with ids[t] = vocabOffset + v of dout[t] (accumulate, in token order).
template <typename T>
IndexStatus embeddingBackward(const EmbeddingShape &shape, const std::int32_t *ids, const T *dout, T *dtable);

/// mt.add_position_embedding: out[b, s, :] = x[b, s, :] + table[positionOffset + s, :], table [maxPositions,
/// hidden]. positionOffset is 0 unless x is one rank's chunk [positionOffset, positionOffset + seq) of the
/// sequence (sequence parallelism; the table is whole on every rank).
struct PositionEmbeddingShape {
  Index batch = 0;
  Index seq = 0;
  Index hidden = 0;
  Index maxPositions = 0;   ///< rows of the table; positionOffset + seq <= maxPositions
  Index positionOffset = 0; ///< the position of x's sequence index 0
};
/// out may alias x. Saved for backward: nothing.
template <typename T>
void positionEmbeddingForward(const PositionEmbeddingShape &shape, const T *x, const T *table, T *out);
/// dx = dout (overwrite; pass dx = nullptr when the plan aliases dx to dout) and
/// dtable[positionOffset + s, :] += Σ_b dout[b, s, :] (accumulate; the other rows untouched).
template <typename T>
void positionEmbeddingBackward(const PositionEmbeddingShape &shape, const T *dout, T *dx, T *dtable);

/// T5's bucket of a relative position `relative = key - query`, exactly as HF transformers'
/// T5Attention._relative_position_bucket (and Megatron-core's copy of it), including its float32 logarithm.
std::int32_t t5RelativePositionBucket(std::int64_t relative, bool bidirectional, std::int64_t numBuckets,
                                      std::int64_t maxDistance);

/// mt.relative_position_bias: bias[heads, querySeq, keySeq] = table[bucket(k - q), head], table
/// [numBuckets, heads].
struct RelativePositionBiasShape {
  Index heads = 0;
  Index querySeq = 0;
  Index keySeq = 0;
  Index numBuckets = 0;
  Index maxDistance = 0;
  bool bidirectional = true;
};
/// Workspace of both directions, in int32 elements: one bucket per distance, querySeq + keySeq - 1.
Index relativePositionBiasWorkspaceSize(const RelativePositionBiasShape &shape);
/// Saved for backward: nothing.
template <typename T>
void relativePositionBiasForward(const RelativePositionBiasShape &shape, const T *table, T *bias,
                                 std::int32_t *workspace);
/// dtable[bucket, head] += Σ of dbias[head, q, k] over the (q, k) in that bucket (accumulate).
template <typename T>
void relativePositionBiasBackward(const RelativePositionBiasShape &shape, const T *dbias, T *dtable,
                                  std::int32_t *workspace);

//===----------------------------------------------------------------------===//
// Rotary position embedding (Rope.cpp)
//===----------------------------------------------------------------------===//

/// mt.rope on x[batch, seq, heads, headDim]: for i < rotaryDim/2, channels i and i + rotaryDim/2 of each head are
/// rotated by the angle pos · base^(-2i/rotaryDim), pos = the sequence index (non-interleaved, Megatron/LLaMA):
///   y[i] = x[i]·cos − x[i + r/2]·sin,  y[i + r/2] = x[i + r/2]·cos + x[i]·sin.
/// Channels >= rotaryDim pass through. Angles are computed in double.
struct RopeShape {
  Index batch = 0;
  Index seq = 0;
  Index heads = 0;
  Index headDim = 0;
  Index rotaryDim = 0; ///< even, <= headDim
  double base = 10000.0;
};
/// y may alias x. Saved for backward: nothing.
template <typename T> void ropeForward(const RopeShape &shape, const T *x, T *y);
/// dx = rotation of dy by the negative angles (overwrite). dx may alias dy.
template <typename T> void ropeBackward(const RopeShape &shape, const T *dy, T *dx);

//===----------------------------------------------------------------------===//
// Norms (Norms.cpp)
//===----------------------------------------------------------------------===//

/// x[rows, hidden], statistics over the last dimension; weight and bias are [hidden].
struct NormShape {
  Index rows = 0;
  Index hidden = 0;
};
/// mt.layer_norm: y = (x − mean)·rstd·weight + bias, rstd = 1/sqrt(var + eps), biased variance.
/// Saved for backward: x, mean[rows], rstd[rows] (written here).
template <typename T>
void layerNormForward(const NormShape &shape, double eps, const T *x, const T *weight, const T *bias, T *y, T *mean,
                      T *rstd);
/// dx (overwrite), dweight += Σ_rows dy·x̂, dbias += Σ_rows dy (accumulate). dx must not alias x or dy.
template <typename T>
void layerNormBackward(const NormShape &shape, const T *x, const T *weight, const T *mean, const T *rstd,
                       const T *dy, T *dx, T *dweight, T *dbias);

/// mt.rms_norm: y = x·rstd·weight, rstd = 1/sqrt(mean(x²) + eps). Saved for backward: x, rstd[rows].
template <typename T>
void rmsNormForward(const NormShape &shape, double eps, const T *x, const T *weight, T *y, T *rstd);
/// dx (overwrite), dweight += Σ_rows dy·x·rstd (accumulate). dx must not alias x or dy.
template <typename T>
void rmsNormBackward(const NormShape &shape, const T *x, const T *weight, const T *rstd, const T *dy, T *dx,
                     T *dweight);

//===----------------------------------------------------------------------===//
// Linear layers (Linear.cpp)
//===----------------------------------------------------------------------===//

/// mt.linear: y[rows, out] = x[rows, in] · weightᵀ + bias, weight [out, in], bias [out] or null.
struct LinearShape {
  Index rows = 0;
  Index in = 0;
  Index out = 0;
};
/// Saved for backward: x (for the weight gradient) and the weight (for the input gradient).
template <typename T> void linearForward(const LinearShape &shape, const T *x, const T *weight, const T *bias, T *y);
/// dx = dy · weight. Overwrites dx, or with accumulate = true adds to it (a free fan-in: the GEMM's beta).
template <typename T>
void linearBackwardInput(const LinearShape &shape, const T *dy, const T *weight, T *dx, bool accumulate = false);
/// mt.linear_gelu: pre = x · weightᵀ + bias (linearForward), then y = gelu(pre) with the tanh approximation, in
/// one call. When the op computes in 16 bits, `round` (roundToBf16 or roundToF16) rounds pre before the GeLU, as
/// the unfused linear stored it, so both results are the pair's bit for bit.
template <typename T>
void linearGeluForward(const LinearShape &shape, const T *x, const T *weight, const T *bias, T *pre, T *y,
                       void (*round)(Index, T *) = nullptr);
/// mt.linear_grad_input_gelu: dpre = (dy · weight) · gelu'(pre), tanh approximation (overwrite); `round` rounds the
/// product first, as linearGeluForward does pre.
template <typename T>
void linearBackwardInputGelu(const LinearShape &shape, const T *dy, const T *weight, const T *pre, T *dpre,
                             void (*round)(Index, T *) = nullptr);
/// dweight += dyᵀ · x (accumulate).
template <typename T> void linearBackwardWeight(const LinearShape &shape, const T *dy, const T *x, T *dweight);
/// dst[cols] += Σ_r src[r, :] over rows (mt.sum_rows: bias gradients), rows summed in order (accumulate).
template <typename T> void sumRows(Index rows, Index cols, const T *src, T *dst);
/// dbias += Σ_rows dy (accumulate); the same as sumRows(rows, out, dy, dbias).
template <typename T> void linearBackwardBias(const LinearShape &shape, const T *dy, T *dbias);
/// mt.add_bias: y[rows, cols] = x + bias[cols] on every row. The bias of a row-parallel linear, added once after
/// the partial products are all-reduced. Its backward is the identity for x and sumRows for the bias. y may
/// alias x.
template <typename T> void addBias(Index rows, Index cols, const T *x, const T *bias, T *y);

/// mt.pooler: y[batch, out] = tanh(x[batch, 0, :] · weightᵀ + bias), x [batch, seq, hidden], weight [out, hidden].
struct PoolerShape {
  Index batch = 0;
  Index seq = 0;
  Index hidden = 0;
  Index out = 0;
};
/// Saved for backward: x, and y itself (tanh' = 1 − y²).
template <typename T> void poolerForward(const PoolerShape &shape, const T *x, const T *weight, const T *bias, T *y);
/// Workspace of poolerBackward, in elements of T: batch·out.
Index poolerBackwardWorkspaceSize(const PoolerShape &shape);
/// dx (overwrite: only token 0 of each sequence is non-zero), dweight += and dbias += (accumulate).
template <typename T>
void poolerBackward(const PoolerShape &shape, const T *x, const T *weight, const T *y, const T *dy, T *dx,
                    T *dweight, T *dbias, T *workspace);

//===----------------------------------------------------------------------===//
// Attention heads: fused QKV / KV projections to heads and back (Heads.cpp)
//===----------------------------------------------------------------------===//

/// mt.split_qkv: x[tokens, (heads + 2·groups)·headDim] -> q[tokens, heads, headDim], k, v[tokens, groups,
/// headDim]. Megatron's layout: group j holds its heads/groups query heads, then its key head, then its value
/// head. tokens = batch·seq.
struct QkvShape {
  Index tokens = 0;
  Index heads = 0;
  Index groups = 0;
  Index headDim = 0;
};
template <typename T> void splitQkvForward(const QkvShape &shape, const T *x, T *q, T *k, T *v);
/// The backward is the merge: dx (overwrite) from dq, dk, dv.
template <typename T> void splitQkvBackward(const QkvShape &shape, const T *dq, const T *dk, const T *dv, T *dx);

/// mt.split_kv: x[tokens, 2·groups·headDim] -> k, v[tokens, groups, headDim], group by group (key, value).
/// Uses QkvShape with heads ignored.
template <typename T> void splitKvForward(const QkvShape &shape, const T *x, T *k, T *v);
template <typename T> void splitKvBackward(const QkvShape &shape, const T *dk, const T *dv, T *dx);

//===----------------------------------------------------------------------===//
// Core attention (Attention.cpp)
//===----------------------------------------------------------------------===//

/// mt.attention's mask_type attribute (same order as the dialect's enum).
enum class AttentionMask { Causal, Bidirectional, Padding };

/// q[batch, querySeq, heads, headDim], k and v [batch, keySeq, groups, headDim]; query head h reads key/value
/// head h / (heads/groups). out[batch, querySeq, heads, headDim].
struct AttentionShape {
  Index batch = 0;
  Index querySeq = 0;
  Index keySeq = 0;
  Index heads = 0;
  Index groups = 0;
  Index headDim = 0;
};

struct AttentionConfig {
  AttentionMask mask = AttentionMask::Causal; ///< Causal needs querySeq == keySeq: key j is seen by query i iff j <= i
  double softmaxScale = 1.0;
  /// Dropout of the probabilities. Element (b, h, i, j) of the [batch, heads, querySeq, keySeq] probabilities
  /// uses index ((b·heads + h)·querySeq + i)·keySeq + j of the stream. When the heads are this rank's share
  /// [offset, offset + heads) of heads·t query heads (tensor parallelism), dropout.shard =
  /// dropoutShard(heads·querySeq·keySeq, rank, t) makes that ((b·heads·t + h + offset)·querySeq + i)·keySeq + j,
  /// the index of the unsharded op.
  DropoutConfig dropout;
};

/// Workspace of attentionForward and attentionBackward, in elements of T, for up to `threads` threads: three
/// score tiles of at most 128 query rows × keySeq per thread. A kernel given less uses fewer threads.
Index attentionWorkspaceSize(const AttentionShape &shape, int threads);

/// out = dropout(softmax(scale·q·kᵀ + bias + mask)) · v per (batch, head), mask from config.mask and, for Padding,
/// padMask[batch, keySeq] (non-zero = attend; null for the other masks). bias [heads, querySeq, keySeq] or null.
/// A query that sees no key (a fully padded row) gets out = 0 and lse = −inf.
/// Saved for backward: q, k, v, padMask, bias, and lse[batch, heads, querySeq] (the log-sum-exp of each row of
/// scores, written here): the backward recomputes the probabilities from them (flash-attention style).
template <typename T>
void attentionForward(const AttentionShape &shape, const AttentionConfig &config, const T *q, const T *k, const T *v,
                      const std::int32_t *padMask, const T *bias, T *out, T *lse, T *workspace,
                      Index workspaceSize);
/// dq, dk, dv (overwrite; dk and dv sum over the query heads of a group) and, when bias is given, dbias
/// [heads, querySeq, keySeq] (overwrite; summed over the batch). dbias may be null when bias is.
template <typename T>
void attentionBackward(const AttentionShape &shape, const AttentionConfig &config, const T *q, const T *k,
                       const T *v, const std::int32_t *padMask, const T *bias, const T *lse, const T *dout, T *dq,
                       T *dk, T *dv, T *dbias, T *workspace, Index workspaceSize);

//===----------------------------------------------------------------------===//
// Loss (Loss.cpp)
//===----------------------------------------------------------------------===//

/// mt.cross_entropy: logits[rows, vocab], labels[rows], optional lossMask[rows]:
///   loss = Σ_r mask_r·(lse_r − logits[r, labels_r]) / Σ_r mask_r    (the plain mean over rows without a mask)
/// Σ mask = 0 gives loss 0 and zero gradients. Labels are only read where the mask is non-zero (Megatron's BERT
/// labels are −1 where the loss mask is 0); a label read outside [0, vocab) fails the kernel.
///
/// Vocabulary-parallel (tensor parallelism, Megatron's vocab_parallel_cross_entropy): the logits are columns
/// [vocabOffset, vocabOffset + vocab) of fullVocab; labels lie in [0, fullVocab). fullVocab = 0 means vocab.
struct CrossEntropyShape {
  Index rows = 0;
  Index vocab = 0;       ///< columns of the (local) logits
  Index vocabOffset = 0; ///< the label of column 0
  Index fullVocab = 0;   ///< labels must lie in [0, fullVocab); 0 = vocab
  Index labelLimit() const { return fullVocab > 0 ? fullVocab : vocab; }
};
/// Writes *loss (the sum runs over the rows in order, in double) and lse[rows], saved for backward with the
/// logits, labels and mask. The logits must be whole (not vocabulary-parallel: see the phases below).
template <typename T>
IndexStatus crossEntropyForward(const CrossEntropyShape &shape, const T *logits, const std::int32_t *labels,
                                const T *lossMask, T *loss, T *lse);
/// dlogits = (softmax − onehot(label − vocabOffset))·mask_r/Σmask·dloss (overwrite); softmax = exp(z − lse) with
/// the lse of the full rows, and the one-hot only where the label is one of this shard's columns. Needs no
/// communication when the logits are vocabulary-parallel.
template <typename T>
IndexStatus crossEntropyBackward(const CrossEntropyShape &shape, const T *logits, const std::int32_t *labels,
                                 const T *lossMask, const T *lse, T dloss, T *dlogits);

/// The vocabulary-parallel forward, in three phases that the runtime joins with two all-reduces over the
/// tensor-parallel group (ranks in rank order):
///   (a) crossEntropyRowMax         -> rowMax[rows];          all-reduce (max) rowMax
///   (b) crossEntropyPartialSums    -> partial[rows, 2];      all-reduce (sum) partial
///   (c) crossEntropyFinish         -> *loss, lse[rows]
/// One rank (fullVocab = vocab) gives crossEntropyForward's loss and lse to rounding.
///
/// (a) rowMax[r] = max_j logits[r, j] over the local columns.
template <typename T> void crossEntropyRowMax(const CrossEntropyShape &shape, const T *logits, T *rowMax);
/// (b) Given the global row maxima: partial[r, 0] = Σ_j exp(logits[r, j] − rowMax[r]) over the local columns;
/// partial[r, 1] = logits[r, label_r − vocabOffset] when the row's label is read (mask non-zero) and is a local
/// column, else 0. One [rows, 2] array so that one all-reduce sums both. Fails (writing nothing) on a label read
/// outside [0, labelLimit()); the labels are the same on every rank, so every rank fails here, before the
/// second all-reduce.
template <typename T>
IndexStatus crossEntropyPartialSums(const CrossEntropyShape &shape, const T *logits, const std::int32_t *labels,
                                    const T *lossMask, const T *rowMax, T *partial);
/// (c) Given the summed partials: lse[r] = rowMax[r] + log(partial[r, 0]) and
/// *loss = Σ_r mask_r·(lse[r] − partial[r, 1]) / Σ mask (in double, rows in order; 0 when Σ mask = 0). lse may
/// alias rowMax.
template <typename T>
void crossEntropyFinish(Index rows, const T *rowMax, const T *partial, const T *lossMask, T *loss, T *lse);

//===----------------------------------------------------------------------===//
// Optimizer (Optimizer.cpp)
//===----------------------------------------------------------------------===//

/// torch.optim.AdamW's hyper-parameters. step is the 1-based step count after this update (torch's state["step"]).
struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.01;
  std::int64_t step = 1;
};
/// One AdamW step of one tensor, exactly as torch.optim.AdamW (single-tensor, decoupled decay):
///   p *= 1 − lr·wd (when decay);  m = lerp(m, g, 1 − β1);  v = β2·v + (1 − β2)·g²;
///   p −= lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps).
/// Updates param, m and v in place; grad is read only.
template <typename T>
void adamwStep(Index n, const AdamWConfig &config, bool decay, T *param, const T *grad, T *m, T *v);

/// Σ x² accumulated in double.
template <typename T> double sumOfSquares(Index n, const T *x);
/// The global L2 norm sqrt(Σ_tensors Σ x²) over `count` tensors (accumulated in double, tensors in list order).
template <typename T> double globalNorm(int count, const T *const *tensors, const Index *sizes);
/// Scales every tensor by factor (--clip-grad: factor = clip / (norm + 1e-6) when norm > clip).
template <typename T> void scaleTensors(int count, T *const *tensors, const Index *sizes, T factor);

} // namespace megatron::cpu

#endif // MEGATRON_RUNTIME_CPU_KERNELS_H
