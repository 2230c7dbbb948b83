#pragma once
// The few CUDA runtime calls the bucketer needs for device buckets: memory, a stream,
// ordering between streams, async copies. Implemented in device_memory_cuda.cpp; host-only
// builds get device_backend_none.cpp's versions, which say the build has no CUDA.

#include <cstddef>
#include <memory>

namespace haein::runtime::detail {

/// Device memory owned by a unique_ptr (cudaFree in the deleter, errors logged).
struct DeviceFree {
  void operator()(void* pointer) const noexcept;
};
using DeviceMemory = std::unique_ptr<void, DeviceFree>;
DeviceMemory allocate_device(std::size_t bytes, int device);

/// A non-blocking stream on `device`, destroyed by the deleter.
struct StreamDestroy {
  void operator()(void* stream) const noexcept;
};
using DeviceStream = std::unique_ptr<void, StreamDestroy>;
DeviceStream create_stream(int device);

/// Work queued on `waiter` from now on waits for what is queued on `signaller` so far.
void stream_wait(void* waiter, void* signaller);
void memset_async(void* pointer, int value, std::size_t bytes, void* stream);
void copy_async(void* destination, const void* source, std::size_t bytes, void* stream);
void synchronize(void* stream);

}  // namespace haein::runtime::detail
