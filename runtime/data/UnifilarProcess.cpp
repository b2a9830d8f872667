//===- UnifilarProcess.cpp - Stationary distribution and entropy rate ------===//

#include "runtime/data/UnifilarProcess.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace megatron::data {

namespace {

[[noreturn]] void fail(const std::string &message) { throw std::invalid_argument("unifilar process: " + message); }

/// States reachable from `from` along the arcs (forward) or against them (backward).
std::vector<char> reachable(const std::vector<std::vector<int32_t>> &edges, int32_t from) {
  std::vector<char> seen(edges.size(), 0);
  std::vector<int32_t> stack{from};
  seen[from] = 1;
  while (!stack.empty()) {
    int32_t s = stack.back();
    stack.pop_back();
    for (int32_t t : edges[s])
      if (!seen[t]) {
        seen[t] = 1;
        stack.push_back(t);
      }
  }
  return seen;
}

} // namespace

UnifilarProcess::UnifilarProcess(std::vector<std::vector<Transition>> transitions, int32_t startState)
    : arcs(std::move(transitions)), start(startState) {
  const int32_t n = numStates();
  if (n == 0)
    fail("no states");
  if (start < 0 || start >= n)
    fail("start state " + std::to_string(start) + " is not one of the " + std::to_string(n) + " states");

  // Validate each state's arcs and normalise its probabilities.
  std::vector<std::vector<int32_t>> forward(n), backward(n);
  cumulative.resize(n);
  entropies.resize(n);
  for (int32_t s = 0; s < n; ++s) {
    auto &out = arcs[s];
    if (out.empty())
      fail("state " + std::to_string(s) + " has no transitions");
    std::unordered_set<int32_t> tokens;
    double total = 0.0;
    for (const Transition &t : out) {
      if (!(t.probability > 0.0) || !std::isfinite(t.probability))
        fail("state " + std::to_string(s) + ": token " + std::to_string(t.token) + " has probability " +
             std::to_string(t.probability));
      if (t.next < 0 || t.next >= n)
        fail("state " + std::to_string(s) + ": token " + std::to_string(t.token) + " leads to state " +
             std::to_string(t.next) + ", which does not exist");
      if (!tokens.insert(t.token).second)
        fail("state " + std::to_string(s) + " emits token " + std::to_string(t.token) +
             " on two transitions (the process must be unifilar)");
      total += t.probability;
      forward[s].push_back(t.next);
      backward[t.next].push_back(s);
    }
    if (std::fabs(total - 1.0) > 1e-9)
      fail("the probabilities of state " + std::to_string(s) + " sum to " + std::to_string(total));
    double running = 0.0, h = 0.0;
    for (Transition &t : out) {
      t.probability /= total;
      running += t.probability;
      cumulative[s].push_back(running);
      h -= t.probability * std::log(t.probability);
    }
    cumulative[s].back() = 1.0;
    entropies[s] = h;
  }

  // One recurrent class containing the start state: pi is then unique and positive everywhere.
  std::vector<char> ahead = reachable(forward, start), behind = reachable(backward, start);
  for (int32_t s = 0; s < n; ++s) {
    if (!ahead[s])
      fail("state " + std::to_string(s) + " cannot be reached from the start state");
    if (!behind[s])
      fail("state " + std::to_string(s) + " never leads back to the start state");
  }

  // Power iteration on the lazy chain (I + P) / 2: the same stationary distribution, and aperiodic, so it
  // converges from any start. Stop when an iteration changes pi by less than 1e-14 in L1 norm (a few ulps per
  // state: the fixed point in double).
  pi.assign(n, 1.0 / n);
  const int64_t maxIterations = 1'000'000;
  for (iterations = 1; iterations <= maxIterations; ++iterations) {
    std::vector<double> next = step(pi);
    double change = 0.0, sum = 0.0;
    for (int32_t s = 0; s < n; ++s) {
      next[s] = 0.5 * (next[s] + pi[s]);
      change += std::fabs(next[s] - pi[s]);
      sum += next[s];
    }
    for (double &p : next)
      p /= sum;
    pi.swap(next);
    if (change < 1e-14)
      break;
  }
  if (iterations > maxIterations)
    fail("the power iteration did not converge in " + std::to_string(maxIterations) + " iterations");

  std::vector<double> image = step(pi);
  residual = 0.0;
  rate = 0.0;
  for (int32_t s = 0; s < n; ++s) {
    residual += std::fabs(image[s] - pi[s]);
    rate += pi[s] * entropies[s];
  }
}

std::vector<double> UnifilarProcess::step(const std::vector<double> &mu) const {
  std::vector<double> next(arcs.size(), 0.0);
  for (size_t s = 0; s < arcs.size(); ++s) {
    if (mu[s] == 0.0)
      continue;
    for (const Transition &t : arcs[s])
      next[t.next] += mu[s] * t.probability;
  }
  return next;
}

const Transition *UnifilarProcess::find(int32_t state, int32_t token) const {
  for (const Transition &t : arcs[state])
    if (t.token == token)
      return &t;
  return nullptr;
}

const Transition &UnifilarProcess::choose(int32_t state, double u) const {
  const std::vector<double> &c = cumulative[state];
  size_t i = 0;
  while (i + 1 < c.size() && !(u < c[i]))
    ++i;
  return arcs[state][i];
}

double UnifilarProcess::expectedLossOfPrefix(int32_t state, int64_t n) const {
  if (n <= 0)
    throw std::invalid_argument("expectedLossOfPrefix: the number of predicted tokens must be positive, not " +
                                std::to_string(n));
  std::vector<double> mu(arcs.size(), 0.0);
  mu[state] = 1.0;
  double total = 0.0;
  for (int64_t t = 1; t <= n; ++t) {
    mu = step(mu);
    for (size_t s = 0; s < mu.size(); ++s)
      total += mu[s] * entropies[s];
  }
  return total / static_cast<double>(n);
}

} // namespace megatron::data
