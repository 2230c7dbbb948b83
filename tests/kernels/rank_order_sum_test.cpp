// sum_in_rank_order against its definition, written here as one loop per element: random
// terms with specials (infinities, NaN, signed zeros, subnormals), scaled and unscaled,
// null terms, block-straddling counts, poisoned outputs, and outputs that alias a term.
#include "haein/kernels/rank_order_sum.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "haein/common/error.hpp"

namespace haein::kernels {
namespace {

float random_term(std::mt19937_64& random) {
  const int kind = std::uniform_int_distribution<int>(0, 999)(random);
  switch (kind) {
    case 0:
      return std::numeric_limits<float>::infinity();
    case 1:
      return -std::numeric_limits<float>::infinity();
    case 2:
      return std::numeric_limits<float>::quiet_NaN();
    case 3:
      return -0.0f;
    case 4:
      return 0.0f;
    case 5:
      return std::numeric_limits<float>::denorm_min() * 7;
    default:
      return std::normal_distribution<float>(0.0f, 3.0f)(random);
  }
}

bool same_bits(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

/// The definition: t_r = scale_r * x_r (x_r when the scale is 1; +0 for a null term),
/// added left to right in f32, times post unless post is 1.
float defined_sum(const std::vector<SumTerm>& terms, std::size_t i, float post) {
  float sum = 0;
  for (std::size_t r = 0; r < terms.size(); ++r) {
    float term = 0.0f;
    if (terms[r].data != nullptr)
      term = terms[r].scale == 1.0f ? terms[r].data[i] : terms[r].scale * terms[r].data[i];
    sum = r == 0 ? term : sum + term;
  }
  return post == 1.0f ? sum : post * sum;
}

TEST(RankOrderSum, MatchesTheDefinitionBitForBit) {
  std::mt19937_64 random(24);
  const float scales[] = {1.0f, 0.125f, 1.0f / 3.0f, -2.5f};
  for (int trial = 0; trial < 40; ++trial) {
    const int ranks = std::uniform_int_distribution<int>(1, 9)(random);
    const std::size_t count = std::uniform_int_distribution<std::size_t>(0, 7000)(random);
    std::vector<std::vector<float>> data(static_cast<std::size_t>(ranks));
    std::vector<SumTerm> terms(static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) {
      auto& d = data[static_cast<std::size_t>(r)];
      for (std::size_t i = 0; i < count; ++i) d.push_back(random_term(random));
      const bool null = std::uniform_int_distribution<int>(0, 5)(random) == 0;
      terms[static_cast<std::size_t>(r)] = {null ? nullptr : d.data(), scales[random() % 4]};
    }
    const float post = scales[random() % 4];
    std::vector<float> expected(count);
    for (std::size_t i = 0; i < count; ++i) expected[i] = defined_sum(terms, i, post);

    std::vector<float> out(count + 1, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> also(count + 1, -1234.5f);
    const bool alias = terms[0].data != nullptr && trial % 2 == 0;
    float* target = alias ? data[0].data() : out.data();  // the bucketer sums into a term
    sum_in_rank_order({terms.data(), ranks, count, post, target, also.data()});
    for (std::size_t i = 0; i < count; ++i) {
      ASSERT_TRUE(same_bits(target[i], expected[i]))
          << "trial " << trial << " ranks " << ranks << " element " << i << ": " << target[i]
          << " vs " << expected[i];
      ASSERT_TRUE(same_bits(also[i], expected[i])) << "trial " << trial << " element " << i;
    }
    EXPECT_EQ(also[count], -1234.5f) << "wrote past the end";
    if (!alias) EXPECT_TRUE(std::isnan(out[count])) << "wrote past the end";
  }
}

TEST(RankOrderSum, TheOrderIsTheRanksAndANullTermIsPlusZero) {
  // 1e8 + 1 - 1e8 is 0 in f32 from the left and 1 with the last two swapped.
  const float big[] = {1e8f}, one[] = {1.0f}, minus_big[] = {-1e8f};
  float out = 7;
  const SumTerm in_order[] = {{big}, {one}, {minus_big}};
  sum_in_rank_order({in_order, 3, 1, 1.0f, &out});
  EXPECT_EQ(out, 0.0f);
  const SumTerm other_order[] = {{big}, {minus_big}, {one}};
  sum_in_rank_order({other_order, 3, 1, 1.0f, &out});
  EXPECT_EQ(out, 1.0f);

  const float minus_zero[] = {-0.0f};
  const SumTerm zeros[] = {{minus_zero}, {minus_zero}};
  sum_in_rank_order({zeros, 2, 1, 1.0f, &out});
  EXPECT_TRUE(std::signbit(out)) << "-0 + -0 is -0";
  const SumTerm with_null[] = {{minus_zero}, {nullptr}};
  sum_in_rank_order({with_null, 2, 1, 1.0f, &out});
  EXPECT_FALSE(std::signbit(out)) << "a null term adds +0";
  const SumTerm null_first[] = {{nullptr}, {minus_zero}};
  sum_in_rank_order({null_first, 2, 1, 1.0f, &out});
  EXPECT_FALSE(std::signbit(out)) << "a null first term is +0";
}

TEST(RankOrderSum, MisuseIsNamed) {
  float out = 0;
  EXPECT_THROW(sum_in_rank_order({nullptr, 0, 1, 1.0f, &out}), InvalidArgument);
  const float one[] = {1.0f};
  const SumTerm term[] = {{one}};
  EXPECT_THROW(sum_in_rank_order({term, 1, 1, 1.0f, nullptr}), InvalidArgument);
}

}  // namespace
}  // namespace haein::kernels
