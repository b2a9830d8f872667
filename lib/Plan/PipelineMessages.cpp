//===- PipelineMessages.cpp - Pipeline messages under in-order rendezvous --===//
//
// Expands each stage's schedule into its sends and recvs and plays them as NCCL would: no tags, in-order matching
// per (sender, receiver), and rendezvous (an op, or a group of ops, completes only with its peers').
//
//===----------------------------------------------------------------------===//

#include "megatron/Plan/PipelineMessages.h"

#include <algorithm>
#include <cstddef>
#include <optional>

namespace megatron::plan {

bool MessageIdentity::operator==(const MessageIdentity &other) const {
  return microBatch == other.microBatch && boundary == other.boundary && grad == other.grad && index == other.index &&
         elements == other.elements && dtype == other.dtype;
}

std::string describe(const MessageOp &op) {
  const MessageIdentity &id = op.identity;
  std::string chunks = id.grad ? std::to_string(id.boundary + 1) + "->" + std::to_string(id.boundary)
                               : std::to_string(id.boundary) + "->" + std::to_string(id.boundary + 1);
  return std::string(op.send ? "send" : "recv") + " of the " + (id.grad ? "gradient" : "activation") +
         " (micro-batch " + std::to_string(id.microBatch) + ", chunks " + chunks + ", value " +
         std::to_string(id.index) + ", " + std::to_string(id.elements) + " x " + toString(id.dtype) + ") " +
         (op.send ? "to" : "from") + " stage " + std::to_string(op.peer) + " [" + op.where + "]";
}

namespace {

/// Where one rank stands: its current group is ops [begin, end) of its sequence.
struct RankProgress {
  size_t begin = 0, end = 0;
  std::vector<bool> done;
};

size_t groupEnd(const std::vector<MessageOp> &ops, size_t begin) {
  size_t end = begin;
  while (end < ops.size() && ops[end].group == ops[begin].group)
    ++end;
  return end;
}

/// The first unfinished op of rank's current group that goes the given way to or from `peer`: the oldest of that
/// channel, since every earlier group has completed.
std::optional<size_t> oldestPending(const std::vector<MessageOp> &ops, const RankProgress &rank, bool send, int peer) {
  for (size_t i = rank.begin; i < rank.end; ++i)
    if (!rank.done[i] && ops[i].send == send && ops[i].peer == peer)
      return i;
  return std::nullopt;
}

} // namespace

std::vector<std::pair<size_t, size_t>> messageUnits(const std::vector<PipelineStep> &schedule, MessageIssue issue) {
  std::vector<std::pair<size_t, size_t>> units;
  for (size_t begin = 0; begin < schedule.size();) {
    size_t end = begin + 1;
    if (issue == MessageIssue::GroupedPerBackwardForwardPair && !schedule[begin].forward && end < schedule.size() &&
        schedule[end].forward)
      ++end;
    units.emplace_back(begin, end);
    begin = end;
  }
  return units;
}

std::string simulateInOrderRendezvous(const std::vector<std::vector<MessageOp>> &ranks) {
  const int n = static_cast<int>(ranks.size());
  for (int r = 0; r < n; ++r)
    for (const MessageOp &op : ranks[static_cast<size_t>(r)])
      if (op.peer < 0 || op.peer >= n || op.peer == r)
        return "stage " + std::to_string(r) + "'s " + describe(op) + " names no other stage of the " +
               std::to_string(n);
  std::vector<RankProgress> progress(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    progress[static_cast<size_t>(r)].done.assign(ranks[static_cast<size_t>(r)].size(), false);
    progress[static_cast<size_t>(r)].end = groupEnd(ranks[static_cast<size_t>(r)], 0);
  }
  auto finished = [&](int r) { return progress[static_cast<size_t>(r)].begin >= ranks[static_cast<size_t>(r)].size(); };
  auto advance = [&](int r) {
    RankProgress &rank = progress[static_cast<size_t>(r)];
    const std::vector<MessageOp> &ops = ranks[static_cast<size_t>(r)];
    while (rank.begin < ops.size() &&
           std::all_of(rank.done.begin() + static_cast<std::ptrdiff_t>(rank.begin),
                       rank.done.begin() + static_cast<std::ptrdiff_t>(rank.end), [](bool done) { return done; })) {
      rank.begin = rank.end;
      rank.end = groupEnd(ops, rank.begin);
    }
  };
  for (bool progressed = true; progressed;) {
    progressed = false;
    for (int sender = 0; sender < n; ++sender) {
      if (finished(sender))
        continue;
      const std::vector<MessageOp> &ops = ranks[static_cast<size_t>(sender)];
      RankProgress &from = progress[static_cast<size_t>(sender)];
      for (size_t i = from.begin; i < from.end; ++i) {
        if (from.done[i] || !ops[i].send || oldestPending(ops, from, true, ops[i].peer) != i)
          continue;
        const int receiver = ops[i].peer;
        RankProgress &to = progress[static_cast<size_t>(receiver)];
        const std::vector<MessageOp> &peerOps = ranks[static_cast<size_t>(receiver)];
        std::optional<size_t> j = finished(receiver) ? std::nullopt : oldestPending(peerOps, to, false, sender);
        if (!j)
          continue;
        if (ops[i].identity != peerOps[*j].identity)
          return "mismatch: stage " + std::to_string(receiver) + "'s " + describe(peerOps[*j]) +
                 " would receive stage " + std::to_string(sender) + "'s " + describe(ops[i]) +
                 " (NCCL pairs a sender's and a receiver's messages in issue order, without tags)";
        from.done[i] = to.done[*j] = true;
        progressed = true;
      }
    }
    for (int r = 0; r < n; ++r)
      advance(r);
  }
  std::string blocked;
  for (int r = 0; r < n; ++r) {
    if (finished(r))
      continue;
    const RankProgress &rank = progress[static_cast<size_t>(r)];
    blocked += (blocked.empty() ? "" : "; ") + std::string("stage ") + std::to_string(r) + " waits at";
    std::string ops;
    for (size_t i = rank.begin; i < rank.end; ++i)
      if (!rank.done[i])
        ops += (ops.empty() ? " " : " and ") + describe(ranks[static_cast<size_t>(r)][i]);
    blocked += ops;
  }
  if (blocked.empty())
    return {};
  return "deadlock under in-order rendezvous (NCCL) semantics: " + blocked;
}

namespace {

const int64_t *intAttr(const Step &step, const char *name) {
  auto it = step.attrs.find(name);
  return it == step.attrs.end() ? nullptr : std::get_if<int64_t>(&it->second);
}

bool isMessage(const Step &step) { return step.op == "send" || step.op == "recv"; }

} // namespace

std::vector<MessagePlace> messagePlaces(const Program &program) {
  const std::vector<Step> &steps = program.steps;
  size_t firstCompute = steps.size(), lastCompute = 0;
  for (size_t i = 0; i < steps.size(); ++i)
    if (!isMessage(steps[i])) {
      firstCompute = std::min(firstCompute, i);
      lastCompute = i;
    }
  std::vector<MessagePlace> places(steps.size(), MessagePlace::Alone);
  bool middle = false; // a message step issued alone came before
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!isMessage(steps[i]))
      continue;
    const bool send = steps[i].op == "send";
    if (!send && i < firstCompute && !middle)
      places[i] = MessagePlace::Leading;
    else if (send && (i > lastCompute || firstCompute == steps.size()))
      places[i] = MessagePlace::Trailing;
    else
      middle = true;
  }
  return places;
}

namespace {

/// A stage's messages, program run by program run, and the order and groups in which `issue` issues them.
class SequenceBuilder {
public:
  SequenceBuilder(const Plan &plan, MessageIssue issue) : plan(plan), issue(issue) {}

  /// Runs `name` (the program of global chunk `chunk`) for micro-batch `microBatch`.
  std::string run(const std::string &name, bool forward, int64_t chunk, int64_t microBatch) {
    const Program *program = plan.program(name);
    if (!program)
      return "stage " + std::to_string(plan.pipeline.stage) + " has no program " + name + " that its schedule runs";
    const std::vector<Step> &steps = program->steps;
    const std::vector<MessagePlace> places = messagePlaces(*program);
    const std::string where = name + ", micro-batch " + std::to_string(microBatch);
    ProgramMessages &run = phase.emplace_back();
    run.forward = forward;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (!isMessage(steps[i]))
        continue;
      std::string error;
      std::optional<MessageOp> op = messageOf(steps[i], chunk, microBatch, where, error);
      if (!op)
        return error;
      if (places[i] == MessagePlace::Leading)
        run.leadingRecvs.push_back(*op);
      else if (places[i] == MessagePlace::Trailing)
        run.trailingSends.push_back(*op);
      else
        run.middle.push_back(*op);
    }
    return {};
  }

  /// Issues the phase's messages: the engine finishes them before anything else that communicates (the
  /// iteration's gradient sums, the loss) runs after the schedule.
  void endPhase() {
    if (issue == MessageIssue::OneByOne) {
      for (const ProgramMessages &run : phase)
        for (const std::vector<MessageOp> *part : {&run.leadingRecvs, &run.middle, &run.trailingSends})
          for (const MessageOp &op : *part)
            issueGroup({op});
    } else {
      std::vector<PipelineStep> steps;
      for (const ProgramMessages &run : phase)
        steps.push_back(PipelineStep{run.forward, 0, 0});
      std::vector<MessageOp> held;
      for (auto [n, end] : messageUnits(steps, issue)) {
        std::vector<MessageOp> group = std::move(held);
        held.clear();
        for (size_t k = n; k < end; ++k)
          group.insert(group.end(), phase[k].leadingRecvs.begin(), phase[k].leadingRecvs.end());
        issueGroup(group);
        for (size_t k = n; k < end; ++k) {
          for (const MessageOp &op : phase[k].middle)
            issueGroup({op});
          held.insert(held.end(), phase[k].trailingSends.begin(), phase[k].trailingSends.end());
        }
      }
      issueGroup(held);
    }
    phase.clear();
  }

  std::vector<MessageOp> finish() {
    endPhase();
    return std::move(ops);
  }

private:
  struct ProgramMessages {
    bool forward = true;
    std::vector<MessageOp> leadingRecvs; // before the program's first computing step
    std::vector<MessageOp> middle;
    std::vector<MessageOp> trailingSends; // after its last computing step
  };

  void issueGroup(std::vector<MessageOp> group) {
    if (group.empty())
      return;
    for (MessageOp &op : group) {
      op.group = nextGroup;
      ops.push_back(std::move(op));
    }
    ++nextGroup;
  }

  std::optional<MessageOp> messageOf(const Step &step, int64_t chunk, int64_t microBatch, const std::string &where,
                                     std::string &error) const {
    const int64_t *peerChunk = intAttr(step, "chunk"), *index = intAttr(step, "index");
    const int64_t chunks = plan.pipeline.numChunks();
    const std::vector<int> &ids = step.op == "send" ? step.inputs : step.outputs;
    if (!peerChunk || !index || ids.size() != 1 || ids[0] < 0 || static_cast<size_t>(ids[0]) >= plan.buffers.size() ||
        (*peerChunk != chunk - 1 && *peerChunk != chunk + 1) || *peerChunk < 0 || *peerChunk >= chunks) {
      error = "stage " + std::to_string(plan.pipeline.stage) + ", " + where + ": a " + step.op +
              " step needs integer attributes chunk (a neighbour of chunk " + std::to_string(chunk) +
              ") and index, and one buffer";
      return std::nullopt;
    }
    auto flag = step.attrs.find("grad");
    const Buffer &buffer = plan.buffers[static_cast<size_t>(ids[0])];
    MessageOp op;
    op.send = step.op == "send";
    op.peer = static_cast<int>(*peerChunk % plan.pipeline.stages);
    op.identity.microBatch = microBatch;
    op.identity.boundary = std::min(chunk, *peerChunk);
    op.identity.grad = flag != step.attrs.end() && std::get_if<bool>(&flag->second) && std::get<bool>(flag->second);
    op.identity.index = *index;
    op.identity.elements = buffer.numElements();
    op.identity.dtype = buffer.dtype;
    op.where = where;
    return op;
  }

  const Plan &plan;
  MessageIssue issue;
  std::vector<ProgramMessages> phase; // the runs not issued yet
  std::vector<MessageOp> ops;
  int64_t nextGroup = 0;
};

} // namespace

std::vector<MessageOp> stageMessages(const Plan &plan, MessageIssue issue, int64_t evalMicroBatches,
                                     std::string &error) {
  const PipelineInfo &pipeline = plan.pipeline;
  SequenceBuilder sequence(plan, issue);
  for (const PipelineStep &step : pipeline.schedule) {
    const int64_t chunk = pipeline.globalChunk(step.chunk);
    if (error = sequence.run(pipeline.trainingProgram(step), step.forward, chunk, step.microBatch); !error.empty())
      return {};
  }
  sequence.endPhase();
  for (int64_t microBatch = 0; microBatch < evalMicroBatches; ++microBatch)
    for (int64_t v = 0; v < pipeline.virtualStages; ++v) {
      const int64_t chunk = pipeline.globalChunk(v);
      if (error = sequence.run("forward_chunk" + std::to_string(chunk), true, chunk, microBatch); !error.empty())
        return {};
    }
  return sequence.finish();
}

std::string checkInOrderMessages(const std::vector<Plan> &stages, MessageIssue issue) {
  if (stages.size() < 2)
    return {};
  std::vector<std::vector<MessageOp>> ranks;
  for (const Plan &plan : stages) {
    std::string error;
    // Two evaluation micro-batches: the second shows whether the first left the peers' orders agreeing.
    ranks.push_back(stageMessages(plan, issue, /*evalMicroBatches=*/2, error));
    if (!error.empty())
      return error;
  }
  const PipelineInfo &pipeline = stages.front().pipeline;
  std::string problem = simulateInOrderRendezvous(ranks);
  if (problem.empty())
    return {};
  return "the pipeline schedule (" + std::to_string(pipeline.stages) + " stages, " +
         std::to_string(pipeline.virtualStages) + " chunk(s) each, " + std::to_string(pipeline.microBatches) +
         " micro-batches) would " +
         (problem.rfind("deadlock", 0) == 0 ? "hang" : "deliver a message to the wrong recv") + " on GPUs: " + problem;
}

} // namespace megatron::plan
