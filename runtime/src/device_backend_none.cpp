// Host-only build: no pointer is device memory, and there is no NCCL backend.
#include "device_backend.hpp"
#include "haein/common/error.hpp"

namespace haein::runtime::detail {

bool is_device_memory(const void*) { return false; }

bool any_device() { return false; }

int device_of(const void*) { return -1; }

MemoryPlace place_of(const void*) { return {}; }

std::unique_ptr<DeviceBackend> make_device_backend(Bootstrap&, int, std::chrono::milliseconds) {
  throw NotInThisBuild("the NCCL backend");
}

}  // namespace haein::runtime::detail

// device_memory.hpp: nothing to free or destroy, and nothing can be allocated.
#include "device_memory.hpp"

namespace haein::runtime::detail {

namespace {
[[noreturn]] void no_device(const char* what) { throw NotInThisBuild(what); }
}  // namespace

void DeviceFree::operator()(void*) const noexcept {}
DeviceMemory allocate_device(std::size_t, int) { no_device("device bucket memory"); }
void StreamDestroy::operator()(void*) const noexcept {}
DeviceStream create_stream(int) { no_device("device stream"); }
void stream_wait(void*, void*) { no_device("stream ordering"); }
void memset_async(void*, int, std::size_t, void*) { no_device("device memset"); }
void copy_async(void*, const void*, std::size_t, void*) { no_device("device copy"); }
void synchronize(void*) { no_device("stream synchronisation"); }

}  // namespace haein::runtime::detail
