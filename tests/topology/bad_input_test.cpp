// Every malformed or inconsistent input gives a ParseError naming the file and the line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/validate.hpp"

namespace haein::topology {
namespace {

struct Expectation {
  int line;
  std::string contains;
};

template <class Read>
void expect_parse_error(Read read, const std::string& file, Expectation expected) {
  try {
    read();
    FAIL() << "expected a ParseError containing '" << expected.contains << "'";
  } catch (const ParseError& error) {
    EXPECT_EQ(error.file(), file) << error.what();
    EXPECT_EQ(error.line(), expected.line) << error.what();
    EXPECT_NE(std::string(error.what()).find(expected.contains), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).rfind(file + ":" + std::to_string(expected.line) + ": ", 0),
              0u)
        << error.what();
  }
}

Cluster yaml_validated(const std::string& text) {
  Cluster cluster = read_cluster_yaml(text, "bad.yaml");
  require_valid(cluster);
  return cluster;
}

TEST(BadYaml, MalformedSyntax) {
  expect_parse_error([] { yaml_validated("name: x\nnodes:\n  - {hostname: a\n  - b: [\n"); },
                     "bad.yaml", {4, "malformed YAML"});
}

TEST(BadYaml, UnknownKeyNamesTheExpectedOnes) {
  expect_parse_error([] { yaml_validated("nodes:\n  - hostname: a\n    gpu: []\n"); }, "bad.yaml",
                     {3, "unknown key 'gpu' in a node entry; expected one of"});
}

TEST(BadYaml, DescendingHostRange) {
  expect_parse_error([] { yaml_validated("rails: 0\nnodes:\n  - hostname: n[5-2]\n"); }, "bad.yaml",
                     {3, "range 5-2 is descending"});
}

TEST(BadYaml, DuplicateHostnames) {
  expect_parse_error(
      [] {
        yaml_validated(
            "nodes:\n  - {hostname: \"n[1-3]\", numa: [{id: 0}]}\n  - {hostname: n2, numa: [{id: "
            "0}]}\n");
      },
      "bad.yaml", {3, "duplicate hostname n2 (first defined at line 2)"});
}

TEST(BadYaml, HostnamesThatAreNotHostnames) {
  // A newline would add rankfile lines, "../" would put NCCL topology files elsewhere.
  expect_parse_error(
      [] { yaml_validated("nodes:\n  - {hostname: \"a\\nrank 0=evil\"}\n"); }, "bad.yaml",
      {2, "hostname 'a\\x0arank 0=evil' is not a hostname: it contains the byte 0x0a"});
  expect_parse_error([] { yaml_validated("nodes:\n  - {hostname: ../etc}\n"); }, "bad.yaml",
                     {2, "hostname '../etc' is not a hostname: it has an empty label"});
  expect_parse_error([] { yaml_validated("nodes:\n  - {hostname: /abs}\n"); }, "bad.yaml",
                     {2, "it contains '/'"});
  expect_parse_error([] { yaml_validated("nodes:\n  - {hostname: -n1}\n"); }, "bad.yaml",
                     {2, "a label starts or ends with '-'"});
  expect_parse_error(
      [] { yaml_validated("nodes:\n  - {hostname: \"" + std::string(64, 'a') + "\"}\n"); },
      "bad.yaml", {2, "a label is longer than 63 characters"});
  EXPECT_NO_THROW(yaml_validated("nodes:\n  - {hostname: node_01.rack-2.example.com}\n"));
  expect_parse_error([] { require_valid(read_hostfile("h1 slots=2\n../evil slots=1\n", "hosts")); },
                     "hosts", {2, "hostname '../evil' is not a hostname"});
}

TEST(BadInput, DeepNestingIsAnErrorNotAStackOverflow) {
  // A 50,000-switch chain listed top first, and a 20,000-deep NCCL XML, once crashed.
  std::string chain;
  for (int i = 50'000; i > 0; --i)
    chain += "SwitchName=s" + std::to_string(i) + " Switches=s" + std::to_string(i - 1) + "\n";
  chain += "SwitchName=s0 Nodes=a\n";
  try {
    read_slurm_topology(chain, "chain.conf");
    FAIL() << "a 50,000-level tree was accepted";
  } catch (const ParseError& error) {
    EXPECT_NE(std::string(error.what()).find("more than 64 levels deep"), std::string::npos)
        << error.what();
  }
  std::string xml = "<system version=\"1\">";
  for (int i = 0; i < 20'000; ++i) xml += "<pci busid=\"0000:00:00.0\" class=\"0x060400\">";
  for (int i = 0; i < 20'000; ++i) xml += "</pci>";
  xml += "</system>";
  try {
    read_nccl_topology(xml, "deep.xml");
    FAIL() << "a 20,000-deep XML was accepted";
  } catch (const ParseError& error) {
    EXPECT_NE(std::string(error.what()).find("nested more than 64 deep"), std::string::npos)
        << error.what();
  }
}

TEST(BadYaml, GpuOnAMissingNumaDomain) {
  expect_parse_error(
      [] {
        yaml_validated(
            "nodes:\n  - hostname: n1\n    numa: [{id: 0, cpus: \"0-3\"}]\n    gpus:\n"
            "      - {index: 0, numa: 0}\n      - {index: 1, numa: 3}\n");
      },
      "bad.yaml", {6, "GPU 1 is on NUMA domain 3, which the node does not have (NUMA domains: 0)"});
}

TEST(BadYaml, UnknownNodeTypeAndWrongValueTypes) {
  expect_parse_error([] { yaml_validated("nodes:\n  - {hostname: a, node_type: dgx-z9}\n"); },
                     "bad.yaml", {2, "unknown node_type 'dgx-z9'; known: dgx-b200"});
  expect_parse_error([] { yaml_validated("rails: eight\nnodes: []\n"); }, "bad.yaml",
                     {1, "'rails' must be an integer, got 'eight'"});
  expect_parse_error([] { yaml_validated("version: 7\nnodes: []\n"); }, "bad.yaml",
                     {1, "unsupported version 7"});
  expect_parse_error([] { yaml_validated("- a\n- b\n"); }, "bad.yaml", {1, "must be a mapping"});
  expect_parse_error([] { yaml_validated(""); }, "bad.yaml", {1, "the file is empty"});
}

TEST(ClusterYamlNumbers, LeadingZerosAreDecimal) {
  const Cluster cluster = read_cluster_yaml("rails: 08\nnodes: []\n", "z.yaml");
  EXPECT_EQ(cluster.rails, 8);
}

TEST(BadYaml, SwitchProblemsAreAllListed) {
  const Cluster cluster = read_cluster_yaml(
      "rails: 1\nnodes:\n  - {hostname: \"n[1-3]\"}\nswitches:\n"
      "  - {name: l1, level: leaf, nodes: \"n[1-2],n9\"}\n"
      "  - {name: l2, level: leaf, nodes: n2}\n"
      "  - {name: s, level: spine, switches: \"l1,l3\"}\n",
      "tree.yaml");
  const std::vector<Problem> problems = validate(cluster);
  std::string all;
  for (const Problem& p : problems) all += describe(p) + "\n";
  EXPECT_NE(all.find("tree.yaml:5: switch l1 lists unknown node n9"), std::string::npos) << all;
  EXPECT_NE(all.find("tree.yaml:6: node n2 is under leaves l1 and l2"), std::string::npos) << all;
  EXPECT_NE(all.find("tree.yaml:7: switch s lists unknown switch l3"), std::string::npos) << all;
  EXPECT_NE(all.find("tree.yaml:3: node n3 is under no leaf switch"), std::string::npos) << all;
}

TEST(BadYaml, RailOutOfRangeAndCpuInTwoDomains) {
  const Cluster cluster = read_cluster_yaml(
      "rails: 1\nnodes:\n  - hostname: n1\n    numa: [{id: 0, cpus: \"0-3\"}, {id: 1, cpus: "
      "\"3-5\"}]\n"
      "    nics: [{name: mlx5_0, rail: 1}]\n",
      "n.yaml");
  const std::vector<Problem> problems = validate(cluster);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(describe(problems[0]), "n.yaml:4: node n1: CPU 3 is in NUMA domains 0 and 1");
  EXPECT_NE(
      describe(problems[1])
          .find("n.yaml:5: node n1: NIC mlx5_0 port 1 is on rail 1 but the cluster has 1 rails"),
      std::string::npos)
      << describe(problems[1]);
}

TEST(BadXml, MalformedAndMissingPieces) {
  expect_parse_error(
      [] { read_nccl_topology("<system>\n  <cpu numaid=\"0\">\n</system>\n", "n.xml"); }, "n.xml",
      {3, "malformed XML"});
  expect_parse_error([] { read_nccl_topology("<machine/>\n", "n.xml"); }, "n.xml",
                     {1, "expected a <system> root"});
  expect_parse_error(
      [] { read_nccl_topology("<system>\n<cpu numaid=\"x\"/>\n</system>\n", "n.xml"); }, "n.xml",
      {2, "numaid='x' is not an integer"});
  expect_parse_error(
      [] {
        read_nccl_topology("<system>\n<cpu numaid=\"0\">\n<gpu dev=\"0\"/></cpu></system>",
                           "n.xml");
      },
      "n.xml", {3, "<gpu> must sit inside a <pci busid=...> element"});
}

TEST(BadSlurm, MalformedLines) {
  expect_parse_error(
      [] {
        read_slurm_topology("SwitchName=s0 Nodes=a[1-2]\nSwitchName=s1 Nodes=b[5-2]\n", "t.conf");
      },
      "t.conf", {2, "range 5-2 is descending"});
  expect_parse_error([] { read_slurm_topology("# c\nSwitchName=s0 Nodes=a Ports=3\n", "t.conf"); },
                     "t.conf", {2, "unknown key 'ports='"});
  expect_parse_error([] { read_slurm_topology("SwitchName=s0\n", "t.conf"); }, "t.conf",
                     {1, "has neither Nodes= nor Switches="});
  expect_parse_error([] { read_slurm_topology("SwitchName=s0 Switches=s9\n", "t.conf"); }, "t.conf",
                     {1, "lists unknown switch 's9'"});
  expect_parse_error(
      [] { read_slurm_topology("SwitchName=a Switches=b\nSwitchName=b Switches=a\n", "t.conf"); },
      "t.conf", {1, "is its own ancestor"});
  expect_parse_error([] { read_slurm_topology("Nodes=a\n", "t.conf"); }, "t.conf",
                     {1, "expected SwitchName="});
  expect_parse_error(
      [] { read_slurm_topology("SwitchName=a Nodes=x\nBlockName=b Nodes=y\n", "t.conf"); },
      "t.conf", {2, "mixes the tree syntax"});
  expect_parse_error([] { read_slurm_topology("SwitchName=a Nodes\n", "t.conf"); }, "t.conf",
                     {1, "expected Key=Value, got 'Nodes'"});
  // A switch's name reaches the message with its control characters shown, not sent.
  expect_parse_error(
      [] {
        read_slurm_topology("SwitchName=s\x1b[2J Nodes=a\nSwitchName=s\x1b[2J Nodes=b\n", "t.conf");
      },
      "t.conf", {2, "switch 's\\x1b[2J' is defined twice"});
}

TEST(BadHostfile, BadSlots) {
  expect_parse_error([] { read_hostfile("a slots=2\nb slots=zero\n", "hosts"); }, "hosts",
                     {2, "slots='zero' is not a positive integer"});
  expect_parse_error([] { read_hostfile("a cpus=2\n", "hosts"); }, "hosts",
                     {1, "expected slots=N"});
}

TEST(BadFiles, MissingFileAndUnknownFormat) {
  EXPECT_THROW(load_cluster("/nonexistent/cluster.yaml"), InvalidArgument);
  EXPECT_THROW(parse_format("toml"), InvalidArgument);
}

std::string load_error(const std::string& spec) {
  try {
    load_cluster(spec);
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "no error";
}

TEST(BadFiles, EachKindOfUnreadableFileIsNamed) {
  EXPECT_NE(load_error("/nonexistent/cluster.yaml").find("no such file"), std::string::npos);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("haein-badfiles-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  EXPECT_NE(load_error(dir.string()).find("is a directory"), std::string::npos)
      << load_error(dir.string());
  // A sparse file past the 64 MiB bound is refused without parsing it.
  const std::filesystem::path big = dir / "big.yaml";
  { std::ofstream(big) << "nodes: []\n"; }
  std::filesystem::resize_file(big, (std::uintmax_t{64} << 20) + 1);
  EXPECT_NE(load_error(big.string()).find("is larger than 64 MiB"), std::string::npos)
      << load_error(big.string());
  std::filesystem::remove_all(dir);
}

// Found by fuzz_cluster_slurm (tests/fuzz/regressions/slurm): a host range glued to
// another multiplied out to 641,024 names, and a million nodes took over 1 GB.
TEST(BadSlurm, HostRangeProductsAndNodeCountsAreBounded) {
  expect_parse_error(
      [] { read_slurm_topology("SwitchName=s Nodes=b200-[0-20031]x[065-096]\n", "t.conf"); },
      "t.conf", {1, "more than 400000 node names in all"});
  std::string hosts;
  for (int i = 0; i <= 100'000; ++i) hosts += "h" + std::to_string(i) + "\n";
  expect_parse_error([&] { read_hostfile(hosts, "hosts"); }, "hosts",
                     {100'001, "more than 100000 hosts"});
}

// A short file that would expand to billions of CPUs (a host range times a CPU range) is
// refused before the hosts are copied.
TEST(BadYaml, ExpansionsPastTheCapAreRefused) {
  expect_parse_error(
      [] {
        yaml_validated("nodes:\n  - hostname: n[1-100000]\n    numa: [{id: 0, cpus: \"0-255\"}]\n");
      },
      "bad.yaml", {2, "more than 16777216 nodes, NUMA domains, CPUs, GPUs and NICs in all"});
}

}  // namespace
}  // namespace haein::topology
