//===- MtParallelOps.td - Collectives and sharding ops of mt ---*- tablegen -*-===//
//
// The ops that `--mt-shard` inserts where a value changes layout across the tensor-parallel group, and the ones
// the sharded program needs around them. A sharded module is one rank's program (SPMD): every rank runs it on its
// own shard, and the group's size is the module's `mt.tensor_parallel`. Each op's gradient is the conjugate
// collective (Megatron-LM's f/g pairs), so the backward's collectives come out of autodiff, not out of a second
// sharding of the backward.
//
//===----------------------------------------------------------------------===//

#ifndef MT_PARALLEL_OPS_TD
#define MT_PARALLEL_OPS_TD

class Mt_CollectiveOp<string mnemonic, list<Trait> traits = []>
    : Mt_PureOp<mnemonic, !listconcat(traits, [DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>])> {
  let hasVerifier = 1;
}

def Mt_AllReduceOp : Mt_CollectiveOp<"all_reduce", [AllTypesMatch<["x", "result"]>]> {
  let summary = "Sums a tensor over the ranks of a group";
  let description = [{
    Turns partial sums (the output of a row-parallel linear, of a vocab-parallel embedding) into the replicated
    total. The gradient is the identity: every rank's partial term gets the whole gradient of the sum (Megatron's
    `reduce_from_tensor_model_parallel_region`, g).

    ```mlir
    %y = mt.all_reduce %partial over "tp" : tensor<8x512x1024xf32>
    ```
  }];
  let arguments = (ins Mt_FloatTensor:$x, StrAttr:$group);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `over` $group attr-dict `:` type($x)";
}

def Mt_AllGatherOp : Mt_CollectiveOp<"all_gather"> {
  let summary = "Concatenates the ranks' shards along a dimension";
  let description = [{
    Rank r's `x` becomes block r of dimension `dim` of the result, which every rank gets. Under sequence
    parallelism this gathers the sequence before a column-parallel linear. Its consumers then compute partial
    input gradients, so the backward is a reduce-scatter that sums and re-splits them (Megatron's
    `gather_from_sequence_parallel_region`). With `replicated_grad` the consumers' gradients are already complete
    and the backward only takes this rank's block (`tensor_parallel_output_grad=False` in Megatron).

    ```mlir
    %full = mt.all_gather %x along 1 over "tp" : tensor<8x128x1024xf32> -> tensor<8x512x1024xf32>
    ```
  }];
  let arguments = (ins Mt_FloatTensor:$x, I64Attr:$dim, StrAttr:$group, UnitAttr:$replicated_grad);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `along` $dim `over` $group attr-dict `:` type($x) `->` type($result)";
}

def Mt_ReduceScatterOp : Mt_CollectiveOp<"reduce_scatter"> {
  let summary = "Sums partial tensors over a group and leaves each rank one block of a dimension";
  let description = [{
    Block r of dimension `dim` of the sum goes to rank r. Under sequence parallelism it replaces the all-reduce
    after a row-parallel linear, leaving the sequence split; the backward is an all-gather
    (Megatron's `reduce_scatter_to_sequence_parallel_region`).

    ```mlir
    %y = mt.reduce_scatter %partial along 1 over "tp" : tensor<8x512x1024xf32> -> tensor<8x128x1024xf32>
    ```
  }];
  let arguments = (ins Mt_FloatTensor:$x, I64Attr:$dim, StrAttr:$group);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `along` $dim `over` $group attr-dict `:` type($x) `->` type($result)";
}

def Mt_ShardSliceOp : Mt_CollectiveOp<"shard_slice"> {
  let summary = "Takes this rank's block of a replicated tensor";
  let description = [{
    No communication: rank r keeps block r of dimension `dim`. The backward all-gathers the blocks' gradients,
    so the replicated input gets its whole gradient on every rank (Megatron's
    `scatter_to_sequence_parallel_region`).

    ```mlir
    %mine = mt.shard_slice %bias along 0 over "tp" : tensor<16x512x512xf32> -> tensor<4x512x512xf32>
    ```
  }];
  let arguments = (ins Mt_FloatTensor:$x, I64Attr:$dim, StrAttr:$group);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `along` $dim `over` $group attr-dict `:` type($x) `->` type($result)";
}

def Mt_CopyToGroupOp : Mt_CollectiveOp<"copy_to_group", [AllTypesMatch<["x", "result"]>]> {
  let summary = "The identity, whose gradient is summed over a group";
  let description = [{
    Marks a replicated value whose consumers compute partial gradients (the input of a column-parallel linear
    computes only its own output columns' share of dx). The forward does nothing; the backward all-reduces the
    gradient (Megatron's `copy_to_tensor_model_parallel_region`, f).

    ```mlir
    %xin = mt.copy_to_group %x over "tp" : tensor<8x512x1024xf32>
    ```
  }];
  let arguments = (ins Mt_FloatTensor:$x, StrAttr:$group);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `over` $group attr-dict `:` type($x)";
}

def Mt_AddBiasOp : Mt_PureOp<"add_bias", [AllTypesMatch<["x", "result"]>,
    DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Adds a bias along the last dimension";
  let description = [{
    `result[..., j] = x[..., j] + bias[j]`. A row-parallel linear adds its bias after the reduction, once, not
    once per rank.
  }];
  let arguments = (ins Mt_FloatTensor:$x, Mt_FloatTensor:$bias);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "$x `,` $bias attr-dict `:` type($x) `,` type($bias)";
  let hasVerifier = 1;
}

def Mt_AllReduceGradsOp : Mt_Op<"all_reduce_grads", [DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "Sums parameters' accumulated gradients over a group, in place";
  let description = [{
    Runs once per iteration, after the last micro-batch (in `@finalize_grads`), on the gradients that ranks
    computed in part: norm weights and biases whose input was split along the sequence, position embeddings under
    sequence parallelism. One op is one coalesced collective over all its parameters (Megatron's
    `_allreduce_layernorm_grads`). With `group_size = k` the sum runs within blocks of k consecutive ranks, and
    with `rows = [offset, count]` over those rows of dimension 0 only: the key/value rows of a fused QKV weight
    whose heads k ranks share.

    ```mlir
    mt.all_reduce_grads [@decoder.final_layernorm.weight, @decoder.final_layernorm.bias] over "tp"
    mt.all_reduce_grads [@decoder.layers.0.self_attention.linear_qkv.weight] over "tp" {group_size = 2 : i64, rows = array<i64: 128, 64>}
    ```
  }];
  let arguments = (ins SymbolRefArrayAttr:$params, StrAttr:$group, OptionalAttr<I64Attr>:$group_size,
                       OptionalAttr<DenseI64ArrayAttr>:$rows);
  let assemblyFormat = "$params `over` $group attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Pipeline parallelism: a model chunk's boundary values
//===----------------------------------------------------------------------===//

def Mt_SendOp : Mt_Op<"send", [MemoryEffects<[MemRead, MemWrite]>,
    DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Sends a value to another model chunk of the pipeline";
  let description = [{
    A pipeline chunk (`@forward_chunk<c>`, made by `--mt-pipeline`) ends by sending the values that later chunks
    use: the residual stream, as one message per value and micro-batch. `chunk` is the receiving chunk, `index`
    the value's place among the values crossing that boundary, and `grad` marks the backward's messages (the
    gradient of a received value, sent back). Under `v` virtual stages chunk `c` runs on pipeline rank `c mod p`.
    The gradient of a send is the receive of its gradient from the same chunk: the backward's messages come out
    of autodiff.

    ```mlir
    mt.send %h to chunk 1 index 0 : tensor<8x512x1024xf32>
    mt.send %dh to chunk 0 index 0 {grad} : tensor<8x512x1024xf32>
    ```
  }];
  let arguments = (ins Mt_FloatTensor:$x, I64Attr:$chunk, I64Attr:$index, UnitAttr:$grad);
  let assemblyFormat = "$x `to` `chunk` $chunk `index` $index attr-dict `:` type($x)";
  let hasVerifier = 1;
}

def Mt_RecvOp : Mt_Op<"recv", [MemoryEffects<[MemRead, MemWrite]>,
    DeclareOpInterfaceMethods<Mt_AutodiffOpInterface>]> {
  let summary = "Receives a value from another model chunk of the pipeline";
  let description = [{
    The matching half of `mt.send`: `chunk` is the sending chunk. The gradient of a received value is sent back
    to that chunk (zeros when this chunk's loss does not depend on it, since the sender waits for a message).

    ```mlir
    %h = mt.recv from chunk 0 index 0 : tensor<8x512x1024xf32>
    ```
  }];
  let arguments = (ins I64Attr:$chunk, I64Attr:$index, UnitAttr:$grad);
  let results = (outs Mt_FloatTensor:$result);
  let assemblyFormat = "`from` `chunk` $chunk `index` $index attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Mt_BackwardStartOp : Mt_Op<"backward_start", [MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "Where a pipeline chunk's training step turns from forward to backward";
  let description = [{
    `--mt-autodiff` puts it between the forward and the backward half of `@train_step_chunk<c>`. A pipeline
    schedule runs the two halves at different times, with other micro-batches' halves in between: the values
    defined before this op and used after it are the micro-batch's stash, kept until its backward.

    ```mlir
    mt.backward_start
    ```
  }];
  let assemblyFormat = "attr-dict";
  let hasVerifier = 1;
}

#endif // MT_PARALLEL_OPS_TD
