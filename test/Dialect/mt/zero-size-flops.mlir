// KNOWN BUG (expected to fail until fixed): the verifiers accept zero-sized dimensions, and
// LinearOp::getForwardFlops (dialects/mt/MtOps.cpp) divides by the input width:
//   uint64_t rows = numElements(getX()) / in;
// so a linear with in = 0 verifies, and then anything that counts FLOPs (here --mt-report) dies with SIGFPE.
// Either fix is fine: reject zero-sized dimensions in the verifiers (exit status 1) or count 0 FLOPs
// (exit status 0). This test only requires that megatron-opt does not crash.
//
// When fixed this test passes unexpectedly: delete the XFAIL line then.
// XFAIL: *
//
// RUN: megatron-opt %s --mt-report > /dev/null 2>&1 || test $? -eq 1

func.func @empty_linear(%x: tensor<2x0xf32>, %w: tensor<4x0xf32>) -> tensor<2x4xf32> {
  %y = mt.linear %x, %w : tensor<2x0xf32>, tensor<4x0xf32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
