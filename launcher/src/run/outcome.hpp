#pragma once
// How an attempt ended, told once for every backend: its root cause printed, its exit code
// and what the agent loop needs (was it stopped by the user, which hosts were lost).

#include <ostream>
#include <string>
#include <vector>

#include "job.hpp"
#include "rank_status.hpp"
#include "supervisor.hpp"

namespace haein::launcher::detail {

/// What a backend saw of an attempt's end.
struct AttemptEnd {
  /// How each rank ended: every rank haein run started itself; under a manager, those whose
  /// exec-rank reported (one lost with its host reports nothing).
  std::vector<RankStatus> ranks;
  /// The supervisor's view: its children are the ranks, or the manager alone.
  SupervisorResult supervision;
  std::string manager;     ///< "mpirun" or "srun"; empty when haein run started the ranks
  int hung = -1;           ///< the rank whose heartbeat went stale first; -1 when none did
  std::vector<int> stale;  ///< ranks silent for over half the allowance, `hung` first
};

/// Names the root cause of `end` on `err` (who, how, their last lines) and returns the
/// attempt's outcome. In order: a hang, a stop signal from the user, a lost host, a rank
/// or host the watchdogs found silent, the first rank that failed on its own, a stop from
/// outside haein (scancel, a time limit), the manager's own failure.
Outcome attempt_outcome(const Job& job, const Attempt& attempt, const AttemptEnd& end,
                        std::ostream& err);

}  // namespace haein::launcher::detail
