// What a placement crosses, as the cost model sees it: the rates of each node, the ranks
// grouped by NVLink domain, the ring's and NCCL's tree's edges over the fabric, and whether
// its switches reduce in the network.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "cost_model_internal.hpp"

namespace haein::topology {

using namespace cost_model_detail;

namespace {

/// Inter-node bandwidth assumed for nodes whose NICs the cluster file does not describe
/// (100 Gb/s Ethernet).
constexpr double kUnknownNicGbps = 100;

}  // namespace

double CostModel::nvlink_rate(int node) const {
  const NodeHardware& hardware = fabric_->cluster().nodes[node].hardware;
  if (hardware.nvlink == NvlinkScope::kNone || hardware.nvlink_gbps <= 0) {
    return parameters_[P::kPcieGbs];
  }
  return hardware.nvlink_gbps;
}

double CostModel::ring_efficiency(int node) const {
  const NodeHardware& hardware = fabric_->cluster().nodes[node].hardware;
  if (hardware.nvlink == NvlinkScope::kNone || hardware.nvlink_gbps <= 0) return 1.0;
  if (hardware.nvlink == NvlinkScope::kRack) return parameters_[P::kRackRingEfficiency];
  if (hardware.compute_capability >= 100) return parameters_[P::kBlackwellRingEfficiency];
  if (hardware.compute_capability >= 90) return parameters_[P::kHopperRingEfficiency];
  return parameters_[P::kOtherRingEfficiency];
}

double CostModel::nic_rate(int node) const {
  const NodeHardware& hardware = fabric_->cluster().nodes[node].hardware;
  double slowest = 0;
  for (const Nic& nic : hardware.nics) {
    if (nic.rail < 0 || nic.speed_gbps <= 0) continue;
    slowest = slowest == 0 ? nic.speed_gbps : std::min(slowest, nic.speed_gbps);
  }
  if (slowest == 0) slowest = kUnknownNicGbps;
  return slowest / 8 * parameters_[P::kNetEfficiency];
}

int CostModel::rails_of(int node) const {
  int rails = 0;
  for (const Nic& nic : fabric_->cluster().nodes[node].hardware.nics) rails += nic.rail >= 0;
  return std::max(rails, 1);
}

double CostModel::leaf_oversubscription(int leaf) const {
  // What other tenants leave a job (--oversubscription), or what the leaf's up-links give
  // by design (its switch entries' oversubscription, the tightest rail's), whichever is
  // tighter.
  double oversubscription = std::max(parameters_.spine_oversubscription, 1.0);
  if (leaf < 0) return oversubscription;
  const int rails = std::max(fabric_->cluster().rails, 1);
  for (int rail = 0; rail < rails; ++rail) {
    oversubscription =
        std::max(oversubscription, fabric_->leaf_switch(leaf, rail).oversubscription);
  }
  return oversubscription;
}

double CostModel::path_oversubscription(int leaf_a, int leaf_b) const {
  if (leaf_a == leaf_b) return 1.0;
  double oversubscription = std::max(leaf_oversubscription(leaf_a), leaf_oversubscription(leaf_b));
  const int spine_a = fabric_->spine_of_leaf(leaf_a);
  const int spine_b = fabric_->spine_of_leaf(leaf_b);
  if (spine_a >= 0 && spine_b >= 0 && spine_a != spine_b) {
    // Up through the spines to a core: their up-links divide the rate again.
    oversubscription *= std::max({1.0, fabric_->spine_switch(spine_a).oversubscription,
                                  fabric_->spine_switch(spine_b).oversubscription});
  }
  return oversubscription;
}

CostModel::Shape CostModel::shape_of(std::span<const RankSite> ranks) const {
  Shape shape;
  shape.ranks = static_cast<int>(ranks.size());
  std::unordered_map<int, int> index_of;          // domain key -> index in shape.domains
  std::unordered_map<int, int> ranks_on_node;     // node -> ranks
  std::unordered_map<long long, int> gpu_ranks;   // (node, gpu) -> ranks
  std::vector<std::vector<int>> nodes_of_domain;  // distinct nodes, per domain
  for (const RankSite& site : ranks) {
    const int key = domain_key(*fabric_, site.node);
    auto [it, added] = index_of.try_emplace(key, static_cast<int>(shape.domains.size()));
    if (added) {
      shape.domains.push_back({key, site.node, 0, false, 0, fabric_->leaf_of(site.node)});
      nodes_of_domain.emplace_back();
    }
    Shape::Domain& domain = shape.domains[it->second];
    ++domain.ranks;
    if (ranks_on_node[site.node]++ == 0) nodes_of_domain[it->second].push_back(site.node);
    const NodeHardware& hardware = fabric_->cluster().nodes[site.node].hardware;
    if (!supports_nvls(hardware)) shape.nvls_capable = false;
    if (++gpu_ranks[(static_cast<long long>(site.node) << 32) | (site.gpu & 0xffffffffLL)] > 1 ||
        site.gpu < 0) {
      shape.nvls_capable = false;
    }
    if (hardware.nvlink == NvlinkScope::kNone) shape.pcie = true;
  }
  std::unordered_map<int, bool> leaves;
  const double channels = parameters_[P::kNetChannelsPerDomain];
  for (std::size_t d = 0; d < shape.domains.size(); ++d) {
    Shape::Domain& domain = shape.domains[d];
    domain.spans_nodes = nodes_of_domain[d].size() > 1;
    shape.multi_node_domain = shape.multi_node_domain || domain.spans_nodes;
    int nics = 0;
    double rate = kInfinity;
    for (int node : nodes_of_domain[d]) {
      // A node drives as many of its NICs as it runs ranks (NCCL's channels follow GPUs).
      nics += std::min(rails_of(node), ranks_on_node[node]);
      rate = std::min(rate, nic_rate(node));
      shape.intra_gbs = std::min(shape.intra_gbs, nvlink_rate(node) * ring_efficiency(node));
      shape.nvlink_gbs = std::min(shape.nvlink_gbs, nvlink_rate(node));
      const int cc = fabric_->cluster().nodes[node].hardware.compute_capability;
      shape.nvls_efficiency =
          std::min(shape.nvls_efficiency, cc >= 100 ? parameters_[P::kBlackwellNvlsEfficiency]
                                                    : parameters_[P::kHopperNvlsEfficiency]);
    }
    domain.net_gbs = std::min<double>(nics, channels) * rate;
    shape.net_gbs = std::min(shape.net_gbs, domain.net_gbs);
    shape.per_domain_max = std::max(shape.per_domain_max, domain.ranks);
    shape.uniform = shape.uniform && domain.ranks == shape.domains.front().ranks;
    leaves[domain.leaf] = true;
  }
  shape.leaves = static_cast<int>(leaves.size());
  if (any_sharp_ && shape.domains.size() > 1) {
    std::vector<int> nodes;
    for (const std::vector<int>& list : nodes_of_domain)
      nodes.insert(nodes.end(), list.begin(), list.end());
    shape.sharp = sharp_joins(nodes);
  }
  if (shape.leaves > 1) {
    for (const auto& [leaf, unused] : leaves) {
      shape.oversubscription = std::max(shape.oversubscription, leaf_oversubscription(leaf));
    }
  }
  tree_network(shape);
  return shape;
}

TreeAnalysis CostModel::analyze_tree(std::span<const RankSite> ranks) const {
  TreeAnalysis tree;
  if (ranks.size() < 2) return tree;
  const Shape shape = shape_of(ranks);
  tree.domains = static_cast<int>(shape.domains.size());
  tree.leaf_crossings = shape.tree_leaf_crossings;
  tree.network_gbs = tree.domains > 1 ? shape.tree_net_gbs : 0;
  return tree;
}

double CostModel::leaf_capacity(int leaf, int node) const {
  if (leaf < 0) return rails_of(node) * nic_rate(node);
  return leaf_capacity_[leaf];
}

namespace {

// Parent of rank r in NCCL's first binary tree over n ranks (ncclGetBtree): clear r's
// lowest set bit and set the next one up; past the end, just clear it. Rank 0 is the
// root (-1). Neighbours in rank order stay close, so few edges leave a leaf.
int tree_parent(int r, int n) {
  if (r == 0) return -1;
  const int bit = r & -r;
  const int up = (r ^ bit) | (bit << 1);
  return up >= n ? r ^ bit : up;
}

}  // namespace

void CostModel::tree_network(Shape& shape) const {
  // NCCL's trees connect domains in rank order (the second of its double binary trees is
  // the first mirrored or shifted, with the same locality). An edge carries the buffer each
  // way; the edges that leave one leaf share its up-links.
  const int domains = static_cast<int>(shape.domains.size());
  shape.tree_net_gbs = shape.net_gbs;
  if (domains < 2) return;
  std::unordered_map<int, int> leaving;  // leaf -> tree edges leaving it
  for (int i = 0; i < domains; ++i) {
    const int parent = tree_parent(i, domains);
    if (parent < 0) continue;
    const int a = shape.domains[i].leaf;
    const int b = shape.domains[parent].leaf;
    if (a == b) continue;
    ++shape.tree_leaf_crossings;
    ++leaving[a];
    ++leaving[b];
  }
  for (int i = 0; i < domains; ++i) {
    const int parent_index = tree_parent(i, domains);
    if (parent_index < 0) continue;
    const Shape::Domain& child = shape.domains[i];
    const Shape::Domain& parent = shape.domains[parent_index];
    double gbs = std::min(child.net_gbs, parent.net_gbs);
    if (child.leaf != parent.leaf) {
      gbs /= path_oversubscription(child.leaf, parent.leaf);
      for (const Shape::Domain* end : {&child, &parent}) {
        const double uplinks =
            leaf_capacity(end->leaf, end->first_node) / leaf_oversubscription(end->leaf);
        gbs = std::min(gbs, uplinks / leaving[end->leaf]);
      }
    }
    shape.tree_net_gbs = std::min(shape.tree_net_gbs, gbs);
  }
}

LinkClass CostModel::link_class(const RankSite& from, const RankSite& to) const {
  if (from.node == to.node) {
    return fabric_->cluster().nodes[from.node].hardware.nvlink == NvlinkScope::kNone
               ? LinkClass::kPcie
               : LinkClass::kNvlink;
  }
  const int domain = fabric_->domain_of(from.node);
  if (domain >= 0 && domain == fabric_->domain_of(to.node)) return LinkClass::kNvlinkRack;
  // Nodes on no leaf share one unnamed switch.
  if (fabric_->leaf_of(from.node) == fabric_->leaf_of(to.node)) return LinkClass::kIbLeaf;
  return LinkClass::kIbSpine;
}

RingAnalysis CostModel::analyze_ring(std::span<const RankSite> ranks) const {
  if (ranks.size() < 2) return {};
  return analyze_ring(ranks, shape_of(ranks));
}

RingAnalysis CostModel::analyze_ring(std::span<const RankSite> ranks, const Shape& shape) const {
  RingAnalysis ring;
  const int n = static_cast<int>(ranks.size());
  if (n < 2) return ring;
  ring.edges = n;
  std::unordered_map<int, double> domain_net;  // domain key -> network bandwidth
  for (const Shape::Domain& domain : shape.domains) domain_net[domain.key] = domain.net_gbs;
  // NCCL splits a ring's data over channels and, with PXN, each channel leaves its NVLink
  // domain on its own NIC: an edge between domains uses all of the domain's NICs (up to the
  // channel count), and the edges leaving one domain share them.
  std::unordered_map<int, int> node_egress;    // node -> network edges leaving it
  std::unordered_map<int, int> domain_egress;  // domain key -> edges leaving it
  std::unordered_map<int, int> uplink;         // leaf -> edges leaving it
  for (int i = 0; i < n; ++i) {
    const RankSite& a = ranks[i];
    const RankSite& b = ranks[(i + 1) % n];
    if (a.node == b.node) continue;
    ++ring.node_crossings;
    const int key_a = domain_key(*fabric_, a.node);
    if (key_a == domain_key(*fabric_, b.node)) continue;
    ++ring.domain_crossings;
    ++node_egress[a.node];
    ++domain_egress[key_a];
    const int leaf_a = fabric_->leaf_of(a.node);
    const int leaf_b = fabric_->leaf_of(b.node);
    if (leaf_a != leaf_b) {
      ++ring.leaf_crossings;
      ++uplink[leaf_a];
      if (fabric_->spine_of_leaf(leaf_a) != fabric_->spine_of_leaf(leaf_b)) ++ring.spine_crossings;
    }
  }
  for (const auto& [node, count] : node_egress) {
    ring.max_node_egress = std::max(ring.max_node_egress, count);
  }
  for (const auto& [leaf, count] : uplink) {
    ring.max_uplink_congestion = std::max(ring.max_uplink_congestion, count);
  }

  ring.bottleneck_gbs = kInfinity;
  for (int i = 0; i < n; ++i) {
    const RankSite& a = ranks[i];
    const RankSite& b = ranks[(i + 1) % n];
    LinkClass link = link_class(a, b);
    double gbs = 0;
    double latency_us = parameters_[P::kNvlinkStepSimpleUs];
    if (link == LinkClass::kNvlink || link == LinkClass::kNvlinkRack || link == LinkClass::kPcie) {
      gbs = std::min(nvlink_rate(a.node) * ring_efficiency(a.node),
                     nvlink_rate(b.node) * ring_efficiency(b.node));
      if (link == LinkClass::kPcie) latency_us = parameters_[P::kPcieStepSimpleUs];
    } else {
      const int key_a = domain_key(*fabric_, a.node);
      const int key_b = domain_key(*fabric_, b.node);
      const double share = std::min(domain_net[key_a] / domain_egress[key_a],
                                    domain_net[key_b] / std::max(domain_egress[key_b], 1));
      latency_us = parameters_[P::kNetStepSimpleUs];
      gbs = share;
      if (link == LinkClass::kIbSpine) {
        // Under load the up-links give each node 1/oversubscription of its rate, and the
        // ring's edges leaving one leaf share that leaf's up-links.
        const int leaf_a = fabric_->leaf_of(a.node);
        const double oversubscription = path_oversubscription(leaf_a, fabric_->leaf_of(b.node));
        const double uplink_share =
            leaf_capacity(leaf_a, a.node) / leaf_oversubscription(leaf_a) / uplink[leaf_a];
        gbs = std::min(share / oversubscription, uplink_share);
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

bool CostModel::sharp_joins(const std::vector<int>& nodes) const {
  const int rails = std::max(fabric_->cluster().rails, 1);
  std::vector<int> leaves;
  std::vector<char> seen(fabric_->leaf_count(), 0);
  for (int node : nodes) {
    const int leaf = fabric_->leaf_of(node);
    if (leaf < 0) return false;
    // A unit's per-rail leaves list the same nodes (validation checks it): one node of a
    // leaf stands for all.
    if (seen[leaf]) continue;
    seen[leaf] = 1;
    for (int rail = 0; rail < rails; ++rail) {
      if (!fabric_->leaf_switch(leaf, rail).sharp) return false;
    }
    leaves.push_back(leaf);
  }
  if (leaves.size() < 2) return true;
  for (int rail = 0; rail < rails; ++rail) {
    std::vector<int> spines;
    for (int leaf : leaves) {
      const int spine = fabric_->spine_of_leaf(leaf, rail);
      if (spine < 0 || !fabric_->spine_switch(spine).sharp) return false;
      if (std::find(spines.begin(), spines.end(), spine) == spines.end()) spines.push_back(spine);
    }
    if (spines.size() < 2) continue;
    // A spine with no core above is the top itself (a leaf hung straight off the core).
    for (int spine : spines) {
      const int core = fabric_->core_of_spine(spine);
      if (core >= 0 && !fabric_->core_switch(core).sharp) return false;
    }
  }
  return true;
}

}  // namespace haein::topology
