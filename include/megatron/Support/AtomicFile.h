//===- AtomicFile.h - Replace a file all at once, or not at all -*- C++ -*-===//

#ifndef MEGATRON_SUPPORT_ATOMICFILE_H
#define MEGATRON_SUPPORT_ATOMICFILE_H

#include <string>
#include <string_view>

namespace megatron {

/// Writes `contents` to a temporary file beside `path`, flushes it to disk (fsync) and renames it over `path`.
/// Readers see either the old file or the complete new one; a failure leaves the old file untouched and removes
/// the temporary. A symbolic link is followed (its target is replaced, the link stays); a target that is not a
/// regular file, such as /dev/null or a FIFO, is written in place. Returns an empty string on success, otherwise a
/// message naming the path and the reason.
std::string writeFileAtomically(const std::string &path, std::string_view contents);

/// A tool's output: "-" writes to standard output, any other path goes through writeFileAtomically. Returns an
/// empty string on success, otherwise the reason.
std::string writeOutput(const std::string &path, std::string_view contents);

} // namespace megatron

#endif // MEGATRON_SUPPORT_ATOMICFILE_H
