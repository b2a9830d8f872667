//===- MtOps.td - Operations of the mt dialect -----------------*- tablegen -*-===//
//
// Activations are [batch, sequence, hidden] tensors; attention works on [batch, sequence, heads, head_dim].
// Weights follow PyTorch's and Megatron's layout ([out_features, in_features]), so checkpoints map one to one.
// Every shape is static: the compiler plans memory and sharding from it.
//
//===----------------------------------------------------------------------===//

#ifndef MT_OPS_TD
#define MT_OPS_TD

include "dialects/mt/MtDialect.td"
include "dialects/mt/MtAttrs.td"
include "dialects/mt/MtInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Constraints and traits
//===----------------------------------------------------------------------===//

def Mt_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Mt_IntTensor : RankedTensorOf<[AnySignlessInteger]>;
def Mt_ScalarFloat : 0DTensorOf<[AnyFloat]>;

// Every tensor operand and result has a static shape (C++ in MtTraits.h).
def Mt_StaticShapes : NativeOpTrait<"MtStaticShapes">;

class Mt_PureOp<string mnemonic, list<Trait> traits = []>
    : Mt_Op<mnemonic, !listconcat([Pure, Mt_StaticShapes], traits)>;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Mt_ParamOp : Mt_Op<"param", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "Declares a trainable parameter";
  let description = [{
    A parameter of the model, named as its checkpoint names it, with its shape, dtype and initialisation.
    Ops read it through `mt.param_ref`; tying (e.g. the input embedding reused as the output layer) is two
    references to one parameter, so it is counted, stored and updated once.

    ```mlir
    mt.param @"decoder.layers.3.mlp.linear_fc2.weight" : tensor<768x3072xf32> init <scaled_normal(0.02, layers = 12)>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<AnyRankedTensor>:$type, Mt_InitAttr:$init,
                       OptionalAttr<Mt_ShardAttr>:$shard);
  let assemblyFormat = "$sym_name `:` $type `init` $init (`shard` $shard^)? attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() { return ::llvm::cast<::mlir::RankedTensorType>(getType()); }
    /// The whole parameter's type: the local type with the sharded dimension at its global size.
    ::mlir::RankedTensorType getGlobalType();
  }];
}

def Mt_ParamRefOp : Mt_PureOp<"param_ref", [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reads a parameter declared by `mt.param`";
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

def Mt_EmbeddingOp : Mt_PureOp<"embedding", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Looks up token embeddings";
  let description = [{
    `result[i..., :] = table[ids[i...], :]`. `ids` has any rank; the result appends the embedding dimension.
    Used for word and token-type embeddings.
  }];
  let arguments = (ins Mt_IntTensor:$ids, Mt_FloatTensor:$table, UnitAttr:$vocab_shard);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$ids `,` $table attr-dict `:` type($ids) `,` type($table) `->` type($result)";
  let hasVerifier = 1;
}

def Mt_AddPositionEmbeddingOp : Mt_PureOp<"add_position_embedding",
    [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AllTypesMatch<["x", "result"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Adds learned absolute position embeddings";
  let description = [{
    `result[b, s, :] = x[b, s, :] + table[s, :]` for a `[batch, seq, hidden]` input and a
    `[max_positions, hidden]` table (Megatron's `--position-embedding-type learned_absolute`). With
    `sequence_shard`, `x` is tensor-parallel rank r's block of the sequence and its positions start at
    `r · seq` (sequence parallelism).
  }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$table, UnitAttr:$sequence_shard);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `,` $table attr-dict `:` type($x) `,` type($table)";
  let hasVerifier = 1;
}

def Mt_RopeOp : Mt_PureOp<"rope", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AllTypesMatch<["x", "result"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Applies rotary position embedding to queries or keys";
  let description = [{
    Rotates the first `rotary_dim` channels of each head of a `[batch, seq, heads, head_dim]` tensor by
    position-dependent angles `pos / base^(2i / rotary_dim)`, pairing channel `i` with `i + rotary_dim/2`
    (the non-interleaved layout of Megatron-LM and LLaMA). Channels past `rotary_dim` pass through.
  }];
  let arguments = (ins Mt_FloatTensor:$x, F64Attr:$base, I64Attr:$rotary_dim);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
  let hasVerifier = 1;
}

def Mt_RelativePositionBiasOp : Mt_PureOp<"relative_position_bias", [DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "T5's bucketed relative position bias";
  let description = [{
    Produces the `[heads, q_seq, kv_seq]` attention bias of T5 from a learned `[num_buckets, heads]` table:
    each (query, key) distance falls into one of `num_buckets` log-spaced buckets up to `max_distance`; with
    `bidirectional` half of the buckets are for keys after the query (the encoder), without it only past keys
    are distinguished (the decoder).
  }];
  let arguments = (ins Mt_FloatTensor:$table, I64Attr:$num_buckets, I64Attr:$max_distance,
                       BoolAttr:$bidirectional);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$table attr-dict `:` type($table) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Norms and linears
//===----------------------------------------------------------------------===//

def Mt_LayerNormOp : Mt_PureOp<"layer_norm",
    [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AllTypesMatch<["x", "result"]>, AllTypesMatch<["weight", "bias"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "LayerNorm over the last dimension";
  let description = [{ `(x - mean) / sqrt(var + epsilon) * weight + bias`, statistics over the last dimension. }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$weight, Mt_FloatTensor:$bias, F64Attr:$epsilon);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `,` $weight `,` $bias attr-dict `:` type($x) `,` type($weight)";
  let hasVerifier = 1;
}

def Mt_RmsNormOp : Mt_PureOp<"rms_norm", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AllTypesMatch<["x", "result"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "RMSNorm over the last dimension";
  let description = [{ `x / sqrt(mean(x²) + epsilon) * weight`, statistics over the last dimension. }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$weight, F64Attr:$epsilon);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `,` $weight attr-dict `:` type($x) `,` type($weight)";
  let hasVerifier = 1;
}

def Mt_LinearOp : Mt_PureOp<"linear", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Affine map of the last dimension: x · Wᵀ + b";
  let description = [{
    `x` is `[..., in]`, `weight` is `[out, in]` (PyTorch's layout) and the optional `bias` is `[out]`; the result
    is `[..., out]`. A language-model head is a linear whose weight is the (possibly tied) embedding table.
  }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$weight, Optional<Mt_FloatTensor>:$bias);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`,` $bias^)? attr-dict `:` type($x) `,` type($weight) (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Mt_PoolerOp : Mt_PureOp<"pooler", [DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "BERT's pooler: tanh of a linear on the first token";
  let description = [{ `result[b, :] = tanh(x[b, 0, :] · Wᵀ + bias)` for `x` of shape `[batch, seq, hidden]`. }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$weight, Mt_FloatTensor:$bias);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight `,` $bias attr-dict `:` type($x) `,` type($weight) `,` type($bias) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Mt_SplitQkvOp : Mt_PureOp<"split_qkv", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface, ["getPreferredOperandLayout"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Splits a fused QKV projection into query, key and value heads";
  let description = [{
    Splits `[batch, seq, (heads + 2·groups)·head_dim]` into query `[batch, seq, heads, head_dim]` and key and
    value `[batch, seq, groups, head_dim]`. The channels are laid out group by group, each group holding its
    `heads/groups` query heads, then its key head, then its value head: Megatron-LM's layout, so fused QKV
    weights load from its checkpoints unchanged.
  }];
  let arguments = (ins Mt_FloatTensor:$x, I64Attr:$num_heads, I64Attr:$num_query_groups);
  let results = (outs Mt_FloatTensor:$query, Mt_FloatTensor:$key, Mt_FloatTensor:$value);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($query) `,` type($key) `,` type($value)";
  let hasVerifier = 1;
}

def Mt_SplitKvOp : Mt_PureOp<"split_kv", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface, ["getPreferredOperandLayout"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Splits a fused KV projection (cross-attention) into key and value heads";
  let description = [{
    Splits `[batch, seq, 2·groups·head_dim]` into key and value `[batch, seq, groups, head_dim]`, laid out group
    by group (key head, then value head), as Megatron's `linear_kv`.
  }];
  let arguments = (ins Mt_FloatTensor:$x, I64Attr:$num_query_groups);
  let results = (outs Mt_FloatTensor:$key, Mt_FloatTensor:$value);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($key) `,` type($value)";
  let hasVerifier = 1;
}

def Mt_SplitHeadsOp : Mt_PureOp<"split_heads", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Views [batch, seq, heads·head_dim] as [batch, seq, heads, head_dim]";
  let arguments = (ins Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Mt_MergeHeadsOp : Mt_PureOp<"merge_heads", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Views [batch, seq, heads, head_dim] as [batch, seq, heads·head_dim]";
  let arguments = (ins Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Mt_AttentionOp : Mt_PureOp<"attention", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AttrSizedOperandSegments, AllTypesMatch<["query", "result"]>,
    DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Core attention: softmax(scale · QKᵀ + bias + mask) · V";
  let description = [{
    `query` is `[batch, q_seq, heads, head_dim]`; `key` and `value` are `[batch, kv_seq, groups, head_dim]`,
    each key/value head shared by `heads / groups` query heads (GQA; `groups = 1` is MQA, `groups = heads` is
    plain multi-head attention). Self-attention passes keys from the same sequence, cross-attention (T5's
    decoder) from the encoder's.

    The mask is one of:
    - `causal`: a query sees keys at or before its position (GPT); needs `q_seq == kv_seq`;
    - `bidirectional`: every key;
    - `padding`: every key whose entry in the `mask` operand, `[batch, kv_seq]`, is non-zero (BERT, T5).

    The optional `bias`, `[heads, q_seq, kv_seq]`, is added to the scores (T5's relative position bias).
    `dropout` is the probability of zeroing an attention probability during training.

    ```mlir
    %o = mt.attention causal %q, %k, %v {num_heads = 32 : i64, num_query_groups = 8 : i64,
                                         softmax_scale = 0.088388 : f64, dropout = 0.0 : f64}
        : tensor<1x4096x32x128xf32>, tensor<1x4096x8x128xf32>, tensor<1x4096x8x128xf32>
    ```
  }];
  let arguments = (ins Mt_AttnMaskTypeAttr:$mask_type, Mt_FloatTensor:$query, Mt_FloatTensor:$key,
                       Mt_FloatTensor:$value, Optional<Mt_IntTensor>:$mask, Optional<Mt_FloatTensor>:$bias,
                       I64Attr:$num_heads, I64Attr:$num_query_groups, F64Attr:$softmax_scale,
                       DefaultValuedAttr<F64Attr, "0.0">:$dropout, OptionalAttr<I64Attr>:$rng_stream,
                       UnitAttr:$head_shard);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = [{
    $mask_type $query `,` $key `,` $value (`mask` `(` $mask^ `:` type($mask) `)`)?
    (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($query) `,` type($key) `,` type($value)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Activations, residuals, dropout, casts
//===----------------------------------------------------------------------===//

def Mt_GeluOp : Mt_PureOp<"gelu", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AllTypesMatch<["x", "result"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "GeLU activation";
  let description = [{
    `approximation = tanh` is Megatron's default fused bias-GeLU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`;
    `none` is the exact `0.5·x·(1 + erf(x/√2))`.
  }];
  let arguments = (ins Mt_FloatTensor:$x,
      DefaultValuedAttr<Mt_GeluApproximationAttr, "::mlir::mt::GeluApproximation::Tanh">:$approximation);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
}

def Mt_SwigluOp : Mt_PureOp<"swiglu", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface, ["getPreferredOperandLayout"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "SwiGLU: silu(first half) · second half of the last dimension";
  let description = [{
    For `x` of shape `[..., 2·ffn]`, `result = silu(x[..., :ffn]) · x[..., ffn:]`, as Megatron's `--swiglu`
    applies it to the output of `linear_fc1`.
  }];
  let arguments = (ins Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Mt_AddOp : Mt_PureOp<"add", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, Commutative, AllTypesMatch<["lhs", "rhs", "result"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Elementwise sum of two tensors of one type (residual connections, loss terms)";
  let arguments = (ins Mt_FloatTensor:$lhs, Mt_FloatTensor:$rhs);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Mt_DropoutOp : Mt_PureOp<"dropout", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, AllTypesMatch<["x", "result"]>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Inverted dropout";
  let description = [{
    During training zeroes each element with probability `rate` and scales the rest by `1/(1 - rate)`; the
    identity in evaluation. The mask is a pure function of the run's seed, the iteration, the micro-batch and
    `rng_stream` (assigned by the autodiff pass), so runs are reproducible and the backward, which is the same op
    with the same stream, reuses the forward's mask without storing it.
  }];
  let arguments = (ins Mt_FloatTensor:$x, F64Attr:$rate, OptionalAttr<I64Attr>:$rng_stream,
                       OptionalAttr<I64Attr>:$shard_dim);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
  let hasVerifier = 1;
}

def Mt_DropoutAddOp : Mt_PureOp<"dropout_add", [AllTypesMatch<["x", "residual", "result"]>]> {
  let summary = "residual + dropout(x), fused (what --mt-fuse-elementwise makes of a dropout feeding an add)";
  let description = [{
    `mt.add %residual, (mt.dropout %x)` in one op, so that the dropout's output is never stored: one pass over
    the elements instead of two, and one activation buffer less. The dropout's mask, scale, `rng_stream` and
    `shard_dim` are those of `mt.dropout`, and a 16-bit dropout result is rounded to its type before the add, so
    the fused op computes exactly what the pair computed. Made after `--mt-autodiff` (it has no gradient rule of
    its own) by `--mt-fuse-elementwise`.
  }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$residual, F64Attr:$rate, OptionalAttr<I64Attr>:$rng_stream,
                       OptionalAttr<I64Attr>:$shard_dim);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `,` $residual attr-dict `:` type($x)";
  let hasVerifier = 1;
}

def Mt_LinearGeluOp : Mt_PureOp<"linear_gelu", [DeclareOpInterfaceMethods<Mt_FlopCountOpInterface>, AllTypesMatch<["pre", "result"]>]> {
  let summary = "A linear and its tanh GeLU in one op, with the pre-activation (what --mt-fuse-elementwise makes of the pair)";
  let description = [{
    `pre = mt.linear %x, %weight[, %bias]` and `result = mt.gelu pre` with the tanh approximation, in one op: on a
    GPU one cuBLASLt GEMM whose GELU_AUX(_BIAS) epilogue writes both, so that no kernel reads `pre` back. `pre`
    is the backward's input to the GeLU gradient (`mt.gelu_grad` or `mt.linear_grad_input_gelu`); a forward-only
    function leaves it unused. The CPU backend rounds `pre` to a 16-bit type before the GeLU, as the unfused pair
    stored it, so the fused op computes exactly what the pair computed there; a GPU applies the GeLU to the f32
    accumulator (one rounding less). Only the tanh form: cuBLASLt's GELU epilogue has no exact (erf) variant.
    Operands and shapes are those of `mt.linear`. Made after `--mt-autodiff` by `--mt-fuse-elementwise`.
  }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$weight, Optional<Mt_FloatTensor>:$bias);
  let results = (outs Mt_FloatTensor:$pre, Mt_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`,` $bias^)? attr-dict `:` type($x) `,` type($weight) (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Mt_CastOp : Mt_PureOp<"cast", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Converts a tensor to another floating-point element type";
  let arguments = (ins Mt_FloatTensor:$x);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `to` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def Mt_CrossEntropyOp : Mt_PureOp<"cross_entropy", [DeclareOpInterfaceMethods<Mt_ShardingOpInterface>, DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Masked mean cross-entropy of logits against labels";
  let description = [{
    `logits` is `[..., vocab]`, `labels` (integers in `[0, vocab)`) and the optional `loss_mask` are `[...]`. The
    result is `sum(loss_mask · -log softmax(logits)[labels]) / sum(loss_mask)`, Megatron's masked language-model
    loss, as a scalar; without a mask it is the plain mean (BERT's sentence-order loss).
  }];
  let arguments = (ins Mt_FloatTensor:$logits, Mt_IntTensor:$labels, Optional<Mt_FloatTensor>:$loss_mask,
                       UnitAttr:$vocab_parallel);
  let results = (outs Mt_ScalarFloat:$loss);
  let assemblyFormat = [{
    $logits `,` $labels (`,` $loss_mask^)? attr-dict `:` type($logits) `,` type($labels) (`,` type($loss_mask)^)?
    `->` type($loss)
  }];
  let hasVerifier = 1;
}

include "dialects/mt/MtGradOps.td"
include "dialects/mt/MtParallelOps.td"

#endif // MT_OPS_TD
