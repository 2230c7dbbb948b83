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

/// Names usable as "preset:NAME": dgx-h100, dgx-b200, gb200-nvl72, haein.
std::vector<std::string> preset_names();

/// The preset as a validated cluster; throws InvalidArgument listing the known names.
Cluster load_preset(const std::string& name);

}  // namespace haein::topology
