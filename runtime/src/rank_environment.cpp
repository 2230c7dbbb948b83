#include "haein/runtime/rank_environment.hpp"

#include <cstdlib>

#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"

namespace haein::runtime {

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

constexpr Names kSchemes[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
};

}  // namespace

RankEnvironment read_rank_environment() {
  RankEnvironment env;
  env.source = "default";
  for (const Names& names : kSchemes) {
    const auto rank = integer_variable(names.rank);
    const auto size = integer_variable(names.size);
    if (!rank || !size) continue;
    env.source = names.source;
    env.rank = *rank;
    env.world_size = *size;
    env.local_rank = integer_variable(names.local_rank).value_or(0);
    env.local_world_size = integer_variable(names.local_size).value_or(1);
    break;
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

}  // namespace haein::runtime
