//===- StepBinder.cpp - Plan steps to CPU kernel calls ---------------------===//
//
// One case per step op. Each reads its dimensions from the buffers' shapes and its settings from the step's
// attributes once, at load time, and returns a closure over raw pointers. The kernels' contracts (what
// accumulates, what is saved) are in runtime/cpu/Kernels.h; the plan's are in docs/plan.md.
//
//===----------------------------------------------------------------------===//

#include "StepBinder.h"
#include "StepView.h"

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <type_traits>

namespace megatron::runtime {

namespace {

std::string indexError(const std::string &where, const char *what, const cpu::IndexStatus &status) {
  return where + ": " + what + " " + std::to_string(status.value) + " at position " +
         std::to_string(status.position) + " is outside [0, " + std::to_string(status.limit) + ")";
}

cpu::AttentionMask maskOf(const std::string &name) {
  if (name == "causal")
    return cpu::AttentionMask::Causal;
  if (name == "padding")
    return cpu::AttentionMask::Padding;
  return cpu::AttentionMask::Bidirectional;
}

cpu::AttentionShape attentionShape(const std::vector<int64_t> &q, const std::vector<int64_t> &k) {
  return {q[0], q[1], k[1], q[2], k[2], q[3]};
}

/// A vocabulary split evenly over the tensor-parallel group (vocab_shard, vocab_parallel): this rank's local
/// `vocab` ids start at tpRank·vocab. For EmbeddingShape and CrossEntropyShape.
template <typename Shape> void shardVocab(Shape &shape, const ParallelRank &rank) {
  shape.vocabOffset = shape.vocab * rank.tpRank;
  shape.fullVocab = shape.vocab * rank.tpSize;
}


/// How a fused kernel rounds its intermediate so that it computes what the unfused pair did, which stored it in
/// the op's type: roundToBf16 or roundToF16 for a 16-bit `dtype`, null otherwise (and always in the f64 engine).
template <typename T> using Rounding = void (*)(Index, T *);
template <typename T> Rounding<T> intermediateRounding(plan::DType dtype) {
  if constexpr (std::is_same_v<T, float>) {
    if (dtype == plan::DType::BF16)
      return static_cast<Rounding<float>>(&cpu::roundToBf16);
    if (dtype == plan::DType::F16)
      return static_cast<Rounding<float>>(&cpu::roundToF16);
  }
  return nullptr;
}

/// The attention-dropout shard of head_shard: this rank's heads are [tpRank·heads, (tpRank + 1)·heads) of the
/// unsharded op's, so each (batch) run of heads·querySeq·keySeq probabilities moves into place.
cpu::DropoutShard headShard(const cpu::AttentionShape &shape, const ParallelRank &rank) {
  Index chunk = shape.heads * shape.querySeq * shape.keySeq;
  return chunk > 0 ? cpu::dropoutShard(chunk, rank.tpRank, rank.tpSize) : cpu::DropoutShard();
}

/// The cross_entropy step with vocab_parallel: the kernel's three phases joined by the group's two all-reduces
/// (row maxima, then the [rows, 2] sums of exp and target logits). The row maxima live in lse until the last
/// phase overwrites them with the log-sum-exp; the sums live in the kernel workspace.
template <typename T> struct VocabParallelCrossEntropy {
  Engine *engine;
  std::string where;
  cpu::CrossEntropyShape shape;
  const T *logits;
  const std::int32_t *labels;
  const T *mask;
  T *loss, *lse, *partial;

  std::string reduce(T *data, Index count, bool max) const {
    if (!engine->allReduce)
      return std::string();
    std::string error = engine->allReduce(data, count, dtypeOf<T>(), max);
    return error.empty() ? error : where + ": " + error;
  }

  std::string operator()(const RunContext &) const {
    if (!engine->allReduce && engine->parallelRank().tpSize > 1)
      return where + ": vocab-parallel cross-entropy over " + std::to_string(engine->parallelRank().tpSize) +
             " ranks needs the engine's all-reduce, and it has none";
    cpu::crossEntropyRowMax(shape, logits, lse);
    if (std::string error = reduce(lse, shape.rows, /*max=*/true); !error.empty())
      return error;
    cpu::IndexStatus status = cpu::crossEntropyPartialSums(shape, logits, labels, mask, lse, partial);
    if (!status.ok())
      return indexError(where, "label", status);
    if (std::string error = reduce(partial, 2 * shape.rows, /*max=*/false); !error.empty())
      return error;
    cpu::crossEntropyFinish(shape.rows, lse, partial, mask, loss, lse);
    return std::string();
  }
};

} // namespace

std::int64_t StepBinder::workspaceBytes(const plan::Step &step) const {
  auto shape = [&](size_t i, bool output) -> const std::vector<int64_t> & {
    return engine.buffer(output ? step.outputs[i] : step.inputs[i]).shape;
  };
  int64_t elementBytes = 8; // enough for float and double
  if (step.op == "attention" || step.op == "attention_grad") {
    size_t q = step.op == "attention" ? 0 : 2;
    return cpu::attentionWorkspaceSize(attentionShape(shape(q, false), shape(q + 1, false)), cpu::numThreads()) *
           elementBytes;
  }
  if (step.op == "pooler_grad") {
    const auto &x = shape(2, false), &w = shape(3, false);
    return cpu::poolerBackwardWorkspaceSize({x[0], x[1], x[2], w[0]}) * elementBytes;
  }
  if (step.op == "cross_entropy" && flagOf(step, "vocab_parallel")) {
    // The vocab-parallel phases' [rows, 2] partial sums.
    const auto &logits = shape(0, false);
    int64_t vocab = logits.empty() ? 0 : logits.back();
    return vocab > 0 ? 2 * (engine.buffer(step.inputs[0]).numElements() / vocab) * elementBytes : 0;
  }
  if (step.op == "all_reduce_grads")
    return collectiveWorkspaceBytes(step);
  if (step.op == "relative_position_bias" || step.op == "relative_position_bias_grad") {
    const auto &bias = shape(0, step.op == "relative_position_bias");
    return static_cast<int64_t>(sizeof(std::int32_t)) *
           cpu::relativePositionBiasWorkspaceSize({bias[0], bias[1], bias[2], 0, 0, true});
  }
  return 0;
}

template <typename T>
std::optional<Engine::BoundStep> StepBinder::bind(const plan::Step &step, size_t index, const std::string &program,
                                                  std::string &error) {
  StepView<T> s{engine, step,
                "step " + std::to_string(index) + " of " + program + " (" + step.op +
                    (step.loc.empty() ? std::string() : " at '" + step.loc + "'") + ")",
                {}};
  T *workspace = reinterpret_cast<T *>(
      (reinterpret_cast<std::uintptr_t>(engine.workspaceStorage.data()) + plan::kAlignment - 1) /
      plan::kAlignment * plan::kAlignment);
  Index workspaceSize = static_cast<Index>((engine.workspaceStorage.size() - plan::kAlignment) / sizeof(T));
  std::function<std::string(const RunContext &)> run;
  const std::string &op = step.op;
  std::string where = s.where;
  const ParallelRank tp = engine.parallelRank();

  if (op == "fill") {
    T *y = s.out(0);
    Index n = s.outCount(0);
    double value = s.template required<double>("value");
    // The loss seed carries fp16's loss scale (RunContext::lossScale); every other fill is a constant.
    bool lossSeed = s.flag("loss_seed");
    run = [=](const RunContext &context) {
      std::fill(y, y + n, static_cast<T>(lossSeed ? value * context.lossScale : value));
      return std::string();
    };
  } else if (op == "cast") {
    // Storage is f32 either way on the CPU: a widening cast copies, a narrowing one copies and the engine rounds
    // the 16-bit output (Engine::roundSixteenBitOutputs).
    T *x = s.in(0), *y = s.out(0);
    Index n = s.outCount(0);
    run = [=](const RunContext &) {
      cpu::copy(n, x, y);
      return std::string();
    };
  } else if (op == "zero") {
    T *y = s.out(0);
    Index n = s.outCount(0);
    run = [=](const RunContext &) {
      cpu::fillZero(n, y);
      return std::string();
    };
  } else if (op == "accumulate") {
    T *src = s.in(0), *dst = s.out(0);
    Index n = s.inCount(0);
    run = [=](const RunContext &) {
      cpu::accumulate(n, src, dst);
      return std::string();
    };
  } else if (op == "add") {
    T *a = s.in(0), *b = s.in(1), *y = s.out(0);
    Index n = s.outCount(0);
    run = [=](const RunContext &) {
      cpu::add(n, a, b, y);
      return std::string();
    };
  } else if (op == "add_bias") {
    Index cols = s.inCount(1);
    Index rows = cols > 0 ? s.inCount(0) / cols : 0;
    T *x = s.in(0), *bias = s.in(1), *y = s.out(0);
    run = [=](const RunContext &) {
      cpu::addBias(rows, cols, x, bias, y);
      return std::string();
    };
  } else if (op == "embedding") {
    const std::int32_t *ids = s.inInt(0);
    T *table = s.in(1), *y = s.out(0);
    cpu::EmbeddingShape shape{s.inCount(0), s.inShape(1)[0], s.inShape(1)[1]};
    if (s.flag("vocab_shard"))
      shardVocab(shape, tp);
    run = [=](const RunContext &) {
      cpu::IndexStatus status = cpu::embeddingForward(shape, ids, table, y);
      return status.ok() ? std::string() : indexError(where, "token id", status);
    };
  } else if (op == "embedding_grad") {
    const std::int32_t *ids = s.inInt(0);
    T *dy = s.in(1), *dtable = s.out(0);
    cpu::EmbeddingShape shape{s.inCount(0), s.outShape(0)[0], s.outShape(0)[1]};
    if (s.flag("vocab_shard"))
      shardVocab(shape, tp);
    run = [=](const RunContext &) {
      cpu::IndexStatus status = cpu::embeddingBackward(shape, ids, dy, dtable);
      return status.ok() ? std::string() : indexError(where, "token id", status);
    };
  } else if (op == "add_position_embedding" || op == "position_embedding_grad") {
    bool forward = op == "add_position_embedding";
    const auto &xs = s.inShape(0);
    cpu::PositionEmbeddingShape shape{xs[0], xs[1], xs[2], (forward ? s.inShape(1) : s.outShape(0))[0]};
    // sequence_shard: x is this rank's chunk of the sequence, and the table is whole.
    if (s.flag("sequence_shard"))
      shape.positionOffset = shape.seq * tp.tpRank;
    if (shape.positionOffset + shape.seq > shape.maxPositions) {
      error = where + ": positions [" + std::to_string(shape.positionOffset) + ", " +
              std::to_string(shape.positionOffset + shape.seq) + ") are outside the table's " +
              std::to_string(shape.maxPositions) + " rows";
      return std::nullopt;
    }
    T *x = s.in(0), *table = forward ? s.in(1) : nullptr, *y = s.out(0);
    run = [=](const RunContext &) {
      if (forward)
        cpu::positionEmbeddingForward(shape, x, table, y);
      else
        cpu::positionEmbeddingBackward<T>(shape, x, nullptr, y);
      return std::string();
    };
  } else if (op == "relative_position_bias" || op == "relative_position_bias_grad") {
    bool forward = op == "relative_position_bias";
    const auto &bias = forward ? s.outShape(0) : s.inShape(0);
    cpu::RelativePositionBiasShape shape{bias[0], bias[1], bias[2], s.template required<int64_t>("num_buckets"),
                                         s.template required<int64_t>("max_distance"),
                                         s.template required<bool>("bidirectional")};
    T *in = s.in(0), *out = s.out(0);
    auto *buckets = reinterpret_cast<std::int32_t *>(workspace);
    run = [=](const RunContext &) {
      if (forward)
        cpu::relativePositionBiasForward(shape, in, out, buckets);
      else
        cpu::relativePositionBiasBackward(shape, in, out, buckets);
      return std::string();
    };
  } else if (op == "rope" || op == "rope_grad") {
    const auto &xs = s.inShape(0);
    cpu::RopeShape shape{xs[0], xs[1], xs[2], xs[3], s.template required<int64_t>("rotary_dim"),
                         s.template required<double>("base")};
    T *x = s.in(0), *y = s.out(0);
    bool forward = op == "rope";
    run = [=](const RunContext &) {
      if (forward)
        cpu::ropeForward(shape, x, y);
      else
        cpu::ropeBackward(shape, x, y);
      return std::string();
    };
  } else if (op == "layer_norm" || op == "rms_norm") {
    Index hidden = s.inShape(0).back();
    cpu::NormShape shape{s.inCount(0) / hidden, hidden};
    double eps = s.template required<double>("epsilon");
    T *x = s.in(0), *w = s.in(1), *y = s.out(0);
    if (op == "layer_norm") {
      T *b = s.in(2), *mean = s.out(1), *rstd = s.out(2);
      run = [=](const RunContext &) {
        cpu::layerNormForward(shape, eps, x, w, b, y, mean, rstd);
        return std::string();
      };
    } else {
      T *rstd = s.out(1);
      run = [=](const RunContext &) {
        cpu::rmsNormForward(shape, eps, x, w, y, rstd);
        return std::string();
      };
    }
  } else if (op == "layer_norm_grad") {
    Index hidden = s.inShape(1).back();
    cpu::NormShape shape{s.inCount(1) / hidden, hidden};
    T *dy = s.in(0), *x = s.in(1), *w = s.in(2), *mean = s.in(3), *rstd = s.in(4);
    T *dx = s.out(0), *dw = s.out(1), *db = s.out(2);
    run = [=](const RunContext &) {
      cpu::layerNormBackward(shape, x, w, mean, rstd, dy, dx, dw, db);
      return std::string();
    };
  } else if (op == "rms_norm_grad") {
    Index hidden = s.inShape(1).back();
    cpu::NormShape shape{s.inCount(1) / hidden, hidden};
    T *dy = s.in(0), *x = s.in(1), *w = s.in(2), *rstd = s.in(3), *dx = s.out(0), *dw = s.out(1);
    run = [=](const RunContext &) {
      cpu::rmsNormBackward(shape, x, w, rstd, dy, dx, dw);
      return std::string();
    };
  } else if (op == "linear") {
    const auto &w = s.inShape(1);
    cpu::LinearShape shape{s.inCount(0) / w[1], w[1], w[0]};
    T *x = s.in(0), *weight = s.in(1), *bias = step.inputs.size() > 2 ? s.in(2) : nullptr, *y = s.out(0);
    run = [=](const RunContext &) {
      cpu::linearForward(shape, x, weight, bias, y);
      return std::string();
    };
  } else if (op == "linear_grad_input") {
    const auto &w = s.inShape(1);
    cpu::LinearShape shape{s.inCount(0) / w[0], w[1], w[0]};
    T *dy = s.in(0), *weight = s.in(1), *dx = s.out(0);
    bool accumulate = s.accumulates(0);
    run = [=](const RunContext &) {
      cpu::linearBackwardInput(shape, dy, weight, dx, accumulate);
      return std::string();
    };
  } else if (op == "linear_gelu") {
    // --mt-fuse-elementwise's linear + tanh GeLU: outputs pre and the activation.
    const auto &w = s.inShape(1);
    cpu::LinearShape shape{s.inCount(0) / w[1], w[1], w[0]};
    T *x = s.in(0), *weight = s.in(1), *bias = step.inputs.size() > 2 ? s.in(2) : nullptr;
    T *pre = s.out(0), *y = s.out(1);
    Rounding<T> round = intermediateRounding<T>(engine.buffer(step.outputs[0]).dtype);
    run = [=](const RunContext &) {
      cpu::linearGeluForward(shape, x, weight, bias, pre, y, round);
      return std::string();
    };
  } else if (op == "linear_grad_input_gelu") {
    // --mt-fuse-elementwise's input gradient through the tanh GeLU. The compiler fuses only an input gradient
    // whose one use is the GeLU's gradient, which no parameter gradient accumulates into.
    if (s.accumulates(0)) {
      error = where + ": a fused input gradient through a GeLU cannot accumulate into its output";
      return std::nullopt;
    }
    const auto &w = s.inShape(1);
    cpu::LinearShape shape{s.inCount(0) / w[0], w[1], w[0]};
    T *dy = s.in(0), *weight = s.in(1), *pre = s.in(2), *dpre = s.out(0);
    Rounding<T> round = intermediateRounding<T>(engine.buffer(step.outputs[0]).dtype);
    run = [=](const RunContext &) {
      cpu::linearBackwardInputGelu(shape, dy, weight, pre, dpre, round);
      return std::string();
    };
  } else if (op == "linear_grad_weight") {
    const auto &dw = s.outShape(0);
    cpu::LinearShape shape{s.inCount(0) / dw[0], dw[1], dw[0]};
    T *dy = s.in(0), *x = s.in(1), *dweight = s.out(0);
    run = [=](const RunContext &) {
      cpu::linearBackwardWeight(shape, dy, x, dweight);
      return std::string();
    };
  } else if (op == "sum_rows") {
    Index out = s.outCount(0);
    cpu::LinearShape shape{s.inCount(0) / out, 0, out};
    T *dy = s.in(0), *db = s.out(0);
    run = [=](const RunContext &) {
      cpu::linearBackwardBias(shape, dy, db);
      return std::string();
    };
  } else if (op == "pooler" || op == "pooler_grad") {
    bool forward = op == "pooler";
    const auto &x = s.inShape(forward ? 0 : 2), &w = s.inShape(forward ? 1 : 3);
    cpu::PoolerShape shape{x[0], x[1], x[2], w[0]};
    if (forward) {
      T *xp = s.in(0), *wp = s.in(1), *bp = s.in(2), *y = s.out(0);
      run = [=](const RunContext &) {
        cpu::poolerForward(shape, xp, wp, bp, y);
        return std::string();
      };
    } else {
      T *dy = s.in(0), *y = s.in(1), *xp = s.in(2), *wp = s.in(3), *dx = s.out(0), *dw = s.out(1), *db = s.out(2);
      run = [=](const RunContext &) {
        cpu::poolerBackward(shape, xp, wp, y, dy, dx, dw, db, workspace);
        return std::string();
      };
    }
  } else if (op == "split_qkv" || op == "merge_qkv") {
    bool split = op == "split_qkv";
    const auto &q = split ? s.outShape(0) : s.inShape(0), &k = split ? s.outShape(1) : s.inShape(1);
    cpu::QkvShape shape{q[0] * q[1], q[2], k[2], q[3]};
    if (split) {
      T *x = s.in(0), *qp = s.out(0), *kp = s.out(1), *vp = s.out(2);
      run = [=](const RunContext &) {
        cpu::splitQkvForward(shape, x, qp, kp, vp);
        return std::string();
      };
    } else {
      T *dq = s.in(0), *dk = s.in(1), *dv = s.in(2), *dx = s.out(0);
      run = [=](const RunContext &) {
        cpu::splitQkvBackward(shape, dq, dk, dv, dx);
        return std::string();
      };
    }
  } else if (op == "split_kv" || op == "merge_kv") {
    bool split = op == "split_kv";
    const auto &k = split ? s.outShape(0) : s.inShape(0);
    cpu::QkvShape shape{k[0] * k[1], 0, k[2], k[3]};
    if (split) {
      T *x = s.in(0), *kp = s.out(0), *vp = s.out(1);
      run = [=](const RunContext &) {
        cpu::splitKvForward(shape, x, kp, vp);
        return std::string();
      };
    } else {
      T *dk = s.in(0), *dv = s.in(1), *dx = s.out(0);
      run = [=](const RunContext &) {
        cpu::splitKvBackward(shape, dk, dv, dx);
        return std::string();
      };
    }
  } else if (op == "attention" || op == "attention_grad") {
    bool forward = op == "attention";
    size_t first = forward ? 0 : 2; // attention_grad's inputs start with dout and out
    cpu::AttentionShape shape = attentionShape(s.inShape(first), s.inShape(first + 1));
    cpu::AttentionMask mask = maskOf(s.template required<std::string>("mask_type"));
    double scale = s.template required<double>("softmax_scale");
    double rate = s.template attr<double>("dropout", 0.0);
    std::uint64_t stream = static_cast<std::uint64_t>(s.template attr<int64_t>("rng_stream", 0));
    size_t next = first + 3;
    const std::int32_t *padMask = mask == cpu::AttentionMask::Padding ? s.inInt(next++) : nullptr;
    // What remains after the optional mask: [bias] in the forward; [bias,] lse in the backward.
    bool hasBias = step.inputs.size() > next + (forward ? 0 : 1);
    T *bias = hasBias ? s.in(next++) : nullptr;
    T *q = s.in(first), *k = s.in(first + 1), *v = s.in(first + 2);
    cpu::DropoutShard dropoutShard = s.flag("head_shard") ? headShard(shape, tp) : cpu::DropoutShard();
    if (forward) {
      T *out = s.out(0), *lse = s.out(1);
      run = [=](const RunContext &context) {
        cpu::AttentionConfig config{
            mask, scale, {context.training ? rate : 0.0, context.dropoutSeed, stream, dropoutShard}};
        cpu::attentionForward(shape, config, q, k, v, padMask, bias, out, lse, workspace, workspaceSize);
        return std::string();
      };
    } else {
      T *dout = s.in(0), *lse = s.in(next);
      T *dq = s.out(0), *dk = s.out(1), *dv = s.out(2), *dbias = hasBias ? s.out(3) : nullptr;
      run = [=](const RunContext &context) {
        cpu::AttentionConfig config{
            mask, scale, {context.training ? rate : 0.0, context.dropoutSeed, stream, dropoutShard}};
        cpu::attentionBackward(shape, config, q, k, v, padMask, bias, lse, dout, dq, dk, dv, dbias, workspace,
                               workspaceSize);
        return std::string();
      };
    }
  } else if (op == "gelu" || op == "gelu_grad") {
    cpu::GeluApproximation approx = s.template attr<std::string>("approximation", "tanh") == "none"
                                        ? cpu::GeluApproximation::None
                                        : cpu::GeluApproximation::Tanh;
    Index n = s.outCount(0);
    if (op == "gelu") {
      T *x = s.in(0), *y = s.out(0);
      run = [=](const RunContext &) {
        cpu::geluForward(n, approx, x, y);
        return std::string();
      };
    } else {
      T *dy = s.in(0), *x = s.in(1), *dx = s.out(0);
      run = [=](const RunContext &) {
        cpu::geluBackward(n, approx, x, dy, dx);
        return std::string();
      };
    }
  } else if (op == "swiglu" || op == "swiglu_grad") {
    bool forward = op == "swiglu";
    Index ffn = (forward ? s.outShape(0) : s.inShape(0)).back();
    cpu::SwigluShape shape{(forward ? s.outCount(0) : s.inCount(0)) / ffn, ffn};
    if (forward) {
      T *x = s.in(0), *y = s.out(0);
      run = [=](const RunContext &) {
        cpu::swigluForward(shape, x, y);
        return std::string();
      };
    } else {
      T *dy = s.in(0), *x = s.in(1), *dx = s.out(0);
      run = [=](const RunContext &) {
        cpu::swigluBackward(shape, x, dy, dx);
        return std::string();
      };
    }
  } else if (op == "dropout" || op == "dropout_add") {
    // The backward of dropout is the same op on the same stream (docs/dialect.md), so one case serves both;
    // dropout_add (--mt-fuse-elementwise) adds a residual to the dropped-out values in the same pass.
    Index n = s.outCount(0);
    double rate = s.template required<double>("rate");
    std::uint64_t stream = static_cast<std::uint64_t>(s.template attr<int64_t>("rng_stream", 0));
    cpu::DropoutShard shard;
    if (step.attrs.count("shard_dim")) {
      // x is this rank's contiguous chunk along dimension d of a tensor tpSize times larger there: the local
      // elements from d on form the runs that move into place (cpu::DropoutShard).
      const auto &xs = s.inShape(0);
      int64_t d = s.template attr<int64_t>("shard_dim", -1);
      if (d < 0 || d >= static_cast<int64_t>(xs.size())) {
        error = where + ": shard_dim " + std::to_string(d) + " is not a dimension of the " +
                std::to_string(xs.size()) + "-d operand";
        return std::nullopt;
      }
      Index chunk = 1;
      for (size_t i = static_cast<size_t>(d); i < xs.size(); ++i)
        chunk *= xs[i];
      if (chunk > 0)
        shard = cpu::dropoutShard(chunk, tp.tpRank, tp.tpSize);
    }
    T *x = s.in(0), *y = s.out(0);
    if (op == "dropout_add") {
      // The unfused dropout stored its result in the op's 16-bit type: round the dropped values as it did.
      Rounding<T> round = intermediateRounding<T>(engine.buffer(step.outputs[0]).dtype);
      T *residual = s.in(1);
      run = [=](const RunContext &context) {
        cpu::dropoutAdd(n, cpu::DropoutConfig{context.training ? rate : 0.0, context.dropoutSeed, stream, shard}, x,
                        residual, y, round);
        return std::string();
      };
    } else {
      run = [=](const RunContext &context) {
        if (context.training)
          cpu::dropoutForward(n, cpu::DropoutConfig{rate, context.dropoutSeed, stream, shard}, x, y);
        else if (x != y)
          cpu::copy(n, x, y);
        return std::string();
      };
    }
  } else if (op == "cross_entropy") {
    Index vocab = s.inShape(0).back();
    cpu::CrossEntropyShape shape{s.inCount(0) / vocab, vocab};
    T *logits = s.in(0), *mask = step.inputs.size() > 2 ? s.in(2) : nullptr, *loss = s.out(0), *lse = s.out(1);
    const std::int32_t *labels = s.inInt(1);
    if (s.flag("vocab_parallel")) {
      shardVocab(shape, tp);
      run = VocabParallelCrossEntropy<T>{&engine, where, shape, logits, labels, mask, loss, lse, workspace};
    } else {
      run = [=](const RunContext &) {
        cpu::IndexStatus status = cpu::crossEntropyForward(shape, logits, labels, mask, loss, lse);
        return status.ok() ? std::string() : indexError(where, "label", status);
      };
    }
  } else if (op == "cross_entropy_grad") {
    Index vocab = s.inShape(1).back();
    cpu::CrossEntropyShape shape{s.inCount(1) / vocab, vocab};
    bool masked = step.inputs.size() > 4;
    T *dloss = s.in(0), *logits = s.in(1), *mask = masked ? s.in(3) : nullptr, *lse = s.in(masked ? 4 : 3);
    const std::int32_t *labels = s.inInt(2);
    T *dlogits = s.out(0);
    if (s.flag("vocab_parallel"))
      shardVocab(shape, tp);
    run = [=](const RunContext &) {
      cpu::IndexStatus status = cpu::crossEntropyBackward(shape, logits, labels, mask, lse, *dloss, dlogits);
      return status.ok() ? std::string() : indexError(where, "label", status);
    };
  } else if (op == "all_reduce" || op == "all_gather" || op == "reduce_scatter" || op == "shard_slice" ||
             op == "all_reduce_grads" || op == "send" || op == "recv") {
    std::optional<Engine::BoundStep> bound = op == "send" || op == "recv"
                                                 ? bindPipelineMessage<T>(step, where, error)
                                                 : bindCollective<T>(step, where, workspace, error);
    if (!bound)
      return std::nullopt;
    double *seconds = &engine.commSeconds;
    run = [collective = std::move(bound->run), seconds](const RunContext &context) {
      auto start = std::chrono::steady_clock::now();
      std::string result = collective(context);
      *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return result;
    };
  } else {
    error = where + ": the CPU backend has no kernel for '" + op + "'";
    return std::nullopt;
  }
  if (!s.missing.empty()) {
    error = where + ": the step lacks its '" + s.missing + "' attribute";
    return std::nullopt;
  }
  return Engine::BoundStep{std::move(run)};
}

template std::optional<Engine::BoundStep> StepBinder::bind<float>(const plan::Step &, size_t, const std::string &,
                                                                  std::string &);
template std::optional<Engine::BoundStep> StepBinder::bind<double>(const plan::Step &, size_t, const std::string &,
                                                                   std::string &);

} // namespace megatron::runtime
