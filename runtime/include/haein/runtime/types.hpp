#pragma once
/// @file
/// Element types and reduction operators of the communicator, with their names.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace haein::runtime {

/// Element type of a buffer. f16 and bf16 are stored as 16-bit words
/// (haein/kernels/numeric.hpp converts them); reductions on them accumulate in f32.
enum class DataType : std::uint8_t { kF32, kF64, kF16, kBF16, kI32, kI64, kU8 };

/// Reduction operator. kAvg divides the sum by the number of ranks; on integer types the
/// division truncates toward zero after the (wrapping) integer sum, as NCCL does.
enum class ReduceOp : std::uint8_t { kSum, kAvg, kMin, kMax, kProd };

inline constexpr DataType kAllDataTypes[] = {DataType::kF32,  DataType::kF64, DataType::kF16,
                                             DataType::kBF16, DataType::kI32, DataType::kI64,
                                             DataType::kU8};
inline constexpr ReduceOp kAllReduceOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin,
                                             ReduceOp::kMax, ReduceOp::kProd};

/// Bytes per element.
std::size_t size_of(DataType type);
/// "f32", "f64", "f16", "bf16", "i32", "i64", "u8".
std::string_view name_of(DataType type);
/// "sum", "avg", "min", "max", "prod".
std::string_view name_of(ReduceOp op);
/// Parses the names above; throws InvalidArgument listing the valid ones.
DataType parse_data_type(std::string_view text);
ReduceOp parse_reduce_op(std::string_view text);

inline bool is_floating(DataType type) {
  return type == DataType::kF32 || type == DataType::kF64 || type == DataType::kF16 ||
         type == DataType::kBF16;
}

}  // namespace haein::runtime
