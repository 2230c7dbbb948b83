#pragma once
/// @file
/// Discovery of the local node: hwloc (CPUs and NUMA domains), sysfs (PCI paths and
/// InfiniBand/RoCE ports under /sys/class/infiniband) and NVML loaded with dlopen (GPUs,
/// compute capability, active NVLinks). A node without GPUs or NICs is a normal result.

#include <string>
#include <vector>

#include "haein/topology/model.hpp"

namespace haein::topology {

struct Discovery {
  Node node;
  /// Plain statements about what was not found or not known ("NVML not loadable: ...").
  std::vector<std::string> notes;
};

/// Describes this machine. Never throws for missing hardware; throws Error only when
/// hwloc itself fails.
Discovery discover_local_node();

/// This machine as a one-node cluster (rails = its InfiniBand/RoCE ports).
Cluster discover_local_cluster(std::vector<std::string>* notes = nullptr);

/// Normalises a PCI bus id to "dddd:bb:dd.f" lower case ("00000000:1B:00.0" -> "0000:1b:00.0").
std::string normalize_pci_bus_id(const std::string& bus_id);

}  // namespace haein::topology
