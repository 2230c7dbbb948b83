// The cost model's names and its choice of algorithm: NCCL's fastest, as its tuner picks.
#include <algorithm>
#include <cmath>

#include "cost_model_internal.hpp"

namespace haein::topology {

using namespace cost_model_detail;

namespace {

constexpr Algorithm kNcclAlgorithms[] = {Algorithm::kRing, Algorithm::kTree, Algorithm::kNvls,
                                         Algorithm::kNvlsTree, Algorithm::kCollNet};

}  // namespace

int domain_key(const FabricIndex& fabric, int node) {
  const int domain = fabric.domain_of(node);
  return domain >= 0 ? domain : -1 - node;
}

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
  any_sharp_ = fabric_->cluster().has_sharp();
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
