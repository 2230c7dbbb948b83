#pragma once
// Starting processes and watching them until they end: output lines tagged and logged, the
// last lines kept, the first failure noted, everyone else stopped (SIGTERM, then SIGKILL
// after a grace period), signals forwarded, heartbeat files watched. `haein run` uses it
// for its local ranks (one child per rank) and around mpirun or srun (one child), and
// `haein exec-rank` around the one rank it starts for them.

#include <algorithm>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace haein::launcher::detail {

struct ChildSpec {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;  ///< on top of ours
  std::vector<std::string> unset;                        ///< of ours, not passed on
  std::vector<int> cores;  ///< bound to those of them this machine has; empty: left alone
  int numa = -1;           ///< memory bound to this NUMA node when it exists here; -1: left
  /// Tag, log and keep the tail of its output; false: it shares our stdout and stderr.
  bool capture = true;
  std::string tag;       ///< prefix of every captured line
  std::string log_file;  ///< captured output also goes here (untagged); empty: none
  bool echo = true;      ///< captured output reaches our stdout/stderr; false: log and tail only
  /// The child is mpirun --tag-output: its output is chunks of the ranks' output, each
  /// starting with "[job,rank]<stdout>:", interleaved mid-line; the lines are put back
  /// together per rank (and the tags dropped) before they are emitted.
  bool open_mpi_tagged = false;
  /// Stop signals go to its whole process group (a rank and what it started); false:
  /// to the process only (mpirun and srun stop their ranks themselves), SIGKILL still
  /// goes to the group.
  bool signal_group = true;
  bool stdin_null = true;  ///< read /dev/null rather than our stdin
  /// Delivers a stop signal (SIGTERM, a forwarded one, SIGKILL) in the manager's own way
  /// rather than by kill(2): srun kills every task at once on SIGTERM, so its step is
  /// signalled through scancel. Returns false when it could not (then kill(2) is used).
  /// SIGKILL also goes to the child itself afterwards.
  std::function<bool(int signal)> deliver;
  /// What it gets when we die (even by SIGKILL, when nothing else can be done): SIGKILL;
  /// srun gets SIGTERM, which it answers by ending its step on every node.
  int parent_death_signal = SIGKILL;
};

/// A file a rank touches while it makes progress.
struct HeartbeatFile {
  std::string file;
  int child = 0;  ///< the child whose lifetime the heartbeat is watched for
};

struct SupervisorOptions {
  double grace_seconds = 3;      ///< SIGTERM to SIGKILL
  double heartbeat_timeout = 0;  ///< 0: heartbeats not watched
  /// Before a rank's first beat (its file unchanged since the start) it may take this long
  /// instead (importing a framework and the rendezvous take a while); 0: the timeout.
  double heartbeat_startup = 0;
  std::vector<HeartbeatFile> heartbeats;
  std::size_t tail_lines = 10;
  /// Where the ranks under a process manager (mpirun, srun) record how they ended: haein
  /// exec-rank's status files. Empty: not watched. Once one records a failure, the manager
  /// has `failure_deadline` seconds to end on its own; past that it is stopped (SIGTERM,
  /// then SIGKILL after the grace period), so that an unreachable host cannot hold the
  /// job: mpirun waits for its daemons as long as their TCP connections seem alive.
  std::string status_dir;
  double failure_deadline = 10;
  /// A second stop signal ends the grace period at once (Ctrl-C twice). exec-rank turns
  /// this off: Slurm signals every process of a step, so the same SIGTERM can reach it
  /// twice (from scancel and from haein run's scancel), and the manager kills it anyway.
  bool repeat_kills = true;
};

struct ChildResult {
  int exit_code = 0;              ///< when it exited
  int signal = 0;                 ///< when a signal ended it
  bool stopped = false;           ///< it was still running when the job was being stopped
  double seconds = 0;             ///< start to end
  std::int64_t ended_ns = 0;      ///< wall clock when it was reaped
  std::vector<std::string> tail;  ///< its last output lines, oldest first

  bool failed() const { return signal != 0 || exit_code != 0; }
  /// The code a shell reports: the exit code, or 128 + the signal.
  int shell_code() const { return signal != 0 ? 128 + signal : exit_code; }
  /// "exit code 3" or "signal SIGKILL (9)".
  std::string describe() const;
};

struct SupervisorResult {
  std::vector<ChildResult> children;
  int first_failure = -1;  ///< the child that failed first on its own, -1 when none did
  int hung = -1;           ///< the stalest heartbeat when some went stale, -1 when none
  double hung_age = 0;     ///< seconds since that heartbeat was touched
  /// Its process stopped running too (the file's access time, which the runtime's
  /// watchdog sets while a rank waits, stood still) while other ranks' still moved.
  bool hung_frozen = false;
  double hung_still = 0;  ///< then: seconds its access time was seen standing still
  /// The heartbeats silent for over half their allowance when `hung` was found (indices),
  /// `hung` first, then the others stalest first: in a collective hang, every rank.
  std::vector<int> stale;
  int stop_signal = 0;  ///< SIGINT, SIGTERM or SIGHUP that we received and forwarded
  /// The manager did not end within failure_deadline of a rank's failure and was stopped.
  bool manager_overdue = false;

  bool ok() const { return first_failure < 0 && hung < 0 && stop_signal == 0; }
};

/// Starts every child and returns when all have ended and their output is written.
/// Stops the others at the first failure or stale heartbeat; forwards SIGINT, SIGTERM,
/// SIGHUP, SIGUSR1 and SIGUSR2. A child that cannot exec its program prints why and
/// exits 127 (126 when the file is not executable), as shells do.
SupervisorResult supervise(const std::vector<ChildSpec>& children,
                           const SupervisorOptions& options);

/// "SIGKILL" for 9; "signal N" for one without a name.
std::string signal_name(int signal);

/// Expands {host}, {rank} and {local_rank} in an output-tag template; throws
/// InvalidArgument for another {name}.
/// Whether a rank's output reaches the console under --local-ranks-filter `filter`.
inline bool shows_local_rank(const std::vector<int>& filter, int local_rank) {
  return filter.empty() || std::find(filter.begin(), filter.end(), local_rank) != filter.end();
}

std::string expand_tag(const std::string& tag_template, const std::string& host, int rank,
                       int local_rank);

}  // namespace haein::launcher::detail
