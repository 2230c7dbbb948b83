#include "haein/topology/cost_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

namespace haein::topology {

namespace {

constexpr double kUs = 1e-6;
constexpr double kGB = 1e9;
/// Inter-node bandwidth assumed for nodes whose NICs the cluster file does not describe
/// (100 Gb/s Ethernet).
constexpr double kUnknownNicGbps = 100;

bool supports_nvls(const NodeHardware& hardware) {
  return hardware.nvlink != NvlinkScope::kNone && hardware.compute_capability >= 90;
}

Prediction not_applicable(Collective collective, Algorithm algorithm, double bytes,
                          std::string why) {
  Prediction p;
  p.collective = collective;
  p.algorithm = algorithm;
  p.bytes = bytes;
  p.why_not = std::move(why);
  return p;
}

Prediction finish(Collective collective, Algorithm algorithm, double bytes, double seconds,
                  int ranks) {
  Prediction p;
  p.collective = collective;
  p.algorithm = algorithm;
  p.applicable = true;
  p.bytes = bytes;
  p.seconds = seconds;
  p.algbw_gbs = seconds > 0 ? bytes / seconds / kGB : 0;
  p.busbw_gbs = p.algbw_gbs * bus_factor(collective, ranks);
  return p;
}

}  // namespace

std::string_view to_string(LinkClass link) {
  switch (link) {
    case LinkClass::kNvlink:
      return "nvlink";
    case LinkClass::kNvlinkRack:
      return "nvlink-rack";
    case LinkClass::kPcie:
      return "pcie";
    case LinkClass::kIbLeaf:
      return "ib-leaf";
    case LinkClass::kIbSpine:
      return "ib-spine";
  }
  return "nvlink";
}

std::string_view to_string(Collective collective) {
  switch (collective) {
    case Collective::kAllReduce:
      return "all_reduce";
    case Collective::kAllGather:
      return "all_gather";
    case Collective::kReduceScatter:
      return "reduce_scatter";
  }
  return "all_reduce";
}

std::string_view to_string(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kRing:
      return "ring";
    case Algorithm::kTree:
      return "tree";
    case Algorithm::kHierarchical:
      return "hierarchical";
    case Algorithm::kNvls:
      return "nvls";
  }
  return "ring";
}

double bus_factor(Collective collective, int ranks) {
  if (ranks < 2) return 0;
  const double n = ranks;
  return collective == Collective::kAllReduce ? 2 * (n - 1) / n : (n - 1) / n;
}

CostModel::CostModel(const Cluster& cluster, CostParameters parameters)
    : fabric_(cluster), parameters_(parameters) {}

CostModel::Link CostModel::nvlink(int node) const {
  const NodeHardware& hardware = fabric_.cluster().nodes[node].hardware;
  if (hardware.nvlink == NvlinkScope::kNone || hardware.nvlink_gbps <= 0) {
    return {parameters_.pcie_latency_us, parameters_.pcie_gbs};
  }
  return {parameters_.nvlink_latency_us, hardware.nvlink_gbps * parameters_.nvlink_efficiency};
}

double CostModel::nic_gbs(int node) const {
  const NodeHardware& hardware = fabric_.cluster().nodes[node].hardware;
  double slowest = 0;
  for (const Nic& nic : hardware.nics) {
    if (nic.rail < 0 || nic.speed_gbps <= 0) continue;
    slowest = slowest == 0 ? nic.speed_gbps : std::min(slowest, nic.speed_gbps);
  }
  if (slowest == 0) slowest = kUnknownNicGbps;
  return slowest / 8 * parameters_.ib_efficiency;
}

int CostModel::rails_of(int node) const {
  int rails = 0;
  for (const Nic& nic : fabric_.cluster().nodes[node].hardware.nics) rails += nic.rail >= 0;
  return std::max(rails, 1);
}

LinkClass CostModel::link_class(const RankSite& from, const RankSite& to) const {
  if (from.node == to.node) {
    return fabric_.cluster().nodes[from.node].hardware.nvlink == NvlinkScope::kNone
               ? LinkClass::kPcie
               : LinkClass::kNvlink;
  }
  const int domain = fabric_.domain_of(from.node);
  if (domain >= 0 && domain == fabric_.domain_of(to.node)) return LinkClass::kNvlinkRack;
  const int leaf = fabric_.leaf_of(from.node);
  // Nodes on no leaf share one unnamed switch.
  if (leaf == fabric_.leaf_of(to.node) && from.rail == to.rail) return LinkClass::kIbLeaf;
  return LinkClass::kIbSpine;
}

RingAnalysis CostModel::analyze_ring(std::span<const RankSite> ranks) const {
  RingAnalysis ring;
  const int n = static_cast<int>(ranks.size());
  if (n < 2) return ring;
  ring.edges = n;
  // NCCL splits a ring's data over channels, one per rail, and with PXN each channel
  // leaves a node on its own rail's NIC; so an edge between nodes uses all of the node's
  // rails, and the edges leaving one node share them.
  std::unordered_map<int, int> egress;  // node -> network edges leaving it
  std::unordered_map<int, int> uplink;  // leaf -> edges leaving it
  for (int i = 0; i < n; ++i) {
    const RankSite& a = ranks[i];
    const RankSite& b = ranks[(i + 1) % n];
    if (a.node == b.node) continue;
    ++ring.node_crossings;
    const int domain = fabric_.domain_of(a.node);
    if (domain < 0 || domain != fabric_.domain_of(b.node)) ++ring.domain_crossings;
    const int leaf_a = fabric_.leaf_of(a.node);
    const int leaf_b = fabric_.leaf_of(b.node);
    if (leaf_a != leaf_b) {
      ++ring.leaf_crossings;
      ++uplink[leaf_a];
      if (fabric_.spine_of_leaf(leaf_a) != fabric_.spine_of_leaf(leaf_b)) ++ring.spine_crossings;
    }
    if (domain < 0 || domain != fabric_.domain_of(b.node)) ++egress[a.node];
  }
  for (const auto& [node, count] : egress)
    ring.max_node_egress = std::max(ring.max_node_egress, count);
  for (const auto& [leaf, count] : uplink) {
    ring.max_uplink_congestion = std::max(ring.max_uplink_congestion, count);
  }

  ring.bottleneck_gbs = std::numeric_limits<double>::infinity();
  const double oversubscription = std::max(parameters_.spine_oversubscription, 1.0);
  for (int i = 0; i < n; ++i) {
    const RankSite& a = ranks[i];
    const RankSite& b = ranks[(i + 1) % n];
    LinkClass link;
    double gbs = 0;
    double latency_us = 0;
    if (a.node == b.node) {
      const Link intra = nvlink(a.node);
      link = fabric_.cluster().nodes[a.node].hardware.nvlink == NvlinkScope::kNone
                 ? LinkClass::kPcie
                 : LinkClass::kNvlink;
      gbs = intra.gbs;
      latency_us = intra.latency_us;
    } else if (fabric_.domain_of(a.node) >= 0 &&
               fabric_.domain_of(a.node) == fabric_.domain_of(b.node)) {
      link = LinkClass::kNvlinkRack;
      gbs = nvlink(a.node).gbs;
      latency_us = parameters_.nvlink_rack_latency_us;
    } else {
      const double rails = std::min(rails_of(a.node), rails_of(b.node));
      const double node_share = rails * std::min(nic_gbs(a.node), nic_gbs(b.node)) /
                                std::max(egress[a.node], egress[b.node]);
      const int leaf_a = fabric_.leaf_of(a.node);
      if (leaf_a == fabric_.leaf_of(b.node)) {
        link = LinkClass::kIbLeaf;
        gbs = node_share;
        latency_us = parameters_.ib_leaf_latency_us;
      } else {
        link = LinkClass::kIbSpine;
        // Under load the up-links give each node 1/oversubscription of its rate, and the
        // ring's edges leaving one leaf share that leaf's up-links.
        const double leaf_nodes =
            leaf_a < 0 ? 1.0 : static_cast<double>(fabric_.nodes_of_leaf(leaf_a).size());
        const double uplink_share =
            rails * nic_gbs(a.node) * leaf_nodes / oversubscription / uplink[leaf_a];
        gbs = std::min(node_share / oversubscription, uplink_share);
        latency_us = parameters_.ib_spine_latency_us;
      }
    }
    if (gbs < ring.bottleneck_gbs) {
      ring.bottleneck_gbs = gbs;
      ring.bottleneck = link;
    }
    ring.step_latency_us = std::max(ring.step_latency_us, latency_us);
  }
  return ring;
}

Prediction CostModel::ring(Collective collective, std::span<const RankSite> ranks,
                           double bytes) const {
  const int n = static_cast<int>(ranks.size());
  const RingAnalysis analysis = analyze_ring(ranks);
  const double steps = collective == Collective::kAllReduce ? 2.0 * (n - 1) : n - 1.0;
  const double seconds =
      steps * analysis.step_latency_us * kUs + steps / n * bytes / (analysis.bottleneck_gbs * kGB);
  return finish(collective, Algorithm::kRing, bytes, seconds, n);
}

Prediction CostModel::tree(std::span<const RankSite> ranks, double bytes) const {
  // NCCL's tree: a chain inside each node, a double binary tree between nodes; every node
  // sends and receives about 2x the buffer over the network, pipelined with the chain.
  std::map<int, int> per_node;
  for (const RankSite& site : ranks) ++per_node[site.node];
  const int nodes = static_cast<int>(per_node.size());
  int per_node_max = 0;
  double intra_gbs = std::numeric_limits<double>::infinity();
  double intra_latency_us = 0;
  double inter_gbs = std::numeric_limits<double>::infinity();
  std::map<int, int> leaves;
  bool one_domain = true;
  const int first_domain = fabric_.domain_of(ranks.front().node);
  for (const auto& [node, count] : per_node) {
    per_node_max = std::max(per_node_max, count);
    const Link intra = nvlink(node);
    intra_gbs = std::min(intra_gbs, intra.gbs);
    intra_latency_us = std::max(intra_latency_us, intra.latency_us);
    inter_gbs = std::min(inter_gbs, rails_of(node) * nic_gbs(node));
    ++leaves[fabric_.leaf_of(node)];
    one_domain = one_domain && first_domain >= 0 && fabric_.domain_of(node) == first_domain;
  }
  double seconds = 2.0 * (per_node_max - 1) * intra_latency_us * kUs;
  double bandwidth_time = per_node_max > 1 ? bytes / (intra_gbs * kGB) : 0;
  if (nodes > 1 && one_domain) {
    // Trays of one NVLink rack: the chain and the tree run over NVLink only, carrying the
    // buffer up and back down over the same links, as inside one node.
    seconds += 2.0 * std::ceil(std::log2(nodes)) * parameters_.nvlink_rack_latency_us * kUs;
    bandwidth_time = 2 * bytes / (intra_gbs * kGB);
  } else if (nodes > 1) {
    double inter_latency_us = parameters_.ib_leaf_latency_us;
    if (leaves.size() > 1) {
      inter_latency_us = parameters_.ib_spine_latency_us;
      inter_gbs /= std::max(parameters_.spine_oversubscription, 1.0);
    }
    seconds += 2.0 * std::ceil(std::log2(nodes)) * inter_latency_us * kUs;
    bandwidth_time = std::max(bandwidth_time, 2 * bytes / (inter_gbs * kGB));
  } else {
    // One node: the chain carries the buffer up and back down over the same links.
    bandwidth_time = 2 * bytes / (intra_gbs * kGB);
  }
  return finish(Collective::kAllReduce, Algorithm::kTree, bytes, seconds + bandwidth_time,
                static_cast<int>(ranks.size()));
}

Prediction CostModel::hierarchical(std::span<const RankSite> ranks, double bytes, bool nvls) const {
  const Algorithm algorithm = nvls ? Algorithm::kNvls : Algorithm::kHierarchical;
  // Group ranks by NVLink domain (a node without NVLink is its own group), keeping order.
  std::map<int, std::vector<int>> groups;  // key: domain, or -1 - node
  std::vector<int> group_order;
  for (int i = 0; i < static_cast<int>(ranks.size()); ++i) {
    const int domain = fabric_.domain_of(ranks[i].node);
    const int key = domain >= 0 ? domain : -1 - ranks[i].node;
    auto [it, added] = groups.try_emplace(key);
    if (added) group_order.push_back(key);
    it->second.push_back(i);
  }
  const int domains = static_cast<int>(groups.size());
  if (domains < 2) {
    return not_applicable(Collective::kAllReduce, algorithm, bytes,
                          "one NVLink domain: nothing between domains");
  }
  const int per_domain = static_cast<int>(groups.begin()->second.size());
  for (const auto& [key, members] : groups) {
    if (static_cast<int>(members.size()) != per_domain) {
      return not_applicable(Collective::kAllReduce, algorithm, bytes,
                            "NVLink domains hold different numbers of ranks");
    }
    if (nvls) {
      for (int member : members) {
        if (!supports_nvls(fabric_.cluster().nodes[ranks[member].node].hardware)) {
          return not_applicable(Collective::kAllReduce, algorithm, bytes,
                                "a GPU without NVLink SHARP (NVLS needs Hopper or later on "
                                "NVSwitch)");
        }
      }
    }
  }

  // Phases 1 and 3: reduce-scatter and all-gather inside each domain.
  double intra_seconds = 0;
  if (per_domain > 1) {
    for (const auto& [key, members] : groups) {
      const int node = ranks[members.front()].node;
      const Link link = nvlink(node);
      const NodeHardware& hardware = fabric_.cluster().nodes[node].hardware;
      double seconds = 0;
      if (nvls) {
        seconds = parameters_.nvls_latency_us * kUs +
                  bytes / (hardware.nvlink_gbps * parameters_.nvls_efficiency * kGB);
      } else {
        const double latency_us = key >= 0 && hardware.nvlink == NvlinkScope::kRack
                                      ? parameters_.nvlink_rack_latency_us
                                      : link.latency_us;
        const double g = per_domain;
        seconds = 2 * ((g - 1) * latency_us * kUs + (g - 1) / g * bytes / (link.gbs * kGB));
      }
      intra_seconds = std::max(intra_seconds, seconds);
    }
  }

  // Phase 2: for each local index, a ring across domains over that GPU's rail.
  const double oversubscription = std::max(parameters_.spine_oversubscription, 1.0);
  std::map<std::pair<int, int>, int> nic_users;  // (node, rail) -> local indices using it
  for (const auto& [key, members] : groups) {
    for (int member : members) ++nic_users[{ranks[member].node, ranks[member].rail}];
  }
  double inter_seconds = 0;
  const double shard = bytes / per_domain;
  for (int local = 0; local < per_domain; ++local) {
    std::map<std::pair<int, int>, int> uplink;  // (leaf, rail) -> edges leaving it
    std::vector<const RankSite*> ring;
    ring.reserve(domains);
    for (int key : group_order) ring.push_back(&ranks[groups[key][local]]);
    for (int d = 0; d < domains; ++d) {
      const RankSite& a = *ring[d];
      const RankSite& b = *ring[(d + 1) % domains];
      if (link_class(a, b) == LinkClass::kIbSpine) ++uplink[{fabric_.leaf_of(a.node), a.rail}];
    }
    double gbs = std::numeric_limits<double>::infinity();
    double latency_us = 0;
    for (int d = 0; d < domains; ++d) {
      const RankSite& a = *ring[d];
      const RankSite& b = *ring[(d + 1) % domains];
      const double nic = std::min(nic_gbs(a.node), nic_gbs(b.node)) /
                         std::max(nic_users[{a.node, a.rail}], nic_users[{b.node, b.rail}]);
      if (link_class(a, b) == LinkClass::kIbLeaf) {
        gbs = std::min(gbs, nic);
        latency_us = std::max(latency_us, parameters_.ib_leaf_latency_us);
      } else {
        const int leaf = fabric_.leaf_of(a.node);
        const double leaf_nodes =
            leaf < 0 ? 1.0 : static_cast<double>(fabric_.nodes_of_leaf(leaf).size());
        const double uplink_share =
            nic_gbs(a.node) * leaf_nodes / oversubscription / uplink[{leaf, a.rail}];
        gbs = std::min({gbs, nic / oversubscription, uplink_share});
        latency_us = std::max(latency_us, parameters_.ib_spine_latency_us);
      }
    }
    const double d = domains;
    const double seconds = 2 * (d - 1) * latency_us * kUs + 2 * (d - 1) / d * shard / (gbs * kGB);
    inter_seconds = std::max(inter_seconds, seconds);
  }
  return finish(Collective::kAllReduce, algorithm, bytes, intra_seconds + inter_seconds,
                static_cast<int>(ranks.size()));
}

Prediction CostModel::single_domain_nvls(Collective collective, std::span<const RankSite> ranks,
                                         double bytes) const {
  const int domain = fabric_.domain_of(ranks.front().node);
  double nvlink_gbs = std::numeric_limits<double>::infinity();
  std::map<std::pair<int, int>, int> gpus;
  for (const RankSite& site : ranks) {
    const NodeHardware& hardware = fabric_.cluster().nodes[site.node].hardware;
    if (domain < 0 || fabric_.domain_of(site.node) != domain || !supports_nvls(hardware)) {
      return not_applicable(collective, Algorithm::kNvls, bytes,
                            "needs NVSwitch with NVLink SHARP (Hopper or later)");
    }
    if (++gpus[{site.node, site.gpu}] > 1) {
      return not_applicable(collective, Algorithm::kNvls, bytes, "two ranks share a GPU");
    }
    nvlink_gbs = std::min(nvlink_gbs, hardware.nvlink_gbps * parameters_.nvls_efficiency);
  }
  const int n = static_cast<int>(ranks.size());
  // All-reduce: each GPU pushes its buffer into the switch once and reads the reduced
  // result once. All-gather and reduce-scatter move (n-1)/n of it.
  const double moved = collective == Collective::kAllReduce ? bytes : bytes * (n - 1) / n;
  const double seconds = parameters_.nvls_latency_us * kUs + moved / (nvlink_gbs * kGB);
  return finish(collective, Algorithm::kNvls, bytes, seconds, n);
}

Prediction CostModel::predict(Collective collective, Algorithm algorithm,
                              std::span<const RankSite> ranks, double bytes) const {
  if (ranks.size() < 2) {
    return not_applicable(collective, algorithm, bytes, "one rank: nothing to exchange");
  }
  switch (algorithm) {
    case Algorithm::kRing:
      return ring(collective, ranks, bytes);
    case Algorithm::kTree:
      if (collective != Collective::kAllReduce) {
        return not_applicable(collective, algorithm, bytes, "tree is all-reduce only");
      }
      return tree(ranks, bytes);
    case Algorithm::kHierarchical:
      if (collective != Collective::kAllReduce) {
        return not_applicable(collective, algorithm, bytes, "hierarchical is all-reduce only");
      }
      return hierarchical(ranks, bytes, false);
    case Algorithm::kNvls: {
      const int domain = fabric_.domain_of(ranks.front().node);
      const bool one_domain =
          domain >= 0 && std::all_of(ranks.begin(), ranks.end(), [&](const RankSite& site) {
            return fabric_.domain_of(site.node) == domain;
          });
      if (one_domain) return single_domain_nvls(collective, ranks, bytes);
      if (collective != Collective::kAllReduce) {
        return not_applicable(collective, algorithm, bytes,
                              "NVLS across domains is modelled for all-reduce only");
      }
      return hierarchical(ranks, bytes, true);
    }
  }
  return not_applicable(collective, algorithm, bytes, "unknown algorithm");
}

std::vector<Prediction> CostModel::all(Collective collective, std::span<const RankSite> ranks,
                                       double bytes) const {
  std::vector<Prediction> predictions;
  for (Algorithm algorithm :
       {Algorithm::kRing, Algorithm::kTree, Algorithm::kHierarchical, Algorithm::kNvls}) {
    predictions.push_back(predict(collective, algorithm, ranks, bytes));
  }
  return predictions;
}

Prediction CostModel::best(Collective collective, std::span<const RankSite> ranks,
                           double bytes) const {
  Prediction best = not_applicable(collective, Algorithm::kRing, bytes, "no algorithm applies");
  for (const Prediction& p : all(collective, ranks, bytes)) {
    if (p.applicable && (!best.applicable || p.seconds < best.seconds)) best = p;
  }
  if (!best.applicable && ranks.size() < 2) best.why_not = "one rank: nothing to exchange";
  return best;
}

}  // namespace haein::topology
