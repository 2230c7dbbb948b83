#pragma once
/// @file
/// Node types and clusters embedded in the binary (topology/presets/*.yaml).

#include <map>
#include <string>
#include <vector>

#include "haein/topology/model.hpp"

namespace haein::topology {

/// Built-in node types: dgx-h100, dgx-b200, gb200-nvl72 (one compute tray).
const std::map<std::string, NodeHardware>& builtin_node_types();

/// The hardware of a node type: the cluster's own type of that name, else the built-in
/// one; nullptr when neither exists.
const NodeHardware* find_node_type(const Cluster& cluster, const std::string& name);

/// True when the node names a node type and its hardware is exactly that type's.
bool matches_node_type(const Cluster& cluster, const Node& node);

/// Names usable as "preset:NAME": dgx-h100, dgx-b200, gb200-nvl72, haein,
/// dgx-b200-superpod-1su/-4su/-16su, nvl72-factory-50k (docs/presets.md).
std::vector<std::string> preset_names();

/// The preset as a validated cluster; throws InvalidArgument listing the known names.
Cluster load_preset(const std::string& name);

}  // namespace haein::topology
