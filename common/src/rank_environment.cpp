#include "haein/common/rank_environment.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/slurm.hpp"

namespace haein {

namespace {

std::optional<int> integer_variable(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  char* end = nullptr;
  const long number = std::strtol(value, &end, 10);
  if (*end != '\0' || number < 0 || number > 1'000'000'000) {
    throw InvalidArgument(std::string(name) + "='" + value + "' is not a non-negative integer");
  }
  return static_cast<int>(number);
}

struct Names {
  const char* source;
  const char* rank;
  const char* size;
  const char* local_rank;
  const char* local_size;
};

constexpr Names kTorchrun{"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"};
constexpr Names kOpenMpi{"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                         "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"};
// MPICH's Hydra and other PMI-1 process managers.
constexpr Names kPmi{"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};

bool set(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

// Tasks of this step on this node: SLURM_STEP_TASKS_PER_NODE ("2(x3),1") at this node's
// place in the step. SLURM_NODEID counts the job's nodes, which are the step's when the
// step spans them all; otherwise only an even spread gives the answer.
int slurm_local_size(int local_rank) {
  const char* text = std::getenv("SLURM_STEP_TASKS_PER_NODE");
  if (text == nullptr || *text == '\0') text = std::getenv("SLURM_TASKS_PER_NODE");
  if (text == nullptr || *text == '\0') return local_rank + 1;
  const std::vector<int> counts = parse_slurm_counts(text, "SLURM_STEP_TASKS_PER_NODE");
  const auto node = integer_variable("SLURM_NODEID");
  const auto step_nodes = integer_variable("SLURM_STEP_NUM_NODES");
  const auto job_nodes = integer_variable("SLURM_JOB_NUM_NODES");
  const bool whole_job = !step_nodes || !job_nodes || *step_nodes == *job_nodes;
  if (node && whole_job && *node < static_cast<int>(counts.size())) return counts[*node];
  const bool even =
      std::all_of(counts.begin(), counts.end(), [&](int count) { return count == counts.front(); });
  return even ? counts.front() : *std::max_element(counts.begin(), counts.end());
}

/// Rank and world from `names`, when both are set.
bool read_names(const Names& names, RankEnvironment& env) {
  const auto rank = integer_variable(names.rank);
  const auto size = integer_variable(names.size);
  if (!rank || !size) return false;
  env.source = names.source;
  env.rank = *rank;
  env.world_size = *size;
  env.local_rank = integer_variable(names.local_rank).value_or(0);
  env.local_world_size = integer_variable(names.local_size).value_or(1);
  return true;
}

/// Rank and world of this srun step's task, inside one.
bool read_slurm(RankEnvironment& env) {
  if (!srun_step_id().has_value()) return false;
  const auto rank = integer_variable("SLURM_PROCID");
  const auto size = integer_variable("SLURM_NTASKS");
  if (!rank || !size) return false;
  env.source = "slurm";
  env.rank = *rank;
  env.world_size = *size;
  env.local_rank = integer_variable("SLURM_LOCALID").value_or(0);
  env.local_world_size = slurm_local_size(env.local_rank);
  return true;
}

void read_launcher_first(RankEnvironment& env) {
  // Variables a launcher set for this very process come first: haein run and torchrun set
  // RANK per rank (and HAEIN_PLACEMENT or TORCHELASTIC_RUN_ID); under mpirun or srun a
  // RANK may only be left over from the shell that submitted the job.
  const bool launcher_set = set("HAEIN_PLACEMENT") || set("TORCHELASTIC_RUN_ID");
  if (launcher_set) {
    if (!read_names(kTorchrun, env) && !read_names(kOpenMpi, env)) read_slurm(env);
    return;
  }
  if (read_names(kOpenMpi, env)) return;
  if (!read_names(kTorchrun, env)) {
    read_slurm(env);
    return;
  }
  // A RANK with a world of another size was set on purpose (one task per node that
  // starts its node's ranks itself); one with the step's size is the submitting shell's.
  if (!srun_step_id().has_value()) return;
  const auto size = integer_variable("SLURM_NTASKS");
  if (size && env.world_size == *size) {
    RankEnvironment slurm = env;
    if (read_slurm(slurm)) env = slurm;
  }
}

}  // namespace

RankEnvironment read_rank_environment(RankVariables order) {
  RankEnvironment env;
  env.source = "default";
  if (order == RankVariables::kLauncherFirst) {
    read_launcher_first(env);
  } else if (!read_names(kOpenMpi, env) && !read_slurm(env) && !read_names(kPmi, env)) {
    read_names(kTorchrun, env);
  }
  if (env.world_size < 1 || env.rank >= env.world_size) {
    throw InvalidArgument("rank " + std::to_string(env.rank) + " is outside a world of " +
                          std::to_string(env.world_size) + " (from " + env.source + " variables)");
  }
  if (env.local_rank >= env.local_world_size) {
    throw InvalidArgument("local rank " + std::to_string(env.local_rank) + " is outside " +
                          std::to_string(env.local_world_size) + " local ranks (from " +
                          env.source + " variables)");
  }
  if (const char* addr = std::getenv("MASTER_ADDR")) env.master_addr = addr;
  env.master_port = integer_variable("MASTER_PORT").value_or(0);
  if (env.master_port > 65535)
    throw InvalidArgument("MASTER_PORT=" + std::to_string(env.master_port) + " is not a port");
  env.placement_path = settings::kPlacement.get();
  return env;
}

}  // namespace haein
