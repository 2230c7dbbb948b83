// A stand-in for libnvidia-ml.so.1 (HAEIN_NVML_LIBRARY) that, like the NVIDIA driver,
// starts a helper thread in nvmlInit_v2 that lives as long as the process. It reports no
// GPUs. Tests use it to check that such threads never take haein run's signals.
#include <unistd.h>

#include <thread>

extern "C" {

int nvmlInit_v2() {
  std::thread([] {
    for (;;) pause();
  }).detach();
  return 0;
}

int nvmlShutdown() { return 0; }

int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = 0;
  return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int, void**) { return 1; }

int nvmlDeviceGetPciInfo_v3(void*, void*) { return 1; }

}  // extern "C"
