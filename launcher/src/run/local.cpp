// The local backend: every rank forked on this node and supervised here.
#include <memory>

#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/topology/hostlist.hpp"
#include "job.hpp"
#include "outcome.hpp"
#include "supervisor.hpp"

namespace haein::launcher::detail {

namespace {

std::vector<LaunchCommand> local_commands(const Job& job, const Attempt& attempt) {
  const RankContext context = rank_context(job, attempt);
  std::vector<LaunchCommand> commands;
  for (int rank = 0; rank < job.placement.world_size(); ++rank) {
    // The forwarded variables first: the rank's own, set after them, win.
    LaunchCommand command{job.forwarded_env, job.options.command};
    for (auto& variable : rank_environment(job.placement, rank, context))
      command.env.push_back(std::move(variable));
    commands.push_back(std::move(command));
  }
  return commands;
}

Outcome run_local(const Job& job, const Attempt& attempt, std::ostream& err) {
  const std::vector<LaunchCommand> commands = local_commands(job, attempt);
  const std::string log_dir = attempt.log_dir(job);
  std::vector<ChildSpec> children;
  SupervisorOptions supervision;
  supervision.heartbeat_timeout = job.options.heartbeat_timeout;
  supervision.heartbeat_startup = job.options.heartbeat_startup;
  for (int rank = 0; rank < job.placement.world_size(); ++rank) {
    const RankPlacement& r = job.placement.ranks[rank];
    ChildSpec child;
    child.argv = commands[rank].argv;
    child.env = commands[rank].env;
    child.cores = r.cores;
    child.numa = r.numa;
    child.tag = expand_tag(job.options.tag_template, r.host, r.rank, r.local_rank);
    child.echo = shows_local_rank(job.options.local_ranks_filter, r.local_rank);
    if (!log_dir.empty()) child.log_file = log_dir + "/rank-" + std::to_string(rank) + ".log";
    children.push_back(std::move(child));
    if (job.options.heartbeat_timeout > 0)
      supervision.heartbeats.push_back({attempt.heartbeat_file(rank).string(), rank});
  }
  supervision.grace_seconds = job.grace;

  AttemptEnd end;
  end.supervision = supervise(children, supervision);
  const SupervisorResult& result = end.supervision;
  for (int rank = 0; rank < job.placement.world_size(); ++rank) {
    const ChildResult& child = result.children[rank];
    RankStatus status;
    status.rank = rank;
    status.host = job.placement.ranks[rank].host;
    status.exit_code = child.exit_code;
    status.signal = child.signal;
    status.stopped = child.stopped;
    status.ended_ns = child.ended_ns;
    status.seconds = child.seconds;
    status.tail = child.tail;
    end.ranks.push_back(std::move(status));
  }
  if (result.hung >= 0) end.hung = supervision.heartbeats[result.hung].child;
  for (const int index : result.stale) end.stale.push_back(supervision.heartbeats[index].child);
  return attempt_outcome(job, attempt, end, err);
}

class LocalBackend : public JobBackend {
 public:
  explicit LocalBackend(const Job& job) : job_(job) {}

  void describe(const Attempt& attempt, std::ostream& out) const override {
    const std::vector<LaunchCommand> commands = local_commands(job_, attempt);
    for (int rank = 0; rank < job_.placement.world_size(); ++rank) {
      const RankPlacement& r = job_.placement.ranks[rank];
      LaunchCommand line = commands[rank];
      if (!r.cores.empty())
        line.argv.insert(line.argv.begin(), {"taskset", "-c", topology::format_cpu_list(r.cores)});
      out << shell_line(line) << "\n";
    }
  }

  Outcome run(const Attempt& attempt, std::ostream& err) const override {
    return run_local(job_, attempt, err);
  }

 private:
  const Job& job_;
};

}  // namespace

std::unique_ptr<JobBackend> local_backend(const Job& job) {
  return std::make_unique<LocalBackend>(job);
}

}  // namespace haein::launcher::detail
