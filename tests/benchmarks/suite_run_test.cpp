// haein-bench bucket, kernel and place run for real (bucket under mpirun with 2 ranks, on a
// small parameter list), and their CSV and HDF5 files hold what the table printed; bad
// input exits 2 with the reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "haein/kernels/device.hpp"
#include "run_command.hpp"

namespace {

namespace fs = std::filesystem;
using haein::test::Result;
using haein::test::run;
using haein::test::split;

class Suite : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("haein-bench-suite-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// The CSV's rows as column -> value maps; fails the test on a ragged row.
  std::vector<std::map<std::string, std::string>> read_csv(const std::string& file) {
    std::ifstream in(file);
    std::string line;
    std::vector<std::map<std::string, std::string>> rows;
    if (!std::getline(in, line)) {
      ADD_FAILURE() << file << " is empty";
      return rows;
    }
    const auto header = split(line, ',');
    while (std::getline(in, line)) {
      const auto fields = split(line, ',');
      if (fields.size() != header.size()) {
        ADD_FAILURE() << "ragged row in " << file << ": " << line;
        continue;
      }
      std::map<std::string, std::string> row;
      for (std::size_t i = 0; i < header.size(); ++i) row[header[i]] = fields[i];
      rows.push_back(row);
    }
    return rows;
  }

  /// h5dump's header listing of `file`.
  std::string dump(const std::string& file) {
    const Result r = run(std::string(H5DUMP) + " -H " + file);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  fs::path dir_;
};

std::string bench(const std::string& args) { return std::string(HAEIN_BENCH) + " " + args; }

TEST_F(Suite, BucketComparesEveryMethodWithTheFlatAllReduce) {
  // 40 tensors of 64K floats: 10 MiB, enough for several buckets at a 1 MiB cap.
  const std::string model = path("model.txt");
  {
    std::ofstream out(model);
    for (int i = 0; i < 40; ++i) out << "layer" << i << ".weight 256x256\n";
  }
  const Result r =
      run(std::string(MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np 2 " +
          HAEIN_BENCH + " bucket --model " + model + " --rounds 2 --caps 1,25 --csv " +
          path("b.csv") + " --hdf5 " + path("b.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = read_csv(path("b.csv"));
  std::map<std::string, std::map<std::string, std::string>> by_method;
  for (const auto& row : rows) by_method[row.at("method")] = row;
  for (const char* method : {"per_tensor", "flat", "flat_512k", "bucketer_cap_1",
                             "bucketer_cap_1_bf16", "bucketer_cap_25", "bucketer_cap_25_bf16",
                             "bucketer_views", "bucketer_segment_pieces", "bucketer_mpi_pieces"})
    ASSERT_EQ(by_method.count(method), 1u) << method << " missing\n" << r.output;
  EXPECT_EQ(by_method["flat"].at("vs_flat"), "1.0000");
  EXPECT_EQ(by_method["per_tensor"].at("vs_per_tensor"), "1.0000");
  EXPECT_EQ(by_method["bucketer_cap_1_bf16"].at("wire"), "bf16");
  const double flat_ms = std::stod(by_method["flat"].at("median_ms"));
  for (const auto& row : rows) {
    const double ms = std::stod(row.at("median_ms"));
    EXPECT_GT(ms, 0) << row.at("method");
    // The column has 4 decimals: half a unit of the last one on top of the medians' rounding
    // (a per-tensor exchange 40x slower than flat prints 0.0250).
    EXPECT_NEAR(std::stod(row.at("vs_flat")), flat_ms / ms, 1e-3 * flat_ms / ms + 5e-5)
        << row.at("method");
    EXPECT_EQ(row.at("ranks"), "2");
  }
  const std::string header = dump(path("b.h5"));
  for (const char* expected : {"GROUP \"bucket\"", "DATASET \"bucketer_cap_25\"",
                               "DATASPACE  SIMPLE { ( 2, 2 ) / ( 2, 2 ) }", "ATTRIBUTE \"vs_flat\"",
                               "ATTRIBUTE \"mpi_version\"", "ATTRIBUTE \"hosts\""})
    EXPECT_NE(header.find(expected), std::string::npos) << expected << "\n" << header;
}

TEST_F(Suite, KernelMeasuresEachOperationAgainstMemcpyPerBucketSize) {
  const std::string model = path("model.txt");
  {
    std::ofstream out(model);
    for (int i = 0; i < 20; ++i) out << "t" << i << " 1000x" << 100 + i << "\n";
  }
  const Result r = run(bench("kernel --model " + model + " --bucket-mb 0.5,4 --repeats 3 --csv " +
                             path("k.csv") + " --hdf5 " + path("k.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = read_csv(path("k.csv"));
  ASSERT_EQ(rows.size(), 16u) << "8 operations x 2 bucket sizes\n" << r.output;
  EXPECT_EQ(rows[0].at("operation"), "memcpy_same_bytes");
  EXPECT_EQ(rows[2].at("operation"), "pack_f32_scale_stats");
  EXPECT_EQ(rows[0].at("vs_memcpy"), "1.0000");
  EXPECT_EQ(rows[0].at("device"), "cpu");
  EXPECT_EQ(rows[8].at("bucket_mb"), "4");
  for (const auto& row : rows) EXPECT_GT(std::stod(row.at("gbs")), 0) << row.at("operation");
  const std::string header = dump(path("k.h5"));
  for (const char* expected :
       {"GROUP \"bucket_0.5MiB\"", "GROUP \"bucket_4MiB\"", "DATASET \"pack_f32_bf16_scale\"",
        "DATASET \"unpack_f32_accumulate\"", "DATASPACE  SIMPLE { ( 1, 3 ) / ( 1, 3 ) }",
        "ATTRIBUTE \"vs_memcpy\""})
    EXPECT_NE(header.find(expected), std::string::npos) << expected << "\n" << header;
}

TEST_F(Suite, KernelOnAGpuNeedsOne) {
  Result r = run(bench("kernel --device tpu"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--device 'tpu': expected cpu or gpu"), std::string::npos) << r.output;
  if (!haein::kernels::visible_devices().empty()) return;
  r = run(bench("kernel --device gpu --bucket-mb 1 --repeats 1"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--device gpu"), std::string::npos) << r.output;
}

TEST_F(Suite, PlaceReportsQualityAndSolveTimeUpTo4096Nodes) {
  const Result r = run(bench("place --clusters haein,generated-4096 --instances 4 --csv " +
                             path("p.csv") + " --hdf5 " + path("p.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("# instances where haein is predicted slower: 0"), std::string::npos);
  const auto rows = read_csv(path("p.csv"));
  bool largest = false;
  for (const auto& row : rows) {
    EXPECT_GE(std::stod(row.at("best_ratio_min")), 1.0 - 1e-9) << row.at("gpus");
    EXPECT_GT(std::stod(row.at("solve_ms_median")), 0);
    if (row.at("cluster") == "generated-4096" && row.at("gpus") == "16384") {
      largest = true;
      EXPECT_EQ(row.at("nodes"), "4096");
      EXPECT_EQ(row.at("instances"), "5") << "at least 5 instances on large clusters";
    }
  }
  EXPECT_TRUE(largest) << r.output;
  const std::string header = dump(path("p.h5"));
  for (const char* expected : {"GROUP \"generated-4096\"", "GROUP \"spine_oversubscription_2\"",
                               "DATASET \"16384\"", "ATTRIBUTE \"solve_ms_median\""})
    EXPECT_NE(header.find(expected), std::string::npos) << expected << "\n" << header;
}

TEST_F(Suite, BadInputExitsTwoWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"bucket --caps 1,x", "--caps '1,x'"},
      {"bucket --model no-such-model", "no-such-model"},
      {"kernel --bucket-mb -4", "--bucket-mb '-4'"},
      {"kernel --repeats 0", "--repeats must be at least 1"},
      {"place --clusters generated-1", "generated-N takes 2 to 8192 nodes"},
      {"place --clusters nowhere", "nowhere"},
      {"place --frobnicate", "frobnicate"},
      {"bucket", "bucket needs at least 2 ranks"},
  };
  for (const auto& [args, message] : cases) {
    const Result r = run(bench(args));
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
  }
}

}  // namespace
