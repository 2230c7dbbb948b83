#include "haein/topology/discover.hpp"

#include <dlfcn.h>
#include <hwloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>

#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"

namespace haein::topology {

namespace fs = std::filesystem;

namespace {

std::string read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

int numa_of_pci(const fs::path& sysfs, const std::string& bus_id) {
  const std::string text = read_first_line(sysfs / "bus/pci/devices" / bus_id / "numa_node");
  try {
    return std::max(0, std::stoi(text));  // -1: the platform reports no locality
  } catch (const std::exception&) {
    return 0;
  }
}

// The PCIe switch above a device, from its sysfs path
// /sys/devices/pci0000:00/<root port>/<switch upstream>/<switch downstream>/<device>:
// the upstream port names the switch. Devices on a root port have none.
std::string pci_switch_of(const fs::path& sysfs, const std::string& bus_id) {
  std::error_code error;
  const fs::path real = fs::canonical(sysfs / "bus/pci/devices" / bus_id, error);
  if (error) return {};
  std::vector<std::string> chain;
  for (const fs::path& part : real) {
    const std::string name = part.string();
    if (name.size() == 12 && name[4] == ':' && name[7] == ':' && name[10] == '.')
      chain.push_back(name);
  }
  // chain = root port, [upstream, downstream]..., device
  if (chain.size() >= 4) return chain[1];
  return {};
}

// NVML types and entry points used here (nvml.h is not needed at build time).
struct NvmlPciInfo {
  char bus_id_legacy[16];
  unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
  char bus_id[32];
};
using NvmlDevice = struct NvmlDeviceOpaque*;
constexpr int kNvmlSuccess = 0;
constexpr unsigned int kNvmlMaxLinks = 18;

struct LibraryCloser {
  void operator()(void* handle) const { dlclose(handle); }
};

/// Blocks every signal in this thread while NVML loads and initialises, so that the
/// helper threads the NVIDIA driver starts then (they live as long as the process) are
/// born with all signals blocked. Otherwise the kernel may hand them a SIGCHLD or SIGINT
/// meant for haein run's supervisor, which waits for its signals on a signalfd: a lost
/// SIGCHLD left haein run waiting for an mpirun that had exited (seen on an H100,
/// 2026-11-27), and a SIGINT taken there would kill haein run without stopping the job.
class SignalsBlockedForNewThreads {
 public:
  SignalsBlockedForNewThreads() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old_);
  }
  ~SignalsBlockedForNewThreads() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalsBlockedForNewThreads(const SignalsBlockedForNewThreads&) = delete;
  SignalsBlockedForNewThreads& operator=(const SignalsBlockedForNewThreads&) = delete;

 private:
  sigset_t old_{};
};

void discover_gpus(Discovery& result, const fs::path& sysfs) {
  const std::string library = settings::kNvmlLibrary.get();
  const SignalsBlockedForNewThreads blocked;
  std::unique_ptr<void, LibraryCloser> nvml(dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!nvml) {
    result.notes.push_back("NVML (" + library +
                           ") is not loadable, so no GPUs are listed: " + std::string(dlerror()));
    return;
  }
  const auto symbol = [&](const char* name) { return dlsym(nvml.get(), name); };
  auto init = reinterpret_cast<int (*)()>(symbol("nvmlInit_v2"));
  auto shutdown = reinterpret_cast<int (*)()>(symbol("nvmlShutdown"));
  auto count_fn = reinterpret_cast<int (*)(unsigned int*)>(symbol("nvmlDeviceGetCount_v2"));
  auto handle_fn =
      reinterpret_cast<int (*)(unsigned int, NvmlDevice*)>(symbol("nvmlDeviceGetHandleByIndex_v2"));
  auto pci_fn =
      reinterpret_cast<int (*)(NvmlDevice, NvmlPciInfo*)>(symbol("nvmlDeviceGetPciInfo_v3"));
  auto name_fn =
      reinterpret_cast<int (*)(NvmlDevice, char*, unsigned int)>(symbol("nvmlDeviceGetName"));
  auto cc_fn = reinterpret_cast<int (*)(NvmlDevice, int*, int*)>(
      symbol("nvmlDeviceGetCudaComputeCapability"));
  auto link_fn =
      reinterpret_cast<int (*)(NvmlDevice, unsigned int, int*)>(symbol("nvmlDeviceGetNvLinkState"));
  if (!init || !shutdown || !count_fn || !handle_fn || !pci_fn) {
    result.notes.push_back("NVML (" + library +
                           ") lacks the functions discovery needs; no GPUs listed");
    return;
  }
  if (init() != kNvmlSuccess) {
    result.notes.push_back("NVML did not initialise (no NVIDIA driver loaded?); no GPUs listed");
    return;
  }
  unsigned int count = 0;
  if (count_fn(&count) != kNvmlSuccess) count = 0;
  NodeHardware& hw = result.node.hardware;
  unsigned int most_links = 0;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    NvmlPciInfo pci{};
    if (handle_fn(i, &device) != kNvmlSuccess || pci_fn(device, &pci) != kNvmlSuccess) continue;
    Gpu gpu;
    gpu.index = static_cast<int>(i);
    gpu.pci_bus_id = normalize_pci_bus_id(pci.bus_id);
    gpu.numa = numa_of_pci(sysfs, gpu.pci_bus_id);
    gpu.pci_switch = pci_switch_of(sysfs, gpu.pci_bus_id);
    hw.gpus.push_back(gpu);
    char name[96] = {};
    if (name_fn && hw.gpu_model.empty() && name_fn(device, name, sizeof name) == kNvmlSuccess)
      hw.gpu_model = name;
    int major = 0, minor = 0;
    if (cc_fn && cc_fn(device, &major, &minor) == kNvmlSuccess)
      hw.compute_capability = major * 10 + minor;
    unsigned int links = 0;
    for (unsigned int link = 0; link < kNvmlMaxLinks && link_fn; ++link) {
      int active = 0;
      if (link_fn(device, link, &active) == kNvmlSuccess && active) ++links;
    }
    most_links = std::max(most_links, links);
  }
  if (most_links > 0) {
    hw.nvlink = NvlinkScope::kNode;
    hw.nvlink_gbps = most_links * (hw.compute_capability >= 100 ? 50.0 : 25.0);
    result.notes.push_back(
        "NVLink domains larger than this node (NVL72 racks) are not discovered; "
        "describe them in the cluster file");
  }
  shutdown();
  if (count == 0) result.notes.push_back("NVML found no GPUs");
}

void discover_nics(Discovery& result, const fs::path& sysfs) {
  const fs::path root = sysfs / "class/infiniband";
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    result.notes.push_back("no RDMA devices (" + root.string() +
                           " is absent), so no NICs are listed");
    return;
  }
  std::vector<std::string> devices;
  for (const auto& entry : fs::directory_iterator(root, error))
    devices.push_back(entry.path().filename());
  // mlx5_2 before mlx5_10: sort by name length, then name.
  std::sort(devices.begin(), devices.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  int rail = 0;
  for (const std::string& device : devices) {
    const fs::path dir = root / device;
    const std::string bus_id = fs::canonical(dir / "device", error).filename();
    std::vector<int> ports;
    for (const auto& port : fs::directory_iterator(dir / "ports", error)) {
      try {
        ports.push_back(std::stoi(port.path().filename().string()));
      } catch (const std::exception&) {
      }
    }
    std::sort(ports.begin(), ports.end());
    for (int port : ports) {
      const fs::path port_dir = dir / "ports" / std::to_string(port);
      Nic nic;
      nic.name = device;
      nic.port = port;
      try {
        nic.speed_gbps = std::stod(read_first_line(port_dir / "rate"));  // "400 Gb/sec (4X NDR)"
      } catch (const std::exception&) {
        nic.speed_gbps = 0;
      }
      nic.link_layer = read_first_line(port_dir / "link_layer") == "Ethernet"
                           ? LinkLayer::kEthernet
                           : LinkLayer::kInfiniBand;
      nic.pci_bus_id = error ? std::string() : bus_id;
      nic.numa = nic.pci_bus_id.empty() ? 0 : numa_of_pci(sysfs, nic.pci_bus_id);
      nic.pci_switch =
          nic.pci_bus_id.empty() ? std::string() : pci_switch_of(sysfs, nic.pci_bus_id);
      nic.rail = rail++;
      result.node.hardware.nics.push_back(nic);
    }
  }
  if (result.node.hardware.nics.empty())
    result.notes.push_back("no RDMA ports found under " + root.string());
}

struct TopologyCloser {
  void operator()(hwloc_topology* topology) const { hwloc_topology_destroy(topology); }
};

void discover_numa(Discovery& result) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) throw Error("hwloc_topology_init failed");
  std::unique_ptr<hwloc_topology, TopologyCloser> topology(raw);
  if (hwloc_topology_load(raw) != 0)
    throw Error("hwloc_topology_load failed: cannot read this machine's CPUs");
  const int count = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < count; ++i) {
    hwloc_obj_t numa = hwloc_get_obj_by_type(raw, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    NumaDomain domain;
    domain.id = static_cast<int>(numa->os_index);
    unsigned int cpu = 0;
    hwloc_bitmap_foreach_begin(cpu, numa->cpuset) { domain.cpus.push_back(static_cast<int>(cpu)); }
    hwloc_bitmap_foreach_end();
    result.node.hardware.numa.push_back(std::move(domain));
  }
  if (result.node.hardware.numa.empty()) {
    NumaDomain domain;
    unsigned int cpu = 0;
    hwloc_bitmap_foreach_begin(cpu, hwloc_topology_get_topology_cpuset(raw)) {
      domain.cpus.push_back(static_cast<int>(cpu));
    }
    hwloc_bitmap_foreach_end();
    result.node.hardware.numa.push_back(std::move(domain));
  }
}

}  // namespace

std::string normalize_pci_bus_id(const std::string& bus_id) {
  std::string text = bus_id;
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto colon = text.find(':');
  if (colon != std::string::npos && colon > 4) text.erase(0, colon - 4);  // 8-digit domain
  if (colon == 2) text.insert(0, "0000:");                                // no domain
  return text;
}

Discovery discover_local_node() {
  Discovery result;
  result.node.hostname = host_name();
  const fs::path sysfs = settings::kSysfsRoot.get();
  discover_numa(result);
  discover_gpus(result, sysfs);
  discover_nics(result, sysfs);
  // Devices on a NUMA domain hwloc did not report (a VM hiding its NUMA layout) go to the first.
  NodeHardware& hw = result.node.hardware;
  const auto known = [&](int id) {
    return std::any_of(hw.numa.begin(), hw.numa.end(),
                       [&](const NumaDomain& d) { return d.id == id; });
  };
  for (Gpu& gpu : hw.gpus) {
    if (!known(gpu.numa)) gpu.numa = hw.numa.front().id;
  }
  for (Nic& nic : hw.nics) {
    if (!known(nic.numa)) nic.numa = hw.numa.front().id;
  }
  return result;
}

Cluster discover_local_cluster(std::vector<std::string>* notes) {
  Discovery discovery = discover_local_node();
  Cluster cluster;
  cluster.name = discovery.node.hostname;
  cluster.rails = static_cast<int>(discovery.node.hardware.nics.size());
  cluster.nodes.push_back(std::move(discovery.node));
  if (notes != nullptr) *notes = std::move(discovery.notes);
  return cluster;
}

}  // namespace haein::topology
