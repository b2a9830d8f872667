"builtin.module"() ({
  "mt.param"() <{init = #mt.init<scaled_normal(0.02, layers = 2)>, sym_name = "w", type = tensor<4x4xf32>}> : () -> ()
  "func.func"() <{function_type = (tensor<1x2x4xf32>, tensor<1x2xi32>) -> tensor<1x2x2x2xf32>, sym_name = "f"}> ({
  ^bb0(%x: tensor<1x2x4xf32>, %m: tensor<1x2xi32>):
    %w = "mt.param_ref"() <{name = @w}> : () -> tensor<4x4xf32>
    %y = "mt.linear"(%x, %w) : (tensor<1x2x4xf32>, tensor<4x4xf32>) -> tensor<1x2x4xf32>
    %h = "mt.split_heads"(%y) : (tensor<1x2x4xf32>) -> tensor<1x2x2x2xf32>
    %o = "mt.attention"(%h, %h, %h, %m) <{dropout = 0.0 : f64, mask_type = #mt<mask padding>, num_heads = 2 : i64, num_query_groups = 2 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>, softmax_scale = 1.0 : f64}> : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2xi32>) -> tensor<1x2x2x2xf32>
    %g = "mt.gelu"(%o) <{approximation = #mt<gelu_approximation none>}> : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
    "func.return"(%g) : (tensor<1x2x2x2xf32>) -> ()
  }) : () -> ()
}) {mt.num_micro_batches = 2 : i64} : () -> ()
