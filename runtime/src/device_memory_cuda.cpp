// CUDA runtime calls behind device_memory.hpp.
#include <cuda_runtime.h>

#include "device_memory.hpp"
#include "haein/common/check.hpp"
#include "haein/common/log.hpp"
#include "haein/kernels/device.hpp"

namespace haein::runtime::detail {

namespace {
cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }
}  // namespace

void DeviceFree::operator()(void* pointer) const noexcept {
  if (const cudaError_t status = cudaFree(pointer); status != cudaSuccess)
    HAEIN_LOG(kWarn, "cudaFree of a bucket failed: " << cudaGetErrorString(status));
}

DeviceMemory allocate_device(std::size_t bytes, int device) {
  const kernels::DeviceGuard guard(device);  // the caller's current device stays its own
  void* pointer = nullptr;
  HAEIN_CUDA_CHECK(cudaMalloc(&pointer, bytes == 0 ? 1 : bytes));
  return DeviceMemory(pointer);
}

void StreamDestroy::operator()(void* stream) const noexcept {
  if (const cudaError_t status = cudaStreamDestroy(as_stream(stream)); status != cudaSuccess)
    HAEIN_LOG(kWarn, "cudaStreamDestroy failed: " << cudaGetErrorString(status));
}

DeviceStream create_stream(int device) {
  const kernels::DeviceGuard guard(device);
  cudaStream_t stream = nullptr;
  HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return DeviceStream(stream);
}

void stream_wait(void* waiter, void* signaller) {
  cudaEvent_t event = nullptr;
  HAEIN_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  HAEIN_CUDA_CHECK(cudaEventRecord(event, as_stream(signaller)));
  const cudaError_t status = cudaStreamWaitEvent(as_stream(waiter), event, 0);
  cudaEventDestroy(event);  // released once the recorded work completes
  HAEIN_CUDA_CHECK(status);
}

void memset_async(void* pointer, int value, std::size_t bytes, void* stream) {
  HAEIN_CUDA_CHECK(cudaMemsetAsync(pointer, value, bytes, as_stream(stream)));
}

void copy_async(void* destination, const void* source, std::size_t bytes, void* stream) {
  HAEIN_CUDA_CHECK(
      cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, as_stream(stream)));
}

void synchronize(void* stream) { HAEIN_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream))); }

}  // namespace haein::runtime::detail
