//===- Loss.cuh - Masked cross-entropy, forward and backward ------------------===//
//
// runtime/cpu/Loss.cpp's semantics: lse[r] = log Σ exp(z[r]) with the row max subtracted (fp32 for fp32, bf16
// and f16 logits), loss = Σ mask·(lse − z[label]) / Σ mask in double (0 when Σ mask = 0), and
// dz = (softmax − onehot)·mask/Σmask·dloss. A label is read only where the mask is non-zero; one outside
// [0, LIMIT) is reported through the status word (the smallest row), as the CPU kernels' IndexStatus.
// The forward is two kernels: one block per row for lse, then one block for the mean, so the loss is one
// deterministic sum rather than atomics.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// Row r's mask weight: mask[r], or 1 without a mask (then mask is null).
template <bool MASKED, typename M> MT_DEVICE double maskAt(const M *mask, i64 r) {
  if constexpr (MASKED)
    return double(load(mask + r));
  return 1.0;
}

/// The largest of a row's V logits, returned to every thread of the block.
template <typename Z, i64 V, int BLOCK> MT_DEVICE typename Compute<Z>::type rowMax(const Z *z) {
  typedef typename Compute<Z>::type C;
  C max = -infinity<C>();
  for (i64 i = threadIdx.x; i < V; i += BLOCK) {
    C value = load(z + i);
    max = value > max ? value : max;
  }
  return blockMax<BLOCK>(max);
}

/// lse[row] = max + log Σ exp(z − max); checks the row's label against [0, LIMIT).
template <typename Z, typename M, typename S, i64 V, i64 LIMIT, int BLOCK, bool MASKED>
MT_DEVICE void crossEntropyRowLse(const Z *logits, const int *labels, const M *mask, S *lse, u64 *status) {
  typedef typename Compute<Z>::type C;
  const i64 row = blockIdx.x;
  const Z *z = logits + row * V;
  const C max = rowMax<Z, V, BLOCK>(z);
  C sum = 0;
  for (i64 i = threadIdx.x; i < V; i += BLOCK)
    sum += exp(C(load(z + i)) - max);
  sum = blockSum<BLOCK>(sum);
  if (threadIdx.x == 0) {
    store(lse + row, max + log(sum));
    const int label = labels[row];
    if (maskAt<MASKED>(mask, row) != 0.0 && (label < 0 || label >= LIMIT))
      reportBadIndex(status, row);
  }
}

/// *loss = Σ_r mask_r·(lse_r − z[r, label_r]) / Σ mask, in double; one block.
template <typename Z, typename M, typename S, typename L, i64 ROWS, i64 V, int BLOCK, bool MASKED>
MT_DEVICE void crossEntropyMean(const Z *logits, const int *labels, const M *mask, const S *lse, L *loss) {
  double sum = 0, total = 0;
  for (i64 r = threadIdx.x; r < ROWS; r += BLOCK) {
    const double m = maskAt<MASKED>(mask, r);
    total += m;
    const int label = labels[r];
    if (m != 0.0 && label >= 0 && label < V)
      sum += m * (double(load(lse + r)) - double(load(logits + r * V + label)));
  }
  sum = blockSum<BLOCK>(sum);
  total = blockSum<BLOCK>(total);
  if (threadIdx.x == 0)
    store(loss, typename Compute<L>::type(total == 0.0 ? 0.0 : sum / total));
}

/// The vocabulary-parallel forward (each rank holds V columns of the FULL = V·ranks vocabulary) in three kernels
/// joined by the device engine's two all-reduces over the tensor-parallel group, as runtime/cpu/Loss.cpp's
/// crossEntropyRowMax, crossEntropyPartialSums and crossEntropyFinish: the workspace holds the rows' maxima
/// ([ROWS], all-reduced with max) and then each row's Σ exp(z − max) and target logit ([ROWS][2], summed).
template <typename Z, i64 V, int BLOCK>
MT_DEVICE void crossEntropyRowMax(const Z *logits, typename Compute<Z>::type *workspace) {
  typedef typename Compute<Z>::type C;
  const i64 row = blockIdx.x;
  const C max = rowMax<Z, V, BLOCK>(logits + row * V);
  if (threadIdx.x == 0)
    workspace[row] = max;
}

/// Row r's local Σ exp(z − max) and, where this rank holds its label's column (and the mask reads the label),
/// z[label − vocabOffset], else 0. Labels outside [0, LIMIT) where the mask reads them are reported.
template <typename Z, typename M, i64 ROWS, i64 V, i64 LIMIT, int BLOCK, bool MASKED>
MT_DEVICE void crossEntropyPartialSums(const Z *logits, const int *labels, const M *mask,
                                       typename Compute<Z>::type *workspace, u64 *status, i64 vocabOffset) {
  typedef typename Compute<Z>::type C;
  const i64 row = blockIdx.x;
  const Z *z = logits + row * V;
  const C max = workspace[row];
  C sum = 0;
  for (i64 i = threadIdx.x; i < V; i += BLOCK)
    sum += exp(C(load(z + i)) - max);
  sum = blockSum<BLOCK>(sum);
  if (threadIdx.x == 0) {
    const int label = labels[row];
    const bool read = maskAt<MASKED>(mask, row) != 0.0;
    if (read && (label < 0 || label >= LIMIT))
      reportBadIndex(status, row);
    const i64 column = i64(label) - vocabOffset;
    workspace[ROWS + 2 * row] = sum;
    workspace[ROWS + 2 * row + 1] = read && column >= 0 && column < V ? C(load(z + column)) : C(0);
  }
}

/// lse[r] = max_r + log Σ_r, and *loss = Σ mask·(lse − target) / Σ mask in double; one block.
template <typename C, typename M, typename S, typename L, i64 ROWS, int BLOCK, bool MASKED>
MT_DEVICE void crossEntropyFinish(const C *workspace, const M *mask, S *lse, L *loss) {
  double sum = 0, total = 0;
  for (i64 r = threadIdx.x; r < ROWS; r += BLOCK) {
    const C rowLse = workspace[r] + log(workspace[ROWS + 2 * r]);
    store(lse + r, rowLse);
    const double m = maskAt<MASKED>(mask, r);
    total += m;
    if (m != 0.0)
      sum += m * (double(rowLse) - double(workspace[ROWS + 2 * r + 1]));
  }
  sum = blockSum<BLOCK>(sum);
  total = blockSum<BLOCK>(total);
  if (threadIdx.x == 0)
    store(loss, typename Compute<L>::type(total == 0.0 ? 0.0 : sum / total));
}

/// dlogits[row] = w·exp(z − lse) − w·onehot(label − vocabOffset), w = dloss·mask[row]/Σ mask. Every block sums
/// the mask itself (ROWS floats from L2), which spares a workspace and a launch.
template <typename D, typename Z, typename M, typename S, typename G, i64 ROWS, i64 V, i64 LIMIT, int BLOCK,
          bool MASKED>
MT_DEVICE void crossEntropyBackward(const D *dloss, const Z *logits, const int *labels, const M *mask, const S *lse,
                                    G *dlogits, u64 *status, i64 vocabOffset) {
  typedef typename Compute<Z>::type C;
  const i64 row = blockIdx.x;
  double total = double(ROWS);
  if constexpr (MASKED) {
    double partial = 0;
    for (i64 r = threadIdx.x; r < ROWS; r += BLOCK)
      partial += maskAt<MASKED>(mask, r);
    total = blockSum<BLOCK>(partial);
  }
  const double unit = total == 0.0 ? 0.0 : double(load(dloss)) / total;
  const C w = C(unit * maskAt<MASKED>(mask, row));
  G *dz = dlogits + row * V;
  if (w == C(0)) {
    for (i64 i = threadIdx.x; i < V; i += BLOCK)
      store(dz + i, C(0));
    return;
  }
  const int label = labels[row];
  if (threadIdx.x == 0 && (label < 0 || label >= LIMIT))
    reportBadIndex(status, row);
  const i64 column = i64(label) - vocabOffset; // outside [0, V): another rank's column
  const C l = load(lse + row);
  const Z *z = logits + row * V;
  for (i64 i = threadIdx.x; i < V; i += BLOCK)
    store(dz + i, w * exp(C(load(z + i)) - l) - (i == column ? w : C(0)));
}

} // namespace mt
