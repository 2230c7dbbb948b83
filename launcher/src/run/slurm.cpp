#include "slurm.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/common/slurm.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"

namespace haein::launcher::detail {

namespace {

std::string variable(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

std::optional<SlurmAllocation> slurm_allocation_from_environment() {
  SlurmAllocation allocation;
  allocation.job_id = variable("SLURM_JOB_ID");
  if (allocation.job_id.empty()) return std::nullopt;
  std::string list = variable("SLURM_JOB_NODELIST");
  if (list.empty()) list = variable("SLURM_NODELIST");
  if (list.empty()) {
    throw InvalidArgument("SLURM_JOB_ID=" + allocation.job_id +
                          " is set but SLURM_JOB_NODELIST is not: cannot tell the allocation's "
                          "nodes (unset SLURM_JOB_ID if this is not a Slurm job)");
  }
  try {
    allocation.nodes = topology::expand_hostlist(list);
  } catch (const Error& error) {
    throw InvalidArgument("SLURM_JOB_NODELIST='" + list + "': " + error.what());
  }
  for (const std::string& node : allocation.nodes) {
    if (const std::string why = topology::hostname_problem(node); !why.empty())
      throw InvalidArgument("SLURM_JOB_NODELIST names a node that is not a hostname: " + why);
  }
  const std::string cpus = variable("SLURM_JOB_CPUS_PER_NODE");
  if (!cpus.empty()) {
    allocation.cpus = parse_slurm_counts(cpus, "SLURM_JOB_CPUS_PER_NODE");
    if (allocation.cpus.size() != allocation.nodes.size()) {
      throw InvalidArgument("SLURM_JOB_CPUS_PER_NODE='" + cpus + "' counts " +
                            std::to_string(allocation.cpus.size()) + " nodes but " +
                            "SLURM_JOB_NODELIST='" + list + "' has " +
                            std::to_string(allocation.nodes.size()));
    }
  }
  if (const std::string gpus = variable("SLURM_GPUS_PER_NODE"); !gpus.empty()) {
    const std::string count =
        gpus.substr(gpus.rfind(':') == std::string::npos ? 0 : gpus.rfind(':') + 1);
    if (count.empty() || count.size() > 6 ||
        count.find_first_not_of("0123456789") != std::string::npos)
      throw InvalidArgument("SLURM_GPUS_PER_NODE='" + gpus +
                            "' is not a GPU count (like 4 or h100:4)");
    allocation.gpus_per_node = std::stoi(count);
  }
  const std::string tasks = variable("SLURM_TASKS_PER_NODE");
  if (!tasks.empty()) {
    allocation.tasks = parse_slurm_counts(tasks, "SLURM_TASKS_PER_NODE");
    if (allocation.tasks.size() != allocation.nodes.size()) allocation.tasks.clear();
  }
  return allocation;
}

int SlurmAllocation::slots(std::size_t node, int ranks) const {
  int total = 0;
  for (int count : tasks) total += count;
  if (!tasks.empty() && total == ranks) return tasks[node];
  return cpus.empty() ? 0 : cpus[node];
}

topology::Cluster allocation_cluster(const SlurmAllocation& allocation, int ranks) {
  topology::Cluster cluster;
  cluster.name = "slurm-job-" + allocation.job_id;
  for (std::size_t i = 0; i < allocation.nodes.size(); ++i) {
    topology::Node node;
    node.hostname = allocation.nodes[i];
    node.slots = std::max(1, allocation.slots(i, ranks));
    cluster.nodes.push_back(std::move(node));
  }
  return cluster;
}

void confine_to_allocation(topology::Cluster& cluster, BusySet& busy,
                           const SlurmAllocation& allocation, int ranks) {
  std::map<std::string, int> granted;
  for (std::size_t i = 0; i < allocation.nodes.size(); ++i)
    granted[allocation.nodes[i]] = allocation.slots(i, ranks);
  std::vector<std::string> missing;
  for (const auto& entry : granted) {
    const std::string& host = entry.first;  // (clang before 16 cannot capture a binding)
    const bool described =
        std::any_of(cluster.nodes.begin(), cluster.nodes.end(),
                    [&](const topology::Node& node) { return node.hostname == host; });
    if (!described) missing.push_back(host);
  }
  if (!missing.empty()) {
    throw InvalidArgument("Slurm job " + allocation.job_id + " has " +
                          topology::compress_hostlist(missing) +
                          ", which the cluster file does not describe");
  }
  for (std::size_t n = 0; n < cluster.nodes.size(); ++n) {
    topology::Node& node = cluster.nodes[n];
    const auto found = granted.find(node.hostname);
    if (found == granted.end()) {
      busy[n] = true;
      continue;
    }
    if (node.hardware.gpus.empty() && found->second > 0)
      node.slots = std::min(node.effective_slots(), found->second);
    if (!node.hardware.gpus.empty() && allocation.gpus_per_node >= 0 &&
        static_cast<int>(node.hardware.gpus.size()) > allocation.gpus_per_node)
      node.hardware.gpus.resize(allocation.gpus_per_node);
  }
}

bool is_slurm_cluster(const std::string& spec) { return spec.rfind("slurm:", 0) == 0; }

namespace {

// One node of `scontrol show node --oneliner`: its Key=Value words (values never hold
// spaces in the keys read here).
std::map<std::string, std::string> node_fields(const std::string& line) {
  std::map<std::string, std::string> fields;
  std::istringstream words(line);
  for (std::string word; words >> word;) {
    const std::size_t equals = word.find('=');
    if (equals != std::string::npos && equals > 0)
      fields.emplace(word.substr(0, equals), word.substr(equals + 1));
  }
  return fields;
}

int count_field(const std::string& text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return std::stoi(text);
}

// GPUs in a Gres list ("gpu:8", "gpu:h100:8(S:0-1),nic:2") or TRES list ("gres/gpu=2").
int gpus_in(const std::string& list, char separator) {
  int total = 0;
  std::istringstream items(list);
  for (std::string item; std::getline(items, item, ',');) {
    item = item.substr(0, item.find('('));
    if (separator == ':') {
      if (item.rfind("gpu:", 0) != 0) continue;
      total += count_field(item.substr(item.rfind(':') + 1));
    } else {
      const std::size_t equals = item.find('=');
      if (equals == std::string::npos || item.substr(0, equals) != "gres/gpu") continue;
      total += count_field(item.substr(equals + 1));
    }
  }
  return total;
}

// A node state that takes no new work: DOWN, DRAIN(ED/ING), FAIL, MAINT, RESERVED,
// POWER(ED_DOWN/ING), FUTURE, INVAL, or not responding ('*').
bool unavailable(const std::string& state) {
  if (state.find('*') != std::string::npos) return true;
  for (const char* word : {"DOWN", "DRAIN", "FAIL", "MAINT", "RESERVED", "POWER", "FUTURE", "INVAL",
                           "REBOOT", "UNKNOWN", "NOT_RESPONDING"}) {
    if (state.find(word) != std::string::npos) return true;
  }
  return false;
}

bool in_partition(const std::string& partitions, const std::string& partition) {
  std::istringstream names(partitions);
  bool member = false;
  for (std::string name; std::getline(names, name, ',');) member = member || name == partition;
  return member;
}

// One node as `scontrol show node` describes it; `taken` says whether it has no room for
// the job now (with `live`: its state and what runs on it; otherwise never).
topology::Node slurm_node(std::map<std::string, std::string>& fields, bool live, bool& taken) {
  topology::Node node;
  node.hostname = fields["NodeName"];
  if (const std::string why = topology::hostname_problem(node.hostname); !why.empty())
    throw InvalidArgument("scontrol show node lists a node that is not a hostname: " + why);
  const int cpus = count_field(fields["CPUTot"]);
  const int cpus_used = count_field(fields["CPUAlloc"]);
  const int gpus = gpus_in(fields["Gres"], ':');
  const int gpus_used = gpus_in(fields["AllocTRES"], '=');
  if (gpus > 0) {
    node.hardware.numa.push_back({0, {}, {}});
    for (int g = 0; g < gpus; ++g) node.hardware.gpus.push_back({g, "", 0, "", {}});
  } else {
    node.slots = std::max(1, cpus);
  }
  taken = false;
  if (live) {
    const std::string& state = fields["State"];
    taken = unavailable(state) || (cpus > 0 && cpus_used >= cpus) || gpus_used > 0;
    if (!taken && gpus == 0 && cpus_used > 0) node.slots = cpus - cpus_used;
  }
  return node;
}

// Cuts `tree` to the `known` hosts: drops them from the switches, then the switches left
// with neither nodes nor children, until none goes.
void prune_switch_tree(topology::Cluster& tree, const std::set<std::string>& known) {
  for (bool changed = true; changed;) {
    for (topology::Switch& s : tree.switches) {
      std::erase_if(s.nodes, [&](const std::string& n) { return known.count(n) == 0; });
      std::erase_if(s.children, [&](const std::string& c) {
        return std::none_of(tree.switches.begin(), tree.switches.end(),
                            [&](const topology::Switch& t) { return t.name == c; });
      });
    }
    const std::size_t before = tree.switches.size();
    std::erase_if(tree.switches,
                  [](const topology::Switch& s) { return s.nodes.empty() && s.children.empty(); });
    changed = tree.switches.size() != before;
  }
}

// The switch tree, cut to the cluster's nodes. A node under no leaf leaves the tree out;
// why it is left out goes to `notes`.
void add_switch_tree(topology::Cluster& cluster, std::vector<std::string>& notes) {
  const ProgramOutput topology_text = run_program({"scontrol", "show", "topology"}, 30);
  if (topology_text.exit_code != 0 || topology_text.out.find("SwitchName=") == std::string::npos) {
    notes.push_back("Slurm has no switch tree (topology/tree): placing by node only");
    return;
  }
  topology::Cluster tree;
  try {
    tree = topology::read_slurm_topology(topology_text.out, "scontrol show topology");
  } catch (const Error& error) {
    notes.push_back(std::string("the switch tree is left out: ") + error.what());
    return;
  }
  std::set<std::string> known;
  for (const topology::Node& node : cluster.nodes) known.insert(node.hostname);
  prune_switch_tree(tree, known);
  std::set<std::string> under_leaf;
  for (const topology::Switch& s : tree.switches) under_leaf.insert(s.nodes.begin(), s.nodes.end());
  std::vector<std::string> outside;
  for (const std::string& host : known)
    if (under_leaf.count(host) == 0) outside.push_back(host);
  if (!outside.empty()) {
    notes.push_back("the switch tree is left out: " + topology::compress_hostlist(outside) +
                    " under no switch of scontrol show topology");
    return;
  }
  cluster.switches = std::move(tree.switches);
}

}  // namespace

topology::Cluster slurm_cluster(const std::string& spec, bool live, BusySet& busy,
                                std::vector<std::string>& notes) {
  const std::string partition = spec.substr(std::string("slurm:").size());
  const ProgramOutput shown = run_program({"scontrol", "show", "node", "--oneliner"}, 30);
  if (shown.exit_code != 0) {
    throw InvalidArgument("--cluster " + spec +
                          ": 'scontrol show node' failed or is not installed; is this a Slurm "
                          "login node (SLURM_CONF)?");
  }
  topology::Cluster cluster;
  cluster.name = partition.empty() ? "slurm" : "slurm-" + partition;
  busy.clear();
  std::istringstream lines(shown.out);
  for (std::string line; std::getline(lines, line);) {
    std::map<std::string, std::string> fields = node_fields(line);
    if (fields["NodeName"].empty()) continue;
    if (!partition.empty() && !in_partition(fields["Partitions"], partition)) continue;
    bool taken = false;
    cluster.nodes.push_back(slurm_node(fields, live, taken));
    busy.push_back(taken);
  }
  if (cluster.nodes.empty()) {
    throw InvalidArgument("--cluster " + spec + ": Slurm lists no nodes" +
                          (partition.empty() ? "" : " in partition " + partition));
  }
  add_switch_tree(cluster, notes);
  return cluster;
}

ProgramOutput run_program(const std::vector<std::string>& argv, double timeout_seconds,
                          bool with_stderr) {
  ProgramOutput result;
  int pipe_fds[2];
  if (argv.empty() || ::pipe2(pipe_fds, O_CLOEXEC) != 0) return result;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return result;
  }
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(pipe_fds[1], 1);
    ::dup2(with_stderr ? pipe_fds[1] : null, 2);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the supervisor blocks its signals
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(timeout_seconds * 1000));
  bool late = false;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      late = true;
      break;
    }
    pollfd fd{pipe_fds[0], POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left)) < 0 && errno != EINTR) break;
    if (fd.revents == 0) continue;
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n > 0 && result.out.size() < (1u << 20)) result.out.append(buffer, n);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
  }
  ::close(pipe_fds[0]);
  if (late) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!late && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string slurm_job_state(const std::string& job_id) {
  const ProgramOutput answer = run_program({"squeue", "-h", "-j", job_id, "-o", "%T"}, 10);
  std::string state = answer.out.substr(0, answer.out.find('\n'));
  if (answer.exit_code == 0) return state;
  // squeue fails for a job it no longer knows ("Invalid job id specified").
  if (answer.exit_code == 1 && state.empty()) return "";
  return "?";
}

bool srun_has_pmix() {
  // Slurm 22.05 lists the plugins on stdout; older ones on stderr, as "srun: pmix_v3".
  const ProgramOutput answer = run_program({"srun", "--mpi=list"}, 10, /*with_stderr=*/true);
  std::istringstream lines(answer.out);
  for (std::string line; std::getline(lines, line);) {
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.rfind("srun: ", 0) == 0) line.erase(0, 6);
    if (line.rfind("pmix", 0) == 0) return true;
  }
  return false;
}

std::string slurm_step_file(const std::string& status_dir) { return status_dir + "/slurm-step"; }

std::string read_slurm_step(const std::string& status_dir) {
  std::ifstream in(slurm_step_file(status_dir));
  std::string step;
  std::getline(in, step);
  // JOBID.STEPID exactly: a bare job id would signal every step of the job.
  const bool valid = std::count(step.begin(), step.end(), '.') == 1 && step.front() != '.' &&
                     step.back() != '.' && std::all_of(step.begin(), step.end(), [](char c) {
                       return (c >= '0' && c <= '9') || c == '.' || c == '_';
                     });
  return valid ? step : std::string();
}

}  // namespace haein::launcher::detail
