#pragma once
/// @file
/// The rank's side of `haein run --heartbeat-timeout`: the launcher names a file per rank
/// (HAEIN_HEARTBEAT_FILE) and watches its modification time; the rank touches it while it
/// makes progress. A rank whose file is older than the timeout is reported as hung. The
/// access time says the process still runs (the communicators' watchdog threads set it
/// while the rank waits), so that when every rank stops making progress, the one that
/// stopped running altogether (SIGSTOP, a debugger) is told from those waiting for it.

#include <chrono>
#include <string>

namespace haein::runtime {

class Heartbeat {
 public:
  /// The file from HAEIN_HEARTBEAT_FILE; disabled (beat() does nothing) when unset.
  static Heartbeat from_environment(
      std::chrono::milliseconds min_interval = std::chrono::milliseconds(500));

  /// Touches `file` at most once per `min_interval`; an empty file disables it.
  explicit Heartbeat(std::string file,
                     std::chrono::milliseconds min_interval = std::chrono::milliseconds(500));

  /// Call on progress (a finished collective, a training step). Costs one clock read
  /// unless the interval has passed; then one utimensat (the file is created when
  /// missing). Never throws: a heartbeat that cannot be written shows as a hang.
  void beat();
  /// Call while the process runs, whatever its progress (a watchdog thread does): sets the
  /// file's access time alone, at most once per interval; the first call writes one line
  /// into the empty file, which tells haein run that the access time is kept moving. Never
  /// throws. Another thread may call beat() meanwhile.
  void alive();

  bool enabled() const { return !file_.empty(); }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::chrono::steady_clock::duration min_interval_;
  std::chrono::steady_clock::time_point last_{};
  bool beaten_ = false;
  std::chrono::steady_clock::time_point last_alive_{};  ///< alive()'s own: another thread
  bool marked_ = false;  ///< alive() wrote its line into the file (once)
};

}  // namespace haein::runtime
