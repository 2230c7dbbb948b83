#pragma once
// What the runtime's watchdogs said before their ranks ended: each failed rank's last
// line is its verdict, which names the ranks that did not answer it ("ranks that did not
// answer (exited, stopped or unreachable): 2, 3"; a verdict covers every rank of the job).
// Read back by every backend to tell a stopped rank from a host cut off.

#include <string>
#include <vector>

#include "haein/launcher/placement.hpp"
#include "rank_status.hpp"

namespace haein::launcher::detail {

struct Silence {
  std::string host;         ///< empty when the verdicts name no single host
  std::vector<int> ranks;   ///< its silent ranks
  bool whole_host = false;  ///< all of them: the host was cut off (or its only rank stopped)
  std::string reporters;    ///< whole host: the hosts whose ranks found it silent
  std::vector<int> reporting_ranks;  ///< some ranks: the ranks whose watchdogs found them so
};

/// The silence the failed ranks' verdicts agree on. A silent rank counts only when it
/// outlived the verdict (it was alive when asked, so it was stopped or cut off). Either
/// some of one host's ranks were silent while that host's other ranks answered (they were
/// stopped: SIGSTOP, a debugger), or a whole host was: every other host's ranks found it
/// so, or its own ranks found ranks on two or more other hosts so while no other host's
/// ranks did. Nothing when the verdicts name neither (two hosts that lost each other, say).
Silence silence_in_verdicts(const Placement& placement, const std::vector<RankStatus>& statuses);

/// "rank 3 on h2: did not answer the watchdogs of ranks 0, 4 while it ran, though its host's
/// other ranks did: ..." without the leading "rank 3 on h2: ": how a partly silent host's
/// first silent rank is described as a root cause.
std::string describe_stopped(const Silence& silence);

}  // namespace haein::launcher::detail
