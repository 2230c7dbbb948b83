#include <cuda_runtime.h>

#include "haein/kernels/device.hpp"

namespace haein::kernels {

bool built_with_cuda() { return true; }

std::vector<DeviceInfo> visible_devices(std::string* reason) {
  std::vector<DeviceInfo> devices;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (reason != nullptr)
      *reason = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return devices;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, i) != cudaSuccess) continue;
    char bus_id[32] = {};
    cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, i);
    devices.push_back({i, properties.name, properties.major * 10 + properties.minor, bus_id});
  }
  if (devices.empty() && reason != nullptr) *reason = "CUDA reports no devices";
  return devices;
}

}  // namespace haein::kernels
