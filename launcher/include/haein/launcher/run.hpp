#pragma once
/// @file
/// `haein run`: places a job (haein plan's placement), starts its ranks through one of
/// three backends and supervises them: tagged output, per-rank logs, the first failure
/// reported as the root cause, the others stopped, signals forwarded, restarts and a
/// heartbeat watchdog.

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "haein/launcher/placement.hpp"

namespace haein::launcher {

enum class Backend {
  kAuto,    ///< local when every rank is on this host, srun inside a Slurm job, else mpirun
  kLocal,   ///< fork and exec on this node
  kMpirun,  ///< Open MPI's mpirun with a rankfile; ranks start through `haein exec-rank`
  kSrun,    ///< Slurm's srun --distribution=arbitrary; ranks start through `haein exec-rank`
};
std::string_view to_string(Backend backend);
/// "auto", "local", "mpirun", "srun"; throws InvalidArgument for anything else.
Backend parse_backend(const std::string& text);

/// Exit code of a job stopped because a rank's heartbeat went stale (as timeout(1)).
constexpr int kHungExitCode = 124;

struct RunOptions {
  std::string cluster;  ///< file or preset:NAME; empty: this node, discovered
  std::string busy;     ///< busy file, empty for none
  /// Ranks: gpus (`--gpus N` or `-n N`), or nodes with gpus_per_node
  /// (`--nnodes M --nproc-per-node K`).
  PlacementRequest request;
  std::string layout;  ///< unparsed --layout, empty for none
  Backend backend = Backend::kAuto;
  bool oversubscribe = false;  ///< more ranks than a node has slots (CPU-only nodes)
  int max_restarts = 0;
  std::string log_dir;  ///< per-rank logs and the job's files; empty: a temporary directory
  std::string tag_template = "[{host}:{rank}] ";
  double heartbeat_timeout = 0;  ///< seconds; 0: not watched
  double heartbeat_startup = 0;  ///< seconds allowed before a rank's first beat; 0: the timeout
  double stop_grace = -1;        ///< SIGTERM to SIGKILL, seconds; < 0: HAEIN_STOP_GRACE
  int master_port = 0;           ///< 0: a free port chosen at start
  bool nccl_topo = false;        ///< write NCCL topology files and set NCCL_TOPO_FILE
  bool dry_run = false;          ///< print what would run, run nothing
  bool print_env = false;        ///< print every rank's variables before starting
  /// --env NAME[=VALUE], as `mpirun -x` / `srun --export`: set for every rank on every
  /// host (NAME alone: this environment's value). Every HAEIN_* setting in effect goes to
  /// every rank too. Variables haein sets per rank (RANK, ...) win over these.
  std::vector<std::string> env;
  /// --iface: the interface between the hosts (MASTER_ADDR when rank 0 is here, Open MPI's
  /// btl/oob_tcp_if_include, NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME); empty: the route's.
  std::string iface;
  /// --srun-arg: options for srun, after haein's own (`--srun-arg=--mpi=pmi2`,
  /// `--srun-arg=--partition=gpu`).
  std::vector<std::string> srun_args;
  /// --local-ranks-filter (torchrun's): only these local ranks' output reaches the console;
  /// every rank's still goes to its log and into failure reports. Empty: every rank's.
  std::vector<int> local_ranks_filter;
  std::vector<std::string> command;
  /// Path of the `haein` executable the ranks start through (mpirun, srun backends).
  std::string haein_binary;
};

/// Runs `haein run`; returns the job's exit code (0, the root cause's code, 128 + a
/// forwarded signal, kHungExitCode). Throws haein::Error on bad input before any rank
/// starts.
int run_command(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace haein::launcher
