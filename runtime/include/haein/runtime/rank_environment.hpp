#pragma once
/// @file
/// The launcher/runtime environment contract (docs/environment.md): where a rank learns
/// who it is. Set by `haein run`; under plain mpirun or srun the MPI/Slurm variables
/// stand in.

#include <optional>
#include <string>

namespace haein::runtime {

struct RankEnvironment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;     ///< empty when not given
  int master_port = 0;         ///< 0 when not given
  std::string placement_path;  ///< HAEIN_PLACEMENT, empty when not given
  std::string source;          ///< "torchrun", "openmpi", "slurm" or "default"
};

/// Reads RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT when haein run
/// or torchrun set them (HAEIN_PLACEMENT or TORCHELASTIC_RUN_ID present), else
/// OMPI_COMM_WORLD_* (Open MPI), else in an srun step SLURM_PROCID/SLURM_NTASKS/
/// SLURM_LOCALID with the local size from SLURM_STEP_TASKS_PER_NODE (unless RANK and
/// WORLD_SIZE describe a world of another size: set on purpose), else RANK and friends,
/// else a single rank. Throws InvalidArgument for values that are not integers or that
/// contradict each other (rank >= world size).
RankEnvironment read_rank_environment();

}  // namespace haein::runtime
