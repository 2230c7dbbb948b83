#pragma once
// The stages of haein's placement (plan.cpp), each on its own so that tests can check it:
// collect bins -> choose spines -> choose leaves and nodes -> order GPUs by rail -> check
// the TP groups.

#include <string>
#include <vector>

#include "placement_internal.hpp"

namespace haein::launcher::detail {

/// A bin of capacity (a leaf, an NVLink domain) and what is taken from one.
struct Bin {
  int id = 0;
  long capacity = 0;
};
struct Take {
  int id = 0;
  long amount = 0;
};

/// Chooses bins whose capacities cover `need`: the fewest bins, and among those the set
/// with the least capacity left over (best fit, as Slurm's tree plugin does). All bins but
/// the smallest chosen one are taken whole; it takes the remainder (so when every capacity
/// and the need are multiples of some g, so is every take). Empty when the bins cannot
/// cover the need. Deterministic: equal capacities go by the lowest id.
std::vector<Take> best_fit(std::vector<Bin> bins, long need);

/// What one unit of the request is: a GPU (with --gpus) or a node (with --nodes), and the
/// tensor-parallel size whose groups must stay inside an NVLink domain.
struct Units {
  bool nodes_mode = false;
  long need = 0;
  int tp = 1;  ///< 1: no TP constraint (no layout, tp=1, or crossing allowed)
};

/// The free capacity of one NVLink domain within a leaf, or of a node in no domain.
struct DomainBin {
  int leaf = 0;  ///< leaf index, or leaf_count() for nodes on no leaf
  int domain = -1;
  std::vector<int> nodes;  ///< free qualifying nodes, in tree order
  std::vector<long> node_capacity;
  /// What may be taken from the front of `nodes`: with a TP constraint, only amounts
  /// that hold whole TP groups (a multiple of tp GPUs, or of the nodes that hold them).
  long capacity = 0;
};

/// Stage 1: the free capacity of every NVLink domain of every leaf, in tree order. With a
/// TP constraint a domain offers whole TP groups only: a node in no domain offers none.
std::vector<DomainBin> collect_bins(const topology::FabricIndex& fabric, const BusySet& busy,
                                    const PlacementRequest& request, const Units& units);

/// The capacity of each leaf (its domain bins summed); id = leaf, leaf_count() for nodes
/// on no leaf. Leaves with nothing free are left out.
std::vector<Bin> leaf_bins(const topology::FabricIndex& fabric, const std::vector<DomainBin>& bins);

/// How the spine of a job that fits under one spine is chosen.
enum class SpineRule {
  /// The spine with the least free capacity that can hold the job (best fit of spines),
  /// then the best fit of leaves under it.
  kSpineFirst,
  /// The spine whose best fit of leaves leaves the least free capacity in the chosen
  /// leaves (Slurm's tree plugin for a job that fits one leaf: the best-fitting leaf of
  /// the cluster); ties go to the spine with less free capacity.
  kLeafFirst,
};
std::string_view to_string(SpineRule rule);

/// The rule haein uses: see docs/placement.md for the fragmentation measured with both.
constexpr SpineRule kDefaultSpineRule = SpineRule::kLeafFirst;

/// Stage 2: the leaves the job may take, all under the fewest spines that hold the
/// fewest leaves covering `need`. Nodes on no leaf, and leaves without a spine, count as
/// a spine of their own.
std::vector<Bin> choose_spines(const topology::FabricIndex& fabric, const std::vector<Bin>& leaves,
                               long need, SpineRule rule);

/// A node chosen and the units taken from it.
struct ChosenNode {
  int node = 0;
  long units = 0;
};

/// Stage 3: within each leaf taken, NVLink domains by best fit; within a domain, nodes in
/// order. The result is in tree order.
std::vector<ChosenNode> choose_nodes(const topology::FabricIndex& fabric,
                                     const std::vector<DomainBin>& bins,
                                     const std::vector<Take>& leaf_takes);

/// Stage 4: the GPUs of each chosen node in the order of their NICs' rails (local rank i
/// on rail i on every node); `nodes_mode` takes every usable GPU of a node.
std::vector<NodeRanks> order_gpus_by_rail(const topology::Cluster& cluster,
                                          const std::vector<ChosenNode>& chosen,
                                          const PlacementRequest& request, bool nodes_mode);

/// Stage 5: the tensor-parallel groups (consecutive blocks of `tp` ranks) whose ranks are
/// not all in one NVLink domain (a rank in no domain is in none; a group of one never
/// crosses).
int crossing_tp_groups(const Placement& placement, int tp);

/// plan_placement with the spine rule given (the benchmarks compare the rules).
Placement plan_placement(const topology::FabricIndex& fabric, const BusySet& busy,
                         const PlacementRequest& request, SpineRule rule);

}  // namespace haein::launcher::detail
