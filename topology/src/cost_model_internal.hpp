#pragma once
// What the cost model's files share (not installed): the constants and helpers of the
// predictions, and CostModel::Shape, the ranks of one prediction grouped by NVLink domain.
// cost_model.cpp names things and picks algorithms, cost_model_shape.cpp works out what a
// placement crosses, cost_model_algorithms.cpp prices each algorithm.
#include <limits>
#include <string>
#include <vector>

#include "haein/topology/cost_model.hpp"

namespace haein::topology {

namespace cost_model_detail {

using P = CostParam;

inline constexpr double kUs = 1e-6;
inline constexpr double kMiB = 1024.0 * 1024;
inline constexpr double kGB = 1e9;
inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

inline bool supports_nvls(const NodeHardware& hardware) {
  return hardware.nvlink != NvlinkScope::kNone && hardware.compute_capability >= 90;
}

inline int protocol_index(Protocol protocol) { return static_cast<int>(protocol); }

// The parameter of a protocol from three consecutive ones (LL, LL128, Simple).
inline CostParam by_protocol(CostParam ll, Protocol protocol) {
  return static_cast<CostParam>(static_cast<int>(ll) + protocol_index(protocol));
}

inline Prediction not_applicable(Collective collective, Algorithm algorithm, double bytes,
                                 std::string why) {
  Prediction p;
  p.collective = collective;
  p.algorithm = algorithm;
  p.bytes = bytes;
  p.why_not = std::move(why);
  return p;
}

inline Prediction finish(Collective collective, Algorithm algorithm, Protocol protocol,
                         double bytes, double seconds, int ranks) {
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

inline int ceil_log2(int n) {
  int levels = 0;
  while ((1 << levels) < n) ++levels;
  return levels;
}

}  // namespace cost_model_detail

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
  bool sharp = false;  ///< every switch joining the nodes reduces in the network
  double intra_gbs = cost_model_detail::kInfinity;   ///< slowest domain's ring bandwidth inside it
  double nvlink_gbs = cost_model_detail::kInfinity;  ///< slowest nominal NVLink rate
  double nvls_efficiency = 1;                        ///< of the oldest GPU generation present
  double net_gbs = cost_model_detail::kInfinity;     ///< slowest domain's network bandwidth
  double oversubscription = 1;  ///< paid by traffic between domains on different leaves
  int leaves = 0;
  /// Network bandwidth of the slowest edge of NCCL's tree between domains: a domain's NICs,
  /// divided by the oversubscription where the edge climbs above its leaf, and the leaf's
  /// up-links shared by the tree edges that leave it.
  double tree_net_gbs = cost_model_detail::kInfinity;
  int tree_leaf_crossings = 0;
};

}  // namespace haein::topology
