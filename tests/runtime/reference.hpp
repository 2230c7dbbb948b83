#pragma once
// Test inputs and the reference results the communicator is checked against, computed
// in double precision from every rank's inputs (each rank can regenerate them all) by the
// oracle haein-bench collective checks with too (benchmarks/bench/collective_oracle.hpp).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "collective_oracle.hpp"
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

using oracle::load;
using oracle::store;

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
  return oracle::reduced(op, type, size, [&](int r) { return input(r, i, type, op); });
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
  return oracle::close(got, want, tolerance(type));
}

}  // namespace haein::test
