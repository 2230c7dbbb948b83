// The sweep arithmetic of haein-bench collective against nccl-tests' definitions.
#include <gtest/gtest.h>

#include "collective_sweep.hpp"
#include "haein/common/error.hpp"

namespace {

using namespace haein::bench;
using haein::bus_factor;
using haein::Collective;
using haein::runtime::DataType;

TEST(Sweep, BusFactorsAreNcclTests) {
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kAllReduce, 2), 1.0);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kAllReduce, 4), 1.5);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kAllReduce, 8), 1.75);
  for (Collective op :
       {Collective::kReduceScatter, Collective::kAllGather, Collective::kAllToAll}) {
    EXPECT_DOUBLE_EQ(bus_factor(op, 2), 0.5);
    EXPECT_DOUBLE_EQ(bus_factor(op, 4), 0.75);
    EXPECT_DOUBLE_EQ(bus_factor(op, 8), 0.875);
  }
  for (Collective op : {Collective::kBroadcast, Collective::kReduce}) {
    EXPECT_DOUBLE_EQ(bus_factor(op, 1), 1.0);
    EXPECT_DOUBLE_EQ(bus_factor(op, 8), 1.0);
  }
  EXPECT_EQ(minimum_ranks(Collective::kAllReduce), 2);
  EXPECT_EQ(minimum_ranks(Collective::kBroadcast), 1);
}

TEST(Sweep, SizesGrowByTheFactorAndRoundToWholeBlocks) {
  std::vector<SweepPoint> points = sweep(8, 1024, 2, 0, 4, 1);
  ASSERT_EQ(points.size(), 8U);  // 8, 16, ..., 1024
  EXPECT_EQ(points.front().bytes, 8U);
  EXPECT_EQ(points.front().count, 2U);
  EXPECT_EQ(points.back().bytes, 1024U);
  EXPECT_EQ(points.back().count, 256U);
  // All-gather over 3 ranks of floats: multiples of 12 bytes; 8 rounds to 0 and is dropped.
  points = sweep(8, 64, 2, 0, 4, 3);
  ASSERT_EQ(points.size(), 3U);
  EXPECT_EQ(points[0].bytes, 12U);  // 16
  EXPECT_EQ(points[1].bytes, 24U);  // 32
  EXPECT_EQ(points[2].bytes, 60U);  // 64
  // A fixed step, and -e not a point of the series.
  points = sweep(100, 350, 2, 100, 1, 1);
  ASSERT_EQ(points.size(), 3U);
  EXPECT_EQ(points[2].bytes, 300U);
  points = sweep(4, 100, 3, 0, 4, 1);
  ASSERT_EQ(points.size(), 3U);  // 4, 12, 36; 108 > 100
  EXPECT_EQ(points.back().bytes, 36U);
}

TEST(Sweep, BadBoundsAreRejectedWithTheReason) {
  try {
    sweep(1024, 8, 2, 0, 4, 1);
    FAIL();
  } catch (const haein::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "-b 1024 is larger than -e 8");
  }
  try {
    sweep(6, 64, 2, 0, 4, 1);
    FAIL();
  } catch (const haein::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "size 6 is not a multiple of the 4-byte data type");
  }
  EXPECT_THROW(sweep(8, 64, 1, 0, 4, 1), haein::InvalidArgument);
}

TEST(Sweep, NamesAndSizesParse) {
  EXPECT_EQ(parse_bytes("8"), 8U);
  EXPECT_EQ(parse_bytes("1K"), 1024U);
  EXPECT_EQ(parse_bytes("64M"), 64U << 20);
  EXPECT_EQ(parse_bytes("1G"), 1U << 30);
  EXPECT_THROW(parse_bytes("1.5M"), haein::InvalidArgument);
  EXPECT_THROW(parse_bytes("M"), haein::InvalidArgument);
  EXPECT_THROW(parse_bytes("12X"), haein::InvalidArgument);
  EXPECT_EQ(parse_bench_type("float"), DataType::kF32);
  EXPECT_EQ(parse_bench_type("bf16"), DataType::kBF16);
  EXPECT_EQ(parse_bench_type("half"), DataType::kF16);
  EXPECT_EQ(nccl_tests_name(DataType::kBF16), "bfloat16");
  EXPECT_THROW(parse_bench_type("float128"), haein::InvalidArgument);
  EXPECT_EQ(parse_collective("reducescatter"), Collective::kReduceScatter);
  EXPECT_EQ(parse_collective("all_to_all"), Collective::kAllToAll);
  EXPECT_EQ(haein::traits(Collective::kAllGather).compact, "allgather");
  EXPECT_EQ(parse_collective("bcast"), Collective::kBroadcast);
  EXPECT_THROW(parse_collective("scan"), haein::InvalidArgument);
  // The communicator's other operations are not the benchmark's.
  EXPECT_THROW(parse_collective("barrier"), haein::InvalidArgument);
  EXPECT_THROW(parse_collective("send"), haein::InvalidArgument);
}

}  // namespace
