// The stages of haein's placement (declared in plan_stages.hpp): bins of free capacity, the
// spines, the leaves and nodes by best fit over the switch tree, GPUs in rail order, and
// the check of the tensor-parallel groups.
#include "plan_stages.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>

#include "haein/common/error.hpp"

namespace haein::launcher {

using topology::FabricIndex;
using topology::Node;

namespace detail {

namespace {

// Bins with capacity, largest first; equal capacities by id.
std::vector<Bin> sorted_descending(std::vector<Bin> bins) {
  std::erase_if(bins, [](const Bin& b) { return b.capacity <= 0; });
  std::stable_sort(bins.begin(), bins.end(), [](const Bin& a, const Bin& b) {
    return a.capacity != b.capacity ? a.capacity > b.capacity : a.id < b.id;
  });
  return bins;
}

// Swaps a chosen bin for a smaller unchosen one while the need stays covered; returns
// the capacity of the chosen bins.
long swap_for_smaller(const std::vector<Bin>& bins, std::vector<bool>& chosen, long sum,
                      long need) {
  for (bool improved = true; improved;) {
    improved = false;
    long best_gain = 0;
    std::size_t out = 0, in = 0;
    const long slack = sum - need;
    for (std::size_t c = 0; c < bins.size(); ++c) {
      if (!chosen[c]) continue;
      // Smallest unchosen bin with capacity in [cap(c) - slack, cap(c)).
      for (std::size_t u = bins.size(); u-- > 0;) {
        if (chosen[u] || bins[u].capacity >= bins[c].capacity) continue;
        if (bins[u].capacity < bins[c].capacity - slack) continue;
        const long gain = bins[c].capacity - bins[u].capacity;
        if (gain > best_gain) {
          best_gain = gain;
          out = c;
          in = u;
        }
        break;  // scanning from the smallest: the first fit is the best for this c
      }
    }
    if (best_gain > 0) {
      chosen[out] = false;
      chosen[in] = true;
      sum -= best_gain;
      improved = true;
    }
  }
  return sum;
}

}  // namespace

std::vector<Take> best_fit(std::vector<Bin> unsorted, long need) {
  const std::vector<Bin> bins = sorted_descending(std::move(unsorted));
  // One bin suffices: the smallest that fits, the lowest id among equals.
  for (auto it = bins.rbegin(); it != bins.rend(); ++it) {
    if (it->capacity >= need) {
      auto first_equal = std::find_if(bins.begin(), bins.end(),
                                      [&](const Bin& b) { return b.capacity == it->capacity; });
      return {{first_equal->id, need}};
    }
  }
  // The k largest are the fewest bins that can cover the need.
  std::size_t k = 0;
  long sum = 0;
  while (k < bins.size() && sum < need) sum += bins[k++].capacity;
  if (sum < need) return {};
  std::vector<bool> chosen(bins.size(), false);
  for (std::size_t i = 0; i + 1 < k; ++i) chosen[i] = true;
  // The last one: the smallest bin that covers what is left (lowest id among equals).
  const long left = need - (sum - bins[k - 1].capacity);
  std::size_t last = k - 1;
  for (std::size_t i = k - 1; i < bins.size(); ++i) {
    if (bins[i].capacity >= left) last = i;  // sorted descending: keeps the smallest
  }
  while (last > k - 1 && bins[last - 1].capacity == bins[last].capacity) --last;
  chosen[last] = true;
  sum = swap_for_smaller(bins, chosen, sum - bins[k - 1].capacity + bins[last].capacity, need);
  std::vector<Take> takes;
  for (std::size_t i = 0; i < bins.size(); ++i) {
    if (chosen[i]) takes.push_back({bins[i].id, bins[i].capacity});
  }
  // The smallest chosen bin (the last in descending order) gives back the surplus.
  takes.back().amount -= sum - need;
  return takes;
}

namespace {

// What a domain bin offers under a TP constraint: whole TP groups only. Its ranks are
// taken from the front of its nodes, in order, so a multiple of tp GPUs (--gpus), or of
// the q = tp / gcd(G, tp) nodes of G GPUs that hold whole groups (--nodes), stays inside.
long whole_groups(const DomainBin& bin, const FabricIndex& fabric, const PlacementRequest& request,
                  const Units& units) {
  const long free = std::accumulate(bin.node_capacity.begin(), bin.node_capacity.end(), 0L);
  if (units.tp <= 1) return free;
  if (bin.domain < 0) return 0;  // its GPUs reach no other GPU over NVLink
  if (!units.nodes_mode) return free / units.tp * units.tp;
  const Node& first = fabric.cluster().nodes[bin.nodes.front()];
  const int gpus = usable_gpus(first, request);
  const bool uniform = std::all_of(bin.nodes.begin(), bin.nodes.end(), [&](int n) {
    return usable_gpus(fabric.cluster().nodes[n], request) == gpus;
  });
  // Mixed trays in one domain: no granule; crossing_tp_groups checks the result.
  if (!uniform) return free;
  const long nodes_per_step = units.tp / std::gcd(gpus, units.tp);
  return free / nodes_per_step * nodes_per_step;
}

long node_units(const Node& node, const PlacementRequest& request, const Units& units) {
  const int gpus = usable_gpus(node, request);
  if (gpus <= 0) return 0;
  return units.nodes_mode ? 1 : gpus;
}

}  // namespace

std::vector<DomainBin> collect_bins(const FabricIndex& fabric, const BusySet& busy,
                                    const PlacementRequest& request, const Units& units) {
  const topology::Cluster& cluster = fabric.cluster();
  const int no_leaf = fabric.leaf_count();
  std::vector<DomainBin> bins;
  std::map<std::pair<int, int>, int> bin_of;  // (leaf, domain) -> bin
  std::vector<int> order(cluster.nodes.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return fabric.tree_key(a) < fabric.tree_key(b); });
  for (int n : order) {
    if (busy[n]) continue;
    const long capacity = node_units(cluster.nodes[n], request, units);
    if (capacity <= 0) continue;
    const int leaf = fabric.leaf_of(n) < 0 ? no_leaf : fabric.leaf_of(n);
    const int domain = fabric.domain_of(n);
    int index = static_cast<int>(bins.size());
    if (domain >= 0) index = bin_of.try_emplace({leaf, domain}, index).first->second;
    if (index == static_cast<int>(bins.size())) bins.push_back({leaf, domain, {}, {}, 0});
    bins[index].nodes.push_back(n);
    bins[index].node_capacity.push_back(capacity);
  }
  for (DomainBin& bin : bins) bin.capacity = whole_groups(bin, fabric, request, units);
  return bins;
}

std::vector<Bin> leaf_bins(const FabricIndex& fabric, const std::vector<DomainBin>& bins) {
  std::vector<long> capacity(fabric.leaf_count() + 1, 0);
  for (const DomainBin& bin : bins) capacity[bin.leaf] += bin.capacity;
  std::vector<Bin> leaves;
  for (int leaf = 0; leaf <= fabric.leaf_count(); ++leaf) {
    if (capacity[leaf] > 0) leaves.push_back({leaf, capacity[leaf]});
  }
  return leaves;
}

std::string_view to_string(SpineRule rule) {
  return rule == SpineRule::kSpineFirst ? "spine-first" : "leaf-first";
}

namespace {

// The k largest of `caps`, summed.
long top_sum(std::vector<long> caps, std::size_t k) {
  std::sort(caps.rbegin(), caps.rend());
  long sum = 0;
  for (std::size_t i = 0; i < caps.size() && i < k; ++i) sum += caps[i];
  return sum;
}

// The one spine that holds the job in `k` of its leaves, by `rule`; -1 when none does.
int single_spine(const std::map<int, std::vector<Bin>>& spines, std::size_t k, long need,
                 SpineRule rule) {
  int best = -1;
  std::pair<long, long> best_key;  // (capacity of the leaves taken, of the spine)
  for (const auto& [spine, leaves] : spines) {
    std::vector<long> caps;
    for (const Bin& leaf : leaves) caps.push_back(leaf.capacity);
    if (top_sum(caps, k) < need) continue;
    const long total = std::accumulate(caps.begin(), caps.end(), 0L);
    long taken = 0;
    if (rule == SpineRule::kLeafFirst) {
      for (const Take& take : best_fit(leaves, need)) {
        taken += std::find_if(leaves.begin(), leaves.end(), [&](const Bin& b) {
                   return b.id == take.id;
                 })->capacity;
      }
    }
    const std::pair<long, long> key{taken, total};
    if (best < 0 || key < best_key) {
      best = spine;
      best_key = key;
    }
  }
  return best;
}

}  // namespace

std::vector<Bin> choose_spines(const FabricIndex& fabric, const std::vector<Bin>& leaves, long need,
                               SpineRule rule) {
  const int no_leaf = fabric.leaf_count();
  auto spine_group = [&](int leaf) {
    if (leaf == no_leaf) return fabric.spine_count() + fabric.leaf_count();
    const int spine = fabric.spine_of_leaf(leaf);
    return spine >= 0 ? spine : fabric.spine_count() + leaf;
  };
  std::vector<long> caps;
  for (const Bin& b : leaves) caps.push_back(b.capacity);
  std::sort(caps.rbegin(), caps.rend());
  std::size_t fewest_leaves = 0;
  for (long sum = 0; sum < need && fewest_leaves < caps.size();) sum += caps[fewest_leaves++];

  std::map<int, std::vector<Bin>> by_spine;
  for (const Bin& b : leaves) by_spine[spine_group(b.id)].push_back(b);
  std::vector<int> spines;
  if (const int one = single_spine(by_spine, fewest_leaves, need, rule); one >= 0) {
    spines.push_back(one);
  } else {
    // Spines by what their best leaves hold, largest first, until they hold the job.
    std::vector<std::pair<long, int>> ranked;
    for (const auto& [spine, bins] : by_spine) {
      std::vector<long> own;
      for (const Bin& b : bins) own.push_back(b.capacity);
      ranked.push_back({-top_sum(own, fewest_leaves), spine});
    }
    std::sort(ranked.begin(), ranked.end());
    std::vector<long> pooled;
    for (const auto& [negative, spine] : ranked) {
      spines.push_back(spine);
      for (const Bin& b : by_spine[spine]) pooled.push_back(b.capacity);
      if (top_sum(pooled, fewest_leaves) >= need) break;
    }
  }
  std::vector<Bin> candidates;
  for (const Bin& b : leaves) {
    if (std::find(spines.begin(), spines.end(), spine_group(b.id)) != spines.end()) {
      candidates.push_back(b);
    }
  }
  return candidates;
}

std::vector<ChosenNode> choose_nodes(const FabricIndex& fabric, const std::vector<DomainBin>& bins,
                                     const std::vector<Take>& leaf_takes) {
  std::vector<std::vector<Bin>> domains_of_leaf(fabric.leaf_count() + 1);
  for (std::size_t i = 0; i < bins.size(); ++i)
    domains_of_leaf[bins[i].leaf].push_back({static_cast<int>(i), bins[i].capacity});
  std::vector<ChosenNode> chosen;
  for (const Take& leaf_take : leaf_takes) {
    for (const Take& domain_take : best_fit(domains_of_leaf[leaf_take.id], leaf_take.amount)) {
      const DomainBin& bin = bins[domain_take.id];
      long left = domain_take.amount;
      for (std::size_t i = 0; i < bin.nodes.size() && left > 0; ++i) {
        const long amount = std::min(left, bin.node_capacity[i]);
        chosen.push_back({bin.nodes[i], amount});
        left -= amount;
      }
    }
  }
  std::sort(chosen.begin(), chosen.end(), [&](const ChosenNode& a, const ChosenNode& b) {
    return fabric.tree_key(a.node) < fabric.tree_key(b.node);
  });
  return chosen;
}

namespace {

// GPU positions of a node's hardware in rail order (GPUs whose NIC has no rail last).
std::vector<int> rail_order(const topology::NodeHardware& hardware) {
  const std::vector<int> nics = closest_nics(hardware);
  auto rail_of = [&](int p) {
    return nics[p] >= 0 && hardware.nics[nics[p]].rail >= 0 ? hardware.nics[nics[p]].rail : 1 << 20;
  };
  std::vector<int> positions(hardware.gpus.size());
  std::iota(positions.begin(), positions.end(), 0);
  std::stable_sort(positions.begin(), positions.end(), [&](int a, int b) {
    return std::pair(rail_of(a), hardware.gpus[a].index) <
           std::pair(rail_of(b), hardware.gpus[b].index);
  });
  return positions;
}

}  // namespace

std::vector<NodeRanks> order_gpus_by_rail(const topology::Cluster& cluster,
                                          const std::vector<ChosenNode>& chosen,
                                          const PlacementRequest& request, bool nodes_mode) {
  // Nodes of one type share hardware: their rail order is computed once.
  std::unordered_map<std::string, std::vector<int>> order_of_type;
  std::vector<NodeRanks> nodes;
  nodes.reserve(chosen.size());
  for (const ChosenNode& c : chosen) {
    const Node& node = cluster.nodes[c.node];
    const int count = nodes_mode ? usable_gpus(node, request) : static_cast<int>(c.units);
    NodeRanks entry{c.node, {}};
    if (node.hardware.gpus.empty()) {
      entry.gpus.assign(count, -1);
    } else if (node.type.empty()) {
      const std::vector<int> order = rail_order(node.hardware);
      entry.gpus.assign(order.begin(), order.begin() + count);
    } else {
      auto [it, added] = order_of_type.try_emplace(node.type);
      if (added) it->second = rail_order(node.hardware);
      entry.gpus.assign(it->second.begin(), it->second.begin() + count);
    }
    nodes.push_back(std::move(entry));
  }
  return nodes;
}

int crossing_tp_groups(const Placement& placement, int tp) {
  int crossing = 0;
  for (int start = 0; start < placement.world_size(); start += tp) {
    const std::string& domain = placement.ranks[start].nvlink_domain;
    const int end = std::min(start + tp, placement.world_size());
    for (int r = start + 1; r < end; ++r) {
      if (placement.ranks[r].nvlink_domain.empty() || placement.ranks[r].nvlink_domain != domain) {
        ++crossing;
        break;
      }
    }
  }
  return crossing;
}

}  // namespace detail
}  // namespace haein::launcher
