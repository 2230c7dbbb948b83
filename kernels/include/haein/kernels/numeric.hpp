#pragma once
/// @file
/// Element conversions shared by the CUDA kernels and their CPU references: f32 to and
/// from IEEE half (f16) and bfloat16, round to nearest even, NaN kept a NaN. Plain 16-bit
/// storage (std::uint16_t) so that host code needs no CUDA header.

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HAEIN_HOST_DEVICE __host__ __device__
#else
#define HAEIN_HOST_DEVICE
#endif

namespace haein::kernels {

HAEIN_HOST_DEVICE inline std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

HAEIN_HOST_DEVICE inline float bits_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// bfloat16 is the upper half of an f32: widening is exact.
HAEIN_HOST_DEVICE inline float bf16_to_f32(std::uint16_t value) {
  return bits_float(static_cast<std::uint32_t>(value) << 16);
}

HAEIN_HOST_DEVICE inline std::uint16_t f32_to_bf16(float value) {
  const std::uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // ties to even
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

HAEIN_HOST_DEVICE inline float f16_to_f32(std::uint16_t value) {
  const std::uint32_t sign = static_cast<std::uint32_t>(value & 0x8000u) << 16;
  const std::uint32_t exponent = (value >> 10) & 0x1fu;
  std::uint32_t mantissa = value & 0x3ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);
  // Subnormal: value = mantissa * 2^-24, exact in f32.
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign != 0 ? -magnitude : magnitude;
}

HAEIN_HOST_DEVICE inline std::uint16_t f32_to_f16(float value) {
  const std::uint32_t bits = float_bits(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);   // NaN
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // ≥ 65520: inf
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half (2^-14): round to a multiple of 2^-24, ties to even.
    const std::uint32_t exponent = magnitude >> 23;
    if (exponent < 102) return sign;  // below half of the smallest subnormal
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;  // maps 2^-24 to 1
    const std::uint32_t kept = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    const std::uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
    return static_cast<std::uint16_t>(sign | rounded);
  }
  const std::uint32_t rebased = magnitude - 0x38000000u;  // exponent bias 127 → 15
  const std::uint32_t rounding = 0xfffu + ((rebased >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | ((rebased + rounding) >> 13));
}

}  // namespace haein::kernels
