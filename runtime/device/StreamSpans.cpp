//===- StreamSpans.cpp - Time spent in spans of a stream's work, read later ---===//

#include "runtime/device/StreamSpans.h"

namespace megatron::device {

StreamSpans::~StreamSpans() {
  for (const Span &span : spans) {
    backend.destroyMarker(span.start);
    backend.destroyMarker(span.end);
  }
}

std::string StreamSpans::begin() {
  if (open)
    return "a span of the stream began inside another";
  if (recorded == spans.size()) {
    Span span;
    if (std::string error = backend.createMarker(span.start); !error.empty())
      return error;
    if (std::string error = backend.createMarker(span.end); !error.empty()) {
      backend.destroyMarker(span.start);
      return error;
    }
    spans.push_back(span);
  }
  if (std::string error = backend.recordMarker(spans[recorded].start); !error.empty())
    return error;
  open = true;
  return {};
}

std::string StreamSpans::end() {
  if (!open)
    return "a span of the stream ended without beginning";
  if (std::string error = backend.recordMarker(spans[recorded].end); !error.empty())
    return error;
  open = false;
  ++recorded;
  return {};
}

std::string StreamSpans::totalMilliseconds(double &milliseconds) {
  // The last span's end is the latest marker: waiting for it first makes the other reads immediate.
  for (std::size_t i = recorded; i-- > 0;) {
    double span = 0;
    if (std::string error = backend.elapsedMilliseconds(spans[i].start, spans[i].end, span); !error.empty())
      return error;
    total += span;
  }
  recorded = 0;
  milliseconds = total;
  return {};
}

} // namespace megatron::device
