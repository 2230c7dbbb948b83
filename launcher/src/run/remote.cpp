// The mpirun and srun backends: their process managers start, place and tear down the
// ranks; each rank goes through `haein exec-rank`, which applies its placement entry and
// records how it ended, so that the launcher can name the root cause afterwards.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/topology/hostlist.hpp"
#include "job.hpp"
#include "outcome.hpp"
#include "rank_status.hpp"
#include "slurm.hpp"
#include "supervisor.hpp"

namespace haein::launcher::detail {

namespace {

// After a rank failed, mpirun or srun stops the others in about their grace period; this
// much more is left for their own teardown before haein stops the manager itself.
constexpr double kManagerTeardownSeconds = 5;

// Seconds mpirun's daemons wait between SIGTERM and SIGKILL: the grace and a second for
// exec-rank to record the end. They wait that long whether or not the ranks end sooner.
int mpirun_kill_seconds(double grace) { return static_cast<int>(std::ceil(grace)) + 1; }

// `haein exec-rank ... -- PROGRAM ARGS`, the per-rank step both backends run.
std::vector<std::string> exec_rank_argv(const Job& job, const Attempt& attempt) {
  std::vector<std::string> argv{
      job.options.haein_binary, "exec-rank",    "--placement",
      job.placement_path,       "--status-dir", attempt.status_dir().string()};
  if (!job.options.tag_template.empty()) {
    argv.insert(argv.end(), {"--tag-output", job.options.tag_template});
  }
  const std::string log_dir = attempt.log_dir(job);
  if (!log_dir.empty()) argv.insert(argv.end(), {"--log-dir", log_dir});
  if (job.options.heartbeat_timeout > 0) {
    argv.insert(argv.end(), {"--heartbeat-dir", attempt.heartbeat_dir().string()});
  }
  if (!job.nccl_topo_dir.empty()) argv.insert(argv.end(), {"--nccl-topo-dir", job.nccl_topo_dir});
  if (!job.options.local_ranks_filter.empty()) {
    std::string list;
    for (int local : job.options.local_ranks_filter)
      list += (list.empty() ? "" : ",") + std::to_string(local);
    argv.insert(argv.end(), {"--local-ranks-filter", list});
  }
  if (!job.master_addr.empty()) argv.insert(argv.end(), {"--master-addr", job.master_addr});
  argv.emplace_back("--");
  argv.insert(argv.end(), job.options.command.begin(), job.options.command.end());
  return argv;
}

bool every_rank_has_cores(const Placement& placement) {
  return std::all_of(placement.ranks.begin(), placement.ranks.end(),
                     [](const RankPlacement& r) { return !r.cores.empty(); });
}

}  // namespace

LaunchCommand mpirun_command(const Job& job, const Attempt& attempt) {
  LaunchCommand command;
  command.argv = {"mpirun"};
  // mpirun refuses root unless told; the ranks run as whoever runs haein.
  if (geteuid() == 0) command.argv.emplace_back("--allow-run-as-root");
  command.argv.insert(command.argv.end(), {"-np", std::to_string(job.placement.world_size())});
  if (every_rank_has_cores(job.placement)) {
    command.argv.insert(command.argv.end(), {"--rankfile", (job.dir / "rankfile").string(), "--mca",
                                             "rmaps_rank_file_physical", "1"});
  } else {
    // Nodes described without CPUs (a plain hostfile): one host per rank, in rank order.
    command.argv.insert(command.argv.end(), {"--hostfile", (job.dir / "hostfile").string(),
                                             "--map-by", "seq", "--bind-to", "none"});
  }
  if (job.options.oversubscribe) {
    // With a rankfile mpirun does not see the oversubscription, so its ranks would
    // busy-poll while sharing cores: 4 ranks on 2 cores then train 6x slower.
    command.argv.insert(command.argv.end(),
                        {"--oversubscribe", "--mca", "mpi_yield_when_idle", "1"});
  }
  command.argv.insert(command.argv.end(),
                      {"-x", "MASTER_PORT=" + std::to_string(attempt.master_port), "-x",
                       "HAEIN_RESTART_COUNT=" + std::to_string(attempt.index)});
  // mpirun's daemons SIGKILL their ranks a second after SIGTERM. A grace the user chose
  // holds there too (exec-rank gives its rank the grace, then records how it ended); the
  // daemons then wait that long even for ranks that end sooner, so not by default.
  if (job.grace_chosen) {
    command.argv.insert(command.argv.end(), {"--mca", "odls_base_sigkill_timeout",
                                             std::to_string(mpirun_kill_seconds(job.grace))});
  }
  if (!job.options.iface.empty()) {
    command.argv.insert(command.argv.end(), {"--mca", "btl_tcp_if_include", job.options.iface,
                                             "--mca", "oob_tcp_if_include", job.options.iface});
  }
  // Remote ranks start from orted's fresh environment: what they need must be named.
  command.env = job.forwarded_env;
  for (const auto& [name, value] : job.forwarded_env)
    command.argv.insert(command.argv.end(), {"-x", name});
  // Each chunk of a rank's output names the rank, so that haein run can put lines back
  // together (mpirun cuts and interleaves them).
  command.argv.emplace_back("--tag-output");
  const std::vector<std::string> rank = exec_rank_argv(job, attempt);
  command.argv.insert(command.argv.end(), rank.begin(), rank.end());
  return command;
}

LaunchCommand srun_command(const Job& job, const Attempt& attempt) {
  LaunchCommand command;
  command.env = job.forwarded_env;  // srun --export=ALL passes its environment on
  // One line per task, in rank order: with --distribution=arbitrary srun places task i on
  // line i. (A --nodelist would replace the file, one node per task.)
  command.env.emplace_back("SLURM_HOSTFILE", (job.dir / "hostfile").string());
  // srun reads these from the allocation's environment as if given on its command line;
  // the hostfile says how many ranks each node gets.
  command.unset = {"SLURM_NTASKS_PER_NODE", "SLURM_NTASKS_PER_SOCKET", "SLURM_NTASKS_PER_CORE",
                   "SLURM_NTASKS_PER_GPU", "SLURM_NTASKS_PER_TRES"};
  command.argv = {"srun", "--ntasks=" + std::to_string(job.placement.world_size()),
                  "--nodes=" + std::to_string(job.placement.nodes().size()),
                  "--distribution=arbitrary",
                  // Slurm ends the step when a task fails, as mpirun does.
                  "--kill-on-bad-exit=1",
                  // exec-rank binds each rank as placed, inside what Slurm granted the step.
                  "--cpu-bind=none"};
  if (!job.srun_mpi.empty()) command.argv.push_back("--mpi=" + job.srun_mpi);
  if (!job.srun_partition.empty()) command.argv.push_back("--partition=" + job.srun_partition);
  if (job.options.oversubscribe) command.argv.emplace_back("--overcommit");
  command.argv.insert(command.argv.end(), job.options.srun_args.begin(),
                      job.options.srun_args.end());
  command.argv.push_back("--export=ALL,MASTER_PORT=" + std::to_string(attempt.master_port) +
                         ",HAEIN_RESTART_COUNT=" + std::to_string(attempt.index));
  const std::vector<std::string> rank = exec_rank_argv(job, attempt);
  command.argv.insert(command.argv.end(), rank.begin(), rank.end());
  return command;
}

namespace {

Outcome run_remote(const Job& job, const Attempt& attempt, const LaunchCommand& command,
                   std::ostream& err) {
  const std::string manager = command.argv.front();
  ChildSpec child;
  child.argv = command.argv;
  child.env = command.env;
  child.unset = command.unset;
  // exec-rank tags each rank's lines. mpirun passes them on in chunks that cut lines and
  // interleave ranks mid-line: with --tag-output each chunk names its rank, and the lines
  // are put back together here. srun passes whole lines.
  child.capture = job.backend == Backend::kMpirun;
  child.open_mpi_tagged = job.backend == Backend::kMpirun;
  child.tag.clear();
  child.signal_group = false;
  if (job.backend == Backend::kSrun) {
    // srun answers SIGTERM by killing every task at once; the step is signalled through
    // Slurm instead, so that each rank gets SIGTERM and its grace period (its checkpoint
    // handler runs, its last lines are kept), and SIGKILL after it.
    const std::string status_dir = attempt.status_dir().string();
    // haein run killed outright cannot signal the step; srun's own SIGTERM answer then
    // ends it, so that no task is left behind.
    child.parent_death_signal = SIGTERM;
    child.deliver = [status_dir](int signal) {
      const std::string step = read_slurm_step(status_dir);
      if (step.empty()) return false;
      return run_program({"scancel", "--signal=" + std::to_string(signal), step}, 10).exit_code ==
             0;
    };
  }
  SupervisorOptions supervision;
  supervision.grace_seconds = job.grace;
  supervision.heartbeat_timeout = job.options.heartbeat_timeout;
  supervision.heartbeat_startup = job.options.heartbeat_startup;
  supervision.status_dir = attempt.status_dir().string();
  supervision.failure_deadline = supervision.grace_seconds + kManagerTeardownSeconds;
  if (job.backend == Backend::kMpirun && job.grace_chosen)
    supervision.failure_deadline += mpirun_kill_seconds(job.grace);
  if (job.options.heartbeat_timeout > 0) {
    for (int rank = 0; rank < job.placement.world_size(); ++rank)
      supervision.heartbeats.push_back({attempt.heartbeat_file(rank).string(), 0});
  }
  const SupervisorResult result = supervise({child}, supervision);
  if (result.manager_overdue) {
    err << "haein run: " << manager << " did not end within "
        << format_seconds(supervision.failure_deadline)
        << " s of the first rank failure (a host it cannot reach?); stopped it\n";
  }
  const ChildResult& ended = result.children.front();
  std::vector<RankStatus> statuses = read_rank_statuses(attempt.status_dir().string());
  // A manager that failed may end before the wrappers it stopped have written how their
  // ranks ended (mpirun after losing a daemon does): give them a moment, up to 3 s, and
  // no more once a second passed without a new one (those left died with their host).
  const int world = job.placement.world_size();
  for (int i = 0, idle = 0;
       ended.failed() && static_cast<int>(statuses.size()) < world && i < 30 && idle < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::size_t had = statuses.size();
    statuses = read_rank_statuses(attempt.status_dir().string());
    idle = statuses.size() > had ? 0 : idle + 1;
  }

  AttemptEnd end;
  end.ranks = std::move(statuses);
  end.supervision = result;
  end.manager = manager;
  end.stale = result.stale;  // a heartbeat's index is its rank
  end.hung = result.hung;
  return attempt_outcome(job, attempt, end, err);
}

// A process manager starts the ranks on their hosts (mpirun's daemons, Slurm's steps).
class ManagerBackend : public JobBackend {
 public:
  explicit ManagerBackend(const Job& job) : job_(job) {}

  void describe(const Attempt& attempt, std::ostream& out) const override {
    const LaunchCommand command = this->command(attempt);
    out << shell_line(command) << "\n";
    if (job_.backend == Backend::kMpirun) {
      const bool rankfile =
          std::find(command.argv.begin(), command.argv.end(), "--rankfile") != command.argv.end();
      print_file(out, job_.dir / (rankfile ? "rankfile" : "hostfile"), "");
      return;
    }
    std::string unset;
    for (const std::string& name : command.unset) unset += (unset.empty() ? "" : ", ") + name;
    out << "# srun does not inherit " << unset << " (the hostfile lays out the ranks)\n";
    print_file(out, job_.dir / "hostfile", " (SLURM_HOSTFILE, one line per rank)");
  }

  Outcome run(const Attempt& attempt, std::ostream& err) const override {
    return run_remote(job_, attempt, command(attempt), err);
  }

 private:
  LaunchCommand command(const Attempt& attempt) const {
    return job_.backend == Backend::kMpirun ? mpirun_command(job_, attempt)
                                            : srun_command(job_, attempt);
  }
  static void print_file(std::ostream& out, const std::filesystem::path& file,
                         const std::string& what) {
    out << "# " << file.string() << what << ":\n";
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) out << line << "\n";
  }

  const Job& job_;
};

}  // namespace

std::unique_ptr<JobBackend> make_backend(const Job& job) {
  if (job.backend == Backend::kLocal) return local_backend(job);
  if (job.backend == Backend::kMpirun || job.backend == Backend::kSrun)
    return std::make_unique<ManagerBackend>(job);
  throw InvalidArgument("no backend chosen");
}

}  // namespace haein::launcher::detail
