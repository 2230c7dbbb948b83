// Placement properties on random clusters and busy sets, checked against brute force and
// the cost model; affinity by PCI distance; the files a placement is written to.
#include "haein/launcher/placement.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "haein/common/error.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"
#include "placement/placement_internal.hpp"
#include "placement/plan_stages.hpp"

namespace haein::launcher {
namespace {

using topology::Cluster;
using topology::FabricIndex;

// A random tree: 1-3 spines, 2-8 leaves, 1-6 nodes per leaf; DGX H100 (8 GPUs) or a
// 4-GPU variant of it, hostnames shuffled so that hostname order is not tree order.
Cluster random_cluster(std::mt19937& rng) {
  Cluster cluster;
  cluster.name = "random";
  cluster.rails = 8;
  const topology::NodeHardware& dgx = topology::builtin_node_types().at("dgx-h100");
  topology::NodeHardware four = dgx;
  four.gpus.resize(4);
  const int spines = std::uniform_int_distribution(1, 3)(rng);
  const int leaves = std::uniform_int_distribution(2, 8)(rng);
  std::vector<std::string> names;
  std::vector<int> leaf_sizes;
  for (int l = 0; l < leaves; ++l) leaf_sizes.push_back(std::uniform_int_distribution(1, 6)(rng));
  int total = 0;
  for (int size : leaf_sizes) total += size;
  for (int i = 0; i < total; ++i) names.push_back("n" + std::to_string(100 + i));
  std::shuffle(names.begin(), names.end(), rng);
  const bool mixed = std::bernoulli_distribution(0.3)(rng);
  int next = 0;
  for (int l = 0; l < leaves; ++l) {
    topology::Switch leaf;
    leaf.name = "leaf" + std::to_string(l);
    for (int i = 0; i < leaf_sizes[l]; ++i) {
      topology::Node node;
      node.hostname = names[next++];
      node.hardware = mixed && std::bernoulli_distribution(0.5)(rng) ? four : dgx;
      leaf.nodes.push_back(node.hostname);
      cluster.nodes.push_back(node);
    }
    cluster.switches.push_back(leaf);
  }
  for (int s = 0; s < spines; ++s) {
    topology::Switch spine;
    spine.name = "spine" + std::to_string(s);
    spine.level = topology::SwitchLevel::kSpine;
    for (int l = s; l < leaves; l += spines) spine.children.push_back("leaf" + std::to_string(l));
    cluster.switches.push_back(spine);
  }
  return cluster;
}

BusySet random_busy(const Cluster& cluster, double fraction, std::mt19937& rng) {
  BusySet busy(cluster.nodes.size());
  for (std::size_t i = 0; i < busy.size(); ++i)
    busy[i] = std::bernoulli_distribution(fraction)(rng);
  return busy;
}

// The fewest leaves whose free GPUs cover the request, by trying every subset.
int brute_force_leaf_span(const FabricIndex& fabric, const BusySet& busy, int gpus) {
  std::vector<int> free_gpus(fabric.leaf_count(), 0);
  for (int n = 0; n < fabric.node_count(); ++n) {
    if (!busy[n]) free_gpus[fabric.leaf_of(n)] += fabric.cluster().nodes[n].hardware.gpus.size();
  }
  int best = fabric.leaf_count() + 1;
  for (unsigned mask = 1; mask < (1u << fabric.leaf_count()); ++mask) {
    int sum = 0;
    for (int l = 0; l < fabric.leaf_count(); ++l) sum += (mask >> l & 1) ? free_gpus[l] : 0;
    if (sum >= gpus) best = std::min(best, __builtin_popcount(mask));
  }
  return best;
}

int free_gpus(const Cluster& cluster, const BusySet& busy) {
  int count = 0;
  for (std::size_t n = 0; n < busy.size(); ++n) {
    if (!busy[n]) count += cluster.nodes[n].hardware.gpus.size();
  }
  return count;
}

TEST(Placement, RandomClustersKeepEveryInvariant) {
  std::mt19937 rng(20261120);
  int checked = 0;
  for (int instance = 0; instance < 400; ++instance) {
    const Cluster cluster = random_cluster(rng);
    const FabricIndex fabric(cluster);
    const BusySet busy = random_busy(cluster, 0.3, rng);
    const int available = free_gpus(cluster, busy);
    if (available == 0) continue;
    PlacementRequest request;
    request.gpus = std::uniform_int_distribution(1, available)(rng);
    const Placement placement = plan_placement(fabric, busy, request);
    SCOPED_TRACE("instance " + std::to_string(instance) + ", gpus " + std::to_string(request.gpus));

    ASSERT_EQ(placement.world_size(), request.gpus);
    std::set<std::pair<int, int>> used;
    for (const RankPlacement& r : placement.ranks) {
      EXPECT_FALSE(busy[r.node]) << r.host << " is busy";
      ASSERT_GE(r.gpu, 0);
      EXPECT_TRUE(used.insert({r.node, r.gpu}).second) << r.host << " GPU " << r.gpu << " twice";
    }
    // Node order follows the switch tree.
    for (int r = 1; r < placement.world_size(); ++r) {
      EXPECT_LE(fabric.tree_key(placement.ranks[r - 1].node),
                fabric.tree_key(placement.ranks[r].node));
    }
    // Fewest leaves, as brute force finds.
    std::set<int> leaves;
    for (int node : placement.nodes()) leaves.insert(fabric.leaf_of(node));
    EXPECT_EQ(static_cast<int>(leaves.size()), brute_force_leaf_span(fabric, busy, request.gpus));
    // Deterministic.
    EXPECT_EQ(placement_json(placement), placement_json(plan_placement(fabric, busy, request)));
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

TEST(Placement, TensorParallelGroupsStayInsideNvlinkDomains) {
  std::mt19937 rng(7);
  int checked = 0;
  for (int instance = 0; instance < 300; ++instance) {
    const Cluster cluster = random_cluster(rng);
    const FabricIndex fabric(cluster);
    const BusySet busy = random_busy(cluster, 0.3, rng);
    const int tp = 1 << std::uniform_int_distribution(1, 3)(rng);  // 2, 4, 8
    // Capacity in whole TP groups: nodes with 4 GPUs hold none of tp=8.
    int groups = 0;
    for (std::size_t n = 0; n < busy.size(); ++n) {
      if (!busy[n]) groups += cluster.nodes[n].hardware.gpus.size() / tp;
    }
    if (groups == 0) continue;
    PlacementRequest request;
    request.gpus = tp * std::uniform_int_distribution(1, groups)(rng);
    request.layout = Layout{tp, 1, request.gpus / tp, 1};
    const Placement placement = plan_placement(fabric, busy, request);
    ASSERT_EQ(placement.world_size(), request.gpus);
    EXPECT_TRUE(placement.warnings.empty());
    for (int start = 0; start < placement.world_size(); start += tp) {
      for (int r = start; r < start + tp; ++r) {
        EXPECT_EQ(placement.ranks[r].node, placement.ranks[start].node)
            << "TP group at rank " << start << " leaves its node (instance " << instance << ")";
        EXPECT_EQ(*placement.ranks[r].tp, r - start);
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

// Node-for-node replacement on random clusters: every other rank keeps its place, the lost
// node's ranks move as they were to a free node of the same hardware, and no free node of
// that hardware is nearer (domain, leaf, spine) than the one chosen.
TEST(Placement, ALostNodeIsReplacedByTheNearestEquivalentSpare) {
  std::mt19937 rng(20261127);
  int replaced = 0, none = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const Cluster cluster = random_cluster(rng);
    const FabricIndex fabric(cluster);
    BusySet busy = random_busy(cluster, 0.3, rng);
    PlacementRequest request;
    request.gpus = 8 * std::uniform_int_distribution(1, 3)(rng);
    Placement placement;
    try {
      placement = plan_placement(fabric, busy, request);
    } catch (const InvalidArgument&) {
      continue;  // not enough free GPUs in this draw
    }
    const std::vector<int> nodes = placement.nodes();
    const int lost = nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(rng)];
    busy[lost] = true;
    const auto result = replace_nodes(fabric, busy, placement, {lost});
    auto nearness = [&](int n) {
      return fabric.leaf_of(n) == fabric.leaf_of(lost)     ? 1
             : fabric.spine_of(n) == fabric.spine_of(lost) ? 2
                                                           : 3;
    };
    auto equivalent = [&](int n) {
      return !busy[n] && std::find(nodes.begin(), nodes.end(), n) == nodes.end() &&
             cluster.nodes[n].hardware.gpus.size() == cluster.nodes[lost].hardware.gpus.size();
    };
    if (!result) {
      ++none;
      for (int n = 0; n < fabric.node_count(); ++n)
        EXPECT_FALSE(equivalent(n)) << "node " << n << " could have replaced " << lost;
      continue;
    }
    ++replaced;
    ASSERT_EQ(result->swaps.size(), 1u);
    const int spare = result->swaps[0].spare;
    EXPECT_EQ(result->swaps[0].lost, lost);
    EXPECT_TRUE(equivalent(spare));
    for (int n = 0; n < fabric.node_count(); ++n) {
      if (equivalent(n)) {
        EXPECT_GE(nearness(n), nearness(spare)) << "node " << n << " is nearer";
      }
    }
    ASSERT_EQ(result->placement.world_size(), placement.world_size());
    for (int i = 0; i < placement.world_size(); ++i) {
      const RankPlacement& before = placement.ranks[i];
      const RankPlacement& after = result->placement.ranks[i];
      EXPECT_EQ(after.rank, before.rank);
      EXPECT_EQ(after.local_rank, before.local_rank);
      EXPECT_EQ(after.gpu, before.gpu);
      EXPECT_EQ(after.nic, before.nic);
      EXPECT_EQ(after.cores, before.cores);
      if (before.node != lost) {
        EXPECT_EQ(after.node, before.node);
        EXPECT_EQ(after.host, before.host);
      } else {
        EXPECT_EQ(after.node, spare);
        EXPECT_EQ(after.host, cluster.nodes[spare].hostname);
        EXPECT_EQ(after.leaf, fabric.leaf_name(fabric.leaf_of(spare)));
      }
    }
  }
  EXPECT_GT(replaced, 50);
  EXPECT_GT(none, 0);
}

// A tray of an NVL72 rack is replaced by a free tray of the same rack, never by one of
// another rack (its TP groups would leave the NVLink domain): with its rack full, none.
TEST(Placement, ALostTrayIsReplacedInsideItsRackOnly) {
  Cluster cluster = topology::load_preset("gb200-nvl72");
  const std::size_t trays = cluster.nodes.size();
  topology::NvlinkDomain second{"rack02", {}, {}};
  for (std::size_t i = 0; i < trays; ++i) {
    topology::Node tray = cluster.nodes[i];
    tray.hostname = "gb200-b" + std::to_string(i);
    second.nodes.push_back(tray.hostname);
    cluster.nodes.push_back(tray);
  }
  cluster.nvlink_domains.push_back(second);
  for (topology::Switch& sw : cluster.switches)  // both racks under the one leaf
    if (sw.level == topology::SwitchLevel::kLeaf)
      sw.nodes.insert(sw.nodes.end(), second.nodes.begin(), second.nodes.end());
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), false);
  for (std::size_t i = 4; i < trays - 1; ++i) busy[i] = true;  // rack01: trays 0-3 free, one spare
  PlacementRequest request;
  request.gpus = 16;
  request.layout = Layout{16, 1, 1, 1};
  const Placement placement = plan_placement(fabric, busy, request);
  const int lost = placement.ranks[5].node;
  busy[lost] = true;
  const auto result = replace_nodes(fabric, busy, placement, {lost});
  ASSERT_TRUE(result);
  const int spare = result->swaps[0].spare;
  EXPECT_EQ(spare, static_cast<int>(trays - 1));
  EXPECT_EQ(result->swaps[0].nearness, "same NVLink domain rack01");
  for (const RankPlacement& r : result->placement.ranks) EXPECT_EQ(r.nvlink_domain, "rack01");
  // The spare taken too: rack02's free trays do not stand in.
  busy[spare] = true;
  const int second_lost = result->placement.ranks[0].node;
  busy[second_lost] = true;
  EXPECT_FALSE(replace_nodes(fabric, busy, result->placement, {second_lost}));
}

TEST(Placement, RackScaleTensorParallelSpansTraysOfOneRack) {
  Cluster cluster = topology::load_preset("gb200-nvl72");
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), false);
  busy[1] = busy[4] = true;
  PlacementRequest request;
  request.gpus = 32;
  request.layout = Layout{16, 1, 2, 1};
  const Placement placement = plan_placement(fabric, busy, request);
  ASSERT_EQ(placement.world_size(), 32);
  for (const RankPlacement& r : placement.ranks) EXPECT_EQ(r.nvlink_domain, "rack01");
  EXPECT_TRUE(placement.warnings.empty());
}

// GB200 NVL72 racks (18 trays of 4 GPUs, one NVLink domain each), `racks_per_leaf` racks
// under a leaf, `leaves_per_spine` leaves under a spine; tray hostnames in rack order.
Cluster nvl72_racks(int racks, int racks_per_leaf, int leaves_per_spine) {
  const Cluster rack = topology::load_preset("gb200-nvl72");
  Cluster cluster;
  cluster.name = "nvl72-racks";
  cluster.rails = rack.rails;
  cluster.node_types = rack.node_types;
  const int leaves = (racks + racks_per_leaf - 1) / racks_per_leaf;
  for (int l = 0; l < leaves; ++l) {
    topology::Switch leaf;
    leaf.name = "leaf" + std::to_string(l);
    cluster.switches.push_back(leaf);
  }
  for (int r = 0; r < racks; ++r) {
    topology::NvlinkDomain domain{"rack" + std::to_string(r), {}, {}};
    for (const topology::Node& tray : rack.nodes) {
      topology::Node node = tray;
      node.hostname = "r" + std::to_string(r) + "-" + tray.hostname;
      domain.nodes.push_back(node.hostname);
      cluster.switches[r / racks_per_leaf].nodes.push_back(node.hostname);
      cluster.nodes.push_back(node);
    }
    cluster.nvlink_domains.push_back(domain);
  }
  for (int s = 0; s * leaves_per_spine < leaves; ++s) {
    topology::Switch spine;
    spine.name = "spine" + std::to_string(s);
    spine.level = topology::SwitchLevel::kSpine;
    for (int l = s * leaves_per_spine; l < std::min(leaves, (s + 1) * leaves_per_spine); ++l)
      spine.children.push_back("leaf" + std::to_string(l));
    cluster.switches.push_back(spine);
  }
  return cluster;
}

// Free trays of each rack.
std::map<std::string, int> free_trays(const FabricIndex& fabric, const BusySet& busy) {
  std::map<std::string, int> trays;
  for (int n = 0; n < fabric.node_count(); ++n) {
    if (!busy[n]) ++trays[fabric.domain_name(fabric.domain_of(n))];
  }
  return trays;
}

// The case: `--nodes K --gpus-per-node G --layout tp=T` on NVL72 racks. Whenever
// plan succeeds without --allow-cross-domain-tp no TP group crosses a rack; it succeeds
// exactly when a non-crossing placement exists (an oracle written apart: each rack holds
// floor(free trays / q) * q trays of whole groups, q = T / gcd(G, T)), and then also when
// --gpus finds one for the same GPUs; with --allow-cross-domain-tp a request that only
// crossing placements hold is placed, with a warning, and its groups do cross.
TEST(Placement, TensorParallelGroupsNeverCrossRacksWithNodes) {
  std::mt19937 rng(20261128);
  int placed = 0, refused = 0, crossed_when_allowed = 0, gpus_mode_compared = 0;
  for (int instance = 0; instance < 400; ++instance) {
    const Cluster cluster = nvl72_racks(std::uniform_int_distribution(2, 6)(rng),
                                        std::uniform_int_distribution(1, 2)(rng),
                                        std::uniform_int_distribution(1, 2)(rng));
    const FabricIndex fabric(cluster);
    const BusySet busy = random_busy(cluster, std::uniform_real_distribution(0.2, 0.9)(rng), rng);
    const int gpus_per_node = std::array{1, 2, 4}[std::uniform_int_distribution(0, 2)(rng)];
    const int tp = 2 << std::uniform_int_distribution(0, 5)(rng);  // 2 .. 64
    if (tp > 18 * gpus_per_node) continue;  // larger than a rack: another error
    const int q = tp / std::gcd(gpus_per_node, tp);
    int free_nodes = 0, oracle = 0;
    for (const auto& [rack, trays] : free_trays(fabric, busy)) {
      free_nodes += trays;
      oracle += trays / q * q;
    }
    PlacementRequest request;
    request.nodes = q * std::uniform_int_distribution(1, free_nodes / q + 1)(rng);
    request.gpus_per_node = gpus_per_node;
    const int world = request.nodes * gpus_per_node;
    request.layout = Layout{tp, 1, world / tp, 1};
    SCOPED_TRACE("instance " + std::to_string(instance) + ": --nodes " +
                 std::to_string(request.nodes) + " --gpus-per-node " +
                 std::to_string(gpus_per_node) + " tp=" + std::to_string(tp));
    bool nodes_mode_placed = false;
    try {
      const Placement placement = plan_placement(fabric, busy, request);
      nodes_mode_placed = true;
      ++placed;
      EXPECT_GE(oracle, request.nodes) << "placed although the oracle finds no placement";
      ASSERT_EQ(placement.world_size(), world);
      EXPECT_TRUE(placement.warnings.empty());
      EXPECT_EQ(detail::crossing_tp_groups(placement, tp), 0);
      for (int start = 0; start < world; start += tp) {
        for (int r = start; r < start + tp; ++r) {
          EXPECT_FALSE(busy[placement.ranks[r].node]);
          ASSERT_EQ(placement.ranks[r].nvlink_domain, placement.ranks[start].nvlink_domain)
              << "TP group at rank " << start << " leaves its rack";
        }
      }
    } catch (const InvalidArgument& error) {
      ++refused;
      EXPECT_LT(oracle, request.nodes)
          << "refused although a non-crossing placement exists: " << error.what();
      const std::string what = error.what();
      EXPECT_NE(what.find("are free in whole TP groups of " + std::to_string(tp)),
                std::string::npos)
          << what;
    }
    // --gpus for the same GPUs in whole trays (T a multiple of a tray, or a divisor of it).
    if (gpus_per_node == 4) {
      PlacementRequest gpus = request;
      gpus.nodes = gpus.gpus_per_node = 0;
      gpus.gpus = world;
      try {
        const Placement placement = plan_placement(fabric, busy, gpus);
        ++gpus_mode_compared;
        EXPECT_EQ(detail::crossing_tp_groups(placement, tp), 0);
        EXPECT_TRUE(nodes_mode_placed) << "--gpus found a placement, --nodes did not";
      } catch (const InvalidArgument&) {
      }
    }
    request.allow_cross_domain_tp = true;
    if (free_nodes < request.nodes) {
      EXPECT_THROW(plan_placement(fabric, busy, request), InvalidArgument);
      continue;
    }
    const Placement allowed = plan_placement(fabric, busy, request);
    ASSERT_EQ(allowed.world_size(), world);
    if (oracle < request.nodes) {
      ++crossed_when_allowed;
      EXPECT_GT(detail::crossing_tp_groups(allowed, tp), 0);
      EXPECT_FALSE(allowed.warnings.empty());
    } else {
      EXPECT_EQ(detail::crossing_tp_groups(allowed, tp), 0);
      EXPECT_TRUE(allowed.warnings.empty());
    }
  }
  EXPECT_GT(placed, 100);
  EXPECT_GT(refused, 30);
  EXPECT_GT(crossed_when_allowed, 10);
  EXPECT_GT(gpus_mode_compared, 30);
}

// Two racks under one leaf: the first has 3 free trays, the second 18. Four trays of
// tp=16 fit only in the second; with 3 free trays in each rack none fits, and the refusal
// names the free capacity in whole groups and in all.
TEST(Placement, NodesWithRackTensorParallelTakeOneRackOrRefuse) {
  const Cluster cluster = nvl72_racks(2, 2, 1);
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), false);
  for (int n = 3; n < 18; ++n) busy[n] = true;
  PlacementRequest request;
  request.nodes = 4;
  request.gpus_per_node = 4;
  request.layout = Layout{16, 1, 1, 1};
  const Placement placement = plan_placement(fabric, busy, request);
  for (const RankPlacement& r : placement.ranks) EXPECT_EQ(r.nvlink_domain, "rack1");
  for (int n = 21; n < 36; ++n) busy[n] = true;
  try {
    plan_placement(fabric, busy, request);
    FAIL() << "expected a refusal";
  } catch (const InvalidArgument& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("cannot place 4 nodes: only 0 qualifying nodes are free in whole TP "
                        "groups of 16"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("6 qualifying nodes are free (leaf0: 6 on 6 nodes)"), std::string::npos)
        << what;
    EXPECT_NE(what.find("--allow-cross-domain-tp"), std::string::npos) << what;
  }
  request.allow_cross_domain_tp = true;
  const Placement crossing = plan_placement(fabric, busy, request);
  EXPECT_EQ(crossing.world_size(), 16);
  EXPECT_EQ(detail::crossing_tp_groups(crossing, 16), 1);
  ASSERT_EQ(crossing.warnings.size(), 2u);
  EXPECT_NE(crossing.warnings[1].find("1 of 1 tensor-parallel groups span"), std::string::npos);
}

// Stage 1: a rack offers whole TP groups (tp=8 of 2-GPU trays: 4 trays at a time), a node
// in no NVLink domain offers none.
TEST(PlacementStages, CollectBinsOffersWholeTensorParallelGroups) {
  Cluster cluster = nvl72_racks(1, 1, 1);
  topology::Node pcie;
  pcie.hostname = "pcie-1";
  pcie.hardware = topology::builtin_node_types().at("dgx-h100");
  pcie.hardware.nvlink = topology::NvlinkScope::kNone;
  cluster.nodes.push_back(pcie);
  cluster.switches[0].nodes.push_back(pcie.hostname);
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), false);
  for (int n = 0; n < 7; ++n) busy[n] = true;  // 11 free trays
  PlacementRequest request;
  request.nodes = 4;
  request.gpus_per_node = 2;
  detail::Units units{true, 4, 8};
  auto bins = detail::collect_bins(fabric, busy, request, units);
  ASSERT_EQ(bins.size(), 2u);
  EXPECT_EQ(bins[0].nodes.size(), 11u);
  EXPECT_EQ(bins[0].capacity, 8);  // 11 trays hold two groups of four trays
  EXPECT_EQ(bins[1].domain, -1);
  EXPECT_EQ(bins[1].capacity, 0);
  units.tp = 1;
  bins = detail::collect_bins(fabric, busy, request, units);
  EXPECT_EQ(bins[0].capacity, 11);
  EXPECT_EQ(bins[1].capacity, 1);
  // --gpus: 44 free GPUs of the rack hold five groups of 8; the PCIe node none.
  request = PlacementRequest{};
  request.gpus = 8;
  bins = detail::collect_bins(fabric, busy, request, detail::Units{false, 8, 8});
  EXPECT_EQ(bins[0].capacity, 40);
  EXPECT_EQ(bins[1].capacity, 0);
}

// Brute force over subsets: the fewest bins whose capacities cover `need`.
int fewest_bins(const std::vector<detail::Bin>& bins, long need) {
  int best = 1 << 20;
  for (unsigned mask = 1; mask < (1u << bins.size()); ++mask) {
    long sum = 0;
    for (std::size_t i = 0; i < bins.size(); ++i) sum += (mask >> i & 1) ? bins[i].capacity : 0;
    if (sum >= need) best = std::min(best, __builtin_popcount(mask));
  }
  return best;
}

TEST(PlacementStages, BestFitTakesTheFewestBinsWholeButOne) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 500; ++trial) {
    const long granule = std::uniform_int_distribution(1, 4)(rng);
    std::vector<detail::Bin> bins;
    long total = 0;
    const int count = std::uniform_int_distribution(1, 9)(rng);
    for (int i = 0; i < count; ++i) {
      bins.push_back({100 + i, granule * std::uniform_int_distribution(0, 12)(rng)});
      total += bins.back().capacity;
    }
    const long need = granule * std::uniform_int_distribution(1, 60)(rng);
    const auto takes = detail::best_fit(bins, need);
    if (total < need) {
      EXPECT_TRUE(takes.empty());
      continue;
    }
    ASSERT_FALSE(takes.empty());
    EXPECT_EQ(static_cast<int>(takes.size()), fewest_bins(bins, need)) << "trial " << trial;
    long sum = 0;
    int partial = 0;
    std::set<int> ids;
    for (const detail::Take& take : takes) {
      const auto bin = std::find_if(bins.begin(), bins.end(),
                                    [&](const detail::Bin& b) { return b.id == take.id; });
      ASSERT_NE(bin, bins.end());
      EXPECT_TRUE(ids.insert(take.id).second);
      EXPECT_GT(take.amount, 0);
      EXPECT_LE(take.amount, bin->capacity);
      EXPECT_EQ(take.amount % granule, 0);
      partial += take.amount < bin->capacity;
      sum += take.amount;
    }
    EXPECT_EQ(sum, need);
    EXPECT_LE(partial, 1);
  }
  // One bin suffices: the smallest that fits; equal capacities go to the lowest id.
  const std::vector<detail::Bin> bins{{3, 10}, {1, 7}, {2, 7}, {0, 5}};
  EXPECT_EQ(detail::best_fit(bins, 6).front().id, 1);
  EXPECT_EQ(detail::best_fit(bins, 6).front().amount, 6);
}

// Stage 2 on two spines: A holds leaves of 50 and 50 free, B of 30 and 170. A job of 30
// fits one leaf anywhere: spine-first takes A (less free in all) and strands 20 of a
// leaf; leaf-first takes B, whose 30-leaf fits exactly. A job of 200 needs two leaves: only
// B's two hold it.
TEST(PlacementStages, SpineRulesDifferOnlyInWhichSpineFitsBest) {
  const Cluster cluster = nvl72_racks(4, 1, 2);  // leaf0, leaf1 on spine0; leaf2, leaf3 on spine1
  const FabricIndex fabric(cluster);
  const std::vector<detail::Bin> leaves{{0, 50}, {1, 50}, {2, 30}, {3, 170}};
  auto ids = [](const std::vector<detail::Bin>& bins) {
    std::vector<int> out;
    for (const detail::Bin& b : bins) out.push_back(b.id);
    return out;
  };
  using detail::SpineRule;
  EXPECT_EQ(ids(detail::choose_spines(fabric, leaves, 30, SpineRule::kSpineFirst)),
            (std::vector<int>{0, 1}));
  EXPECT_EQ(ids(detail::choose_spines(fabric, leaves, 30, SpineRule::kLeafFirst)),
            (std::vector<int>{2, 3}));
  for (SpineRule rule : {SpineRule::kSpineFirst, SpineRule::kLeafFirst}) {
    EXPECT_EQ(ids(detail::choose_spines(fabric, leaves, 200, rule)), (std::vector<int>{2, 3}));
    // 260 fits no spine: both, B first (its two leaves hold more).
    EXPECT_EQ(ids(detail::choose_spines(fabric, leaves, 260, rule)),
              (std::vector<int>{0, 1, 2, 3}));
  }
}

// Through the whole planner: four racks, one per leaf, two leaves per spine; spine 0 has 5
// and 5 free trays, spine 1 has 3 and 8. Three trays: spine-first takes the tighter spine
// 0 and a rack of 5; leaf-first, haein's rule, the rack with exactly 3.
TEST(Placement, LeafFirstTakesTheBestFittingLeafOfTheCluster) {
  const Cluster cluster = nvl72_racks(4, 1, 2);
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), true);
  const int free_per_rack[] = {5, 5, 3, 8};
  for (int rack = 0; rack < 4; ++rack) {
    for (int tray = 0; tray < free_per_rack[rack]; ++tray) busy[rack * 18 + tray] = false;
  }
  PlacementRequest request;
  request.nodes = 3;
  auto racks_of = [](const Placement& placement) {
    std::set<std::string> racks;
    for (const RankPlacement& r : placement.ranks) racks.insert(r.nvlink_domain);
    return racks;
  };
  using detail::SpineRule;
  EXPECT_EQ(racks_of(detail::plan_placement(fabric, busy, request, SpineRule::kSpineFirst)),
            std::set<std::string>{"rack0"});
  EXPECT_EQ(racks_of(detail::plan_placement(fabric, busy, request, SpineRule::kLeafFirst)),
            std::set<std::string>{"rack2"});
  EXPECT_EQ(racks_of(plan_placement(fabric, busy, request)), std::set<std::string>{"rack2"});
}

// Stage 4: local rank i on rail i, whatever the GPU numbering (DGX H100: GPU 1 is on
// mlx5_3's rail 1), and only the GPUs asked for.
TEST(PlacementStages, GpusInRailOrder) {
  const Cluster cluster = topology::load_preset("haein");
  PlacementRequest request;
  request.gpus = 5;
  const auto nodes = detail::order_gpus_by_rail(cluster, {{3, 5}}, request, false);
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_EQ(nodes[0].gpus.size(), 5u);
  const auto& hardware = cluster.nodes[3].hardware;
  const std::vector<int> nics = detail::closest_nics(hardware);
  for (std::size_t local = 0; local < nodes[0].gpus.size(); ++local) {
    EXPECT_EQ(hardware.nics[nics[nodes[0].gpus[local]]].rail, static_cast<int>(local));
  }
  request = PlacementRequest{};
  request.nodes = 1;
  EXPECT_EQ(detail::order_gpus_by_rail(cluster, {{3, 1}}, request, true)[0].gpus.size(), 8u);
}

TEST(PlacementStages, CrossingTensorParallelGroupsAreCounted) {
  Placement placement;
  for (const char* domain : {"a", "a", "a", "b", "b", "b", "", ""}) {
    RankPlacement r;
    r.rank = placement.world_size();
    r.nvlink_domain = domain;
    placement.ranks.push_back(r);
  }
  EXPECT_EQ(detail::crossing_tp_groups(placement, 2), 2);  // {a, b} and {"", ""}
  EXPECT_EQ(detail::crossing_tp_groups(placement, 4), 2);
  EXPECT_EQ(detail::crossing_tp_groups(placement, 1), 0);
}

// With tp smaller than a node, a node holds several TP groups: local rank i is still on
// rail i, but the DP peers of one TP index sit on local indices tp, tp + T, ..., so they
// share a rail only with the peers at the same position of their node (docs/placement.md).
TEST(Placement, DataParallelPeersShareARailOnlyAtTheSamePositionBelowANodeOfTp) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  PlacementRequest request;
  request.gpus = 64;
  request.layout = Layout{4, 1, 16, 1};
  const Placement placement = plan_placement(fabric, BusySet(cluster.nodes.size()), request);
  std::map<int, std::set<int>> rails_of_tp;
  for (const RankPlacement& r : placement.ranks) {
    EXPECT_EQ(r.rail, r.local_rank) << "rank " << r.rank;
    EXPECT_EQ(r.local_rank % 4, *r.tp) << "rank " << r.rank;
    rails_of_tp[*r.tp].insert(r.rail);
  }
  for (const auto& [tp, rails] : rails_of_tp) EXPECT_EQ(rails, (std::set<int>{tp, tp + 4}));
}

TEST(Placement, DataParallelPeersShareARail) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  PlacementRequest request;
  request.gpus = 64;
  request.layout = Layout{8, 2, 4, 2};
  const Placement placement = plan_placement(fabric, BusySet(cluster.nodes.size()), request);
  for (const RankPlacement& r : placement.ranks) {
    EXPECT_EQ(r.rail, placement.ranks[*r.tp].rail) << "rank " << r.rank;
    EXPECT_EQ(*r.ep, *r.dp % 2);
  }
  // Pipeline stages are contiguous blocks of tp*dp ranks.
  EXPECT_EQ(*placement.ranks[31].pp, 0);
  EXPECT_EQ(*placement.ranks[32].pp, 1);
}

TEST(Placement, PrefersOneLeafWithBestFit) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), false);
  // su1: 20 free nodes; su2: 5 free; su3, su4: all free.
  for (int n = 0; n < 12; ++n) busy[n] = true;
  for (int n = 32; n < 59; ++n) busy[n] = true;
  PlacementRequest request;
  request.gpus = 32;  // 4 nodes: su2's 5 free nodes fit best
  Placement placement = plan_placement(fabric, busy, request);
  for (const RankPlacement& r : placement.ranks) EXPECT_EQ(r.leaf, "su2");
  request.gpus = 160;  // 20 nodes: su1 exactly
  placement = plan_placement(fabric, busy, request);
  for (const RankPlacement& r : placement.ranks) EXPECT_EQ(r.leaf, "su1");
  request.gpus = 8 * 40;  // no leaf has 40 free: two leaves, su3 whole plus the best fit
  placement = plan_placement(fabric, busy, request);
  std::set<std::string> leaves;
  for (const RankPlacement& r : placement.ranks) leaves.insert(r.leaf);
  EXPECT_EQ(leaves.size(), 2u);
}

TEST(Placement, NeverPredictedSlowerThanNaiveOrdersOnHaein) {
  const Cluster cluster = topology::load_preset("haein");
  const topology::CostModel model(cluster);
  std::mt19937 rng(30);
  for (int instance = 0; instance < 100; ++instance) {
    const BusySet busy = random_busy(cluster, 0.3, rng);
    PlacementRequest request;
    request.gpus = 8 * std::uniform_int_distribution(1, free_gpus(cluster, busy) / 8)(rng);
    const auto ours = measure(model, plan_placement(model.fabric(), busy, request), "haein");
    for (NaiveOrder order : {NaiveOrder::kMapBySlot, NaiveOrder::kMapByNode}) {
      const auto theirs =
          measure(model, naive_placement(model.fabric(), busy, request, order), "naive");
      EXPECT_LE(ours.all_reduce_1gib.seconds, theirs.all_reduce_1gib.seconds * (1 + 1e-9))
          << "instance " << instance << " vs " << to_string(order);
      EXPECT_LE(ours.ring_1gib.seconds, theirs.ring_1gib.seconds * (1 + 1e-9))
          << "instance " << instance << " vs " << to_string(order);
      EXPECT_LE(ours.leaves, theirs.leaves);
    }
  }
}

TEST(Placement, MapByNodeRoundRobins) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  PlacementRequest request;
  request.gpus = 16;
  const Placement p =
      naive_placement(fabric, BusySet(cluster.nodes.size()), request, NaiveOrder::kMapByNode);
  EXPECT_EQ(p.ranks[0].host, "b200-001");
  EXPECT_EQ(p.ranks[1].host, "b200-002");
  EXPECT_EQ(p.ranks[2].host, "b200-001");
  EXPECT_EQ(p.ranks[2].local_rank, 1);
}

TEST(Affinity, NicByPciSwitchNotByIndex) {
  const auto& dgx = topology::builtin_node_types().at("dgx-h100");
  const std::vector<int> nics = detail::closest_nics(dgx);
  ASSERT_EQ(nics.size(), 8u);
  EXPECT_EQ(dgx.nics[nics[0]].name, "mlx5_0");
  EXPECT_EQ(dgx.nics[nics[1]].name, "mlx5_3");
  EXPECT_EQ(dgx.nics[nics[4]].name, "mlx5_6");
  EXPECT_EQ(dgx.nics[nics[7]].name, "mlx5_11");
  // GB200 trays have no PCIe switch between GPU and NIC: pair by NUMA, one NIC each.
  const auto& tray = topology::builtin_node_types().at("gb200-nvl72");
  const std::vector<int> tray_nics = detail::closest_nics(tray);
  std::set<int> distinct(tray_nics.begin(), tray_nics.end());
  EXPECT_EQ(distinct.size(), 4u);
  for (std::size_t g = 0; g < tray.gpus.size(); ++g) {
    EXPECT_EQ(tray.nics[tray_nics[g]].numa, tray.gpus[g].numa);
  }
}

TEST(Affinity, CoresSplitKeepsHyperThreadSiblings) {
  std::vector<int> cpus;
  for (int c = 0; c < 8; ++c) cpus.push_back(c);
  for (int c = 16; c < 24; ++c) cpus.push_back(c);
  EXPECT_EQ(detail::cpu_share(cpus, 0, 2), (std::vector<int>{0, 1, 2, 3, 16, 17, 18, 19}));
  EXPECT_EQ(detail::cpu_share(cpus, 1, 2), (std::vector<int>{4, 5, 6, 7, 20, 21, 22, 23}));
  EXPECT_EQ(detail::cpu_share(cpus, 0, 1), cpus);
  const detail::CpuRuns runs =
      detail::cpu_runs({23, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22});
  EXPECT_EQ(runs.cpus, 16u);
  EXPECT_EQ(runs.runs, (std::vector<std::pair<int, int>>{{0, 8}, {16, 8}}));
  EXPECT_EQ(detail::nth_cpu(runs, 9), 17);
}

// CPU-only ranks sharing one large node: every rank gets its own core, in order, and the
// placement is linear in the ranks (40,000 ranks on a 40,000-CPU node took 16 s).
TEST(Affinity, ManyCpuRanksOnOneNodeGetOneCoreEach) {
  const Cluster cluster = topology::read_cluster_yaml(
      "nodes:\n  - hostname: big\n    slots: 40000\n    numa: [{id: 0, cpus: \"0-19999\"}, "
      "{id: 1, cpus: \"20000-39999\"}]\n",
      "big.yaml");
  const FabricIndex fabric(cluster);
  PlacementRequest request;
  request.gpus = 40000;
  const Placement placement = plan_placement(fabric, BusySet(1), request);
  ASSERT_EQ(placement.ranks.size(), 40000u);
  for (const RankPlacement& r : placement.ranks) {
    ASSERT_EQ(r.cores, std::vector<int>{r.rank}) << "rank " << r.rank;
    ASSERT_EQ(r.numa, r.rank < 20000 ? 0 : 1) << "rank " << r.rank;
  }
}

TEST(PlacementBadInput, ClearErrors) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  BusySet busy(cluster.nodes.size(), false);
  for (int n = 0; n < 100; ++n) busy[n] = true;
  PlacementRequest request;
  request.gpus = 300;
  try {
    plan_placement(fabric, busy, request);
    FAIL() << "expected an error";
  } catch (const InvalidArgument& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("224"), std::string::npos) << what;  // 28 free nodes x 8
    EXPECT_NE(what.find("su4"), std::string::npos) << what;
  }
  request.gpus = 16;
  request.layout = Layout{8, 1, 3, 1};
  EXPECT_THROW(plan_placement(fabric, busy, request), InvalidArgument);
  request.layout = Layout{16, 1, 1, 1};
  EXPECT_THROW(plan_placement(fabric, busy, request), InvalidArgument);
  request.allow_cross_domain_tp = true;
  const Placement placement = plan_placement(fabric, busy, request);
  ASSERT_FALSE(placement.warnings.empty());
  EXPECT_NE(placement.warnings.front().find("larger than"), std::string::npos);
  EXPECT_THROW(parse_layout("tp=8,pp=x", 16), InvalidArgument);
  EXPECT_THROW(parse_layout("tp=3", 16), InvalidArgument);
  EXPECT_THROW(parse_layout("tp=2,dp=4,ep=3", 8), InvalidArgument);
  EXPECT_EQ(parse_layout("tp=2,pp=2", 16).dp, 4);
}

TEST(PlacementBadInput, BusyFileNamesUnknownHostAndLine) {
  const Cluster cluster = topology::load_preset("haein");
  const BusySet busy =
      parse_busy(cluster, "# maintenance\nb200-[001-004]\n\nb200-128 b200-010\n", "busy.txt");
  EXPECT_EQ(std::count(busy.begin(), busy.end(), true), 6);
  try {
    parse_busy(cluster, "b200-001\nb300-001\n", "busy.txt");
    FAIL() << "expected a ParseError";
  } catch (const ParseError& error) {
    EXPECT_EQ(error.line(), 2);
    EXPECT_NE(std::string(error.what()).find("b300-001"), std::string::npos);
  }
  EXPECT_THROW(parse_busy(cluster, "b200-[001-\n", "busy.txt"), ParseError);
}

TEST(PlacementFiles, JsonRoundTripsAndOtherFormats) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  PlacementRequest request;
  request.gpus = 16;
  request.layout = Layout{8, 1, 2, 1};
  const Placement placement = plan_placement(fabric, BusySet(cluster.nodes.size()), request);
  const std::string json = placement_json(placement);
  const Placement back = parse_placement_json(json, "p.json");
  EXPECT_EQ(placement_json(back), json);
  EXPECT_EQ(back.ranks[9].host, "b200-002");
  EXPECT_EQ(back.ranks[9].nic, "mlx5_3");
  EXPECT_THROW(parse_placement_json("{\"version\": 2}", "p.json"), ParseError);
  EXPECT_THROW(parse_placement_json("[1,", "p.json"), ParseError);
  // Found by fuzz_placement_json: numbers that are not ints (2.5e121, 2^40) were converted
  // without a check (undefined behaviour); now they are named.
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"\"gpu\": 0", "\"gpu\": 2.5e121"},
        {"\"gpu\": 0", "\"gpu\": 1099511627776"},
        {"\"rank\": 0", "\"rank\": -1e3"}}) {
    std::string bad = json;
    bad.replace(bad.find(from), from.size(), to);
    try {
      parse_placement_json(bad, "p.json");
      ADD_FAILURE() << "accepted " << to;
    } catch (const ParseError& error) {
      EXPECT_NE(std::string(error.what()).find(to.substr(1, to.find('"', 1) - 1)),
                std::string::npos)
          << error.what();
    }
  }

  const std::string rankfile = placement_rankfile(placement);
  EXPECT_NE(rankfile.find("rank 0=b200-001 slot=0-13,112-125\n"), std::string::npos) << rankfile;
  EXPECT_NE(rankfile.find("rank 15=b200-002 slot=98-111,210-223\n"), std::string::npos);
  const std::string hosts = placement_slurm_hostfile(placement);
  EXPECT_EQ(std::count(hosts.begin(), hosts.end(), '\n'), 16);
  const std::string svg = placement_svg(fabric, BusySet(cluster.nodes.size()), placement);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("b200-001: ranks 0-7"), std::string::npos);
}

// The placement JSON is written by hand: names with quotes, backslashes, control
// characters and UTF-8 must come back as they were.
TEST(PlacementFiles, JsonEscapesNames) {
  const Cluster cluster = topology::load_preset("haein");
  const FabricIndex fabric(cluster);
  PlacementRequest request;
  request.gpus = 2;
  Placement placement = plan_placement(fabric, BusySet(cluster.nodes.size()), request);
  placement.cluster = "a \"quoted\" back\\slash\ttab\x01 and \xc3\xbc";
  placement.ranks[1].leaf = "leaf\n2";
  const Placement back = parse_placement_json(placement_json(placement), "p.json");
  EXPECT_EQ(back.cluster, placement.cluster);
  EXPECT_EQ(back.ranks[1].leaf, "leaf\n2");
  EXPECT_EQ(back.ranks[0].cores, placement.ranks[0].cores);
  EXPECT_EQ(back.ranks[1].spine, placement.ranks[1].spine);
  EXPECT_FALSE(back.layout.has_value());
  EXPECT_FALSE(back.ranks[0].tp.has_value());
  placement.ranks.clear();
  EXPECT_EQ(parse_placement_json(placement_json(placement), "p.json").world_size(), 0);
}

}  // namespace
}  // namespace haein::launcher
