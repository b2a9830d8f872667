// mt-plan lowers @train_step and @forward to the plan megatron-run executes (docs/plan.md).
// RUN: megatron-opt %s --mt-autodiff --mt-plan=output=%t.plan -o /dev/null | FileCheck %s --check-prefix=SUMMARY
// RUN: FileCheck %s --input-file=%t.plan
// RUN: not megatron-opt %s --mt-plan=output=%t.other.plan 2>&1 | FileCheck %s --check-prefix=NOSTEP
// RUN: not megatron-opt %s --mt-autodiff --mt-plan 2>&1 | FileCheck %s --check-prefix=NOPATH

// SUMMARY:      mt-plan: wrote {{.*}}.plan ({{[0-9]+}} buffers, train_step: {{[0-9]+}} steps, forward: {{[0-9]+}} steps, logits: {{[0-9]+}} steps)
// SUMMARY-NEXT:   planned memory: {{.*}} MiB = parameters {{.*}} + gradients {{.*}} + optimizer state {{.*}} + inputs {{.*}} + activations {{.*}}
// SUMMARY-NEXT:   train_step: live activations peak at
// NOSTEP: mt-plan: the module needs @forward and @train_step; run mt-autodiff first
// NOPATH: mt-plan: give the plan's path: --mt-plan=output=FILE

// Each parameter has a value, a gradient and two AdamW moments; 1-D parameters get no weight decay.
// CHECK:      "params": [
// CHECK-NEXT:  {"buffer":[[TABLE:[0-9]+]],"exp_avg":{{[0-9]+}},"exp_avg_sq":{{[0-9]+}},"grad":[[DTABLE:[0-9]+]],"index":0,"init":"normal","init_std":0.02,"name":"table","shape":[{{[0-9, ]+}}],"shard":null,"weight_decay":true},
// CHECK-NEXT:  {"buffer":{{[0-9]+}},"exp_avg":{{[0-9]+}},"exp_avg_sq":{{[0-9]+}},"grad":[[DGAIN:[0-9]+]],"index":1,"init":"ones","init_std":0.0,"name":"gain","shape":[{{[0-9, ]+}}],"shard":null,"weight_decay":false},
// CHECK-NEXT:  {"buffer":{{[0-9]+}},"exp_avg":{{[0-9]+}},"exp_avg_sq":{{[0-9]+}},"grad":{{[0-9]+}},"index":2,"init":"normal","init_std":0.02,"name":"bias_table","shape":[{{[0-9, ]+}}],"shard":null,"weight_decay":true}],

// CHECK-LABEL: "name":"train_step"
// Views are not steps: merge_heads reuses the attention output's buffer.
// CHECK-NOT:   "op":"merge_heads"
// CHECK-NOT:   "op":"split_heads"
// The tied table's two gradients accumulate straight into its gradient buffer: no temporary, no add.
// CHECK-DAG:   {"accumulate":[true],"attrs":{},"in":[{{[0-9]+}},{{[0-9]+}}],"loc":"head","op":"linear_grad_weight","out":[[[DTABLE]]]}
// CHECK-DAG:   {"accumulate":[true],"attrs":{},"in":[{{[0-9]+}},{{[0-9]+}}],"loc":"embed","op":"embedding_grad","out":[[[DTABLE]]]}
// Statistics the forward saves for the backward are explicit buffers: the norm's reciprocal std per row, the
// attention's log-sum-exp per (batch, head, query), so the memory planner keeps them alive exactly as long as needed.
// CHECK-DAG:   "loc":"norm","op":"rms_norm","out":[{{[0-9]+}},[[RSTD:[0-9]+]]]}
// The norm's weight gradient accumulates into its gradient buffer; its input gradient is an activation.
// CHECK-DAG:   {"accumulate":[false,true],"attrs":{"epsilon":1e-05},"in":[{{[0-9]+}},{{[0-9]+}},{{[0-9]+}},[[RSTD]]],"loc":"norm","op":"rms_norm_grad","out":[{{[0-9]+}},[[DGAIN]]]}
// CHECK-DAG:   "loc":"attn","op":"attention","out":[{{[0-9]+}},[[LSE:[0-9]+]]]}
// CHECK-DAG:   "in":[{{[0-9]+}},{{[0-9]+}},{{[0-9]+}},{{[0-9]+}},{{[0-9]+}},{{[0-9]+}},[[LSE]]],"loc":"attn","op":"attention_grad"
// CHECK-NOT:   "op":"add"
// CHECK-NOT:   "op":"accumulate"
// CHECK-LABEL: "name":"forward"
// CHECK-NOT:   _grad

module attributes {mt.model = "gpt"} {
  mt.param @table : tensor<16x8xf32> init <normal(0.02)>
  mt.param @gain : tensor<8xf32> init <ones>
  mt.param @bias_table : tensor<4x2xf32> init <normal(0.02)>
  func.func @forward(%tokens: tensor<1x4xi32> {mt.input = "tokens"}, %labels: tensor<1x4xi32> {mt.input = "labels"}) -> tensor<f32> {
    %table = mt.param_ref @table : tensor<16x8xf32> loc("embed")
    %x = mt.embedding %tokens, %table : tensor<1x4xi32>, tensor<16x8xf32> -> tensor<1x4x8xf32> loc("embed")
    %gain = mt.param_ref @gain : tensor<8xf32>
    %n = mt.rms_norm %x, %gain {epsilon = 1.0e-5 : f64} : tensor<1x4x8xf32>, tensor<8xf32> loc("norm")
    %h = mt.split_heads %n : tensor<1x4x8xf32> -> tensor<1x4x2x4xf32>
    %bt = mt.param_ref @bias_table : tensor<4x2xf32>
    %bias = mt.relative_position_bias %bt {num_buckets = 4 : i64, max_distance = 8 : i64, bidirectional = true} : tensor<4x2xf32> -> tensor<2x4x4xf32> loc("bias")
    %a = mt.attention bidirectional %h, %h, %h bias(%bias : tensor<2x4x4xf32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.5 : f64} : tensor<1x4x2x4xf32>, tensor<1x4x2x4xf32>, tensor<1x4x2x4xf32> loc("attn")
    %m = mt.merge_heads %a : tensor<1x4x2x4xf32> -> tensor<1x4x8xf32>
    %table2 = mt.param_ref @table : tensor<16x8xf32>
    %logits = mt.linear %m, %table2 : tensor<1x4x8xf32>, tensor<16x8xf32> -> tensor<1x4x16xf32> loc("head")
    %loss = mt.cross_entropy %logits, %labels : tensor<1x4x16xf32>, tensor<1x4xi32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}
