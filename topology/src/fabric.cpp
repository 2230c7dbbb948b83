#include "haein/topology/fabric.hpp"

#include <unordered_map>

namespace haein::topology {

FabricIndex::FabricIndex(const Cluster& cluster)
    : cluster_(&cluster),
      leaf_of_node_(cluster.nodes.size(), -1),
      domain_of_node_(cluster.nodes.size(), -1) {
  std::unordered_map<std::string, int> node_index;
  node_index.reserve(cluster.nodes.size());
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    node_index.emplace(cluster.nodes[i].hostname, static_cast<int>(i));
  }

  std::unordered_map<std::string, int> leaf_index;
  for (const Switch& s : cluster.switches) {
    if (s.level != SwitchLevel::kLeaf) continue;
    const int leaf = static_cast<int>(leaf_names_.size());
    leaf_index.emplace(s.name, leaf);
    leaf_names_.push_back(s.name);
    nodes_of_leaf_.emplace_back();
    for (const std::string& host : s.nodes) {
      auto found = node_index.find(host);
      if (found == node_index.end() || leaf_of_node_[found->second] >= 0) continue;
      leaf_of_node_[found->second] = leaf;
      nodes_of_leaf_.back().push_back(found->second);
    }
  }
  // The spine of a leaf is its nearest ancestor at spine level or above (a leaf may hang
  // directly off a core switch in small trees).
  spine_of_leaf_.assign(leaf_names_.size(), -1);
  std::unordered_map<std::string, int> spine_index;
  for (const Switch& s : cluster.switches) {
    if (s.level == SwitchLevel::kLeaf) continue;
    for (const std::string& child : s.children) {
      auto leaf = leaf_index.find(child);
      if (leaf == leaf_index.end() || spine_of_leaf_[leaf->second] >= 0) continue;
      auto [it, added] = spine_index.emplace(s.name, static_cast<int>(spine_names_.size()));
      if (added) spine_names_.push_back(s.name);
      spine_of_leaf_[leaf->second] = it->second;
    }
  }

  std::unordered_map<std::string, int> domain_index;
  for (const NvlinkDomain& domain : cluster.nvlink_domains) {
    const int index = static_cast<int>(domain_names_.size());
    domain_index.emplace(domain.name, index);
    domain_names_.push_back(domain.name);
    for (const std::string& host : domain.nodes) {
      auto found = node_index.find(host);
      if (found != node_index.end() && domain_of_node_[found->second] < 0) {
        domain_of_node_[found->second] = index;
      }
    }
  }
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    const Node& node = cluster.nodes[i];
    if (domain_of_node_[i] >= 0) continue;
    if (node.hardware.nvlink != NvlinkScope::kNone && node.hardware.gpus.size() > 1) {
      domain_of_node_[i] = static_cast<int>(domain_names_.size());
      domain_names_.push_back(node.hostname);
    }
  }
}

FabricIndex::TreeKey FabricIndex::tree_key(int node) const {
  const int leaf = leaf_of(node);
  // Nodes on no leaf sort after all leaves; nodes without a domain use their own index.
  const int domain = domain_of(node);
  return {spine_of_leaf(leaf) < 0 ? spine_count() : spine_of_leaf(leaf),
          leaf < 0 ? leaf_count() : leaf, domain < 0 ? domain_count() + node : domain, node};
}

}  // namespace haein::topology
