//===- SameDeviceCommunicator.h - Several ranks sharing one device -*- C++ -*-===//
//
// Tensor, data and pipeline parallelism tested on a machine with one GPU (or on the host simulator): every rank is
// a host thread with its own DeviceBackend (on CUDA, its own stream) on the same device, and its buffers are
// device pointers that every rank's stream can address. The ranks meet in the thread communicator's rendezvous
// (runtime/comm/ThreadCommunicator.h: groups, splits, call matching, bounded waits, abort naming the rank, group
// and collective) and the bytes move on the device, through the backend of the rank doing the work:
//   - before a collective (a send, a receive) a rank synchronizes its stream, so that its buffers hold what its
//     earlier kernels wrote and no earlier kernel still reads what a peer will overwrite;
//   - each rank then does its share on its own stream: copyOnDevice for gathers, broadcasts and messages, and the
//     generated rank-order reduction kernel (codegen::rankReductionKernel) for sums and maxima, which reads every
//     rank's buffer and writes the result;
//   - it synchronizes again, and a second rendezvous keeps every rank from going on (and overwriting or freeing a
//     buffer) before all have finished reading.
// Reductions combine the ranks in rank order, so every rank ends with the same bits. Unlike the host
// communicator, reductions also take bf16 and f16 buffers (the device engine stores them in two bytes, and tensor
// parallelism all-reduces 16-bit activations): summed in f32 and rounded once, as the CPU engine sums their f32
// emulation and rounds the step's output once. A message sent before its receive is posted is staged in device
// memory allocated on the sender's backend. docs/communicator.md, "The same-device communicator".
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_SAMEDEVICECOMMUNICATOR_H
#define MEGATRON_RUNTIME_DEVICE_SAMEDEVICECOMMUNICATOR_H

#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/device/DeviceBackend.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace megatron::device {

/// Rank r's data mover (runtime/comm/DataMover.h) on `backend`, for a ThreadWorld whose ranks share its device.
std::shared_ptr<comm::DataMover> deviceDataMover(DeviceBackend &backend);

/// The ranks of one device and their communicators over all of them ("world"); split it into the tensor, data and
/// pipeline groups as any communicator. Rank r works through backends[r]; every backend must allocate on the same
/// device and outlive the world. Null and `error` for more than codegen::kMaxReduceRanks ranks (what one
/// reduction kernel reads) or a null backend.
std::unique_ptr<comm::ThreadWorld> createSameDeviceWorld(const std::vector<DeviceBackend *> &backends,
                                                         std::string &error, comm::ThreadWorldOptions options = {});

/// comm::runRanks on one device: body(rank, world) on one thread per backend, and "" or the root cause of a
/// failure ("rank R: ...").
std::string runRanksOnDevice(const std::vector<DeviceBackend *> &backends,
                             const std::function<std::string(int rank, comm::Communicator &world)> &body,
                             comm::ThreadWorldOptions options = {});

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_SAMEDEVICECOMMUNICATOR_H
