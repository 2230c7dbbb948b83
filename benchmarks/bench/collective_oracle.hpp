#pragma once
// The correctness oracle of the communicator's operations, shared by haein-bench collective
// and the runtime's tests: typed elements read and written as doubles, the reduction of
// every rank's value as the documented semantics say, computed in double precision (each
// rank can regenerate every other rank's input), and the comparison with a tolerance.
// Header-only: the runtime's tests use it without the benchmarks being built.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "haein/kernels/numeric.hpp"
#include "haein/runtime/types.hpp"

namespace haein::oracle {

using runtime::DataType;
using runtime::ReduceOp;

/// Element `i` of a buffer of `type`, as a double.
inline double load(DataType type, const void* data, std::size_t i) {
  switch (type) {
    case DataType::kF32:
      return static_cast<const float*>(data)[i];
    case DataType::kF64:
      return static_cast<const double*>(data)[i];
    case DataType::kF16:
      return kernels::f16_to_f32(static_cast<const std::uint16_t*>(data)[i]);
    case DataType::kBF16:
      return kernels::bf16_to_f32(static_cast<const std::uint16_t*>(data)[i]);
    case DataType::kI32:
      return static_cast<const std::int32_t*>(data)[i];
    case DataType::kI64:
      return static_cast<double>(static_cast<const std::int64_t*>(data)[i]);
    case DataType::kU8:
      return static_cast<const std::uint8_t*>(data)[i];
  }
  return 0;
}

/// Writes `value` as element `i` of a buffer of `type`.
inline void store(DataType type, void* data, std::size_t i, double value) {
  switch (type) {
    case DataType::kF32:
      static_cast<float*>(data)[i] = static_cast<float>(value);
      return;
    case DataType::kF64:
      static_cast<double*>(data)[i] = value;
      return;
    case DataType::kF16:
      static_cast<std::uint16_t*>(data)[i] = kernels::f32_to_f16(static_cast<float>(value));
      return;
    case DataType::kBF16:
      static_cast<std::uint16_t*>(data)[i] = kernels::f32_to_bf16(static_cast<float>(value));
      return;
    case DataType::kI32:
      static_cast<std::int32_t*>(data)[i] = static_cast<std::int32_t>(value);
      return;
    case DataType::kI64:
      static_cast<std::int64_t*>(data)[i] = static_cast<std::int64_t>(value);
      return;
    case DataType::kU8:
      static_cast<std::uint8_t*>(data)[i] = static_cast<std::uint8_t>(value);
      return;
  }
}

/// `op` over ranks [0, ranks) of value_of(rank), in rank order. kAvg divides the sum by
/// the rank count, truncating toward zero on integer types (as NCCL does).
template <typename ValueOf>
double reduced(ReduceOp op, DataType type, int ranks, ValueOf value_of) {
  double value = value_of(0);
  for (int r = 1; r < ranks; ++r) {
    const double x = value_of(r);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg:
        value += x;
        break;
      case ReduceOp::kProd:
        value *= x;
        break;
      case ReduceOp::kMin:
        value = std::min(value, x);
        break;
      case ReduceOp::kMax:
        value = std::max(value, x);
        break;
    }
  }
  if (op == ReduceOp::kAvg) {
    value = runtime::is_floating(type) ? value / ranks : std::trunc(value / ranks);
  }
  return value;
}

/// `got` is `want` within `tolerance`, relative to |want| (absolute below 1).
inline bool close(double got, double want, double tolerance) {
  return std::fabs(got - want) <= tolerance * std::max(1.0, std::fabs(want));
}

}  // namespace haein::oracle
