// The operations' traits table: names as nccl-tests and the flight recorder print them,
// which operations reduce, have a root or are point-to-point, and the bus factors of
// nccl-tests' PERFORMANCE.md.
#include "haein/common/collective.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

using haein::bus_factor;
using haein::Collective;
using haein::kCollectives;

TEST(Collective, NamesAreNcclTestsNamesAndUnique) {
  EXPECT_EQ(haein::name_of(Collective::kAllReduce), "all_reduce");
  EXPECT_EQ(haein::name_of(Collective::kReduceScatter), "reduce_scatter");
  EXPECT_EQ(haein::name_of(Collective::kAllGather), "all_gather");
  EXPECT_EQ(haein::name_of(Collective::kAllToAll), "all_to_all");
  EXPECT_EQ(haein::traits(Collective::kAllReduce).compact, "allreduce");
  EXPECT_EQ(haein::traits(Collective::kAllToAll).compact, "alltoall");
  std::set<std::string> names;
  for (const auto& traits : kCollectives) {
    EXPECT_TRUE(names.insert(std::string(traits.name)).second) << traits.name;
    if (traits.compact != traits.name) {
      EXPECT_TRUE(names.insert(std::string(traits.compact)).second) << traits.compact;
    }
  }
}

TEST(Collective, WhatEachOperationTakes) {
  std::set<Collective> reducing, with_root, p2p;
  for (const auto& traits : kCollectives) {
    if (haein::reduces(traits.collective)) reducing.insert(traits.collective);
    if (haein::rooted(traits.collective)) with_root.insert(traits.collective);
    if (haein::is_p2p(traits.collective)) p2p.insert(traits.collective);
  }
  EXPECT_EQ(reducing,
            (std::set{Collective::kAllReduce, Collective::kReduceScatter, Collective::kReduce}));
  EXPECT_EQ(with_root, (std::set{Collective::kBroadcast, Collective::kReduce}));
  EXPECT_EQ(p2p, (std::set{Collective::kSend, Collective::kRecv}));
}

TEST(Collective, BusFactorsAsNcclTestsDocumentThem) {
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kAllReduce, 4), 1.5);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kAllReduce, 1), 0.0);
  for (Collective c : {Collective::kReduceScatter, Collective::kAllGather, Collective::kAllToAll})
    EXPECT_DOUBLE_EQ(bus_factor(c, 8), 0.875) << haein::name_of(c);
  for (Collective c : {Collective::kBroadcast, Collective::kReduce, Collective::kSend})
    EXPECT_DOUBLE_EQ(bus_factor(c, 8), 1.0) << haein::name_of(c);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kBarrier, 8), 0.0);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::kAllGather, 0), 0.0);
  static_assert(bus_factor(Collective::kAllReduce, 2) == 1.0, "usable at compile time");
}

TEST(Collective, FindsByEitherNameOnlyAmongThoseAskedFor) {
  constexpr Collective kTwo[] = {Collective::kAllReduce, Collective::kAllGather};
  EXPECT_EQ(haein::find_collective("all_reduce", kTwo), Collective::kAllReduce);
  EXPECT_EQ(haein::find_collective("allgather", kTwo), Collective::kAllGather);
  EXPECT_EQ(haein::find_collective("broadcast", kTwo), std::nullopt);
  EXPECT_EQ(haein::find_collective("All_Reduce", kTwo), std::nullopt);
}

}  // namespace
