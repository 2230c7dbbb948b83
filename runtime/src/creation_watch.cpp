#include "creation_watch.hpp"

#include <cstdio>
#include <cstdlib>

#include "haein/common/process.hpp"

namespace haein::runtime::detail {

CreationWatch::CreationWatch(std::chrono::milliseconds timeout, std::string step)
    : step_(std::move(step)) {
  if (timeout.count() <= 0) return;  // refused by the communicator itself
  thread_ = std::thread([this, timeout] {
    std::unique_lock lock(mutex_);
    if (done_.wait_for(lock, timeout, [this] { return finished_; })) return;
    std::fprintf(stderr,
                 "haein: %s: communicator creation timed out after %g s (HAEIN_TIMEOUT) in %s: "
                 "a rank that never started or never got there, or a host that cannot be "
                 "reached, keeps the others waiting; this rank stops\n",
                 process_label().c_str(), std::chrono::duration<double>(timeout).count(),
                 step_.c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(kTimeoutExitCode);
  });
}

CreationWatch::~CreationWatch() {
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
  }
  done_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void CreationWatch::step(std::string now) {
  std::lock_guard lock(mutex_);
  step_ = std::move(now);
}

}  // namespace haein::runtime::detail
