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

/// Makes `device` current for its lifetime, then gives the calling thread back exactly the
/// CUDA context it had (none included). A thread that drives several GPUs keeps its own
/// choice, and no context appears on a device nobody chose (cudaSetDevice creates one).
/// A no-op in host-only builds.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  void* previous_context_ = nullptr;  ///< CUcontext, null when the thread had none
  int previous_device_ = -1;
  bool changed_ = false;
};

/// The device `stream` (a cudaStream_t) belongs to; for the default stream (nullptr), the
/// current device.
int stream_device(void* stream);

enum class MemoryKind { kHost, kDevice, kManaged };

struct PointerInfo {
  MemoryKind kind = MemoryKind::kHost;
  int device = -1;  ///< the owning device for kDevice/kManaged
};

/// What `pointer` is, asked of the driver without creating a CUDA context (host memory of
/// a process that never touched a GPU stays context-free). Host-only builds and machines
/// without a driver: always kHost.
PointerInfo classify_pointer(const void* pointer);

}  // namespace haein::kernels
