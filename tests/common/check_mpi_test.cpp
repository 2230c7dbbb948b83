// HAEIN_MPI_CHECK on a real failing MPI call, run under mpirun with several ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include "haein/common/check.hpp"
#include "haein/common/process.hpp"

namespace haein {
namespace {

TEST(CheckMacros, MpiFailureNamesTheCallAndRank) {
  int rank = -1, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_GE(size, 2) << "run under mpirun -np 2 or more";
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int value = rank;
  try {
    HAEIN_MPI_CHECK(MPI_Send(&value, 1, MPI_INT, size + 5, 0, MPI_COMM_WORLD));
    FAIL() << "MPI_Send to a missing rank succeeded";
  } catch (const MpiError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("MPI_Send(&value, 1, MPI_INT, size + 5, 0, MPI_COMM_WORLD)"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find(host_name() + ":" + std::to_string(rank)), std::string::npos) << what;
    EXPECT_NE(error.code(), MPI_SUCCESS);
  }
  // The ranks still work together after the error.
  int sum = 0;
  HAEIN_MPI_CHECK(MPI_Allreduce(&value, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  EXPECT_EQ(sum, size * (size - 1) / 2);
}

}  // namespace
}  // namespace haein

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) testing::TestEventListeners().Release(nullptr);
  const int result = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
