//===- UnifilarProcess.h - A hidden-state source whose entropy rate is exact -*- C++ -*-===//
//
// A unifilar (deterministic-state) process: a finite set of states; each state has a distribution over the next
// token, and the state after a token is a function of (state, token). The state is therefore a function of the
// visible history and the start state, so the entropy rate of the token stream is exactly
//
//     H = sum_s pi(s) * H(next token | s),
//
// with pi the stationary distribution of the state chain (Cover & Thomas, Elements of Information Theory, 4.5;
// Crutchfield's epsilon-machines are the minimal such presentations). pi is computed by power iteration in
// double on a lazy version of the chain, which has the same pi and converges even when the chain is periodic.
//
// The built-in corpus (SyntheticLanguage) is one of these; the class is generic so that tests can check it on
// processes whose entropy rate is known in closed form.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_UNIFILARPROCESS_H
#define MEGATRON_RUNTIME_DATA_UNIFILARPROCESS_H

#include <cstdint>
#include <vector>

namespace megatron::data {

/// One arc of the state machine: emit `token` with `probability`, then move to `next`.
struct Transition {
  int32_t token = 0;
  int32_t next = 0;
  double probability = 0.0;
};

class UnifilarProcess {
public:
  /// transitions[s] lists the arcs out of state s. Throws std::invalid_argument, naming the state, unless every
  /// state's probabilities are positive and sum to 1 (within 1e-9; they are then renormalised), its tokens are
  /// distinct (unifilarity), every `next` is a state, and every state is reachable from `start` and leads back
  /// to it (one recurrent class, so pi is unique and positive). Computes pi and the entropy rate.
  UnifilarProcess(std::vector<std::vector<Transition>> transitions, int32_t start);

  int32_t numStates() const { return static_cast<int32_t>(arcs.size()); }
  int32_t startState() const { return start; }
  const std::vector<Transition> &transitions(int32_t state) const { return arcs[state]; }

  /// The arc taken from `state` when `token` is emitted, or nullptr when the token cannot follow there.
  const Transition *find(int32_t state, int32_t token) const;

  /// The arc chosen by a uniform number u in [0, 1): the first whose cumulative probability exceeds u.
  const Transition &choose(int32_t state, double u) const;

  /// H(next token | state), in nats.
  const std::vector<double> &stateEntropies() const { return entropies; }
  /// The stationary distribution of the state chain.
  const std::vector<double> &stationaryDistribution() const { return pi; }
  /// sum_s |(pi P)(s) - pi(s)| of the computed pi: how well it solves pi = pi P.
  double stationaryResidual() const { return residual; }
  /// Power iterations it took.
  int64_t powerIterations() const { return iterations; }

  /// The entropy rate, exact up to double rounding: nats per token.
  double entropyRate() const { return rate; }

  /// The expected log-loss per token of the best possible predictor of tokens 1..n of a stream that starts in
  /// `state`, given every earlier token of it: (1/n) sum_{t=1..n} sum_s P(state_t = s) H(next | s). Exact, because
  /// the state is a function of the history; token 0 is not predicted (it is a GPT sample's first input).
  double expectedLossOfPrefix(int32_t state, int64_t n) const;

  /// One step of the state distribution: returns mu P.
  std::vector<double> step(const std::vector<double> &mu) const;

private:
  std::vector<std::vector<Transition>> arcs;
  std::vector<std::vector<double>> cumulative; // per state, running sums of the probabilities; the last is 1
  int32_t start;
  std::vector<double> entropies;
  std::vector<double> pi;
  double residual = 0.0;
  int64_t iterations = 0;
  double rate = 0.0;
};

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_UNIFILARPROCESS_H
