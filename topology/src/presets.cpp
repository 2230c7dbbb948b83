#include "haein/topology/presets.hpp"

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/validate.hpp"
#include "presets_data.hpp"
#include "yaml_schema.hpp"

namespace haein::topology {

namespace {
constexpr std::string_view kNodeTypesFile = "node-types";
}

const std::map<std::string, NodeHardware>& builtin_node_types() {
  static const std::map<std::string, NodeHardware> types = [] {
    for (const EmbeddedFile& file : embedded_presets()) {
      if (file.name == kNodeTypesFile) return read_node_types(file.text, "preset:node-types");
    }
    return std::map<std::string, NodeHardware>{};
  }();
  return types;
}

const NodeHardware* find_node_type(const Cluster& cluster, const std::string& name) {
  if (auto it = cluster.node_types.find(name); it != cluster.node_types.end()) return &it->second;
  if (auto it = builtin_node_types().find(name); it != builtin_node_types().end())
    return &it->second;
  return nullptr;
}

bool matches_node_type(const Cluster& cluster, const Node& node) {
  if (node.type.empty()) return false;
  const NodeHardware* hardware = find_node_type(cluster, node.type);
  return hardware != nullptr && *hardware == node.hardware;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : embedded_presets()) {
    if (file.name != kNodeTypesFile) names.emplace_back(file.name);
  }
  return names;
}

Cluster load_preset(const std::string& name) {
  for (const EmbeddedFile& file : embedded_presets()) {
    if (file.name != kNodeTypesFile && file.name == name) {
      Cluster cluster = read_cluster_yaml(file.text, "preset:" + name);
      require_valid(cluster);
      return cluster;
    }
  }
  std::string known;
  for (const std::string& preset : preset_names()) known += (known.empty() ? "" : ", ") + preset;
  throw InvalidArgument("unknown preset '" + name + "'; known presets: " + known);
}

}  // namespace haein::topology
