#pragma once
/// @file
/// The cluster model: nodes with their GPUs, NICs and NUMA domains, NVLink domains, rails
/// and the switch tree. Pure data: loaded, saved, compared and validated by the functions
/// in the other headers of this module.

#include <map>
#include <string>
#include <vector>

namespace haein::topology {

/// Where a piece of the model was read from, for error messages. Not part of the model's
/// value: two models that differ only in where they came from compare equal.
struct SourceLocation {
  std::string file;
  int line = 0;  ///< 1-based; 0 when unknown
  friend bool operator==(const SourceLocation&, const SourceLocation&) { return true; }
};

/// Cores of one NUMA domain, as Linux CPU numbers (hardware threads, /sys/devices/system/cpu).
struct NumaDomain {
  int id = 0;
  std::vector<int> cpus;
  SourceLocation where;
  bool operator==(const NumaDomain&) const = default;
};

/// The most slots (processes) a node may declare: far past any machine, small enough that
/// sums over a million nodes stay exact.
constexpr int kMaxSlots = 1'000'000;

/// The most nodes a cluster description may hold (a 50,000-GPU cluster of 4-GPU trays has
/// 12,500): a few bytes of host range must not become gigabytes of nodes.
constexpr std::size_t kMaxNodes = 100'000;

struct Gpu {
  int index = 0;           ///< device ordinal on its node (PCI order, as CUDA enumerates)
  std::string pci_bus_id;  ///< "0000:1b:00.0", lower case
  int numa = 0;            ///< NUMA domain id on its node
  /// PCI bus id of the PCIe switch (bridge) above it; GPUs and NICs under the same switch
  /// are closest. Empty when attached to the root complex directly.
  std::string pci_switch;
  SourceLocation where;
  bool operator==(const Gpu&) const = default;
};

enum class LinkLayer { kInfiniBand, kEthernet };

struct Nic {
  std::string name;  ///< RDMA device name, e.g. "mlx5_3"
  int port = 1;
  double speed_gbps = 0;  ///< line rate of the port, Gb/s
  LinkLayer link_layer = LinkLayer::kInfiniBand;
  std::string pci_bus_id;
  int numa = 0;
  std::string pci_switch;  ///< see Gpu::pci_switch
  int rail = -1;           ///< compute-fabric rail, -1 for NICs outside the rails (storage)
  SourceLocation where;
  bool operator==(const Nic&) const = default;
};

/// How far the GPUs of a node reach over NVLink.
enum class NvlinkScope {
  kNone,  ///< PCIe only
  kNode,  ///< all GPUs of the node share an NVSwitch (DGX/HGX)
  kRack,  ///< the node's GPUs join a multi-node NVLink domain (GB200 NVL72)
};

/// The hardware inside one node; node types (templates) are named instances of it.
struct NodeHardware {
  std::string gpu_model;       ///< "H100-SXM5-80GB", "B200"; empty when unknown
  int compute_capability = 0;  ///< 90 for Hopper, 100 for Blackwell; 0 when unknown
  NvlinkScope nvlink = NvlinkScope::kNone;
  double nvlink_gbps = 0;  ///< per-GPU NVLink bandwidth, one direction, GB/s
  std::vector<NumaDomain> numa;
  std::vector<Gpu> gpus;
  std::vector<Nic> nics;
  /// True when the PCI bus ids are stand-ins rather than a real machine's (a built-in type
  /// whose vendor publishes no PCI layout). NCCL topology files are refused for such nodes:
  /// NCCL would match GPUs and NICs by bus ids that do not exist.
  bool placeholder_pci = false;
  bool operator==(const NodeHardware&) const = default;
};

struct Node {
  std::string hostname;
  std::string type;  ///< node type it was made from, empty when described inline
  NodeHardware hardware;
  int slots = 0;  ///< processes it may run; 0 means one per GPU (or 1 without GPUs)
  SourceLocation where;
  bool operator==(const Node&) const = default;

  /// Processes this node may run.
  int effective_slots() const {
    if (slots > 0) return slots;
    return hardware.gpus.empty() ? 1 : static_cast<int>(hardware.gpus.size());
  }
};

/// A set of nodes whose GPUs talk over NVLink: one DGX node, or a GB200 NVL72 rack.
struct NvlinkDomain {
  std::string name;
  std::vector<std::string> nodes;  ///< hostnames
  SourceLocation where;
  bool operator==(const NvlinkDomain&) const = default;
};

enum class SwitchLevel { kLeaf = 0, kSpine = 1, kCore = 2 };

/// A switch of the fabric tree. A leaf lists nodes; spines and cores list switches.
///
/// Rail-optimized fabrics come in two forms (docs/cluster-format.md):
/// - a leaf without `rail` stands for all the rails of its nodes: one switch that every
///   rail NIC plugs into, or a scalable unit's per-rail leaves drawn as one;
/// - per-rail leaves (`rail: r`), one per rail of a unit, each listing the unit's nodes,
///   with per-rail spine groups above them (`rail: r` on the spine). A unit's rail leaves
///   list the same nodes; FabricIndex treats them as one leaf (the unit).
/// An entry may stand for several identical switches (`count`), such as a spine group.
struct Switch {
  std::string name;
  SwitchLevel level = SwitchLevel::kLeaf;
  std::vector<std::string> nodes;     ///< hostnames (leaves)
  std::vector<std::string> children;  ///< switch names (spines, cores)
  double link_gbps = 0;               ///< per-link speed, 0 when unknown
  /// Down-link bandwidth per up-link bandwidth at this switch (1 = non-blocking, 2 = half
  /// as much up as down). With equal link speeds, up-links = ceil(down-links / this).
  double oversubscription = 1.0;
  /// The rail this switch serves in a rail-optimized fabric, -1 = all rails.
  int rail = -1;
  /// Ports of one switch, 0 when unknown. Validation checks that down-links plus up-links
  /// fit in radix x count (FabricPorts in fabric.hpp counts them).
  int radix = 0;
  /// Identical switches this entry stands for (a spine group of 16, say); radix is per
  /// switch, links are counted over the group.
  int count = 1;
  /// Independent network plane of a multi-plane fabric, -1 when the fabric is one plane.
  /// Switches of different planes never connect: traffic between planes crosses a node.
  int plane = -1;
  /// In-network reduction (InfiniBand SHARP) that the cluster's jobs use: NCCL's CollNet
  /// algorithms (NCCL_COLLNET_ENABLE=1 with the SHARP plugin) run where every switch joining
  /// a job's nodes has it.
  bool sharp = false;
  SourceLocation where;
  bool operator==(const Switch&) const = default;
};

struct Cluster {
  std::string name;
  int rails = 0;  ///< compute-fabric rails (NICs per node on separate planes)
  std::map<std::string, NodeHardware> node_types;  ///< templates named by the file
  std::vector<Node> nodes;
  std::vector<NvlinkDomain> nvlink_domains;  ///< explicit multi-node domains only
  std::vector<Switch> switches;
  std::vector<int> block_sizes;  ///< from Slurm's block syntax, empty otherwise
  /// Cost-model parameters fitted to this cluster (`haein topo calibrate`), by name; the
  /// defaults (topology/cost_model.hpp) hold for the others.
  std::map<std::string, double> cost_model;
  SourceLocation where;
  bool operator==(const Cluster&) const = default;

  int gpu_count() const;
  /// Whether some switch reduces in the network (Switch::sharp).
  bool has_sharp() const;
  /// Index of the node with this hostname, or -1.
  int find_node(const std::string& hostname) const;
  /// Name of the NVLink domain of a node: its explicit domain, its own hostname when its
  /// GPUs share an NVSwitch, or empty when it has none.
  std::string nvlink_domain_of(const Node& node) const;
  /// The leaf switch holding the node, or nullptr.
  const Switch* leaf_of(const std::string& hostname) const;
  /// The switch whose children include this one, or nullptr.
  const Switch* parent_of(const std::string& switch_name) const;
};

std::string_view to_string(SwitchLevel level);
std::string_view to_string(NvlinkScope scope);
std::string_view to_string(LinkLayer layer);

}  // namespace haein::topology
