#include "haein/topology/fabric.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace haein::topology {

namespace {

// Name -> index in cluster.switches; the first entry of a name wins, as everywhere else.
std::unordered_map<std::string, int> index_switches(const Cluster& cluster) {
  std::unordered_map<std::string, int> index;
  index.reserve(cluster.switches.size());
  for (std::size_t i = 0; i < cluster.switches.size(); ++i)
    index.emplace(cluster.switches[i].name, static_cast<int>(i));
  return index;
}

// Parent of each switch: the first switch (in file order) above the leaf level that lists
// it, or -1.
std::vector<int> find_parents(const Cluster& cluster,
                              const std::unordered_map<std::string, int>& index) {
  std::vector<int> parent(cluster.switches.size(), -1);
  for (std::size_t i = 0; i < cluster.switches.size(); ++i) {
    const Switch& s = cluster.switches[i];
    if (s.level == SwitchLevel::kLeaf) continue;
    for (const std::string& child : s.children) {
      auto found = index.find(child);
      if (found != index.end() && parent[found->second] < 0 &&
          found->second != static_cast<int>(i)) {
        parent[found->second] = static_cast<int>(i);
      }
    }
  }
  return parent;
}

}  // namespace

FabricIndex::FabricIndex(const Cluster& cluster)
    : cluster_(&cluster),
      leaf_of_node_(cluster.nodes.size(), -1),
      domain_of_node_(cluster.nodes.size(), -1) {
  std::unordered_map<std::string, int> node_index;
  node_index.reserve(cluster.nodes.size());
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    node_index.emplace(cluster.nodes[i].hostname, static_cast<int>(i));
  }
  const std::unordered_map<std::string, int> switch_index = index_switches(cluster);
  const std::vector<int> parent = find_parents(cluster, switch_index);
  const std::vector<int> rail_leaf = index_leaves(node_index);
  index_leaf_members(rail_leaf);
  index_spines(switch_index, parent);
  index_cores(parent);
  index_planes();
  index_domains(node_index);
}

std::vector<int> FabricIndex::index_leaves(const std::unordered_map<std::string, int>& node_index) {
  const Cluster& cluster = *cluster_;
  const auto& switches = cluster.switches;
  // Per node: the leaf serving all its rails, and the leaf of each rail (first wins).
  stride_ = std::max(cluster.rails, 1);
  for (const Switch& s : switches) {
    if (s.level == SwitchLevel::kLeaf && s.rail >= 0) {
      has_rail_leaves_ = true;
      stride_ = std::max(stride_, s.rail + 1);
    }
  }
  const std::size_t stride = static_cast<std::size_t>(stride_);
  std::vector<int> all_rails_leaf(cluster.nodes.size(), -1);
  std::vector<int> rail_leaf(has_rail_leaves_ ? cluster.nodes.size() * stride : 0, -1);
  for (std::size_t i = 0; i < switches.size(); ++i) {
    const Switch& s = switches[i];
    if (s.level != SwitchLevel::kLeaf) continue;
    for (const std::string& host : s.nodes) {
      auto found = node_index.find(host);
      if (found == node_index.end()) continue;
      int& slot = s.rail < 0 ? all_rails_leaf[found->second]
                             : rail_leaf[found->second * stride + static_cast<std::size_t>(s.rail)];
      if (slot < 0) slot = static_cast<int>(i);
    }
  }
  // A node's primary leaf switch: the one serving all rails, else that of its lowest rail.
  std::vector<int> primary(cluster.nodes.size(), -1);
  for (std::size_t n = 0; n < cluster.nodes.size(); ++n) {
    primary[n] = all_rails_leaf[n];
    for (std::size_t r = 0; primary[n] < 0 && has_rail_leaves_ && r < stride; ++r)
      primary[n] = rail_leaf[n * stride + r];
  }

  // Leaves in file order: every all-rails leaf, and every rail leaf that is some node's
  // primary (or lists no known node); the other rail leaves join their nodes' leaf.
  for (std::size_t i = 0; i < switches.size(); ++i) {
    const Switch& s = switches[i];
    if (s.level != SwitchLevel::kLeaf) continue;
    bool own = s.rail < 0;
    int first_known = -1;
    for (const std::string& host : s.nodes) {
      auto found = node_index.find(host);
      if (found == node_index.end()) continue;
      if (first_known < 0) first_known = found->second;
      if (primary[found->second] == static_cast<int>(i)) own = true;
    }
    if (!own && first_known >= 0) continue;  // a member of another leaf, done below
    const int leaf = static_cast<int>(leaf_names_.size());
    leaf_names_.push_back(s.name);
    leaf_primary_.push_back(static_cast<int>(i));
    nodes_of_leaf_.emplace_back();
    for (const std::string& host : s.nodes) {
      auto found = node_index.find(host);
      if (found == node_index.end() || primary[found->second] != static_cast<int>(i) ||
          leaf_of_node_[found->second] >= 0) {
        continue;
      }
      leaf_of_node_[found->second] = leaf;
      nodes_of_leaf_.back().push_back(found->second);
    }
  }
  return rail_leaf;
}

void FabricIndex::index_leaf_members(const std::vector<int>& rail_leaf) {
  const auto& switches = cluster_->switches;
  const std::size_t stride = static_cast<std::size_t>(stride_);
  // The member serving each rail of a leaf: the leaf itself when it serves all rails,
  // else the rail leaves of its first node.
  leaf_member_.assign(leaf_names_.size() * stride, -1);
  for (std::size_t leaf = 0; leaf < leaf_names_.size(); ++leaf) {
    const int head = leaf_primary_[leaf];
    if (switches[head].rail < 0) {
      std::fill_n(leaf_member_.begin() + static_cast<std::ptrdiff_t>(leaf * stride), stride, head);
      continue;
    }
    leaf_member_[leaf * stride + static_cast<std::size_t>(switches[head].rail)] = head;
    if (nodes_of_leaf_[leaf].empty()) continue;
    const std::size_t first = static_cast<std::size_t>(nodes_of_leaf_[leaf].front());
    for (std::size_t r = 0; r < stride; ++r) {
      if (rail_leaf[first * stride + r] >= 0)
        leaf_member_[leaf * stride + r] = rail_leaf[first * stride + r];
    }
  }
}

void FabricIndex::index_spines(const std::unordered_map<std::string, int>& switch_index,
                               const std::vector<int>& parent) {
  const auto& switches = cluster_->switches;
  const std::size_t stride = static_cast<std::size_t>(stride_);
  // Spines: the switches above leaf switches, numbered as they first appear as a parent
  // in file order (the nearest ancestor at spine level or above: a leaf may hang directly
  // off a core switch in small trees).
  std::vector<int> spine_of_switch(switches.size(), -1);
  for (std::size_t i = 0; i < switches.size(); ++i) {
    const Switch& s = switches[i];
    if (s.level == SwitchLevel::kLeaf) continue;
    for (const std::string& child : s.children) {
      auto found = switch_index.find(child);
      if (found == switch_index.end() || switches[found->second].level != SwitchLevel::kLeaf ||
          parent[found->second] != static_cast<int>(i)) {
        continue;
      }
      if (spine_of_switch[i] < 0) {
        spine_of_switch[i] = static_cast<int>(spine_switch_.size());
        spine_switch_.push_back(static_cast<int>(i));
      }
    }
  }
  const auto spine_above = [&](int leaf_switch) {
    return leaf_switch < 0 || parent[leaf_switch] < 0 ? -1 : spine_of_switch[parent[leaf_switch]];
  };
  spine_of_leaf_.assign(leaf_names_.size(), -1);
  spine_of_leaf_rail_.assign(leaf_names_.size() * stride, -1);
  for (std::size_t leaf = 0; leaf < leaf_names_.size(); ++leaf) {
    spine_of_leaf_[leaf] = spine_above(leaf_primary_[leaf]);
    for (std::size_t r = 0; r < stride; ++r) {
      const int member = leaf_member_[leaf * stride + r];
      spine_of_leaf_rail_[leaf * stride + r] =
          member < 0 ? spine_of_leaf_[leaf] : spine_above(member);
    }
  }
}

void FabricIndex::index_cores(const std::vector<int>& parent) {
  const auto& switches = cluster_->switches;
  // Cores: the switches above spines, numbered as they first appear as a parent.
  std::vector<int> core_of_switch(switches.size(), -1);
  core_of_spine_.assign(spine_switch_.size(), -1);
  for (std::size_t spine = 0; spine < spine_switch_.size(); ++spine) {
    const int above = parent[spine_switch_[spine]];
    if (above < 0) continue;
    if (core_of_switch[above] < 0) {
      core_of_switch[above] = static_cast<int>(core_switch_.size());
      core_switch_.push_back(above);
    }
    core_of_spine_[spine] = core_of_switch[above];
  }
  // Cores in file order rather than in the order their spines were met.
  std::vector<int> by_file = core_switch_;
  std::sort(by_file.begin(), by_file.end());
  if (by_file != core_switch_) {
    for (std::size_t core = 0; core < by_file.size(); ++core)
      core_of_switch[by_file[core]] = static_cast<int>(core);
    core_switch_ = by_file;
    for (std::size_t spine = 0; spine < spine_switch_.size(); ++spine) {
      const int above = parent[spine_switch_[spine]];
      if (above >= 0) core_of_spine_[spine] = core_of_switch[above];
    }
  }
}

void FabricIndex::index_planes() {
  const auto& switches = cluster_->switches;
  for (const Switch& s : switches) {
    if (s.rail < 0 || s.plane < 0) continue;
    if (plane_of_rail_.size() <= static_cast<std::size_t>(s.rail))
      plane_of_rail_.resize(s.rail + 1, -1);
    if (plane_of_rail_[s.rail] < 0) plane_of_rail_[s.rail] = s.plane;
  }
}

void FabricIndex::index_domains(const std::unordered_map<std::string, int>& node_index) {
  const Cluster& cluster = *cluster_;
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

const Switch& FabricIndex::leaf_switch(int leaf, int rail) const {
  int member = -1;
  if (rail >= 0 && rail < stride_)
    member = leaf_member_[static_cast<std::size_t>(leaf) * stride_ + rail];
  return cluster_->switches[member >= 0 ? member : leaf_primary_[leaf]];
}

FabricIndex::TreeKey FabricIndex::tree_key(int node) const {
  const int leaf = leaf_of(node);
  // Nodes on no leaf sort after all leaves; nodes without a domain use their own index.
  const int domain = domain_of(node);
  return {spine_of_leaf(leaf) < 0 ? spine_count() : spine_of_leaf(leaf),
          leaf < 0 ? leaf_count() : leaf, domain < 0 ? domain_count() + node : domain, node};
}

std::vector<SwitchLinks> count_switch_links(const Cluster& cluster) {
  const auto& switches = cluster.switches;
  const std::unordered_map<std::string, int> index = index_switches(cluster);
  const std::vector<int> parent = find_parents(cluster, index);
  std::vector<SwitchLinks> links(switches.size());
  const long long all_rails = std::max(cluster.rails, 1);
  // Level by level, so that a switch's children are counted before it.
  for (int level = 0; level <= static_cast<int>(SwitchLevel::kCore); ++level) {
    for (std::size_t i = 0; i < switches.size(); ++i) {
      const Switch& s = switches[i];
      if (static_cast<int>(s.level) != level) continue;
      SwitchLinks& own = links[i];
      if (s.level == SwitchLevel::kLeaf) {
        own.down = static_cast<long long>(s.nodes.size()) * (s.rail >= 0 ? 1 : all_rails);
      } else {
        for (const std::string& child : s.children) {
          auto found = index.find(child);
          if (found != index.end() && parent[found->second] == static_cast<int>(i) &&
              switches[found->second].level < s.level) {
            own.down += links[found->second].up;
          }
        }
      }
      if (parent[i] >= 0 && s.oversubscription > 0) {
        // The small slack keeps 36 / 1.5 at 24 where the division rounds up a hair.
        own.up = static_cast<long long>(
            std::ceil(static_cast<double>(own.down) / s.oversubscription - 1e-9));
      }
    }
  }
  return links;
}

}  // namespace haein::topology
