#include "outcome.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <csignal>
#include <optional>
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

/// The steps of attempt_outcome, each the root cause of one kind or nothing.
class Judgement {
 public:
  Judgement(const Job& job, const Attempt& attempt, const AttemptEnd& end, std::ostream& err)
      : job_(job),
        attempt_(attempt),
        end_(end),
        statuses_(end.ranks),
        result_(end.supervision),
        manager_(end.manager),
        managed_(!end.manager.empty()),
        ended_(managed_ ? end.supervision.children.front() : ChildResult{}),
        err_(err) {}

  void report_killed_ranks() const {
    std::vector<int> killed;
    for (const RankStatus& status : statuses_)
      if (status.stopped && status.signal == SIGKILL && !status.orphaned)
        killed.push_back(status.rank);
    report_killed(err_, killed, job_.grace);
  }

  std::optional<Outcome> hang() const {
    if (end_.hung < 0) return std::nullopt;
    const int rank = end_.hung;
    const RankPlacement& r = job_.placement.ranks[rank];
    const std::string how =
        result_.hung_frozen ? "stopped running (SIGSTOP, a debugger?): no heartbeat for " +
                                  format_seconds(result_.hung_age) + " s and no sign of life for " +
                                  format_seconds(result_.hung_still) +
                                  " s while the other ranks waited (--heartbeat-timeout " +
                                  format_seconds(job_.options.heartbeat_timeout) + ")"
                            : hung_description(job_, result_.hung_age);
    report_failure(err_, rank, r.host, how, tail_of(rank));
    if (end_.stale.size() > 1) err_ << stale_ranks_line(end_.stale, result_.hung_frozen);
    if (managed_) err_ << "haein run: stopped " << manager_ << " and with it every rank\n";
    Outcome outcome;
    outcome.exit_code = kHungExitCode;
    outcome.summary = "rank " + std::to_string(rank) + " on " + r.host + " " + how;
    return outcome;
  }

  // A stop signal after a rank of haein run's own failed (Ctrl-C during the grace) does
  // not hide that failure: it came first.
  std::optional<Outcome> stopped_by_user() const {
    if (result_.stop_signal == 0 || (!managed_ && first_failure(statuses_) != nullptr))
      return std::nullopt;
    Outcome outcome;
    outcome.exit_code = 128 + result_.stop_signal;
    outcome.interrupted = true;
    outcome.summary = "stopped by " + signal_name(result_.stop_signal) + ", forwarded to " +
                      (managed_ ? manager_ : "every rank");
    return outcome;
  }

  // A host that went silent comes first: the ranks elsewhere that failed after it lost
  // their peers are its victims. (Under a successful manager nothing was lost.) Not under
  // srun once a rank failed on its own: --kill-on-bad-exit then SIGKILLs every task at
  // once, and a host whose ranks had not failed yet goes silent without being lost.
  std::optional<Outcome> lost_host() const {
    const bool failed_on_its_own =
        std::any_of(statuses_.begin(), statuses_.end(), [](const RankStatus& status) {
          return status.failed() && !status.stopped && !status.orphaned;
        });
    if (!managed_ || !ended_.failed() || (job_.backend == Backend::kSrun && failed_on_its_own))
      return std::nullopt;
    const auto lost = lost_hosts(job_.placement, statuses_);
    if (lost.empty()) return std::nullopt;
    const auto& [host, ranks] = lost.front();
    const std::string how = "host " + host + " lost: its " + rank_range(ranks) +
                            " ended with it or were orphaned (its " + manager_ +
                            " daemon or the host itself died, or was never reached; " + manager_ +
                            "'s message is above)";
    err_ << "haein run: root cause: " << how << "\n";
    for (std::size_t i = 1; i < lost.size(); ++i)
      err_ << "haein run: host " << lost[i].first << " went silent too ("
           << rank_range(lost[i].second) << ")\n";
    Outcome outcome;
    outcome.exit_code = ended_.shell_code();
    outcome.summary = how;
    for (const auto& entry : lost) outcome.lost_hosts.push_back(entry.first);
    return outcome;
  }

  // What the watchdogs' verdicts agree on: a host cut off, or a rank that stood still.
  std::optional<Outcome> silence() const {
    const Silence silence = silence_in_verdicts(job_.placement, statuses_);
    if (silence.host.empty()) return std::nullopt;
    Outcome outcome;
    const RankStatus* failed = first_failure(statuses_);
    outcome.exit_code = failed != nullptr
                            ? (failed->signal != 0 ? 128 + failed->signal : failed->exit_code)
                            : ended_.shell_code();
    if (silence.whole_host) {
      const std::string how = "host " + silence.host + " unreachable: its " +
                              rank_range(silence.ranks) + " and the ranks on " + silence.reporters +
                              " could not reach each other's watchdogs while both ran";
      err_ << "haein run: root cause: " << how << "\n";
      outcome.summary = how;
      outcome.lost_hosts = {silence.host};
      return outcome;
    }
    // Its host answered for its other ranks: the process itself stood still.
    const int rank = silence.ranks.front();
    const std::string how = describe_stopped(silence);
    report_failure(err_, rank, silence.host, how, tail_of(rank));
    report_stopped_others();
    outcome.summary = "rank " + std::to_string(rank) + " on " + silence.host + " " + how;
    return outcome;
  }

  std::optional<Outcome> rank_failure() const {
    const RankStatus* failed = first_failure(statuses_);
    if (failed == nullptr) return std::nullopt;
    ChildResult how;
    how.exit_code = failed->exit_code;
    how.signal = failed->signal;
    report_failure(err_, failed->rank, failed->host, how.describe(), failed->tail);
    report_stopped_others();
    Outcome outcome;
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
  std::optional<Outcome> stopped_from_outside() const {
    if (!managed_ || (ended_.failed() && static_cast<int>(statuses_.size()) != world()))
      return std::nullopt;
    const auto stopped =
        std::find_if(statuses_.begin(), statuses_.end(), [](const RankStatus& status) {
          return !status.orphaned && (status.received == SIGTERM || status.received == SIGINT);
        });
    if (stopped == statuses_.end()) return std::nullopt;
    Outcome outcome;
    outcome.exit_code = 128 + stopped->received;
    outcome.interrupted = true;
    outcome.summary = signal_name(stopped->received) +
                      " reached the ranks from outside haein (rank " +
                      std::to_string(stopped->rank) + " on " + stopped->host +
                      "; scancel --signal, a time limit?)";
    return outcome;
  }

  // Every rank ended well; under a manager that succeeded, say what is missing.
  std::optional<Outcome> success() const {
    if (managed_ && ended_.failed()) return std::nullopt;
    if (managed_ && static_cast<int>(statuses_.size()) < world()) {
      err_ << "haein run: warning: " << manager_ << " succeeded but only " << statuses_.size()
           << " of " << world() << " ranks reported their end";
      struct statvfs space {};
      const std::string dir = attempt_.status_dir().string();
      if (::statvfs(dir.c_str(), &space) == 0 &&
          static_cast<unsigned long long>(space.f_bavail) * space.f_frsize < (1u << 20))
        err_ << " (the job folder's file system is full: " << dir << "; logs may be cut short)";
      err_ << "\n";
    }
    return Outcome{};
  }

  // The manager failed and no rank did on its own: a rank never started, a node was
  // lost, or the manager itself refused the job; its own message is above.
  Outcome manager_failure() const {
    std::set<int> reported;
    for (const RankStatus& status : statuses_) reported.insert(status.rank);
    std::vector<std::string> missing;
    for (int rank = 0; rank < world() && missing.size() < 8; ++rank)
      if (!reported.count(rank)) missing.push_back(std::to_string(rank));
    Outcome outcome;
    outcome.exit_code = ended_.shell_code();
    outcome.summary = manager_ + " failed with " + ended_.describe();
    if (!missing.empty()) {
      outcome.summary += "; no end reported by rank";
      outcome.summary += missing.size() > 1 ? "s " : " ";
      for (std::size_t i = 0; i < missing.size(); ++i)
        outcome.summary += (i ? "," : "") + missing[i];
      outcome.summary += " (not started, or killed with the node; see " + manager_ + "'s message)";
    }
    return outcome;
  }

 private:
  int world() const { return job_.placement.world_size(); }

  std::vector<std::string> tail_of(int rank) const {
    for (const RankStatus& status : statuses_)
      if (status.rank == rank) return status.tail;
    return {};
  }

  // The local backend stops the other ranks itself; a manager's message says so for it.
  void report_stopped_others() const {
    const int others = world() - 1;
    if (managed_ || others == 0) return;
    err_ << "haein run: stopped the other " << others << " rank" << (others == 1 ? "" : "s")
         << " (SIGTERM, SIGKILL after " << job_.grace << " s)\n";
  }

  const Job& job_;
  const Attempt& attempt_;
  const AttemptEnd& end_;
  const std::vector<RankStatus>& statuses_;
  const SupervisorResult& result_;
  const std::string& manager_;
  const bool managed_;
  const ChildResult ended_;  ///< the manager's end; a success for ranks haein run started
  std::ostream& err_;
};

}  // namespace

Outcome attempt_outcome(const Job& job, const Attempt& attempt, const AttemptEnd& end,
                        std::ostream& err) {
  const Judgement judge(job, attempt, end, err);
  judge.report_killed_ranks();
  for (const auto step :
       {&Judgement::hang, &Judgement::stopped_by_user, &Judgement::lost_host, &Judgement::silence,
        &Judgement::rank_failure, &Judgement::stopped_from_outside, &Judgement::success}) {
    if (std::optional<Outcome> outcome = (judge.*step)()) return *std::move(outcome);
  }
  return judge.manager_failure();
}

}  // namespace haein::launcher::detail
