// Large fabrics: per-rail leaves and spine groups, three tiers, oversubscription, radix
// checks, planes; the presets built from them; and their bad input.
#include "haein/topology/fabric.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"
#include "haein/topology/summary.hpp"
#include "haein/topology/validate.hpp"

namespace haein::topology {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Physical switches per level, summed over the entries' counts.
std::map<SwitchLevel, int> switches_per_level(const Cluster& cluster) {
  std::map<SwitchLevel, int> total;
  for (const Switch& s : cluster.switches) total[s.level] += s.count;
  return total;
}

// Cables between a level and the one above, from the link counts.
std::map<SwitchLevel, long long> up_links_per_level(const Cluster& cluster) {
  const std::vector<SwitchLinks> links = count_switch_links(cluster);
  std::map<SwitchLevel, long long> total;
  for (std::size_t i = 0; i < links.size(); ++i) total[cluster.switches[i].level] += links[i].up;
  return total;
}

long long node_links(const Cluster& cluster) {
  const std::vector<SwitchLinks> links = count_switch_links(cluster);
  long long total = 0;
  for (std::size_t i = 0; i < links.size(); ++i)
    if (cluster.switches[i].level == SwitchLevel::kLeaf) total += links[i].down;
  return total;
}

// The DGX SuperPOD B200 reference architecture's table of larger configurations (docs/presets.md):
// switches per level and cables per tier. 1 SU is not in the table: its spines follow the
// ratio of the two-tier rows (a spine per two leaves).
struct SuperpodRow {
  const char* preset;
  int nodes, leaves, spines, cores;
  long long node_leaf, leaf_spine, spine_core;
};

TEST(FabricPresets, SuperpodsMatchTheReferenceArchitectureCounts) {
  for (const SuperpodRow& row :
       {SuperpodRow{"dgx-b200-superpod-1su", 32, 8, 4, 0, 256, 256, 0},
        SuperpodRow{"dgx-b200-superpod-4su", 128, 32, 16, 0, 1024, 1024, 0},
        SuperpodRow{"dgx-b200-superpod-16su", 512, 128, 128, 64, 4096, 4096, 4096}}) {
    SCOPED_TRACE(row.preset);
    const Cluster cluster = load_preset(row.preset);
    EXPECT_TRUE(validate(cluster).empty());
    EXPECT_EQ(static_cast<int>(cluster.nodes.size()), row.nodes);
    EXPECT_EQ(cluster.gpu_count(), 8 * row.nodes);
    std::map<SwitchLevel, int> switches = switches_per_level(cluster);
    EXPECT_EQ(switches[SwitchLevel::kLeaf], row.leaves);
    EXPECT_EQ(switches[SwitchLevel::kSpine], row.spines);
    EXPECT_EQ(switches[SwitchLevel::kCore], row.cores);
    std::map<SwitchLevel, long long> up = up_links_per_level(cluster);
    EXPECT_EQ(node_links(cluster), row.node_leaf);
    EXPECT_EQ(up[SwitchLevel::kLeaf], row.leaf_spine);
    EXPECT_EQ(up[SwitchLevel::kSpine], row.spine_core);
    // Non-blocking: every leaf has as many links up as down, and the 64 ports are used.
    const std::vector<SwitchLinks> links = count_switch_links(cluster);
    for (std::size_t i = 0; i < links.size(); ++i) {
      const Switch& s = cluster.switches[i];
      EXPECT_EQ(s.radix, 64) << s.name;
      if (s.level == SwitchLevel::kLeaf) {
        EXPECT_EQ(links[i].down, links[i].up) << s.name;
      }
      EXPECT_EQ(links[i].down + links[i].up, 64LL * s.count) << s.name;
    }
  }
}

TEST(FabricPresets, SuperpodUnitsAreOneLeafEachWithRailSpinesAndACore) {
  const Cluster cluster = load_preset("dgx-b200-superpod-16su");
  const FabricIndex fabric(cluster);
  EXPECT_TRUE(fabric.has_rail_leaves());
  EXPECT_EQ(fabric.leaf_count(), 16);  // the units
  const int a = cluster.find_node("su03-dgx07");
  const int b = cluster.find_node("su03-dgx31");
  const int c = cluster.find_node("su11-dgx07");
  ASSERT_GE(a, 0);
  ASSERT_GE(c, 0);
  EXPECT_EQ(fabric.leaf_of(a), fabric.leaf_of(b));
  EXPECT_NE(fabric.leaf_of(a), fabric.leaf_of(c));
  EXPECT_EQ(fabric.leaf_name(fabric.leaf_of(a)), "su03-leaf-r0");
  EXPECT_EQ(fabric.nodes_of_leaf(fabric.leaf_of(a)).size(), 32u);
  for (int rail = 0; rail < 8; ++rail) {
    EXPECT_EQ(fabric.leaf_switch(fabric.leaf_of(a), rail).name,
              "su03-leaf-r" + std::to_string(rail));
    // Rail r of every unit meets in the rail's spine group; the rails meet at the core.
    const int spine = fabric.spine_of(a, rail);
    ASSERT_GE(spine, 0);
    EXPECT_EQ(fabric.spine_name(spine), "spine-r" + std::to_string(rail));
    EXPECT_EQ(fabric.spine_of(c, rail), spine);
    EXPECT_EQ(fabric.spine_switch(spine).count, 16);
    EXPECT_EQ(fabric.core_name(fabric.core_of(a, rail)), "core");
  }
  EXPECT_EQ(fabric.spine_of(a), fabric.spine_of(a, 0));  // the lowest rail's, without a rail
  std::ostringstream summary;
  print_summary(cluster, summary);
  EXPECT_NE(summary.str().find("spine 8 (128 switches) [spine-r[0-7]] core 1 (64 switches)"),
            std::string::npos)
      << summary.str();
  EXPECT_EQ(fabric.spine_count(), 8);
  EXPECT_EQ(fabric.core_count(), 1);
  EXPECT_EQ(fabric.core_switch(0).count, 64);
}

TEST(FabricPresets, Nvl72FactoryIsFiftyThousandGpusOnFourPlanes) {
  auto start = Clock::now();
  const Cluster cluster = load_preset("nvl72-factory-50k");  // read and validated
  const double load_s = seconds_since(start);
  start = Clock::now();
  const FabricIndex fabric(cluster);
  const double index_s = seconds_since(start);
  std::cout << "[ measured ] nvl72-factory-50k: read + validate " << load_s * 1e3
            << " ms, FabricIndex " << index_s * 1e3 << " ms\n";
  // A bound far above what it takes (see docs/presets.md for the measurement), low enough
  // to catch a quadratic step over 12,492 nodes.
  EXPECT_LT(load_s + index_s, 5.0);

  EXPECT_EQ(cluster.gpu_count(), 694 * 72);
  EXPECT_EQ(cluster.nodes.size(), 694u * 18);
  EXPECT_EQ(cluster.nvlink_domains.size(), 694u);
  EXPECT_EQ(fabric.domain_count(), 694);
  // Two racks per leaf: the 36 trays of racks 1-2 share a leaf on every rail, rack 3 is on
  // the next leaf of the same pod, rack 33 in the next pod.
  const int r1 = cluster.find_node("r001t01");
  const int r2 = cluster.find_node("r002t18");
  const int r3 = cluster.find_node("r003t01");
  const int r33 = cluster.find_node("r033t01");
  EXPECT_EQ(fabric.leaf_of(r1), fabric.leaf_of(r2));
  EXPECT_NE(fabric.leaf_of(r1), fabric.leaf_of(r3));
  EXPECT_EQ(fabric.nodes_of_leaf(fabric.leaf_of(r1)).size(), 36u);
  for (int rail = 0; rail < 4; ++rail) {
    EXPECT_EQ(fabric.spine_of(r1, rail), fabric.spine_of(r3, rail));
    EXPECT_NE(fabric.spine_of(r1, rail), fabric.spine_of(r33, rail));
    EXPECT_EQ(fabric.core_of(r1, rail), fabric.core_of(r33, rail));
    EXPECT_EQ(fabric.plane_of_rail(rail), rail);
    // Per-tier oversubscription as the preset states it.
    EXPECT_EQ(fabric.leaf_switch(fabric.leaf_of(r1), rail).oversubscription, 1.5);
    EXPECT_EQ(fabric.spine_switch(fabric.spine_of(r1, rail)).oversubscription, 2.0);
  }
  EXPECT_NE(fabric.core_of(r1, 0), fabric.core_of(r1, 1));  // planes never meet
  // Every switch fits its radix (validation passed); the leaves use 36 + 24 of 64 ports.
  const std::vector<SwitchLinks> links = count_switch_links(cluster);
  EXPECT_EQ(links[0].down, 36);
  EXPECT_EQ(links[0].up, 24);
}

TEST(FabricIndex, IndexesTwelveThousandNodesInMilliseconds) {
  const Cluster cluster = load_preset("nvl72-factory-50k");
  const auto start = Clock::now();
  constexpr int kRepeats = 5;
  long long checksum = 0;
  for (int i = 0; i < kRepeats; ++i) {
    const FabricIndex fabric(cluster);
    checksum += fabric.leaf_count();
  }
  const double each_ms = seconds_since(start) * 1e3 / kRepeats;
  std::cout << "[ measured ] FabricIndex of 12,492 nodes: " << each_ms << " ms\n";
  EXPECT_EQ(checksum, kRepeats * 347LL);
  EXPECT_LT(each_ms, 1000.0);
}

// Files with one spine over all-rails leaves keep their meaning.
TEST(FabricIndex, TwoTierFilesKeepTheirLeavesAndSpines) {
  const Cluster cluster = load_preset("haein");
  const FabricIndex fabric(cluster);
  EXPECT_FALSE(fabric.has_rail_leaves());
  EXPECT_EQ(fabric.leaf_count(), 4);
  EXPECT_EQ(fabric.spine_count(), 1);
  EXPECT_EQ(fabric.core_count(), 0);
  const int node = cluster.find_node("b200-033");
  EXPECT_EQ(fabric.leaf_name(fabric.leaf_of(node)), "su2");
  for (int rail = -1; rail < 8; ++rail) {
    EXPECT_EQ(fabric.spine_of(node, rail), fabric.spine_of(node));
    EXPECT_EQ(fabric.leaf_switch(fabric.leaf_of(node), rail).name, "su2");
  }
  EXPECT_EQ(fabric.core_of(node), -1);
  EXPECT_EQ(fabric.plane_of_rail(0), -1);
}

// A leaf hanging directly off a core counts the core as its spine, as before cores were
// indexed; the core above a real spine is that spine's core.
TEST(FabricIndex, ALeafUnderACoreKeepsTheCoreAsItsSpine) {
  const Cluster cluster = read_cluster_yaml(R"(nodes:
  - {hostname: "n[1-2]"}
switches:
  - {name: l1, level: leaf, nodes: n1}
  - {name: l2, level: leaf, nodes: n2}
  - {name: s, level: spine, switches: l1}
  - {name: c, level: core, switches: "s,l2"}
)",
                                            "legacy.yaml");
  ASSERT_TRUE(validate(cluster).empty());
  const FabricIndex fabric(cluster);
  EXPECT_EQ(fabric.spine_name(fabric.spine_of(0)), "s");
  EXPECT_EQ(fabric.spine_name(fabric.spine_of(1)), "c");
  EXPECT_EQ(fabric.core_name(fabric.core_of(0)), "c");
  EXPECT_EQ(fabric.core_of(1), -1);
  EXPECT_EQ(fabric.spine_count(), 2);
  EXPECT_EQ(fabric.core_count(), 1);
}

constexpr const char* kThreeTiers = R"(rails: 2
nodes:
  - {hostname: "n[1-8]", numa: [{id: 0}], nics: [{name: a, rail: 0}, {name: b, rail: 1}]}
switches:
  - {name: u1-r0, level: leaf, rail: 0, nodes: "n[1-4]", radix: 8}
  - {name: u1-r1, level: leaf, rail: 1, nodes: "n[1-4]", radix: 8}
  - {name: u2-r0, level: leaf, rail: 0, nodes: "n[5-8]", oversubscription: 2, radix: 8}
  - {name: u2-r1, level: leaf, rail: 1, nodes: "n[5-8]", radix: 8}
  - {name: s-r0, level: spine, rail: 0, switches: "u[1-2]-r0", count: 2, radix: 8, oversubscription: 1.5}
  - {name: s-r1, level: spine, rail: 1, switches: "u[1-2]-r1", count: 2, radix: 8}
  - {name: top, level: core, switches: "s-r[0-1]", radix: 16}
)";

TEST(FabricIndex, ThreeTiersWithRailSpineGroups) {
  const Cluster cluster = read_cluster_yaml(kThreeTiers, "three.yaml");
  ASSERT_TRUE(validate(cluster).empty()) << describe(validate(cluster).front());
  const FabricIndex fabric(cluster);
  EXPECT_EQ(fabric.leaf_count(), 2);
  EXPECT_EQ(fabric.leaf_name(0), "u1-r0");
  EXPECT_EQ(fabric.leaf_name(1), "u2-r0");
  EXPECT_EQ(fabric.leaf_of(4), 1);
  EXPECT_EQ(fabric.nodes_of_leaf(1), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(fabric.spine_name(fabric.spine_of(0, 1)), "s-r1");
  EXPECT_EQ(fabric.spine_name(fabric.spine_of(7, 0)), "s-r0");
  EXPECT_EQ(fabric.spine_of(0, 5), fabric.spine_of(0));  // a rail it has no leaf for
  EXPECT_EQ(fabric.core_of(0, 0), fabric.core_of(7, 1));
  EXPECT_EQ(fabric.core_name(fabric.core_of(0)), "top");
  // Hand count: u1 leaves 4 down, 4 up; u2-r0 4 down, 2 up (2:1); s-r0 6 down, 4 up
  // (ceil(6 / 1.5)); s-r1 8 down, 8 up; top 12 down.
  const std::vector<SwitchLinks> links = count_switch_links(cluster);
  const std::vector<std::pair<long long, long long>> expected = {{4, 4}, {4, 4}, {4, 2}, {4, 4},
                                                                 {6, 4}, {8, 8}, {12, 0}};
  ASSERT_EQ(links.size(), expected.size());
  for (std::size_t i = 0; i < links.size(); ++i) {
    EXPECT_EQ(links[i].down, expected[i].first) << cluster.switches[i].name;
    EXPECT_EQ(links[i].up, expected[i].second) << cluster.switches[i].name;
  }
}

TEST(FabricFormats, NewSwitchFieldsRoundTripThroughYamlAndJson) {
  const Cluster cluster = read_cluster_yaml(kThreeTiers, "three.yaml");
  const std::string yaml = write_cluster_yaml(cluster);
  EXPECT_EQ(read_cluster_yaml(yaml, "again.yaml"), cluster) << yaml;
  EXPECT_NE(yaml.find("oversubscription: 1.5"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("count: 2"), std::string::npos) << yaml;
  EXPECT_EQ(parse_cluster(write_cluster_json(cluster), Format::kJson, "c.json"), cluster);
  Cluster odd = cluster;
  odd.switches[2].oversubscription = 9.0 / 7.0;  // exact through text
  odd.switches[6].plane = 3;
  odd.switches[0].sharp = true;
  EXPECT_NE(write_cluster_yaml(odd).find("sharp: true"), std::string::npos);
  EXPECT_EQ(read_cluster_yaml(write_cluster_yaml(odd), "odd.yaml"), odd);
  EXPECT_EQ(parse_cluster(write_cluster_json(odd), Format::kJson, "odd.json"), odd);
}

TEST(FabricFormats, SlurmGetsOneLeafPerNodeFromARailFabric) {
  const Cluster cluster = load_preset("dgx-b200-superpod-16su");
  const std::string conf = write_slurm_topology(cluster);
  const Cluster tree = read_slurm_topology(conf, "topology.conf");
  std::set<std::string> seen;
  int leaves = 0;
  for (const Switch& s : tree.switches) {
    if (s.nodes.empty()) continue;
    ++leaves;
    for (const std::string& host : s.nodes) EXPECT_TRUE(seen.insert(host).second) << host;
  }
  EXPECT_EQ(leaves, 16);
  EXPECT_EQ(seen.size(), 512u);
  EXPECT_EQ(conf.find("leaf-r1"), std::string::npos) << conf;
  EXPECT_NE(conf.find("SwitchName=spine-r0 Switches=su[01-16]-leaf-r0 "), std::string::npos)
      << conf;
  EXPECT_NE(conf.find("SwitchName=core Switches=spine-r0"), std::string::npos) << conf;
}

// ---- bad input: every problem names the file, the line and what is wrong ----

struct Expected {
  int line;
  std::string contains;
};

// The first problem of a file that reads but does not validate.
void expect_problem(const std::string& text, Expected expected) {
  const Cluster cluster = read_cluster_yaml(text, "fabric.yaml");
  try {
    require_valid(cluster);
    FAIL() << "expected a problem containing '" << expected.contains << "'";
  } catch (const ParseError& error) {
    EXPECT_EQ(error.file(), "fabric.yaml") << error.what();
    EXPECT_EQ(error.line(), expected.line) << error.what();
    EXPECT_NE(std::string(error.what()).find(expected.contains), std::string::npos) << error.what();
  }
}

void expect_read_error(const std::string& text, Expected expected) {
  try {
    read_cluster_yaml(text, "fabric.yaml");
    FAIL() << "expected a ParseError containing '" << expected.contains << "'";
  } catch (const ParseError& error) {
    EXPECT_EQ(error.line(), expected.line) << error.what();
    EXPECT_EQ(std::string(error.what()).rfind("fabric.yaml:" + std::to_string(expected.line), 0),
              0u)
        << error.what();
    EXPECT_NE(std::string(error.what()).find(expected.contains), std::string::npos) << error.what();
  }
}

// `text` (kThreeTiers by default) with line `line` (1-based) replaced.
std::string with_line(int line, const std::string& replacement, std::string text = kThreeTiers) {
  std::size_t start = 0;
  for (int i = 1; i < line; ++i) start = text.find('\n', start) + 1;
  const std::size_t end = text.find('\n', start);
  return text.replace(start, end - start, replacement);
}

TEST(BadFabric, FieldsOutOfRangeAreReadErrors) {
  expect_read_error(with_line(5, "  - {name: u1-r0, level: leaf, oversubscription: 0, nodes: n1}"),
                    {5, "'oversubscription' must be positive"});
  expect_read_error(with_line(5, "  - {name: u1-r0, level: leaf, radix: -4, nodes: n1}"),
                    {5, "switch 'radix' must be between 0 and 1000000, got -4"});
  expect_read_error(with_line(5, "  - {name: u1-r0, level: leaf, count: 0, nodes: n1}"),
                    {5, "switch 'count' must be between 1"});
  expect_read_error(with_line(5, "  - {name: u1-r0, level: leaf, rail: 4294967296, nodes: n1}"),
                    {5, "switch 'rail' must be between -1 and 1000000"});
  expect_read_error(with_line(5, "  - {name: u1-r0, level: leaf, ports: 64, nodes: n1}"),
                    {5,
                     "unknown key 'ports' in a switch entry; expected one of: name, level, "
                     "nodes, switches, link_gbps, oversubscription, rail, radix, count, plane, "
                     "sharp"});
  expect_read_error(with_line(5, "  - {name: u1-r0, level: leaf, sharp: yes-ish, nodes: n1}"),
                    {5, "switch 'sharp' must be one of true, false"});
  expect_read_error("nodes:\n  - {hostname: a, placeholder_pci: maybe}\n",
                    {2, "'placeholder_pci' must be one of true, false"});
}

TEST(BadFabric, RailBeyondTheClusterRails) {
  expect_problem(with_line(6, "  - {name: u1-r1, level: leaf, rail: 2, nodes: \"n[1-4]\"}"),
                 {6, "leaf switch u1-r1 serves rail 2 but the cluster has 2 rails"});
}

TEST(BadFabric, RadixTooSmallNamesTheCount) {
  expect_problem(
      with_line(7, "  - {name: u2-r0, level: leaf, rail: 0, nodes: \"n[5-8]\", radix: 5}"),
      {7,
       "leaf switch u2-r0 needs 8 ports but has 5 (radix 5 x 1 switch): 4 down "
       "(4 nodes x 1 rail) + 4 up (at oversubscription 1)"});
  // A spine group: 8 down from its two leaves, 8 up, in 2 x 7 ports.
  expect_problem(
      with_line(10,
                "  - {name: s-r1, level: spine, rail: 1, switches: \"u[1-2]-r1\", count: 2, "
                "radix: 7}"),
      {10, "spine switch s-r1 needs 16 ports but has 14 (radix 7 x 2 switches): 8 down"});
  // A leaf without a rail takes every rail of its nodes.
  expect_problem(
      "rails: 8\nnodes:\n  - {hostname: \"n[1-8]\"}\nswitches:\n"
      "  - {name: l, level: leaf, nodes: \"n[1-8]\", radix: 32}\n",
      {5, "needs 64 ports but has 32 (radix 32 x 1 switch): 64 down (8 nodes x 8 rails)"});
}

TEST(BadFabric, NodeUnderTwoLeavesOfOneRail) {
  expect_problem(with_line(6, "  - {name: u1-r1, level: leaf, rail: 0, nodes: \"n[1-4]\"}"),
                 {6, "node n1 is under leaves u1-r0 and u1-r1 (both serve rail 0)"});
  expect_problem(with_line(6, "  - {name: u1-r1, level: leaf, nodes: \"n[1-4]\"}"),
                 {6,
                  "node n1 is under leaves u1-r0 and u1-r1 (one serves rail 0, the other all "
                  "rails)"});
}

TEST(BadFabric, RailLeavesOfAUnitListTheSameNodes) {
  const std::string swapped =
      with_line(8, "  - {name: u2-r1, level: leaf, rail: 1, nodes: \"n4,n[6-8]\"}",
                with_line(6, "  - {name: u1-r1, level: leaf, rail: 1, nodes: \"n[1-3],n5\"}"));
  expect_problem(swapped, {6, "leaf u1-r1 (rail 1) holds nodes of u1-r0 and of u2-r0"});
}

TEST(BadFabric, NicOnARailNoLeafServes) {
  expect_problem(with_line(6, "  - {name: u1-r1, level: leaf, rail: 1, nodes: \"n[1-3]\"}"),
                 {3,
                  "node n4 has a NIC on rail 1 but no leaf serves that rail (its leaves serve "
                  "rail 0)"});
}

TEST(BadFabric, RailSpineOverAnotherRailsLeaf) {
  expect_problem(
      with_line(9, "  - {name: s-r0, level: spine, rail: 0, switches: \"u1-r0,u2-r1\", count: 2}"),
      {9, "switch s-r0 serves rail 0 but lists u2-r1, which serves rail 1"});
}

TEST(BadFabric, PlanesNeverConnect) {
  std::string text = with_line(9,
                               "  - {name: s-r0, level: spine, rail: 0, plane: 0, switches: "
                               "\"u[1-2]-r0\", count: 2}");
  const std::string core = "{name: top, level: core,";
  text.replace(text.find(core), core.size(), core + " plane: 1,");
  expect_problem(text,
                 {11, "switch top is in plane 1 but lists s-r0 of plane 0; planes never connect"});
}

TEST(BadFabric, TwoParentsHintsAtGroupsAndRailSpines) {
  expect_problem(with_line(10, "  - {name: s-r1, level: spine, switches: \"u[1-2]-r1,u1-r0\"}"),
                 {10,
                  "switch u1-r0 has two parents: s-r0 and s-r1 (a group of identical "
                  "switches is one entry with 'count'"});
}

// The bug of the old built-in DGX layouts: the NIC and the PCIe switch above it had one bus id.
TEST(BadFabric, BridgeAndDeviceSharingABusId) {
  expect_problem(R"(rails: 1
nodes:
  - hostname: a
    numa: [{id: 0}]
    gpus: [{index: 0, pci: "0000:1b:00.0", pci_switch: "0000:18:00.0"}]
    nics:
      - {name: mlx5_0, pci: "0000:18:00.0", pci_switch: "0000:18:00.0", rail: 0}
)",
                 {5,
                  "node a: the PCIe switch above GPU 0 has bus id 0000:18:00.0, which is NIC "
                  "mlx5_0's; a bridge and a device cannot share a bus id"});
  expect_problem(R"(nodes:
  - hostname: a
    numa: [{id: 0}]
    gpus: [{index: 0, pci: "0000:1b:00.0"}]
    nics: [{name: mlx5_0, pci: "0000:1b:00.0"}]
)",
                 {5, "node a: NIC mlx5_0 has PCI bus id 0000:1b:00.0, which is GPU 0's"});
}

TEST(BuiltinTypes, NoDeviceSharesABusIdWithTheSwitchAboveIt) {
  for (const auto& [name, hw] : builtin_node_types()) {
    std::set<std::string> devices;
    for (const Gpu& gpu : hw.gpus) devices.insert(gpu.pci_bus_id);
    for (const Nic& nic : hw.nics) devices.insert(nic.pci_bus_id);
    for (const Gpu& gpu : hw.gpus) EXPECT_FALSE(devices.contains(gpu.pci_switch)) << name;
    for (const Nic& nic : hw.nics) EXPECT_FALSE(devices.contains(nic.pci_switch)) << name;
  }
}

TEST(NcclTopology, RefusesPlaceholderBusIds) {
  const Cluster cluster = load_preset("haein");
  try {
    write_nccl_topology(cluster.nodes[6]);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("node b200-007 (node type dgx-b200) carries placeholder PCI bus ids"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("haein topo discover"), std::string::npos) << what;
  }
  // The same hardware, its ids vouched for, is written.
  Node checked = cluster.nodes[6];
  checked.hardware.placeholder_pci = false;
  const std::string xml = write_nccl_topology(checked);
  // The switch above GPU 0 and rail 0's NIC is a bridge with its own bus id, the NIC below.
  const std::size_t bridge = xml.find("<pci busid=\"0000:16:00.0\" class=\"0x060400\"");
  const std::size_t nic = xml.find("<pci busid=\"0000:18:00.0\" class=\"0x020700\"");
  ASSERT_NE(bridge, std::string::npos) << xml;
  ASSERT_NE(nic, std::string::npos) << xml;
  EXPECT_LT(bridge, nic);
  EXPECT_EQ(xml.find("busid=\"0000:18:00.0\" class=\"0x060400\""), std::string::npos) << xml;
}

}  // namespace
}  // namespace haein::topology
