#include "haein/kernels/device.hpp"

#include <gtest/gtest.h>

#include "gpu.hpp"
#include "haein/common/version.hpp"

namespace haein::kernels {
namespace {

TEST(Device, BuildFlagAgreesWithTheLibrary) { EXPECT_EQ(built_with_cuda(), kBuiltWithCuda); }

TEST(Device, NoDeviceComesWithAReason) {
  std::string reason;
  const std::vector<DeviceInfo> devices = visible_devices(&reason);
  if (devices.empty()) {
    EXPECT_FALSE(reason.empty());
  }
}

// gpu label: runs on a GPU machine, skips visibly elsewhere.
TEST(DeviceGpu, ReportsHopperOrBlackwell) {
  HAEIN_SKIP_WITHOUT_GPU();
  const std::vector<DeviceInfo> devices = visible_devices();
  for (const DeviceInfo& device : devices) {
    EXPECT_FALSE(device.name.empty());
    EXPECT_GE(device.compute_capability, 90) << device.name << " is older than Hopper";
    EXPECT_FALSE(device.pci_bus_id.empty());
  }
}

}  // namespace
}  // namespace haein::kernels
