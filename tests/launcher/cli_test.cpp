// The `haein` binary as users run it: outputs, files and exit codes.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../topology/nccl_tests_log.hpp"
#include "haein/topology/formats.hpp"

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class Cli : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("haein-cli-" + std::to_string(getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  static std::string slurp(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  Result haein(const std::string& args) {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    const std::string command =
        std::string(HAEIN_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out),
            slurp(err)};
  }

  fs::path dir_;
};

TEST_F(Cli, VersionAndHelp) {
  Result r = haein("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("haein 0.1.0"), std::string::npos) << r.out;
  r = haein("help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("topo convert"), std::string::npos);
  for (const char* sub : {"show", "convert", "discover", "validate"}) {
    r = haein(std::string("topo ") + sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find(std::string("usage: haein topo ") + sub), std::string::npos) << r.out;
  }
  for (const char* command : {"run", "plan", "exec-rank"}) {
    r = haein(std::string(command) + " --help");
    EXPECT_EQ(r.exit_code, 0) << command << r.err;
    EXPECT_NE(r.out.find(std::string("usage: haein ") + command), std::string::npos) << r.out;
    EXPECT_TRUE(r.err.empty()) << command << ": " << r.err;
  }
}

TEST_F(Cli, ShowsTheEmbeddedHaeinCluster) {
  const Result r = haein("topo show preset:haein");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\nnodes: 128\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\ngpus: 1024\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nvlink domains: 128 (128 x 8 GPUs)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("switches: leaf 4 [su[1-4]] spine 1 [spine]"), std::string::npos) << r.out;
}

TEST_F(Cli, ConvertsBetweenFormats) {
  const std::string conf = (dir_ / "topology.conf").string();
  Result r = haein("topo convert preset:haein --to slurm -o " + conf);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = haein("topo show " + conf);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\nnodes: 128\n"), std::string::npos) << r.out;

  const std::string yaml = (dir_ / "haein.yaml").string();
  ASSERT_EQ(haein("topo convert preset:haein --to yaml -o " + yaml).exit_code, 0);
  r = haein("topo validate " + yaml);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("valid (128 nodes, 1024 GPUs)"), std::string::npos);

  // The built-in DGX B200 layout is a placeholder: no NCCL file from it (docs/presets.md).
  r = haein("topo convert preset:haein --to nccl-xml --node b200-007");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("node b200-007 (node type dgx-b200) carries placeholder PCI bus ids"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("haein topo discover"), std::string::npos) << r.err;
  r = haein("topo convert preset:dgx-h100 --to nccl-xml --node dgx-h100-01");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("<system version=\"1\">"), std::string::npos);
  const std::string xml = file("node.xml", r.out);
  r = haein("topo show " + xml);
  EXPECT_NE(r.out.find("\ngpus: 8\n"), std::string::npos) << r.out << r.err;

  r = haein("topo convert preset:dgx-h100 --to hostfile");
  EXPECT_EQ(r.out, "dgx-h100-01 slots=8\n");
  r = haein("topo convert preset:haein --to json");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.front(), '{');
}

TEST_F(Cli, DiscoveryOutputValidates) {
  const std::string out = (dir_ / "local.yaml").string();
  Result r = haein("topo discover -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("NUMA domains"), std::string::npos) << r.err;
  r = haein("topo validate " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// Each bad input: exit code 2 and a message with file and line.
TEST_F(Cli, BadInputsExitTwoWithFileAndLine) {
  struct Case {
    std::string name, text, expected;
  };
  const std::vector<Case> cases = {
      {"malformed.yaml", "nodes:\n  - {hostname: a\n", ":3: malformed YAML"},
      {"range.yaml", "nodes:\n  - hostname: n[5-2]\n",
       ":2: host list 'n[5-2]': range 5-2 is descending"},
      {"dup.yaml", "nodes:\n  - {hostname: a}\n  - {hostname: a}\n", ":3: duplicate hostname a"},
      {"numa.yaml",
       "nodes:\n  - hostname: a\n    numa: [{id: 0}]\n    gpus: [{index: 0, numa: 1}]\n",
       ":4: node a: GPU 0 is on NUMA domain 1"},
      {"broken.xml", "<system>\n<cpu numaid=\"0\">\n</system>\n",
       ":3: malformed XML: Start-end tags mismatch"},
      {"topology.conf", "SwitchName=s0 Nodes=n[1-4]\nSwitchName=s1 Nodes=n[9-7]\n",
       ":2: host list"},
      {"hosts", "a slots=4\nb slots=-1\n", ":2: slots='-1'"},
      {"radix.yaml",
       "rails: 8\nnodes:\n  - {hostname: \"n[1-8]\"}\nswitches:\n"
       "  - {name: l, level: leaf, rail: 0, nodes: \"n[1-8]\", radix: 4}\n",
       ":5: leaf switch l needs 8 ports but has 4 (radix 4 x 1 switch)"},
      {"oversubscription.yaml",
       "nodes:\n  - {hostname: a}\nswitches:\n"
       "  - {name: l, level: leaf, nodes: a, oversubscription: 0}\n",
       ":4: switch 'oversubscription' must be positive"},
  };
  for (const Case& c : cases) {
    const std::string path = file(c.name, c.text);
    for (const char* command : {"topo show ", "topo validate "}) {
      const Result r = haein(command + path);
      EXPECT_EQ(r.exit_code, 2) << command << c.name << ": " << r.err;
      EXPECT_NE(r.err.find(path + c.expected), std::string::npos)
          << command << c.name << ": " << r.err;
    }
  }
  // Binary bytes quoted back are escaped: a terminal gets no control characters from us.
  std::string binary =
      "\x7f"
      "ELF\x01\x1b[2J\x07 slots=\x1b]0;x\x07\n";
  const std::string path = file("binary", binary);
  for (const std::string& command :
       {"topo validate " + path, "plan -c preset:haein --gpus 8 --busy " + path}) {
    const Result r = haein(command);
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << command << ": " << r.err;
    EXPECT_EQ(r.err.find('\x07'), std::string::npos) << command << ": " << r.err;
    EXPECT_NE(r.err.find("\\x1b"), std::string::npos) << command << ": " << r.err;
  }
}

TEST_F(Cli, ValidateListsEveryProblem) {
  const std::string path =
      file("many.yaml",
           "rails: 1\nnodes:\n  - {hostname: a}\n  - {hostname: a}\n"
           "  - hostname: b\n    numa: [{id: 0}]\n    nics: [{name: x, numa: 2, rail: 4}]\n");
  const Result r = haein("topo validate " + path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(path + ":4: duplicate hostname a"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":7: node b: NIC x port 1 is on NUMA domain 2"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(path + ":7: node b: NIC x port 1 is on rail 4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": 3 problems"), std::string::npos) << r.err;
}

TEST_F(Cli, FabricPresetsAreListedAndValid) {
  Result r = haein("topo validate --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"preset:dgx-b200-superpod-1su", "preset:dgx-b200-superpod-4su",
                           "preset:dgx-b200-superpod-16su", "preset:nvl72-factory-50k"}) {
    EXPECT_NE(r.out.find(name), std::string::npos) << name << "\n" << r.out;
  }
  r = haein("topo validate preset:nvl72-factory-50k");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("valid (12492 nodes, 49968 GPUs)"), std::string::npos) << r.out;
  r = haein("topo show preset:dgx-b200-superpod-4su");
  EXPECT_NE(r.out.find("switches: leaf 32 [su[01-04]-leaf-r[0-7]]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("spine 1 (16 switches) [spine]"), std::string::npos) << r.out;
}

TEST_F(Cli, WrongCommandsAndFlagsExitTwo) {
  for (const char* args : {"launch", "topo", "topo explode", "topo show", "topo show preset:nope",
                           "topo convert preset:haein --to toml", "topo convert preset:haein",
                           "topo convert preset:haein --to nccl-xml",
                           "topo show preset:haein --bogus", "topo show /no/such/file.yaml"}) {
    const Result r = haein(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << args;
  }
  EXPECT_NE(haein("topo show preset:nope").err.find("known presets: "), std::string::npos);
}

}  // namespace

TEST_F(Cli, PlanExplainsAndWritesEveryFile) {
  const std::string busy = file("busy.txt", "# down\nb200-[001-008]\nb200-040\n");
  const fs::path topo = dir_ / "topo";
  // NCCL files need real PCI ids: the cluster's B200s vouch for theirs (placeholder_pci:
  // false), as a file built from `haein topo discover` would; preset:haein is refused.
  const std::string cluster = file("checked.yaml",
                                   "version: 1\nname: haein\nrails: 8\nnodes:\n"
                                   "  - {hostname: \"b200-[001-128]\", node_type: dgx-b200, "
                                   "placeholder_pci: false}\nswitches:\n"
                                   "  - {name: su1, level: leaf, nodes: \"b200-[001-032]\", "
                                   "link_gbps: 400}\n"
                                   "  - {name: su2, level: leaf, nodes: \"b200-[033-064]\", "
                                   "link_gbps: 400}\n"
                                   "  - {name: su3, level: leaf, nodes: \"b200-[065-096]\", "
                                   "link_gbps: 400}\n"
                                   "  - {name: su4, level: leaf, nodes: \"b200-[097-128]\", "
                                   "link_gbps: 400}\n"
                                   "  - {name: spine, level: spine, switches: \"su[1-4]\", "
                                   "link_gbps: 400}\n");
  const Result refused =
      haein("plan --cluster preset:haein --gpus 8 --nccl-topo-dir " + (dir_ / "refused").string());
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("placeholder PCI bus ids"), std::string::npos) << refused.err;
  const Result r =
      haein("plan --cluster " + cluster + " --gpus 64 --busy " + busy +
            " --layout tp=8,pp=2 --explain --json " + (dir_ / "p.json").string() + " --rankfile " +
            (dir_ / "rankfile").string() + " --slurm-hostfile " + (dir_ / "hosts").string() +
            " --nccl-topo-dir " + topo.string() + " --svg " + (dir_ / "plan.svg").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("placed 64 ranks on 8 nodes (b200-[009-016]) across 1 leaf switch"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("mpirun map-by node"), std::string::npos);
  EXPECT_NE(r.out.find("time mpirun map-by slot / haein"), std::string::npos);
  EXPECT_NE(r.out.find("TP group all-reduce"), std::string::npos);
  const std::string json = slurp(dir_ / "p.json");
  EXPECT_NE(json.find("\"world_size\": 64"), std::string::npos);
  EXPECT_NE(json.find("\"tp\": 7"), std::string::npos);
  EXPECT_NE(slurp(dir_ / "rankfile").find("rank 63=b200-016 slot="), std::string::npos);
  EXPECT_NE(slurp(dir_ / "hosts").find("b200-009\n"), std::string::npos);
  EXPECT_TRUE(fs::exists(topo / "b200-009.xml"));
  EXPECT_TRUE(fs::exists(topo / "b200-016.xml"));
  EXPECT_NE(slurp(dir_ / "plan.svg").find("</svg>"), std::string::npos);
}

// Requests whose products overflow an int were accepted (tp=2600,pp=2501,dp=1321 wrapped
// around to 8 ranks); slot sums over many large hosts went negative.
TEST_F(Cli, OverflowingRequestsAreRefused) {
  Result r = haein("plan --cluster preset:haein --gpus 8 --layout tp=2600,pp=2501,dp=1321");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("more than 10000000 ranks"), std::string::npos) << r.err;
  r = haein("plan --cluster preset:haein --nodes 100000 --gpus-per-node 100000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("100000 nodes x 100000 per node is more than 10000000 ranks"),
            std::string::npos)
      << r.err;
  r = haein("run --nnodes 65536 --nproc-per-node 65536 --dry-run -- /bin/true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is more than 10000000 ranks"), std::string::npos) << r.err;
  // Three hosts of a billion slots each: refused by name, not summed into a negative count.
  { std::ofstream(dir_ / "big-slots") << "a slots=1000000000\nb slots=1000000000\n"; }
  r = haein("run -c " + (dir_ / "big-slots").string() + " -n 4 --dry-run -- /bin/true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("slots=1000000000 is more than 1000000"), std::string::npos) << r.err;
  { std::ofstream(dir_ / "many-slots") << "a slots=1000000\nb slots=1000000\nc slots=1000000\n"; }
  r = haein("run -c " + (dir_ / "many-slots").string() +
            " -n 4000000 --backend mpirun --dry-run -- /bin/true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("the free nodes have 3000000 slots"), std::string::npos) << r.err;
}

// Issue 23 §5: `--nodes K --gpus-per-node G --layout tp=T` placed TP groups across NVL72
// racks and exited 0 with a warning. Three free trays in each of two racks hold no group
// of 16 inside a rack: a refusal (exit 2) that names the free capacity, unless
// --allow-cross-domain-tp.
TEST_F(Cli, PlanRefusesTensorParallelGroupsAcrossRacks) {
  const std::string cluster =
      file("racks.yaml",
           "version: 1\nname: two-racks\nrails: 4\nnodes:\n"
           "  - {hostname: \"a[01-18]\", node_type: gb200-nvl72}\n"
           "  - {hostname: \"b[01-18]\", node_type: gb200-nvl72}\n"
           "nvlink_domains:\n"
           "  - {name: rackA, nodes: \"a[01-18]\"}\n"
           "  - {name: rackB, nodes: \"b[01-18]\"}\n"
           "switches:\n"
           "  - {name: leaf1, level: leaf, nodes: \"a[01-18],b[01-18]\"}\n");
  const std::string busy = file("busy.txt", "a[04-18]\nb[04-18]\n");
  const std::string request = "plan --cluster " + cluster + " --busy " + busy +
                              " --nodes 4 --gpus-per-node 4 --layout tp=16";
  Result r = haein(request);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("cannot place 4 nodes: only 0 qualifying nodes are free in whole TP groups "
                       "of 16 inside NVLink domains; 6 qualifying nodes are free (leaf1: 6 on 6 "
                       "nodes)"),
            std::string::npos)
      << r.err;
  r = haein(request + " --allow-cross-domain-tp");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 of 1 tensor-parallel groups span more than one NVLink domain"),
            std::string::npos)
      << r.err;
  // With four free trays in rack B, the group stays there.
  const std::string fewer = file("fewer.txt", "a[04-18]\nb[05-18]\n");
  r = haein("plan --cluster " + cluster + " --busy " + fewer +
            " --nodes 4 --gpus-per-node 4 --layout tp=16");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(b[01-04])"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

TEST_F(Cli, PlanBadRequestsExitTwo) {
  Result r = haein("plan --cluster preset:haein --gpus 2000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("only 1024 usable GPUs are free"), std::string::npos) << r.err;
  r = haein("plan --cluster preset:haein --gpus 16 --layout tp=8,pp=2,dp=2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("= 32 ranks, but the request is 16"), std::string::npos) << r.err;
  r = haein("plan --cluster preset:haein --gpus 32 --layout tp=16");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--allow-cross-domain-tp"), std::string::npos) << r.err;
  r = haein("plan --cluster preset:haein --gpus 32 --layout tp=16 --allow-cross-domain-tp");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  const std::string busy = file("busy.txt", "b200-001\nnode-7\n");
  r = haein("plan --cluster preset:haein --gpus 8 --busy " + busy);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("busy.txt:2: unknown host 'node-7'"), std::string::npos) << r.err;
  r = haein("plan --cluster preset:haein");
  EXPECT_EQ(r.exit_code, 2);
  r = haein("plan --gpus 8");
  EXPECT_EQ(r.exit_code, 2);
  r = haein("plan --cluster preset:haein --gpus 8 --layout tp=abc");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--layout"), std::string::npos) << r.err;
  for (const char* ratio : {"nan", "inf", "0.5"}) {
    r = haein(std::string("plan --cluster preset:haein --gpus 8 --oversubscription ") + ratio);
    EXPECT_EQ(r.exit_code, 2) << ratio;
    EXPECT_NE(r.err.find("--oversubscription must be at least 1"), std::string::npos) << r.err;
  }
}

TEST_F(Cli, PlanByNodes) {
  const Result r = haein("plan --cluster preset:haein --nodes 3 --gpus-per-node 4 --json " +
                         (dir_ / "p.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("placed 12 ranks on 3 nodes"), std::string::npos) << r.out;
  EXPECT_NE(slurp(dir_ / "p.json").find("\"local_world_size\": 4"), std::string::npos);
}

TEST_F(Cli, ExecRankSetsTheEnvironmentContract) {
  const std::string placement = (dir_ / "p.json").string();
  ASSERT_EQ(haein("plan -c preset:dgx-h100 --gpus 8 --json " + placement).exit_code, 0);
  const Result r =
      haein("exec-rank --no-bind --placement " + placement + " --rank 1 -- sh -c 'env | sort'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line :
       {"RANK=1\n", "WORLD_SIZE=8\n", "LOCAL_RANK=1\n", "LOCAL_WORLD_SIZE=8\n",
        "MASTER_ADDR=dgx-h100-01\n", "MASTER_PORT=29500\n", "CUDA_VISIBLE_DEVICES=1\n",
        "NCCL_IB_HCA==mlx5_3:1\n", "UCX_NET_DEVICES=mlx5_3:1\n", "HAEIN_RESTART_COUNT=0\n",
        // what torchrun's agent sets too
        "GROUP_RANK=0\n", "GROUP_WORLD_SIZE=1\n", "ROLE_RANK=1\n", "ROLE_WORLD_SIZE=8\n",
        "ROLE_NAME=default\n", "TORCHELASTIC_RESTART_COUNT=0\n", "TORCHELASTIC_MAX_RESTARTS=0\n",
        "TORCHELASTIC_RUN_ID=none\n"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << r.out;
  }
  EXPECT_NE(r.out.find("HAEIN_PLACEMENT=" + placement + "\n"), std::string::npos) << r.out;
}

TEST_F(Cli, ExecRankBindsWithinTheCpusItWasGranted) {
  // Two ranks on CPUs 0 and 1; this process (and so exec-rank) granted CPU 0 only, as
  // Slurm or taskset would: rank 0 binds to 0, rank 1 keeps what was granted and says so.
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs 2 CPUs";
  const std::string cluster = file("c.yaml",
                                   "version: 1\nnodes:\n  - hostname: solo\n"
                                   "    numa: [{id: 0, cpus: \"0-1\"}]\n"
                                   "    gpus: []\n    nics: []\n    slots: 2\n");
  const std::string placement = (dir_ / "p.json").string();
  ASSERT_EQ(haein("plan -c " + cluster + " -g 2 --json " + placement).exit_code, 0);
  cpu_set_t before, only_0;
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  if (!CPU_ISSET(0, &before) || !CPU_ISSET(1, &before)) GTEST_SKIP() << "CPUs 0-1 not ours";
  CPU_ZERO(&only_0);
  CPU_SET(0, &only_0);
  ASSERT_EQ(sched_setaffinity(0, sizeof only_0, &only_0), 0);
  const Result rank0 = haein("exec-rank --placement " + placement +
                             " --rank 0 -- grep Cpus_allowed_list /proc/self/status");
  const Result rank1 = haein("exec-rank --placement " + placement +
                             " --rank 1 -- grep Cpus_allowed_list /proc/self/status");
  ASSERT_EQ(sched_setaffinity(0, sizeof before, &before), 0);
  ASSERT_EQ(rank0.exit_code, 0) << rank0.err;
  EXPECT_NE(rank0.out.find("Cpus_allowed_list:\t0\n"), std::string::npos) << rank0.out;
  EXPECT_EQ(rank0.err, "");
  ASSERT_EQ(rank1.exit_code, 0) << rank1.err;
  EXPECT_NE(rank1.out.find("Cpus_allowed_list:\t0\n"), std::string::npos) << rank1.out;
  EXPECT_NE(rank1.err.find("rank 1: the placement's cores 1 are not among the CPUs granted here "
                           "(0); left bound to those"),
            std::string::npos)
      << rank1.err;
}

TEST_F(Cli, ExecRankUsesTheGpuSlurmGrantedTheStep) {
  const std::string placement = (dir_ / "p.json").string();
  ASSERT_EQ(haein("plan -c preset:dgx-h100 --gpus 8 --json " + placement).exit_code, 0);
  // Slurm granted physical GPUs 1 and 3 and, with its device cgroup, renumbered them 0,1.
  setenv("SLURM_STEP_GPUS", "1,3", 1);
  setenv("CUDA_VISIBLE_DEVICES", "0,1", 1);
  Result r = haein("exec-rank --no-bind --placement " + placement +
                   " --rank 1 -- sh -c 'echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CUDA_VISIBLE_DEVICES=0\n"), std::string::npos) << r.out;
  // Rank 0 is placed on GPU 0, which Slurm did not grant: it takes local rank 0's granted
  // GPU (physical 1, named 0 here) and says so.
  r = haein("exec-rank --no-bind --placement " + placement +
            " --rank 0 -- sh -c 'echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CUDA_VISIBLE_DEVICES=0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("rank 0: placed on GPU 0, which Slurm did not grant here (1,3); using GPU "
                       "1, the granted one of local rank 0"),
            std::string::npos)
      << r.err;
  // Rank 2 (local rank 2) is placed on GPU 2; the step has only two GPUs.
  r = haein("exec-rank --no-bind --placement " + placement + " --rank 2 -- true");
  unsetenv("SLURM_STEP_GPUS");
  unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("rank 2 is placed on GPU 2 but Slurm granted this step GPUs 1,3 here"),
            std::string::npos)
      << r.err;
}

TEST_F(Cli, ExecRankBadInput) {
  const std::string placement = (dir_ / "p.json").string();
  ASSERT_EQ(haein("plan -c preset:dgx-h100 --gpus 2 --json " + placement).exit_code, 0);
  Result r = haein("exec-rank --placement " + placement + " --rank 0 -- /no/such/program");
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("cannot run '/no/such/program'"), std::string::npos) << r.err;
  r = haein("exec-rank --placement " + placement + " --rank 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs a command"), std::string::npos) << r.err;
  r = haein("exec-rank --placement " + placement + " --rank 5 -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("outside the placement's 2 ranks"), std::string::npos) << r.err;
  // A number JSON cannot hold and bytes that are not UTF-8: exit 2, our message, no raw bytes.
  r = haein("exec-rank --placement " + file("big.json", "{\"version\": 1, \"x\": 1e400}") +
            " --rank 0 -- true");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("not JSON: "), std::string::npos) << r.err;
  r = haein("exec-rank --placement " + file("bytes.json", "{\"version\": 1, \"c\": \"\xff\xfe\"}") +
            " --rank 0 -- true");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.find('\xff'), std::string::npos) << "raw bytes echoed";
  EXPECT_NE(r.err.find("\\xff"), std::string::npos) << r.err;
  r = haein("exec-rank --placement " + file("bad.json", "{\"version\": 9}") + " --rank 0 -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("version 9 is not supported"), std::string::npos) << r.err;
}

namespace {

// `haein topo calibrate` on logs generated with a known NIC efficiency: it finds it, says
// how far off the defaults were, and writes it into the cluster file.
TEST_F(Cli, CalibrateFitsTheClusterFileToNcclTestsOutput) {
  const std::string yaml =
      "version: 1\nname: pair\nrails: 8\nnodes:\n  - {hostname: \"gpu[1-4]\", node_type: "
      "dgx-h100}\nswitches:\n  - {name: leaf, level: leaf, nodes: \"gpu[1-4]\"}\n";
  const std::string cluster_path = file("pair.yaml", yaml);
  const haein::topology::Cluster cluster =
      haein::topology::parse_cluster(yaml, haein::topology::Format::kYaml, "pair.yaml");
  haein::topology::CostParameters truth;
  truth[haein::topology::CostParam::kNetEfficiency] = 0.7;
  const haein::topology::CostModel generator(cluster, truth);
  std::vector<haein::topology::RankSite> sites;
  for (int node = 0; node < 4; ++node) {
    for (int gpu = 0; gpu < 8; ++gpu) sites.push_back({node, gpu, gpu});
  }
  std::vector<double> sizes;
  for (double s = 256 << 20; s <= 8.0 * (1 << 30); s *= 2) sizes.push_back(s);
  const std::string log = file("all_reduce_perf.log",
                               haein::topology::testing::nccl_tests_log(
                                   generator, sites, haein::Collective::kAllReduce, sizes, "Ring"));

  Result r = haein("topo calibrate " + cluster_path + " " + log + " --dry-run");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rms error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("net_efficiency"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(cluster_path), yaml) << "--dry-run wrote the file";

  r = haein("topo calibrate " + cluster_path + " " + log);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const haein::topology::Cluster calibrated = haein::topology::load_cluster(cluster_path);
  ASSERT_EQ(calibrated.cost_model.count("net_efficiency"), 1u) << slurp(cluster_path);
  EXPECT_NEAR(calibrated.cost_model.at("net_efficiency"), 0.7, 0.7 * 0.05);
  EXPECT_EQ(calibrated.nodes.size(), 4u);

  // Bad input: a preset cannot be written back, a malformed row names its line, an unknown
  // parameter is refused; nothing is written.
  r = haein("topo calibrate preset:dgx-h100 " + log);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--output"), std::string::npos) << r.err;
  const std::string bad =
      file("bad_all_reduce.log", "  1048576  262144  float  sum  -1  x  1  2  0\n");
  r = haein("topo calibrate " + cluster_path + " " + bad);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad_all_reduce.log:1"), std::string::npos) << r.err;
  r = haein("topo calibrate " + cluster_path + " " + log + " --fit net_eficiency");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("net_eficiency"), std::string::npos) << r.err;
  r = haein("topo calibrate " + cluster_path);
  EXPECT_EQ(r.exit_code, 2);
  // An NCCL XML or Slurm file given as CLUSTER is never overwritten with YAML.
  const std::string xml = dir_ / "gpu1.xml";
  ASSERT_EQ(
      haein("topo convert " + cluster_path + " --to nccl-xml --node gpu1 -o " + xml).exit_code, 0);
  const std::string xml_text = slurp(xml);
  r = haein("topo calibrate " + xml + " " + log);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--output FILE.yaml"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(xml), xml_text);
  // A row the model cannot predict (one rank) is refused by name; the file stays.
  const std::string cluster_text = slurp(cluster_path);
  const std::string single = file(
      "single_all_reduce.log",
      "#  Rank  0 Group  0 Pid  1 on gpu1 device  0 [0] X\n  1048576  262144  float  sum  -1  5.0  "
      "200  0  0\n");
  r = haein("topo calibrate " + cluster_path + " " + single);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("single_all_reduce.log:2: the cost model cannot predict this row"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(slurp(cluster_path), cluster_text);
  r = haein("topo calibrate --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--fit"), std::string::npos) << r.out;
}

}  // namespace

namespace {

// `--explain` shows what a placement changes and says "no difference" where the model
// sees none: on the non-blocking haein preset NCCL's tree is as fast on two leaves as on
// one; with the up-links shared 4:1 the leaves cost, and mpirun's order pays for them.
TEST_F(Cli, ExplainShowsThePlacementDifferenceOnlyWhereThereIsOne) {
  const std::string busy =
      file("busy.txt",
           "b200-[001-004],b200-[006-009],b200-[011-014],b200-[016-019],b200-[021-024],"
           "b200-[026-029],b200-[031-032]\n");
  Result r = haein("plan --cluster preset:haein --gpus 128 --busy " + busy + " --explain");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("map-by slot / haein: all-reduce best 1 MiB no difference, 1 GiB no "
                       "difference, ring 1 GiB no difference"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("NCCL tree edges crossing leaf"), std::string::npos) << r.out;
  r = haein("plan --cluster preset:haein --gpus 128 --busy " + busy +
            " --explain --oversubscription 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto line = r.out.find("map-by slot / haein:");
  ASSERT_NE(line, std::string::npos) << r.out;
  const std::string ratios = r.out.substr(line, r.out.find('\n', line) - line);
  EXPECT_EQ(ratios.find("1 GiB no difference"), std::string::npos) << ratios;
  EXPECT_NE(ratios.find("1 GiB 3."), std::string::npos) << ratios;
}

// Hosts of a hostfile have slots, not GPUs: mpirun's orders put CPU ranks there too (the
// comparison read GPU numbers past the node's empty GPU list and crashed).
TEST_F(Cli, ExplainComparesMpirunsOrdersOnHostsWithoutGpus) {
  const std::string hosts = file("cpu.hosts", "a slots=4\nb slots=4\nc slots=4\n");
  const Result r = haein("plan --cluster " + hosts + " --gpus 8 --explain");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("time mpirun map-by node / haein:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("time mpirun map-by slot / haein:"), std::string::npos) << r.out;
}

}  // namespace
