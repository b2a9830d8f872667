//===- Passes.td - The passes of the Megatron compiler ---------*- tablegen -*-===//

#ifndef MEGATRON_PASSES_TD
#define MEGATRON_PASSES_TD

include "mlir/Pass/PassBase.td"

def MtReport : Pass<"mt-report", "::mlir::ModuleOp"> {
  let summary = "Prints the model's parameter count, FLOPs per iteration and model-state bytes";
  let description = [{
    Reports, for the model in the module:
    - the exact number of trainable parameters (a tied parameter counts once), in total and by component;
    - FLOPs per training iteration by Megatron-LM's formula: the forward FLOPs of every op that multiplies
      matrices (linears, attention's two batched matmuls, the logits), times the micro-batches per iteration,
      plus a backward pass of twice the forward;
    - the bytes of weights, of gradients (accumulated in f32) and of AdamW's state (two f32 moments, and an f32
      master copy of 16-bit weights);
    - with `pipeline-parallel=P` (and `virtual-pipeline=V` for the interleaved schedule): the pipeline schedule
      of the iteration's micro-batches per data-parallel replica, simulated with uniform stages and a backward
      twice the forward: its bubble (idle fraction of the step) and the activations the first stage holds at
      its peak, in micro-batches; `schedule-trace=FILE` writes it as Chrome trace JSON.

    The report goes to standard output, as text or, with `format=json`, as one JSON object. The IR is unchanged.
  }];
  let options = [
    Option<"format", "format", "std::string", /*default=*/"\"text\"", "Output format: text or json">,
    Option<"pipelineParallel", "pipeline-parallel", "int64_t", /*default=*/"1",
           "Pipeline stages to report the schedule of (Megatron's --pipeline-model-parallel-size)">,
    Option<"virtualPipeline", "virtual-pipeline", "int64_t", /*default=*/"1",
           "Model chunks per stage: > 1 is the interleaved schedule (--virtual-pipeline-model-parallel-size)">,
    Option<"dataParallel", "data-parallel", "int64_t", /*default=*/"0",
           "Data-parallel replicas sharing the micro-batches (default: the module's mt.data_parallel, or 1)">,
    Option<"scheduleTrace", "schedule-trace", "std::string", /*default=*/"\"\"",
           "Write the pipeline schedule as Chrome trace JSON to this file">
  ];
}

def MtShard : Pass<"mt-shard", "::mlir::ModuleOp"> {
  let summary = "Shards @forward over a tensor-parallel group (Megatron's layout), inserting the collectives";
  let description = [{
    Rewrites the whole-model `@forward` into one rank's program for `tensor-parallel` ranks (SPMD): parameters
    become their shards (`mt.param ... shard #mt.shard<...>`), ops their local forms, and collectives
    (`mt.all_reduce`, `mt.all_gather`, `mt.reduce_scatter`, `mt.copy_to_group`, `mt.shard_slice`) appear where a
    value changes layout. Each op's rule (ShardingOpInterface, dialects/mt/MtSharding.cpp) decides its layout, so
    Megatron's column/row-parallel linears, split heads, vocab-parallel embedding and loss come out without the
    pass naming any of them; ops without a rule run replicated. With `sequence-parallel`, norm, dropout and
    residual regions are split along the sequence and the all-reduces become all-gathers and reduce-scatters.
    Parameters whose gradients are partial sums (norms under sequence parallelism, shared key/value heads) are
    summed by `@finalize_grads` after the last micro-batch. Runs before `--mt-autodiff`, which differentiates the
    collectives into their conjugates. With `data-parallel`, `@finalize_grads` also sums every gradient over
    the data-parallel replicas, in buckets in backward order (or, with `distributed-optimizer`, leaves that to
    the runtime's sharded optimizer). See docs/parallelism.md.
  }];
  let options = [
    Option<"tensorParallel", "tensor-parallel", "int64_t", /*default=*/"1",
           "Tensor-parallel size (Megatron's --tensor-model-parallel-size)">,
    Option<"sequenceParallel", "sequence-parallel", "bool", /*default=*/"false",
           "Split norm, dropout and residual regions along the sequence (Megatron's --sequence-parallel)">,
    Option<"dataParallel", "data-parallel", "int64_t", /*default=*/"1",
           "Data-parallel size: replicas that each run global-batch / (micro-batch x this) micro-batches">,
    Option<"distributedOptimizer", "distributed-optimizer", "bool", /*default=*/"false",
           "ZeRO-1 (Megatron's --use-distributed-optimizer): the runtime reduce-scatters gradients over the "
           "data-parallel group, updates its shard, all-gathers the parameters">,
    Option<"bucketSize", "dp-bucket-size", "int64_t", /*default=*/"40000000",
           "Gradient elements per data-parallel all-reduce bucket (Megatron's DDP default: 40M)">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MtPipeline : Pass<"mt-pipeline", "::mlir::ModuleOp"> {
  let summary = "Splits @forward into pipeline chunks that send and receive their boundary values";
  let description = [{
    Splits the transformer layers of `@forward` into `stages` × `virtual-stages` contiguous model chunks and marks
    every op with its chunk (`mt.stage = k : i64`): the embedding goes to the first chunk, the final norm, output
    layer and loss to the last, as in Megatron-LM. Chunk `c` runs on pipeline rank `c mod stages` (with
    `virtual-stages` > 1, Megatron's interleaved schedule). By default every chunk gets the same number of
    layers, and a layer count not divisible by the chunks is an error unless `first-stage-layers` /
    `last-stage-layers` say how many layers the first and last stages take (Megatron's
    --decoder-first-pipeline-num-layers and --decoder-last-pipeline-num-layers; the rest split evenly; not with
    virtual stages) or `balance=cost` asks for the partition that minimises the most expensive chunk's forward
    FLOPs (the first chunk carries the embedding, the last the logits).

    Each chunk becomes a function `@forward_chunk<c>` with `@forward`'s inputs: it receives the values that
    earlier chunks computed and it uses (`mt.recv`), runs its ops, and sends the values later chunks use
    (`mt.send`; a value skipping a chunk is relayed through it). Autodiff turns each into a training step whose
    backward receives and sends the gradients. A parameter used on several chunks (the input embedding tied to
    the output layer) lists them in `mt.stages`, and `@finalize_grads` sums its gradient over the `"embedding"`
    group, as Megatron's embedding group does. Dropout streams are numbered over the whole model first, so the
    chunks draw the single-rank masks. `@forward` stays whole (the figures and the report read it). Runs after
    `--mt-shard` and before `--mt-autodiff`; see docs/parallelism.md.
  }];
  let options = [
    Option<"stages", "stages", "int64_t", /*default=*/"1",
           "Pipeline stages (Megatron's --pipeline-model-parallel-size)">,
    Option<"virtualStages", "virtual-stages", "int64_t", /*default=*/"1",
           "Model chunks per stage (Megatron's --virtual-pipeline-model-parallel-size): the interleaved schedule">,
    Option<"firstStageLayers", "first-stage-layers", "int64_t", /*default=*/"-1",
           "Layers on the first stage (--decoder-first-pipeline-num-layers)">,
    Option<"lastStageLayers", "last-stage-layers", "int64_t", /*default=*/"-1",
           "Layers on the last stage (--decoder-last-pipeline-num-layers)">,
    Option<"balance", "balance", "std::string", /*default=*/"\"uniform\"",
           "uniform (Megatron's even split) or cost (minimise the largest chunk's forward FLOPs)">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MtFuseElementwise : Pass<"mt-fuse-elementwise", "::mlir::ModuleOp"> {
  let summary = "Fuses elementwise ops into the op before them where the intermediate has no other use (dropout + residual add, GEMM + GeLU)";
  let description = [{
    After `--mt-autodiff`, rewrites

    - `mt.add %r, (mt.dropout %x)` where the dropout's result has no other use into `mt.dropout_add %x, %r`: the
      dropout's output is neither written nor read back, and its buffer leaves the plan (Megatron's fused
      bias-dropout-add, less the bias, which cuBLASLt's epilogue already adds);
    - `mt.gelu (mt.linear %x, %w[, %b])` with the tanh approximation, where the linear's result has no other use
      than the GeLU and the backward's reads of it as the GeLU's input, into `mt.linear_gelu %x, %w[, %b]`, whose
      two results are the pre-activation and the activation (cuBLASLt's GELU_AUX_BIAS epilogue writes both);
    - `mt.gelu_grad (mt.linear_grad_input %dy, %w), %pre` with the tanh approximation, where the input gradient
      has no other use, into `mt.linear_grad_input_gelu %dy, %w, %pre` (cuBLASLt's DGELU epilogue).

    The GeLU fusions apply to f32 and 16-bit tensors whose last dimension is a multiple of 8 (cuBLASLt's rule for
    the epilogue's aux matrix); the exact (erf) GeLU has no cuBLASLt epilogue and is left alone. The results are
    bitwise what the pairs computed on the CPU backend (which rounds a 16-bit intermediate as the pair stored it);
    the GPU's epilogues skip that rounding. Every function of the module is rewritten: the forward's residual adds
    and MLPs (in the forward-only functions too, where the pre-activation is then unused), and in the backward the
    sums of a residual's gradient with the dropout's backward and the MLP's input gradient.
  }];
}

def MtMixedPrecision : Pass<"mt-mixed-precision", "::mlir::ModuleOp"> {
  let summary = "Runs the model's compute in bf16 or fp16 with f32 master weights (Megatron's --bf16, --fp16)";
  let description = [{
    Rewrites every forward function (`@forward`, and the chunks of `--mt-pipeline`) so that activations are
    16-bit: each f32 parameter read (`mt.param_ref`) is followed by an `mt.cast` to the 16-bit type, f32 inputs
    other than the loss mask are cast likewise, and every op's f32 results become 16-bit. Parameters stay f32:
    they are the master weights that AdamW updates, and their gradients, which autodiff returns through the
    casts, accumulate in f32. The loss stays f32: `mt.cross_entropy` reads 16-bit logits and computes in f32,
    as Megatron's loss does. Kernels compute in f32 and round their 16-bit outputs; saved norm and softmax
    statistics stay f32 (`--mt-plan`). With fp16, megatron-run scales the loss dynamically (docs/precision.md).

    `dtype` is `bf16` or `fp16`; without it, the module's `mt.precision` attribute (written by megatron-model's
    --bf16 / --fp16) decides, and a module without either is left as it is. Runs before `--mt-autodiff`, in
    any order with `--mt-shard` and `--mt-pipeline`.
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"\"",
           "bf16 or fp16 (default: the module's mt.precision)">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MtAutodiff : Pass<"mt-autodiff", "::mlir::ModuleOp"> {
  let summary = "Builds @train_step: @forward, then its backward, then every parameter's gradient";
  let description = [{
    Reverse-mode differentiation of `@forward`, which must return the scalar loss (f32, or f64 for gradient
    checks) of one micro-batch. The pass
    adds `@train_step`, a copy of `@forward` followed by:
    - the loss seed, `mt.fill` with 1 / `mt.num_micro_batches` (the loss of an iteration is the mean over its
      micro-batches, as in Megatron-LM);
    - the backward of each op in reverse order, which each op builds itself through `AutodiffOpInterface`
      (dialects/mt/MtGradients.cpp); gradients of a value used more than once are summed with `mt.add`;
    - one `mt.grad_accumulate` per parameter, in declaration order, adding its gradient into the parameter's
      gradient buffer (a tied parameter's uses are summed first).

    Ops with randomness (`mt.dropout`, `mt.attention` with dropout) get an `rng_stream` numbering them in program
    order; their backward uses the same stream, hence the same mask. `@forward` stays as it is, for evaluation.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MtPlan : Pass<"mt-plan", "::mlir::ModuleOp"> {
  let summary = "Lowers @train_step and @forward to a plan for megatron-run and writes it";
  let description = [{
    Writes the plan (docs/plan.md) to `output`, atomically, and prints where its memory goes: parameters,
    gradients, AdamW state, inputs and the planned activation arena beside the lower bound of live activations.
    The IR is unchanged. Needs `@train_step`, so it runs after `mt-autodiff`.
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"\"", "Path of the plan to write">
  ];
}

#endif // MEGATRON_PASSES_TD
