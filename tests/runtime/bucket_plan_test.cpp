// The bucket plan as a table: for each kind of gradient, wire type, averaging and host
// path, the exchange a bucket gets, its scaling and its pieces.
#include "bucket_plan.hpp"

#include <gtest/gtest.h>

#include "haein/common/error.hpp"

namespace haein::runtime::detail {
namespace {

constexpr std::size_t kMiB = 1 << 20;

struct Row {
  const char* what;
  DataType type;
  bool device;
  std::optional<DataType> wire;
  Averaging averaging;
  HostF32Path host_f32;
  ExchangeKind exchange;
  float pre, post, shard_sum;
  ReduceOp op;
};

/// One parameter of 3 MiB of its type, planned on 4 ranks with 1 MiB host pieces.
BucketPlan plan_one(const Row& row, bool views = false) {
  PlanInputs in;
  in.parameters = {{(3 * kMiB) / size_of(row.type), row.type, row.device}};
  in.order = {0};
  in.first_cap_bytes = 64 * kMiB;
  in.cap_bytes = 64 * kMiB;
  in.world = 4;
  in.wire_type = row.wire;
  in.averaging = row.averaging;
  in.views = views;
  in.host_f32 = row.host_f32;
  in.piece_bytes = kMiB;
  in.peer_piece_bytes = 2 * kMiB;
  const auto plans = plan_buckets(in);
  EXPECT_EQ(plans.size(), 1u) << row.what;
  return plans.at(0);
}

TEST(BucketPlan, EachBucketGetsItsExchangeAndScaling) {
  using enum ExchangeKind;
  const auto f32 = DataType::kF32;
  const auto bf16 = DataType::kBF16;
  const auto avg = Averaging::kAvgOp, post = Averaging::kPostDivide, pre = Averaging::kPreDivide,
             none = Averaging::kNone;
  const auto sum = ReduceOp::kSum;
  const Row rows[] = {
      {"device f32, ncclAvg",
       f32,
       true,
       {},
       avg,
       HostF32Path::kSegment,
       kCollective,
       1,
       1,
       1,
       ReduceOp::kAvg},
      {"device f32, post-divide",
       f32,
       true,
       {},
       post,
       HostF32Path::kSegment,
       kCollective,
       1,
       0.25f,
       1,
       sum},
      {"device f32, pre-divide",
       f32,
       true,
       {},
       pre,
       HostF32Path::kCollective,
       kCollective,
       0.25f,
       1,
       1,
       sum},
      {"device f32 as bf16: the shard sum divides", f32, true, bf16, avg, HostF32Path::kCollective,
       kCompressed, 1, 1, 0.25f, sum},
      {"device bf16, no averaging",
       bf16,
       true,
       {},
       none,
       HostF32Path::kCollective,
       kCollective,
       1,
       1,
       1,
       sum},
      {"host f32 through MPI: the unpack divides",
       f32,
       false,
       {},
       avg,
       HostF32Path::kCollective,
       kCollective,
       1,
       0.25f,
       1,
       sum},
      {"host f32, shared segment",
       f32,
       false,
       {},
       avg,
       HostF32Path::kSegment,
       kSegment,
       1,
       0.25f,
       1,
       sum},
      {"host f32, hierarchical, pre-divide",
       f32,
       false,
       {},
       pre,
       HostF32Path::kHierarchical,
       kHierarchical,
       0.25f,
       1,
       1,
       sum},
      {"host f32, peer memory",
       f32,
       false,
       {},
       post,
       HostF32Path::kPeerMemory,
       kPeerMemory,
       1,
       0.25f,
       1,
       sum},
      {"host bf16 never takes the segment",
       bf16,
       false,
       {},
       avg,
       HostF32Path::kSegment,
       kCollective,
       1,
       0.25f,
       1,
       sum},
      {"host f32 as bf16 never takes the segment", f32, false, bf16, post, HostF32Path::kPeerMemory,
       kCompressed, 1, 1, 0.25f, sum},
  };
  for (const Row& row : rows) {
    const BucketPlan plan = plan_one(row);
    EXPECT_EQ(plan.exchange, row.exchange) << row.what << ": " << name_of(plan.exchange);
    EXPECT_EQ(plan.wire, row.wire.value_or(row.type)) << row.what;
    EXPECT_EQ(plan.scaling.pre, row.pre) << row.what;
    EXPECT_EQ(plan.scaling.post, row.post) << row.what;
    EXPECT_EQ(plan.scaling.shard_sum, row.shard_sum) << row.what;
    EXPECT_EQ(plan.scaling.op, row.op) << row.what;
    EXPECT_EQ(plan.staged, !row.device) << row.what;
  }
}

/// f32 host gradients through MPI, averaged by the collective's op (the defaults).
Row host_f32_row() {
  return {"",
          DataType::kF32,
          false,
          {},
          Averaging::kAvgOp,
          HostF32Path::kCollective,
          ExchangeKind::kCollective,
          1,
          1,
          1,
          ReduceOp::kSum};
}

TEST(BucketPlan, PiecesCoverTheBucketInWholeGranules) {
  const Row host = host_f32_row();
  Row peer = host;
  peer.host_f32 = HostF32Path::kPeerMemory;
  Row device = host;
  device.device = true;
  Row narrow = host;
  narrow.type = DataType::kBF16;
  // Host pieces of 1 MiB, peer-memory pieces of 2 MiB, one device piece; bf16 pieces hold
  // twice the elements of f32 ones.
  for (const auto& [row, piece_elements] :
       {std::pair{host, kMiB / 4}, std::pair{peer, kMiB / 2}, std::pair{device, 3 * kMiB / 4},
        std::pair{narrow, kMiB / 2}}) {
    const BucketPlan plan = plan_one(row);
    ASSERT_FALSE(plan.pieces.empty());
    EXPECT_EQ(plan.pieces.front().end - plan.pieces.front().begin, piece_elements);
    std::size_t at = 0;
    for (const Piece& p : plan.pieces) {
      EXPECT_EQ(p.begin, at);
      EXPECT_EQ((p.end - p.begin) % (16 / size_of(plan.wire) * 4), 0u);
      at = p.end;
    }
    EXPECT_EQ(at, plan.layout.elements);
  }
}

TEST(BucketPlan, ViewsAreNotStagedAndWideAndNarrowWiresGetTheirOwnBuckets) {
  const Row host = host_f32_row();
  EXPECT_FALSE(plan_one(host, true).staged);
  PlanInputs in;
  in.parameters = {{100, DataType::kF32, false}, {100, DataType::kF32, false}};
  in.order = {1, 0};
  in.first_cap_bytes = in.cap_bytes = kMiB;
  in.world = 2;
  in.wire_type = DataType::kBF16;
  const auto compressed = plan_buckets(in);
  ASSERT_EQ(compressed.size(), 1u);
  EXPECT_EQ(compressed[0].wire, DataType::kBF16);
  EXPECT_EQ(compressed[0].layout.parameters, (std::vector<std::size_t>{1, 0}));
  in.wire_type.reset();
  in.parameters[0].type = DataType::kF16;
  const auto mixed = plan_buckets(in);
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_EQ(mixed[0].wire, DataType::kF32);
  EXPECT_EQ(mixed[1].wire, DataType::kF16);
}

TEST(BucketPlan, CompressionNeedsF32Gradients) {
  EXPECT_EQ(wire_of(DataType::kF16, DataType::kF16), DataType::kF16);
  EXPECT_EQ(wire_of(DataType::kF32, DataType::kBF16), DataType::kBF16);
  try {
    wire_of(DataType::kF16, DataType::kBF16);
    FAIL() << "f16 gradients compressed to bf16 were accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("needs f32 gradients, not f16"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace haein::runtime::detail
