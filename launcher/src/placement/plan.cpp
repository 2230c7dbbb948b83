// haein's placement: node selection by best fit over the switch tree, ranks in tree
// order, parallel groups kept inside NVLink domains.
#include <algorithm>
#include <map>
#include <numeric>
#include <sstream>

#include "haein/common/error.hpp"
#include "placement_internal.hpp"

namespace haein::launcher {

using topology::FabricIndex;
using topology::Node;

namespace {

struct Bin {
  int id = 0;
  long capacity = 0;
};

struct Take {
  int id = 0;
  long amount = 0;
};

// Chooses bins whose capacities cover `need`: the fewest bins, and among those the set
// with the least capacity left over (best fit, as Slurm's tree plugin does). All bins but
// one are taken whole; the smallest chosen one takes the remainder.
std::vector<Take> best_fit(std::vector<Bin> bins, long need) {
  std::erase_if(bins, [](const Bin& b) { return b.capacity <= 0; });
  std::stable_sort(bins.begin(), bins.end(), [](const Bin& a, const Bin& b) {
    return a.capacity != b.capacity ? a.capacity > b.capacity : a.id < b.id;
  });
  // One bin suffices: the smallest that fits.
  for (auto it = bins.rbegin(); it != bins.rend(); ++it) {
    if (it->capacity >= need) {
      // rbegin walks from the smallest; among equal capacities prefer the lowest id.
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
  // The last one: the smallest bin that covers what is left.
  const long left = need - (sum - bins[k - 1].capacity);
  std::size_t last = k - 1;
  for (std::size_t i = k - 1; i < bins.size(); ++i) {
    if (bins[i].capacity >= left) last = i;  // sorted descending: keeps the smallest
  }
  // Among equal capacities take the lowest id (the first in sorted order).
  while (last > k - 1 && bins[last - 1].capacity == bins[last].capacity) --last;
  chosen[last] = true;
  sum = sum - bins[k - 1].capacity + bins[last].capacity;
  // Swap a chosen bin for a smaller unchosen one while the need stays covered.
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
  std::vector<Take> takes;
  for (std::size_t i = 0; i < bins.size(); ++i) {
    if (chosen[i]) takes.push_back({bins[i].id, bins[i].capacity});
  }
  // The smallest chosen bin (the last in descending order) gives back the surplus.
  takes.back().amount -= sum - need;
  return takes;
}

// What one unit of the request is: a GPU (with --gpus) or a node (with --nodes).
struct Units {
  bool nodes_mode = false;
  long need = 0;
  int tp = 1;            ///< tensor-parallel size that must stay in a domain (1: none)
  bool rack_tp = false;  ///< TP groups span trays of a multi-node NVLink domain
};

// A domain bin: a multi-node NVLink domain within a leaf, or a single node.
struct DomainBin {
  int leaf = 0;  ///< leaf index, or leaf_count for nodes on no leaf
  std::vector<int> nodes;
  std::vector<long> node_capacity;
  long capacity = 0;
};

long node_units(const Node& node, const PlacementRequest& request, const Units& units) {
  const int gpus = detail::usable_gpus(node, request);
  if (gpus <= 0) return 0;
  if (units.nodes_mode) return 1;
  if (units.tp > 1 && !units.rack_tp) return gpus / units.tp * units.tp;
  return gpus;
}

std::string describe_free(const FabricIndex& fabric, const std::vector<DomainBin>& bins,
                          const Units& units) {
  std::map<int, std::pair<long, int>> per_leaf;  // leaf -> (units, nodes)
  for (const DomainBin& bin : bins) {
    auto& [count, nodes] = per_leaf[bin.leaf];
    count += bin.capacity;
    for (long c : bin.node_capacity) nodes += c > 0;
  }
  std::ostringstream text;
  long total = 0;
  for (const auto& [leaf, entry] : per_leaf) total += entry.first;
  text << total << (units.nodes_mode ? " qualifying nodes" : " usable GPUs") << " are free";
  if (!per_leaf.empty()) text << " (";
  bool first = true;
  for (const auto& [leaf, entry] : per_leaf) {
    if (entry.first == 0) continue;
    text << (first ? "" : ", ")
         << (leaf < fabric.leaf_count() ? fabric.leaf_name(leaf) : std::string("no leaf")) << ": "
         << entry.first << " on " << entry.second << " nodes";
    first = false;
  }
  if (!per_leaf.empty()) text << ")";
  return text.str();
}

void check_layout(const FabricIndex& fabric, const PlacementRequest& request, long world,
                  Units& units, std::vector<std::string>& warnings) {
  if (!request.layout) return;
  const Layout& layout = *request.layout;
  if (layout.size() != world) {
    throw InvalidArgument(
        "layout tp=" + std::to_string(layout.tp) + " x pp=" + std::to_string(layout.pp) +
        " x dp=" + std::to_string(layout.dp) + " = " + std::to_string(layout.size()) +
        " ranks, but the request is " + std::to_string(world) + " ranks");
  }
  if (layout.tp <= 1) return;
  // The largest NVLink domain any node of the cluster belongs to.
  std::map<int, long> domain_gpus;
  int largest_node = 0;
  for (int n = 0; n < fabric.node_count(); ++n) {
    const Node& node = fabric.cluster().nodes[n];
    const int gpus = detail::usable_gpus(node, request);
    largest_node = std::max(largest_node, fabric.domain_of(n) >= 0 ? gpus : 1);
    if (fabric.domain_of(n) >= 0) domain_gpus[fabric.domain_of(n)] += gpus;
  }
  long largest_domain = largest_node;
  for (const auto& [domain, gpus] : domain_gpus) largest_domain = std::max(largest_domain, gpus);
  if (layout.tp > largest_domain) {
    const std::string what = "tensor-parallel size " + std::to_string(layout.tp) +
                             " is larger than the largest NVLink domain of cluster '" +
                             fabric.cluster().name + "' (" + std::to_string(largest_domain) +
                             " GPUs)";
    if (!request.allow_cross_domain_tp) {
      throw InvalidArgument(what +
                            "; its groups would talk over the network. Use a smaller tp "
                            "or --allow-cross-domain-tp");
    }
    warnings.push_back(what + ": TP groups cross the network (--allow-cross-domain-tp)");
    return;
  }
  if (units.nodes_mode) return;
  units.tp = layout.tp;
  units.rack_tp = layout.tp > largest_node;
}

}  // namespace

int requested_world(const PlacementRequest& request) {
  const long long world =
      request.nodes > 0 ? static_cast<long long>(request.nodes) * std::max(request.gpus_per_node, 0)
                        : request.gpus;
  if (world > kMaxRanks)
    throw InvalidArgument((request.nodes > 0
                               ? std::to_string(request.nodes) + " nodes x " +
                                     std::to_string(request.gpus_per_node) + " per node"
                               : std::to_string(request.gpus)) +
                          " is more than " + std::to_string(kMaxRanks) + " ranks");
  return static_cast<int>(std::max(world, 0LL));
}

Placement plan_placement(const FabricIndex& fabric, const BusySet& busy,
                         const PlacementRequest& request) {
  const topology::Cluster& cluster = fabric.cluster();
  if (busy.size() != cluster.nodes.size()) {
    throw InvalidArgument("busy set has " + std::to_string(busy.size()) + " entries for " +
                          std::to_string(cluster.nodes.size()) + " nodes");
  }
  Units units;
  units.nodes_mode = request.nodes > 0;
  if (units.nodes_mode && request.gpus > 0) {
    throw InvalidArgument("give either --gpus N or --nodes N (with --gpus-per-node K), not both");
  }
  if (!units.nodes_mode && request.gpus <= 0) {
    throw InvalidArgument("request at least one GPU (--gpus N) or node (--nodes N)");
  }
  units.need = units.nodes_mode ? request.nodes : request.gpus;
  std::vector<std::string> warnings;
  // With --nodes the world size is known only for uniform nodes; checked after choosing.
  if (!units.nodes_mode) check_layout(fabric, request, request.gpus, units, warnings);

  // Domain bins per leaf, in tree order.
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
    int index;
    if (domain >= 0) {
      auto [it, added] = bin_of.try_emplace({leaf, domain}, static_cast<int>(bins.size()));
      if (added) bins.push_back({leaf, {}, {}, 0});
      index = it->second;
    } else {
      index = static_cast<int>(bins.size());
      bins.push_back({leaf, {}, {}, 0});
    }
    bins[index].nodes.push_back(n);
    bins[index].node_capacity.push_back(capacity);
    bins[index].capacity += capacity;
  }
  if (units.rack_tp) {
    // TP groups span trays: a domain holds whole groups only.
    for (DomainBin& bin : bins) bin.capacity = bin.capacity / units.tp * units.tp;
  }

  // Leaf capacities, grouped by spine (a leaf without a spine is its own group).
  std::vector<long> leaf_capacity(fabric.leaf_count() + 1, 0);
  for (const DomainBin& bin : bins) leaf_capacity[bin.leaf] += bin.capacity;
  const long total = std::accumulate(leaf_capacity.begin(), leaf_capacity.end(), 0L);
  if (total < units.need) {
    throw InvalidArgument(
        "cannot place " + std::to_string(units.need) + (units.nodes_mode ? " nodes" : " GPUs") +
        (units.tp > 1 ? " in whole TP groups of " + std::to_string(units.tp) : std::string()) +
        ": only " + describe_free(fabric, bins, units));
  }
  auto spine_group = [&](int leaf) {
    if (leaf == no_leaf) return fabric.spine_count() + fabric.leaf_count();
    const int spine = fabric.spine_of_leaf(leaf);
    return spine >= 0 ? spine : fabric.spine_count() + leaf;
  };
  std::vector<Bin> leaf_bins;
  for (int leaf = 0; leaf <= no_leaf; ++leaf) {
    if (leaf_capacity[leaf] > 0) leaf_bins.push_back({leaf, leaf_capacity[leaf]});
  }
  std::vector<long> sorted_caps;
  for (const Bin& b : leaf_bins) sorted_caps.push_back(b.capacity);
  std::sort(sorted_caps.rbegin(), sorted_caps.rend());
  std::size_t fewest_leaves = 0;
  for (long sum = 0; sum < units.need;) sum += sorted_caps[fewest_leaves++];

  // Fewest spines that hold `fewest_leaves` leaves covering the need: spines by what
  // their best leaves hold, largest first; a single spine by best fit.
  std::map<int, std::vector<long>> spine_leaves;
  for (const Bin& b : leaf_bins) spine_leaves[spine_group(b.id)].push_back(b.capacity);
  auto top_sum = [&](std::vector<long> caps) {
    std::sort(caps.rbegin(), caps.rend());
    long sum = 0;
    for (std::size_t i = 0; i < caps.size() && i < fewest_leaves; ++i) sum += caps[i];
    return sum;
  };
  std::vector<int> spines;
  {
    int single = -1;
    long single_total = 0;
    for (const auto& [spine, caps] : spine_leaves) {
      if (top_sum(caps) < units.need) continue;
      const long spine_total = std::accumulate(caps.begin(), caps.end(), 0L);
      if (single < 0 || spine_total < single_total) {
        single = spine;
        single_total = spine_total;
      }
    }
    if (single >= 0) {
      spines.push_back(single);
    } else {
      std::vector<std::pair<long, int>> ranked;
      for (const auto& [spine, caps] : spine_leaves) ranked.push_back({-top_sum(caps), spine});
      std::sort(ranked.begin(), ranked.end());
      std::vector<long> pooled;
      for (const auto& [negative, spine] : ranked) {
        spines.push_back(spine);
        pooled.insert(pooled.end(), spine_leaves[spine].begin(), spine_leaves[spine].end());
        if (top_sum(pooled) >= units.need) break;
      }
    }
  }
  std::vector<Bin> candidates;
  for (const Bin& b : leaf_bins) {
    if (std::find(spines.begin(), spines.end(), spine_group(b.id)) != spines.end()) {
      candidates.push_back(b);
    }
  }
  const std::vector<Take> leaf_takes = best_fit(candidates, units.need);

  // Within each chosen leaf, domains by best fit; within a domain, nodes in order.
  struct Chosen {
    int node;
    long units;
  };
  std::vector<Chosen> chosen;
  for (const Take& leaf_take : leaf_takes) {
    std::vector<Bin> domain_bins;
    for (std::size_t i = 0; i < bins.size(); ++i) {
      if (bins[i].leaf == leaf_take.id)
        domain_bins.push_back({static_cast<int>(i), bins[i].capacity});
    }
    for (const Take& domain_take : best_fit(domain_bins, leaf_take.amount)) {
      const DomainBin& bin = bins[domain_take.id];
      long left = domain_take.amount;
      for (std::size_t i = 0; i < bin.nodes.size() && left > 0; ++i) {
        const long amount = std::min(left, bin.node_capacity[i]);
        chosen.push_back({bin.nodes[i], amount});
        left -= amount;
      }
    }
  }
  std::sort(chosen.begin(), chosen.end(), [&](const Chosen& a, const Chosen& b) {
    return fabric.tree_key(a.node) < fabric.tree_key(b.node);
  });

  // GPUs of each node in rail order, so that local rank i sits on rail i everywhere and
  // data-parallel peers of the same local index meet on one rail switch.
  std::vector<detail::NodeRanks> nodes;
  long world = 0;
  for (const Chosen& c : chosen) {
    const Node& node = cluster.nodes[c.node];
    const int count =
        units.nodes_mode ? detail::usable_gpus(node, request) : static_cast<int>(c.units);
    detail::NodeRanks entry{c.node, {}};
    if (node.hardware.gpus.empty()) {
      entry.gpus.assign(count, -1);
    } else {
      const std::vector<int> nics = detail::closest_nics(node.hardware);
      std::vector<int> positions(node.hardware.gpus.size());
      std::iota(positions.begin(), positions.end(), 0);
      auto rail_of = [&](int p) {
        return nics[p] >= 0 && node.hardware.nics[nics[p]].rail >= 0
                   ? node.hardware.nics[nics[p]].rail
                   : 1 << 20;
      };
      std::stable_sort(positions.begin(), positions.end(), [&](int a, int b) {
        return std::pair(rail_of(a), node.hardware.gpus[a].index) <
               std::pair(rail_of(b), node.hardware.gpus[b].index);
      });
      entry.gpus.assign(positions.begin(), positions.begin() + count);
    }
    world += count;
    nodes.push_back(std::move(entry));
  }
  if (units.nodes_mode) check_layout(fabric, request, world, units, warnings);

  Placement placement = detail::assemble(fabric, nodes, request);
  placement.warnings = std::move(warnings);
  if (request.layout && request.layout->tp > 1) {
    const int tp = request.layout->tp;
    int crossing = 0;
    for (int start = 0; start < placement.world_size(); start += tp) {
      const auto& first = placement.ranks[start];
      for (int r = start + 1; r < std::min(start + tp, placement.world_size()); ++r) {
        if (placement.ranks[r].nvlink_domain.empty() ||
            placement.ranks[r].nvlink_domain != first.nvlink_domain) {
          ++crossing;
          break;
        }
      }
    }
    if (crossing > 0) {
      placement.warnings.push_back(std::to_string(crossing) +
                                   " tensor-parallel groups span more than one NVLink domain");
    }
  }
  return placement;
}

}  // namespace haein::launcher
