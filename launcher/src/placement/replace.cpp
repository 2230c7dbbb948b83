// Node-for-node replacement of lost nodes: the recovery a shared cluster needs, where a
// fresh plan would move every rank (and its NCCL rings) for the sake of one node.
#include <algorithm>
#include <set>

#include "haein/common/error.hpp"
#include "haein/launcher/placement.hpp"

namespace haein::launcher {

namespace {

/// The hardware as built, without where each part was described.
topology::NodeHardware without_sources(topology::NodeHardware hardware) {
  for (auto& numa : hardware.numa) numa.where = {};
  for (auto& gpu : hardware.gpus) gpu.where = {};
  for (auto& nic : hardware.nics) nic.where = {};
  return hardware;
}

int domain_size(const topology::FabricIndex& fabric, int domain) {
  if (domain < 0) return 0;
  int size = 0;
  for (int n = 0; n < fabric.node_count(); ++n) size += fabric.domain_of(n) == domain ? 1 : 0;
  return size;
}

}  // namespace

std::optional<Replacement> replace_nodes(const topology::FabricIndex& fabric, const BusySet& busy,
                                         const Placement& placement, const std::vector<int>& lost) {
  const topology::Cluster& cluster = fabric.cluster();
  if (busy.size() != cluster.nodes.size())
    throw InvalidArgument("busy set has " + std::to_string(busy.size()) + " entries for " +
                          std::to_string(cluster.nodes.size()) + " nodes");
  std::set<int> taken;  // nodes the job uses, lost ones included, and spares chosen so far
  for (const RankPlacement& r : placement.ranks) taken.insert(r.node);
  Replacement result{placement, {}};
  for (const int node : lost) {
    if (node < 0 || node >= fabric.node_count() || !taken.contains(node))
      throw InvalidArgument("replace_nodes: node " + std::to_string(node) +
                            " is not a node of the placement");
    const int ranks =
        static_cast<int>(std::count_if(placement.ranks.begin(), placement.ranks.end(),
                                       [&](const RankPlacement& r) { return r.node == node; }));
    const topology::NodeHardware hardware = without_sources(cluster.nodes[node].hardware);
    const int domain = fabric.domain_of(node);
    const bool rack = domain_size(fabric, domain) > 1;
    // Nearness: 0 same NVLink domain, 1 same leaf, 2 same spine, 3 elsewhere.
    auto nearness = [&](int n) {
      if (domain >= 0 && fabric.domain_of(n) == domain) return 0;
      if (fabric.leaf_of(n) == fabric.leaf_of(node)) return 1;
      if (fabric.spine_of(n) == fabric.spine_of(node)) return 2;
      return 3;
    };
    int best = -1;
    for (int n = 0; n < fabric.node_count(); ++n) {
      if (busy[n] || taken.contains(n)) continue;
      if (cluster.nodes[n].effective_slots() < ranks) continue;
      if (without_sources(cluster.nodes[n].hardware) != hardware) continue;
      if (rack && nearness(n) != 0) continue;
      if (best < 0 || nearness(n) < nearness(best)) best = n;
    }
    if (best < 0) return std::nullopt;
    taken.insert(best);
    const int leaf = fabric.leaf_of(best);
    const int spine = fabric.spine_of(best);
    const int spare_domain = fabric.domain_of(best);
    static const char* const kNearness[] = {"same NVLink domain ", "same leaf ", "same spine ",
                                            "another spine"};
    const int near = nearness(best);
    std::string where = kNearness[near];
    if (near == 0) where += fabric.domain_name(spare_domain);
    if (near == 1) where = leaf >= 0 ? where + fabric.leaf_name(leaf) : "no switches described";
    if (near == 2) where += fabric.spine_name(spine);
    result.swaps.push_back({node, best, where});
    for (RankPlacement& r : result.placement.ranks) {
      if (r.node != node) continue;
      r.node = best;
      r.host = cluster.nodes[best].hostname;
      r.nvlink_domain = spare_domain >= 0 ? fabric.domain_name(spare_domain) : std::string();
      r.leaf = leaf >= 0 ? fabric.leaf_name(leaf) : std::string();
      r.spine = spine >= 0 ? fabric.spine_name(spine) : std::string();
    }
  }
  return result;
}

}  // namespace haein::launcher
