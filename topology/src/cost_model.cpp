#include "haein/topology/cost_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace haein::topology {

namespace {

using P = CostParam;

constexpr double kUs = 1e-6;
constexpr double kMiB = 1024.0 * 1024;
constexpr double kGB = 1e9;
constexpr double kInfinity = std::numeric_limits<double>::infinity();
/// Inter-node bandwidth assumed for nodes whose NICs the cluster file does not describe
/// (100 Gb/s Ethernet).
constexpr double kUnknownNicGbps = 100;
/// NCCL disables CollNet where a node runs more ranks than this (NCCL_MAX_DIRECT_ARITY + 1).
constexpr int kCollNetMaxRanksPerNode = 8;
constexpr Algorithm kNcclAlgorithms[] = {Algorithm::kRing, Algorithm::kTree, Algorithm::kNvls,
                                         Algorithm::kNvlsTree, Algorithm::kCollNet};

bool supports_nvls(const NodeHardware& hardware) {
  return hardware.nvlink != NvlinkScope::kNone && hardware.compute_capability >= 90;
}

int protocol_index(Protocol protocol) { return static_cast<int>(protocol); }

// The parameter of a protocol from three consecutive ones (LL, LL128, Simple).
CostParam by_protocol(CostParam ll, Protocol protocol) {
  return static_cast<CostParam>(static_cast<int>(ll) + protocol_index(protocol));
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

Prediction finish(Collective collective, Algorithm algorithm, Protocol protocol, double bytes,
                  double seconds, int ranks) {
  Prediction p;
  p.collective = collective;
  p.algorithm = algorithm;
  p.protocol = protocol;
  p.applicable = true;
  p.bytes = bytes;
  p.seconds = seconds;
  p.algbw_gbs = seconds > 0 ? bytes / seconds / kGB : 0;
  p.busbw_gbs = p.algbw_gbs * bus_factor(collective, ranks);
  return p;
}

int ceil_log2(int n) {
  int levels = 0;
  while ((1 << levels) < n) ++levels;
  return levels;
}

}  // namespace

int domain_key(const FabricIndex& fabric, int node) {
  const int domain = fabric.domain_of(node);
  return domain >= 0 ? domain : -1 - node;
}

/// The ranks of one prediction grouped by NVLink domain, with the rates the algorithms
/// need.
struct CostModel::Shape {
  struct Domain {
    int key = 0;
    int first_node = 0;
    int ranks = 0;
    bool spans_nodes = false;
    double net_gbs = 0;  ///< what its NICs carry at once, per direction
    int leaf = -1;
  };
  int ranks = 0;
  std::vector<Domain> domains;  ///< in the order their first rank appears
  int per_domain_max = 0;
  bool uniform = true;       ///< every domain holds the same number of ranks
  bool nvls_capable = true;  ///< every node has NVLink SHARP and no GPU runs two ranks
  bool pcie = false;         ///< some node has no NVLink
  bool multi_node_domain = false;
  bool sharp = false;             ///< every switch joining the nodes reduces in the network
  double intra_gbs = kInfinity;   ///< slowest domain's ring bandwidth inside it
  double nvlink_gbs = kInfinity;  ///< slowest nominal NVLink rate
  double nvls_efficiency = 1;     ///< of the oldest GPU generation present
  double net_gbs = kInfinity;     ///< slowest domain's network bandwidth
  double oversubscription = 1;    ///< paid by traffic between domains on different leaves
  int leaves = 0;
  /// Network bandwidth of the slowest edge of NCCL's tree between domains: a domain's NICs,
  /// divided by the oversubscription where the edge climbs above its leaf, and the leaf's
  /// up-links shared by the tree edges that leave it.
  double tree_net_gbs = kInfinity;
  int tree_leaf_crossings = 0;
};

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
    case Algorithm::kNvlsTree:
      return "nvls_tree";
    case Algorithm::kCollNet:
      return "collnet";
  }
  return "ring";
}

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::kLL:
      return "LL";
    case Protocol::kLL128:
      return "LL128";
    case Protocol::kSimple:
      return "Simple";
  }
  return "Simple";
}

std::optional<Algorithm> algorithm_from_string(std::string_view name) {
  std::string lower;
  for (char c : name) {
    if (c != '_' && c != '-')
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (lower == "ring") return Algorithm::kRing;
  if (lower == "tree") return Algorithm::kTree;
  if (lower == "nvls") return Algorithm::kNvls;
  if (lower == "nvlstree") return Algorithm::kNvlsTree;
  if (lower == "hierarchical") return Algorithm::kHierarchical;
  if (lower == "collnet" || lower == "collnetdirect" || lower == "collnetchain")
    return Algorithm::kCollNet;
  return std::nullopt;
}

std::optional<Collective> collective_from_string(std::string_view name) {
  if (name.ends_with("_perf")) name.remove_suffix(5);
  for (const Collective collective : kModelledCollectives)
    if (name_of(collective) == name) return collective;
  return std::nullopt;
}

CostModel::CostModel(const Cluster& cluster)
    : CostModel(cluster, CostParameters::from(cluster.cost_model)) {}

CostModel::CostModel(const Cluster& cluster, CostParameters parameters)
    : CostModel(std::make_shared<const FabricIndex>(cluster), parameters) {}

CostModel::CostModel(std::shared_ptr<const FabricIndex> fabric, CostParameters parameters)
    : fabric_(std::move(fabric)),
      parameters_(parameters),
      leaf_capacity_(fabric_->leaf_count(), 0.0) {
  for (int leaf = 0; leaf < fabric_->leaf_count(); ++leaf) {
    for (int node : fabric_->nodes_of_leaf(leaf)) {
      leaf_capacity_[leaf] += rails_of(node) * nic_rate(node);
    }
  }
  for (const Switch& s : fabric_->cluster().switches) any_sharp_ = any_sharp_ || s.sharp;
}

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

double CostModel::ll_growth_us(Protocol protocol, int net_levels, double bytes) const {
  if (protocol != Protocol::kLL) return 0.0;
  // Measured LL latencies grow by about the same amount each time the message doubles, from
  // 8 bytes until NCCL runs every channel (nccl-tests on DGX H100: 13.7 us at 8 B, 16.3 at
  // 1 KiB, 19.3 at 32 KiB, 20.7 at 512 KiB), and faster across more tree levels.
  const double cap = std::max(parameters_[P::kLlDoublingCapKib] * 1024, 8.0);
  const double doublings = std::log2(std::clamp(bytes, 8.0, cap) / 8.0);
  return doublings *
         (parameters_[P::kLlUsPerDoubling] + net_levels * parameters_[P::kLlNetUsPerDoubling]);
}

Prediction CostModel::ring(Collective collective, Protocol protocol, const Shape& shape,
                           const RingAnalysis& analysis, double bytes) const {
  const int n = shape.ranks;
  const bool all_reduce = collective == Collective::kAllReduce;
  const double steps = all_reduce ? 2.0 * (n - 1) : n - 1.0;
  const double inter_steps = std::min(steps, (all_reduce ? 2.0 : 1.0) * analysis.domain_crossings);
  const CostParam intra_step = shape.pcie ? P::kPcieStepLlUs : P::kNvlinkStepLlUs;
  const double latency_us = parameters_[P::kLaunchUs] +
                            parameters_[by_protocol(P::kRingBaseLlUs, protocol)] +
                            (steps - inter_steps) * parameters_[by_protocol(intra_step, protocol)] +
                            inter_steps * parameters_[by_protocol(P::kNetStepLlUs, protocol)];
  double gbs = analysis.bottleneck_gbs;
  if (protocol == Protocol::kLL) {
    const double cap = shape.domains.size() > 1 ? parameters_[P::kLlMaxNetGbs]
                                                : parameters_[P::kLlMaxOneDomainGbs];
    gbs = std::min(gbs * parameters_[P::kLlShare], cap);
  } else if (protocol == Protocol::kLL128) {
    gbs *= parameters_[P::kLl128Share];
  }
  const double ramp_us = protocol == Protocol::kSimple
                             ? parameters_[P::kRampUsPerSqrtMib] * std::sqrt(bytes / kMiB)
                             : 0.0;
  const double growth_us =
      ll_growth_us(protocol, ceil_log2(static_cast<int>(shape.domains.size())), bytes);
  const double seconds = (latency_us + ramp_us + growth_us) * kUs + steps / n * bytes / (gbs * kGB);
  return finish(collective, Algorithm::kRing, protocol, bytes, seconds, n);
}

Prediction CostModel::tree(Protocol protocol, const Shape& shape, double bytes) const {
  // NCCL's tree: a chain inside each NVLink domain, a double binary tree between domains.
  // Every domain sends and receives about 2x the buffer over the network (measured H100
  // pairs show no gain at two domains for the tree itself; the NVLS tree has one).
  const int domains = static_cast<int>(shape.domains.size());
  const int per_domain = shape.per_domain_max;
  double latency_us =
      parameters_[P::kLaunchUs] + parameters_[by_protocol(P::kTreeBaseLlUs, protocol)] +
      2.0 * (per_domain - 1) * parameters_[by_protocol(P::kTreeNvlinkStepLlUs, protocol)];
  double algbw = 0;
  if (domains == 1) {
    // One domain: the chain carries the buffer up and back down over the same links.
    algbw = shape.intra_gbs / 2;
  } else {
    latency_us +=
        2.0 * ceil_log2(domains) * parameters_[by_protocol(P::kTreeNetStepLlUs, protocol)];
    // Three or more domains: interior domains of NCCL's trees forward to two children.
    const double interior = domains > 2 ? parameters_[P::kTreeInteriorShare] : 1.0;
    algbw = std::min(shape.intra_gbs, shape.tree_net_gbs / 2.0 * interior);
  }
  if (protocol == Protocol::kLL) {
    const double cap =
        domains > 1 ? parameters_[P::kLlMaxNetGbs] : parameters_[P::kLlMaxOneDomainGbs];
    algbw = std::min(algbw * parameters_[P::kLlShare], cap / 2);
  } else if (protocol == Protocol::kLL128) {
    // NCCL caps LL128 per channel lower for deeper trees.
    const double levels = std::max(ceil_log2(domains) - 1, 0);
    // One domain: NCCL's chain keeps 7/9 of LL128's line, where a tree keeps 120/128.
    if (domains == 1) algbw *= (7.0 / 9.0) / (120.0 / 128.0);
    algbw = std::min(
        algbw * parameters_[P::kLl128Share] / (1 + parameters_[P::kTreeLl128DepthLoss] * levels),
        parameters_[P::kTreeLl128MaxGbs]);
  }
  if (protocol == Protocol::kSimple) {
    latency_us += parameters_[P::kRampUsPerSqrtMib] * std::sqrt(bytes / kMiB);
  }
  latency_us += ll_growth_us(protocol, ceil_log2(domains), bytes);
  const double seconds = latency_us * kUs + bytes / (algbw * kGB);
  return finish(Collective::kAllReduce, Algorithm::kTree, protocol, bytes, seconds, shape.ranks);
}

double CostModel::nvls_ramp_us(const Shape& shape, double bytes) const {
  // The pipeline fills at the NVLink rate: fitted on H100 (450 GB/s a direction), shorter
  // where the links are faster.
  constexpr double kHopperNvlinkGbs = 450;
  return parameters_[P::kNvlsRampUsPerSqrtMib] * std::sqrt(bytes / kMiB) * kHopperNvlinkGbs /
         shape.nvlink_gbs;
}

Prediction CostModel::nvls(Collective collective, const Shape& shape, double bytes) const {
  if (shape.domains.size() != 1 || !shape.nvls_capable || shape.pcie) {
    return not_applicable(collective, Algorithm::kNvls, bytes,
                          shape.domains.size() != 1
                              ? "NVLS works inside one NVLink domain (NVLS tree joins domains)"
                              : "needs NVSwitch with NVLink SHARP (Hopper or later) and one "
                                "rank per GPU");
  }
  const int n = shape.ranks;
  // The switch reduces: the bus bandwidth stays near twice the link rate, whatever n.
  const double busbw =
      shape.nvls_efficiency * shape.nvlink_gbs * (collective == Collective::kAllReduce ? 2.0 : 1.0);
  const double algbw = busbw / bus_factor(collective, n);
  const double latency_us = parameters_[P::kLaunchUs] + parameters_[P::kNvlsBaseUs] +
                            parameters_[P::kNvlsPerGpuUs] * n +
                            (shape.multi_node_domain ? parameters_[P::kNvlsMultiNodeUs] : 0.0) +
                            nvls_ramp_us(shape, bytes);
  const double seconds = latency_us * kUs + bytes / (algbw * kGB);
  return finish(collective, Algorithm::kNvls, Protocol::kSimple, bytes, seconds, n);
}

Prediction CostModel::nvls_tree(const Shape& shape, double bytes) const {
  const int domains = static_cast<int>(shape.domains.size());
  if (domains < 2) {
    return not_applicable(Collective::kAllReduce, Algorithm::kNvlsTree, bytes,
                          "one NVLink domain: nothing between domains (NVLS applies)");
  }
  if (!shape.nvls_capable || shape.pcie) {
    return not_applicable(Collective::kAllReduce, Algorithm::kNvlsTree, bytes,
                          "needs NVSwitch with NVLink SHARP (Hopper or later) and one rank "
                          "per GPU");
  }
  if (shape.multi_node_domain) {
    return not_applicable(Collective::kAllReduce, Algorithm::kNvlsTree, bytes,
                          "NCCL does not run NVLS tree over multi-node NVLink domains");
  }
  const int g = shape.per_domain_max;
  if (g < 2) {
    return not_applicable(Collective::kAllReduce, Algorithm::kNvlsTree, bytes,
                          "one rank per domain: no NVLS inside it");
  }
  const double nvls_algbw = shape.nvls_efficiency * shape.nvlink_gbs * 2.0 /
                            bus_factor(Collective::kAllReduce, g) *
                            parameters_[P::kNvlsTreeEfficiency];
  const double net = domains > 2 ? shape.tree_net_gbs / 2.0 * parameters_[P::kNvlsTreeInteriorShare]
                                 : shape.tree_net_gbs;
  const double algbw = std::min(nvls_algbw, net);
  const double latency_us =
      parameters_[P::kLaunchUs] + parameters_[P::kNvlsBaseUs] + parameters_[P::kNvlsPerGpuUs] * g +
      2.0 * ceil_log2(domains) * parameters_[P::kNvlsTreeNetStepUs] + nvls_ramp_us(shape, bytes);
  const double seconds = latency_us * kUs + bytes / (algbw * kGB);
  return finish(Collective::kAllReduce, Algorithm::kNvlsTree, Protocol::kSimple, bytes, seconds,
                shape.ranks);
}

Prediction CostModel::collnet(const Shape& shape, double bytes) const {
  const int domains = static_cast<int>(shape.domains.size());
  if (domains < 2) {
    return not_applicable(Collective::kAllReduce, Algorithm::kCollNet, bytes,
                          "one NVLink domain: nothing for the network to reduce");
  }
  if (!shape.sharp) {
    return not_applicable(Collective::kAllReduce, Algorithm::kCollNet, bytes,
                          "needs in-network reduction (sharp: true) on every switch joining "
                          "the nodes");
  }
  if (shape.multi_node_domain || shape.pcie) {
    return not_applicable(Collective::kAllReduce, Algorithm::kCollNet, bytes,
                          "CollNet is modelled for NVSwitch nodes only (not NVL72 racks or "
                          "PCIe nodes)");
  }
  const int g = shape.per_domain_max;
  if (g > kCollNetMaxRanksPerNode) {
    return not_applicable(Collective::kAllReduce, Algorithm::kCollNet, bytes,
                          "NCCL turns CollNet off above 8 ranks on a node");
  }
  // The switches reduce: each node sends its buffer once and receives the sum once, where
  // a ring moves twice that over the NICs. Inside a node its GPUs scatter the buffer to the
  // GPUs that own NICs and gather the sum back (NCCL's CollNet Direct): two passes over
  // NVLink, like a ring all-reduce of one node. Each leaf reduces its nodes' streams into
  // one, so its up-links carry one node's worth: oversubscription slows CollNet only where
  // it leaves the up-links less than that.
  const double intra = g > 1 ? shape.intra_gbs * g / (2.0 * (g - 1)) : kInfinity;
  double algbw = std::min(intra, parameters_[P::kCollNetEfficiency] * shape.net_gbs);
  if (shape.leaves > 1) {
    for (const Shape::Domain& domain : shape.domains) {
      algbw = std::min(algbw, leaf_capacity(domain.leaf, domain.first_node) /
                                  leaf_oversubscription(domain.leaf));
    }
  }
  const double latency_us = parameters_[P::kLaunchUs] + parameters_[P::kCollNetBaseUs] +
                            2.0 * std::min(g - 1, 1) * parameters_[P::kCollNetNvlinkUs] +
                            2.0 * (g - 1) * parameters_[P::kCollNetPerGpuUs];
  const double seconds = latency_us * kUs + bytes / (algbw * kGB);
  return finish(Collective::kAllReduce, Algorithm::kCollNet, Protocol::kSimple, bytes, seconds,
                shape.ranks);
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

Prediction CostModel::hierarchical(std::span<const RankSite> ranks, const Shape& shape,
                                   double bytes) const {
  const Algorithm algorithm = Algorithm::kHierarchical;
  const int domains = static_cast<int>(shape.domains.size());
  if (domains < 2) {
    return not_applicable(Collective::kAllReduce, algorithm, bytes,
                          "one NVLink domain: nothing between domains");
  }
  if (!shape.uniform) {
    return not_applicable(Collective::kAllReduce, algorithm, bytes,
                          "NVLink domains hold different numbers of ranks");
  }
  // Members of each domain in rank order, domains in the order they first appear.
  std::unordered_map<int, int> index_of;
  for (int d = 0; d < domains; ++d) index_of[shape.domains[d].key] = d;
  std::vector<std::vector<int>> members(domains);
  for (int i = 0; i < static_cast<int>(ranks.size()); ++i) {
    members[index_of[domain_key(*fabric_, ranks[i].node)]].push_back(i);
  }
  const int per_domain = shape.per_domain_max;
  const double g = per_domain;

  // Phases 1 and 3: a ring reduce-scatter and all-gather inside each domain.
  double intra_seconds = 0;
  if (per_domain > 1) {
    const double step_us = parameters_[P::kNvlinkStepSimpleUs];
    intra_seconds = 2 * ((g - 1) * step_us * kUs + (g - 1) / g * bytes / (shape.intra_gbs * kGB));
  }

  // Phase 2: for each local index, a ring across domains over that GPU's NIC.
  const double oversubscription = shape.oversubscription;
  std::unordered_map<long long, int> nic_users;  // (node, rail) -> local indices using it
  auto nic_key = [](const RankSite& s) {
    return (static_cast<long long>(s.node) << 32) | (s.rail & 0xffffffffLL);
  };
  for (const auto& list : members) {
    for (int member : list) ++nic_users[nic_key(ranks[member])];
  }
  double inter_seconds = 0;
  const double shard = bytes / per_domain;
  for (int local = 0; local < per_domain; ++local) {
    double gbs = kInfinity;
    bool crosses_leaves = false;
    for (int d = 0; d < domains; ++d) {
      const RankSite& a = ranks[members[d][local]];
      const RankSite& b = ranks[members[(d + 1) % domains][local]];
      const double nic = std::min(nic_rate(a.node), nic_rate(b.node)) /
                         std::max(nic_users[nic_key(a)], nic_users[nic_key(b)]);
      // Different rails meet only above the leaf.
      const bool spine = link_class(a, b) == LinkClass::kIbSpine || a.rail != b.rail;
      crosses_leaves = crosses_leaves || spine;
      gbs = std::min(gbs, spine ? nic / oversubscription : nic);
    }
    const double d = domains;
    const double step_us = parameters_[P::kNetStepSimpleUs];
    const double seconds = 2 * (d - 1) * step_us * kUs + 2 * (d - 1) / d * shard / (gbs * kGB);
    inter_seconds = std::max(inter_seconds, seconds);
  }
  return finish(Collective::kAllReduce, algorithm, Protocol::kSimple, bytes,
                parameters_[P::kLaunchUs] * kUs + intra_seconds + inter_seconds,
                static_cast<int>(ranks.size()));
}

namespace {

bool simple_only(Algorithm algorithm) {
  return algorithm == Algorithm::kNvls || algorithm == Algorithm::kNvlsTree ||
         algorithm == Algorithm::kHierarchical || algorithm == Algorithm::kCollNet;
}

}  // namespace

Prediction CostModel::predict_one(Collective collective, Algorithm algorithm, Protocol protocol,
                                  std::span<const RankSite> ranks, const Shape& shape,
                                  const RingAnalysis& ring_analysis, double bytes) const {
  if (!modelled(collective)) {
    return not_applicable(collective, algorithm, bytes,
                          std::string(name_of(collective)) +
                              " is not modelled (all_reduce, all_gather and reduce_scatter are)");
  }
  const bool all_reduce = collective == Collective::kAllReduce;
  if (simple_only(algorithm) && protocol != Protocol::kSimple) {
    return not_applicable(collective, algorithm, bytes,
                          std::string(to_string(algorithm)) + " runs the Simple protocol only");
  }
  if (protocol == Protocol::kLL128 && shape.pcie) {
    return not_applicable(collective, algorithm, bytes, "LL128 needs NVLink");
  }
  switch (algorithm) {
    case Algorithm::kRing:
      return ring(collective, protocol, shape, ring_analysis, bytes);
    case Algorithm::kTree:
      if (!all_reduce) {
        return not_applicable(collective, algorithm, bytes, "tree is all-reduce only");
      }
      return tree(protocol, shape, bytes);
    case Algorithm::kHierarchical:
      if (!all_reduce) {
        return not_applicable(collective, algorithm, bytes, "hierarchical is all-reduce only");
      }
      return hierarchical(ranks, shape, bytes);
    case Algorithm::kNvls:
      return nvls(collective, shape, bytes);
    case Algorithm::kNvlsTree:
      if (!all_reduce) {
        return not_applicable(collective, algorithm, bytes, "NVLS tree is all-reduce only");
      }
      return nvls_tree(shape, bytes);
    case Algorithm::kCollNet:
      if (!all_reduce) {
        return not_applicable(collective, algorithm, bytes,
                              "CollNet all-gather and reduce-scatter are not modelled");
      }
      return collnet(shape, bytes);
  }
  return not_applicable(collective, algorithm, bytes, "unknown algorithm");
}

Prediction CostModel::fastest_protocol(Collective collective, Algorithm algorithm,
                                       std::span<const RankSite> ranks, const Shape& shape,
                                       const RingAnalysis& ring_analysis, double bytes) const {
  // Simple first: when nothing applies, its reason is the algorithm's own.
  Prediction fastest =
      predict_one(collective, algorithm, Protocol::kSimple, ranks, shape, ring_analysis, bytes);
  if (simple_only(algorithm)) return fastest;
  for (Protocol protocol : {Protocol::kLL, Protocol::kLL128}) {
    Prediction p = predict_one(collective, algorithm, protocol, ranks, shape, ring_analysis, bytes);
    if (p.applicable && (!fastest.applicable || p.seconds < fastest.seconds))
      fastest = std::move(p);
  }
  return fastest;
}

Prediction CostModel::predict_algorithm(Collective collective, Algorithm algorithm,
                                        std::optional<Protocol> protocol,
                                        std::span<const RankSite> ranks, double bytes) const {
  if (ranks.size() < 2) {
    return not_applicable(collective, algorithm, bytes, "one rank: nothing to exchange");
  }
  const Shape shape = shape_of(ranks);
  const RingAnalysis ring_analysis =
      algorithm == Algorithm::kRing ? analyze_ring(ranks, shape) : RingAnalysis{};
  if (protocol)
    return predict_one(collective, algorithm, *protocol, ranks, shape, ring_analysis, bytes);
  return fastest_protocol(collective, algorithm, ranks, shape, ring_analysis, bytes);
}

Prediction CostModel::predict(Collective collective, Algorithm algorithm, Protocol protocol,
                              std::span<const RankSite> ranks, double bytes) const {
  return predict_algorithm(collective, algorithm, protocol, ranks, bytes);
}

Prediction CostModel::predict(Collective collective, Algorithm algorithm,
                              std::span<const RankSite> ranks, double bytes) const {
  return predict_algorithm(collective, algorithm, std::nullopt, ranks, bytes);
}

std::vector<Prediction> CostModel::all(Collective collective, std::span<const RankSite> ranks,
                                       double bytes) const {
  constexpr Algorithm kAll[] = {Algorithm::kRing, Algorithm::kTree,     Algorithm::kHierarchical,
                                Algorithm::kNvls, Algorithm::kNvlsTree, Algorithm::kCollNet};
  std::vector<Prediction> predictions;
  if (ranks.size() < 2) {
    for (Algorithm algorithm : kAll) {
      predictions.push_back(
          not_applicable(collective, algorithm, bytes, "one rank: nothing to exchange"));
    }
    return predictions;
  }
  const Shape shape = shape_of(ranks);
  const RingAnalysis ring_analysis = analyze_ring(ranks, shape);
  for (Algorithm algorithm : kAll) {
    predictions.push_back(
        fastest_protocol(collective, algorithm, ranks, shape, ring_analysis, bytes));
  }
  return predictions;
}

Prediction CostModel::best(Collective collective, std::span<const RankSite> ranks,
                           double bytes) const {
  Prediction best = not_applicable(collective, Algorithm::kRing, bytes, "no algorithm applies");
  if (ranks.size() < 2) {
    best.why_not = "one rank: nothing to exchange";
    return best;
  }
  const Shape shape = shape_of(ranks);
  const RingAnalysis ring_analysis = analyze_ring(ranks, shape);
  for (Algorithm algorithm : kNcclAlgorithms) {
    Prediction p = fastest_protocol(collective, algorithm, ranks, shape, ring_analysis, bytes);
    if (p.applicable && (!best.applicable || p.seconds < best.seconds)) best = std::move(p);
  }
  return best;
}

}  // namespace haein::topology
