// The orders users get today, for comparison: a hostfile of the free nodes sorted by
// hostname, ranks mapped by slot or round-robin by node, local rank i on GPU i.
#include <algorithm>
#include <numeric>

#include "haein/common/error.hpp"
#include "placement_internal.hpp"

namespace haein::launcher {

std::string_view to_string(NaiveOrder order) {
  return order == NaiveOrder::kMapBySlot ? "map-by slot" : "map-by node";
}

Placement naive_placement(const topology::FabricIndex& fabric, const BusySet& busy,
                          const PlacementRequest& request, NaiveOrder order) {
  const topology::Cluster& cluster = fabric.cluster();
  std::vector<int> hosts;
  for (std::size_t n = 0; n < cluster.nodes.size(); ++n) {
    if (!busy[n] && detail::usable_gpus(cluster.nodes[n], request) > 0) {
      hosts.push_back(static_cast<int>(n));
    }
  }
  std::sort(hosts.begin(), hosts.end(),
            [&](int a, int b) { return cluster.nodes[a].hostname < cluster.nodes[b].hostname; });
  // The first hosts of the sorted hostfile that give enough slots.
  std::vector<int> slots;
  long world = 0;
  const long need = request.nodes > 0 ? request.nodes : request.gpus;
  long have = 0;
  for (int n : hosts) {
    if (have >= need) break;
    int count = detail::usable_gpus(cluster.nodes[n], request);
    if (request.nodes > 0) {
      have += 1;
    } else {
      count = static_cast<int>(std::min<long>(count, need - have));
      have += count;
    }
    slots.push_back(count);
    world += count;
  }
  if (have < need) {
    throw InvalidArgument("not enough free nodes for the naive orders either");
  }
  const std::size_t used = slots.size();
  std::vector<detail::NodeRanks> nodes(used);
  for (std::size_t i = 0; i < used; ++i) nodes[i].node = hosts[i];
  // A rank's GPU on its node; a node without GPUs (a hostfile's slots) runs ranks on CPUs.
  const auto gpu_of = [&](std::size_t i, int local) {
    return cluster.nodes[hosts[i]].hardware.gpus.empty() ? -1 : local;
  };
  if (order == NaiveOrder::kMapBySlot) {
    for (std::size_t i = 0; i < used; ++i)
      for (int local = 0; local < slots[i]; ++local) nodes[i].gpus.push_back(gpu_of(i, local));
    Placement placement = detail::assemble(fabric, nodes, request);
    return placement;
  }
  // Round-robin: rank r goes to the next node that still has a free slot; each node's
  // local ranks are numbered in arrival order. assemble() numbers ranks node by node, so
  // build the node lists, then renumber ranks in round-robin order.
  std::vector<std::vector<int>> ranks_of(used);
  std::vector<int> filled(used, 0);
  long rank = 0;
  while (rank < world) {
    for (std::size_t i = 0; i < used && rank < world; ++i) {
      if (filled[i] >= slots[i]) continue;
      ranks_of[i].push_back(static_cast<int>(rank++));
      nodes[i].gpus.push_back(gpu_of(i, filled[i]++));
    }
  }
  Placement blocked = detail::assemble(fabric, nodes,
                                       {request.gpus, request.nodes, request.gpus_per_node,
                                        std::nullopt, request.allow_cross_domain_tp});
  Placement placement;
  placement.cluster = blocked.cluster;
  placement.layout = request.layout;
  placement.ranks.resize(world);
  std::size_t k = 0;
  for (std::size_t i = 0; i < used; ++i) {
    for (int r : ranks_of[i]) {
      RankPlacement entry = std::move(blocked.ranks[k++]);
      entry.rank = r;
      placement.ranks[r] = std::move(entry);
    }
  }
  if (request.layout) detail::set_layout_coordinates(placement, *request.layout);
  return placement;
}

}  // namespace haein::launcher
