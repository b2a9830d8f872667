//===- InOrderP2PCommunicator.h - NCCL's point-to-point semantics, strictly -*- C++ -*-===//
//
// The same-device world (runtime/device/SameDeviceCommunicator.h) tags its messages and lets a send return before
// the receiver asks, so a pipeline schedule that would hang on GPUs runs there. This wrapper gives a world's
// point-to-point calls NCCL's semantics, strictly, so that the simulator's tests catch such a schedule:
// - no tags: a (sender, receiver) pair's messages match in issue order; a matched send and recv whose tags, counts
//   or types differ are a mismatch, which fails the world naming both;
// - rendezvous: a send returns only once the peer has issued its matching recv, a recv only once its send was
//   issued;
// - groups (groupStart/groupEnd): the calls between them are posted together and groupEnd returns once all of them
//   have matched.
// Every wait is bounded: when every rank of the world waits in these calls and none can go on, or when a wait
// outlasts the timeout, the world fails with "deadlock: rank r waits in <call>; ..." (every waiting rank's call),
// so a hang is a test failure, never a hung test. The bytes still move through the wrapped communicator (its
// tagged send/recv, issued by the sender when it posts and by the receiver once matched), and collectives and
// splits go to it unchanged; the groups split off a wrapped communicator are wrapped alike.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_INORDERP2PCOMMUNICATOR_H
#define MEGATRON_TEST_UNIT_CUDA_INORDERP2PCOMMUNICATOR_H

#include "runtime/comm/Communicator.h"

#include <chrono>
#include <memory>
#include <string>

namespace megatron::test {

class InOrderP2PWorld {
public:
  /// A world of `ranks` ranks whose waits last at most `timeout` each.
  explicit InOrderP2PWorld(int ranks, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~InOrderP2PWorld();
  InOrderP2PWorld(const InOrderP2PWorld &) = delete;
  InOrderP2PWorld &operator=(const InOrderP2PWorld &) = delete;

  /// Rank `rank`'s communicator over the whole world: `inner` (that rank's communicator of the wrapped world,
  /// which must outlive the result) with in-order rendezvous point-to-point calls. Every rank of the world wraps
  /// its own, once.
  std::unique_ptr<comm::Communicator> wrap(comm::Communicator &inner, int rank);

  /// The first failure (a deadlock, a mismatch, an abort), or "".
  std::string failure() const;

  struct State;

private:
  std::shared_ptr<State> state;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_INORDERP2PCOMMUNICATOR_H
