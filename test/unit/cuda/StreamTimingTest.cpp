//===- StreamTimingTest.cpp - The simulator's timing markers and the engine's spans ---===//
//
// The device engine times its collectives with markers on the stream (DeviceBackend::recordMarker, CUDA events on
// a GPU) summed by StreamSpans. The simulator runs every call before it returns, so its marker holds the host's
// clock at the time it is recorded: sleeping between two markers shows in the time between them, and time outside
// the spans does not count. The GPU's events are CudaBackendTest's (TimesTheStreamBetweenTwoMarkers).
//
//===----------------------------------------------------------------------===//

#include "UniqueTempDir.h"

#include "sim/SimulatedBackend.h"

#include "runtime/device/StreamSpans.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace megatron;

namespace {

/// A simulator backend that launches nothing (its kernel library stays empty).
struct Simulator {
  std::filesystem::path cache = test::uniqueTempDir("stream-timing");
  cudasim::KernelLibrary library{cache.string()};
  cudasim::SimulatedBackend backend{library, 1};
  ~Simulator() {
    std::error_code ignored;
    std::filesystem::remove_all(cache, ignored);
  }
};

void sleepMilliseconds(int milliseconds) { std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds)); }

TEST(CudaSimulatorTiming, AMarkerHoldsTheClockAtItsRecording) {
  Simulator sim;
  device::TimingMarker *start = nullptr, *end = nullptr, *never = nullptr;
  ASSERT_EQ(sim.backend.createMarker(start), "");
  ASSERT_EQ(sim.backend.createMarker(end), "");
  ASSERT_EQ(sim.backend.createMarker(never), "");
  ASSERT_EQ(sim.backend.recordMarker(start), "");
  sleepMilliseconds(20);
  ASSERT_EQ(sim.backend.recordMarker(end), "");
  double slept = -1;
  ASSERT_EQ(sim.backend.elapsedMilliseconds(start, end, slept), "");
  std::printf("  20 ms asleep between the markers: %.3f ms\n", slept);
  EXPECT_GE(slept, 20.0);
  EXPECT_LT(slept, 5000.0);

  // Reused: recorded again, a marker holds the new time.
  ASSERT_EQ(sim.backend.recordMarker(start), "");
  ASSERT_EQ(sim.backend.recordMarker(end), "");
  double empty = -1;
  ASSERT_EQ(sim.backend.elapsedMilliseconds(start, end, empty), "");
  EXPECT_GE(empty, 0.0);
  EXPECT_LT(empty, slept);

  double unused = 0;
  EXPECT_EQ(sim.backend.elapsedMilliseconds(never, end, unused),
            "elapsedMilliseconds: the start marker was never recorded");
  Simulator other;
  device::TimingMarker *foreign = nullptr;
  ASSERT_EQ(other.backend.createMarker(foreign), "");
  EXPECT_EQ(sim.backend.recordMarker(foreign), "recordMarker on a marker that was not made by this backend");
  sim.backend.destroyMarker(never);
  EXPECT_EQ(sim.backend.elapsedMilliseconds(start, never, unused),
            "elapsedMilliseconds on a marker that was not made by this backend");
}

TEST(CudaStreamSpans, SumsTheTimeInsideItsSpansOnly) {
  Simulator sim;
  device::StreamSpans spans(sim.backend);
  double total = -1;
  ASSERT_EQ(spans.totalMilliseconds(total), "");
  EXPECT_EQ(total, 0.0) << "no span yet";
  for (int i = 0; i < 3; ++i) { // three spans of 10 ms, with 30 ms outside them
    ASSERT_EQ(spans.begin(), "");
    sleepMilliseconds(10);
    ASSERT_EQ(spans.end(), "");
    sleepMilliseconds(30);
  }
  ASSERT_EQ(spans.totalMilliseconds(total), "");
  std::printf("  three spans of 10 ms with 30 ms between: %.3f ms\n", total);
  EXPECT_GE(total, 30.0);
  EXPECT_LT(total, 90.0) << "the time between the spans does not count";

  // Read again, the spans already read are not counted twice; the markers are reused for new spans.
  double again = -1;
  ASSERT_EQ(spans.totalMilliseconds(again), "");
  EXPECT_EQ(again, total);
  ASSERT_EQ(spans.begin(), "");
  sleepMilliseconds(10);
  ASSERT_EQ(spans.end(), "");
  ASSERT_EQ(spans.totalMilliseconds(again), "");
  EXPECT_GE(again, total + 10.0);

  EXPECT_EQ(spans.end(), "a span of the stream ended without beginning");
  ASSERT_EQ(spans.begin(), "");
  EXPECT_EQ(spans.begin(), "a span of the stream began inside another");
}

} // namespace
