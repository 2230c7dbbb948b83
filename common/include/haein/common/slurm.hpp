#pragma once
/// @file
/// Slurm's compressed count lists, as in SLURM_JOB_CPUS_PER_NODE and
/// SLURM_STEP_TASKS_PER_NODE: "8(x2),4" is 8, 8, 4.

#include <string>
#include <vector>

namespace haein {

/// The counts of `text`, one per node; InvalidArgument naming `variable` when it is not
/// such a list (at most a million entries).
std::vector<int> parse_slurm_counts(const std::string& text, const std::string& variable);

}  // namespace haein
