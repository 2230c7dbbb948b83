// A trainer with a bug, for the watchdog test: every rank runs a few all-reduces, then
// rank 1 skips one and sleeps while the others wait in it. With the argument "section",
// rank 1 sleeps inside a watched section instead (a checkpoint's I/O that never ends),
// opened a second before the others enter the next all-reduce. With "mismatch", rank 1
// broadcasts where the others all-reduce. With "late", rank 1 sleeps before it creates its
// communicator. With "bucketer", rank 1 never begins the gradient bucketer's first step,
// whose model check the others wait in. Started by mpirun.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"

int main(int argc, char** argv) {
  using namespace haein::runtime;
  if (argc > 1 && std::string(argv[1]) == "late") {
    // Rank 1 never starts its communicator (nor MPI): the others wait in MPI_Init.
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    if (rank != nullptr && std::string(rank) == "1")
      std::this_thread::sleep_for(std::chrono::seconds(600));
  }
  Communicator comm = Communicator::world();
  std::vector<float> data(1024, 1.0f);
  for (int step = 0; step < 5; ++step)
    comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF32, ReduceOp::kAvg);
  if (argc > 1 && std::string(argv[1]) == "section") {
    if (comm.rank() == 1) {
      const auto watched = comm.watch_section("checkpoint write");
      std::this_thread::sleep_for(std::chrono::seconds(600));
    } else {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF32, ReduceOp::kSum);
    }
    std::this_thread::sleep_for(std::chrono::seconds(600));
    std::puts("not reached: the watchdog stops every rank");
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "bucketer") {
    if (comm.rank() != 1) {
      GradBucketer bucketer(comm);
      bucketer.register_parameter("weight", data.data(), data.size(), DataType::kF32);
      bucketer.begin_step();
    }
    std::this_thread::sleep_for(std::chrono::seconds(600));
    std::puts("not reached: the watchdog stops every rank");
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "mismatch") {
    // Rank 1 broadcasts where the others all-reduce: the same sequence number, another op.
    if (comm.rank() == 1)
      comm.broadcast(data.data(), data.data(), data.size(), DataType::kF32, 0);
    else
      comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF32, ReduceOp::kSum);
    std::this_thread::sleep_for(std::chrono::seconds(600));
    std::puts("not reached: the watchdog stops every rank");
    return 0;
  }
  if (comm.rank() != 1)
    comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF32, ReduceOp::kSum);
  std::this_thread::sleep_for(std::chrono::seconds(600));
  std::puts("not reached: the watchdog stops every rank");
  return 0;
}
