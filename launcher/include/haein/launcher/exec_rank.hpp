#pragma once
/// @file
/// One rank's start: the environment contract of DESIGN.md built from the placement, and
/// `haein exec-rank`, the small step every backend runs per rank (under mpirun or srun,
/// or forked locally): read this rank's placement entry, set its environment, bind its
/// CPUs, exec the program.

#include <string>
#include <utility>
#include <vector>

#include "haein/launcher/placement.hpp"

namespace haein::launcher {

/// What a rank's environment needs beyond its placement entry.
struct RankContext {
  std::string placement_path;  ///< absolute path of the placement JSON (HAEIN_PLACEMENT)
  int master_port = 29500;
  std::string master_addr;      ///< MASTER_ADDR; empty: rank 0's hostname
  int restart_count = 0;        ///< HAEIN_RESTART_COUNT
  std::string nccl_topo_dir;    ///< when set, NCCL_TOPO_FILE=<dir>/<host>.xml
  std::string heartbeat_dir;    ///< when set, HAEIN_HEARTBEAT_FILE=<dir>/rank-<rank>
  int max_restarts = 0;         ///< TORCHELASTIC_MAX_RESTARTS
  std::string run_id = "none";  ///< TORCHELASTIC_RUN_ID (torchrun's default without --rdzv-id)
};

/// The variables of one rank, in a fixed order:
/// RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT, then what else
/// torchrun's agent sets and scripts read: GROUP_RANK GROUP_WORLD_SIZE (the node's place
/// among the job's nodes, and their number), ROLE_RANK ROLE_WORLD_SIZE ROLE_NAME
/// TORCHELASTIC_RESTART_COUNT TORCHELASTIC_MAX_RESTARTS TORCHELASTIC_RUN_ID;
/// CUDA_VISIBLE_DEVICES (when the rank has a GPU), NCCL_IB_HCA and UCX_NET_DEVICES (when it
/// has a NIC), NCCL_TOPO_FILE (with a topology dir), HAEIN_PLACEMENT, HAEIN_RESTART_COUNT,
/// HAEIN_HEARTBEAT_FILE (with a heartbeat dir).
std::vector<std::pair<std::string, std::string>> rank_environment(const Placement& placement,
                                                                  int rank,
                                                                  const RankContext& context);

struct ExecRankOptions {
  std::string placement_path;
  int rank = -1;  ///< -1: from the process manager (OMPI_COMM_WORLD_RANK, SLURM_PROCID, RANK)
  std::string nccl_topo_dir;
  std::string heartbeat_dir;  ///< sets HAEIN_HEARTBEAT_FILE=<dir>/rank-<rank>
  std::string master_addr;    ///< MASTER_ADDR; empty: rank 0's hostname
  bool bind = true;           ///< bind to the placement's cores when this machine has them
  /// With any of the next three, exec-rank stays as the rank's parent instead of exec'ing:
  /// it tags the output lines, writes the log, forwards signals and records how the rank
  /// ended (what `haein run` asks of it under mpirun and srun).
  std::string tag_template;  ///< prefix of each output line ({host} {rank} {local_rank})
  std::string log_dir;       ///< output also into <dir>/rank-<rank>.log
  std::string status_dir;    ///< how the rank ended into <dir>/rank-<rank>
  /// Watched ranks whose output reaches the console, by local rank; empty: every one (the
  /// others' goes to the log only).
  std::vector<int> local_ranks_filter;
  std::vector<std::string> command;
};

/// Sets the environment and affinity, then execs the command (or runs and watches it, see
/// ExecRankOptions); returns only when the program could not run, with 127 when it is not
/// found (as shells do), or with its exit code when watched. Throws InvalidArgument for a
/// bad placement or rank.
int exec_rank(const ExecRankOptions& options, std::ostream& err);

}  // namespace haein::launcher
