#pragma once
/// @file
/// An index of a cluster's fabric for fast questions: which leaf, spine, core and NVLink
/// domain a node sits in, in the order of the switch tree. Built once from a Cluster;
/// placement and the cost model ask it millions of times.

#include <string>
#include <unordered_map>
#include <vector>

#include "haein/topology/model.hpp"

namespace haein::topology {

class FabricIndex {
 public:
  /// Keeps a reference to `cluster`, which must outlive the index.
  explicit FabricIndex(const Cluster& cluster);
  /// A temporary cluster would be gone before the index is used.
  explicit FabricIndex(Cluster&&) = delete;

  const Cluster& cluster() const { return *cluster_; }
  int node_count() const { return static_cast<int>(leaf_of_node_.size()); }

  /// Leaf index of a node, or -1 when the node is on no leaf. Nodes on no leaf are treated
  /// as sharing one unnamed leaf by placement. Leaves are numbered in file order; a
  /// unit's per-rail leaves (Switch::rail >= 0) count as one leaf, known by the name of
  /// the member of its lowest rail, so that "same leaf" means one hop apart on every rail.
  int leaf_of(int node) const { return leaf_of_node_[node]; }
  /// Spine index above a leaf (above its lowest rail's member), or -1.
  int spine_of_leaf(int leaf) const { return leaf < 0 ? -1 : spine_of_leaf_[leaf]; }
  int spine_of(int node) const { return spine_of_leaf(leaf_of(node)); }
  /// The spine (group) that `rail` of a leaf reaches: the rail's own spine group where
  /// spines are per rail, else the leaf's single spine; -1 when none.
  int spine_of_leaf(int leaf, int rail) const {
    if (leaf < 0) return -1;
    if (rail < 0 || rail >= stride_) return spine_of_leaf_[leaf];
    return spine_of_leaf_rail_[static_cast<std::size_t>(leaf) * stride_ + rail];
  }
  int spine_of(int node, int rail) const { return spine_of_leaf(leaf_of(node), rail); }
  /// Core index above a spine, or -1 (two-tier fabrics have none).
  int core_of_spine(int spine) const { return spine < 0 ? -1 : core_of_spine_[spine]; }
  int core_of(int node) const { return core_of_spine(spine_of(node)); }
  int core_of(int node, int rail) const { return core_of_spine(spine_of(node, rail)); }
  /// NVLink domain index of a node, or -1 when its GPUs reach no other GPU over NVLink.
  int domain_of(int node) const { return domain_of_node_[node]; }

  int leaf_count() const { return static_cast<int>(leaf_names_.size()); }
  int spine_count() const { return static_cast<int>(spine_switch_.size()); }
  int core_count() const { return static_cast<int>(core_switch_.size()); }
  int domain_count() const { return static_cast<int>(domain_names_.size()); }
  const std::string& leaf_name(int leaf) const { return leaf_names_[leaf]; }
  const std::string& spine_name(int spine) const { return spine_switch(spine).name; }
  const std::string& core_name(int core) const { return core_switch(core).name; }
  const std::string& domain_name(int domain) const { return domain_names_[domain]; }
  /// Nodes under a leaf, in the order the leaf lists them.
  const std::vector<int>& nodes_of_leaf(int leaf) const { return nodes_of_leaf_[leaf]; }

  /// The switch entries behind the indices, for their link speed, oversubscription, radix
  /// and count. leaf_switch gives the member of leaf `leaf` (>= 0) that serves `rail` (the
  /// leaf itself when it serves all rails, or for a rail it has no member for).
  const Switch& leaf_switch(int leaf, int rail) const;
  const Switch& spine_switch(int spine) const { return cluster_->switches[spine_switch_[spine]]; }
  const Switch& core_switch(int core) const { return cluster_->switches[core_switch_[core]]; }
  /// True when some leaf serves a single rail (a rail-optimized fabric drawn per rail).
  bool has_rail_leaves() const { return has_rail_leaves_; }
  /// The plane that the switches serving `rail` belong to, or -1 when none says.
  int plane_of_rail(int rail) const {
    return rail < 0 || rail >= static_cast<int>(plane_of_rail_.size()) ? -1 : plane_of_rail_[rail];
  }

  /// Key that sorts nodes along the switch tree: spine, leaf, NVLink domain, node.
  struct TreeKey {
    int spine, leaf, domain, node;
    auto operator<=>(const TreeKey&) const = default;
  };
  TreeKey tree_key(int node) const;

 private:
  // The constructor's steps, in order. index_leaves returns each node's leaf switch per
  // rail (node * stride + rail) for index_leaf_members.
  std::vector<int> index_leaves(const std::unordered_map<std::string, int>& node_index);
  void index_leaf_members(const std::vector<int>& rail_leaf);
  void index_spines(const std::unordered_map<std::string, int>& switch_index,
                    const std::vector<int>& parent);
  void index_cores(const std::vector<int>& parent);
  void index_planes();
  void index_domains(const std::unordered_map<std::string, int>& node_index);

  const Cluster* cluster_;
  int stride_ = 1;  ///< rails indexed per leaf: max(rails, highest leaf rail + 1, 1)
  bool has_rail_leaves_ = false;
  std::vector<int> leaf_of_node_;
  std::vector<int> spine_of_leaf_;
  std::vector<int> spine_of_leaf_rail_;  ///< leaf * stride_ + rail
  std::vector<int> leaf_member_;         ///< leaf * stride_ + rail -> switch, -1: none
  std::vector<int> leaf_primary_;        ///< leaf -> switch
  std::vector<int> core_of_spine_;
  std::vector<int> domain_of_node_;
  std::vector<int> spine_switch_;  ///< spine -> index in cluster.switches
  std::vector<int> core_switch_;
  std::vector<int> plane_of_rail_;
  std::vector<std::string> leaf_names_;
  std::vector<std::string> domain_names_;
  std::vector<std::vector<int>> nodes_of_leaf_;
};

/// Links at one switch entry, summed over its `count` switches.
struct SwitchLinks {
  long long down = 0;  ///< to nodes (leaves) or to the switches it lists
  long long up = 0;    ///< to its parent; 0 at the top of the tree
};

/// The links of every entry of cluster.switches (same order), by the rules of
/// docs/cluster-format.md: a leaf has one down-link per node and rail it serves (a leaf
/// without `rail` serves all the cluster's rails); a spine or core has the up-links of the
/// switches it lists; a switch with a parent has ceil(down / oversubscription) up-links.
std::vector<SwitchLinks> count_switch_links(const Cluster& cluster);

}  // namespace haein::topology
