#pragma once
// Test inputs and the reference results the communicator is checked against, computed
// here in double precision from every rank's inputs (each rank can regenerate them all).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "haein/kernels/numeric.hpp"
#include "haein/runtime/types.hpp"

namespace haein::test {

using runtime::DataType;
using runtime::ReduceOp;

/// A typed buffer held as bytes.
struct Buffer {
  DataType type;
  std::vector<unsigned char> bytes;
  Buffer(DataType t, std::size_t count) : type(t), bytes(count * runtime::size_of(t)) {}
  void* data() { return bytes.data(); }
  std::size_t count() const { return bytes.size() / runtime::size_of(type); }
};

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

/// Element i of `rank`'s input: small values whose sums and products every type holds
/// exactly (products of four ranks stay below 255 for u8); fractions for float types.
inline double input(int rank, std::size_t i, DataType type, ReduceOp op) {
  const std::size_t k = i * 7 + static_cast<std::size_t>(rank) * 3;
  if (op == ReduceOp::kProd) return static_cast<double>((i + rank) % 3 + 1);
  const double base =
      type == DataType::kU8 ? static_cast<double>(k % 11) : static_cast<double>(k % 11) - 5.0;
  return runtime::is_floating(type) ? base + 0.25 * static_cast<double>((i + rank) % 4) : base;
}

/// The reduction of element i over ranks [0, size), as the documented semantics say.
inline double reduced(int size, std::size_t i, DataType type, ReduceOp op) {
  double value = input(0, i, type, op);
  for (int r = 1; r < size; ++r) {
    const double x = input(r, i, type, op);
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
    value = runtime::is_floating(type) ? value / size : std::trunc(value / size);
  }
  return value;
}

/// Relative tolerance of a reduced result in `type` (f16/bf16: one rounding of an f32
/// accumulation).
inline double tolerance(DataType type) {
  switch (type) {
    case DataType::kF32:
      return 1e-6;
    case DataType::kF64:
      return 1e-12;
    case DataType::kF16:
      return 1.0 / 1024;
    case DataType::kBF16:
      return 1.0 / 128;
    default:
      return 0;
  }
}

inline bool close(double got, double want, DataType type) {
  return std::fabs(got - want) <= tolerance(type) * std::max(1.0, std::fabs(want));
}

}  // namespace haein::test
