// A rank that makes progress for a while and beats its heartbeat, as a trainer linked with
// the runtime does; the rank named on the command line stops beating (hangs) halfway.
// Usage: heartbeat_rank SECONDS [HUNG_RANK]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "haein/runtime/heartbeat.hpp"
#include "haein/runtime/rank_environment.hpp"

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const int hung_rank = argc > 2 ? std::atoi(argv[2]) : -1;
  const int rank = haein::runtime::read_rank_environment().rank;
  haein::runtime::Heartbeat heartbeat =
      haein::runtime::Heartbeat::from_environment(std::chrono::milliseconds(100));
  std::printf("rank %d: heartbeat %s\n", rank,
              heartbeat.enabled() ? heartbeat.file().c_str() : "(none)");
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= seconds) break;
    if (rank != hung_rank || elapsed < seconds / 4) heartbeat.beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("rank %d: done\n", rank);
  return 0;
}
