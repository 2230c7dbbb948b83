// Turning chosen nodes into ranks with their affinity; shared by every order.
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>

#include "haein/common/error.hpp"
#include "placement_internal.hpp"

namespace haein::launcher::detail {

using topology::FabricIndex;
using topology::Gpu;
using topology::Nic;
using topology::Node;
using topology::NodeHardware;

int usable_gpus(const Node& node, const PlacementRequest& request) {
  const int gpus = node.hardware.gpus.empty() ? node.effective_slots()
                                              : static_cast<int>(node.hardware.gpus.size());
  if (request.gpus_per_node > 0) return gpus >= request.gpus_per_node ? request.gpus_per_node : 0;
  return gpus;
}

std::vector<int> closest_nics(const NodeHardware& hardware) {
  std::vector<int> candidates;
  for (std::size_t i = 0; i < hardware.nics.size(); ++i) {
    if (hardware.nics[i].rail >= 0) candidates.push_back(static_cast<int>(i));
  }
  if (candidates.empty()) {
    for (std::size_t i = 0; i < hardware.nics.size(); ++i)
      candidates.push_back(static_cast<int>(i));
  }
  std::vector<int> result(hardware.gpus.size(), -1);
  std::vector<int> served(hardware.nics.size(), 0);
  for (std::size_t g = 0; g < hardware.gpus.size(); ++g) {
    const Gpu& gpu = hardware.gpus[g];
    int best = -1;
    std::tuple<int, int, int> best_key{3, 0, 0};
    for (int n : candidates) {
      const Nic& nic = hardware.nics[n];
      const int distance = !gpu.pci_switch.empty() && gpu.pci_switch == nic.pci_switch ? 0
                           : gpu.numa == nic.numa                                      ? 1
                                                                                       : 2;
      const std::tuple<int, int, int> key{distance, served[n], n};
      if (best < 0 || key < best_key) {
        best = n;
        best_key = key;
      }
    }
    result[g] = best;
    if (best >= 0) ++served[best];
  }
  return result;
}

std::vector<int> cpu_share(const std::vector<int>& cpus, int part, int parts) {
  if (parts <= 1) return cpus;
  std::vector<int> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> share;
  std::size_t begin = 0;
  while (begin < sorted.size()) {
    std::size_t end = begin + 1;
    while (end < sorted.size() && sorted[end] == sorted[end - 1] + 1) ++end;
    const std::size_t length = end - begin;
    const std::size_t from = begin + length * part / parts;
    const std::size_t to = begin + length * (part + 1) / parts;
    share.insert(share.end(), sorted.begin() + from, sorted.begin() + to);
    begin = end;
  }
  return share;
}

namespace {

const topology::NumaDomain* find_numa(const NodeHardware& hardware, int id) {
  for (const topology::NumaDomain& numa : hardware.numa) {
    if (numa.id == id) return &numa;
  }
  return nullptr;
}

// Ranks without a GPU (CPU-only nodes): spread in blocks over the NUMA domains, each
// domain's CPUs split among its ranks; with more ranks than CPUs, CPUs are shared in turn.
void place_on_cpus(const NodeHardware& hardware, int index, int count, RankPlacement& r) {
  std::vector<const topology::NumaDomain*> domains;
  for (const topology::NumaDomain& numa : hardware.numa) {
    if (!numa.cpus.empty()) domains.push_back(&numa);
  }
  if (domains.empty() || count <= 0) return;
  const int d =
      static_cast<int>(static_cast<long>(index) * static_cast<long>(domains.size()) / count);
  // The ranks that land in domain d: those with index * D / count == d.
  int first = 0;
  while (static_cast<long>(first) * static_cast<long>(domains.size()) / count < d) ++first;
  int last = first;
  while (last < count && static_cast<long>(last) * static_cast<long>(domains.size()) / count == d)
    ++last;
  const topology::NumaDomain& numa = *domains[d];
  const int sharing = last - first;
  const int position = index - first;
  r.numa = numa.id;
  if (sharing <= static_cast<int>(numa.cpus.size())) {
    r.cores = cpu_share(numa.cpus, position, sharing);
  } else {
    std::vector<int> sorted = numa.cpus;
    std::sort(sorted.begin(), sorted.end());
    r.cores = {sorted[position % sorted.size()]};
  }
}

}  // namespace

void set_layout_coordinates(Placement& placement, const Layout& layout) {
  for (RankPlacement& r : placement.ranks) {
    r.tp = r.rank % layout.tp;
    r.dp = r.rank / layout.tp % layout.dp;
    r.pp = r.rank / (layout.tp * layout.dp);
    r.ep = *r.dp % layout.ep;
  }
}

Placement assemble(const FabricIndex& fabric, const std::vector<NodeRanks>& nodes,
                   const PlacementRequest& request) {
  const topology::Cluster& cluster = fabric.cluster();
  Placement placement;
  placement.cluster = cluster.name;
  placement.layout = request.layout;
  // Node types share hardware, so their GPU-NIC pairing is computed once per type.
  std::unordered_map<std::string, std::vector<int>> nics_by_type;
  int rank = 0;
  for (const NodeRanks& entry : nodes) {
    const Node& node = cluster.nodes[entry.node];
    const NodeHardware& hardware = node.hardware;
    std::vector<int> own_nics;
    const std::vector<int>* nics = nullptr;
    if (!node.type.empty()) {
      auto [it, added] = nics_by_type.try_emplace(node.type);
      if (added) it->second = closest_nics(hardware);
      nics = &it->second;
    } else {
      own_nics = closest_nics(hardware);
      nics = &own_nics;
    }
    // How many of this node's ranks share each NUMA domain, to split its cores.
    std::map<int, int> numa_users;
    for (int gpu : entry.gpus) {
      if (gpu >= 0) ++numa_users[hardware.gpus[gpu].numa];
    }
    std::map<int, int> numa_seen;
    const int cpu_ranks = static_cast<int>(std::count(entry.gpus.begin(), entry.gpus.end(), -1));
    int cpu_rank = 0;
    const int leaf = fabric.leaf_of(entry.node);
    const int spine = fabric.spine_of(entry.node);
    const int domain = fabric.domain_of(entry.node);
    for (std::size_t local = 0; local < entry.gpus.size(); ++local) {
      RankPlacement r;
      r.rank = rank++;
      r.node = entry.node;
      r.host = node.hostname;
      r.local_rank = static_cast<int>(local);
      r.local_world_size = static_cast<int>(entry.gpus.size());
      r.gpu = entry.gpus[local];
      if (r.gpu >= 0) {
        const Gpu& gpu = hardware.gpus[r.gpu];
        r.gpu = gpu.index;
        const int nic = (*nics)[entry.gpus[local]];
        if (nic >= 0) {
          r.nic = hardware.nics[nic].name;
          r.nic_port = hardware.nics[nic].port;
          r.rail = hardware.nics[nic].rail;
        }
        r.numa = gpu.numa;
        if (const topology::NumaDomain* numa = find_numa(hardware, gpu.numa)) {
          r.cores = cpu_share(numa->cpus, numa_seen[gpu.numa]++, numa_users[gpu.numa]);
        }
      } else {
        place_on_cpus(hardware, cpu_rank++, cpu_ranks, r);
      }
      if (domain >= 0) r.nvlink_domain = fabric.domain_name(domain);
      if (leaf >= 0) r.leaf = fabric.leaf_name(leaf);
      if (spine >= 0) r.spine = fabric.spine_name(spine);
      placement.ranks.push_back(std::move(r));
    }
  }
  if (request.layout) set_layout_coordinates(placement, *request.layout);
  return placement;
}

}  // namespace haein::launcher::detail

namespace haein::launcher {

std::vector<int> Placement::nodes() const {
  std::vector<int> order;
  std::vector<bool> seen;
  for (const RankPlacement& r : ranks) {
    if (r.node >= static_cast<int>(seen.size())) seen.resize(r.node + 1, false);
    if (!seen[r.node]) {
      seen[r.node] = true;
      order.push_back(r.node);
    }
  }
  return order;
}

std::vector<topology::RankSite> Placement::sites() const {
  std::vector<topology::RankSite> sites;
  sites.reserve(ranks.size());
  for (const RankPlacement& r : ranks) sites.push_back({r.node, r.gpu, r.rail});
  return sites;
}

}  // namespace haein::launcher
