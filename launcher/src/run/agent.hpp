#pragma once
// haein run's agent loop (agent.cpp): the restart policy around a job's attempts.

#include <ostream>

#include "job.hpp"
#include "job_files.hpp"
#include "planner.hpp"

namespace haein::launcher::detail {

/// Runs attempts of `job` through `backend` until one succeeds, the user stops the job, its
/// Slurm job is gone or --max-restarts are used up, pausing between them (0.5 s, doubling
/// up to 30 s). A restart after a lost host runs on `planner`'s placement without it. With
/// --dry-run, describes the first attempt instead. Returns haein run's exit code.
int run_attempts(Job& job, Planner& planner, const JobBackend& backend, JobDirectory& directory,
                 std::ostream& out, std::ostream& err);

}  // namespace haein::launcher::detail
