#pragma once
// What `haein run` reads from Slurm and asks it: the allocation it runs in (salloc,
// sbatch), the state of that job, the step its ranks run in, and the srun options a site
// needs. Everything comes from Slurm's variables or from its own commands (squeue,
// scancel, srun --mpi=list), run without a shell and with a time limit.

#include <optional>
#include <string>
#include <vector>

#include "haein/launcher/placement.hpp"
#include "haein/topology/model.hpp"

namespace haein::launcher::detail {

/// The allocation this process runs in.
struct SlurmAllocation {
  std::string job_id;              ///< SLURM_JOB_ID
  std::vector<std::string> nodes;  ///< SLURM_JOB_NODELIST, expanded
  std::vector<int> cpus;           ///< per node, SLURM_JOB_CPUS_PER_NODE; empty when unset
  std::vector<int> tasks;          ///< per node, SLURM_TASKS_PER_NODE; empty when unset
  int gpus_per_node = -1;          ///< SLURM_GPUS_PER_NODE ("4", "h100:4"); -1 when unset

  /// Ranks a node takes: the tasks Slurm laid out there when the job asks for exactly the
  /// allocation's tasks (sbatch --ntasks-per-node=4 means 4 there, even on a node granted
  /// whole), else the CPUs granted there; 0 when Slurm did not say.
  int slots(std::size_t node, int ranks) const;
};

/// The allocation from Slurm's variables; nullopt outside one. InvalidArgument when they
/// are malformed (naming the variable).
std::optional<SlurmAllocation> slurm_allocation_from_environment();

/// The cluster an allocation is when no cluster file is given: its nodes, each with as many
/// slots as Slurm granted CPUs there, without hardware detail (haein then places by host).
topology::Cluster allocation_cluster(const SlurmAllocation& allocation, int ranks);

/// Confines a cluster file to the allocation: nodes outside it become busy, a node without
/// GPUs takes at most its slots (above), and a GPU node at most the GPUs per node the job
/// asked for (exec-rank then maps each rank to a GPU Slurm granted). InvalidArgument when
/// the allocation has a node the file does not describe.
void confine_to_allocation(topology::Cluster& cluster, BusySet& busy,
                           const SlurmAllocation& allocation, int ranks);

/// True for `slurm:` and `slurm:PARTITION`, the cluster as Slurm sees it now.
bool is_slurm_cluster(const std::string& spec);

/// The cluster as Slurm sees it now, for `--cluster slurm:[PARTITION]`: its nodes (of that
/// partition) from `scontrol show node`, the switch tree from `scontrol show topology`.
/// With `live`, `busy` marks nodes that other jobs hold whole, or that are down, drained,
/// reserved or powered off, and a node partly used keeps its idle CPUs as slots (a GPU
/// node partly used counts as busy: which of its GPUs are free is Slurm's to say). Without
/// `live` (inside an allocation, which confines the placement itself) nothing is busy.
/// `notes` says what was left out. InvalidArgument when Slurm cannot be asked.
topology::Cluster slurm_cluster(const std::string& spec, bool live, BusySet& busy,
                                std::vector<std::string>& notes);

/// A program's exit code and standard output.
struct ProgramOutput {
  int exit_code = -1;  ///< -1: could not run it, or it ran past its time
  std::string out;
};
/// Runs argv (no shell; stdin /dev/null; stderr discarded, or with stdout) for at most
/// `timeout_seconds`.
ProgramOutput run_program(const std::vector<std::string>& argv, double timeout_seconds,
                          bool with_stderr = false);

/// The job's state as squeue shows it ("RUNNING", "CANCELLED", ...); "" when Slurm does
/// not know the job any more (it ended); "?" when squeue could not answer.
std::string slurm_job_state(const std::string& job_id);

/// True when this srun has the pmix MPI plugin (srun --mpi=list).
bool srun_has_pmix();

/// The step file exec-rank writes under Slurm ("JOBID.STEPID", in the attempt's status
/// directory), and reading it back ("" when absent).
std::string slurm_step_file(const std::string& status_dir);
std::string read_slurm_step(const std::string& status_dir);

}  // namespace haein::launcher::detail
