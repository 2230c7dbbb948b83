// Names of types and reductions, and the f16/bf16 conversions the host backend relies on.
#include "haein/runtime/types.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "haein/common/error.hpp"
#include "haein/kernels/numeric.hpp"

namespace {

using namespace haein::runtime;
using haein::kernels::bf16_to_f32;
using haein::kernels::f16_to_f32;
using haein::kernels::f32_to_bf16;
using haein::kernels::f32_to_f16;

TEST(Types, NamesRoundTripAndUnknownNamesAreErrors) {
  for (const DataType type : kAllDataTypes) EXPECT_EQ(parse_data_type(name_of(type)), type);
  for (const ReduceOp op : kAllReduceOps) EXPECT_EQ(parse_reduce_op(name_of(op)), op);
  EXPECT_EQ(size_of(DataType::kBF16), 2u);
  EXPECT_EQ(size_of(DataType::kI64), 8u);
  EXPECT_THROW(parse_data_type("f8"), haein::InvalidArgument);
  EXPECT_THROW(parse_reduce_op("mean"), haein::InvalidArgument);
}

TEST(Types, HalfConversionsHitKnownBitPatterns) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);                      // largest finite half
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                      // rounds to infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);         // tie to even: zero
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 ulp: to even, 2
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie to even, up
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0xfbff), -65504.0f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));

  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(257.0f), 0x4380);  // 257 is a tie between 256 and 258: to even, 256
  EXPECT_EQ(f32_to_bf16(259.0f), 0x4382);  // tie between 258 and 260: to even, 260
  EXPECT_EQ(bf16_to_f32(0x4382), 260.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Types, EveryHalfValueSurvivesARoundTripThroughF32) {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<std::uint16_t>(bits);
    const bool nan_f16 = (half & 0x7c00) == 0x7c00 && (half & 0x3ff) != 0;
    if (!nan_f16) {
      EXPECT_EQ(f32_to_f16(f16_to_f32(half)), half) << std::hex << bits;
    }
    const bool nan_bf16 = (half & 0x7f80) == 0x7f80 && (half & 0x7f) != 0;
    if (!nan_bf16) {
      EXPECT_EQ(f32_to_bf16(bf16_to_f32(half)), half) << std::hex << bits;
    }
  }
}

}  // namespace
