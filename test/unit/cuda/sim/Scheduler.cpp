//===- Scheduler.cpp - CUDA threads as fibers: barriers, shuffles, launches --===//
//
// Each CUDA thread of a block is a fiber with its own small stack. Fibers are created once with makecontext and
// reused for every block and launch (a fiber that finishes its thread parks at its loop's top); switches use
// _setjmp/_longjmp, which unlike swapcontext make no system call. The scheduler makes passes over the block,
// each in a new order (scheduleOrder), resuming every runnable fiber once; a fiber runs until it blocks at a
// barrier or shuffle, or finishes. The last thread to arrive at a
// barrier (the last lane at a shuffle) releases the others, so no thread passes a barrier before all reached it.
// Anything CUDA leaves undefined that the kernels could do here (a thread leaving while others wait at a barrier,
// a mask naming an absent lane, threads waiting at different barriers) fails the launch with a message instead.
//
//===----------------------------------------------------------------------===//

#include "Simulator.h"

#include "CudaSim.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <ucontext.h>
#include <vector>

// The built-ins' state, exported to the kernels' shared objects (the test executable is linked with its symbols
// exported, ENABLE_EXPORTS).
extern "C" {
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
}

namespace megatron::cudasim {

namespace {

// A fiber's stack: the kernels keep a few registers' worth of locals, but the host's libm (pow, sin in double)
// needs a few KiB; 128 KiB is plenty and costs only the pages touched. A guard page below turns an overflow into
// a crash instead of silent corruption of another stack.
constexpr size_t kStackBytes = 128 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr int kMaxThreads = 1024;
constexpr int kWarp = 32;

enum class State { Runnable, AtBarrier, AtShuffle, Exited };

struct Fiber {
  State state = State::Runnable;
  bool live = false; // its context exists: parked at the loop's top, or (while a block runs) inside the kernel
  char *stack = nullptr;
  ucontext_t context;
  jmp_buf jump;
  uint3 index = {0, 0, 0};
  int linear = 0;
  // Where it waits.
  const char *file = "";
  int line = 0;
  // Its part of a shuffle.
  unsigned mask = 0;
  int mode = 0, operand = 0, width = 0;
  uint64_t value = 0, result = 0;
};

struct Sim {
  std::mutex launchMutex;
  // The pool, never resized: a context made by makecontext points into its own ucontext_t. A block uses the
  // first blockDim.x·y·z.
  std::vector<Fiber> fibers = std::vector<Fiber>(kMaxThreads);
  int threads = 0;
  int running = -1;
  int atBarrier = 0, exited = 0;
  const std::function<void()> *body = nullptr;
  jmp_buf scheduler;
  std::string error;
  uint64_t random = 1; // the scheduling order's generator, reseeded per launch
  Counters counters;
};

Sim &sim() {
  static Sim *instance = new Sim(); // never destroyed: fibers may be parked on its stacks at exit
  return *instance;
}

std::string threadName(const Fiber &f) {
  if (blockDim.y == 1 && blockDim.z == 1)
    return "thread " + std::to_string(f.index.x);
  return "thread (" + std::to_string(f.index.x) + ", " + std::to_string(f.index.y) + ", " +
         std::to_string(f.index.z) + ")";
}

std::string site(const char *file, int line) {
  const char *slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

bool sameSite(const Fiber &a, const Fiber &b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }

/// Back to the scheduler; returns when the scheduler resumes this fiber.
void yieldToScheduler() {
  Sim &s = sim();
  Fiber &f = s.fibers[s.running];
  if (!_setjmp(f.jump))
    _longjmp(s.scheduler, 1);
}

/// Ends the launch with `message` (from inside a fiber). The block's fibers are abandoned mid-kernel.
[[noreturn]] void fail(const std::string &message) {
  Sim &s = sim();
  s.error = threadName(s.fibers[s.running]) + ": " + message;
  _longjmp(s.scheduler, 1);
}

/// The current thread has finished the kernel.
void finishThread() {
  Sim &s = sim();
  Fiber &f = s.fibers[s.running];
  f.state = State::Exited;
  ++s.exited;
  if (s.atBarrier > 0) {
    for (int i = 0; i < s.threads; ++i)
      if (s.fibers[i].state == State::AtBarrier)
        fail("returned while " + std::to_string(s.atBarrier) + " threads wait at __syncthreads (" +
             site(s.fibers[i].file, s.fibers[i].line) + "): a divergent barrier");
  }
  // A lane waiting at a shuffle whose mask includes this one would wait forever.
  const int base = f.linear - f.linear % kWarp;
  for (int i = base; i < base + kWarp && i < s.threads; ++i) {
    const Fiber &o = s.fibers[i];
    if (o.state == State::AtShuffle && (o.mask >> (f.linear - base) & 1u))
      fail("returned while lane " + std::to_string(i - base) + " of its warp waits for it at a shuffle (" +
           site(o.file, o.line) + ")");
  }
}

void fiberMain() {
  for (;;) {
    (*sim().body)();
    finishThread();
    yieldToScheduler(); // parked until the next block needs this fiber
  }
}

/// The source lane of `lane` in a shuffle, or -1 where CUDA returns the lane's own value.
int sourceLane(const Fiber &f, int lane) {
  const int base = lane / f.width * f.width;
  switch (f.mode) {
  case mt_sim::ShuffleIndex:
    return base + (f.operand % f.width + f.width) % f.width;
  case mt_sim::ShuffleUp:
    return lane - f.operand >= base ? lane - f.operand : -1;
  case mt_sim::ShuffleDown:
    return lane + f.operand < base + f.width ? lane + f.operand : -1;
  default: { // xor: lanes of later groups of `width` are out of reach
    const int source = lane ^ f.operand;
    return source < base + f.width ? source : -1;
  }
  }
}

void releaseBarrier() {
  Sim &s = sim();
  for (int i = 1; i < s.threads; ++i)
    if (!sameSite(s.fibers[i], s.fibers[0]))
      fail("threads wait at different barriers: thread " + std::to_string(s.fibers[0].index.x) + " at " +
           site(s.fibers[0].file, s.fibers[0].line) + ", thread " + std::to_string(s.fibers[i].index.x) + " at " +
           site(s.fibers[i].file, s.fibers[i].line));
  for (int i = 0; i < s.threads; ++i)
    s.fibers[i].state = State::Runnable;
  s.atBarrier = 0;
}

/// If every lane of the arriving fiber's mask waits at its shuffle, exchanges their values and releases them.
void completeShuffle(const Fiber &arriving) {
  Sim &s = sim();
  const int base = arriving.linear - arriving.linear % kWarp;
  for (int lane = 0; lane < kWarp; ++lane) {
    if (!(arriving.mask >> lane & 1u))
      continue;
    const Fiber &o = s.fibers[base + lane];
    if (o.state != State::AtShuffle)
      return; // not there yet (a lane at a barrier instead ends as a deadlock, reported with where each waits)
    if (!sameSite(o, arriving) || o.mask != arriving.mask || o.mode != arriving.mode || o.width != arriving.width)
      fail("lanes of one warp are at different shuffles (or masks): lane " + std::to_string(lane) + " at " +
           site(o.file, o.line) + ", lane " + std::to_string(arriving.linear - base) + " at " +
           site(arriving.file, arriving.line));
  }
  for (int lane = 0; lane < kWarp; ++lane) {
    if (!(arriving.mask >> lane & 1u))
      continue;
    Fiber &o = s.fibers[base + lane];
    const int source = sourceLane(o, lane);
    if (source >= 0 && !(arriving.mask >> source & 1u))
      fail("lane " + std::to_string(lane) + " reads lane " + std::to_string(source) +
           ", which is not in the shuffle's mask (" + site(o.file, o.line) + ")");
    o.result = source < 0 ? o.value : s.fibers[base + source].value;
  }
  for (int lane = 0; lane < kWarp; ++lane)
    if (arriving.mask >> lane & 1u)
      s.fibers[base + lane].state = State::Runnable;
}

std::string describeDeadlock() {
  Sim &s = sim();
  std::string text = "deadlock: no thread can run;";
  int shown = 0;
  for (int i = 0; i < s.threads && shown < 8; ++i) {
    const Fiber &f = s.fibers[i];
    if (f.state == State::Exited)
      continue;
    text += std::string(" ") + threadName(f) + " waits at " +
            (f.state == State::AtBarrier ? "__syncthreads" : "a shuffle") + " (" + site(f.file, f.line) + ");";
    ++shown;
  }
  return text;
}

void setUpFiber(Fiber &f) {
  if (!f.stack) {
    void *memory = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (memory == MAP_FAILED) {
      std::perror("mmap of a simulated thread's stack");
      std::abort();
    }
    mprotect(memory, kGuardBytes, PROT_NONE);
    f.stack = static_cast<char *>(memory);
  }
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack + kGuardBytes;
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = nullptr;
  makecontext(&f.context, fiberMain, 0);
  f.live = true;
}

/// Runs fiber f until it blocks, finishes or fails. Its own function, so that no local of the scheduler's loop
/// lives in the frame that _setjmp saves.
__attribute__((noinline)) void resume(Sim &s, Fiber &f) {
  ++s.counters.switches;
  if (!_setjmp(s.scheduler)) {
    if (!f.live) {
      setUpFiber(f);
      setcontext(&f.context);
    }
    _longjmp(f.jump, 1);
  }
}

/// The order of one pass over the block's threads: its warps in a random order, each warp's lanes up or down.
/// A GPU runs warps in no fixed order, so a kernel that reads shared memory without the barrier that orders it
/// must not pass here just because thread 0 happened to run first. The generator is seeded per launch, so a failure
/// repeats.
void scheduleOrder(Sim &s, std::vector<int> &order) {
  auto next = [&s] { // xorshift64
    s.random ^= s.random << 13;
    s.random ^= s.random >> 7;
    s.random ^= s.random << 17;
    return s.random;
  };
  const int warps = (s.threads + kWarp - 1) / kWarp;
  std::vector<int> warpOrder(static_cast<size_t>(warps));
  for (int w = 0; w < warps; ++w)
    warpOrder[size_t(w)] = w;
  for (int w = warps - 1; w > 0; --w)
    std::swap(warpOrder[size_t(w)], warpOrder[next() % uint64_t(w + 1)]);
  size_t k = 0;
  for (int w : warpOrder) {
    const int first = w * kWarp, last = std::min(s.threads, first + kWarp) - 1;
    const bool down = next() & 1;
    for (int i = first; i <= last; ++i)
      order[k++] = down ? last - (i - first) : i;
  }
}

/// Runs one block; returns false with s.error set when it failed.
bool runBlock(Sim &s) {
  s.atBarrier = s.exited = 0;
  for (int i = 0; i < s.threads; ++i) {
    Fiber &f = s.fibers[i];
    f.state = State::Runnable;
    f.linear = i;
    f.index = {unsigned(i % blockDim.x), unsigned(i / blockDim.x % blockDim.y),
               unsigned(i / (blockDim.x * blockDim.y))};
  }
  s.counters.threads += s.threads;
  std::vector<int> order(static_cast<size_t>(s.threads));
  while (s.exited < s.threads) {
    bool ran = false;
    scheduleOrder(s, order);
    for (int i : order) {
      Fiber &f = s.fibers[i];
      if (f.state != State::Runnable)
        continue;
      ran = true;
      s.running = i;
      threadIdx = f.index;
      resume(s, f);
      if (!s.error.empty())
        return false;
    }
    if (!ran) {
      s.error = describeDeadlock();
      return false;
    }
  }
  return true;
}

std::string checkConfig(const codegen::LaunchConfig &c) {
  const int64_t threads = int64_t(c.block[0]) * c.block[1] * c.block[2];
  if (c.block[0] < 1 || c.block[1] < 1 || c.block[2] < 1 || threads > kMaxThreads || c.block[2] > 64)
    return "invalid block (" + std::to_string(c.block[0]) + ", " + std::to_string(c.block[1]) + ", " +
           std::to_string(c.block[2]) + ")";
  if (c.grid[0] < 1 || c.grid[1] < 1 || c.grid[2] < 1 || c.grid[0] > 2147483647 || c.grid[1] > 65535 ||
      c.grid[2] > 65535)
    return "invalid grid (" + std::to_string(c.grid[0]) + ", " + std::to_string(c.grid[1]) + ", " +
           std::to_string(c.grid[2]) + ")";
  if (c.sharedBytes != 0)
    return "dynamic shared memory is not simulated";
  return {};
}

} // namespace

std::string launch(const codegen::LaunchConfig &config, const std::function<void()> &thread) {
  if (std::string error = checkConfig(config); !error.empty())
    return error;
  Sim &s = sim();
  std::lock_guard<std::mutex> lock(s.launchMutex);
  s.threads = config.block[0] * config.block[1] * config.block[2];
  s.body = &thread;
  s.error.clear();
  ++s.counters.launches;
  s.random = 0x9e3779b97f4a7c15ull * uint64_t(s.counters.launches) | 1;
  blockDim = {unsigned(config.block[0]), unsigned(config.block[1]), unsigned(config.block[2])};
  gridDim = {unsigned(config.grid[0]), unsigned(config.grid[1]), unsigned(config.grid[2])};
  for (int64_t z = 0; z < config.grid[2]; ++z)
    for (int64_t y = 0; y < config.grid[1]; ++y)
      for (int64_t x = 0; x < config.grid[0]; ++x) {
        blockIdx = {unsigned(x), unsigned(y), unsigned(z)};
        if (!runBlock(s)) {
          // The block's fibers stopped inside the kernel: make them afresh next time.
          for (int i = 0; i < s.threads; ++i)
            s.fibers[i].live = false;
          return "block (" + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(z) + "), " +
                 s.error;
        }
      }
  return {};
}

Counters counters() { return sim().counters; }

} // namespace megatron::cudasim

extern "C" void mt_sim_syncthreads(const char *file, int line) {
  using namespace megatron::cudasim;
  Sim &s = sim();
  Fiber &f = s.fibers[s.running];
  f.state = State::AtBarrier;
  f.file = file;
  f.line = line;
  ++s.atBarrier;
  if (s.exited > 0)
    fail("reached __syncthreads (" + site(file, line) + ") after " + std::to_string(s.exited) +
         " threads of the block returned: a divergent barrier");
  if (s.atBarrier == s.threads)
    releaseBarrier();
  yieldToScheduler();
}

extern "C" void mt_sim_shuffle(unsigned mask, int mode, int operand, int width, void *value, int bytes,
                               const char *file, int line) {
  using namespace megatron::cudasim;
  Sim &s = sim();
  Fiber &f = s.fibers[s.running];
  const int lane = f.linear % kWarp, base = f.linear - lane;
  if (width < 1 || width > kWarp || (width & (width - 1)) != 0)
    fail("shuffle width " + std::to_string(width) + " is not a power of two up to 32 (" + site(file, line) + ")");
  if (!(mask >> lane & 1u))
    fail("shuffles with a mask that does not include its own lane " + std::to_string(lane) + " (" +
         site(file, line) + ")");
  for (int l = 0; l < kWarp; ++l) {
    if (!(mask >> l & 1u))
      continue;
    if (base + l >= s.threads)
      fail("shuffle mask names lane " + std::to_string(l) + ", but the warp has only " +
           std::to_string(s.threads - base) + " threads (" + site(file, line) + ")");
    if (s.fibers[base + l].state == State::Exited)
      fail("shuffle mask names lane " + std::to_string(l) + ", which has returned (" + site(file, line) + ")");
  }
  f.state = State::AtShuffle;
  f.file = file;
  f.line = line;
  f.mask = mask;
  f.mode = mode;
  f.operand = operand;
  f.width = width;
  f.value = 0;
  std::memcpy(&f.value, value, size_t(bytes));
  completeShuffle(f);
  yieldToScheduler();
  std::memcpy(value, &f.result, size_t(bytes));
}
