//===- MtGradOps.td - Gradient ops of the mt dialect -----------*- tablegen -*-===//
//
// The backward of each mt op, as produced by the autodiff pass (passes/Autodiff.cpp). They compute values like
// every other mt op; only `mt.grad_accumulate` has an effect: it adds a parameter's gradient into that
// parameter's gradient buffer, which persists across the micro-batches of an iteration.
//
// Gradient ops take the forward op's inputs (and, where cheaper than recomputing, its output) rather than hidden
// saved state, so that the IR alone says what must stay alive between forward and backward.
//
//===----------------------------------------------------------------------===//

// Included at the end of MtOps.td, whose constraints and op classes it uses.

#ifndef MT_GRAD_OPS_TD
#define MT_GRAD_OPS_TD

//===----------------------------------------------------------------------===//
// Linears
//===----------------------------------------------------------------------===//

def Mt_LinearGradInputOp : Mt_PureOp<"linear_grad_input", [DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>]> {
  let summary = "dx = dy · W: the input gradient of mt.linear";
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$weight);
  let results = (outs Mt_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $weight attr-dict `:` type($dy) `,` type($weight) `->` type($dx)";
  let hasVerifier = 1;
}

def Mt_LinearGradInputGeluOp : Mt_PureOp<"linear_grad_input_gelu", [DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>, AllTypesMatch<["pre", "dpre"]>]> {
  let summary = "dpre = (dy · W) · gelu'(pre), fused: a linear's input gradient through the tanh GeLU before it";
  let description = [{
    `mt.gelu_grad (mt.linear_grad_input %dy, %weight), %pre` with the tanh approximation, in one op (what
    `--mt-fuse-elementwise` makes of the pair when the input gradient has no other use): on a GPU one cuBLASLt
    GEMM whose DGELU epilogue reads `pre` (the `pre` result of `mt.linear_gelu`) and scales the product, so that
    the product is never stored. It always overwrites `dpre`. The CPU backend rounds the product to a 16-bit type
    before the GeLU gradient, as the unfused pair stored it, so the fused op computes exactly what the pair
    computed there. Operands and shapes are those of `mt.linear_grad_input`; `pre` has the result's type.
  }];
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$weight, Mt_FloatTensor:$pre);
  let results = (outs Mt_FloatTensor:$dpre);
  let assemblyFormat = "$dy `,` $weight `,` $pre attr-dict `:` type($dy) `,` type($weight) `->` type($dpre)";
  let hasVerifier = 1;
}

def Mt_LinearGradWeightOp : Mt_PureOp<"linear_grad_weight", [DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>]> {
  let summary = "dW = dyᵀ · x over all leading dimensions: the weight gradient of mt.linear";
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$dweight);
  let assemblyFormat = "$dy `,` $x attr-dict `:` type($dy) `,` type($x) `->` type($dweight)";
  let hasVerifier = 1;
}

def Mt_SumRowsOp : Mt_PureOp<"sum_rows"> {
  let summary = "Sums a tensor over all but its last dimension (bias gradients)";
  let arguments = (ins Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Mt_PoolerGradOp : Mt_PureOp<"pooler_grad", [AllTypesMatch<["dy", "out"]>, AllTypesMatch<["x", "dx"]>,
    AllTypesMatch<["weight", "dweight"]>]> {
  let summary = "Gradients of mt.pooler with respect to x, weight and bias";
  let description = [{ Takes the pooler's output to get tanh' = 1 − out². Only token 0 of dx is non-zero. }];
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$out, Mt_FloatTensor:$x, Mt_FloatTensor:$weight);
  let results = (outs Mt_FloatTensor:$dx, Mt_FloatTensor:$dweight, Mt_FloatTensor:$dbias);
  let assemblyFormat = [{
    $dy `,` $out `,` $x `,` $weight attr-dict `:` type($dy) `,` type($x) `,` type($weight) `->` type($dbias)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

def Mt_EmbeddingGradOp : Mt_PureOp<"embedding_grad"> {
  let summary = "Scatter-adds output gradients into a [vocab, hidden] table gradient";
  let arguments = (ins Mt_IntTensor:$ids, Mt_FloatTensor:$dy, UnitAttr:$vocab_shard);
  let results = (outs Mt_FloatTensor:$dtable);
  let assemblyFormat = "$ids `,` $dy attr-dict `:` type($ids) `,` type($dy) `->` type($dtable)";
  let hasVerifier = 1;
}

def Mt_PositionEmbeddingGradOp : Mt_PureOp<"position_embedding_grad"> {
  let summary = "Gradient of the table of mt.add_position_embedding: dtable[s] = Σ_b dy[b, s], zero past seq";
  let arguments = (ins Mt_FloatTensor:$dy, UnitAttr:$sequence_shard);
  let results = (outs Mt_FloatTensor:$dtable);
  let assemblyFormat = "$dy attr-dict `:` type($dy) `->` type($dtable)";
  let hasVerifier = 1;
}

def Mt_RopeGradOp : Mt_PureOp<"rope_grad", [AllTypesMatch<["dy", "dx"]>]> {
  let summary = "Gradient of mt.rope: the rotation by the opposite angles";
  let arguments = (ins Mt_FloatTensor:$dy, F64Attr:$base, I64Attr:$rotary_dim);
  let results = (outs Mt_FloatTensor:$dx);
  let assemblyFormat = "$dy attr-dict `:` type($dy)";
  let hasVerifier = 1;
}

def Mt_RelativePositionBiasGradOp : Mt_PureOp<"relative_position_bias_grad"> {
  let summary = "Gradient of T5's bias table: scatter-adds dbias[h, q, k] into row bucket(k − q)";
  let arguments = (ins Mt_FloatTensor:$dbias, I64Attr:$num_buckets, I64Attr:$max_distance, BoolAttr:$bidirectional);
  let results = (outs Mt_FloatTensor:$dtable);
  let assemblyFormat = "$dbias attr-dict `:` type($dbias) `->` type($dtable)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Norms, attention, activations, loss
//===----------------------------------------------------------------------===//

def Mt_LayerNormGradOp : Mt_PureOp<"layer_norm_grad", [AllTypesMatch<["dy", "x", "dx"]>,
    AllTypesMatch<["weight", "dweight", "dbias"]>]> {
  let summary = "Gradients of mt.layer_norm with respect to x, weight and bias";
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$x, Mt_FloatTensor:$weight, F64Attr:$epsilon);
  let results = (outs Mt_FloatTensor:$dx, Mt_FloatTensor:$dweight, Mt_FloatTensor:$dbias);
  let assemblyFormat = "$dy `,` $x `,` $weight attr-dict `:` type($x) `,` type($weight)";
  let hasVerifier = 1;
}

def Mt_RmsNormGradOp : Mt_PureOp<"rms_norm_grad", [AllTypesMatch<["dy", "x", "dx"]>,
    AllTypesMatch<["weight", "dweight"]>]> {
  let summary = "Gradients of mt.rms_norm with respect to x and weight";
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$x, Mt_FloatTensor:$weight, F64Attr:$epsilon);
  let results = (outs Mt_FloatTensor:$dx, Mt_FloatTensor:$dweight);
  let assemblyFormat = "$dy `,` $x `,` $weight attr-dict `:` type($x) `,` type($weight)";
  let hasVerifier = 1;
}

def Mt_AttentionGradOp : Mt_PureOp<"attention_grad", [AttrSizedOperandSegments, AllTypesMatch<["dout", "out", "query"]>,
    DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>]> {
  let summary = "Gradients of mt.attention with respect to query, key, value and bias";
  let description = [{
    Takes the forward's inputs and output (for the softmax-gradient term rowsum(dout ⊙ out)); the probabilities
    are recomputed, as flash attention does, so nothing of size seq² is kept between forward and backward. It
    has a `dbias` result exactly when a bias is given. Attributes are those of the forward op.
  }];
  let arguments = (ins Mt_AttnMaskTypeAttr:$mask_type, Mt_FloatTensor:$dout, Mt_FloatTensor:$out,
                       Mt_FloatTensor:$query, Mt_FloatTensor:$key, Mt_FloatTensor:$value,
                       Optional<Mt_IntTensor>:$mask, Optional<Mt_FloatTensor>:$bias, I64Attr:$num_heads,
                       I64Attr:$num_query_groups, F64Attr:$softmax_scale, DefaultValuedAttr<F64Attr, "0.0">:$dropout,
                       OptionalAttr<I64Attr>:$rng_stream, UnitAttr:$head_shard);
  let results = (outs Mt_FloatTensor:$dquery, Mt_FloatTensor:$dkey, Mt_FloatTensor:$dvalue,
                      Optional<Mt_FloatTensor>:$dbias);
  let assemblyFormat = [{
    $mask_type $dout `,` $out `,` $query `,` $key `,` $value (`mask` `(` $mask^ `:` type($mask) `)`)?
    (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($query) `,` type($key) `,` type($value)
    `->` type(results)
  }];
  let hasVerifier = 1;
}

def Mt_GeluGradOp : Mt_PureOp<"gelu_grad", [AllTypesMatch<["dy", "x", "dx"]>]> {
  let summary = "dx = dy · gelu'(x)";
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$x,
      DefaultValuedAttr<Mt_GeluApproximationAttr, "::mlir::mt::GeluApproximation::Tanh">:$approximation);
  let results = (outs Mt_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $x attr-dict `:` type($x)";
}

def Mt_SwigluGradOp : Mt_PureOp<"swiglu_grad", [AllTypesMatch<["x", "dx"]>]> {
  let summary = "Gradient of mt.swiglu with respect to its [..., 2·ffn] input";
  let arguments = (ins Mt_FloatTensor:$dy, Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $x attr-dict `:` type($dy) `,` type($x)";
  let hasVerifier = 1;
}

def Mt_CrossEntropyGradOp : Mt_PureOp<"cross_entropy_grad", [AllTypesMatch<["logits", "dlogits"]>]> {
  let summary = "dlogits = dloss · (softmax(logits) − onehot(labels)) · mask / Σ mask";
  let arguments = (ins Mt_ScalarFloat:$dloss, Mt_FloatTensor:$logits, Mt_IntTensor:$labels,
                       Optional<Mt_FloatTensor>:$loss_mask, UnitAttr:$vocab_parallel);
  let results = (outs Mt_FloatTensor:$dlogits);
  let assemblyFormat = [{
    $dloss `,` $logits `,` $labels (`,` $loss_mask^)? attr-dict `:` type($dloss) `,` type($logits) `,`
    type($labels) (`,` type($loss_mask)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Head views, gradient accumulation
//===----------------------------------------------------------------------===//

def Mt_MergeQkvOp : Mt_PureOp<"merge_qkv"> {
  let summary = "Inverse of mt.split_qkv: packs query, key and value heads in Megatron's grouped layout";
  let arguments = (ins Mt_FloatTensor:$query, Mt_FloatTensor:$key, Mt_FloatTensor:$value);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value attr-dict `:` type($query) `,` type($key) `,` type($value) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Mt_MergeKvOp : Mt_PureOp<"merge_kv"> {
  let summary = "Inverse of mt.split_kv";
  let arguments = (ins Mt_FloatTensor:$key, Mt_FloatTensor:$value);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$key `,` $value attr-dict `:` type($key) `,` type($value) `->` type($result)";
  let hasVerifier = 1;
}

def Mt_FillOp : Mt_PureOp<"fill"> {
  let summary = "A tensor with every element equal to `value` (the loss seed, zero gradients)";
  let description = [{
    `loss_seed` marks the seed of the backward (autodiff's 1 / micro-batches): with fp16 the runtime multiplies
    it by the dynamic loss scale, so that every gradient of the step is scaled alike (docs/precision.md).
  }];
  let arguments = (ins F64Attr:$value, UnitAttr:$loss_seed);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

def Mt_GradAccumulateOp : Mt_Op<"grad_accumulate", [Mt_StaticShapes,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>, MemoryEffects<[MemWrite]>]> {
  let summary = "Adds a gradient into a parameter's gradient buffer";
  let description = [{
    The gradient buffer of `@name` persists across the micro-batches of an iteration: the runtime zeroes it
    before the first micro-batch and the optimizer consumes it after the last. One op per parameter and step.
  }];
  let arguments = (ins FlatSymbolRefAttr:$name, Mt_FloatTensor:$gradient);
  let assemblyFormat = "$name `,` $gradient attr-dict `:` type($gradient)";
}

#endif // MT_GRAD_OPS_TD
