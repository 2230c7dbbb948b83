#include "haein/common/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"

namespace haein::log {

namespace {
constexpr int kUnset = -1;
std::atomic<int> g_level{kUnset};

Level level_from_environment() {
  try {
    return parse_level(settings::kLogLevel.get());
  } catch (const InvalidArgument& error) {
    std::fprintf(stderr, "[haein %s WARN] %s; using info\n", process_label().c_str(), error.what());
    return Level::kInfo;
  }
}
}  // namespace

Level level() {
  int current = g_level.load(std::memory_order_relaxed);
  if (current == kUnset) {
    current = static_cast<int>(level_from_environment());
    g_level.store(current, std::memory_order_relaxed);
  }
  return static_cast<Level>(current);
}

void set_level(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

Level parse_level(std::string_view text) {
  for (Level candidate :
       {Level::kError, Level::kWarn, Level::kInfo, Level::kDebug, Level::kTrace}) {
    if (text == level_name(candidate)) return candidate;
  }
  if (text == "warning") return Level::kWarn;
  throw InvalidArgument("HAEIN_LOG_LEVEL='" + std::string(text) +
                        "' is not one of error, warn, info, debug, trace");
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warn";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
    case Level::kTrace:
      return "trace";
  }
  return "info";
}

void write(Level level, std::string_view message) {
  static std::mutex mutex;
  std::string upper(level_name(level));
  for (char& c : upper) c = static_cast<char>(c - 'a' + 'A');
  const std::string line =
      "[haein " + process_label() + " " + upper + "] " + std::string(message) + "\n";
  std::lock_guard<std::mutex> lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace haein::log
