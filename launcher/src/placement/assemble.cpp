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

CpuRuns cpu_runs(const std::vector<int>& cpus) {
  std::vector<int> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  CpuRuns result;
  result.cpus = sorted.size();
  std::size_t begin = 0;
  while (begin < sorted.size()) {
    std::size_t end = begin + 1;
    while (end < sorted.size() && sorted[end] == sorted[end - 1] + 1) ++end;
    result.runs.emplace_back(sorted[begin], static_cast<int>(end - begin));
    begin = end;
  }
  return result;
}

std::vector<int> cpu_share(const CpuRuns& runs, int part, int parts) {
  std::vector<int> share;
  for (const auto& [first, length] : runs.runs) {
    const long long from = static_cast<long long>(length) * part / parts;
    const long long to = static_cast<long long>(length) * (part + 1) / parts;
    for (long long i = from; i < to; ++i) share.push_back(first + static_cast<int>(i));
  }
  return share;
}

std::vector<int> cpu_share(const std::vector<int>& cpus, int part, int parts) {
  if (parts <= 1) return cpus;
  return cpu_share(cpu_runs(cpus), part, parts);
}

int nth_cpu(const CpuRuns& runs, std::size_t index) {
  for (const auto& [first, length] : runs.runs) {
    if (index < static_cast<std::size_t>(length)) return first + static_cast<int>(index);
    index -= static_cast<std::size_t>(length);
  }
  return -1;
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
void place_on_cpus(const NodeHardware& hardware, int index, int count, RankPlacement& r,
                   std::map<int, CpuRuns>& runs_of) {
  std::vector<const topology::NumaDomain*> domains;
  for (const topology::NumaDomain& numa : hardware.numa) {
    if (!numa.cpus.empty()) domains.push_back(&numa);
  }
  if (domains.empty() || count <= 0) return;
  const int d =
      static_cast<int>(static_cast<long>(index) * static_cast<long>(domains.size()) / count);
  // The ranks that land in domain d: those with index * D / count == d.
  // The first index with index * D / count >= d, in closed form (a loop was quadratic).
  const long long domain_count = static_cast<long long>(domains.size());
  const auto first_of = [&](long long domain) {
    return std::min<long long>(count, (domain * count + domain_count - 1) / domain_count);
  };
  const int first = static_cast<int>(first_of(d));
  const int last = static_cast<int>(first_of(d + 1));
  const topology::NumaDomain& numa = *domains[d];
  const int sharing = last - first;
  const int position = index - first;
  r.numa = numa.id;
  auto [entry, added] = runs_of.try_emplace(numa.id);
  if (added) entry->second = cpu_runs(numa.cpus);
  const CpuRuns& runs = entry->second;
  if (sharing <= 1) {
    r.cores = numa.cpus;
  } else if (sharing <= static_cast<int>(runs.cpus)) {
    r.cores = cpu_share(runs, position, sharing);
  } else {
    r.cores = {nth_cpu(runs, static_cast<std::size_t>(position) % runs.cpus)};
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
  std::size_t world = 0;
  for (const NodeRanks& entry : nodes) world += entry.gpus.size();
  placement.ranks.reserve(world);
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
    std::map<int, CpuRuns> runs_of;  // per NUMA domain of this node
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
          auto [runs, added] = runs_of.try_emplace(numa->id);
          if (added) runs->second = cpu_runs(numa->cpus);
          const int users = numa_users[gpu.numa];
          r.cores = users <= 1 ? numa->cpus : cpu_share(runs->second, numa_seen[gpu.numa]++, users);
        }
      } else {
        place_on_cpus(hardware, cpu_rank++, cpu_ranks, r, runs_of);
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
