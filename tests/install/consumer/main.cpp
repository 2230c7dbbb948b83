#include <iostream>

#include "haein/common/version.hpp"
#include "haein/runtime/rank_environment.hpp"

int main() {
  const haein::runtime::RankEnvironment env = haein::runtime::read_rank_environment();
  std::cout << "haein " << haein::kVersion << " rank " << env.rank << " of " << env.world_size
            << " (" << env.source << ")\n";
  return 0;
}
