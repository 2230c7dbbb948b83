#include "outcome.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <csignal>
#include <set>

#include "verdicts.hpp"

namespace haein::launcher::detail {

namespace {

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

}  // namespace

Outcome attempt_outcome(const Job& job, const Attempt& attempt, const AttemptEnd& end,
                        std::ostream& err) {
  const std::vector<RankStatus>& statuses = end.ranks;
  const SupervisorResult& result = end.supervision;
  const std::string& manager = end.manager;
  const bool managed = !manager.empty();
  // The manager's own end (mpirun's, srun's); a success for ranks haein run started.
  const ChildResult ended = managed ? result.children.front() : ChildResult{};
  const int others = job.placement.world_size() - 1;
  const auto stopped_others = [&] {
    if (managed || others == 0) return;
    err << "haein run: stopped the other " << others << " rank" << (others == 1 ? "" : "s")
        << " (SIGTERM, SIGKILL after " << job.grace << " s)\n";
  };
  std::vector<int> killed;
  for (const RankStatus& status : statuses)
    if (status.stopped && status.signal == SIGKILL && !status.orphaned)
      killed.push_back(status.rank);
  report_killed(err, killed, job.grace);
  Outcome outcome;
  if (end.hung >= 0) {
    const int rank = end.hung;
    const RankPlacement& r = job.placement.ranks[rank];
    const std::string how =
        result.hung_frozen ? "stopped running (SIGSTOP, a debugger?): no heartbeat for " +
                                 format_seconds(result.hung_age) + " s and no sign of life for " +
                                 format_seconds(result.hung_still) +
                                 " s while the other ranks waited (--heartbeat-timeout " +
                                 format_seconds(job.options.heartbeat_timeout) + ")"
                           : hung_description(job, result.hung_age);
    std::vector<std::string> tail;
    for (const RankStatus& status : statuses) {
      if (status.rank == rank) tail = status.tail;
    }
    report_failure(err, rank, r.host, how, tail);
    if (end.stale.size() > 1) err << stale_ranks_line(end.stale, result.hung_frozen);
    if (managed) err << "haein run: stopped " << manager << " and with it every rank\n";
    outcome.exit_code = kHungExitCode;
    outcome.summary = "rank " + std::to_string(rank) + " on " + r.host + " " + how;
    return outcome;
  }
  // A stop signal after a rank of haein run's own failed (Ctrl-C during the grace) does
  // not hide that failure: it came first.
  if (result.stop_signal != 0 && (managed || first_failure(statuses) == nullptr)) {
    outcome.exit_code = 128 + result.stop_signal;
    outcome.interrupted = true;
    outcome.summary = "stopped by " + signal_name(result.stop_signal) + ", forwarded to " +
                      (managed ? manager : "every rank");
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
  const auto lost = managed && ended.failed() && silence_says_lost
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
    stopped_others();
    outcome.summary = "rank " + std::to_string(rank) + " on " + silence.host + " " + how;
    return outcome;
  }
  if (const RankStatus* failed = first_failure(statuses)) {
    ChildResult how;
    how.exit_code = failed->exit_code;
    how.signal = failed->signal;
    report_failure(err, failed->rank, failed->host, how.describe(), failed->tail);
    stopped_others();
    outcome.exit_code = how.shell_code();
    outcome.summary = "rank " + std::to_string(failed->rank) + " on " + failed->host +
                      " failed first with " + how.describe();
    return outcome;
  }
  if (!managed) return outcome;  // every rank ended well
  // No rank failed on its own and a stop signal reached the ranks from outside haein (the
  // manager passes on what it receives; Slurm signals its steps on scancel --signal and at
  // the time limit): the job was stopped, not failed. exec-rank then exits 0 so that srun
  // lets every rank finish saving. (When the manager failed, every rank must have reported:
  // a rank that reported nothing died with its wrapper, and srun stops the others the same
  // way.)
  const int world = job.placement.world_size();
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

}  // namespace haein::launcher::detail
