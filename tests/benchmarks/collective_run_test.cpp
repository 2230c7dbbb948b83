// haein-bench collective under the real mpirun: every operation's results are right in and
// out of place on 2 and 3 ranks, the CSV parses, h5dump finds the datasets and attributes,
// and bad input exits 2 with the reason.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run_command.hpp"

namespace {

namespace fs = std::filesystem;

using haein::test::Result;
using haein::test::run;
using haein::test::split;

std::string bench(int ranks, const std::string& args) {
  return std::string(MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np " +
         std::to_string(ranks) + " " + HAEIN_BENCH + " collective " + args;
}

TEST(BenchRun, EveryOperationIsRightInAndOutOfPlace) {
  for (int ranks : {2, 3}) {
    for (const char* op :
         {"allreduce", "reducescatter", "allgather", "broadcast", "reduce", "alltoall"}) {
      for (const char* type : {"float", "bfloat16", "int32"}) {
        const Result r =
            run(bench(ranks, std::string("--op ") + op + " -d " + type +
                                 " -o prod -r 1 -b 24 -e 6K -f 16 -n 2 -w 1 -R 2 -c 1"));
        ASSERT_EQ(r.exit_code, 0) << op << " " << type << " on " << ranks << " ranks\n" << r.output;
        EXPECT_NE(r.output.find("# Out of bounds values : 0 OK"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("# Avg bus bandwidth    : "), std::string::npos);
      }
    }
  }
}

TEST(BenchRun, CsvParsesAndHdf5HasTheDatasetsAndAttributes) {
  const fs::path dir = fs::temp_directory_path() / ("haein-bench-test-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string csv = (dir / "r.csv").string();
  const std::string hdf5 = (dir / "r.h5").string();
  const Result r = run(
      bench(2, "-b 1K -e 64K -f 4 -n 5 -w 1 -R 3 --baseline mpi --csv " + csv + " --hdf5 " + hdf5));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The table: nccl-tests' columns, sizes 1K, 4K, 16K, 64K.
  EXPECT_NE(r.output.find("#       size        count     type  redop   root      time   algbw   "
                          "busbw #wrong"),
            std::string::npos)
      << r.output;
  std::ifstream in(csv);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const std::vector<std::string> header = split(line, ',');
  ASSERT_EQ(header.size(), 21U);
  EXPECT_EQ(header[3], "size");
  EXPECT_EQ(header[10], "busbw");
  EXPECT_EQ(header[17], "baseline");
  std::vector<std::size_t> sizes;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split(line, ',');
    ASSERT_EQ(f.size(), header.size()) << line;
    EXPECT_EQ(f[0], "allreduce");
    EXPECT_EQ(f[1], "host");
    sizes.push_back(std::stoull(f[3]));
    EXPECT_EQ(std::stoull(f[4]) * 4, sizes.back());
    const double time = std::stod(f[8]), algbw = std::stod(f[9]), busbw = std::stod(f[10]);
    EXPECT_GT(time, 0);
    EXPECT_NEAR(algbw, sizes.back() / time / 1e3, 1e-3 * algbw + 1e-4);
    EXPECT_NEAR(busbw, algbw * 1.0, 1e-3 * algbw + 1e-4);  // 2(n-1)/n = 1 for 2 ranks
    EXPECT_EQ(f[11], "0");
    EXPECT_EQ(f[17], "mpi");
    EXPECT_GT(std::stod(f[18]), 0);  // the MPI baseline's time
    EXPECT_GT(std::stod(f[20]), 0);  // its ratio
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1024, 4096, 16384, 65536}));

  const Result dump = run(std::string(H5DUMP) + " -H " + hdf5);
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  for (const char* expected :
       {"GROUP \"allreduce\"", "GROUP \"host\"", "GROUP \"out_of_place\"", "GROUP \"in_place\"",
        "GROUP \"mpi_baseline\"", "DATASET \"65536\"", "DATASPACE  SIMPLE { ( 2, 3 ) / ( 2, 3 ) }",
        "ATTRIBUTE \"busbw_gbs\"", "ATTRIBUTE \"median_us\"", "ATTRIBUTE \"command_line\"",
        "ATTRIBUTE \"haein_version\"", "ATTRIBUTE \"mpi_version\"", "ATTRIBUTE \"nccl_version\"",
        "ATTRIBUTE \"cuda_version\"", "ATTRIBUTE \"hosts\"", "ATTRIBUTE \"topology\""}) {
    EXPECT_NE(dump.output.find(expected), std::string::npos) << expected;
  }
  // The per-rank times are positive numbers.
  const Result data =
      run(std::string(H5DUMP) + " -d /allreduce/host/out_of_place/1024 -y -w 0 " + hdf5);
  ASSERT_EQ(data.exit_code, 0) << data.output;
  const auto begin = data.output.find("DATA {");
  ASSERT_NE(begin, std::string::npos) << data.output;
  std::stringstream values(data.output.substr(begin + 6));
  int positive = 0;
  for (std::string token; values >> token;) {
    if (token == "}") break;
    if (!token.empty() && token.back() == ',') token.pop_back();
    if (std::stod(token) > 0) ++positive;
  }
  EXPECT_EQ(positive, 6);
  fs::remove_all(dir);
}

TEST(BenchRun, BadInputExitsTwoWithTheReason) {
  const std::string single = std::string(HAEIN_BENCH) + " collective ";
  const std::pair<std::string, std::string> cases[] = {
      {"--op broadcast -b 1M -e 1K", "-b 1048576 is larger than -e 1024"},
      {"--op scan", "unknown collective 'scan'"},
      {"-d float128", "unknown data type 'float128'"},
      {"--op reduce -b 6 -e 64", "size 6 is not a multiple of the 4-byte data type"},
      {"--op allreduce -b 8 -e 8", "allreduce needs at least 2 ranks; this job has 1"},
      {"--backend tpu", "--backend 'tpu': expected host or nccl"},
      {"--baseline mpi -d bfloat16", "MPI has no bfloat16 type"},
      {"--backend nccl --baseline mpi", "MPI here is not CUDA-aware"},
      {"--baseline nccl", "use it with --backend nccl"},
      {"--baseline gloo", "--baseline 'gloo': expected mpi, nccl or nccl-event"},
      {"--baseline nccl-event", "use it with --backend nccl"},
      {"--frobnicate", "unrecognised option '--frobnicate'"},
  };
  for (const auto& [args, message] : cases) {
    const Result r = run(single + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
  }
  const Result r = run(std::string(HAEIN_BENCH) + " transmogrify");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown command 'transmogrify'"), std::string::npos);
  // With one rank, broadcast is fine.
  const Result one = run(single + "--op broadcast -b 8 -e 64 -n 2 -R 2");
  EXPECT_EQ(one.exit_code, 0) << one.output;
}

TEST(BenchRun, EachCommandsHelpExitsZero) {
  for (const char* command : {"collective", "bucket", "kernel", "place"}) {
    const Result r = run(std::string(HAEIN_BENCH) + " " + command + " --help");
    EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("--help"), std::string::npos) << command << "\n" << r.output;
  }
}

}  // namespace
