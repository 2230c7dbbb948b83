#pragma once
// How a rank ended, as `haein exec-rank` records it for `haein run` when mpirun or srun
// started the rank: one small text file per rank in the attempt's status directory (on a
// file system the launcher's host shares), read back to name the root cause.

#include <cstdint>
#include <string>
#include <vector>

namespace haein::launcher::detail {

struct RankStatus {
  int rank = -1;
  std::string host;
  int exit_code = 0;
  int signal = 0;
  bool stopped = false;  ///< a stop signal reached it before it ended: not a root cause
  /// The process that started exec-rank (Open MPI's daemon, slurmstepd) died first: the
  /// rank was stopped because its host's daemon was lost.
  bool orphaned = false;
  /// The stop signal exec-rank itself received and passed on (from mpirun, from Slurm
  /// through scancel --signal or a time limit); 0 when none.
  int received = 0;
  std::int64_t ended_ns = 0;  ///< wall clock at its end, to order failures across ranks
  double seconds = 0;
  std::vector<std::string> tail;

  bool failed() const { return signal != 0 || exit_code != 0; }
};

/// Writes DIR/rank-R atomically (temporary file, then rename).
void write_rank_status(const std::string& dir, const RankStatus& status);

/// Every readable status in DIR; unreadable or partial files are skipped.
std::vector<RankStatus> read_rank_statuses(const std::string& dir);

/// The failure that came first on its own (earliest end among failed, not stopped
/// ranks); nullptr when there is none.
const RankStatus* first_failure(const std::vector<RankStatus>& statuses);

}  // namespace haein::launcher::detail
