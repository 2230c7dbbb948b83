#pragma once
/// @file
/// Per-element math of the multi-tensor kernels, shared by the CUDA kernels and the CPU
/// reference so that both produce the same bits. Multiplies and adds are rounded one at a
/// time on the device too (no fused multiply-add), as the host does.

#include <cstdint>

#include "haein/kernels/numeric.hpp"

namespace haein::kernels::detail {

struct F32Element {
  using Storage = float;
  HAEIN_HOST_DEVICE static float to_float(float value) { return value; }
  HAEIN_HOST_DEVICE static float from_float(float value) { return value; }
  /// 1 when the stored value is an infinity or a NaN (all exponent bits set).
  HAEIN_HOST_DEVICE static std::uint32_t non_finite(float value) {
    return (float_bits(value) & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
  }
};

struct BF16Element {
  using Storage = std::uint16_t;
  HAEIN_HOST_DEVICE static float to_float(std::uint16_t value) { return bf16_to_f32(value); }
  HAEIN_HOST_DEVICE static std::uint16_t from_float(float value) { return f32_to_bf16(value); }
  HAEIN_HOST_DEVICE static std::uint32_t non_finite(std::uint16_t value) {
    return (value & 0x7f80u) == 0x7f80u ? 1u : 0u;
  }
};

struct F16Element {
  using Storage = std::uint16_t;
  HAEIN_HOST_DEVICE static float to_float(std::uint16_t value) { return f16_to_f32(value); }
  HAEIN_HOST_DEVICE static std::uint16_t from_float(float value) { return f32_to_f16(value); }
  HAEIN_HOST_DEVICE static std::uint32_t non_finite(std::uint16_t value) {
    return (value & 0x7c00u) == 0x7c00u ? 1u : 0u;
  }
};

HAEIN_HOST_DEVICE inline float multiply(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

HAEIN_HOST_DEVICE inline float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

/// The value pack stores: cast(scale * x).
template <class Src, class Dst>
HAEIN_HOST_DEVICE inline typename Dst::Storage pack_element(typename Src::Storage x, float scale) {
  return Dst::from_float(multiply(scale, Src::to_float(x)));
}

/// The value unpack stores: cast(scale * b) or cast(t + scale * b).
template <class Tensor, class Bucket, bool kAccumulate>
HAEIN_HOST_DEVICE inline typename Tensor::Storage unpack_element(typename Tensor::Storage t,
                                                                 typename Bucket::Storage b,
                                                                 float scale) {
  const float scaled = multiply(scale, Bucket::to_float(b));
  if constexpr (kAccumulate) return Tensor::from_float(add(Tensor::to_float(t), scaled));
  return Tensor::from_float(scaled);
}

}  // namespace haein::kernels::detail
