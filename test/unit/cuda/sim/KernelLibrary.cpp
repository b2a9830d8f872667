//===- KernelLibrary.cpp - Generated kernels compiled by g++ for the simulator ---===//

#include "KernelLibrary.h"

#include "Simulator.h"

#include "megatron/Support/Fnv.h"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <dlfcn.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <sys/file.h>
#include <unistd.h>

// Set by CMake: the C++ compiler the project builds with, and this directory (for CudaSim.h).
#ifndef MEGATRON_SIM_CXX
#error "MEGATRON_SIM_CXX must name the C++ compiler"
#endif
#ifndef MEGATRON_SIM_INCLUDE
#error "MEGATRON_SIM_INCLUDE must name test/unit/cuda/sim"
#endif

namespace megatron::cudasim {

namespace {

namespace fs = std::filesystem;

// -O1: the kernels run a few hundred thousand simulated threads, and -O1 compiles nearly as fast as -O0.
// -ffp-contract=off: the host evaluates every multiply and add separately (see docs/cuda.md on FMA).
// Hidden visibility keeps each object's copies of the device library to itself.
const char *const kFlags = "-std=c++17 -O1 -ffp-contract=off -fPIC -shared -fvisibility=hidden -DMT_SIMULATE";

std::string readFile(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The simulator's headers are part of every object's key: changing them recompiles everything.
const std::string &headersText() {
  static const std::string text = readFile(fs::path(MEGATRON_SIM_INCLUDE) / "CudaSim.h") +
                                  readFile(fs::path(MEGATRON_SIM_INCLUDE) / "SixteenBit.h");
  return text;
}

std::string compileCommand(const fs::path &source, const fs::path &object, const fs::path &log) {
  return std::string(MEGATRON_SIM_CXX) + " " + kFlags + " -I" + MEGATRON_SIM_INCLUDE + " -o '" + object.string() +
         "' '" + source.string() + "' -lm > '" + log.string() + "' 2>&1";
}

std::string keyOf(const std::string &source) {
  char hex[20];
  std::snprintf(hex, sizeof hex, "%016" PRIx64,
                fnv1a(source + '\0' + headersText() + '\0' + MEGATRON_SIM_CXX + '\0' + kFlags));
  return hex;
}

/// Compiles one kernel into `object` (written under a temporary name, then renamed, so a concurrent or
/// interrupted run never leaves half an object). Returns an empty string or the compiler's output.
std::string compileOne(const codegen::CudaKernel &kernel, const fs::path &object) {
  const std::string unique = "." + std::to_string(::getpid()) + "." +
                             std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  const std::string base = object.string() + unique;
  const fs::path source = base + ".cpp", temporary = base + ".so", log = base + ".log";
  std::ofstream(source, std::ios::binary) << simulatorSource(kernel);
  const int status = std::system(compileCommand(source, temporary, log).c_str());
  std::string output = readFile(log);
  std::error_code ignored;
  fs::remove(log, ignored);
  if (status != 0) {
    fs::remove(temporary, ignored);
    return "g++ could not compile " + kernel.name + " for the simulator (source kept at " + source.string() +
           "):\n" + output.substr(0, 6000);
  }
  fs::remove(source, ignored);
  fs::rename(temporary, object);
  return {};
}

} // namespace

std::string simulatorSource(const codegen::CudaKernel &kernel) {
  std::string text = kernel.source;
  text += "\n// The simulator's entry: args[i] points at parameter i's value, as for cudaLaunchKernel.\n"
          "extern \"C\" __attribute__((visibility(\"default\"))) void mt_sim_entry(void **args) {\n  " +
          kernel.name + "(";
  for (size_t i = 0; i < kernel.args.size(); ++i)
    text += std::string(i ? ", " : "") + "*(" + kernel.args[i].cType + " *)args[" + std::to_string(i) + "]";
  text += ");\n}\n";
  return text;
}

KernelLibrary::KernelLibrary(std::string cacheDir) : cacheDir(std::move(cacheDir)) {}

KernelLibrary::~KernelLibrary() {
  for (void *handle : handles)
    dlclose(handle);
}

std::string KernelLibrary::load(const std::vector<codegen::CudaKernel> &kernels, int jobs) {
  std::error_code ec;
  fs::create_directories(cacheDir, ec);
  if (ec)
    return "cannot create the simulator's kernel cache " + cacheDir + ": " + ec.message();

  // Test processes that ctest runs side by side would compile the same kernels twice: the first to take the
  // cache's lock compiles, the others wait and then find the objects.
  const int lock = ::open((fs::path(cacheDir) / ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock >= 0)
    ::flock(lock, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0)
        ::close(fd); // releases the lock
    }
  } unlock{lock};

  // Each distinct kernel once, with its object's path.
  std::vector<std::pair<const codegen::CudaKernel *, fs::path>> wanted, missing;
  std::map<std::string, bool> seen;
  for (const codegen::CudaKernel &kernel : kernels) {
    if (entries.count(kernel.name) || !seen.emplace(kernel.name, true).second)
      continue;
    fs::path object = fs::path(cacheDir) / (kernel.name + "-" + keyOf(simulatorSource(kernel)) + ".so");
    wanted.emplace_back(&kernel, object);
    if (!fs::exists(object))
      missing.emplace_back(&kernel, object);
  }

  std::string errors;
  std::mutex mutex;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < missing.size(); i = next++) {
      std::string error = compileOne(*missing[i].first, missing[i].second);
      std::lock_guard<std::mutex> lock(mutex);
      if (!error.empty())
        errors += error + "\n";
    }
  };
  std::vector<std::thread> workers;
  for (int j = 1; j < jobs; ++j)
    workers.emplace_back(work);
  work();
  for (std::thread &worker : workers)
    worker.join();
  compiledCount += int(missing.size());
  cachedCount += int(wanted.size() - missing.size());
  if (!errors.empty())
    return errors;

  for (const auto &[kernel, object] : wanted) {
    void *handle = dlopen(object.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      return "cannot load " + object.string() + ": " + dlerror();
    handles.push_back(handle);
    auto entry = reinterpret_cast<KernelEntry>(dlsym(handle, "mt_sim_entry"));
    if (!entry)
      return object.string() + " has no mt_sim_entry";
    entries[kernel->name] = entry;
  }
  return {};
}

std::string KernelLibrary::launch(const codegen::CudaKernel &kernel, void **args) const {
  auto it = entries.find(kernel.name);
  if (it == entries.end())
    return kernel.name + " is not loaded";
  KernelEntry entry = it->second;
  // A GPU refuses a launch of more threads per block than the kernel's __launch_bounds__; the shim ignores the
  // attribute, so the simulator checks it here.
  const size_t bounds = kernel.source.rfind("__launch_bounds__(");
  const int64_t threads = int64_t(kernel.launch.block[0]) * kernel.launch.block[1] * kernel.launch.block[2];
  if (bounds != std::string::npos && threads > std::stoll(kernel.source.substr(bounds + 18)))
    return kernel.name + ": a block of " + std::to_string(threads) + " threads exceeds its __launch_bounds__";
  std::string error = cudasim::launch(kernel.launch, [entry, args] { entry(args); });
  return error.empty() ? error : kernel.name + ": " + error;
}

} // namespace megatron::cudasim
