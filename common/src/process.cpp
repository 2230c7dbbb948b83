#include "haein/common/process.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <string_view>

namespace haein {

namespace {
std::atomic<int> g_explicit_rank{-1};

std::optional<int> rank_from_environment() {
  for (const char* name : {"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    const long rank = std::strtol(value, &end, 10);
    if (*end == '\0' && rank >= 0) return static_cast<int>(rank);
  }
  return std::nullopt;
}
}  // namespace

const std::string& host_name() {
  static const std::string name = [] {
    std::array<char, 256> buffer{};
    if (gethostname(buffer.data(), buffer.size() - 1) != 0) return std::string("unknown-host");
    std::string full(buffer.data());
    return full.substr(0, full.find('.'));
  }();
  return name;
}

std::optional<int> process_rank() {
  const int explicit_rank = g_explicit_rank.load(std::memory_order_relaxed);
  if (explicit_rank >= 0) return explicit_rank;
  static const std::optional<int> from_environment = rank_from_environment();
  return from_environment;
}

void set_process_rank(int rank) { g_explicit_rank.store(rank, std::memory_order_relaxed); }

std::string process_label() {
  const auto rank = process_rank();
  return rank ? host_name() + ":" + std::to_string(*rank) : host_name();
}

}  // namespace haein
