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
  int restart_count = 0;      ///< HAEIN_RESTART_COUNT
  std::string nccl_topo_dir;  ///< when set, NCCL_TOPO_FILE=<dir>/<host>.xml
};

/// The variables of one rank, in a fixed order:
/// RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT (torchrun's),
/// CUDA_VISIBLE_DEVICES (when the rank has a GPU), NCCL_IB_HCA and UCX_NET_DEVICES (when it
/// has a NIC), NCCL_TOPO_FILE (with a topology dir), HAEIN_PLACEMENT, HAEIN_RESTART_COUNT.
std::vector<std::pair<std::string, std::string>> rank_environment(const Placement& placement,
                                                                  int rank,
                                                                  const RankContext& context);

struct ExecRankOptions {
  std::string placement_path;
  int rank = -1;  ///< -1: from the process manager (OMPI_COMM_WORLD_RANK, SLURM_PROCID, RANK)
  std::string nccl_topo_dir;
  bool bind = true;  ///< bind to the placement's cores when this machine has them
  std::vector<std::string> command;
};

/// Sets the environment and affinity, then execs the command; returns only on failure,
/// with 127 when the program is not found or cannot be run (as shells do) and 2 for a
/// bad placement or rank.
int exec_rank(const ExecRankOptions& options, std::ostream& err);

}  // namespace haein::launcher
