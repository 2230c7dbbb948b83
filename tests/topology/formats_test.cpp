// Round trips through every format, and the presets' facts.
#include "haein/topology/formats.hpp"

#include <gtest/gtest.h>

#include "haein/common/error.hpp"
#include "haein/topology/presets.hpp"
#include "haein/topology/validate.hpp"

namespace haein::topology {
namespace {

constexpr const char* kSmallCluster = R"(
version: 1
name: lab
rails: 2
node_types:
  box:
    gpu_model: L40S
    compute_capability: 89
    nvlink: none
    numa:
      - {id: 0, cpus: "0-7"}
      - {id: 1, cpus: "8-15"}
    gpus:
      - {index: 0, pci: "0000:17:00.0", numa: 0, pci_switch: "0000:15:00.0"}
      - {index: 1, pci: "0000:65:00.0", numa: 1}
    nics:
      - {name: mlx5_0, port: 1, speed_gbps: 200, pci: "0000:16:00.0", numa: 0, pci_switch: "0000:15:00.0", rail: 0}
      - {name: mlx5_1, port: 1, speed_gbps: 200, link: ethernet, pci: "0000:66:00.0", numa: 1, rail: 1}
nodes:
  - {hostname: "lab[01-04]", node_type: box}
  - {hostname: lab05, node_type: box, slots: 1}
  - hostname: odd
    numa: [{id: 0, cpus: "0-3"}]
    gpus: []
    nics: []
switches:
  - {name: leaf1, level: leaf, nodes: "lab[01-03]"}
  - {name: leaf2, level: leaf, nodes: "lab[04-05],odd", link_gbps: 200}
  - {name: top, level: spine, switches: "leaf[1-2]"}
)";

TEST(ClusterYaml, ReadsTemplatesRangesAndInlineNodes) {
  const Cluster cluster = read_cluster_yaml(kSmallCluster, "lab.yaml");
  EXPECT_TRUE(validate(cluster).empty());
  ASSERT_EQ(cluster.nodes.size(), 6u);
  EXPECT_EQ(cluster.nodes[0].hostname, "lab01");
  EXPECT_EQ(cluster.nodes[3].hostname, "lab04");
  EXPECT_EQ(cluster.nodes[4].effective_slots(), 1);
  EXPECT_EQ(cluster.nodes[0].effective_slots(), 2);
  EXPECT_EQ(cluster.gpu_count(), 10);
  EXPECT_EQ(cluster.nodes[1].hardware.nics[1].link_layer, LinkLayer::kEthernet);
  EXPECT_EQ(cluster.nodes[0].where.line, 20);
  EXPECT_EQ(cluster.leaf_of("odd")->name, "leaf2");
  EXPECT_EQ(cluster.parent_of("leaf1")->name, "top");
  EXPECT_EQ(cluster.switches[2].level, SwitchLevel::kSpine);
}

TEST(ClusterYaml, RoundTripPreservesTheModel) {
  const Cluster original = read_cluster_yaml(kSmallCluster, "lab.yaml");
  const std::string written = write_cluster_yaml(original);
  const Cluster again = read_cluster_yaml(written, "written.yaml");
  EXPECT_EQ(again, original) << written;
  EXPECT_EQ(write_cluster_yaml(again), written);
  // Templates keep the file short: the five "box" nodes share two entries.
  EXPECT_NE(written.find("lab[01-04]"), std::string::npos) << written;
}

TEST(ClusterYaml, RoundTripOfEveryPreset) {
  for (const std::string& name : preset_names()) {
    const Cluster preset = load_preset(name);
    const Cluster again = read_cluster_yaml(write_cluster_yaml(preset), name);
    EXPECT_EQ(again, preset) << name;
  }
}

TEST(ClusterYaml, AModifiedTemplateNodeIsWrittenInline) {
  Cluster cluster = read_cluster_yaml(kSmallCluster, "lab.yaml");
  cluster.nodes[1].hardware.gpus.pop_back();
  const Cluster again = read_cluster_yaml(write_cluster_yaml(cluster), "written.yaml");
  EXPECT_EQ(again, cluster);
  EXPECT_EQ(again.nodes[1].hardware.gpus.size(), 1u);
  EXPECT_EQ(again.nodes[2].hardware.gpus.size(), 2u);
}

TEST(SlurmTopology, ReadsWhatScontrolShowTopologyPrints) {
  // Slurm 22.05 on the test bed: levels, link speeds, and upper switches that list every
  // node below them.
  const Cluster cluster = read_slurm_topology(
      "SwitchName=leaf1 Level=0 LinkSpeed=1 Nodes=h[1-2]\n"
      "SwitchName=leaf2 Level=0 LinkSpeed=1 Nodes=h[3-4]\n"
      "SwitchName=spine Level=1 LinkSpeed=1 Nodes=h[1-4] Switches=leaf[1-2]\n",
      "scontrol");
  ASSERT_EQ(cluster.nodes.size(), 4u);
  ASSERT_EQ(cluster.switches.size(), 3u);
  EXPECT_EQ(cluster.switches[2].name, "spine");
  EXPECT_EQ(cluster.switches[2].level, SwitchLevel::kSpine);
  EXPECT_TRUE(cluster.switches[2].nodes.empty());
  EXPECT_EQ(cluster.switches[1].nodes, (std::vector<std::string>{"h3", "h4"}));
  EXPECT_NO_THROW(require_valid(cluster));
  // A node attached to the upper switch itself stays its own, and validation names it.
  const Cluster odd = read_slurm_topology(
      "SwitchName=top Level=1 Nodes=a[1-2],b1 Switches=s1\nSwitchName=s1 Level=0 Nodes=a[1-2]\n",
      "odd");
  EXPECT_EQ(odd.switches[0].nodes, (std::vector<std::string>{"b1"}));
  EXPECT_THROW(read_slurm_topology("SwitchName=s Level=x Nodes=a\n", "bad"), ParseError);
}

TEST(ClusterJson, IsExplicitAndReadsBack) {
  const Cluster original = load_preset("gb200-nvl72");
  const std::string json = write_cluster_json(original);
  EXPECT_EQ(json.find("gb200-[01-18]"), std::string::npos) << "JSON must list every host";
  EXPECT_NE(json.find("\"gb200-07\""), std::string::npos);
  const Cluster again = parse_cluster(json, Format::kJson, "x.json");
  EXPECT_EQ(again, original);
}

TEST(SlurmTopology, ModelToConfToModelPreservesTheTree) {
  const Cluster original = load_preset("haein");
  const std::string conf = write_slurm_topology(original);
  EXPECT_NE(conf.find("SwitchName=su1 Nodes=b200-[001-032] LinkSpeed=400"), std::string::npos)
      << conf;
  EXPECT_NE(conf.find("SwitchName=spine Switches=su[1-4]"), std::string::npos) << conf;
  const Cluster again = read_slurm_topology(conf, "topology.conf");
  EXPECT_EQ(again.switches, original.switches);
  ASSERT_EQ(again.nodes.size(), original.nodes.size());
  for (std::size_t i = 0; i < again.nodes.size(); ++i)
    EXPECT_EQ(again.nodes[i].hostname, original.nodes[i].hostname);
  EXPECT_TRUE(validate(again).empty());
}

TEST(SlurmTopology, ReadsTreeWithContinuationsAndDerivesLevels) {
  const Cluster cluster = read_slurm_topology(
      "# tree\nSwitchName=s0 Nodes=dev[0-5,9]\nSwitchName=s1 Nodes=dev[6-8] \\\n  LinkSpeed=100\n"
      "SwitchName=s2 Switches=s[0-1]\nSwitchName=top Switches=s2\n",
      "t.conf");
  ASSERT_EQ(cluster.switches.size(), 4u);
  EXPECT_EQ(cluster.nodes.size(), 10u);
  EXPECT_EQ(cluster.switches[1].link_gbps, 100);
  EXPECT_EQ(cluster.switches[2].level, SwitchLevel::kSpine);
  EXPECT_EQ(cluster.switches[3].level, SwitchLevel::kCore);
}

TEST(SlurmTopology, ReadsBlockSyntax) {
  const Cluster cluster = read_slurm_topology(
      "BlockName=block1 Nodes=gb[01-18]\nBlockName=block2 Nodes=gb[19-36]\nBlockSizes=18,36\n");
  EXPECT_EQ(cluster.switches.size(), 2u);
  EXPECT_EQ(cluster.nodes.size(), 36u);
  EXPECT_EQ(cluster.block_sizes, (std::vector<int>{18, 36}));
  EXPECT_TRUE(validate(cluster).empty());
}

TEST(NcclTopology, WriteThenReadPreservesTheNode) {
  const Cluster cluster = load_preset("dgx-h100");
  const Node& node = cluster.nodes.front();
  const std::string xml = write_nccl_topology(node);
  EXPECT_NE(xml.find("<net name=\"mlx5_3\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("tclass=\"0x068000\""), std::string::npos);
  NodeHardware hardware = read_nccl_topology(xml, "node.xml");
  hardware.gpu_model = node.hardware.gpu_model;  // NCCL's XML has no model name
  EXPECT_EQ(hardware, node.hardware);
}

TEST(NcclTopology, ReadsNcclStyleXml) {
  const NodeHardware hw = read_nccl_topology(R"(<system version="1">
  <cpu numaid="1" affinity="0000ff00" arch="x86_64">
    <pci busid="0000:03:00.0" class="0x060400" link_speed="16.0 GT/s PCIe" link_width="16">
      <pci busid="0000:04:00.0" class="0x030200" link_speed="16.0 GT/s PCIe" link_width="16">
        <gpu dev="0" sm="80" rank="0" gdr="1"><nvlink target="0000:0d:00.0" count="12" tclass="0x068000"/></gpu>
      </pci>
      <pci busid="0000:05:00.0" class="0x020700"><nic><net name="mlx5_0" dev="0" speed="200000" port="1"/></nic></pci>
    </pci>
  </cpu>
</system>)",
                                             "a100.xml");
  ASSERT_EQ(hw.numa.size(), 1u);
  EXPECT_EQ(hw.numa[0].id, 1);
  EXPECT_EQ(hw.numa[0].cpus, (std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15}));
  ASSERT_EQ(hw.gpus.size(), 1u);
  EXPECT_EQ(hw.gpus[0].pci_bus_id, "0000:04:00.0");
  EXPECT_EQ(hw.gpus[0].pci_switch, "0000:03:00.0");
  EXPECT_EQ(hw.gpus[0].numa, 1);
  EXPECT_EQ(hw.compute_capability, 80);
  EXPECT_EQ(hw.nvlink, NvlinkScope::kNode);
  EXPECT_EQ(hw.nvlink_gbps, 300);
  ASSERT_EQ(hw.nics.size(), 1u);
  EXPECT_EQ(hw.nics[0].speed_gbps, 200);
  EXPECT_EQ(hw.nics[0].pci_switch, "0000:03:00.0");
}

TEST(Hostfile, ReadsAndWrites) {
  const Cluster cluster =
      read_hostfile("# workers\nworker-1 slots=4\nworker-2 slots=8 max_slots=8\n\nworker-3\n");
  ASSERT_EQ(cluster.nodes.size(), 3u);
  EXPECT_EQ(cluster.nodes[0].effective_slots(), 4);
  EXPECT_EQ(cluster.nodes[2].effective_slots(), 1);
  EXPECT_EQ(write_hostfile(cluster), "worker-1 slots=4\nworker-2 slots=8\nworker-3 slots=1\n");
  EXPECT_EQ(write_hostfile(load_preset("haein")).substr(0, 18), "b200-001 slots=8\nb");
}

// The closest NIC of a GPU, by PCI switch, then NUMA domain: how placement pairs them.
std::string closest_nic(const NodeHardware& hw, const Gpu& gpu) {
  for (const Nic& nic : hw.nics) {
    if (!gpu.pci_switch.empty() && nic.pci_switch == gpu.pci_switch) return nic.name;
  }
  for (const Nic& nic : hw.nics) {
    if (nic.numa == gpu.numa) return nic.name;
  }
  return {};
}

TEST(Presets, DgxH100PairsGpusWithTheNicsOfTheUserGuide) {
  const NodeHardware& hw = builtin_node_types().at("dgx-h100");
  ASSERT_EQ(hw.gpus.size(), 8u);
  const std::vector<std::string> expected = {"mlx5_0", "mlx5_3", "mlx5_4",  "mlx5_5",
                                             "mlx5_6", "mlx5_9", "mlx5_10", "mlx5_11"};
  for (std::size_t i = 0; i < hw.gpus.size(); ++i)
    EXPECT_EQ(closest_nic(hw, hw.gpus[i]), expected[i]) << i;
  EXPECT_EQ(hw.nvlink, NvlinkScope::kNode);
}

TEST(Presets, HaeinIs128DgxB200InFourScalableUnits) {
  const Cluster haein = load_preset("haein");
  EXPECT_EQ(haein.nodes.size(), 128u);
  EXPECT_EQ(haein.gpu_count(), 1024);
  EXPECT_EQ(haein.rails, 8);
  EXPECT_EQ(haein.leaf_of("b200-033")->name, "su2");
  EXPECT_EQ(haein.nvlink_domain_of(haein.nodes[5]), "b200-006");
  for (const Nic& nic : haein.nodes[0].hardware.nics) EXPECT_EQ(nic.speed_gbps, 400);
  EXPECT_EQ(haein.nodes[0].hardware.nvlink_gbps, 900);
}

TEST(Presets, Nvl72IsOneRackOf72Gpus) {
  const Cluster rack = load_preset("gb200-nvl72");
  EXPECT_EQ(rack.gpu_count(), 72);
  EXPECT_EQ(rack.nvlink_domain_of(rack.nodes[0]), rack.nvlink_domain_of(rack.nodes[17]));
  const NodeHardware& tray = rack.nodes[0].hardware;
  EXPECT_EQ(closest_nic(tray, tray.gpus[2]), "mlx5_4");
}

TEST(Presets, UnknownPresetNamesTheKnownOnes) {
  try {
    load_cluster("preset:dgx-z9");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("haein"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace haein::topology
