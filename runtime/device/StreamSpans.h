//===- StreamSpans.h - Time spent in spans of a stream's work, read later ---*- C++ -*-===//
//
// The device engine's communication time: how long the stream spent in each collective and pipeline message,
// waiting for the peers included, as the CPU engine's clock measures its own. Each span is a pair of the backend's
// markers recorded around the work (DeviceBackend::recordMarker, no wait); the pairs are read only when the total
// is asked for, where the caller has waited for the stream anyway (the end of an iteration), so timing adds no
// synchronization. The markers are made as spans first need them and reused after each read. Internal to
// runtime/device.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_STREAMSPANS_H
#define MEGATRON_RUNTIME_DEVICE_STREAMSPANS_H

#include "runtime/device/DeviceBackend.h"

#include <cstddef>
#include <string>
#include <vector>

namespace megatron::device {

class StreamSpans {
public:
  explicit StreamSpans(DeviceBackend &backend) : backend(backend) {}
  ~StreamSpans();
  StreamSpans(const StreamSpans &) = delete;
  StreamSpans &operator=(const StreamSpans &) = delete;

  /// Records the start of a span after the work issued so far, and its end: "" or what went wrong.
  std::string begin();
  std::string end();

  /// Milliseconds in every span ended since this object was made: the spans recorded since the last call are read
  /// now (waiting for the last one's end). "" or what went wrong.
  std::string totalMilliseconds(double &milliseconds);

private:
  struct Span {
    TimingMarker *start = nullptr, *end = nullptr;
  };
  DeviceBackend &backend;
  std::vector<Span> spans; // made once, reused
  std::size_t recorded = 0; // spans ended since the last read
  bool open = false;        // begin() without its end() yet
  double total = 0;
};

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_STREAMSPANS_H
