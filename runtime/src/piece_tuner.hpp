#pragma once
// The piece size of host buckets, measured once on the first step: each candidate is timed
// a few times and the one with the best median time per byte wins, as the slowest rank saw
// it, so that every rank picks the same.

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "haein/runtime/communicator.hpp"

namespace haein::runtime::detail {

/// `from`, doubling up to `to`, stopping at the first that holds `total` bytes.
std::vector<std::size_t> piece_candidates(std::size_t from, std::size_t to, std::size_t total);

/// Times `seconds_per_byte(candidate)` `repeats` times per candidate (the first is a
/// warm-up and not counted), agrees on the slowest rank's medians (collective over `comm`),
/// logs the measured rates under `what` and returns the best candidate.
std::size_t tune_piece_bytes(Communicator& comm, const std::vector<std::size_t>& candidates,
                             int repeats,
                             const std::function<double(std::size_t)>& seconds_per_byte,
                             std::string_view what);

}  // namespace haein::runtime::detail
