#pragma once
/// @file
/// Logging with levels and a "[haein host:rank LEVEL]" prefix on stderr. The level comes
/// from HAEIN_LOG_LEVEL (error, warn, info, debug, trace; default info).

#include <sstream>
#include <string>
#include <string_view>

namespace haein::log {

enum class Level : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

/// The level in effect (read from HAEIN_LOG_LEVEL once, or set by set_level).
Level level();
void set_level(Level level);
/// Parses "error", "warn", "info", "debug", "trace"; throws InvalidArgument otherwise.
Level parse_level(std::string_view text);
std::string_view level_name(Level level);

/// Writes one line with the prefix. Thread-safe: lines never interleave.
void write(Level level, std::string_view message);

inline bool enabled(Level at) { return static_cast<int>(at) <= static_cast<int>(level()); }

}  // namespace haein::log

/// Stream-style logging that formats only when the level is enabled:
/// HAEIN_LOG(kWarn, "NVML not found at " << path).
#define HAEIN_LOG(level_enum, stream_expr)                                           \
  do {                                                                               \
    if (::haein::log::enabled(::haein::log::Level::level_enum)) {                    \
      std::ostringstream haein_log_stream_;                                          \
      haein_log_stream_ << stream_expr;                                              \
      ::haein::log::write(::haein::log::Level::level_enum, haein_log_stream_.str()); \
    }                                                                                \
  } while (0)
