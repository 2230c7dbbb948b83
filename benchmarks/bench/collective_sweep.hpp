#pragma once
// What `haein-bench collective` measures and how it counts, as nccl-tests does: the
// operations, their bus-bandwidth factors, the size sweep, and the names of types and ops.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "haein/runtime/types.hpp"

namespace haein::bench {

enum class Collective { kAllReduce, kReduceScatter, kAllGather, kBroadcast, kReduce, kAllToAll };

/// "allreduce", "reducescatter", "allgather", "broadcast", "reduce", "alltoall".
std::string_view name_of(Collective op);
/// Parses those names (and "all_reduce", "reduce_scatter", ... ); InvalidArgument otherwise.
Collective parse_collective(std::string_view text);
/// True for the operations that take a reduction operator.
bool reduces(Collective op);
/// True for the operations with a root.
bool rooted(Collective op);

/// busbw = algbw * factor, nccl-tests' PERFORMANCE.md: all-reduce 2(n-1)/n; reduce-scatter,
/// all-gather and all-to-all (n-1)/n; broadcast and reduce 1.
double bus_factor(Collective op, int ranks);
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
