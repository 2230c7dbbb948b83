#include "haein/common/process.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <string_view>

#include "haein/common/error.hpp"
#include "haein/common/rank_environment.hpp"

namespace haein {

namespace {
std::atomic<int> g_explicit_rank{-1};

std::optional<int> rank_from_environment() {
  try {
    const RankEnvironment env = read_rank_environment();
    if (env.source != "default") return env.rank;
  } catch (const Error&) {
    // Malformed variables: the runtime names them; a log prefix goes without a rank.
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
