// Writes the cluster as JSON for scripts: the YAML schema with every host listed on its
// own (no ranges). Nodes equal to their node type reference it, as in YAML, which keeps
// a 4,096-node file small and quick to read; other nodes carry their hardware inline.
#include <nlohmann/json.hpp>

#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"
#include "haein/topology/presets.hpp"
#include "yaml_schema.hpp"

namespace haein::topology {

namespace {

nlohmann::ordered_json hardware_json(const NodeHardware& hw) {
  nlohmann::ordered_json out;
  out["gpu_model"] = hw.gpu_model;
  out["compute_capability"] = hw.compute_capability;
  out["nvlink"] = std::string(to_string(hw.nvlink));
  out["nvlink_gbps"] = hw.nvlink_gbps;
  if (hw.placeholder_pci) out["placeholder_pci"] = true;
  out["numa"] = nlohmann::ordered_json::array();
  for (const NumaDomain& numa : hw.numa) {
    out["numa"].push_back({{"id", numa.id}, {"cpus", format_cpu_list(numa.cpus)}});
  }
  out["gpus"] = nlohmann::ordered_json::array();
  for (const Gpu& gpu : hw.gpus) {
    out["gpus"].push_back({{"index", gpu.index},
                           {"pci", gpu.pci_bus_id},
                           {"numa", gpu.numa},
                           {"pci_switch", gpu.pci_switch}});
  }
  out["nics"] = nlohmann::ordered_json::array();
  for (const Nic& nic : hw.nics) {
    out["nics"].push_back({{"name", nic.name},
                           {"port", nic.port},
                           {"speed_gbps", nic.speed_gbps},
                           {"link", std::string(to_string(nic.link_layer))},
                           {"pci", nic.pci_bus_id},
                           {"numa", nic.numa},
                           {"pci_switch", nic.pci_switch},
                           {"rail", nic.rail}});
  }
  return out;
}

}  // namespace

std::string write_cluster_json(const Cluster& cluster) {
  nlohmann::ordered_json root;
  root["version"] = kClusterFormatVersion;
  root["name"] = cluster.name;
  root["rails"] = cluster.rails;
  if (!cluster.node_types.empty()) {
    root["node_types"] = nlohmann::ordered_json::object();
    for (const auto& [name, hardware] : cluster.node_types)
      root["node_types"][name] = hardware_json(hardware);
  }
  root["nodes"] = nlohmann::ordered_json::array();
  for (const Node& node : cluster.nodes) {
    nlohmann::ordered_json entry;
    entry["hostname"] = node.hostname;
    if (!node.type.empty()) entry["node_type"] = node.type;
    if (node.slots > 0) entry["slots"] = node.slots;
    if (!matches_node_type(cluster, node)) entry.update(hardware_json(node.hardware));
    root["nodes"].push_back(std::move(entry));
  }
  if (!cluster.nvlink_domains.empty()) {
    root["nvlink_domains"] = nlohmann::ordered_json::array();
    for (const NvlinkDomain& domain : cluster.nvlink_domains) {
      root["nvlink_domains"].push_back({{"name", domain.name}, {"nodes", domain.nodes}});
    }
  }
  if (!cluster.switches.empty()) {
    root["switches"] = nlohmann::ordered_json::array();
    for (const Switch& s : cluster.switches) {
      nlohmann::ordered_json entry{{"name", s.name}, {"level", std::string(to_string(s.level))}};
      if (!s.nodes.empty()) entry["nodes"] = s.nodes;
      if (!s.children.empty()) entry["switches"] = s.children;
      if (s.link_gbps > 0) entry["link_gbps"] = s.link_gbps;
      if (s.oversubscription != 1.0) entry["oversubscription"] = s.oversubscription;
      if (s.rail != -1) entry["rail"] = s.rail;
      if (s.radix != 0) entry["radix"] = s.radix;
      if (s.count != 1) entry["count"] = s.count;
      if (s.plane != -1) entry["plane"] = s.plane;
      if (s.sharp) entry["sharp"] = true;
      root["switches"].push_back(std::move(entry));
    }
  }
  if (!cluster.block_sizes.empty()) root["block_sizes"] = cluster.block_sizes;
  if (!cluster.cost_model.empty()) root["cost_model"] = cluster.cost_model;
  return root.dump(1) + "\n";
}

}  // namespace haein::topology
