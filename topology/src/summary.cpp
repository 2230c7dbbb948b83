#include "haein/topology/summary.hpp"

#include <map>
#include <set>

#include "haein/topology/hostlist.hpp"

namespace haein::topology {

void print_summary(const Cluster& cluster, std::ostream& out) {
  out << "cluster: " << (cluster.name.empty() ? "(unnamed)" : cluster.name) << "\n";
  out << "nodes: " << cluster.nodes.size() << "\n";
  out << "gpus: " << cluster.gpu_count() << "\n";

  std::map<std::string, int> models;
  std::map<std::string, int> domain_gpus;
  std::map<double, int> nic_speeds;
  int cpus = 0;
  for (const Node& node : cluster.nodes) {
    if (!node.hardware.gpus.empty()) {
      models[node.hardware.gpu_model.empty() ? "unknown" : node.hardware.gpu_model] +=
          static_cast<int>(node.hardware.gpus.size());
    }
    if (const std::string domain = cluster.nvlink_domain_of(node); !domain.empty()) {
      domain_gpus[domain] += static_cast<int>(node.hardware.gpus.size());
    }
    for (const Nic& nic : node.hardware.nics) {
      if (nic.rail >= 0) ++nic_speeds[nic.speed_gbps];
    }
    for (const NumaDomain& numa : node.hardware.numa) cpus += static_cast<int>(numa.cpus.size());
  }
  if (!models.empty()) {
    out << "gpu models:";
    for (const auto& [model, count] : models) out << " " << model << " x" << count;
    out << "\n";
  }
  out << "cpus: " << cpus << "\n";
  std::map<int, int> domain_sizes;  // GPUs per domain -> domains
  for (const auto& [name, gpus] : domain_gpus) ++domain_sizes[gpus];
  out << "nvlink domains: " << domain_gpus.size();
  if (!domain_sizes.empty()) {
    out << " (";
    bool first = true;
    for (const auto& [gpus, count] : domain_sizes) {
      out << (first ? "" : ", ") << count << " x " << gpus << " GPUs";
      first = false;
    }
    out << ")";
  }
  out << "\n";
  out << "rails: " << cluster.rails;
  if (!nic_speeds.empty()) {
    out << " (";
    bool first = true;
    for (const auto& [speed, count] : nic_speeds) {
      out << (first ? "" : ", ") << count << " NIC ports at " << speed << " Gb/s";
      first = false;
    }
    out << ")";
  }
  out << "\n";
  std::map<SwitchLevel, std::vector<std::string>> levels;
  std::map<SwitchLevel, long long> physical;  // entries standing for groups count them all
  for (const Switch& s : cluster.switches) {
    levels[s.level].push_back(s.name);
    physical[s.level] += s.count;
  }
  out << "switches:";
  if (levels.empty()) out << " none";
  for (const auto& [level, names] : levels) {
    out << " " << to_string(level) << " " << names.size();
    if (physical[level] != static_cast<long long>(names.size()))
      out << " (" << physical[level] << " switches)";
    out << " [" << compress_hostlist(names) << "]";
  }
  out << "\n";
  if (!cluster.block_sizes.empty()) {
    out << "block sizes:";
    for (int size : cluster.block_sizes) out << " " << size;
    out << "\n";
  }
}

}  // namespace haein::topology
