// The cost model against published nccl-tests figures and against itself: bandwidths
// within +-15% of measured numbers, and placements that cross more of the fabric never
// predicted faster.
#include "haein/topology/cost_model.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"

namespace haein::topology {
namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;
constexpr double kMiB = 1024.0 * 1024;

// Ranks 0..n-1 on the GPUs of the given nodes, node after node, GPU i using rail i.
std::vector<RankSite> fill(const Cluster& cluster, const std::vector<int>& nodes) {
  std::vector<RankSite> sites;
  for (int node : nodes) {
    for (const Gpu& gpu : cluster.nodes[node].hardware.gpus) {
      sites.push_back({node, gpu.index, gpu.index % std::max(cluster.rails, 1)});
    }
  }
  return sites;
}

// Two-leaf cluster of `per_leaf` DGX nodes per leaf under one spine.
Cluster two_leaf_cluster(const std::string& node_type, int per_leaf) {
  const std::string last = std::to_string(2 * per_leaf);
  const std::string yaml =
      "version: 1\nname: two-leaf\nrails: 8\nnodes:\n"
      "  - {hostname: \"n[1-" +
      last + "]\", node_type: " + node_type +
      "}\nswitches:\n"
      "  - {name: leaf1, level: leaf, nodes: \"n[1-" +
      std::to_string(per_leaf) +
      "]\"}\n"
      "  - {name: leaf2, level: leaf, nodes: \"n[" +
      std::to_string(per_leaf + 1) + "-" + last +
      "]\"}\n"
      "  - {name: spine, level: spine, switches: \"leaf[1-2]\"}\n";
  return parse_cluster(yaml, Format::kYaml, "two-leaf.yaml");
}

TEST(CostModel, EightH100RingAndNvlsMatchNcclTests) {
  const Cluster cluster = load_preset("dgx-h100");
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0});
  const Prediction ring = model.predict(Collective::kAllReduce, Algorithm::kRing, sites, kGiB);
  const Prediction nvls = model.predict(Collective::kAllReduce, Algorithm::kNvls, sites, kGiB);
  ASSERT_TRUE(ring.applicable);
  ASSERT_TRUE(nvls.applicable) << nvls.why_not;
  EXPECT_NEAR(ring.busbw_gbs, 370, 370 * 0.15);
  EXPECT_NEAR(nvls.busbw_gbs, 480, 480 * 0.15);
  const Prediction best = model.best(Collective::kAllReduce, sites, kGiB);
  EXPECT_EQ(best.algorithm, Algorithm::kNvls);
}

TEST(CostModel, EightB200ReachEightHundredGBs) {
  const Cluster cluster = load_preset("dgx-b200");
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0});
  // NCCL_ALGO=Ring on 8 x B200: 663.6-698.4 GB/s (together-nccl-tests, two clusters); NVLS,
  // NCCL's default, 819-844.
  const Prediction ring = model.predict(Collective::kAllReduce, Algorithm::kRing, sites, kGiB);
  EXPECT_NEAR(ring.busbw_gbs, 680, 680 * 0.15);
  const Prediction best = model.best(Collective::kAllReduce, sites, 16 * kGiB);
  EXPECT_EQ(best.algorithm, Algorithm::kNvls);
  EXPECT_GE(best.busbw_gbs, 800);
}

TEST(CostModel, InterNodeLimitedByEightRails) {
  const Cluster cluster = two_leaf_cluster("dgx-h100", 2);
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0, 1});
  // 8 x 400 Gb/s = 400 GB/s per node and direction: a ring cannot beat it (nccl-tests#309
  // measured 392.7 with NCCL_ALGO=Ring).
  const Prediction ring_prediction =
      model.predict(Collective::kAllReduce, Algorithm::kRing, sites, kGiB);
  EXPECT_LE(ring_prediction.busbw_gbs, 400);
  EXPECT_NEAR(ring_prediction.busbw_gbs, 392.7, 392.7 * 0.15);
  // At two nodes the NVLS tree sends each node's buffer once, not twice, and goes past the
  // NIC rate in nccl-tests' bus bandwidth (469 measured there), never past twice it.
  const Prediction best = model.best(Collective::kAllReduce, sites, kGiB);
  EXPECT_EQ(best.algorithm, Algorithm::kNvlsTree);
  EXPECT_GT(best.busbw_gbs, 400);
  EXPECT_LT(best.busbw_gbs, 800);
  const RingAnalysis ring = model.analyze_ring(sites);
  EXPECT_EQ(ring.node_crossings, 2);
  EXPECT_EQ(ring.domain_crossings, 2);
  EXPECT_EQ(ring.leaf_crossings, 0);
}

TEST(CostModel, RoundRobinOverNodesIsSlowerThanBlocks) {
  const Cluster cluster = two_leaf_cluster("dgx-h100", 2);
  const CostModel model(cluster);
  const auto blocks = fill(cluster, {0, 1});
  std::vector<RankSite> round_robin;
  for (int i = 0; i < 8; ++i) {
    round_robin.push_back({0, i, i});
    round_robin.push_back({1, i, i});
  }
  const RingAnalysis analysis = model.analyze_ring(round_robin);
  EXPECT_EQ(analysis.node_crossings, 16);
  EXPECT_EQ(analysis.max_node_egress, 8);
  const double fast = model.predict(Collective::kAllReduce, Algorithm::kRing, blocks, kGiB).seconds;
  const double slow =
      model.predict(Collective::kAllReduce, Algorithm::kRing, round_robin, kGiB).seconds;
  EXPECT_GT(slow, 4 * fast);
}

TEST(CostModel, CrossingTheSpineCostsWithOversubscription) {
  const Cluster cluster = two_leaf_cluster("dgx-b200", 2);
  CostParameters parameters;
  parameters.spine_oversubscription = 4;
  const CostModel model(cluster, parameters);
  const auto same_leaf = fill(cluster, {0, 1});
  const auto across = fill(cluster, {0, 2});
  const RingAnalysis ring = model.analyze_ring(across);
  EXPECT_EQ(ring.leaf_crossings, 2);
  EXPECT_EQ(ring.spine_crossings, 0);
  EXPECT_EQ(ring.max_uplink_congestion, 1);
  EXPECT_EQ(ring.bottleneck, LinkClass::kIbSpine);
  const double near = model.best(Collective::kAllReduce, same_leaf, kGiB).seconds;
  const double far = model.best(Collective::kAllReduce, across, kGiB).seconds;
  EXPECT_GT(far, 2 * near);
}

TEST(CostModel, HierarchicalAndTreeApplyAcrossNodes) {
  const Cluster cluster = two_leaf_cluster("dgx-b200", 4);
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0, 1, 2, 3, 4, 5, 6, 7});
  for (const Prediction& p : model.all(Collective::kAllReduce, sites, kMiB)) {
    if (p.algorithm == Algorithm::kNvls) {
      // Across NVLink domains NVLS runs as the NVLS tree.
      EXPECT_FALSE(p.applicable);
      EXPECT_NE(p.why_not.find("one NVLink domain"), std::string::npos) << p.why_not;
      continue;
    }
    if (p.algorithm == Algorithm::kCollNet) {
      // No switch of this fabric reduces in the network.
      EXPECT_FALSE(p.applicable);
      EXPECT_NE(p.why_not.find("sharp: true"), std::string::npos) << p.why_not;
      continue;
    }
    EXPECT_TRUE(p.applicable) << to_string(p.algorithm) << ": " << p.why_not;
    EXPECT_GT(p.seconds, 0);
  }
  // Tree's latency grows with log(nodes), ring's with ranks: tree wins small messages.
  const Prediction small = model.best(Collective::kAllReduce, sites, 8 * 1024);
  EXPECT_NE(small.algorithm, Algorithm::kRing);
  // Uneven ranks per domain rule hierarchical out, with a reason.
  std::vector<RankSite> uneven(sites.begin(), sites.end() - 3);
  const Prediction h =
      model.predict(Collective::kAllReduce, Algorithm::kHierarchical, uneven, kGiB);
  EXPECT_FALSE(h.applicable);
  EXPECT_FALSE(h.why_not.empty());
}

// Two leaves of 4 DGX B200 under one spine; `sharp` lists the switches that have SHARP.
Cluster sharp_cluster(const std::string& sharp, double oversubscription = 1) {
  auto flag = [&](const std::string& name) {
    return sharp.find(name) != std::string::npos ? ", sharp: true" : "";
  };
  const std::string yaml =
      "version: 1\nname: sharp\nrails: 8\nnodes:\n"
      "  - {hostname: \"n[1-8]\", node_type: dgx-b200}\nswitches:\n"
      "  - {name: leaf1, level: leaf, nodes: \"n[1-4]\", oversubscription: " +
      std::to_string(oversubscription) + std::string(flag("leaf1")) +
      "}\n  - {name: leaf2, level: leaf, nodes: \"n[5-8]\", oversubscription: " +
      std::to_string(oversubscription) + std::string(flag("leaf2")) +
      "}\n  - {name: spine, level: spine, switches: \"leaf[1-2]\"" + flag("spine") + "}\n";
  return parse_cluster(yaml, Format::kYaml, "sharp.yaml");
}

TEST(CostModel, CollNetRunsWhereEverySwitchJoiningTheNodesReduces) {
  const auto predict = [](const Cluster& cluster, const std::vector<int>& nodes) {
    const CostModel model(cluster);
    return model.predict(Collective::kAllReduce, Algorithm::kCollNet, fill(cluster, nodes),
                         16 * kGiB);
  };
  const Cluster leaves_only = sharp_cluster("leaf1 leaf2");
  const Cluster everywhere = sharp_cluster("leaf1 leaf2 spine");
  // Under one leaf its SHARP is enough; across leaves the spine must have it too.
  EXPECT_TRUE(predict(leaves_only, {0, 1, 2, 3}).applicable);
  const Prediction across = predict(leaves_only, {0, 1, 4, 5});
  EXPECT_FALSE(across.applicable);
  EXPECT_NE(across.why_not.find("every switch joining the nodes"), std::string::npos)
      << across.why_not;
  EXPECT_TRUE(predict(everywhere, {0, 1, 4, 5}).applicable);
  EXPECT_FALSE(predict(sharp_cluster("leaf1"), {0, 1, 4, 5}).applicable);
  EXPECT_FALSE(predict(sharp_cluster(""), {0, 1}).applicable);
  // One node: nothing for the switches to reduce.
  EXPECT_FALSE(predict(everywhere, {0}).applicable);
  // All-gather is not modelled for CollNet.
  const CostModel model(everywhere);
  EXPECT_FALSE(
      model.predict(Collective::kAllGather, Algorithm::kCollNet, fill(everywhere, {0, 4}), kGiB)
          .applicable);
}

TEST(CostModel, CollNetMatchesSharpRunsAndPaysLittleForOversubscription) {
  // 16 x 8 B200 with SHARP, 8 x 400G: 537-606 GB/s with CollNet (together-nccl-tests, NCCL
  // 2.28-2.29), where a ring stays at 388-390.
  const Cluster cluster = sharp_cluster("leaf1 leaf2 spine");
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0, 1, 2, 3, 4, 5, 6, 7});
  const Prediction collnet =
      model.predict(Collective::kAllReduce, Algorithm::kCollNet, sites, 16 * kGiB);
  ASSERT_TRUE(collnet.applicable) << collnet.why_not;
  EXPECT_NEAR(collnet.busbw_gbs, 550, 550 * 0.15);
  const Prediction best = model.best(Collective::kAllReduce, sites, 16 * kGiB);
  EXPECT_EQ(best.algorithm, Algorithm::kCollNet);
  // The leaves reduce before their up-links: 4:1 up-links slow the ring, not CollNet.
  const Cluster oversubscribed = sharp_cluster("leaf1 leaf2 spine", 4);
  const CostModel tight(oversubscribed);
  const Prediction ring_tight =
      tight.predict(Collective::kAllReduce, Algorithm::kRing, sites, 16 * kGiB);
  const Prediction ring = model.predict(Collective::kAllReduce, Algorithm::kRing, sites, 16 * kGiB);
  EXPECT_GT(ring_tight.seconds, 2 * ring.seconds);
  EXPECT_DOUBLE_EQ(
      tight.predict(Collective::kAllReduce, Algorithm::kCollNet, sites, 16 * kGiB).seconds,
      collnet.seconds);
  // Only up-links left less than one node's NICs slow it: 64:1 under 4 nodes.
  const Cluster starved = sharp_cluster("leaf1 leaf2 spine", 64);
  EXPECT_GT(CostModel(starved)
                .predict(Collective::kAllReduce, Algorithm::kCollNet, sites, 16 * kGiB)
                .seconds,
            2 * collnet.seconds);
}

TEST(CostModel, CollNetNeedsAtMostEightRanksANode) {
  const Cluster cluster = sharp_cluster("leaf1 leaf2 spine");
  const CostModel model(cluster);
  std::vector<RankSite> sites = fill(cluster, {0, 1});
  const std::size_t whole = sites.size();
  for (std::size_t r = 0; r < whole; ++r) sites.push_back(sites[r]);  // two ranks a GPU
  const Prediction p = model.predict(Collective::kAllReduce, Algorithm::kCollNet, sites, kGiB);
  EXPECT_FALSE(p.applicable);
  EXPECT_NE(p.why_not.find("above 8 ranks"), std::string::npos) << p.why_not;
}

// Two units of two DGX B200 on per-rail leaves, one spine group per rail; SHARP everywhere
// but `plain_spine`'s spine group (-1: none).
Cluster rail_cluster(int plain_spine) {
  std::string yaml =
      "version: 1\nname: rails\nrails: 8\nnodes:\n"
      "  - {hostname: \"n[1-4]\", node_type: dgx-b200}\nswitches:\n";
  for (int rail = 0; rail < 8; ++rail) {
    for (int unit = 0; unit < 2; ++unit) {
      yaml += "  - {name: u" + std::to_string(unit) + "-r" + std::to_string(rail) +
              ", level: leaf, rail: " + std::to_string(rail) + ", nodes: \"n[" +
              std::to_string(2 * unit + 1) + "-" + std::to_string(2 * unit + 2) +
              "]\", sharp: true}\n";
    }
    yaml += "  - {name: spine-r" + std::to_string(rail) +
            ", level: spine, rail: " + std::to_string(rail) + ", switches: \"u[0-1]-r" +
            std::to_string(rail) + "\"" + (rail == plain_spine ? "" : ", sharp: true") + "}\n";
  }
  return parse_cluster(yaml, Format::kYaml, "rails.yaml");
}

TEST(CostModel, CollNetOnARailFabricNeedsEveryRailsSpine) {
  const auto applicable = [](const Cluster& cluster, const std::vector<int>& nodes) {
    return CostModel(cluster)
        .predict(Collective::kAllReduce, Algorithm::kCollNet, fill(cluster, nodes), kGiB)
        .applicable;
  };
  EXPECT_TRUE(applicable(rail_cluster(-1), {0, 1, 2, 3}));
  // Rail 5's spines reduce nothing: across units CollNet is off, inside one it runs.
  const Cluster plain = rail_cluster(5);
  EXPECT_FALSE(applicable(plain, {0, 1, 2, 3}));
  EXPECT_TRUE(applicable(plain, {0, 1}));
}

TEST(CostModel, AllGatherAndReduceScatterUseTheirBusFactor) {
  const Cluster cluster = load_preset("dgx-h100");
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0});
  const Prediction ag = model.best(Collective::kAllGather, sites, kGiB);
  const Prediction rs = model.best(Collective::kReduceScatter, sites, kGiB);
  ASSERT_TRUE(ag.applicable);
  EXPECT_NEAR(ag.busbw_gbs, ag.algbw_gbs * 7 / 8, 1e-9);
  EXPECT_NEAR(ag.busbw_gbs, 370, 370 * 0.15);
  EXPECT_NEAR(rs.seconds, ag.seconds, 1e-12);
  // An all-gather moves half of what an all-reduce moves.
  const Prediction ar = model.predict(Collective::kAllReduce, Algorithm::kRing, sites, kGiB);
  EXPECT_NEAR(ar.seconds / ag.seconds, 2.0, 0.05);
}

TEST(CostModel, ModelsOnlyAllReduceAllGatherAndReduceScatter) {
  const Cluster cluster = load_preset("dgx-h100");
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0});
  for (const Collective c : {Collective::kBroadcast, Collective::kAllToAll, Collective::kSend}) {
    const Prediction p = model.best(c, sites, kGiB);
    EXPECT_FALSE(p.applicable) << name_of(c);
    for (const Prediction& each : model.all(c, sites, kGiB)) {
      EXPECT_FALSE(each.applicable) << name_of(c);
      EXPECT_NE(each.why_not.find("not modelled"), std::string::npos) << each.why_not;
    }
  }
  EXPECT_EQ(collective_from_string("all_gather_perf"), Collective::kAllGather);
  EXPECT_EQ(collective_from_string("reduce_scatter"), Collective::kReduceScatter);
  EXPECT_EQ(collective_from_string("broadcast_perf"), std::nullopt);
  EXPECT_EQ(collective_from_string("allreduce"), std::nullopt);
}

TEST(CostModel, RackScaleNvlinkBeatsInfiniBand) {
  const Cluster cluster = load_preset("gb200-nvl72");
  const CostModel model(cluster);
  const auto sites = fill(cluster, {0, 1});  // 2 trays x 4 GPUs over NVLink
  const RingAnalysis ring = model.analyze_ring(sites);
  EXPECT_EQ(ring.node_crossings, 2);
  EXPECT_EQ(ring.domain_crossings, 0);
  EXPECT_EQ(ring.bottleneck, LinkClass::kNvlink);
  // Published: 2 GB200 trays (8 GPUs) over MNNVL, all-reduce busbw 811 GB/s.
  EXPECT_NEAR(model.predict(Collective::kAllReduce, Algorithm::kRing, sites, kGiB).busbw_gbs, 811,
              811 * 0.15);
}

TEST(CostModel, OneRankHasNothingToExchange) {
  const Cluster cluster = load_preset("dgx-h100");
  const CostModel model(cluster);
  const std::vector<RankSite> one{{0, 0, 0}};
  const Prediction p = model.best(Collective::kAllReduce, one, kGiB);
  EXPECT_FALSE(p.applicable);
  EXPECT_NE(p.why_not.find("one rank"), std::string::npos);
}

}  // namespace
}  // namespace haein::topology

namespace haein::topology {
namespace {

// No algorithm may beat the hardware: all-reduce bus bandwidth is at most the per-GPU
// link rate, except NVLS, whose in-switch reduction halves the traffic (at most 2(n-1)/n
// of the link rate).
TEST(CostModel, NoPredictionExceedsTheLinks) {
  for (const char* preset : {"dgx-h100", "dgx-b200", "gb200-nvl72", "haein"}) {
    const Cluster cluster = load_preset(preset);
    const CostModel model(cluster);
    std::vector<int> nodes;
    for (int n = 0; n < std::min<int>(cluster.nodes.size(), 8); ++n) nodes.push_back(n);
    const auto sites = fill(cluster, nodes);
    const double nvlink = cluster.nodes[0].hardware.nvlink_gbps;
    for (const Prediction& p : model.all(Collective::kAllReduce, sites, kGiB)) {
      if (!p.applicable) continue;
      const double limit = p.algorithm == Algorithm::kNvls
                               ? nvlink * bus_factor(Collective::kAllReduce, sites.size())
                               : nvlink;
      EXPECT_LE(p.busbw_gbs, limit) << preset << " " << to_string(p.algorithm);
    }
  }
}

}  // namespace
}  // namespace haein::topology

namespace haein::topology {
namespace {

// NCCL's tree between nodes follows rank order: four nodes of one leaf keep it there,
// four nodes over two leaves make its edges climb to the spine. On a non-blocking fabric
// that costs nothing; when the up-links are shared 4:1 it does.
TEST(CostModel, TreeFollowsThePlacementWhereTheFabricIsShared) {
  const Cluster cluster = two_leaf_cluster("dgx-b200", 4);
  const auto blocks = fill(cluster, {0, 1, 2, 3});
  const auto interleaved = fill(cluster, {0, 4, 1, 5});
  const CostModel open(cluster);
  EXPECT_LT(open.analyze_tree(blocks).leaf_crossings,
            open.analyze_tree(interleaved).leaf_crossings);
  for (Algorithm algorithm : {Algorithm::kTree, Algorithm::kNvlsTree}) {
    EXPECT_DOUBLE_EQ(open.predict(Collective::kAllReduce, algorithm, blocks, kGiB).seconds,
                     open.predict(Collective::kAllReduce, algorithm, interleaved, kGiB).seconds)
        << to_string(algorithm);
  }
  CostParameters shared;
  shared.spine_oversubscription = 4;
  const CostModel busy(cluster, shared);
  for (Algorithm algorithm : {Algorithm::kTree, Algorithm::kNvlsTree}) {
    EXPECT_GT(busy.predict(Collective::kAllReduce, algorithm, interleaved, kGiB).seconds,
              1.5 * busy.predict(Collective::kAllReduce, algorithm, blocks, kGiB).seconds)
        << to_string(algorithm);
  }
  // NCCL's tree over three nodes is rooted at the first (ncclGetBtree: 1 under 2, 2 under
  // 0): with the first two on one leaf, both of its edges cross to the other.
  EXPECT_EQ(open.analyze_tree(fill(cluster, {0, 1, 4})).leaf_crossings, 2);
  EXPECT_EQ(open.analyze_tree(fill(cluster, {0, 1, 2, 3})).leaf_crossings, 0);
  // The oversubscription a leaf switch declares in the cluster file counts the same.
  std::string yaml =
      "version: 1\nname: two-leaf\nrails: 8\nnodes:\n  - {hostname: \"n[1-8]\", node_type: "
      "dgx-b200}\nswitches:\n  - {name: leaf1, level: leaf, nodes: \"n[1-4]\", "
      "oversubscription: 4}\n  - {name: leaf2, level: leaf, nodes: \"n[5-8]\", "
      "oversubscription: 4}\n  - {name: spine, level: spine, switches: \"leaf[1-2]\"}\n";
  const Cluster declared = parse_cluster(yaml, Format::kYaml, "declared.yaml");
  const CostModel by_file(declared);
  EXPECT_NEAR(by_file.predict(Collective::kAllReduce, Algorithm::kTree, interleaved, kGiB).seconds,
              busy.predict(Collective::kAllReduce, Algorithm::kTree, interleaved, kGiB).seconds,
              1e-9);
}

}  // namespace
}  // namespace haein::topology
