#pragma once
/// @file
/// An index of a cluster's fabric for fast questions: which leaf, spine and NVLink domain
/// a node sits in, in the order of the switch tree. Built once from a Cluster; placement
/// and the cost model ask it millions of times.

#include <string>
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

  /// Leaf index of a node (position among leaves in the file), or -1 when the node is on
  /// no leaf. Nodes on no leaf are treated as sharing one unnamed leaf by placement.
  int leaf_of(int node) const { return leaf_of_node_[node]; }
  /// Spine index above a leaf, or -1.
  int spine_of_leaf(int leaf) const { return leaf < 0 ? -1 : spine_of_leaf_[leaf]; }
  int spine_of(int node) const { return spine_of_leaf(leaf_of(node)); }
  /// NVLink domain index of a node, or -1 when its GPUs reach no other GPU over NVLink.
  int domain_of(int node) const { return domain_of_node_[node]; }

  int leaf_count() const { return static_cast<int>(leaf_names_.size()); }
  int spine_count() const { return static_cast<int>(spine_names_.size()); }
  int domain_count() const { return static_cast<int>(domain_names_.size()); }
  const std::string& leaf_name(int leaf) const { return leaf_names_[leaf]; }
  const std::string& spine_name(int spine) const { return spine_names_[spine]; }
  const std::string& domain_name(int domain) const { return domain_names_[domain]; }
  /// Nodes under a leaf, in the order the leaf lists them.
  const std::vector<int>& nodes_of_leaf(int leaf) const { return nodes_of_leaf_[leaf]; }

  /// Key that sorts nodes along the switch tree: spine, leaf, NVLink domain, node.
  struct TreeKey {
    int spine, leaf, domain, node;
    auto operator<=>(const TreeKey&) const = default;
  };
  TreeKey tree_key(int node) const;

 private:
  const Cluster* cluster_;
  std::vector<int> leaf_of_node_;
  std::vector<int> spine_of_leaf_;
  std::vector<int> domain_of_node_;
  std::vector<std::string> leaf_names_;
  std::vector<std::string> spine_names_;
  std::vector<std::string> domain_names_;
  std::vector<std::vector<int>> nodes_of_leaf_;
};

}  // namespace haein::topology
