#pragma once
/// @file
/// The one list of HAEIN_* environment settings. Add a setting here and in settings.cpp;
/// nothing else in haein calls getenv for a HAEIN_ variable.

#include "haein/common/env.hpp"

namespace haein::settings {

/// HAEIN_LOG_LEVEL: error, warn, info, debug or trace.
extern const env::StringSetting kLogLevel;
/// HAEIN_NVML_LIBRARY: the NVML shared library that discovery dlopens.
extern const env::StringSetting kNvmlLibrary;
/// HAEIN_SYSFS_ROOT: root of the sysfs tree that discovery reads (tests point it elsewhere).
extern const env::StringSetting kSysfsRoot;

/// HAEIN_PLACEMENT: path of this job's placement JSON (set by `haein run`).
extern const env::StringSetting kPlacement;
/// HAEIN_RESTART_COUNT: how many times `haein run` restarted this job (0 on the first run).
extern const env::IntSetting kRestartCount;
/// HAEIN_HEARTBEAT_FILE: the file a rank touches while it makes progress (set by haein run
/// with --heartbeat-timeout).
extern const env::StringSetting kHeartbeatFile;
/// HAEIN_STOP_GRACE: seconds between SIGTERM and SIGKILL when haein run stops ranks.
extern const env::SecondsSetting kStopGrace;

/// HAEIN_CHECK_COLLECTIVES: ranks compare each collective's fingerprint before running it.
extern const env::BoolSetting kCheckCollectives;
/// HAEIN_TIMEOUT: seconds after which the watchdog declares an operation hung.
extern const env::SecondsSetting kTimeout;
/// HAEIN_TIMELINE: Chrome-trace JSON file that every rank's operations are written to.
extern const env::StringSetting kTimeline;
/// HAEIN_DUMP_DIR: directory of flight-recorder dumps (default $TMPDIR, else /tmp).
extern const env::StringSetting kDumpDir;

}  // namespace haein::settings
