// The CPU reference of the multi-tensor kernels against loops written here from the
// definitions, on random tensor lists with misaligned starts and poisoned outputs.
#include "haein/kernels/multi_tensor.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "haein/common/error.hpp"
#include "tensor_lists.hpp"

namespace haein::kernels {
namespace {

using testing::oracle_bf16;
using testing::oracle_f16;
using testing::oracle_widen_f16;
using testing::random_list;
using testing::TensorList;

constexpr float kInf = std::numeric_limits<float>::infinity();

/// Mostly normal values, some specials: infinities, NaN, f16 overflow, subnormals.
float random_value(std::mt19937_64& random, bool specials) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const int kind = std::uniform_int_distribution<int>(0, 9999)(random);
  if (!specials || kind >= 8) return normal(random);
  switch (kind) {
    case 0:
      return kInf;
    case 1:
      return -kInf;
    case 2:
      return std::numeric_limits<float>::quiet_NaN();
    case 3:
      return 70000.0f;  // beyond f16's range
    case 4:
      return 3.0e-8f;  // f16 subnormal
    case 5:
      return 1.0e-40f;  // f32 subnormal
    case 6:
      return 3.3895e38f;  // near the largest f32: rounds up to inf in bf16
    default:
      return -0.0f;
  }
}

std::uint16_t oracle_cast(float value, ElementType type) {
  return type == ElementType::kBF16 ? oracle_bf16(value) : oracle_f16(value);
}

float oracle_widen(std::uint16_t bits, ElementType type) {
  if (type == ElementType::kF16) return oracle_widen_f16(bits);
  const std::uint32_t word = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof value);
  return value;
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

struct Case {
  TensorList list;
  std::vector<float> arena;  // f32 tensors
  std::vector<TensorSlice> slices;
};

Case make_case(std::mt19937_64& random, std::size_t max_tensors, std::size_t max_count,
               std::size_t max_total, bool specials) {
  Case c;
  c.list = random_list(random, max_tensors, max_count, max_total);
  c.arena.resize(c.list.arena_elements);
  for (float& value : c.arena) value = random_value(random, specials);
  for (std::size_t t = 0; t < c.list.counts.size(); ++t)
    c.slices.push_back({c.arena.data() + c.list.starts[t], c.list.counts[t], c.list.offsets[t]});
  return c;
}

TEST(MultiTensor, PackF32MatchesTheDefinitionOnRandomLists) {
  std::mt19937_64 random(11);
  for (int trial = 0; trial < 6; ++trial) {
    Case c = make_case(random, 2000, 10'000'000, 12'000'000, trial % 2 == 1);
    const float scale = trial < 2 ? 1.0f : 0.125f + 0.3f * trial;
    std::vector<float> bucket(c.list.bucket_elements);
    std::memset(bucket.data(), testing::kPoisonByte, bucket.size() * sizeof(float));
    PackStats stats;
    pack_host({c.slices.data(), c.slices.size(), ElementType::kF32, bucket.data(),
               ElementType::kF32, scale, &stats});
    double sum_squares = 0;
    bool non_finite = false;
    std::vector<bool> written(bucket.size(), false);
    for (std::size_t t = 0; t < c.slices.size(); ++t) {
      for (std::size_t i = 0; i < c.list.counts[t]; ++i) {
        const float expected = scale * c.arena[c.list.starts[t] + i];
        const float got = bucket[c.list.offsets[t] + i];
        ASSERT_TRUE(same_float(expected, got))
            << "trial " << trial << " tensor " << t << " element " << i << ": " << got << " vs "
            << expected;
        written[c.list.offsets[t] + i] = true;
        sum_squares += static_cast<double>(expected) * expected;
        non_finite = non_finite || !std::isfinite(expected);
      }
    }
    for (std::size_t i = 0; i < bucket.size(); ++i) {
      if (written[i]) continue;
      std::uint32_t word;
      std::memcpy(&word, &bucket[i], sizeof word);
      ASSERT_EQ(word, 0xA5A5A5A5u) << "pack wrote into the gap at bucket element " << i;
    }
    EXPECT_EQ(stats.non_finite != 0, non_finite) << "trial " << trial;
    if (!non_finite) {
      EXPECT_NEAR(stats.sum_squares, sum_squares, 1e-5 * sum_squares) << "trial " << trial;
    }
  }
}

TEST(MultiTensor, PackWithCastRoundsToNearestEven) {
  std::mt19937_64 random(12);
  for (ElementType wire : {ElementType::kBF16, ElementType::kF16}) {
    for (int trial = 0; trial < 3; ++trial) {
      Case c = make_case(random, 1500, 2'000'000, 4'000'000, true);
      const float scale = trial == 0 ? 1.0f : 0.5f;
      std::vector<std::uint16_t> bucket(c.list.bucket_elements, 0xA5A5);
      PackStats stats;
      pack_host({c.slices.data(), c.slices.size(), ElementType::kF32, bucket.data(), wire, scale,
                 &stats});
      bool non_finite = false;
      for (std::size_t t = 0; t < c.slices.size(); ++t) {
        for (std::size_t i = 0; i < c.list.counts[t]; ++i) {
          const float scaled = scale * c.arena[c.list.starts[t] + i];
          const std::uint16_t expected = oracle_cast(scaled, wire);
          const std::uint16_t got = bucket[c.list.offsets[t] + i];
          ASSERT_TRUE(testing::same_f16_bits(expected, got) ||
                      (wire == ElementType::kBF16 && std::isnan(scaled) &&
                       (got & 0x7f80u) == 0x7f80u && (got & 0x7fu) != 0))
              << name_of(wire) << " trial " << trial << " tensor " << t << " element " << i
              << ": value " << scaled << " gave 0x" << std::hex << got << " expected 0x"
              << expected;
          non_finite = non_finite || !std::isfinite(oracle_widen(expected, wire));
        }
      }
      EXPECT_EQ(stats.non_finite != 0, non_finite) << name_of(wire) << " trial " << trial;
    }
  }
}

TEST(MultiTensor, PackFlagsF16OverflowThatTheSourceDoesNotHave) {
  std::vector<float> tensor = {1.0f, 60000.0f, 2.0f};
  const TensorSlice slice{tensor.data(), tensor.size(), 0};
  std::vector<std::uint16_t> bucket(3);
  PackStats stats;
  pack_host({&slice, 1, ElementType::kF32, bucket.data(), ElementType::kF16, 2.0f, &stats});
  EXPECT_EQ(bucket[1], 0x7c00) << "120000 is beyond f16: +inf";
  EXPECT_NE(stats.non_finite, 0u);
  // Partial sums are f32: within f32 precision of the exact sum.
  const double exact = 4.0 + 120000.0 * 120000.0 + 16.0;
  EXPECT_NEAR(stats.sum_squares, exact, 1e-6 * exact);
  PackStats f32_stats;
  std::vector<float> f32_bucket(3);
  pack_host({&slice, 1, ElementType::kF32, f32_bucket.data(), ElementType::kF32, 2.0f, &f32_stats});
  EXPECT_EQ(f32_stats.non_finite, 0u) << "the same values fit f32";
}

TEST(MultiTensor, PackZeroFillsTensorsWithoutGradient) {
  std::vector<float> bucket(10, 5.0f);
  std::vector<float> tensor = {1, 2, 3};
  const TensorSlice slices[] = {{nullptr, 4, 0}, {tensor.data(), 3, 5}};
  pack_host({slices, 2, ElementType::kF32, bucket.data(), ElementType::kF32, 1.0f, nullptr});
  EXPECT_EQ(bucket, (std::vector<float>{0, 0, 0, 0, 5, 1, 2, 3, 5, 5}));
}

TEST(MultiTensor, UnpackScalesCastsAndAccumulates) {
  std::mt19937_64 random(13);
  for (ElementType wire : {ElementType::kF32, ElementType::kBF16, ElementType::kF16}) {
    for (bool accumulate : {false, true}) {
      Case c = make_case(random, 800, 1'000'000, 3'000'000, false);
      // The bucket holds values in the wire type; the tensors start from their arena values.
      const std::size_t wire_bytes = size_of(wire);
      std::vector<std::uint8_t> bucket(c.list.bucket_elements * wire_bytes);
      std::vector<float> bucket_values(c.list.bucket_elements);
      for (std::size_t i = 0; i < c.list.bucket_elements; ++i) {
        const float value = random_value(random, false);
        if (wire == ElementType::kF32) {
          std::memcpy(&bucket[i * 4], &value, 4);
          bucket_values[i] = value;
        } else {
          const std::uint16_t bits = oracle_cast(value, wire);
          std::memcpy(&bucket[i * 2], &bits, 2);
          bucket_values[i] = oracle_widen(bits, wire);
        }
      }
      const std::vector<float> before = c.arena;
      const float scale = 0.25f;
      unpack_host({c.slices.data(), c.slices.size(), ElementType::kF32, bucket.data(), wire, scale,
                   accumulate});
      std::vector<bool> written(c.arena.size(), false);
      for (std::size_t t = 0; t < c.slices.size(); ++t) {
        for (std::size_t i = 0; i < c.list.counts[t]; ++i) {
          const std::size_t a = c.list.starts[t] + i;
          const float scaled = scale * bucket_values[c.list.offsets[t] + i];
          const float expected = accumulate ? before[a] + scaled : scaled;
          ASSERT_TRUE(same_float(expected, c.arena[a]))
              << name_of(wire) << (accumulate ? " +=" : " =") << " tensor " << t << " element " << i
              << ": " << c.arena[a] << " vs " << expected;
          written[a] = true;
        }
      }
      for (std::size_t a = 0; a < c.arena.size(); ++a) {
        if (!written[a]) {
          ASSERT_TRUE(same_float(before[a], c.arena[a])) << "arena gap " << a;
        }
      }
    }
  }
}

// Tensors of several MiB take the vector bodies with streaming stores (from 4 MiB
// written); odd sizes and starts 1 element off a vector boundary exercise the scalar
// heads and tails around them.
TEST(MultiTensor, LargeMisalignedTensorsMatchTheDefinition) {
  std::mt19937_64 random(21);
  const std::vector<std::size_t> counts = {2'500'003, 1'100'001, 7, 1'048'577};
  std::size_t total = 0;
  for (std::size_t n : counts) total += n + 1;
  std::vector<float> arena(total + 1);
  for (float& value : arena) value = random_value(random, true);
  std::vector<TensorSlice> slices;
  std::size_t start = 1, offset = 1;
  for (std::size_t n : counts) {
    slices.push_back({arena.data() + start, n, offset});
    start += n + 1;
    offset += n;
  }
  const float scale = 0.5f;
  for (ElementType wire : {ElementType::kF32, ElementType::kBF16}) {
    std::vector<std::uint8_t> bucket((offset + 1) * size_of(wire), 0xA5);
    PackStats stats;
    pack_host(
        {slices.data(), slices.size(), ElementType::kF32, bucket.data(), wire, scale, &stats});
    bool non_finite = false;
    for (const TensorSlice& s : slices) {
      const auto* tensor = static_cast<const float*>(s.data);
      for (std::size_t i = 0; i < s.count; ++i) {
        const float scaled = scale * tensor[i];
        const std::size_t at = s.offset + i;
        if (wire == ElementType::kF32) {
          float got;
          std::memcpy(&got, &bucket[at * 4], 4);
          ASSERT_TRUE(same_float(scaled, got)) << "f32 element " << at;
          non_finite = non_finite || !std::isfinite(scaled);
        } else {
          std::uint16_t got;
          std::memcpy(&got, &bucket[at * 2], 2);
          const std::uint16_t expected = oracle_cast(scaled, wire);
          ASSERT_TRUE(testing::same_f16_bits(expected, got) ||
                      (std::isnan(scaled) && (got & 0x7f80u) == 0x7f80u && (got & 0x7fu) != 0))
              << "bf16 element " << at << ": 0x" << std::hex << got << " expected 0x" << expected;
          non_finite = non_finite || !std::isfinite(oracle_widen(expected, wire));
        }
      }
    }
    EXPECT_EQ(stats.non_finite != 0, non_finite) << name_of(wire);
    EXPECT_TRUE(non_finite) << "the specials should include an infinity or a NaN";
    // Bucket elements before and after the packed range are untouched.
    EXPECT_EQ(bucket[0], 0xA5);
    EXPECT_EQ(bucket.back(), 0xA5);
  }
  // Finite values only for the sum of squares and the unpack.
  for (float& value : arena) value = random_value(random, false);
  PackStats stats;
  std::vector<float> bucket(offset + 1, -7.0f);
  pack_host({slices.data(), slices.size(), ElementType::kF32, bucket.data(), ElementType::kF32,
             scale, &stats});
  double sum_squares = 0;
  for (const TensorSlice& s : slices) {
    const auto* tensor = static_cast<const float*>(s.data);
    for (std::size_t i = 0; i < s.count; ++i) {
      const double scaled = scale * tensor[i];
      sum_squares += scaled * scaled;
    }
  }
  EXPECT_NEAR(stats.sum_squares, sum_squares, 1e-5 * sum_squares);
  EXPECT_EQ(stats.non_finite, 0u);
  for (bool accumulate : {false, true}) {
    const std::vector<float> before = arena;
    unpack_host({slices.data(), slices.size(), ElementType::kF32, bucket.data(), ElementType::kF32,
                 0.25f, accumulate});
    for (const TensorSlice& s : slices) {
      const auto* tensor = static_cast<const float*>(s.data);
      const std::size_t first = static_cast<std::size_t>(tensor - arena.data());
      for (std::size_t i = 0; i < s.count; ++i) {
        const float scaled = 0.25f * bucket[s.offset + i];
        const float expected = accumulate ? before[first + i] + scaled : scaled;
        ASSERT_TRUE(same_float(expected, tensor[i]))
            << (accumulate ? "+= " : "= ") << "element " << first + i;
      }
    }
    EXPECT_EQ(arena[0], before[0]);  // the gap before the first tensor
    EXPECT_EQ(arena.back(), before.back());
  }
}

TEST(MultiTensor, SixteenBitTensorsRoundTripThroughTheirOwnBucket) {
  std::mt19937_64 random(14);
  for (ElementType type : {ElementType::kBF16, ElementType::kF16}) {
    TensorList list = random_list(random, 500, 100'000, 1'000'000);
    std::vector<std::uint16_t> arena(list.arena_elements);
    for (auto& bits : arena) bits = oracle_cast(random_value(random, false), type);
    std::vector<TensorSlice> slices;
    for (std::size_t t = 0; t < list.counts.size(); ++t)
      slices.push_back({arena.data() + list.starts[t], list.counts[t], list.offsets[t]});
    std::vector<std::uint16_t> bucket(list.bucket_elements, 0xA5A5);
    pack_host({slices.data(), slices.size(), type, bucket.data(), type, 1.0f, nullptr});
    std::vector<std::uint16_t> back(arena.size(), 0xA5A5);
    std::vector<TensorSlice> out = slices;
    for (std::size_t t = 0; t < out.size(); ++t) out[t].data = back.data() + list.starts[t];
    unpack_host({out.data(), out.size(), type, bucket.data(), type, 2.0f, false});
    for (std::size_t t = 0; t < list.counts.size(); ++t) {
      for (std::size_t i = 0; i < list.counts[t]; ++i) {
        const std::size_t a = list.starts[t] + i;
        ASSERT_EQ(back[a], oracle_cast(2.0f * oracle_widen(arena[a], type), type))
            << name_of(type) << " tensor " << t << " element " << i;
      }
    }
  }
}

TEST(MultiTensor, ScaleInPlace) {
  std::vector<float> data = {1, -2, 3.5f, kInf};
  scale_host(data.data(), data.size(), ElementType::kF32, 0.5f);
  EXPECT_EQ(data, (std::vector<float>{0.5f, -1, 1.75f, kInf}));
  std::vector<std::uint16_t> half = {oracle_bf16(3.0f), oracle_bf16(-1.0f)};
  scale_host(half.data(), half.size(), ElementType::kBF16, 3.0f);
  EXPECT_EQ(half, (std::vector<std::uint16_t>{oracle_bf16(9.0f), oracle_bf16(-3.0f)}));
}

TEST(MultiTensor, SumShardsAccumulatesInF32InRankOrder) {
  std::mt19937_64 random(15);
  for (ElementType type : {ElementType::kBF16, ElementType::kF16, ElementType::kF32}) {
    const int shards = 4;
    const std::size_t count = 5003;
    const std::size_t bytes = size_of(type);
    std::vector<std::uint8_t> data(shards * count * bytes);
    std::vector<float> values(shards * count);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const float value = random_value(random, false);
      if (type == ElementType::kF32) {
        values[i] = value;
        std::memcpy(&data[i * 4], &value, 4);
      } else {
        const std::uint16_t bits = oracle_cast(value, type);
        values[i] = oracle_widen(bits, type);
        std::memcpy(&data[i * 2], &bits, 2);
      }
    }
    // Out aliases shard 0, as in the bucketer.
    sum_shards_host({data.data(), shards, count, type, data.data(), 0.25f});
    for (std::size_t i = 0; i < count; ++i) {
      float sum = values[i];
      for (int r = 1; r < shards; ++r) sum += values[r * count + i];
      const float expected = 0.25f * sum;
      if (type == ElementType::kF32) {
        float got;
        std::memcpy(&got, &data[i * 4], 4);
        ASSERT_TRUE(same_float(got, expected)) << i;
      } else {
        std::uint16_t got;
        std::memcpy(&got, &data[i * 2], 2);
        ASSERT_EQ(got, oracle_cast(expected, type)) << name_of(type) << " element " << i;
      }
    }
  }
}

TEST(MultiTensor, UnsupportedCombinationsAreNamed) {
  std::vector<std::uint16_t> tensor(4);
  std::vector<float> bucket(4);
  const TensorSlice slice{tensor.data(), 4, 0};
  try {
    pack_host({&slice, 1, ElementType::kBF16, bucket.data(), ElementType::kF32, 1.0f, nullptr});
    FAIL() << "bf16 tensors into an f32 bucket should be refused";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("bf16"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(is_supported(ElementType::kF16, ElementType::kBF16));
  EXPECT_TRUE(is_supported(ElementType::kF32, ElementType::kF16));
}

}  // namespace
}  // namespace haein::kernels
