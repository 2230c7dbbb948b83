#include "haein/common/slurm.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "haein/common/error.hpp"

namespace haein {

namespace {

int parse_count(const std::string& text, const std::string& variable, const std::string& whole) {
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw InvalidArgument(variable + "='" + whole + "' is not a Slurm count list (like 8(x2),4)");
  }
  return std::stoi(text);
}

}  // namespace

std::vector<int> parse_slurm_counts(const std::string& text, const std::string& variable) {
  std::vector<int> counts;
  std::istringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    int repeat = 1;
    const std::size_t open = item.find("(x");
    if (open != std::string::npos) {
      if (item.back() != ')') parse_count("", variable, text);
      repeat = parse_count(item.substr(open + 2, item.size() - open - 3), variable, text);
      item = item.substr(0, open);
    }
    const int count = parse_count(item, variable, text);
    if (repeat < 1 || counts.size() + repeat > 1'000'000) parse_count("", variable, text);
    counts.insert(counts.end(), repeat, count);
  }
  if (counts.empty()) parse_count("", variable, text);
  return counts;
}

std::optional<std::string> srun_step_id() {
  const char* step = std::getenv("SLURM_STEP_ID");
  if (step == nullptr || *step == '\0') return std::nullopt;
  const std::string id(step);
  if (id.size() >= 10 || id.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return id;
}

}  // namespace haein
