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
      master copy of 16-bit weights).

    The report goes to standard output, as text or, with `format=json`, as one JSON object. The IR is unchanged.
  }];
  let options = [
    Option<"format", "format", "std::string", /*default=*/"\"text\"", "Output format: text or json">
  ];
}

#endif // MEGATRON_PASSES_TD
