#pragma once
// The watchdog for the stretch before a communicator has one: MPI_Init, MPI_Comm_dup and
// the exchange of rank information at creation. A rank that never starts, or a host that
// is unreachable, would otherwise keep every other rank waiting there forever.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace haein::runtime::detail {

/// How a rank ends when a watchdog finds it stuck (as timeout(1) does).
inline constexpr int kTimeoutExitCode = 124;

/// Ends this process (kTimeoutExitCode, as the watchdog) with a message naming the step when
/// it has not been destroyed within `timeout` (HAEIN_TIMEOUT); none when that is not
/// positive.
class CreationWatch {
 public:
  CreationWatch(std::chrono::milliseconds timeout, std::string step);
  ~CreationWatch();
  CreationWatch(const CreationWatch&) = delete;
  CreationWatch& operator=(const CreationWatch&) = delete;

  /// Names the step now under way (for the message).
  void step(std::string now);

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  bool finished_ = false;
  std::string step_;
  std::thread thread_;
};

}  // namespace haein::runtime::detail
