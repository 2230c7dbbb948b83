// A trainer with a bug, for the watchdog test: every rank runs a few all-reduces, then
// rank 1 skips one and sleeps while the others wait in it. Started by mpirun.
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "haein/runtime/communicator.hpp"

int main() {
  using namespace haein::runtime;
  Communicator comm = Communicator::world();
  std::vector<float> data(1024, 1.0f);
  for (int step = 0; step < 5; ++step)
    comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF32, ReduceOp::kAvg);
  if (comm.rank() != 1)
    comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF32, ReduceOp::kSum);
  std::this_thread::sleep_for(std::chrono::seconds(600));
  std::puts("not reached: the watchdog stops every rank");
  return 0;
}
