#include "piece_tuner.hpp"

#include <algorithm>
#include <sstream>

#include "haein/common/log.hpp"

namespace haein::runtime::detail {

std::vector<std::size_t> piece_candidates(std::size_t from, std::size_t to, std::size_t total) {
  std::vector<std::size_t> candidates;
  for (std::size_t bytes = from; bytes <= to; bytes *= 2) {
    candidates.push_back(bytes);
    if (bytes >= total) break;
  }
  return candidates;
}

std::size_t tune_piece_bytes(Communicator& comm, const std::vector<std::size_t>& candidates,
                             int repeats,
                             const std::function<double(std::size_t)>& seconds_per_byte,
                             std::string_view what) {
  std::vector<double> medians;
  for (const std::size_t bytes : candidates) {
    std::vector<double> times;
    for (int rep = 0; rep < repeats; ++rep) {
      const double t = seconds_per_byte(bytes);
      if (rep > 0) times.push_back(t);
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    medians.push_back(times[times.size() / 2]);
  }
  comm.all_reduce(medians.data(), medians.data(), medians.size(), DataType::kF64, ReduceOp::kMax);
  const auto best =
      static_cast<std::size_t>(std::min_element(medians.begin(), medians.end()) - medians.begin());
  std::ostringstream line;
  line << "GradBucketer: " << what << " of " << candidates[best] / 1024 << " KiB (measured GB/s:";
  for (std::size_t i = 0; i < candidates.size(); ++i)
    line << " " << candidates[i] / 1024 << "K=" << 1e-9 / medians[i];
  line << ")";
  HAEIN_LOG(kInfo, line.str());
  return candidates[best];
}

}  // namespace haein::runtime::detail
