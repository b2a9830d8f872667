//===- CudaBackend.cpp - The device engine's backend on a real GPU ---------------===//
//
// Every call is issued on one non-blocking stream of the backend's device; the device is made current on the
// calling thread first, because several ranks' threads may each drive a backend of their own on one GPU (the
// same-device communicator). Errors carry the CUDA or cuBLAS status name, and after a sticky fault every later
// call reports the first one.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/CudaBackend.h"

#include "runtime/cuda/CublasLtGemm.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/KernelCache.h"

#if MEGATRON_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#endif

namespace megatron::cuda {

#if MEGATRON_HAVE_CUDA

namespace {

std::string failure(const char *call, cudaError_t status) {
  return std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
}

class CudaBackendImpl final : public CudaBackend {
public:
  CudaBackendImpl(const CudaBackendOptions &options, const DeviceInfo &info)
      : options(options), info(info),
        cache(options.kernelCache.empty() ? KernelCache::defaultDirectory() : options.kernelCache) {}

  ~CudaBackendImpl() override {
    if (cudaSetDevice(info.index) != cudaSuccess)
      return;
    if (stream)
      cudaStreamSynchronize(stream);
    gemms.reset();
    for (auto &[name, prepared] : loaded)
      cudaLibraryUnload(prepared.library);
    if (stream)
      cudaStreamDestroy(stream);
  }

  std::string initialize() {
    if (std::string error = current(); !error.empty())
      return error;
    if (cudaError_t status = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking); status != cudaSuccess)
      return failure("cudaStreamCreateWithFlags", status);
    std::string error;
    gemms = CublasLtGemm::create(stream, options.gemmWorkspaceBytes, error);
    return gemms ? std::string() : error;
  }

  std::string describe() const override { return cuda::describe(info); }

  void *allocate(std::size_t bytes, std::string &error) override {
    if (error = current(); !error.empty())
      return nullptr;
    void *memory = nullptr;
    if (cudaError_t status = cudaMalloc(&memory, std::max<std::size_t>(bytes, 1)); status != cudaSuccess) {
      size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      error = failure("cudaMalloc", status) + " for " + std::to_string(bytes) + " bytes (" + std::to_string(free) +
              " of " + std::to_string(total) + " bytes free on " + describe() + ")";
      return nullptr;
    }
    return memory;
  }

  void release(void *memory) override {
    if (memory && current().empty())
      cudaFree(memory); // synchronizes with the device, so no work still uses it
  }

  std::string copyToDevice(void *device, const void *host, std::size_t bytes) override {
    return check("cudaMemcpyAsync (to the device)",
                 [&] { return cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream); });
  }

  std::string copyToHost(void *host, const void *device, std::size_t bytes) override {
    if (std::string error = check("cudaMemcpyAsync (to the host)", [&] {
          return cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream);
        });
        !error.empty())
      return error;
    return synchronize();
  }

  std::string copyOnDevice(void *destination, const void *source, std::size_t bytes) override {
    return check("cudaMemcpyAsync (on the device)",
                 [&] { return cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, stream); });
  }

  std::string fill(void *device, unsigned char value, std::size_t bytes) override {
    return check("cudaMemsetAsync", [&] { return cudaMemsetAsync(device, value, bytes, stream); });
  }

  std::string prepare(const std::vector<codegen::CudaKernel> &kernels) override;

  std::string launch(const codegen::CudaKernel &kernel, void **args) override {
    auto found = loaded.find(kernel.name);
    if (found == loaded.end())
      return "kernel " + kernel.name + " was not prepared";
    const codegen::LaunchConfig &l = kernel.launch;
    return check("cudaLaunchKernel", [&] {
      cudaError_t status = cudaLaunchKernel(reinterpret_cast<const void *>(found->second.kernel),
                                            dim3(unsigned(l.grid[0]), unsigned(l.grid[1]), unsigned(l.grid[2])),
                                            dim3(unsigned(l.block[0]), unsigned(l.block[1]), unsigned(l.block[2])),
                                            args, size_t(l.sharedBytes), stream);
      return status == cudaSuccess ? cudaGetLastError() : status;
    });
  }

  std::string gemm(const device::Gemm &call) override {
    if (std::string error = current(); !error.empty())
      return error;
    return gemms->run(call);
  }

  std::string synchronize() override {
    return check("cudaStreamSynchronize", [&] { return cudaStreamSynchronize(stream); });
  }

  // Markers are CUDA events with timing on, recorded on the stream; reading one pair waits for its end event only.
  std::string createMarker(device::TimingMarker *&marker) override {
    cudaEvent_t event = nullptr;
    if (std::string error = check("cudaEventCreate", [&] { return cudaEventCreate(&event); }); !error.empty())
      return error;
    marker = reinterpret_cast<device::TimingMarker *>(event);
    return {};
  }

  void destroyMarker(device::TimingMarker *marker) override {
    if (marker && current().empty())
      cudaEventDestroy(event(marker));
  }

  std::string recordMarker(device::TimingMarker *marker) override {
    return check("cudaEventRecord", [&] { return cudaEventRecord(event(marker), stream); });
  }

  std::string elapsedMilliseconds(device::TimingMarker *start, device::TimingMarker *end,
                                  double &milliseconds) override {
    if (std::string error = check("cudaEventSynchronize", [&] { return cudaEventSynchronize(event(end)); });
        !error.empty())
      return error;
    float elapsed = 0;
    if (std::string error = check("cudaEventElapsedTime",
                                  [&] { return cudaEventElapsedTime(&elapsed, event(start), event(end)); });
        !error.empty())
      return error;
    milliseconds = elapsed;
    return {};
  }

  void *nativeStream() const override { return stream; }
  int deviceIndex() const override { return info.index; }
  int kernelsCompiled() const override { return compiled; }
  int kernelsFromCache() const override { return fromCache; }

private:
  /// Makes the backend's device current on the calling thread.
  std::string current() {
    cudaError_t status = cudaSetDevice(info.index);
    return status == cudaSuccess ? std::string() : failure("cudaSetDevice", status);
  }

  static cudaEvent_t event(device::TimingMarker *marker) { return reinterpret_cast<cudaEvent_t>(marker); }

  template <typename Call> std::string check(const char *what, Call call) {
    if (std::string error = current(); !error.empty())
      return error;
    cudaError_t status = call();
    return status == cudaSuccess ? std::string() : failure(what, status);
  }

  CudaBackendOptions options;
  DeviceInfo info;
  KernelCache cache;
  cudaStream_t stream = nullptr;
  std::unique_ptr<CublasLtGemm> gemms;
  struct Prepared {
    cudaLibrary_t library; // one CUBIN per kernel
    cudaKernel_t kernel;
  };
  std::map<std::string, Prepared> loaded; // by kernel name
  int compiled = 0, fromCache = 0;
};

std::string CudaBackendImpl::prepare(const std::vector<codegen::CudaKernel> &kernels) {
  std::vector<const codegen::CudaKernel *> todo;
  for (const codegen::CudaKernel &kernel : kernels)
    if (!loaded.count(kernel.name) &&
        std::none_of(todo.begin(), todo.end(), [&](const auto *k) { return k->name == kernel.name; }))
      todo.push_back(&kernel);
  if (todo.empty())
    return {};

  // NVRTC is thread-safe and each compilation takes tens of milliseconds: compile on every core.
  CompileOptions compileOptions;
  compileOptions.arch = info.arch();
  compileOptions.kind = CodeKind::Cubin;
  std::vector<std::string> images(todo.size()), errors(todo.size());
  const int hitsBefore = cache.hits(), missesBefore = cache.misses();
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < todo.size(); i = next++) {
      std::optional<std::string> image = cache.compile(todo[i]->name, todo[i]->source, compileOptions, errors[i]);
      if (image)
        images[i] = std::move(*image);
    }
  };
  const unsigned threads = std::min<unsigned>(
      unsigned(todo.size()),
      options.compileThreads > 0 ? unsigned(options.compileThreads) : std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (std::thread &t : pool)
    t.join();
  compiled += cache.misses() - missesBefore;
  fromCache += cache.hits() - hitsBefore;
  for (size_t i = 0; i < todo.size(); ++i)
    if (!errors[i].empty() || images[i].empty())
      return errors[i].empty() ? "NVRTC produced no code for " + todo[i]->name : errors[i];

  if (std::string error = current(); !error.empty())
    return error;
  for (size_t i = 0; i < todo.size(); ++i) {
    cudaLibrary_t library = nullptr;
    if (cudaError_t status =
            cudaLibraryLoadData(&library, images[i].data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
        status != cudaSuccess)
      return failure("cudaLibraryLoadData", status) + " for kernel " + todo[i]->name + " (sm_" +
             std::to_string(info.arch()) + ")";
    cudaKernel_t kernel = nullptr;
    if (cudaError_t status = cudaLibraryGetKernel(&kernel, library, todo[i]->name.c_str()); status != cudaSuccess) {
      cudaLibraryUnload(library);
      return failure("cudaLibraryGetKernel", status) + " for kernel " + todo[i]->name;
    }
    loaded[todo[i]->name] = Prepared{library, kernel};
  }
  return {};
}

} // namespace

std::unique_ptr<CudaBackend> createCudaBackend(const CudaBackendOptions &options, std::string &error) {
  std::optional<DeviceInfo> info = selectCudaDevice(options.device, error);
  if (!info)
    return nullptr;
  if (!haveNvrtc()) {
    error = "no CUDA kernels: this build has no NVRTC";
    return nullptr;
  }
  auto backend = std::make_unique<CudaBackendImpl>(options, *info);
  if (error = backend->initialize(); !error.empty()) {
    error = describe(*info) + ": " + error;
    return nullptr;
  }
  return backend;
}

#else

std::unique_ptr<CudaBackend> createCudaBackend(const CudaBackendOptions &, std::string &error) {
  (void)selectCudaDevice(0, error); // says that this build has no CUDA support
  return nullptr;
}

#endif

} // namespace megatron::cuda
