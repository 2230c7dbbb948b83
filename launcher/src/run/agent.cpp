// haein run's agent loop: attempts of a job until one succeeds, the user stops it, its
// Slurm job is gone or the restarts are used up. It owns the restart policy only: the
// backend runs an attempt and names its root cause, the planner places the job again.
#include "agent.hpp"

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/slurm.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/hostlist.hpp"
#include "slurm.hpp"
#include "supervisor.hpp"

namespace haein::launcher::detail {

namespace fs = std::filesystem;

namespace {

// A port nobody listens on now: bind to port 0, read what the kernel gave, let it go.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free MASTER_PORT");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!ok) throw Error("cannot find a free MASTER_PORT; give --master-port");
  return ntohs(address.sin_port);
}

// Waits `seconds` before the next attempt; a stop signal (SIGINT, SIGTERM, SIGHUP) ends the
// wait and is returned, rather than killing haein run between attempts (0: none came).
int pause_between_attempts(double seconds) {
  sigset_t stops, old;
  sigemptyset(&stops);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stops, s);
  pthread_sigmask(SIG_BLOCK, &stops, &old);
  timespec wait{};
  wait.tv_sec = static_cast<time_t>(seconds);
  wait.tv_nsec = static_cast<long>((seconds - static_cast<double>(wait.tv_sec)) * 1e9);
  int received = 0;
  for (;;) {
    const int s = sigtimedwait(&stops, nullptr, &wait);
    if (s > 0) received = s;
    if (s > 0 || errno != EINTR) break;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return received;
}

// Why the restart loop must end: the Slurm job the attempts run in was cancelled or ran out
// of time. Empty when it still runs (or Slurm cannot tell).
std::string slurm_job_gone(const std::string& job_id) {
  if (job_id.empty()) return {};
  const std::string state = slurm_job_state(job_id);
  if (state == "RUNNING" || state == "?") return {};
  return "Slurm job " + job_id + " " +
         (state.empty() ? std::string("has ended (cancelled or out of time)")
                        : "is " + state + (state == "CANCELLED" ? "" : " (no longer running)"));
}

void print_env(const Job& job, const Attempt& attempt, std::ostream& out) {
  const RankContext context = rank_context(job, attempt);
  for (int rank = 0; rank < job.placement.world_size(); ++rank) {
    const RankPlacement& r = job.placement.ranks[rank];
    out << "rank " << rank << " on " << r.host << " (cores "
        << (r.cores.empty() ? std::string("not bound") : topology::format_cpu_list(r.cores))
        << "):\n";
    for (const auto& [name, value] : rank_environment(job.placement, rank, context)) {
      out << "  " << name << "=" << value << "\n";
    }
  }
  out << "every rank on every host also gets (HAEIN_* in effect, --env):\n";
  for (const auto& [name, value] : job.forwarded_env) out << "  " << name << "=" << value << "\n";
  out << "haein settings in effect:\n";
  env::print_settings(out);
}

/// Attempt `index`'s folders (heartbeats, each rank's file made now, so that a rank that
/// never beats is found hung; statuses; dumps; logs) and its MASTER_PORT.
Attempt prepare_attempt(Job& job, int index, bool dump_dir_chosen) {
  Attempt attempt;
  attempt.index = index;
  attempt.master_port = job.options.master_port > 0 ? job.options.master_port : free_port();
  attempt.dir = job.dir / ("attempt-" + std::to_string(index));
  fs::create_directories(attempt.heartbeat_dir());
  fs::create_directories(attempt.status_dir());
  if (job.options.heartbeat_timeout > 0) {
    // The clock starts now; a fresh file, never one planted in a shared folder.
    for (int rank = 0; rank < job.placement.world_size(); ++rank)
      replace_file(attempt.heartbeat_file(rank).string(), "");
  }
  if (!dump_dir_chosen) {
    fs::create_directories(attempt.dump_dir());
    std::erase_if(job.forwarded_env,
                  [](const auto& entry) { return entry.first == settings::kDumpDir.name(); });
    job.forwarded_env.emplace_back(std::string(settings::kDumpDir.name()),
                                   attempt.dump_dir().string());
  }
  if (!job.log_dir.empty()) fs::create_directories(attempt.log_dir(job));
  return attempt;
}

void report_success(const Job& job, int index, double seconds, std::ostream& err) {
  err << "haein run: all " << job.placement.world_size() << " ranks finished in "
      << format_seconds(seconds) << " s"
      << (index > 0 ? " after " + std::to_string(index) + " restart" + (index > 1 ? "s" : "")
                    : std::string())
      << "\n";
}

// A cancelled or expired allocation cannot run another attempt: the outcome becomes a stop.
// (A job srun created for an attempt ends with it; a cancel of that one reaches the ranks
// as SIGTERM.)
void stop_if_slurm_job_gone(const Job& job, Outcome& outcome) {
  if (const std::string gone =
          outcome.interrupted ? std::string() : slurm_job_gone(job.slurm_job_id);
      !gone.empty()) {
    outcome.interrupted = true;
    outcome.exit_code = 128 + SIGTERM;
    outcome.summary = gone + "; " + outcome.summary;
  }
}

void report_end(const Outcome& outcome, int index, int max_restarts, std::ostream& err) {
  err << "haein run: job " << (outcome.interrupted ? "stopped" : "failed") << " ("
      << outcome.summary << "); exit code " << outcome.exit_code;
  if (max_restarts > 0 && !outcome.interrupted) {
    err << " after " << index << " of " << max_restarts << " restarts";
  }
  err << "\n";
}

// Recovery by re-placement: the lost hosts are excluded; each is replaced node for node by
// the nearest free node of the same hardware, so every other rank keeps its place; where one
// has no such spare, the job is planned again on the nodes left free, by the same rules
// (fewest leaf switches, best fit). Records it all in the job's excluded-hosts; false when
// the job cannot be placed again.
bool replace_lost_hosts(Job& job, Planner& planner, const Outcome& outcome, int index,
                        std::ostream& err) {
  std::ofstream excluded_file(job.dir / "excluded-hosts", std::ios::app);
  for (const std::string& host : outcome.lost_hosts) {
    err << "haein run: excluding " << host << " (" << outcome.summary << ")\n";
    excluded_file << host << "\tattempt " << index << "\t" << outcome.summary << "\n";
  }
  try {
    std::vector<std::string> lines;
    job.placement = planner.without(job.placement, outcome.lost_hosts, lines);
    for (const std::string& line : lines) {
      err << "haein run: " << line << "\n";
      excluded_file << line << "\n";
    }
  } catch (const Error& error) {
    err << "haein run: cannot place the job again without "
        << topology::compress_hostlist(outcome.lost_hosts) << ": " << error.what() << "\n";
    return false;
  }
  job.master_addr = master_address(job.placement, job.options.iface);
  write_job_files(job);
  std::vector<std::string> now;
  for (int node : job.placement.nodes()) now.push_back(job.cluster.nodes[node].hostname);
  err << "haein run: re-placed on " << topology::compress_hostlist(now) << "\n";
  if (job.placement.world_size() <= 16) print_rank_table(err, job.placement);
  excluded_file << "re-placed on " << topology::compress_hostlist(now) << "\n";
  return true;
}

}  // namespace

int run_attempts(Job& job, Planner& planner, const JobBackend& backend, JobDirectory& directory,
                 std::ostream& out, std::ostream& err) {
  const RunOptions& options = job.options;
  // Flight-recorder dumps go to the job's folder, per attempt (every host shares it), unless
  // the user chose a place: otherwise a remote rank's dump stays in that host's /tmp.
  const bool dump_dir_chosen =
      std::any_of(job.forwarded_env.begin(), job.forwarded_env.end(),
                  [](const auto& entry) { return entry.first == settings::kDumpDir.name(); });
  const auto started = std::chrono::steady_clock::now();
  for (int index = 0;; ++index) {
    const Attempt attempt = prepare_attempt(job, index, dump_dir_chosen);
    if (options.print_env && index == 0) print_env(job, attempt, out);
    if (options.dry_run) {
      out << "# haein run --dry-run: " << to_string(job.backend) << " backend, "
          << job.placement.world_size() << " ranks; job files in " << job.dir.string() << "\n";
      backend.describe(attempt, out);
      return 0;
    }
    out.flush();
    Outcome outcome = backend.run(attempt, err);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (const int dumps = count_files(attempt.dump_dir()); dumps > 0 && !dump_dir_chosen) {
      directory.keep();
      err << "haein run: flight-recorder dumps of " << dumps << " rank" << (dumps > 1 ? "s" : "")
          << " in " << attempt.dump_dir().string() << "\n";
    }
    if (outcome.exit_code == 0) {
      report_success(job, index, seconds, err);
      return 0;
    }
    stop_if_slurm_job_gone(job, outcome);
    if (outcome.interrupted || index >= options.max_restarts) {
      report_end(outcome, index, options.max_restarts, err);
      return outcome.exit_code;
    }
    // A back-off: a job that fails at once must not restart dozens of times a second.
    const double pause = std::min(0.5 * std::pow(2.0, index), 30.0);
    err << "haein run: " << outcome.summary << "; restarting the job in " << format_seconds(pause)
        << " s (restart " << index + 1 << " of " << options.max_restarts << ")\n";
    if (const int signal = pause_between_attempts(pause); signal != 0) {
      err << "haein run: job stopped (" << signal_name(signal) << " between attempts); exit code "
          << 128 + signal << "\n";
      return 128 + signal;
    }
    if (!outcome.lost_hosts.empty() && job.backend != Backend::kLocal &&
        !replace_lost_hosts(job, planner, outcome, index, err))
      return outcome.exit_code;
  }
}

}  // namespace haein::launcher::detail
