#pragma once
/// @file
/// Slurm's compressed count lists, as in SLURM_JOB_CPUS_PER_NODE and
/// SLURM_STEP_TASKS_PER_NODE: "8(x2),4" is 8, 8, 4.

#include <optional>
#include <string>
#include <vector>

namespace haein {

/// The counts of `text`, one per node; InvalidArgument naming `variable` when it is not
/// such a list (at most a million entries).
std::vector<int> parse_slurm_counts(const std::string& text, const std::string& variable);

/// SLURM_STEP_ID when this process is a task of a step srun started: a step number. Not for
/// Slurm's own steps around a batch script, salloc's shell or the job's external processes
/// ("batch", "extern", "interactive", or their numbers from 4294967290 up), nor outside Slurm.
std::optional<std::string> srun_step_id();

}  // namespace haein
