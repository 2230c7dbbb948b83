#pragma once
/// @file
/// Alpha-beta cost model of collectives over a placement: each link class has a latency
/// per step (alpha) and an achievable bandwidth (1/beta). Predicts time, algorithm
/// bandwidth and bus bandwidth (nccl-tests' definition) of ring, tree, hierarchical and
/// NVLS algorithms. Calibration and sources: docs/cost-model.md.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "haein/topology/fabric.hpp"
#include "haein/topology/model.hpp"

namespace haein::topology {

enum class LinkClass {
  kNvlink,      ///< GPUs of one node on an NVSwitch
  kNvlinkRack,  ///< GPUs of different trays in one multi-node NVLink domain (NVL72)
  kPcie,        ///< GPUs of one node without NVLink
  kIbLeaf,      ///< different nodes, same leaf switch, same rail
  kIbSpine,     ///< different nodes whose path climbs to a spine (other leaf or rail)
};
std::string_view to_string(LinkClass link);

enum class Collective { kAllReduce, kAllGather, kReduceScatter };
enum class Algorithm { kRing, kTree, kHierarchical, kNvls };
std::string_view to_string(Collective collective);
std::string_view to_string(Algorithm algorithm);

/// Calibration constants. Bandwidths of NVLink and NICs come from the cluster (per node
/// type); these scale them to what NCCL achieves and add per-step latencies.
struct CostParameters {
  double nvlink_latency_us = 1.0;       ///< one ring step over NVSwitch
  double nvlink_rack_latency_us = 1.5;  ///< one step between trays of an NVL72 rack
  double pcie_latency_us = 2.0;
  double ib_leaf_latency_us = 3.0;   ///< one step through a leaf switch
  double ib_spine_latency_us = 4.0;  ///< one step through leaf, spine, leaf
  double nvls_latency_us = 6.0;      ///< one NVLS all-reduce (multimem) launch and sync
  /// Share of the nominal per-direction NVLink bandwidth a ring reaches (8 x H100:
  /// 370 GB/s of 450).
  double nvlink_efficiency = 0.822;
  /// NVLS all-reduce: in-switch reduction reaches this share of the NVLink bandwidth
  /// (8 x H100: 480 GB/s bus bandwidth = 274 GB/s algorithm bandwidth of 450).
  double nvls_efficiency = 0.61;
  double pcie_gbs = 24.0;               ///< achievable GPU-to-GPU PCIe Gen4/5 bandwidth, GB/s
  double ib_efficiency = 0.92;          ///< share of the NIC line rate NCCL reaches
  double spine_oversubscription = 1.0;  ///< leaf down-links per up-link (1 = non-blocking)
};

/// Where one rank runs, as the cost model needs it.
struct RankSite {
  int node = 0;   ///< index into Cluster::nodes
  int gpu = 0;    ///< GPU index on its node, -1 for none
  int rail = -1;  ///< rail of the NIC it uses, -1 for none
};

/// What a ring in rank order crosses (the edge from the last rank back to the first
/// included).
struct RingAnalysis {
  int edges = 0;
  int node_crossings = 0;    ///< edges between different nodes
  int leaf_crossings = 0;    ///< edges between nodes of different leaves
  int spine_crossings = 0;   ///< edges between leaves under different spines
  int domain_crossings = 0;  ///< edges leaving an NVLink domain
  /// Ring edges sharing the most loaded leaf up-link: for each leaf, the edges that leave
  /// it for another leaf; the maximum over leaves. 0 when the ring stays in one leaf.
  int max_uplink_congestion = 0;
  /// Most edges leaving one node over the network (they share the node's NICs).
  int max_node_egress = 0;
  double bottleneck_gbs = 0;  ///< bandwidth of the slowest edge, GB/s
  LinkClass bottleneck = LinkClass::kNvlink;
  double step_latency_us = 0;  ///< latency of the slowest edge
};

struct Prediction {
  Collective collective = Collective::kAllReduce;
  Algorithm algorithm = Algorithm::kRing;
  bool applicable = false;
  std::string why_not;  ///< when not applicable
  double bytes = 0;
  double seconds = 0;
  double algbw_gbs = 0;  ///< bytes / seconds, GB/s (1e9)
  double busbw_gbs = 0;  ///< nccl-tests bus bandwidth
};

class CostModel {
 public:
  explicit CostModel(const Cluster& cluster, CostParameters parameters = {});

  const FabricIndex& fabric() const { return fabric_; }
  const CostParameters& parameters() const { return parameters_; }

  LinkClass link_class(const RankSite& from, const RankSite& to) const;
  RingAnalysis analyze_ring(std::span<const RankSite> ranks) const;

  /// Time of one collective of `bytes` (all-reduce: the buffer; all-gather and
  /// reduce-scatter: the whole output or input, as nccl-tests counts).
  Prediction predict(Collective collective, Algorithm algorithm, std::span<const RankSite> ranks,
                     double bytes) const;
  /// The applicable algorithm with the shortest predicted time.
  Prediction best(Collective collective, std::span<const RankSite> ranks, double bytes) const;
  /// Every algorithm, applicable or not, in enum order.
  std::vector<Prediction> all(Collective collective, std::span<const RankSite> ranks,
                              double bytes) const;

 private:
  struct Link {
    double latency_us;
    double gbs;
  };
  Link nvlink(int node) const;
  double nic_gbs(int node) const;
  int rails_of(int node) const;
  Prediction ring(Collective collective, std::span<const RankSite> ranks, double bytes) const;
  Prediction tree(std::span<const RankSite> ranks, double bytes) const;
  Prediction hierarchical(std::span<const RankSite> ranks, double bytes, bool nvls) const;
  Prediction single_domain_nvls(Collective collective, std::span<const RankSite> ranks,
                                double bytes) const;

  FabricIndex fabric_;
  CostParameters parameters_;
};

/// nccl-tests' bus bandwidth factor for n ranks: 2(n-1)/n for all-reduce, (n-1)/n for
/// all-gather and reduce-scatter.
double bus_factor(Collective collective, int ranks);

}  // namespace haein::topology
