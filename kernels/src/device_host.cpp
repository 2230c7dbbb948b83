#include "haein/kernels/device.hpp"

namespace haein::kernels {

bool built_with_cuda() { return false; }

std::vector<DeviceInfo> visible_devices(std::string* reason) {
  if (reason != nullptr) *reason = "this haein was built without CUDA (host-only build)";
  return {};
}

}  // namespace haein::kernels
