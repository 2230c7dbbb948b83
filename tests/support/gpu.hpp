#pragma once
// Skipping GPU tests without a GPU, and failing them where a GPU should be usable: on a
// machine whose driver exposes a device (/dev/nvidia0 ...), "no GPU" means the build, the
// runtime or the driver is broken, and `ctest -L gpu` must not pass with every test skipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "haein/kernels/device.hpp"

namespace haein::test {

/// Why a usable GPU is expected here, or empty when none is.
inline std::string gpu_expected() {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/dev", error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 6 && name.rfind("nvidia", 0) == 0 &&
        name.find_first_not_of("0123456789", 6) == std::string::npos)
      return "/dev/" + name + " exists (the NVIDIA driver exposes a GPU)";
  }
  return {};
}

}  // namespace haein::test

/// Skips the current test without a visible CUDA device, naming the reason; fails it
/// instead when the machine has a GPU that CUDA cannot use.
#define HAEIN_SKIP_WITHOUT_GPU()                                                             \
  do {                                                                                       \
    std::string haein_no_gpu_reason_;                                                        \
    if (::haein::kernels::visible_devices(&haein_no_gpu_reason_).empty()) {                  \
      const std::string haein_expected_ = ::haein::test::gpu_expected();                     \
      if (!haein_expected_.empty())                                                          \
        FAIL() << "no usable GPU (" << haein_no_gpu_reason_ << "), but " << haein_expected_; \
      GTEST_SKIP() << "no GPU: " << haein_no_gpu_reason_;                                    \
    }                                                                                        \
  } while (0)
