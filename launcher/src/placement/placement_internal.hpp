#pragma once
// Pieces shared by haein's placement and the naive orders it is compared with.

#include <vector>

#include "haein/launcher/placement.hpp"

namespace haein::launcher::detail {

/// Ranks a node hosts: the node and the GPU indices, in local-rank order (-1 entries for
/// ranks beyond the node's GPUs, on nodes described without GPUs).
struct NodeRanks {
  int node = 0;
  std::vector<int> gpus;
};

/// GPUs a request may use on a node (0 when the node does not qualify).
int usable_gpus(const topology::Node& node, const PlacementRequest& request);

/// For each GPU position of a node: the index of its closest compute NIC (same PCIe
/// switch, then same NUMA domain, then any; ties go to the NIC serving fewer GPUs), or
/// -1 when the node has no NIC.
std::vector<int> closest_nics(const topology::NodeHardware& hardware);

/// Builds ranks from nodes in order: local ranks, NIC, rail, NUMA and cores (the NUMA
/// domain's CPUs split evenly among the node's ranks in it), domain/leaf/spine names and
/// layout coordinates.
Placement assemble(const topology::FabricIndex& fabric, const std::vector<NodeRanks>& nodes,
                   const PlacementRequest& request);

/// Megatron-style coordinates from the rank: tp fastest, then dp, then pp; ep within dp.
void set_layout_coordinates(Placement& placement, const Layout& layout);

/// Splits a CPU list among `parts` ranks: each contiguous range is cut into `parts`
/// pieces and rank i gets piece i of every range, so hyper-thread siblings enumerated in
/// a second range stay with their cores.
std::vector<int> cpu_share(const std::vector<int>& cpus, int part, int parts);

/// A CPU list as sorted contiguous runs (first CPU, count), computed once per NUMA domain
/// so that sharing it among R ranks costs R times the runs, not R times the CPUs.
struct CpuRuns {
  std::vector<std::pair<int, int>> runs;
  std::size_t cpus = 0;
};
CpuRuns cpu_runs(const std::vector<int>& cpus);
std::vector<int> cpu_share(const CpuRuns& runs, int part, int parts);
/// The `index`-th CPU in sorted order (index < runs.cpus).
int nth_cpu(const CpuRuns& runs, std::size_t index);

}  // namespace haein::launcher::detail
