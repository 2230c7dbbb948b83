#pragma once
/// @file
/// What CUDA devices this process can use. Host-only builds report none.

#include <string>
#include <vector>

namespace haein::kernels {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability = 0;  ///< 90 for sm_90, 100 for sm_100
  std::string pci_bus_id;
};

/// True when this build has CUDA kernels (HAEIN_WITH_CUDA found CUDA and NCCL).
bool built_with_cuda();

/// The visible CUDA devices; empty without a GPU, without a driver or in a host-only
/// build. `reason` (optional) receives why the list is empty.
std::vector<DeviceInfo> visible_devices(std::string* reason = nullptr);

}  // namespace haein::kernels
