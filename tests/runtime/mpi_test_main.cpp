// main() of the runtime's MPI test programs: one world communicator for all tests, and
// an exit code that is non-zero on every rank when a test failed on any rank.
#include "mpi_test_main.hpp"

#include <gtest/gtest.h>

namespace {
haein::runtime::Communicator* g_world = nullptr;
}

namespace haein::test {
runtime::Communicator& world() { return *g_world; }
}  // namespace haein::test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  haein::runtime::Communicator world = haein::runtime::Communicator::world();
  g_world = &world;
  if (world.rank() != 0) {
    // Other ranks print only failures; rank 0 prints the whole run.
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    testing::GTEST_FLAG(brief) = true;
  }
  const std::int32_t failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  std::int32_t any = 0;
  world.all_reduce(&failed, &any, 1, haein::runtime::DataType::kI32,
                   haein::runtime::ReduceOp::kMax);
  g_world = nullptr;
  return any;
}
