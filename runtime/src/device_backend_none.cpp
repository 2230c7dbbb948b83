// Host-only build: no pointer is device memory, and there is no NCCL backend.
#include "device_backend.hpp"
#include "haein/common/error.hpp"

namespace haein::runtime::detail {

bool is_device_memory(const void*) { return false; }

bool any_device() { return false; }

int device_of(const void*) { return -1; }

std::unique_ptr<DeviceBackend> make_device_backend(Bootstrap&, int, std::chrono::milliseconds) {
  throw InvalidArgument(
      "the NCCL backend is not in this build of haein (configured without CUDA and NCCL; "
      "rebuild with HAEIN_WITH_CUDA=ON on a machine that has them)");
}

}  // namespace haein::runtime::detail
