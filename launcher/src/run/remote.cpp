// The mpirun and srun backends: their process managers start, place and tear down the
// ranks; each rank goes through `haein exec-rank`, which applies its placement entry and
// records how it ended, so that the launcher can name the root cause afterwards.
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/topology/hostlist.hpp"
#include "job.hpp"
#include "rank_status.hpp"
#include "slurm.hpp"
#include "supervisor.hpp"
#include "verdicts.hpp"

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

/// Hosts none of whose ranks ended on their own, with those ranks: each left no status
/// (the host or its daemon died with them) or was stopped because the daemon that started
/// it died (orphaned). The daemon or the host itself died, or was never reached.
std::vector<std::pair<std::string, std::vector<int>>> lost_hosts(
    const Placement& placement, const std::vector<RankStatus>& statuses) {
  std::set<int> reported;
  for (const RankStatus& status : statuses)
    if (!status.orphaned) reported.insert(status.rank);
  std::vector<std::pair<std::string, std::vector<int>>> hosts;
  for (const RankPlacement& r : placement.ranks) {
    auto host = std::find_if(hosts.begin(), hosts.end(),
                             [&](const auto& entry) { return entry.first == r.host; });
    if (host == hosts.end()) host = hosts.insert(hosts.end(), {r.host, {}});
    host->second.push_back(r.rank);
  }
  std::vector<std::pair<std::string, std::vector<int>>> lost;
  for (const auto& [host, ranks] : hosts) {
    if (std::none_of(ranks.begin(), ranks.end(), [&](int rank) { return reported.count(rank); }))
      lost.emplace_back(host, ranks);
  }
  // Every host silent is a job that never started, not a lost host.
  if (lost.size() == hosts.size()) lost.clear();
  return lost;
}

std::string rank_range(const std::vector<int>& ranks) {
  if (ranks.size() == 1) return "rank " + std::to_string(ranks.front());
  const bool consecutive = ranks.back() - ranks.front() + 1 == static_cast<int>(ranks.size());
  std::string text = "ranks ";
  if (consecutive) return text + std::to_string(ranks.front()) + "-" + std::to_string(ranks.back());
  for (std::size_t i = 0; i < ranks.size(); ++i) text += (i ? "," : "") + std::to_string(ranks[i]);
  return text;
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
  // ranks ended (mpirun after losing a daemon does): give them a moment.
  const int world = job.placement.world_size();
  for (int i = 0; ended.failed() && static_cast<int>(statuses.size()) < world && i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    statuses = read_rank_statuses(attempt.status_dir().string());
  }

  std::vector<int> killed;
  for (const RankStatus& status : statuses)
    if (status.stopped && status.signal == SIGKILL && !status.orphaned)
      killed.push_back(status.rank);
  report_killed(err, killed, job.grace);
  Outcome outcome;
  if (result.hung >= 0) {
    const int rank = result.hung;
    const RankPlacement& r = job.placement.ranks[rank];
    const std::string how = hung_description(job, result.hung_age);
    std::vector<std::string> tail;
    for (const RankStatus& status : statuses) {
      if (status.rank == rank) tail = status.tail;
    }
    report_failure(err, rank, r.host, how, tail);
    if (result.stale.size() > 1) err << stale_ranks_line(result.stale);  // index = rank
    err << "haein run: stopped " << manager << " and with it every rank\n";
    outcome.exit_code = kHungExitCode;
    outcome.summary = "rank " + std::to_string(rank) + " on " + r.host + " " + how;
    return outcome;
  }
  if (result.stop_signal != 0) {
    outcome.exit_code = 128 + result.stop_signal;
    outcome.interrupted = true;
    outcome.summary = "stopped by " + signal_name(result.stop_signal) + ", forwarded to " + manager;
    return outcome;
  }
  // A host that went silent comes first: the ranks elsewhere that failed after it lost
  // their peers are its victims. (Under a successful manager nothing was lost.) Not under
  // srun once a rank failed on its own: --kill-on-bad-exit then SIGKILLs every task at
  // once, and a host whose ranks had not failed yet goes silent without being lost.
  const bool failed_on_its_own =
      std::any_of(statuses.begin(), statuses.end(), [](const RankStatus& status) {
        return status.failed() && !status.stopped && !status.orphaned;
      });
  const bool silence_says_lost = job.backend != Backend::kSrun || !failed_on_its_own;
  const auto lost = ended.failed() && silence_says_lost
                        ? lost_hosts(job.placement, statuses)
                        : std::vector<std::pair<std::string, std::vector<int>>>{};
  if (!lost.empty()) {
    const auto& [host, ranks] = lost.front();
    const std::string how = "host " + host + " lost: its " + rank_range(ranks) +
                            " ended with it or were orphaned (its " + manager +
                            " daemon or the host itself died, or was never reached; " + manager +
                            "'s message is above)";
    err << "haein run: root cause: " << how << "\n";
    for (std::size_t i = 1; i < lost.size(); ++i)
      err << "haein run: host " << lost[i].first << " went silent too ("
          << rank_range(lost[i].second) << ")\n";
    outcome.exit_code = ended.shell_code();
    outcome.summary = how;
    outcome.lost_hosts.reserve(lost.size());
    for (const auto& entry : lost) outcome.lost_hosts.push_back(entry.first);
    return outcome;
  }
  if (const Silence silence = silence_in_verdicts(job.placement, statuses); !silence.host.empty()) {
    const RankStatus* failed = first_failure(statuses);
    outcome.exit_code = failed != nullptr
                            ? (failed->signal != 0 ? 128 + failed->signal : failed->exit_code)
                            : ended.shell_code();
    if (silence.whole_host) {
      const std::string how = "host " + silence.host + " unreachable: its " +
                              rank_range(silence.ranks) + " and the ranks on " + silence.reporters +
                              " could not reach each other's watchdogs while both ran";
      err << "haein run: root cause: " << how << "\n";
      outcome.summary = how;
      outcome.lost_hosts = {silence.host};
      return outcome;
    }
    // Its host answered for its other ranks: the process itself stood still.
    const int rank = silence.ranks.front();
    const std::string how = describe_stopped(silence);
    std::vector<std::string> tail;
    for (const RankStatus& status : statuses)
      if (status.rank == rank) tail = status.tail;
    report_failure(err, rank, silence.host, how, tail);
    outcome.summary = "rank " + std::to_string(rank) + " on " + silence.host + " " + how;
    return outcome;
  }
  if (const RankStatus* failed = first_failure(statuses)) {
    ChildResult how;
    how.exit_code = failed->exit_code;
    how.signal = failed->signal;
    report_failure(err, failed->rank, failed->host, how.describe(), failed->tail);
    outcome.exit_code = how.shell_code();
    outcome.summary = "rank " + std::to_string(failed->rank) + " on " + failed->host +
                      " failed first with " + how.describe();
    return outcome;
  }
  // No rank failed on its own and a stop signal reached the ranks from outside haein (the
  // manager passes on what it receives; Slurm signals its steps on scancel --signal and at
  // the time limit): the job was stopped, not failed. exec-rank then exits 0 so that srun
  // lets every rank finish saving. (When the manager failed, every rank must have reported:
  // a rank that reported nothing died with its wrapper, and srun stops the others the same
  // way.)
  if (!ended.failed() || static_cast<int>(statuses.size()) == world) {
    const auto stopped_from_outside =
        std::find_if(statuses.begin(), statuses.end(), [](const RankStatus& status) {
          return !status.orphaned && (status.received == SIGTERM || status.received == SIGINT);
        });
    if (stopped_from_outside != statuses.end()) {
      const int signal = stopped_from_outside->received;
      outcome.exit_code = 128 + signal;
      outcome.interrupted = true;
      outcome.summary = signal_name(signal) + " reached the ranks from outside haein (rank " +
                        std::to_string(stopped_from_outside->rank) + " on " +
                        stopped_from_outside->host + "; scancel --signal, a time limit?)";
      return outcome;
    }
  }
  if (!ended.failed()) {
    if (static_cast<int>(statuses.size()) < job.placement.world_size()) {
      err << "haein run: warning: " << manager << " succeeded but only " << statuses.size()
          << " of " << job.placement.world_size() << " ranks reported their end";
      struct statvfs space {};
      const std::string dir = attempt.status_dir().string();
      if (::statvfs(dir.c_str(), &space) == 0 &&
          static_cast<unsigned long long>(space.f_bavail) * space.f_frsize < (1u << 20))
        err << " (the job folder's file system is full: " << dir << "; logs may be cut short)";
      err << "\n";
    }
    return outcome;
  }
  // The manager failed and no rank did on its own: a rank never started, a node was
  // lost, or the manager itself refused the job; its own message is above.
  std::set<int> reported;
  for (const RankStatus& status : statuses) reported.insert(status.rank);
  std::vector<std::string> missing;
  for (int rank = 0; rank < job.placement.world_size() && missing.size() < 8; ++rank) {
    if (!reported.count(rank)) missing.push_back(std::to_string(rank));
  }
  outcome.exit_code = ended.shell_code();
  outcome.summary = manager + " failed with " + ended.describe();
  if (!missing.empty()) {
    outcome.summary += "; no end reported by rank";
    outcome.summary += missing.size() > 1 ? "s " : " ";
    for (std::size_t i = 0; i < missing.size(); ++i) outcome.summary += (i ? "," : "") + missing[i];
    outcome.summary += " (not started, or killed with the node; see " + manager + "'s message)";
  }
  return outcome;
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
