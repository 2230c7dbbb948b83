// Current-device handling and pointer classification through the CUDA driver API, reached
// with cudaGetDriverEntryPointByVersion so that nothing links libcuda (a machine without
// a driver still loads the library). The runtime API cannot do either job without side
// effects: cudaSetDevice and cudaPointerGetAttributes create a primary context, so a host
// collective of a rank that never chose a GPU used to put ~0.5 GB on GPU 0.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include "haein/common/check.hpp"
#include "haein/common/log.hpp"
#include "haein/kernels/device.hpp"

namespace haein::kernels {

namespace {

struct Driver {
  PFN_cuCtxGetCurrent_v4000 context_get = nullptr;
  PFN_cuCtxSetCurrent_v4000 context_set = nullptr;
  PFN_cuPointerGetAttributes_v7000 pointer_attributes = nullptr;
  PFN_cuDeviceGetCount_v2000 device_count = nullptr;
  PFN_cuDeviceGet_v2000 device_get = nullptr;
  PFN_cuDevicePrimaryCtxGetState_v7000 primary_state = nullptr;
};

template <class Function>
Function entry(const char* symbol, unsigned version) {
  void* function = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion(symbol, &function, version, cudaEnableDefault, &found) !=
          cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    cudaGetLastError();  // no driver: the callers fall back, nothing is sticky
    return nullptr;
  }
  return reinterpret_cast<Function>(function);
}

const Driver& driver() {
  static const Driver loaded = [] {
    Driver d;
    auto init = entry<PFN_cuInit_v2000>("cuInit", 2000);
    if (init == nullptr || init(0) != CUDA_SUCCESS) return d;
    d.context_get = entry<PFN_cuCtxGetCurrent_v4000>("cuCtxGetCurrent", 4000);
    d.context_set = entry<PFN_cuCtxSetCurrent_v4000>("cuCtxSetCurrent", 4000);
    d.pointer_attributes = entry<PFN_cuPointerGetAttributes_v7000>("cuPointerGetAttributes", 7000);
    d.device_count = entry<PFN_cuDeviceGetCount_v2000>("cuDeviceGetCount", 2000);
    d.device_get = entry<PFN_cuDeviceGet_v2000>("cuDeviceGet", 2000);
    d.primary_state =
        entry<PFN_cuDevicePrimaryCtxGetState_v7000>("cuDevicePrimaryCtxGetState", 7000);
    return d;
  }();
  return loaded;
}

/// False when the driver says this process has no context at all (no primary context
/// active, none current): then no pointer can be device memory, and asking the runtime
/// would create one. True when contexts exist or the driver cannot tell.
bool any_context(const Driver& d) {
  if (d.device_count == nullptr || d.device_get == nullptr || d.primary_state == nullptr ||
      d.context_get == nullptr)
    return true;
  CUcontext current = nullptr;
  if (d.context_get(&current) != CUDA_SUCCESS || current != nullptr) return true;
  int count = 0;
  if (d.device_count(&count) != CUDA_SUCCESS) return true;
  for (int i = 0; i < count; ++i) {
    CUdevice device = 0;
    unsigned flags = 0;
    int active = 0;
    if (d.device_get(&device, i) != CUDA_SUCCESS ||
        d.primary_state(device, &flags, &active) != CUDA_SUCCESS || active != 0)
      return true;
  }
  return false;
}

}  // namespace

DeviceGuard::DeviceGuard(int device) {
  const Driver& d = driver();
  CUcontext context = nullptr;
  if (d.context_get != nullptr && d.context_set != nullptr &&
      d.context_get(&context) == CUDA_SUCCESS) {
    previous_context_ = context;
    // Without a current context there is no device to compare with: switch.
    if (context != nullptr && cudaGetDevice(&previous_device_) == cudaSuccess &&
        previous_device_ == device)
      return;
  } else {
    HAEIN_CUDA_CHECK(cudaGetDevice(&previous_device_));
    if (previous_device_ == device) return;
  }
  HAEIN_CUDA_CHECK(cudaSetDevice(device));
  changed_ = true;
}

DeviceGuard::~DeviceGuard() {
  if (!changed_) return;
  const Driver& d = driver();
  if (d.context_set != nullptr) {
    if (d.context_set(static_cast<CUcontext>(previous_context_)) != CUDA_SUCCESS)
      HAEIN_LOG(kWarn, "DeviceGuard: cuCtxSetCurrent could not restore the caller's context");
    return;
  }
  if (const cudaError_t status = cudaSetDevice(previous_device_); status != cudaSuccess)
    HAEIN_LOG(kWarn, "DeviceGuard: cudaSetDevice(" << previous_device_
                                                   << "): " << cudaGetErrorString(status));
}

int stream_device(void* stream) {
  int device = 0;
  auto s = static_cast<cudaStream_t>(stream);
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread)
    HAEIN_CUDA_CHECK(cudaGetDevice(&device));
  else
    HAEIN_CUDA_CHECK(cudaStreamGetDevice(s, &device));
  return device;
}

PointerInfo classify_pointer(const void* pointer) {
  PointerInfo info;
  if (pointer == nullptr) return info;
  const Driver& d = driver();
  if (d.pointer_attributes != nullptr) {
    // Unlike cuPointerGetAttribute, this answers CUDA_SUCCESS with zeroed values for
    // memory CUDA does not know. With unified addressing it should need no current
    // context (not yet seen on a GPU; the kit's host-context check tells); where it
    // fails, the fallback below still creates none in a process that has none.
    unsigned int memory_type = 0;
    unsigned int managed = 0;
    int ordinal = -1;
    CUpointer_attribute attributes[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                        CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                        CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
    void* values[] = {&memory_type, &managed, &ordinal};
    if (d.pointer_attributes(3, attributes, values, reinterpret_cast<CUdeviceptr>(pointer)) ==
        CUDA_SUCCESS) {
      if (managed != 0)
        info.kind = MemoryKind::kManaged;
      else if (memory_type == CU_MEMORYTYPE_DEVICE)
        info.kind = MemoryKind::kDevice;
      else
        return info;  // host: pageable, pinned or unknown to CUDA
      info.device = ordinal;
      return info;
    }
  }
  // The driver could not answer: the runtime's (which creates a context if there is none,
  // so only where one exists already).
  if (!any_context(d)) return info;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return info;
  }
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    cudaGetLastError();
    return info;
  }
  if (attributes.type == cudaMemoryTypeDevice) info.kind = MemoryKind::kDevice;
  if (attributes.type == cudaMemoryTypeManaged) info.kind = MemoryKind::kManaged;
  if (info.kind != MemoryKind::kHost) info.device = attributes.device;
  return info;
}

}  // namespace haein::kernels
