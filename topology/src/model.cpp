#include "haein/topology/model.hpp"

namespace haein::topology {

int Cluster::gpu_count() const {
  int count = 0;
  for (const Node& node : nodes) count += static_cast<int>(node.hardware.gpus.size());
  return count;
}

bool Cluster::has_sharp() const {
  for (const Switch& s : switches)
    if (s.sharp) return true;
  return false;
}

int Cluster::find_node(const std::string& hostname) const {
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].hostname == hostname) return static_cast<int>(i);
  }
  return -1;
}

std::string Cluster::nvlink_domain_of(const Node& node) const {
  for (const NvlinkDomain& domain : nvlink_domains) {
    for (const std::string& member : domain.nodes) {
      if (member == node.hostname) return domain.name;
    }
  }
  if (node.hardware.nvlink == NvlinkScope::kNode && node.hardware.gpus.size() > 1) {
    return node.hostname;
  }
  return {};
}

const Switch* Cluster::leaf_of(const std::string& hostname) const {
  for (const Switch& s : switches) {
    if (s.level != SwitchLevel::kLeaf) continue;
    for (const std::string& member : s.nodes) {
      if (member == hostname) return &s;
    }
  }
  return nullptr;
}

const Switch* Cluster::parent_of(const std::string& switch_name) const {
  for (const Switch& s : switches) {
    for (const std::string& child : s.children) {
      if (child == switch_name) return &s;
    }
  }
  return nullptr;
}

std::string_view to_string(SwitchLevel level) {
  switch (level) {
    case SwitchLevel::kLeaf:
      return "leaf";
    case SwitchLevel::kSpine:
      return "spine";
    case SwitchLevel::kCore:
      return "core";
  }
  return "leaf";
}

std::string_view to_string(NvlinkScope scope) {
  switch (scope) {
    case NvlinkScope::kNone:
      return "none";
    case NvlinkScope::kNode:
      return "node";
    case NvlinkScope::kRack:
      return "rack";
  }
  return "none";
}

std::string_view to_string(LinkLayer layer) {
  return layer == LinkLayer::kEthernet ? "ethernet" : "infiniband";
}

}  // namespace haein::topology
