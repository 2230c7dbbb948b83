#pragma once
/// @file
/// Cost model of NCCL's collectives over a placement. It follows NCCL's own tuning model:
/// each algorithm (ring, tree, NVLS, NVLS tree) and protocol (LL, LL128, Simple) costs a
/// latency (a base plus one term per step, by the link the step crosses) and moves its
/// bytes at the bandwidth of its slowest link. The constants are calibrated against
/// published nccl-tests results (topology/calibration/published.csv) and can be fitted to a
/// cluster's own measurements (`haein topo calibrate`). Sources: docs/cost-model.md.

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "haein/common/collective.hpp"
#include "haein/topology/fabric.hpp"
#include "haein/topology/model.hpp"

namespace haein::topology {

enum class LinkClass {
  kNvlink,      ///< GPUs of one node on an NVSwitch
  kNvlinkRack,  ///< GPUs of different trays in one multi-node NVLink domain (NVL72)
  kPcie,        ///< GPUs of one node without NVLink
  kIbLeaf,      ///< different NVLink domains under one leaf switch
  kIbSpine,     ///< different NVLink domains whose path climbs to a spine
};
std::string_view to_string(LinkClass link);

/// The collectives the model predicts (haein::Collective, common/collective.hpp): NCCL's
/// tuning model and the published calibration points cover these three only. Predictions
/// for any other operation are not applicable.
inline constexpr Collective kModelledCollectives[] = {
    Collective::kAllReduce, Collective::kAllGather, Collective::kReduceScatter};
constexpr bool modelled(Collective collective) {
  for (const Collective c : kModelledCollectives)
    if (c == collective) return true;
  return false;
}
/// NCCL's algorithms, and haein's own hierarchical all-reduce (reduce-scatter inside each
/// NVLink domain, one ring per local index across domains, all-gather). kCollNet is NCCL's
/// CollNet (Direct and Chain): the all-reduce reduced in the network's switches (SHARP).
enum class Algorithm { kRing, kTree, kHierarchical, kNvls, kNvlsTree, kCollNet };
enum class Protocol { kLL, kLL128, kSimple };
std::string_view to_string(Algorithm algorithm);
std::string_view to_string(Protocol protocol);
/// "ring", "tree", "nvls", "nvls_tree" (also "nvlstree"), "hierarchical", "collnet" (also
/// NCCL's "collnetdirect" and "collnetchain"); case, '_' and '-' do not matter.
std::optional<Algorithm> algorithm_from_string(std::string_view name);
/// "all_reduce", "all_gather", "reduce_scatter" (nccl-tests' names, with or without _perf);
/// nullopt for any other name, modelled or not.
std::optional<Collective> collective_from_string(std::string_view name);

/// The calibration constants, by name. Latencies are in microseconds, bandwidths in GB/s,
/// efficiencies are shares of a nominal link rate. docs/cost-model.md gives the source or
/// the fit behind each default.
enum class CostParam : int {
  kLaunchUs,  ///< per call: kernel launch and completion, as nccl-tests times it
  kRingBaseLlUs,
  kRingBaseLl128Us,
  kRingBaseSimpleUs,
  kTreeBaseLlUs,
  kTreeBaseLl128Us,
  kTreeBaseSimpleUs,
  kNvlinkStepLlUs,  ///< one ring step over NVLink (a node's NVSwitch or an NVL72 rack)
  kNvlinkStepLl128Us,
  kNvlinkStepSimpleUs,
  kPcieStepLlUs,  ///< one ring step over PCIe
  kPcieStepLl128Us,
  kPcieStepSimpleUs,
  kNetStepLlUs,  ///< one ring step over the network
  kNetStepLl128Us,
  kNetStepSimpleUs,
  kTreeNvlinkStepLlUs,  ///< one tree (chain) step inside a domain
  kTreeNvlinkStepLl128Us,
  kTreeNvlinkStepSimpleUs,
  kTreeNetStepLlUs,  ///< one tree level over the network
  kTreeNetStepLl128Us,
  kTreeNetStepSimpleUs,
  kNvlsBaseUs,    ///< NVLS all-reduce: fixed part
  kNvlsPerGpuUs,  ///< NVLS all-reduce: per GPU of the domain
  kNvlsTreeNetStepUs,
  kHopperRingEfficiency,     ///< ring bus bandwidth / per-direction NVLink rate, Hopper
  kBlackwellRingEfficiency,  ///< same, Blackwell
  kOtherRingEfficiency,      ///< same, older GPUs
  kHopperNvlsEfficiency,     ///< NVLS all-reduce bus bandwidth / (2 x NVLink rate), Hopper
  kBlackwellNvlsEfficiency,  ///< same, Blackwell
  kNvlsTreeEfficiency,       ///< share of NVLS left to a domain while its tree runs
  kNetEfficiency,            ///< share of the NIC line rate reached
  kNetChannelsPerDomain,     ///< most NICs of one NVLink domain a collective drives at once
  kLlShare,                  ///< LL's share of the link bandwidth (flags in every line)
  kLlMaxOneDomainGbs,        ///< LL's bus bandwidth cap inside one domain
  kLlMaxNetGbs,              ///< LL's bus bandwidth cap across domains
  kLl128Share,               ///< LL128's share of the link bandwidth
  kPcieGbs,                  ///< GPU-to-GPU PCIe bandwidth
  kNvlsRampUsPerSqrtMib,     ///< NVLS and NVLS tree: pipeline ramp, us per sqrt(MiB)
  kRampUsPerSqrtMib,         ///< ring and tree, Simple: pipeline ramp, us per sqrt(MiB)
  kTreeLl128DepthLoss,       ///< tree, LL128: bandwidth lost per tree level beyond the first
  kNvlsMultiNodeUs,          ///< NVLS over a multi-node NVLink domain (NVL72): added latency
  kTreeLl128MaxGbs,          ///< tree, LL128: algorithm bandwidth cap (NCCL's per-channel cap)
  kLlUsPerDoubling,          ///< LL: latency added per doubling of the message past 8 bytes
  kLlNetUsPerDoubling,       ///< LL: the same, per tree level over the network
  kLlDoublingCapKib,         ///< LL: the size past which the latency grows no more
  kCollNetBaseUs,            ///< CollNet: fixed latency over the network (the switches')
  kCollNetNvlinkUs,          ///< CollNet: latency of one NVLink pass inside a node
  kCollNetPerGpuUs,          ///< CollNet: latency per GPU of a node, up and down
  kCollNetEfficiency,        ///< CollNet: share of a node's network bandwidth it reaches
  kTreeInteriorShare,        ///< tree: bandwidth left with three or more domains
  kNvlsTreeInteriorShare,    ///< NVLS tree: bandwidth left with three or more domains
  kRackRingEfficiency,       ///< ring bus bandwidth / NVLink rate, multi-node domains (NVL72)
  kCount,
};
inline constexpr int kCostParamCount = static_cast<int>(CostParam::kCount);

/// What a parameter sets: a time (a latency, or how a latency grows with the size), or a
/// rate (an efficiency, a share or a cap). A fit moves the rates first.
enum class CostParamKind { kTime, kRate };

struct CostParamInfo {
  CostParam id;
  std::string_view name;  ///< as in cluster files and `haein topo calibrate`
  double value;           ///< default
  double min, max;        ///< range a fit may use
  std::string_view meaning;
  CostParamKind kind = CostParamKind::kRate;
};
/// Every parameter, in enum order.
std::span<const CostParamInfo> cost_param_table();
/// The parameter of this name, or nullopt.
std::optional<CostParam> cost_param_from_string(std::string_view name);
/// Every parameter's name, comma-separated, for messages.
std::string cost_param_names();

struct CostParameters {
  CostParameters();
  std::array<double, kCostParamCount> values;
  double operator[](CostParam p) const { return values[static_cast<int>(p)]; }
  double& operator[](CostParam p) { return values[static_cast<int>(p)]; }
  /// Leaf down-links per up-link left to this job when the cluster file says nothing (1 =
  /// non-blocking). Not calibrated: `haein plan --oversubscription` sets it.
  double spine_oversubscription = 1.0;

  /// Defaults overridden by a cluster file's `cost_model:` section (names of
  /// cost_param_table()). Throws InvalidArgument for an unknown name or a value outside
  /// the parameter's range.
  static CostParameters from(const std::map<std::string, double>& overrides);
  /// The values that differ from the defaults, by name.
  std::map<std::string, double> overrides() const;
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
  double bottleneck_gbs = 0;  ///< bandwidth of the slowest edge (Simple protocol), GB/s
  LinkClass bottleneck = LinkClass::kNvlink;
  double step_latency_us = 0;  ///< latency of the slowest edge (Simple protocol)
};

/// What NCCL's tree between NVLink domains crosses: its edges join domains in rank order.
struct TreeAnalysis {
  int domains = 0;
  int leaf_crossings = 0;  ///< tree edges between domains on different leaves
  double network_gbs = 0;  ///< slowest tree edge over the network, GB/s (0: one domain)
};

struct Prediction {
  Collective collective = Collective::kAllReduce;
  Algorithm algorithm = Algorithm::kRing;
  Protocol protocol = Protocol::kSimple;
  bool applicable = false;
  std::string why_not;  ///< when not applicable
  double bytes = 0;
  double seconds = 0;
  double algbw_gbs = 0;  ///< bytes / seconds, GB/s (1e9)
  double busbw_gbs = 0;  ///< nccl-tests bus bandwidth
};

class CostModel {
 public:
  /// Parameters: the defaults, overridden by the cluster file's `cost_model:` section.
  explicit CostModel(const Cluster& cluster);
  CostModel(const Cluster& cluster, CostParameters parameters);
  /// Over an index built once (a fit builds one model per trial of its parameters).
  CostModel(std::shared_ptr<const FabricIndex> fabric, CostParameters parameters);
  /// A temporary cluster would be gone before the model is used.
  explicit CostModel(Cluster&&) = delete;
  CostModel(Cluster&&, CostParameters) = delete;

  const FabricIndex& fabric() const { return *fabric_; }
  const CostParameters& parameters() const { return parameters_; }

  LinkClass link_class(const RankSite& from, const RankSite& to) const;
  RingAnalysis analyze_ring(std::span<const RankSite> ranks) const;
  TreeAnalysis analyze_tree(std::span<const RankSite> ranks) const;

  /// Time of one collective of `bytes` (all-reduce: the buffer; all-gather and
  /// reduce-scatter: the whole output or input, as nccl-tests counts) with the fastest
  /// protocol for this algorithm.
  Prediction predict(Collective collective, Algorithm algorithm, std::span<const RankSite> ranks,
                     double bytes) const;
  Prediction predict(Collective collective, Algorithm algorithm, Protocol protocol,
                     std::span<const RankSite> ranks, double bytes) const;
  /// The applicable NCCL algorithm and protocol with the shortest predicted time: what
  /// NCCL's tuner picks. haein's hierarchical all-reduce is not NCCL's and is left out.
  Prediction best(Collective collective, std::span<const RankSite> ranks, double bytes) const;
  /// Every algorithm, applicable or not, in enum order, each with its fastest protocol.
  std::vector<Prediction> all(Collective collective, std::span<const RankSite> ranks,
                              double bytes) const;

 private:
  struct Shape;  // the ranks grouped by NVLink domain, computed once per prediction
  Shape shape_of(std::span<const RankSite> ranks) const;
  double nvlink_rate(int node) const;
  double ring_efficiency(int node) const;
  double nic_rate(int node) const;
  int rails_of(int node) const;
  double leaf_oversubscription(int leaf) const;
  /// Oversubscription paid between two leaves: theirs, times their spines' when the path
  /// climbs to a core.
  double path_oversubscription(int leaf_a, int leaf_b) const;
  /// What a leaf's NICs carry at once (its up-links at oversubscription 1); `node` stands in
  /// for a node on no leaf.
  double leaf_capacity(int leaf, int node) const;
  void tree_network(Shape& shape) const;
  RingAnalysis analyze_ring(std::span<const RankSite> ranks, const Shape& shape) const;
  Prediction predict_one(Collective collective, Algorithm algorithm, Protocol protocol,
                         std::span<const RankSite> ranks, const Shape& shape,
                         const RingAnalysis& ring_analysis, double bytes) const;
  /// `algorithm` with `protocol`, or with its fastest protocol where none is given.
  Prediction predict_algorithm(Collective collective, Algorithm algorithm,
                               std::optional<Protocol> protocol, std::span<const RankSite> ranks,
                               double bytes) const;
  Prediction fastest_protocol(Collective collective, Algorithm algorithm,
                              std::span<const RankSite> ranks, const Shape& shape,
                              const RingAnalysis& ring_analysis, double bytes) const;
  /// LL's latency growth with the message size (zero for the other protocols).
  double ll_growth_us(Protocol protocol, int net_levels, double bytes) const;
  Prediction ring(Collective collective, Protocol protocol, const Shape& shape,
                  const RingAnalysis& analysis, double bytes) const;
  Prediction tree(Protocol protocol, const Shape& shape, double bytes) const;
  /// NVLS and NVLS tree: the pipeline's ramp.
  double nvls_ramp_us(const Shape& shape, double bytes) const;
  Prediction nvls(Collective collective, const Shape& shape, double bytes) const;
  Prediction nvls_tree(const Shape& shape, double bytes) const;
  Prediction collnet(const Shape& shape, double bytes) const;
  /// Whether every switch joining these nodes reduces in the network (Switch::sharp): each
  /// node's leaf on every rail and, where the nodes span leaves, the spines (and cores)
  /// above them.
  bool sharp_joins(const std::vector<int>& nodes) const;
  Prediction hierarchical(std::span<const RankSite> ranks, const Shape& shape, double bytes) const;

  std::shared_ptr<const FabricIndex> fabric_;
  CostParameters parameters_;
  std::vector<double> leaf_capacity_;  ///< per leaf: what its nodes' NICs carry, GB/s
  bool any_sharp_ = false;             ///< some switch has Switch::sharp
};

/// Key of a node's NVLink domain: the domain's index, or -1 - node for a node whose GPUs
/// reach no other node's (a DGX node is its own domain).
int domain_key(const FabricIndex& fabric, int node);

}  // namespace haein::topology
