#include "replica_check.hpp"

#include <cinttypes>
#include <cstdio>
#include <vector>

#include "checkpoint.hpp"
#include "haein/common/error.hpp"

namespace haein::examples {

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

void ReplicaCheck::operator()(const Mlp& model, std::uint64_t step) const {
  const std::int64_t mine = static_cast<std::int64_t>(parameter_checksum(model));
  std::vector<std::int64_t> all(static_cast<std::size_t>(comm_.size()));
  comm_.all_gather(&mine, all.data(), 1, runtime::DataType::kI64);
  std::string differing;
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      differing += (differing.empty() ? "" : ", ") + std::to_string(r) + " (" +
                   hex(static_cast<std::uint64_t>(all[r])) + ")";
    }
  }
  if (!differing.empty()) {
    throw Error("parameters diverged at step " + std::to_string(step) + ": rank 0 has checksum " +
                hex(static_cast<std::uint64_t>(all[0])) + ", ranks " + differing + " differ");
  }
}

}  // namespace haein::examples
