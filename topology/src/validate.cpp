#include "haein/topology/validate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "haein/common/error.hpp"
#include "haein/topology/fabric.hpp"
#include "haein/topology/hostlist.hpp"
#include "haein/topology/presets.hpp"

namespace haein::topology {

namespace {

class Checker {
 public:
  explicit Checker(const Cluster& cluster) : cluster_(cluster) {}

  std::vector<Problem> run() {
    for (const auto& [name, hardware] : cluster_.node_types) {
      check_hardware(hardware, "node type " + name, cluster_.where);
    }
    check_nodes();
    check_nvlink_domains();
    check_switches();
    for (int size : cluster_.block_sizes) {
      if (size <= 0) add(cluster_.where, "block size " + std::to_string(size) + " is not positive");
    }
    return std::move(problems_);
  }

 private:
  void add(const SourceLocation& where, std::string message) {
    problems_.push_back({where, std::move(message)});
  }

  void check_hardware(const NodeHardware& hw, const std::string& owner,
                      const SourceLocation& owner_where) {
    std::set<int> numa_ids;
    std::map<int, int> cpu_owner;
    for (const NumaDomain& numa : hw.numa) {
      const SourceLocation& at = numa.where.line > 0 ? numa.where : owner_where;
      if (!numa_ids.insert(numa.id).second)
        add(at, owner + ": NUMA domain " + std::to_string(numa.id) + " is listed twice");
      for (int cpu : numa.cpus) {
        auto [it, inserted] = cpu_owner.emplace(cpu, numa.id);
        if (!inserted) {
          add(at, owner + ": CPU " + std::to_string(cpu) + " is in NUMA domains " +
                      std::to_string(it->second) + " and " + std::to_string(numa.id));
        }
      }
    }
    const auto numa_list = [&] {
      std::string list;
      for (int id : numa_ids) list += (list.empty() ? "" : ", ") + std::to_string(id);
      return list.empty() ? std::string("none") : list;
    };
    std::set<int> gpu_indices;
    std::set<std::string> bus_ids;
    for (const Gpu& gpu : hw.gpus) {
      const SourceLocation& at = gpu.where.line > 0 ? gpu.where : owner_where;
      const std::string what = owner + ": GPU " + std::to_string(gpu.index);
      if (gpu.index < 0) add(at, what + " has a negative index");
      if (!gpu_indices.insert(gpu.index).second) add(at, what + " is listed twice");
      if (!gpu.pci_bus_id.empty() && !bus_ids.insert(gpu.pci_bus_id).second) {
        add(at, what + ": PCI bus id " + gpu.pci_bus_id + " is used twice");
      }
      if (!numa_ids.contains(gpu.numa)) {
        add(at, what + " is on NUMA domain " + std::to_string(gpu.numa) +
                    ", which the node does not have (NUMA domains: " + numa_list() + ")");
      }
    }
    std::set<std::pair<std::string, int>> ports;
    for (const Nic& nic : hw.nics) {
      const SourceLocation& at = nic.where.line > 0 ? nic.where : owner_where;
      const std::string what = owner + ": NIC " + nic.name + " port " + std::to_string(nic.port);
      if (!ports.emplace(nic.name, nic.port).second) add(at, what + " is listed twice");
      if (!numa_ids.contains(nic.numa)) {
        add(at, what + " is on NUMA domain " + std::to_string(nic.numa) +
                    ", which the node does not have (NUMA domains: " + numa_list() + ")");
      }
      if (nic.speed_gbps < 0) add(at, what + " has a negative speed");
      if (nic.rail < -1 || (nic.rail != -1 && nic.rail >= cluster_.rails)) {
        add(at, what + " is on rail " + std::to_string(nic.rail) + " but the cluster has " +
                    std::to_string(cluster_.rails) + " rails (use -1 for NICs outside the rails)");
      }
    }
    check_bus_ids(hw, owner, owner_where);
    if (hw.nvlink_gbps < 0) add(owner_where, owner + ": negative nvlink_gbps");
  }

  // A PCI bus id names one function: a GPU, a NIC (whose ports share it) or the bridge
  // above devices. NCCL's topology tree breaks when a bridge and a device share one.
  void check_bus_ids(const NodeHardware& hw, const std::string& owner,
                     const SourceLocation& owner_where) {
    std::map<std::string, std::string> device_at;  // bus id -> "GPU 0" or "NIC mlx5_0"
    for (const Gpu& gpu : hw.gpus) {
      if (!gpu.pci_bus_id.empty())
        device_at.emplace(gpu.pci_bus_id, "GPU " + std::to_string(gpu.index));
    }
    for (const Nic& nic : hw.nics) {
      if (nic.pci_bus_id.empty()) continue;
      const std::string name = "NIC " + nic.name;
      auto [it, inserted] = device_at.emplace(nic.pci_bus_id, name);
      if (!inserted && it->second != name) {
        add(nic.where.line > 0 ? nic.where : owner_where,
            owner + ": " + name + " has PCI bus id " + nic.pci_bus_id + ", which is " + it->second +
                "'s; two devices cannot share a bus id");
      }
    }
    const auto check_bridge = [&](const std::string& bridge, const std::string& below,
                                  const SourceLocation& at) {
      if (bridge.empty()) return;
      auto found = device_at.find(bridge);
      if (found == device_at.end()) return;
      add(at.line > 0 ? at : owner_where,
          owner + ": the PCIe switch above " + below + " has bus id " + bridge + ", which is " +
              found->second + "'s; a bridge and a device cannot share a bus id (give the " +
              "switch the bus id of its own port, as lspci -t shows it)");
    };
    for (const Gpu& gpu : hw.gpus)
      check_bridge(gpu.pci_switch, "GPU " + std::to_string(gpu.index), gpu.where);
    for (const Nic& nic : hw.nics) check_bridge(nic.pci_switch, "NIC " + nic.name, nic.where);
  }

  void check_nodes() {
    if (cluster_.rails < 0) add(cluster_.where, "rails must not be negative");
    for (const Node& node : cluster_.nodes) {
      if (node.hostname.empty()) {
        add(node.where, "a node has an empty hostname");
        continue;
      }
      if (const std::string why = hostname_problem(node.hostname); !why.empty()) {
        add(node.where,
            "hostname '" + printable(node.hostname, 80) + "' is not a hostname: " + why);
        continue;
      }
      auto [it, inserted] = node_index_.emplace(node.hostname, &node);
      if (!inserted) {
        const int first_line = it->second->where.line;
        add(node.where,
            "duplicate hostname " + node.hostname +
                (first_line > 0 ? " (first defined at line " + std::to_string(first_line) + ")"
                                : ""));
      }
      if (node.slots < 0) add(node.where, "node " + node.hostname + ": slots must not be negative");
      // Hardware equal to its node type was checked with the type.
      if (!matches_node_type(cluster_, node))
        check_hardware(node.hardware, "node " + node.hostname, node.where);
    }
  }

  void check_nvlink_domains() {
    std::unordered_map<std::string, std::string> member_of;
    std::set<std::string> names;
    for (const NvlinkDomain& domain : cluster_.nvlink_domains) {
      if (!names.insert(domain.name).second)
        add(domain.where, "NVLink domain " + domain.name + " is listed twice");
      for (const std::string& host : domain.nodes) {
        if (!node_index_.contains(host)) {
          add(domain.where, "NVLink domain " + domain.name + " lists unknown node " + host);
          continue;
        }
        auto [it, inserted] = member_of.emplace(host, domain.name);
        if (!inserted)
          add(domain.where,
              "node " + host + " is in NVLink domains " + it->second + " and " + domain.name);
      }
    }
    for (const Node& node : cluster_.nodes) {
      if (node.hardware.nvlink == NvlinkScope::kRack && !member_of.contains(node.hostname)) {
        add(node.where,
            "node " + node.hostname + " has rack-scale NVLink but is in no nvlink_domains entry");
      }
    }
  }

  void check_switch_fields(const Switch& s) {
    const std::string what = std::string(to_string(s.level)) + " switch " + s.name;
    if (!(s.oversubscription > 0) || !std::isfinite(s.oversubscription)) {
      add(s.where, what +
                       ": oversubscription must be a positive number (down-link bandwidth "
                       "per up-link bandwidth; 1 = non-blocking)");
    }
    if (s.rail < -1 || (s.rail >= 0 && s.rail >= cluster_.rails)) {
      add(s.where, what + " serves rail " + std::to_string(s.rail) + " but the cluster has " +
                       std::to_string(cluster_.rails) + " rails (rail -1 = all rails)");
    }
    if (s.radix < 0) add(s.where, what + ": radix must not be negative (0 = unknown)");
    if (s.count < 1) add(s.where, what + ": count must be at least 1");
    if (s.plane < -1) add(s.where, what + ": plane must be -1 (one plane) or a plane number");
  }

  // Where each node sits: its all-rails leaf and its leaf per rail.
  struct NodeLeaves {
    const Switch* all_rails = nullptr;
    std::map<int, const Switch*> by_rail;
  };

  void add_leaf(const Switch& s, const std::string& host, NodeLeaves& leaves) {
    const auto conflict = [&](const Switch& other, const std::string& how) {
      add(s.where, "node " + host + " is under leaves " + other.name + " and " + s.name + how);
    };
    if (s.rail < 0) {
      if (leaves.all_rails != nullptr) {
        conflict(*leaves.all_rails, "");
      } else if (!leaves.by_rail.empty()) {
        conflict(*leaves.by_rail.begin()->second,
                 " (one serves rail " + std::to_string(leaves.by_rail.begin()->first) +
                     ", the other all rails)");
      } else {
        leaves.all_rails = &s;
      }
      return;
    }
    if (leaves.all_rails != nullptr) {
      conflict(*leaves.all_rails,
               " (one serves all rails, the other rail " + std::to_string(s.rail) + ")");
    } else if (auto [it, inserted] = leaves.by_rail.emplace(s.rail, &s); !inserted) {
      conflict(*it->second, " (both serve rail " + std::to_string(s.rail) + ")");
    }
  }

  void check_switches() {
    if (cluster_.switches.empty()) return;
    std::unordered_map<std::string, const Switch*> by_name;
    for (const Switch& s : cluster_.switches) {
      if (!by_name.emplace(s.name, &s).second)
        add(s.where, "switch " + s.name + " is listed twice");
      check_switch_fields(s);
    }
    std::unordered_map<std::string, NodeLeaves> leaves_of;
    leaves_of.reserve(cluster_.nodes.size());
    std::unordered_map<std::string, std::string> parent_of;
    for (const Switch& s : cluster_.switches) {
      if (s.level == SwitchLevel::kLeaf && !s.children.empty()) {
        add(s.where, "leaf switch " + s.name + " lists switches; only spines and cores do");
      }
      if (s.level != SwitchLevel::kLeaf && !s.nodes.empty()) {
        add(s.where,
            std::string(to_string(s.level)) + " switch " + s.name + " lists nodes; only leaves do");
      }
      for (const std::string& host : s.nodes) {
        if (!node_index_.contains(host)) {
          add(s.where, "switch " + s.name + " lists unknown node " + host);
          continue;
        }
        add_leaf(s, host, leaves_of[host]);
      }
      for (const std::string& child_name : s.children) {
        auto child = by_name.find(child_name);
        if (child == by_name.end()) {
          add(s.where, "switch " + s.name + " lists unknown switch " + child_name);
          continue;
        }
        check_child(s, *child->second);
        auto [it, inserted] = parent_of.emplace(child_name, s.name);
        if (!inserted) {
          add(s.where, "switch " + child_name + " has two parents: " + it->second + " and " +
                           s.name +
                           " (a group of identical switches is one entry with 'count'; per-rail "
                           "spines sit above per-rail leaves)");
        }
      }
    }
    for (const Node& node : cluster_.nodes) {
      if (node.hostname.empty()) continue;
      auto found = leaves_of.find(node.hostname);
      if (found == leaves_of.end()) {
        add(node.where, "node " + node.hostname + " is under no leaf switch");
        continue;
      }
      check_rails_of_node(node, found->second);
    }
    check_rail_leaves_align(leaves_of);
    check_ports();
  }

  void check_child(const Switch& s, const Switch& child) {
    if (static_cast<int>(child.level) >= static_cast<int>(s.level)) {
      add(s.where, "switch " + s.name + " (" + std::string(to_string(s.level)) + ") lists " +
                       child.name + " (" + std::string(to_string(child.level)) +
                       "), which is not below it");
    }
    if (s.rail >= 0 && child.rail != s.rail) {
      add(s.where,
          "switch " + s.name + " serves rail " + std::to_string(s.rail) + " but lists " +
              child.name + ", which serves " +
              (child.rail < 0 ? std::string("all rails") : "rail " + std::to_string(child.rail)));
    }
    if (s.plane >= 0 && child.plane >= 0 && s.plane != child.plane) {
      add(s.where, "switch " + s.name + " is in plane " + std::to_string(s.plane) + " but lists " +
                       child.name + " of plane " + std::to_string(child.plane) +
                       "; planes never connect");
    }
    if (child.rail >= 0 && child.plane >= 0) {
      auto [it, inserted] = plane_of_rail_.emplace(child.rail, std::make_pair(child.plane, &child));
      if (!inserted && it->second.first != child.plane) {
        add(child.where, "rail " + std::to_string(child.rail) + " is in plane " +
                             std::to_string(it->second.first) + " (switch " +
                             it->second.second->name + ") and plane " +
                             std::to_string(child.plane) + " (switch " + child.name + ")");
      }
    }
  }

  // A node on per-rail leaves needs a leaf for every rail its NICs are on.
  void check_rails_of_node(const Node& node, const NodeLeaves& leaves) {
    if (leaves.by_rail.empty()) return;
    std::set<int> missing;
    for (const Nic& nic : node.hardware.nics) {
      if (nic.rail >= 0 && !leaves.by_rail.contains(nic.rail)) missing.insert(nic.rail);
    }
    if (missing.empty()) return;
    std::string served;
    for (const auto& [rail, leaf] : leaves.by_rail)
      served += (served.empty() ? "" : ", ") + std::to_string(rail);
    add(node.where, "node " + node.hostname + " has a NIC on rail " +
                        std::to_string(*missing.begin()) + " but no leaf serves that rail (its " +
                        "leaves serve rail" + (leaves.by_rail.size() > 1 ? "s " : " ") + served +
                        ")");
  }

  // A unit's rail leaves must list the same nodes, so that nodes one hop apart on one rail
  // are one hop apart on every rail (placement and the cost model rely on it).
  void check_rail_leaves_align(const std::unordered_map<std::string, NodeLeaves>& leaves_of) {
    std::unordered_map<const Switch*, const Switch*> unit_of;  // rail leaf -> lowest-rail leaf
    std::unordered_map<const Switch*, std::size_t> unit_size;
    for (const Switch& s : cluster_.switches) {
      if (s.level != SwitchLevel::kLeaf || s.rail < 0) continue;
      for (const std::string& host : s.nodes) {
        auto found = leaves_of.find(host);
        if (found == leaves_of.end() || found->second.by_rail.empty()) continue;
        const Switch* head = found->second.by_rail.begin()->second;
        auto [it, inserted] = unit_of.emplace(&s, head);
        if (!inserted && it->second != head) {
          add(s.where, "leaf " + s.name + " (rail " + std::to_string(s.rail) + ") holds nodes of " +
                           it->second->name + " and of " + head->name +
                           "; a unit's per-rail leaves must list the same nodes");
          break;
        }
      }
    }
    for (const auto& [leaf, head] : unit_of) {
      if (leaf == head) unit_size[head] = leaf->nodes.size();
    }
    for (const auto& [leaf, head] : unit_of) {
      if (leaf != head && unit_size.contains(head) && unit_size[head] != leaf->nodes.size()) {
        add(leaf->where, "leaf " + leaf->name + " (rail " + std::to_string(leaf->rail) +
                             ") lists " + std::to_string(leaf->nodes.size()) + " nodes but " +
                             head->name + " of the same unit lists " +
                             std::to_string(unit_size[head]) +
                             "; a unit's per-rail leaves must list the same nodes");
      }
    }
  }

  void check_ports() {
    const std::vector<SwitchLinks> links = count_switch_links(cluster_);
    for (std::size_t i = 0; i < cluster_.switches.size(); ++i) {
      const Switch& s = cluster_.switches[i];
      if (s.radix <= 0 || s.count < 1) continue;
      const long long need = links[i].down + links[i].up;
      const long long have = static_cast<long long>(s.radix) * s.count;
      if (need <= have) continue;
      std::ostringstream why;
      why << std::string(to_string(s.level)) << " switch " << s.name << " needs " << need
          << " ports but has " << have << " (radix " << s.radix << " x " << s.count
          << (s.count == 1 ? " switch" : " switches") << "): " << links[i].down << " down";
      if (s.level == SwitchLevel::kLeaf) {
        why << " (" << s.nodes.size() << " nodes x "
            << (s.rail >= 0 ? 1 : std::max(cluster_.rails, 1)) << " rail"
            << (s.rail < 0 && cluster_.rails > 1 ? "s" : "") << ")";
      } else {
        why << " (the up-links of the switches it lists)";
      }
      why << " + " << links[i].up << " up (at oversubscription " << s.oversubscription << ")";
      add(s.where, why.str());
    }
  }

  const Cluster& cluster_;
  std::unordered_map<std::string, const Node*> node_index_;
  std::map<int, std::pair<int, const Switch*>> plane_of_rail_;  // rail -> (plane, first switch)
  std::vector<Problem> problems_;
};

}  // namespace

std::vector<Problem> validate(const Cluster& cluster) { return Checker(cluster).run(); }

void require_valid(const Cluster& cluster) {
  const std::vector<Problem> problems = validate(cluster);
  if (problems.empty()) return;
  std::string message = problems.front().message;
  if (problems.size() > 1) {
    message += " (and " + std::to_string(problems.size() - 1) + " more problem" +
               (problems.size() > 2 ? "s" : "") + "; run 'haein topo validate' to list them)";
  }
  throw ParseError(problems.front().where.file, problems.front().where.line, message);
}

std::string describe(const Problem& problem) {
  // The same "FILE:LINE: message" form as ParseError.
  return ParseError(problem.where.file, problem.where.line, problem.message).what();
}

}  // namespace haein::topology
