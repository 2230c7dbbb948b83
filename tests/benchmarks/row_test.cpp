// The column table of haein-bench collective: one list of columns renders nccl-tests'
// table, the CSV and the HDF5 attributes, so each of the three is checked here against
// what the benchmark printed before the table existed (tests/benchmarks' BenchRun checks
// the same through the real binary).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "collective_row.hpp"

namespace {

using namespace haein::bench;

RunFacts facts(const std::string& baseline, bool checked = true) {
  RunFacts f;
  f.op = "allreduce";
  f.backend = "host";
  f.type = "float";
  f.redop = "sum";
  f.baseline = baseline;
  f.ranks = 4;
  f.root = -1;
  f.bus_factor = 1.5;
  f.checked = checked;
  return f;
}

CollectiveRow row() {
  CollectiveRow r;
  r.point = {1024, 256};
  r.out_of_place = {{10, 11}, 10.24, 0.05, 0};
  r.in_place = {{20, 21}, 20.48, 0.10, 3};
  r.baseline = {{5, 6}, 5.12, 0.0, 0};
  return r;
}

TEST(Row, CsvHasTheTwentyOneColumnsWithOrWithoutABaseline) {
  const std::vector<std::string> expected = {"op",
                                             "backend",
                                             "ranks",
                                             "size",
                                             "count",
                                             "type",
                                             "redop",
                                             "root",
                                             "time_us",
                                             "algbw",
                                             "busbw",
                                             "wrong",
                                             "inplace_time_us",
                                             "inplace_algbw",
                                             "inplace_busbw",
                                             "inplace_wrong",
                                             "spread_pct",
                                             "baseline",
                                             "baseline_time_us",
                                             "baseline_busbw",
                                             "baseline_ratio"};
  EXPECT_EQ(csv_header(collective_columns(facts("mpi"))), expected);
  EXPECT_EQ(csv_header(collective_columns(facts(""))), expected);
}

TEST(Row, CsvRecordFormatsEachNumberAsBefore) {
  const auto columns = collective_columns(facts("mpi"));
  const std::vector<std::string> f = csv_record(columns, row());
  ASSERT_EQ(f.size(), 21U);
  EXPECT_EQ(f[3], "1024");
  EXPECT_EQ(f[4], "256");
  EXPECT_EQ(f[7], "-1");
  EXPECT_EQ(f[8], "10.240");   // time, µs
  EXPECT_EQ(f[9], "0.1000");   // algbw: 1024 B / 10.24 µs = 0.1 GB/s
  EXPECT_EQ(f[10], "0.1500");  // busbw = algbw * 1.5
  EXPECT_EQ(f[15], "3");
  EXPECT_EQ(f[16], "10.00");  // spread: the larger of the two, in %
  EXPECT_EQ(f[17], "mpi");
  EXPECT_EQ(f[18], "5.120");
  EXPECT_EQ(f[20], "0.5000");  // baseline time / haein time
  const std::vector<std::string> without = csv_record(collective_columns(facts("")), row());
  EXPECT_EQ(without[17], "");
  EXPECT_EQ(without[18], "");
  EXPECT_EQ(without[20], "");
  EXPECT_EQ(csv_record(collective_columns(facts("", false)), row())[11], "N/A");
}

TEST(Row, TableHeadingAndLineLineUp) {
  const auto columns = collective_columns(facts(""));
  const std::string heading = table_heading(columns);
  EXPECT_NE(heading.find("#       size        count     type  redop   root      time   algbw   "
                         "busbw #wrong      time   algbw   busbw #wrong  spread\n"),
            std::string::npos)
      << heading;
  EXPECT_NE(heading.find("#                                                  out-of-place     "),
            std::string::npos)
      << heading;
  EXPECT_EQ(table_line(columns, row()),
            "        1024          256    float    sum     -1     10.24    0.10    0.15      0"
            "     20.48    0.05    0.08      3    10.0");
  const auto with = collective_columns(facts("mpi"));
  EXPECT_NE(table_heading(with).find("mpi/haein"), std::string::npos);
  EXPECT_NE(table_heading(with).find("direct MPI        "), std::string::npos);
  EXPECT_EQ(table_line(with, row()).substr(table_line(columns, row()).size()),
            "      5.12    0.30     0.500");
}

TEST(Row, Hdf5DatasetsCarryTheirModesAttributes) {
  const RunFacts f = facts("mpi");
  const auto measurements = hdf5_measurements(collective_columns(f), f, row());
  ASSERT_EQ(measurements.size(), 3U);
  EXPECT_EQ(measurements[0].group, "allreduce/host/out_of_place");
  EXPECT_EQ(measurements[1].group, "allreduce/host/in_place");
  EXPECT_EQ(measurements[2].group, "allreduce/host/mpi_baseline");
  for (const Measurement& m : measurements) {
    EXPECT_EQ(m.name, "1024");
    std::vector<std::string> names;
    for (const auto& [name, value] : m.numbers) names.push_back(name);
    EXPECT_EQ(names, (std::vector<std::string>{"algbw_gbs", "busbw_gbs", "bytes", "count",
                                               "median_us", "spread", "wrong"}))
        << m.group;
  }
  EXPECT_DOUBLE_EQ(measurements[1].numbers.at("median_us"), 20.48);
  EXPECT_DOUBLE_EQ(measurements[1].numbers.at("wrong"), 3);
  EXPECT_DOUBLE_EQ(measurements[1].numbers.at("spread"), 0.10);
  EXPECT_DOUBLE_EQ(measurements[2].numbers.at("busbw_gbs"), 1024 / 5.12 / 1e3 * 1.5);
  EXPECT_EQ(measurements[0].times_us, (std::vector<double>{10, 11}));
  EXPECT_EQ(hdf5_measurements(collective_columns(facts("")), facts(""), row()).size(), 2U);
}

}  // namespace
