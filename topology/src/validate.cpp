#include "haein/topology/validate.hpp"

#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "haein/common/error.hpp"
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
    if (hw.nvlink_gbps < 0) add(owner_where, owner + ": negative nvlink_gbps");
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

  void check_switches() {
    if (cluster_.switches.empty()) return;
    std::unordered_map<std::string, const Switch*> by_name;
    for (const Switch& s : cluster_.switches) {
      if (!by_name.emplace(s.name, &s).second)
        add(s.where, "switch " + s.name + " is listed twice");
    }
    std::unordered_map<std::string, std::string> leaf_of;
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
        auto [it, inserted] = leaf_of.emplace(host, s.name);
        if (!inserted)
          add(s.where, "node " + host + " is under leaves " + it->second + " and " + s.name);
      }
      for (const std::string& child_name : s.children) {
        auto child = by_name.find(child_name);
        if (child == by_name.end()) {
          add(s.where, "switch " + s.name + " lists unknown switch " + child_name);
          continue;
        }
        if (static_cast<int>(child->second->level) >= static_cast<int>(s.level)) {
          add(s.where, "switch " + s.name + " (" + std::string(to_string(s.level)) + ") lists " +
                           child_name + " (" + std::string(to_string(child->second->level)) +
                           "), which is not below it");
        }
        auto [it, inserted] = parent_of.emplace(child_name, s.name);
        if (!inserted)
          add(s.where,
              "switch " + child_name + " has two parents: " + it->second + " and " + s.name);
      }
    }
    for (const Node& node : cluster_.nodes) {
      if (!node.hostname.empty() && !leaf_of.contains(node.hostname)) {
        add(node.where, "node " + node.hostname + " is under no leaf switch");
      }
    }
  }

  const Cluster& cluster_;
  std::unordered_map<std::string, const Node*> node_index_;
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
