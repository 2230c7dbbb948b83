#include "haein/common/settings.hpp"

#include <array>

namespace haein::settings {

const env::StringSetting kLogLevel{"HAEIN_LOG_LEVEL", "info",
                                   "log level: error, warn, info, debug or trace"};
const env::StringSetting kNvmlLibrary{"HAEIN_NVML_LIBRARY", "libnvidia-ml.so.1",
                                      "NVML library loaded by node discovery"};
const env::StringSetting kSysfsRoot{"HAEIN_SYSFS_ROOT", "/sys",
                                    "sysfs root read by node discovery"};

const env::StringSetting kPlacement{"HAEIN_PLACEMENT", "",
                                    "placement JSON of this job, set by haein run"};

}  // namespace haein::settings

namespace haein::env {

std::span<const Setting* const> all_settings() {
  static const std::array<const Setting*, 4> settings = {
      &settings::kLogLevel, &settings::kNvmlLibrary, &settings::kSysfsRoot, &settings::kPlacement};
  return settings;
}

}  // namespace haein::env
