#pragma once
// What `haein-bench collective` measures and how it counts, as nccl-tests does: the
// operations (haein::Collective, whose traits hold the bus-bandwidth factors), the size
// sweep, and the names of types and ops.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "haein/common/collective.hpp"
#include "haein/runtime/types.hpp"

namespace haein::bench {

/// The operations the benchmark sweeps (nccl-tests' six): all but the barrier and the
/// point-to-point pair. It prints them by their compact names ("allreduce").
inline constexpr Collective kBenchCollectives[] = {
    Collective::kAllReduce, Collective::kReduceScatter, Collective::kAllGather,
    Collective::kBroadcast, Collective::kReduce,        Collective::kAllToAll};

/// One of kBenchCollectives by its compact name ("allreduce") or its name ("all_reduce"),
/// or "bcast"; InvalidArgument otherwise.
Collective parse_collective(std::string_view text);
/// The fewest ranks an operation means anything with: 2, except broadcast and reduce (1).
int minimum_ranks(Collective op);

/// The element type from nccl-tests' names (float, half, bfloat16, double, int32, int64,
/// uint8) or haein's (f32, f16, bf16, f64, i32, i64, u8); InvalidArgument otherwise.
runtime::DataType parse_bench_type(std::string_view text);
/// nccl-tests' name of a type ("float").
std::string_view nccl_tests_name(runtime::DataType type);

/// "8", "1K", "64M", "1G" (powers of 1024); InvalidArgument on anything else.
std::size_t parse_bytes(std::string_view text);

struct SweepPoint {
  std::size_t bytes = 0;  ///< nccl-tests' size: the larger buffer of the operation
  std::size_t count = 0;  ///< elements of that buffer
};

/// The sizes from `min_bytes` to `max_bytes`, each `factor` times the one before (factor
/// >= 2), or `step` bytes apart when `step` > 0. Each is rounded down to a whole number of
/// blocks of `element_bytes * block` (block: the rank count for reduce-scatter, all-gather
/// and all-to-all, else 1), as nccl-tests does; sizes that round to 0 are left out.
/// Throws InvalidArgument for min > max, a factor below 2 without a step, or bounds that
/// are not a multiple of the element size.
std::vector<SweepPoint> sweep(std::size_t min_bytes, std::size_t max_bytes, std::size_t factor,
                              std::size_t step, std::size_t element_bytes, std::size_t block);

}  // namespace haein::bench
