// Reads the haein cluster YAML (and JSON with the same schema) into the model.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <span>

#include "haein/common/error.hpp"
#include "haein/topology/cost_model.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"
#include "haein/topology/presets.hpp"
#include "yaml_schema.hpp"

namespace haein::topology {

namespace {

/// Nodes and their hardware a cluster file may describe in all (a 50,000-GPU cluster
/// takes about 2 million).
constexpr std::size_t kMaxClusterElements = std::size_t{1} << 24;

/// The largest rail, plane, radix or switch count a file may give: far past any fabric,
/// small enough that port sums stay exact.
constexpr long long kMaxFabricNumber = 1'000'000;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  int line(const YAML::Node& node) const {
    return node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
  }
  SourceLocation where(const YAML::Node& node) const { return {source_, line(node)}; }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    throw ParseError(source_, line(node), what);
  }

  void expect_map(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) fail(node, what + " must be a mapping of key: value");
  }
  void expect_sequence(const YAML::Node& node, const std::string& what) const {
    if (!node.IsSequence()) fail(node, what + " must be a list");
  }

  // Rejects keys outside `allowed`, so that a typo is an error and not a silent default.
  void check_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                  const std::string& what) const {
    check_keys(map, std::span<const std::string_view>(allowed.begin(), allowed.size()), what);
  }
  void check_keys(const YAML::Node& map, std::span<const std::string_view> allowed,
                  const std::string& what) const {
    for (const auto& entry : map) {
      const std::string key = entry.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(entry.first,
             "unknown key '" + printable(key, 80) + "' in " + what + "; expected one of: " + list);
      }
    }
  }

  std::string text(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be a single value");
    return node.Scalar();
  }

  std::string required_text(const YAML::Node& map, const char* key, const std::string& what) const {
    const YAML::Node value = map[key];
    if (!value) fail(map, what + " needs '" + key + "'");
    return text(value, std::string("'") + key + "' of " + what);
  }

  long long integer(const YAML::Node& node, const std::string& what) const {
    const std::string value = text(node, what);
    try {
      std::size_t used = 0;
      const long long result = std::stoll(value, &used, 10);
      if (used == value.size()) return result;
    } catch (const std::exception&) {
    }
    fail(node, what + " must be an integer, got '" + printable(value, 80) + "'");
  }

  // An integer in [low, high]: values past an int's range must not wrap into valid ones.
  int bounded(const YAML::Node& node, const std::string& what, long long low,
              long long high) const {
    const long long value = integer(node, what);
    if (value < low || value > high) {
      fail(node, what + " must be between " + std::to_string(low) + " and " + std::to_string(high) +
                     ", got " + std::to_string(value));
    }
    return static_cast<int>(value);
  }

  double number(const YAML::Node& node, const std::string& what) const {
    const std::string value = text(node, what);
    try {
      std::size_t used = 0;
      const double result = std::stod(value, &used);
      if (used == value.size() && std::isfinite(result)) return result;
    } catch (const std::exception&) {
    }
    fail(node, what + " must be a number, got '" + printable(value, 80) + "'");
  }

  std::vector<std::string> hostlist(const YAML::Node& node, const std::string& what) const {
    std::vector<std::string> names;
    const auto append = [&](const YAML::Node& item) {
      try {
        for (std::string& name : expand_hostlist(text(item, what)))
          names.push_back(std::move(name));
      } catch (const InvalidArgument& error) {
        fail(item, error.what());
      }
    };
    if (node.IsSequence()) {
      for (const auto& item : node) append(item);
    } else {
      append(node);
    }
    return names;
  }

  template <class Enum>
  Enum choice(const YAML::Node& node,
              std::initializer_list<std::pair<std::string_view, Enum>> options,
              const std::string& what) const {
    const std::string value = text(node, what);
    std::string list;
    for (const auto& [name, enum_value] : options) {
      if (value == name) return enum_value;
      list += (list.empty() ? "" : ", ") + std::string(name);
    }
    fail(node, what + " must be one of " + list + ", got '" + printable(value, 80) + "'");
  }

  NumaDomain read_numa(const YAML::Node& node) const {
    expect_map(node, "a NUMA entry");
    check_keys(node, {"id", "cpus"}, "a NUMA entry");
    NumaDomain numa;
    numa.where = where(node);
    if (!node["id"]) fail(node, "a NUMA entry needs 'id'");
    numa.id = static_cast<int>(integer(node["id"], "NUMA 'id'"));
    if (node["cpus"]) {
      try {
        numa.cpus = parse_cpu_list(text(node["cpus"], "NUMA 'cpus'"));
      } catch (const InvalidArgument& error) {
        fail(node["cpus"], error.what());
      }
    }
    return numa;
  }

  Gpu read_gpu(const YAML::Node& node) const {
    expect_map(node, "a GPU entry");
    check_keys(node, {"index", "pci", "numa", "pci_switch"}, "a GPU entry");
    Gpu gpu;
    gpu.where = where(node);
    if (!node["index"]) fail(node, "a GPU entry needs 'index'");
    gpu.index = static_cast<int>(integer(node["index"], "GPU 'index'"));
    if (node["pci"]) gpu.pci_bus_id = text(node["pci"], "GPU 'pci'");
    if (node["numa"]) gpu.numa = static_cast<int>(integer(node["numa"], "GPU 'numa'"));
    if (node["pci_switch"]) gpu.pci_switch = text(node["pci_switch"], "GPU 'pci_switch'");
    return gpu;
  }

  Nic read_nic(const YAML::Node& node) const {
    expect_map(node, "a NIC entry");
    check_keys(node, {"name", "port", "speed_gbps", "link", "pci", "numa", "pci_switch", "rail"},
               "a NIC entry");
    Nic nic;
    nic.where = where(node);
    nic.name = required_text(node, "name", "a NIC entry");
    if (node["port"]) nic.port = static_cast<int>(integer(node["port"], "NIC 'port'"));
    if (node["speed_gbps"]) nic.speed_gbps = number(node["speed_gbps"], "NIC 'speed_gbps'");
    if (node["link"]) {
      nic.link_layer = choice<LinkLayer>(
          node["link"],
          {{"infiniband", LinkLayer::kInfiniBand}, {"ethernet", LinkLayer::kEthernet}},
          "NIC 'link'");
    }
    if (node["pci"]) nic.pci_bus_id = text(node["pci"], "NIC 'pci'");
    if (node["numa"]) nic.numa = static_cast<int>(integer(node["numa"], "NIC 'numa'"));
    if (node["pci_switch"]) nic.pci_switch = text(node["pci_switch"], "NIC 'pci_switch'");
    if (node["rail"]) nic.rail = static_cast<int>(integer(node["rail"], "NIC 'rail'"));
    return nic;
  }

  // Reads the hardware keys present in `map` over `hardware` (a template's copy or empty).
  void read_hardware(const YAML::Node& map, NodeHardware& hardware) const {
    if (map["gpu_model"]) hardware.gpu_model = text(map["gpu_model"], "'gpu_model'");
    if (map["compute_capability"]) {
      hardware.compute_capability =
          static_cast<int>(integer(map["compute_capability"], "'compute_capability'"));
    }
    if (map["nvlink"]) {
      hardware.nvlink = choice<NvlinkScope>(map["nvlink"],
                                            {{"none", NvlinkScope::kNone},
                                             {"node", NvlinkScope::kNode},
                                             {"rack", NvlinkScope::kRack}},
                                            "'nvlink'");
    }
    if (map["nvlink_gbps"]) hardware.nvlink_gbps = number(map["nvlink_gbps"], "'nvlink_gbps'");
    if (map["placeholder_pci"]) {
      hardware.placeholder_pci = choice<bool>(
          map["placeholder_pci"], {{"true", true}, {"false", false}}, "'placeholder_pci'");
    }
    if (const YAML::Node list = map["numa"]) {
      expect_sequence(list, "'numa'");
      hardware.numa.clear();
      for (const auto& item : list) hardware.numa.push_back(read_numa(item));
    }
    if (const YAML::Node list = map["gpus"]) {
      expect_sequence(list, "'gpus'");
      hardware.gpus.clear();
      for (const auto& item : list) hardware.gpus.push_back(read_gpu(item));
    }
    if (const YAML::Node list = map["nics"]) {
      expect_sequence(list, "'nics'");
      hardware.nics.clear();
      for (const auto& item : list) hardware.nics.push_back(read_nic(item));
    }
  }

  Switch read_switch(const YAML::Node& node) const {
    expect_map(node, "a switch entry");
    check_keys(node,
               {"name", "level", "nodes", "switches", "link_gbps", "oversubscription", "rail",
                "radix", "count", "plane", "sharp"},
               "a switch entry");
    Switch s;
    s.where = where(node);
    s.name = required_text(node, "name", "a switch entry");
    if (!node["level"]) fail(node, "switch '" + s.name + "' needs 'level' (leaf, spine or core)");
    s.level = choice<SwitchLevel>(node["level"],
                                  {{"leaf", SwitchLevel::kLeaf},
                                   {"spine", SwitchLevel::kSpine},
                                   {"core", SwitchLevel::kCore}},
                                  "switch 'level'");
    if (node["nodes"]) s.nodes = hostlist(node["nodes"], "switch 'nodes'");
    if (node["switches"]) s.children = hostlist(node["switches"], "switch 'switches'");
    if (node["link_gbps"]) s.link_gbps = number(node["link_gbps"], "switch 'link_gbps'");
    if (const YAML::Node value = node["oversubscription"]) {
      s.oversubscription = number(value, "switch 'oversubscription'");
      if (s.oversubscription <= 0) {
        fail(value,
             "switch 'oversubscription' must be positive (down-link bandwidth per "
             "up-link bandwidth; 1 = non-blocking), got " +
                 value.Scalar());
      }
    }
    if (node["rail"]) s.rail = bounded(node["rail"], "switch 'rail'", -1, kMaxFabricNumber);
    if (node["radix"]) s.radix = bounded(node["radix"], "switch 'radix'", 0, kMaxFabricNumber);
    if (node["count"]) s.count = bounded(node["count"], "switch 'count'", 1, kMaxFabricNumber);
    if (node["plane"]) s.plane = bounded(node["plane"], "switch 'plane'", -1, kMaxFabricNumber);
    if (node["sharp"]) {
      s.sharp = choice<bool>(node["sharp"], {{"true", true}, {"false", false}}, "switch 'sharp'");
    }
    return s;
  }

  // A node entry without its host names: the hardware and slots every host of it gets.
  Node read_node_entry(const YAML::Node& entry, const Cluster& cluster) const {
    expect_map(entry, "a node entry");
    check_keys(entry,
               {"hostname", "node_type", "slots", "gpu_model", "compute_capability", "nvlink",
                "nvlink_gbps", "numa", "gpus", "nics", "placeholder_pci"},
               "a node entry");
    if (!entry["hostname"])
      fail(entry, "a node entry needs 'hostname' (a name or a range like n[01-16])");
    Node prototype;
    prototype.where = where(entry);
    if (const YAML::Node type = entry["node_type"]) {
      prototype.type = text(type, "'node_type'");
      prototype.hardware = node_type_hardware(type, prototype.type, cluster);
    }
    read_hardware(entry, prototype.hardware);
    if (entry["slots"]) {
      const long long slots = integer(entry["slots"], "'slots'");
      if (slots < 1 || slots > kMaxSlots)
        fail(entry["slots"], "'slots' must be between 1 and " + std::to_string(kMaxSlots) +
                                 ", got " + std::to_string(slots));
      prototype.slots = static_cast<int>(slots);
    }
    return prototype;
  }

  NvlinkDomain read_nvlink_domain(const YAML::Node& entry) const {
    expect_map(entry, "an NVLink domain entry");
    check_keys(entry, {"name", "nodes"}, "an NVLink domain entry");
    NvlinkDomain domain;
    domain.where = where(entry);
    domain.name = required_text(entry, "name", "an NVLink domain entry");
    if (!entry["nodes"]) fail(entry, "NVLink domain '" + domain.name + "' needs 'nodes'");
    domain.nodes = hostlist(entry["nodes"], "NVLink domain 'nodes'");
    return domain;
  }

 private:
  // The hardware of node type `name`, defined in the file or built in.
  const NodeHardware& node_type_hardware(const YAML::Node& type, const std::string& name,
                                         const Cluster& cluster) const {
    if (const NodeHardware* hardware = find_node_type(cluster, name)) return *hardware;
    std::string known;
    for (const auto& [known_name, hw] : cluster.node_types) known += known_name + ", ";
    for (const auto& [known_name, hw] : builtin_node_types()) known += known_name + ", ";
    fail(type, "unknown node_type '" + printable(name, 80) +
                   "'; known: " + known.substr(0, known.size() - 2));
  }

  std::string source_;
};

YAML::Node parse_document(std::string_view text, const std::string& source) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::ParserException& error) {
    throw ParseError(source, error.mark.line >= 0 ? error.mark.line + 1 : 0,
                     "malformed YAML: " + error.msg);
  }
}

// version, name and rails: the description's single values.
void read_cluster_scalars(const Reader& reader, const YAML::Node& root, Cluster& cluster) {
  if (root["version"] && reader.integer(root["version"], "'version'") != kClusterFormatVersion) {
    reader.fail(root["version"], "unsupported version " + root["version"].Scalar() +
                                     "; this haein reads version " +
                                     std::to_string(kClusterFormatVersion));
  }
  if (root["name"]) cluster.name = reader.text(root["name"], "'name'");
  if (root["rails"]) cluster.rails = static_cast<int>(reader.integer(root["rails"], "'rails'"));
}

void read_cluster_node_types(const Reader& reader, const YAML::Node& types, Cluster& cluster) {
  reader.expect_map(types, "'node_types'");
  for (const auto& entry : types) {
    const std::string name = entry.first.Scalar();
    const std::string what = "node type '" + printable(name, 80) + "'";
    reader.expect_map(entry.second, what);
    reader.check_keys(entry.second, std::span<const std::string_view>(kHardwareKeys), what);
    reader.read_hardware(entry.second, cluster.node_types[name]);
  }
}

// What one host adds to the nodes and hardware the cluster holds in all.
std::size_t element_count(const NodeHardware& hardware) {
  std::size_t count = 1 + hardware.numa.size() + hardware.gpus.size() + hardware.nics.size();
  for (const NumaDomain& numa : hardware.numa) count += numa.cpus.size();
  return count;
}

void read_cluster_nodes(const Reader& reader, const YAML::Node& nodes, Cluster& cluster) {
  reader.expect_sequence(nodes, "'nodes'");
  std::size_t elements = 0;  // nodes and their hardware, all hosts of all entries
  for (const auto& entry : nodes) {
    const Node prototype = reader.read_node_entry(entry, cluster);
    std::vector<std::string> hostnames = reader.hostlist(entry["hostname"], "'hostname'");
    // Each host gets a copy of the entry's hardware: a short file must not describe more
    // than memory holds (a host range times a CPU range).
    const std::size_t weight = element_count(prototype.hardware);
    if (hostnames.size() > kMaxNodes - std::min(kMaxNodes, cluster.nodes.size()))
      reader.fail(entry, "more than " + std::to_string(kMaxNodes) + " nodes; check the ranges");
    if (!hostnames.empty() && weight > (kMaxClusterElements - elements) / hostnames.size())
      reader.fail(entry, "the cluster describes more than " + std::to_string(kMaxClusterElements) +
                             " nodes, NUMA domains, CPUs, GPUs and NICs in all (this entry: " +
                             std::to_string(hostnames.size()) + " hosts of " +
                             std::to_string(weight) + " each); check the ranges");
    elements += weight * hostnames.size();
    for (std::string& hostname : hostnames) {
      Node& node = cluster.nodes.emplace_back(prototype);
      node.hostname = std::move(hostname);
    }
  }
}

// Written by `haein topo calibrate`; each name and range checked against the model's.
void read_cluster_cost_model(const Reader& reader, const YAML::Node& parameters,
                             std::map<std::string, double>& cost_model) {
  reader.expect_map(parameters, "'cost_model'");
  for (const auto& entry : parameters) {
    const std::string name = entry.first.Scalar();
    if (cost_model.count(name)) {
      reader.fail(entry.first, "cost_model '" + printable(name, 80) + "' is given twice");
    }
    const double value = reader.number(entry.second, "cost_model '" + printable(name, 80) + "'");
    try {
      CostParameters::from({{name, value}});
    } catch (const InvalidArgument& e) {
      reader.fail(entry.first, e.what());
    }
    cost_model[name] = value;
  }
}

}  // namespace

std::map<std::string, NodeHardware> read_node_types(std::string_view text,
                                                    const std::string& source) {
  const Reader reader(source);
  const YAML::Node root = parse_document(text, source);
  reader.expect_map(root, "a node type file");
  std::map<std::string, NodeHardware> types;
  const YAML::Node list = root["node_types"];
  if (!list) reader.fail(root, "a node type file needs 'node_types'");
  reader.expect_map(list, "'node_types'");
  for (const auto& entry : list) {
    reader.expect_map(entry.second, "node type '" + printable(entry.first.Scalar(), 80) + "'");
    reader.check_keys(entry.second, std::span<const std::string_view>(kHardwareKeys),
                      "a node type");
    reader.read_hardware(entry.second, types[entry.first.Scalar()]);
  }
  return types;
}

Cluster read_cluster_yaml(std::string_view text, const std::string& source) {
  const Reader reader(source);
  const YAML::Node root = parse_document(text, source);
  if (!root || root.IsNull())
    throw ParseError(source, 1, "the file is empty; expected a cluster description");
  reader.expect_map(root, "a cluster description");
  reader.check_keys(root,
                    {"version", "name", "rails", "node_types", "nodes", "nvlink_domains",
                     "switches", "block_sizes", "cost_model"},
                    "the cluster description");
  Cluster cluster;
  cluster.where = reader.where(root);
  read_cluster_scalars(reader, root, cluster);
  if (const YAML::Node types = root["node_types"]) read_cluster_node_types(reader, types, cluster);
  const YAML::Node nodes = root["nodes"];
  if (!nodes) reader.fail(root, "a cluster description needs 'nodes'");
  read_cluster_nodes(reader, nodes, cluster);

  if (const YAML::Node domains = root["nvlink_domains"]) {
    reader.expect_sequence(domains, "'nvlink_domains'");
    for (const auto& entry : domains) {
      cluster.nvlink_domains.push_back(reader.read_nvlink_domain(entry));
    }
  }
  if (const YAML::Node switches = root["switches"]) {
    reader.expect_sequence(switches, "'switches'");
    for (const auto& entry : switches) cluster.switches.push_back(reader.read_switch(entry));
  }
  if (const YAML::Node sizes = root["block_sizes"]) {
    reader.expect_sequence(sizes, "'block_sizes'");
    for (const auto& item : sizes) {
      cluster.block_sizes.push_back(static_cast<int>(reader.integer(item, "a block size")));
    }
  }
  if (const YAML::Node parameters = root["cost_model"]) {
    read_cluster_cost_model(reader, parameters, cluster.cost_model);
  }
  return cluster;
}

}  // namespace haein::topology
