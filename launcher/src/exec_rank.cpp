#include "haein/launcher/exec_rank.hpp"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/launcher/plan.hpp"

namespace haein::launcher {

std::vector<std::pair<std::string, std::string>> rank_environment(const Placement& placement,
                                                                  int rank,
                                                                  const RankContext& context) {
  if (rank < 0 || rank >= placement.world_size()) {
    throw InvalidArgument("rank " + std::to_string(rank) + " is outside the placement's " +
                          std::to_string(placement.world_size()) + " ranks");
  }
  const RankPlacement& r = placement.ranks[rank];
  std::vector<std::pair<std::string, std::string>> env{
      {"RANK", std::to_string(r.rank)},
      {"WORLD_SIZE", std::to_string(placement.world_size())},
      {"LOCAL_RANK", std::to_string(r.local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(r.local_world_size)},
      {"MASTER_ADDR", placement.ranks.front().host},
      {"MASTER_PORT", std::to_string(context.master_port)},
  };
  if (r.gpu >= 0) env.emplace_back("CUDA_VISIBLE_DEVICES", std::to_string(r.gpu));
  if (!r.nic.empty()) {
    // '=' makes NCCL match the name exactly: plain "mlx5_1" would also select mlx5_10.
    env.emplace_back("NCCL_IB_HCA", "=" + r.nic + ":" + std::to_string(r.nic_port));
    env.emplace_back("UCX_NET_DEVICES", r.nic + ":" + std::to_string(r.nic_port));
  }
  if (!context.nccl_topo_dir.empty()) {
    env.emplace_back("NCCL_TOPO_FILE",
                     (std::filesystem::path(context.nccl_topo_dir) / (r.host + ".xml")).string());
  }
  env.emplace_back("HAEIN_PLACEMENT", context.placement_path);
  env.emplace_back("HAEIN_RESTART_COUNT", std::to_string(context.restart_count));
  return env;
}

namespace {

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < 0) {
    throw InvalidArgument(std::string(name) + "='" + value + "' is not a non-negative integer");
  }
  return static_cast<int>(parsed);
}

// Binds to the cores this machine has among `cores`; returns what it did, for messages.
std::string bind_cores(const std::vector<int>& cores) {
  if (cores.empty()) return "no cores in the placement; not bound";
  const long online = sysconf(_SC_NPROCESSORS_CONF);
  cpu_set_t set;
  CPU_ZERO(&set);
  int usable = 0;
  for (int cpu : cores) {
    if (cpu >= 0 && cpu < online && cpu < CPU_SETSIZE) {
      CPU_SET(cpu, &set);
      ++usable;
    }
  }
  if (usable == 0) return "none of the placement's cores exist here; not bound";
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    return std::string("sched_setaffinity failed: ") + std::strerror(errno) + "; not bound";
  }
  return {};
}

}  // namespace

int exec_rank(const ExecRankOptions& options, std::ostream& err) {
  if (options.command.empty()) {
    throw InvalidArgument("exec-rank needs a command after '--'");
  }
  if (options.placement_path.empty()) {
    throw InvalidArgument("exec-rank needs --placement FILE (or HAEIN_PLACEMENT)");
  }
  std::ifstream in(options.placement_path);
  if (!in) throw InvalidArgument("cannot read placement '" + options.placement_path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  const Placement placement = parse_placement_json(text.str(), options.placement_path);

  int rank = options.rank;
  if (rank < 0) {
    const std::optional<int> from_manager = process_rank();
    if (!from_manager) {
      throw InvalidArgument(
          "exec-rank cannot tell its rank: give --rank, or start it under mpirun or srun");
    }
    rank = *from_manager;
  }
  RankContext context;
  context.placement_path = std::filesystem::absolute(options.placement_path).string();
  context.master_port = env_int("MASTER_PORT", 29500);
  context.restart_count = env_int("HAEIN_RESTART_COUNT", 0);
  context.nccl_topo_dir = options.nccl_topo_dir;
  for (const auto& [name, value] : rank_environment(placement, rank, context)) {
    setenv(name.c_str(), value.c_str(), 1);
  }
  if (options.bind) {
    const std::string note = bind_cores(placement.ranks[rank].cores);
    if (!note.empty()) err << "haein exec-rank: rank " << rank << ": " << note << "\n";
  }
  std::vector<char*> argv;
  for (const std::string& arg : options.command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  const int error = errno;
  err << "haein exec-rank: rank " << rank << " on " << host_name() << ": cannot run '"
      << options.command.front() << "': " << std::strerror(error) << "\n";
  return 127;
}

}  // namespace haein::launcher
