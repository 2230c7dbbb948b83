#include "haein/kernels/device.hpp"

namespace haein::kernels {

bool built_with_cuda() { return false; }

std::vector<DeviceInfo> visible_devices(std::string* reason) {
  if (reason != nullptr) *reason = "this haein was built without CUDA (host-only build)";
  return {};
}

DeviceGuard::DeviceGuard(int) {}
DeviceGuard::~DeviceGuard() = default;

int stream_device(void*) { return -1; }

PointerInfo classify_pointer(const void*) { return {}; }

}  // namespace haein::kernels
