#pragma once
// Random tensor lists for the multi-tensor kernel tests: tensors at misaligned starts in
// one arena, bucket offsets with gaps, and an oracle written independently of the
// kernels' element math (rounding decided by comparing distances in double).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "haein/kernels/multi_tensor.hpp"

namespace haein::kernels::testing {

/// A bucket word nobody writes: checked afterwards in the gaps between tensors.
inline constexpr std::uint8_t kPoisonByte = 0xA5;

struct TensorList {
  std::vector<std::size_t> counts;
  std::vector<std::size_t> starts;   ///< element index of each tensor in the arena
  std::vector<std::size_t> offsets;  ///< bucket element of each tensor
  std::size_t arena_elements = 0;
  std::size_t bucket_elements = 0;
};

/// 1 to `max_tensors` tensors, sizes 0 to `max_count` (mostly small, a few large, at most
/// `max_total` elements), each at a random element offset, with 0-3 element gaps in the
/// bucket.
inline TensorList random_list(std::mt19937_64& random, std::size_t max_tensors,
                              std::size_t max_count, std::size_t max_total) {
  TensorList list;
  const std::size_t tensors = std::uniform_int_distribution<std::size_t>(1, max_tensors)(random);
  std::size_t total = 0;
  for (std::size_t t = 0; t < tensors; ++t) {
    std::size_t count = 0;
    const int kind = std::uniform_int_distribution<int>(0, 99)(random);
    if (kind < 5)
      count = 0;
    else if (kind < 90)
      count = std::uniform_int_distribution<std::size_t>(1, 3000)(random);
    else
      count = std::uniform_int_distribution<std::size_t>(1, max_count)(random);
    if (total + count > max_total) count = (total < max_total) ? max_total - total : 0;
    total += count;
    list.counts.push_back(count);
    list.arena_elements += std::uniform_int_distribution<std::size_t>(0, 7)(random);
    list.starts.push_back(list.arena_elements);
    list.arena_elements += count;
    list.bucket_elements += std::uniform_int_distribution<std::size_t>(0, 3)(random);
    list.offsets.push_back(list.bucket_elements);
    list.bucket_elements += count;
  }
  return list;
}

/// Rounds `value` to the nearest of the two neighbours `low` < `high` (as doubles), ties to
/// the one whose bits `low_bits`/`high_bits` are even.
inline std::uint16_t nearest(double value, double low, std::uint16_t low_bits, double high,
                             std::uint16_t high_bits) {
  const double to_low = value - low;
  const double to_high = high - value;
  if (to_low < to_high) return low_bits;
  if (to_high < to_low) return high_bits;
  return (low_bits & 1u) == 0 ? low_bits : high_bits;
}

inline double bf16_value(std::uint16_t bits) {
  const std::uint32_t word = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof value);
  return value;
}

/// f32 → bf16 by comparing the two truncation neighbours; NaN stays a quiet NaN.
inline std::uint16_t oracle_bf16(float value) {
  if (std::isnan(value)) return 0x7fc0;
  std::uint32_t word;
  std::memcpy(&word, &value, sizeof word);
  const auto low_bits = static_cast<std::uint16_t>(word >> 16);
  if ((word & 0xffffu) == 0) return low_bits;
  const auto high_bits = static_cast<std::uint16_t>(low_bits + 1);  // away from zero
  // Past the largest finite bf16 the next step up is 2^128, which IEEE rounding uses.
  const double high =
      (high_bits & 0x7f80u) == 0x7f80u ? std::ldexp(1.0, 128) : std::fabs(bf16_value(high_bits));
  return nearest(std::fabs(value), std::fabs(bf16_value(low_bits)), low_bits, high, high_bits);
}

/// f32 → f16 through GCC's _Float16, which rounds to nearest even.
inline std::uint16_t oracle_f16(float value) {
  const _Float16 half = static_cast<_Float16>(value);
  std::uint16_t bits;
  std::memcpy(&bits, &half, sizeof bits);
  if (std::isnan(value)) bits = static_cast<std::uint16_t>((bits & 0x8000u) | 0x7e00u);
  return bits;
}

inline float oracle_widen_f16(std::uint16_t bits) {
  _Float16 half;
  std::memcpy(&half, &bits, sizeof half);
  return static_cast<float>(half);
}

/// Equality that treats two NaNs as equal (bit patterns of NaNs may differ in payload).
inline bool same_f16_bits(std::uint16_t a, std::uint16_t b) {
  const bool a_nan = (a & 0x7c00u) == 0x7c00u && (a & 0x3ffu) != 0;
  const bool b_nan = (b & 0x7c00u) == 0x7c00u && (b & 0x3ffu) != 0;
  return a == b || (a_nan && b_nan);
}

}  // namespace haein::kernels::testing
