// Discovery on this machine, and on a fake sysfs tree holding two InfiniBand NICs.
#include "haein/topology/discover.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "haein/topology/formats.hpp"
#include "haein/topology/validate.hpp"

namespace haein::topology {
namespace {

namespace fs = std::filesystem;

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text << "\n";
}

TEST(Discover, ThisMachineGivesAValidClusterEvenWithoutGpus) {
  std::vector<std::string> notes;
  const Cluster cluster = discover_local_cluster(&notes);
  ASSERT_EQ(cluster.nodes.size(), 1u);
  const Node& node = cluster.nodes.front();
  EXPECT_FALSE(node.hostname.empty());
  ASSERT_FALSE(node.hardware.numa.empty());
  std::size_t cpus = 0;
  for (const NumaDomain& numa : node.hardware.numa) cpus += numa.cpus.size();
  EXPECT_EQ(cpus, static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  if (node.hardware.gpus.empty()) {
    EXPECT_FALSE(notes.empty()) << "a missing GPU must be reported plainly";
  }
  EXPECT_TRUE(validate(cluster).empty());
  // What discovery writes, validate accepts.
  const Cluster again = read_cluster_yaml(write_cluster_yaml(cluster), "local.yaml");
  EXPECT_TRUE(validate(again).empty());
  EXPECT_EQ(again, cluster);
}

TEST(Discover, ReadsInfinibandPortsAndPciSwitchesFromSysfs) {
  const fs::path root = fs::temp_directory_path() / ("haein-sysfs-" + std::to_string(getpid()));
  fs::remove_all(root);
  // Two NICs: mlx5_10 behind a PCIe switch (root port, upstream, downstream), mlx5_2 on a root
  // port.
  const fs::path switched =
      root / "devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:08.0/0000:1b:00.0";
  const fs::path direct = root / "devices/pci0000:80/0000:80:01.0/0000:81:00.0";
  fs::create_directories(switched);
  fs::create_directories(direct);
  write_file(switched / "numa_node", "1");
  write_file(direct / "numa_node", "-1");
  fs::create_directories(root / "bus/pci/devices");
  fs::create_directory_symlink(switched, root / "bus/pci/devices/0000:1b:00.0");
  fs::create_directory_symlink(direct, root / "bus/pci/devices/0000:81:00.0");
  for (const auto& [name, device, rate, layer] :
       {std::tuple{"mlx5_10", switched, "400 Gb/sec (4X NDR)", "InfiniBand"},
        std::tuple{"mlx5_2", direct, "200 Gb/sec (2X NDR)", "Ethernet"}}) {
    const fs::path dir = root / "class/infiniband" / name;
    fs::create_directories(dir / "ports/1");
    fs::create_directory_symlink(device, dir / "device");
    write_file(dir / "ports/1/rate", rate);
    write_file(dir / "ports/1/link_layer", layer);
  }
  const ScopedEnv sysfs("HAEIN_SYSFS_ROOT", root.string());
  const Discovery found = discover_local_node();
  fs::remove_all(root);
  const std::vector<Nic>& nics = found.node.hardware.nics;
  ASSERT_EQ(nics.size(), 2u);
  EXPECT_EQ(nics[0].name, "mlx5_2");  // numeric order, not text order
  EXPECT_EQ(nics[0].speed_gbps, 200);
  EXPECT_EQ(nics[0].link_layer, LinkLayer::kEthernet);
  EXPECT_EQ(nics[0].pci_bus_id, "0000:81:00.0");
  EXPECT_EQ(nics[0].pci_switch, "");
  EXPECT_EQ(nics[1].name, "mlx5_10");
  EXPECT_EQ(nics[1].speed_gbps, 400);
  EXPECT_EQ(nics[1].pci_switch, "0000:01:00.0");
  EXPECT_EQ(nics[1].rail, 1);
}

TEST(Discover, MissingNvmlIsANoteNotAnError) {
  const ScopedEnv nvml("HAEIN_NVML_LIBRARY", "libhaein-no-such-nvml.so");
  const Discovery found = discover_local_node();
  EXPECT_TRUE(found.node.hardware.gpus.empty());
  bool mentioned = false;
  for (const std::string& note : found.notes)
    mentioned |= note.find("libhaein-no-such-nvml.so") != std::string::npos;
  EXPECT_TRUE(mentioned);
}

TEST(Discover, NormalizesNvmlBusIds) {
  EXPECT_EQ(normalize_pci_bus_id("00000000:1B:00.0"), "0000:1b:00.0");
  EXPECT_EQ(normalize_pci_bus_id("1b:00.0"), "0000:1b:00.0");
  EXPECT_EQ(normalize_pci_bus_id("0000:1b:00.0"), "0000:1b:00.0");
}

}  // namespace
}  // namespace haein::topology
