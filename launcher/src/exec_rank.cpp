#include "haein/launcher/exec_rank.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/process.hpp"
#include "haein/common/rank_environment.hpp"
#include "haein/common/settings.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/hostlist.hpp"
#include "run/cpu_binding.hpp"
#include "run/memory_binding.hpp"
#include "run/rank_status.hpp"
#include "run/slurm.hpp"
#include "run/supervisor.hpp"

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
      {"MASTER_ADDR",
       context.master_addr.empty() ? placement.ranks.front().host : context.master_addr},
      {"MASTER_PORT", std::to_string(context.master_port)},
  };
  // The node's place among the job's nodes in order of first appearance (torchrun's
  // GROUP_RANK), and their number.
  int last_node = 0;
  for (const RankPlacement& other : placement.ranks) last_node = std::max(last_node, other.node);
  std::vector<int> order(static_cast<std::size_t>(last_node) + 1, -1);
  int nodes = 0;
  for (const RankPlacement& other : placement.ranks)
    if (other.node >= 0 && order[other.node] < 0) order[other.node] = nodes++;
  const int group_rank = r.node >= 0 ? order[r.node] : 0;
  env.insert(env.end(), {{"GROUP_RANK", std::to_string(group_rank)},
                         {"GROUP_WORLD_SIZE", std::to_string(nodes)},
                         {"ROLE_RANK", std::to_string(r.rank)},
                         {"ROLE_WORLD_SIZE", std::to_string(placement.world_size())},
                         {"ROLE_NAME", "default"},
                         {"TORCHELASTIC_RESTART_COUNT", std::to_string(context.restart_count)},
                         {"TORCHELASTIC_MAX_RESTARTS", std::to_string(context.max_restarts)},
                         {"TORCHELASTIC_RUN_ID", context.run_id}});
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
  if (!context.heartbeat_dir.empty()) {
    env.emplace_back(
        "HAEIN_HEARTBEAT_FILE",
        (std::filesystem::path(context.heartbeat_dir) / ("rank-" + std::to_string(rank))).string());
  }
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

// Under srun: records the step ("JOBID.STEPID") in the status directory, once, so that
// haein run can signal the step through Slurm (scancel) rather than kill srun.
void record_slurm_step(const std::string& status_dir) {
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* step = std::getenv("SLURM_STEP_ID");
  if (status_dir.empty() || job == nullptr || step == nullptr) return;
  const std::string text = std::string(job) + "." + step + "\n";
  const int fd = ::open(detail::slurm_step_file(status_dir).c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;  // another rank wrote it
  [[maybe_unused]] const ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
}

// The GPU as the rank must see it, inside what Slurm granted the step: the placement names
// a physical index; Slurm lists the granted ones in SLURM_STEP_GPUS (or SLURM_JOB_GPUS) and
// the matching device names in CUDA_VISIBLE_DEVICES, entry for entry. A placed GPU that
// was not granted gives way to the local rank's granted one (Slurm picks which GPUs of a
// node a job gets). Empty: leave CUDA_VISIBLE_DEVICES as the placement sets it.
std::string granted_gpu(int gpu, int rank, int local_rank, std::ostream& err) {
  const char* listed = std::getenv("SLURM_STEP_GPUS");
  if (listed == nullptr || *listed == '\0') listed = std::getenv("SLURM_JOB_GPUS");
  if (listed == nullptr || *listed == '\0' || gpu < 0) return {};
  std::vector<std::string> granted, visible;
  std::istringstream ids(listed);
  for (std::string id; std::getline(ids, id, ',');) granted.push_back(id);
  if (const char* cuda = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::istringstream names(cuda);
    for (std::string name; std::getline(names, name, ',');) visible.push_back(name);
  }
  const auto name = [&](std::size_t i) {
    return visible.size() == granted.size() ? visible[i] : granted[i];
  };
  for (std::size_t i = 0; i < granted.size(); ++i)
    if (granted[i] == std::to_string(gpu)) return name(i);
  if (local_rank >= 0 && local_rank < static_cast<int>(granted.size())) {
    err << "haein exec-rank: rank " << rank << ": placed on GPU " << gpu
        << ", which Slurm did not grant here (" << listed << "); using GPU " << granted[local_rank]
        << ", the granted one of local rank " << local_rank << "\n";
    return name(local_rank);
  }
  throw InvalidArgument("rank " + std::to_string(rank) + " is placed on GPU " +
                        std::to_string(gpu) + " but Slurm granted this step GPU" +
                        (granted.size() == 1 ? " " : "s ") + listed +
                        " here, fewer than its node's ranks; ask Slurm for a GPU per rank "
                        "(--gpus-per-node, --gpus-per-task)");
}

// Runs the rank as a child, so that its output can be tagged and logged and its end
// recorded for `haein run`.
int watch_rank(const ExecRankOptions& options, const RankPlacement& rank,
               const std::vector<std::pair<std::string, std::string>>& variables,
               std::ostream& err) {
  detail::ChildSpec child;
  child.argv = options.command;
  child.env = variables;
  if (options.bind) {
    // (the supervisor binds the child, narrowed again to what this process was granted)
    const detail::CpuBinding binding(rank.cores);
    child.cores = binding.cores();
    if (!binding.note().empty() && !rank.cores.empty()) {
      err << "haein exec-rank: rank " << rank.rank << ": " << binding.note() << "\n";
    }
    child.numa = rank.numa;
  }
  child.stdin_null = false;  // mpirun and srun decide what a rank's stdin is
  child.tag = detail::expand_tag(options.tag_template, rank.host, rank.rank, rank.local_rank);
  child.echo = detail::shows_local_rank(options.local_ranks_filter, rank.local_rank);
  const std::string name = "rank-" + std::to_string(rank.rank);
  if (!options.log_dir.empty()) child.log_file = options.log_dir + "/" + name + ".log";
  for (const auto& [variable, value] : variables) {
    if (variable == "HAEIN_HEARTBEAT_FILE" && !std::filesystem::exists(value)) {
      replace_file(value, "");  // a fresh file, never one planted in a shared folder
    }
  }
  // When the daemon that started us dies (SIGKILL, a lost host), we and the rank must not
  // run on: the kernel sends SIGHUP, a stop signal for the supervisor.
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (::getppid() != parent) ::raise(SIGHUP);  // it died before the request took effect
  detail::SupervisorOptions supervision;
  supervision.grace_seconds = settings::kStopGrace.get();
  supervision.repeat_kills = false;
  const detail::SupervisorResult result = detail::supervise({child}, supervision);
  const detail::ChildResult& ended = result.children.front();
  if (!options.status_dir.empty()) {
    detail::RankStatus status;
    status.rank = rank.rank;
    status.host = host_name();
    status.exit_code = ended.exit_code;
    status.signal = ended.signal;
    status.stopped = ended.stopped;
    status.received = result.stop_signal;
    // A parent-death SIGHUP can come while the dying daemon's last threads still exit
    // (it is sent when the thread that started us ends): give its death a moment.
    for (int i = 0; i < 100 && ended.stopped && ended.signal == SIGHUP && ::getppid() == parent;
         ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    status.orphaned = ::getppid() != parent;
    status.ended_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    status.seconds = ended.seconds;
    status.tail = ended.tail;
    try {
      detail::write_rank_status(options.status_dir, status);
    } catch (const Error& error) {
      // A full or broken job folder does not turn the rank's own end into a failure.
      err << "haein exec-rank: rank " << rank.rank << " on " << rank.host
          << ": cannot record how it ended (" << error.what() << "); it "
          << (status.signal != 0 ? "was ended by signal " + std::to_string(status.signal)
                                 : "exited with code " + std::to_string(status.exit_code))
          << "\n";
    }
    // Stopped from outside and passed on (the status says how the rank ended): a non-zero
    // exit here would make srun's --kill-on-bad-exit SIGKILL the ranks still saving.
    if (result.stop_signal == SIGTERM || result.stop_signal == SIGINT) return 0;
  }
  return ended.shell_code();
}

// The placement file named by --placement (or HAEIN_PLACEMENT), parsed.
Placement read_placement(const ExecRankOptions& options) {
  std::ifstream in(options.placement_path);
  if (!in) {
    // Under haein run the placement sits in the job's folder, which every host must share.
    throw InvalidArgument(
        "cannot read placement '" + options.placement_path + "' on " + host_name() +
        (options.status_dir.empty()
             ? std::string()
             : ": haein run's job folder is not here; it must be on storage every host shares "
               "at the same path (--log-dir, or run from a shared working directory)"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_placement_json(text.str(), options.placement_path);
}

// --rank, else the rank mpirun or srun gave this process.
int rank_to_run(const ExecRankOptions& options) {
  if (options.rank >= 0) return options.rank;
  // The manager's own variables first, so that a RANK inherited from the submitting shell
  // cannot make every task the same rank.
  RankEnvironment from_manager;
  try {
    from_manager = read_rank_environment(RankVariables::kManagerFirst);
  } catch (const InvalidArgument& error) {
    throw InvalidArgument(std::string("exec-rank cannot tell its rank: ") + error.what());
  }
  if (from_manager.source == "default") {
    throw InvalidArgument(
        "exec-rank cannot tell its rank: give --rank, or start it under mpirun or srun");
  }
  return from_manager.rank;
}

// What haein run (or the user) passed down through options and the environment.
RankContext inherited_context(const ExecRankOptions& options) {
  RankContext context;
  context.placement_path = std::filesystem::absolute(options.placement_path).string();
  context.master_port = env_int("MASTER_PORT", 29500);
  context.restart_count = env_int("HAEIN_RESTART_COUNT", 0);
  context.nccl_topo_dir = options.nccl_topo_dir;
  context.heartbeat_dir = options.heartbeat_dir;
  context.master_addr = options.master_addr;
  context.max_restarts = env_int("TORCHELASTIC_MAX_RESTARTS", 0);
  if (const char* id = std::getenv("TORCHELASTIC_RUN_ID"); id != nullptr && *id != '\0')
    context.run_id = id;
  return context;
}

// The rank's variables: its placement's, with the GPU Slurm granted and, on a node with
// fewer CPUs than ranks, Open MPI told to yield.
std::vector<std::pair<std::string, std::string>> variables_for_rank(const Placement& placement,
                                                                    int rank,
                                                                    const RankContext& context,
                                                                    std::ostream& err) {
  auto variables = rank_environment(placement, rank, context);
  if (const std::string gpu =
          granted_gpu(placement.ranks[rank].gpu, rank, placement.ranks[rank].local_rank, err);
      !gpu.empty()) {
    for (auto& [name, value] : variables)
      if (name == "CUDA_VISIBLE_DEVICES") value = gpu;
  }
  // More ranks on this node than CPUs it may use: Open MPI's busy polling would make each
  // rank wait for the others' time slices (a 2-node train_mlp ran 17x slower). mpirun is
  // told by haein run (--oversubscribe); under srun only this node can tell.
  cpu_set_t granted;
  if (std::getenv("OMPI_MCA_mpi_yield_when_idle") == nullptr &&
      sched_getaffinity(0, sizeof granted, &granted) == 0 &&
      placement.ranks[rank].local_world_size > CPU_COUNT(&granted)) {
    variables.emplace_back("OMPI_MCA_mpi_yield_when_idle", "1");
  }
  return variables;
}

// Binds this process, which becomes the rank, to the placement's cores and NUMA node;
// what could not be bound is said, not fatal.
void bind_this_process(const RankPlacement& placed, int rank, std::ostream& err) {
  const detail::CpuBinding binding(placed.cores);
  std::string note = binding.note();
  if (const int error = binding.apply(); error != 0)
    note = std::string("sched_setaffinity failed: ") + std::strerror(error) + "; not bound";
  if (!note.empty()) err << "haein exec-rank: rank " << rank << ": " << note << "\n";
  if (placed.numa >= 0) {
    const detail::MemoryBinder binder;
    const std::string memory = binder.supported() ? binder.bind(placed.numa) : "";
    if (!memory.empty()) {
      err << "haein exec-rank: rank " << rank << ": memory not bound: " << memory << "\n";
    }
  }
}

}  // namespace

int exec_rank(const ExecRankOptions& options, std::ostream& err) {
  if (options.command.empty()) {
    throw InvalidArgument("exec-rank needs a command after '--'");
  }
  if (options.placement_path.empty()) {
    throw InvalidArgument("exec-rank needs --placement FILE (or HAEIN_PLACEMENT)");
  }
  const Placement placement = read_placement(options);
  const int rank = rank_to_run(options);
  const RankContext context = inherited_context(options);
  auto variables = variables_for_rank(placement, rank, context, err);
  record_slurm_step(options.status_dir);
  if (!options.tag_template.empty() || !options.log_dir.empty() || !options.status_dir.empty()) {
    return watch_rank(options, placement.ranks[rank], variables, err);
  }
  for (const auto& [name, value] : variables) setenv(name.c_str(), value.c_str(), 1);
  if (options.bind) bind_this_process(placement.ranks[rank], rank, err);
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
