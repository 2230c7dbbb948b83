// What each algorithm costs over a shape: NCCL's ring, tree, NVLS, NVLS tree and CollNet,
// and haein's hierarchical all-reduce.
#include <algorithm>
#include <cmath>

#include "cost_model_internal.hpp"

namespace haein::topology {

using namespace cost_model_detail;

namespace {

/// NCCL disables CollNet where a node runs more ranks than this (NCCL_MAX_DIRECT_ARITY + 1).
constexpr int kCollNetMaxRanksPerNode = 8;

}  // namespace

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

}  // namespace haein::topology
