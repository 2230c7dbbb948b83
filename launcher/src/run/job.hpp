#pragma once
// What `haein run`'s backends share: the placed job, one attempt of it, and how an
// attempt ended.

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "haein/launcher/exec_rank.hpp"
#include "haein/launcher/run.hpp"
#include "haein/topology/model.hpp"

namespace haein::launcher::detail {

struct Job {
  RunOptions options;
  topology::Cluster cluster;
  Placement placement;
  Backend backend = Backend::kLocal;
  std::filesystem::path dir;  ///< the job's files: placement JSON, rankfile, hostfile, ...
  std::string placement_path;
  std::string nccl_topo_dir;  ///< empty without --nccl-topo
  std::string log_dir;        ///< absolute --log-dir, empty without
  /// What every rank gets on every host besides its own variables: the HAEIN_* settings in
  /// effect and --env; the backends forward them (mpirun -x, srun --export).
  std::vector<std::pair<std::string, std::string>> forwarded_env;
  std::string master_addr;    ///< MASTER_ADDR for jobs across hosts; empty: rank 0's hostname
  double grace = 3;           ///< SIGTERM to SIGKILL (--stop-grace, else HAEIN_STOP_GRACE)
  bool grace_chosen = false;  ///< by --stop-grace or HAEIN_STOP_GRACE, not the default
  /// srun's --mpi for the ranks (pmix where the site's MPI needs it); empty: srun's default.
  std::string srun_mpi;
  /// The Slurm job haein runs inside (salloc, sbatch); empty outside one.
  std::string slurm_job_id;
  /// srun's --partition outside an allocation: the one --cluster slurm:PARTITION placed on.
  std::string srun_partition;
};

/// True for this host's name, localhost and 127.0.0.1.
bool is_this_host(const std::string& host);
/// IPv4 address of this host's `interface`; InvalidArgument naming the interfaces there.
std::string interface_address(const std::string& interface);
/// The address every host reaches rank 0 at, for a placement across hosts (empty for one
/// host): the address of `interface` or of the route to the other hosts when rank 0 is
/// here, else rank 0's host resolved here. A loopback answer is an InvalidArgument.
std::string master_address(const Placement& placement, const std::string& interface);

/// One start of the whole job; restarts are further attempts.
struct Attempt {
  int index = 0;  ///< HAEIN_RESTART_COUNT
  int master_port = 0;
  std::filesystem::path dir;  ///< <job dir>/attempt-<index>: heartbeats, rank statuses

  std::filesystem::path heartbeat_dir() const { return dir / "heartbeat"; }
  /// Rank `rank`'s heartbeat file (HAEIN_HEARTBEAT_FILE), made when the attempt starts.
  std::filesystem::path heartbeat_file(int rank) const {
    return heartbeat_dir() / ("rank-" + std::to_string(rank));
  }
  std::filesystem::path status_dir() const { return dir / "status"; }
  /// HAEIN_DUMP_DIR of the ranks, unless the user chose one.
  std::filesystem::path dump_dir() const { return dir / "dumps"; }
  /// <log dir>/attempt-<index>, or empty without --log-dir.
  std::string log_dir(const Job& job) const;
};

struct Outcome {
  int exit_code = 0;
  bool interrupted = false;             ///< the user stopped it: no restart
  std::string summary;                  ///< one line for the final message and the restart notice
  std::vector<std::string> lost_hosts;  ///< hosts that went silent (daemon or host died)
};

/// What the ranks of this attempt get besides their placement entry.
RankContext rank_context(const Job& job, const Attempt& attempt);

/// A command with the variables it runs under.
struct LaunchCommand {
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> argv;
  std::vector<std::string> unset = {};  ///< variables of ours it must not inherit
};

/// How the ranks are started and supervised: on this node, through mpirun or through srun.
/// A backend reads its Job at every call (a restart may have placed it again).
class JobBackend {
 public:
  virtual ~JobBackend() = default;
  /// What an attempt would run, as --dry-run prints it.
  virtual void describe(const Attempt& attempt, std::ostream& out) const = 0;
  /// Runs the attempt to its end; prints its root cause to `err` when it failed.
  virtual Outcome run(const Attempt& attempt, std::ostream& err) const = 0;
};

/// The backend job.backend names (local, mpirun or srun), reading `job`.
std::unique_ptr<JobBackend> make_backend(const Job& job);
/// The local backend (local.cpp); make_backend's for Backend::kLocal.
std::unique_ptr<JobBackend> local_backend(const Job& job);

/// The mpirun or srun command line (with `haein exec-rank` per rank) of an attempt.
LaunchCommand mpirun_command(const Job& job, const Attempt& attempt);
LaunchCommand srun_command(const Job& job, const Attempt& attempt);

/// Prints the root cause: who, how, and the last lines of its output.
void report_failure(std::ostream& err, int rank, const std::string& host, const std::string& how,
                    const std::vector<std::string>& tail);

/// "haein run: ranks 1,3 did not end within 3.0 s of SIGTERM and were killed ..."; nothing
/// when `ranks` is empty.
void report_killed(std::ostream& err, const std::vector<int>& ranks, double grace);

/// "hung: no heartbeat for 1.2 s (--heartbeat-timeout 1.0)".
std::string hung_description(const Job& job, double age_seconds);
/// "haein run: 4 ranks were silent for over half the heartbeat timeout: 0-3 (...)";
/// `ranks` the one named first (the stalest, or the one that stopped running).
std::string stale_ranks_line(const std::vector<int>& ranks, bool first_stopped = false);

/// Seconds with one decimal: "2.5".
std::string format_seconds(double seconds);

/// `word` quoted for a POSIX shell when it needs it.
std::string shell_quote(const std::string& word);
/// NAME=value ... argv, quoted, as one shell line.
std::string shell_line(const LaunchCommand& command);

}  // namespace haein::launcher::detail
