// Writes the haein cluster YAML: node types once, nodes grouped into host list ranges.
#include <yaml-cpp/yaml.h>

#include <charconv>

#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"
#include "haein/topology/presets.hpp"
#include "yaml_schema.hpp"

namespace haein::topology {

namespace {

// The shortest text that reads back as the same double: 400, not 400.000000; 1.2857142857142858
// for 9/7, not 1.28571.
std::string number_text(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

void emit_hardware(YAML::Emitter& out, const NodeHardware& hw) {
  if (!hw.gpu_model.empty()) out << YAML::Key << "gpu_model" << YAML::Value << hw.gpu_model;
  if (hw.compute_capability > 0) {
    out << YAML::Key << "compute_capability" << YAML::Value << hw.compute_capability;
  }
  out << YAML::Key << "nvlink" << YAML::Value << std::string(to_string(hw.nvlink));
  if (hw.nvlink_gbps > 0)
    out << YAML::Key << "nvlink_gbps" << YAML::Value << number_text(hw.nvlink_gbps);
  if (hw.placeholder_pci) out << YAML::Key << "placeholder_pci" << YAML::Value << "true";
  out << YAML::Key << "numa" << YAML::Value << YAML::BeginSeq;
  for (const NumaDomain& numa : hw.numa) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "id" << YAML::Value << numa.id;
    out << YAML::Key << "cpus" << YAML::Value << YAML::DoubleQuoted << format_cpu_list(numa.cpus);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "gpus" << YAML::Value << YAML::BeginSeq;
  for (const Gpu& gpu : hw.gpus) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "index" << YAML::Value << gpu.index;
    if (!gpu.pci_bus_id.empty())
      out << YAML::Key << "pci" << YAML::Value << YAML::DoubleQuoted << gpu.pci_bus_id;
    out << YAML::Key << "numa" << YAML::Value << gpu.numa;
    if (!gpu.pci_switch.empty()) {
      out << YAML::Key << "pci_switch" << YAML::Value << YAML::DoubleQuoted << gpu.pci_switch;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "nics" << YAML::Value << YAML::BeginSeq;
  for (const Nic& nic : hw.nics) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << nic.name;
    out << YAML::Key << "port" << YAML::Value << nic.port;
    out << YAML::Key << "speed_gbps" << YAML::Value << number_text(nic.speed_gbps);
    out << YAML::Key << "link" << YAML::Value << std::string(to_string(nic.link_layer));
    if (!nic.pci_bus_id.empty())
      out << YAML::Key << "pci" << YAML::Value << YAML::DoubleQuoted << nic.pci_bus_id;
    out << YAML::Key << "numa" << YAML::Value << nic.numa;
    if (!nic.pci_switch.empty()) {
      out << YAML::Key << "pci_switch" << YAML::Value << YAML::DoubleQuoted << nic.pci_switch;
    }
    out << YAML::Key << "rail" << YAML::Value << nic.rail;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void emit_node_types(YAML::Emitter& out, const std::map<std::string, NodeHardware>& types) {
  out << YAML::Key << "node_types" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, hardware] : types) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    emit_hardware(out, hardware);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

// One past the last of the consecutive nodes from nodes[first] that have its type, slots
// and hardware.
std::size_t end_of_run(const std::vector<Node>& nodes, std::size_t first) {
  std::size_t end = first + 1;
  while (end < nodes.size() && nodes[end].type == nodes[first].type &&
         nodes[end].slots == nodes[first].slots && nodes[end].hardware == nodes[first].hardware) {
    ++end;
  }
  return end;
}

void emit_nodes(YAML::Emitter& out, const Cluster& cluster) {
  out << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
  for (std::size_t i = 0; i < cluster.nodes.size();) {
    const Node& first = cluster.nodes[i];
    const bool from_template = matches_node_type(cluster, first);
    // Consecutive nodes made from the same template with the same slots share one entry.
    const std::size_t end = from_template ? end_of_run(cluster.nodes, i) : i + 1;
    std::vector<std::string> hostnames;
    for (std::size_t j = i; j < end; ++j) hostnames.push_back(cluster.nodes[j].hostname);
    out << YAML::BeginMap;
    out << YAML::Key << "hostname" << YAML::Value << compress_hostlist(hostnames);
    if (!first.type.empty()) out << YAML::Key << "node_type" << YAML::Value << first.type;
    if (first.slots > 0) out << YAML::Key << "slots" << YAML::Value << first.slots;
    if (!from_template) emit_hardware(out, first.hardware);
    out << YAML::EndMap;
    i = end;
  }
  out << YAML::EndSeq;
}

void emit_nvlink_domains(YAML::Emitter& out, const std::vector<NvlinkDomain>& domains) {
  out << YAML::Key << "nvlink_domains" << YAML::Value << YAML::BeginSeq;
  for (const NvlinkDomain& domain : domains) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << domain.name;
    out << YAML::Key << "nodes" << YAML::Value << compress_hostlist(domain.nodes) << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void emit_switch(YAML::Emitter& out, const Switch& s) {
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << s.name;
  out << YAML::Key << "level" << YAML::Value << std::string(to_string(s.level));
  if (!s.nodes.empty()) out << YAML::Key << "nodes" << YAML::Value << compress_hostlist(s.nodes);
  if (!s.children.empty()) {
    out << YAML::Key << "switches" << YAML::Value << compress_hostlist(s.children);
  }
  if (s.link_gbps > 0) out << YAML::Key << "link_gbps" << YAML::Value << number_text(s.link_gbps);
  if (s.oversubscription != 1.0) {
    out << YAML::Key << "oversubscription" << YAML::Value << number_text(s.oversubscription);
  }
  if (s.rail != -1) out << YAML::Key << "rail" << YAML::Value << s.rail;
  if (s.radix != 0) out << YAML::Key << "radix" << YAML::Value << s.radix;
  if (s.count != 1) out << YAML::Key << "count" << YAML::Value << s.count;
  if (s.plane != -1) out << YAML::Key << "plane" << YAML::Value << s.plane;
  if (s.sharp) out << YAML::Key << "sharp" << YAML::Value << "true";
  out << YAML::EndMap;
}

void emit_cost_model(YAML::Emitter& out, const std::map<std::string, double>& cost_model) {
  out << YAML::Key << "cost_model" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : cost_model) {
    out << YAML::Key << name << YAML::Value << number_text(value);
  }
  out << YAML::EndMap;
}

}  // namespace

std::string write_cluster_yaml(const Cluster& cluster) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << kClusterFormatVersion;
  if (!cluster.name.empty()) out << YAML::Key << "name" << YAML::Value << cluster.name;
  out << YAML::Key << "rails" << YAML::Value << cluster.rails;
  if (!cluster.node_types.empty()) emit_node_types(out, cluster.node_types);
  emit_nodes(out, cluster);
  if (!cluster.nvlink_domains.empty()) emit_nvlink_domains(out, cluster.nvlink_domains);
  if (!cluster.switches.empty()) {
    out << YAML::Key << "switches" << YAML::Value << YAML::BeginSeq;
    for (const Switch& s : cluster.switches) emit_switch(out, s);
    out << YAML::EndSeq;
  }
  if (!cluster.block_sizes.empty()) {
    out << YAML::Key << "block_sizes" << YAML::Value << YAML::Flow << cluster.block_sizes;
  }
  if (!cluster.cost_model.empty()) emit_cost_model(out, cluster.cost_model);
  out << YAML::EndMap;
  return std::string("# haein cluster description (docs/cluster-format.md)\n") + out.c_str() + "\n";
}

}  // namespace haein::topology
