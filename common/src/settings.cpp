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
const env::IntSetting kRestartCount{"HAEIN_RESTART_COUNT", "0",
                                    "restarts of this job so far, set by haein run"};
const env::StringSetting kHeartbeatFile{
    "HAEIN_HEARTBEAT_FILE", "",
    "file this rank touches while it makes progress, set by haein run --heartbeat-timeout"};
const env::SecondsSetting kStopGrace{"HAEIN_STOP_GRACE", "3",
                                     "seconds from SIGTERM to SIGKILL when haein run stops ranks"};

const env::BoolSetting kCheckCollectives{
    "HAEIN_CHECK_COLLECTIVES", "0",
    "compare every collective's fingerprint across ranks before running it"};
const env::SecondsSetting kTimeout{
    "HAEIN_TIMEOUT", "600",
    "seconds before the watchdog declares an operation (or communicator creation) hung"};
const env::StringSetting kTimeline{"HAEIN_TIMELINE", "",
                                   "Chrome-trace JSON file of every rank's operations"};
const env::StringSetting kDumpDir{"HAEIN_DUMP_DIR", "",
                                  "directory of flight-recorder dumps (default $TMPDIR or /tmp)"};

}  // namespace haein::settings

namespace haein::env {

std::span<const Setting* const> all_settings() {
  static const std::array<const Setting*, 11> settings = {
      &settings::kLogLevel,  &settings::kNvmlLibrary,      &settings::kSysfsRoot,
      &settings::kPlacement, &settings::kRestartCount,     &settings::kHeartbeatFile,
      &settings::kStopGrace, &settings::kCheckCollectives, &settings::kTimeout,
      &settings::kTimeline,  &settings::kDumpDir};
  return settings;
}

}  // namespace haein::env
