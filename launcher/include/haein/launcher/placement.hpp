#pragma once
/// @file
/// Placement: which free nodes a job gets, in which order its ranks run, and which GPU,
/// NIC and cores each rank is pinned to. Deterministic: the same cluster, busy set and
/// request always give the same placement.

#include <optional>
#include <string>
#include <vector>

#include "haein/topology/cost_model.hpp"
#include "haein/topology/fabric.hpp"
#include "haein/topology/model.hpp"

namespace haein::launcher {

/// Parallel layout, Megatron-style: tensor-parallel ranks vary fastest, then
/// data-parallel, then pipeline stages; expert-parallel groups subdivide data-parallel.
struct Layout {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int ep = 1;
  int size() const { return tp * pp * dp; }
};

/// Parses "tp=8,pp=4,dp=2[,ep=2]"; a missing dimension is 1 except dp, which is
/// derived from `world_size` when left out. Throws InvalidArgument.
Layout parse_layout(const std::string& text, int world_size);

struct PlacementRequest {
  int gpus = 0;           ///< total ranks (`--gpus N`), or 0 with nodes
  int nodes = 0;          ///< `--nodes N`, with gpus_per_node
  int gpus_per_node = 0;  ///< `--gpus-per-node K`; 0: every GPU of a node
  std::optional<Layout> layout;
  bool allow_cross_domain_tp = false;
};

/// The most ranks a request may ask for (a 50,000-GPU cluster is far below).
constexpr long long kMaxRanks = 10'000'000;

/// The ranks `request` asks for: `gpus`, or `nodes` × `gpus_per_node` (0 when neither is
/// given). Throws InvalidArgument past kMaxRanks, without overflowing.
int requested_world(const PlacementRequest& request);

/// Busy nodes, one flag per Cluster::nodes entry.
using BusySet = std::vector<bool>;

/// Reads a busy file: one hostname or hostlist range ("b200-[001-016]") per line, '#'
/// comments, blank lines ignored. Unknown hosts throw ParseError naming file and line.
BusySet parse_busy(const topology::Cluster& cluster, const std::string& text,
                   const std::string& source);
BusySet read_busy_file(const topology::Cluster& cluster, const std::string& path);

struct RankPlacement {
  int rank = 0;
  int node = 0;  ///< index into Cluster::nodes
  std::string host;
  int local_rank = 0;
  int local_world_size = 0;
  int gpu = -1;     ///< GPU index on the node, -1 when the node has fewer GPUs
  std::string nic;  ///< RDMA device, empty when none
  int nic_port = 1;
  int rail = -1;
  int numa = -1;
  std::vector<int> cores;  ///< Linux CPU numbers
  std::string nvlink_domain;
  std::string leaf;
  std::string spine;
  std::optional<int> tp, pp, dp, ep;  ///< coordinates with a layout
};

struct Placement {
  std::string cluster;
  std::vector<RankPlacement> ranks;
  std::optional<Layout> layout;
  std::vector<std::string> warnings;

  int world_size() const { return static_cast<int>(ranks.size()); }
  /// Distinct nodes in rank order of first appearance.
  std::vector<int> nodes() const;
  std::vector<topology::RankSite> sites() const;
};

/// haein's placement: fewest leaves, then spines, best fit; ranks along the switch tree;
/// affinity by PCI/NUMA distance. Throws InvalidArgument when the request cannot be met.
Placement plan_placement(const topology::FabricIndex& fabric, const BusySet& busy,
                         const PlacementRequest& request);

/// One lost node and the spare that takes its ranks.
struct NodeSwap {
  int lost = 0;
  int spare = 0;
  /// "same NVLink domain d1", "same leaf leaf1", "same spine s1", "another spine", or "no
  /// switches described"
  std::string nearness;
};

/// `placement` after a node-for-node replacement (recovery after a lost host).
struct Replacement {
  Placement placement;
  std::vector<NodeSwap> swaps;
};

/// Replaces each `lost` node of `placement` by a free node (not busy, not in the placement)
/// with the same hardware and at least as many slots, the nearest in the fabric: the same
/// NVLink domain, else the same leaf, else the same spine, else any; a node of a
/// multi-node NVLink domain (an NVL72 rack) only by one of the same domain. The lost
/// node's ranks move to the spare as they were (same GPUs, NICs, cores); every other rank
/// keeps its place. nullopt when some lost node has no such spare (plan again then).
std::optional<Replacement> replace_nodes(const topology::FabricIndex& fabric, const BusySet& busy,
                                         const Placement& placement, const std::vector<int>& lost);

/// The orders users get today from a hostfile of the free nodes sorted by hostname.
enum class NaiveOrder {
  kMapBySlot,  ///< mpirun --map-by slot: fill each node, then the next
  kMapByNode,  ///< mpirun --map-by node: round-robin over the nodes
};
std::string_view to_string(NaiveOrder order);
Placement naive_placement(const topology::FabricIndex& fabric, const BusySet& busy,
                          const PlacementRequest& request, NaiveOrder order);

}  // namespace haein::launcher
