#pragma once
/// @file
/// Kernel launches that report their own error. `kernel<<<...>>>` followed by
/// `cudaGetLastError()` also reports whatever error an earlier, unrelated call left
/// behind (cudaEventQuery's cudaErrorNotReady, for one), and a good launch then throws.
/// cudaLaunchKernelEx returns the status of this launch only. For .cu files.

#include <cuda_runtime.h>

#include <utility>

#include "haein/common/check.hpp"

namespace haein::kernels {

/// Launches `kernel` with `blocks` x `threads` on `stream`; throws CudaError naming `what`.
template <typename... Parameters, typename... Arguments>
void launch_kernel(const char* what, void (*kernel)(Parameters...), unsigned blocks,
                   unsigned threads, cudaStream_t stream, Arguments&&... arguments) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  const cudaError_t status =
      cudaLaunchKernelEx(&config, kernel, std::forward<Arguments>(arguments)...);
  if (status != cudaSuccess)
    ::haein::detail::raise_cuda_error(what, static_cast<int>(status), cudaGetErrorName(status),
                                      cudaGetErrorString(status), __FILE__, __LINE__);
}

}  // namespace haein::kernels
