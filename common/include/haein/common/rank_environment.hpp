#pragma once
/// @file
/// The launcher/runtime environment contract (docs/environment.md): where a process learns
/// which rank it is. Set by `haein run`; under plain mpirun or srun the MPI/Slurm variables
/// stand in. The one reader of it: the runtime, exec-rank and log prefixes all ask here.

#include <string>

namespace haein {

struct RankEnvironment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;     ///< empty when not given
  int master_port = 0;         ///< 0 when not given
  std::string placement_path;  ///< HAEIN_PLACEMENT, empty when not given
  std::string source;          ///< "torchrun", "openmpi", "slurm", "pmi" or "default"
};

/// Whose variables a process reads first.
enum class RankVariables {
  /// A rank: what its launcher set for this very process (haein run, torchrun: RANK with
  /// HAEIN_PLACEMENT or TORCHELASTIC_RUN_ID) before the process manager's.
  kLauncherFirst,
  /// A task the process manager started itself (haein exec-rank under mpirun or srun):
  /// Open MPI's, then Slurm's, then PMI's (PMI_RANK/PMI_SIZE: MPICH's Hydra), then RANK;
  /// a RANK there is inherited from the submitting shell or haein run's own environment.
  kManagerFirst,
};

/// kLauncherFirst reads RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE when haein run or
/// torchrun set them, else OMPI_COMM_WORLD_* (Open MPI), else in an srun step
/// SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID with the local size from
/// SLURM_STEP_TASKS_PER_NODE (unless RANK and WORLD_SIZE describe a world of another size:
/// set on purpose), else RANK and friends, else a single rank ("default"). Also
/// MASTER_ADDR, MASTER_PORT and HAEIN_PLACEMENT. Throws InvalidArgument for values that are
/// not integers or that contradict each other (rank >= world size).
RankEnvironment read_rank_environment(RankVariables order = RankVariables::kLauncherFirst);

}  // namespace haein
