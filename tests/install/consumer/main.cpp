#include <cstdint>
#include <cstring>
#include <iostream>

#include "haein/common/version.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/rank_environment.hpp"

// Without arguments: prints what the environment contract says. With "allreduce": joins
// the MPI world through haein::runtime::Communicator and sums the ranks.
int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "allreduce") == 0) {
    haein::runtime::Communicator world = haein::runtime::Communicator::world();
    std::int64_t mine = world.rank() + 1, sum = 0;
    world.all_reduce(&mine, &sum, 1, haein::runtime::DataType::kI64,
                     haein::runtime::ReduceOp::kSum);
    std::cout << "rank " << world.rank() << " of " << world.size() << " sum " << sum << "\n";
    return 0;
  }
  const haein::runtime::RankEnvironment env = haein::runtime::read_rank_environment();
  std::cout << "haein " << haein::kVersion << " rank " << env.rank << " of " << env.world_size
            << " (" << env.source << ")\n";
  return 0;
}
