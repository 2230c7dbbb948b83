// The rank-ordered f32 sum (rank_order_sum.hpp) and the compressed pieces' sum of shards
// (multi_tensor.hpp), which is the same sum over terms of another storage type. Loops are
// written so that GCC vectorises them (-O3 on this file): each term is one pass over a
// block of partial sums that stays in L1 while the terms stream through.
#include "haein/kernels/rank_order_sum.hpp"

#include <algorithm>
#include <cstring>

#include "dispatch.hpp"

namespace haein::kernels {

namespace {

using detail::F32Element;

constexpr std::size_t kSumBlock = 2048;

void require(bool condition, const char* message) {
  if (!condition) throw InvalidArgument(message);
}

/// sum[i] = t (kFirst) or sum[i] + t, where t = scale * x[i] (kScaled) or x[i] in f32.
template <class Element, bool kFirst, bool kScaled>
void fold_pass(float* __restrict__ sum, const typename Element::Storage* __restrict__ x,
               std::size_t n, float scale) {
  for (std::size_t i = 0; i < n; ++i) {
    float term = Element::to_float(x[i]);
    if constexpr (kScaled) term = detail::multiply(scale, term);
    if constexpr (kFirst)
      sum[i] = term;
    else
      sum[i] = detail::add(sum[i], term);
  }
}

/// Adds one term (null `x`: a +0 term) to the block's partial sums, or starts them.
template <class Element>
void fold(float* sum, const typename Element::Storage* x, std::size_t n, float scale, bool first) {
  if (x == nullptr) {
    // Not skipped: -0 + +0 is +0, as the sum with a term of zeros gives.
    if (first)
      std::fill_n(sum, n, 0.0f);
    else
      for (std::size_t i = 0; i < n; ++i) sum[i] = detail::add(sum[i], 0.0f);
    return;
  }
  const bool scaled = scale != 1.0f;
  if (first)
    scaled ? fold_pass<Element, true, true>(sum, x, n, scale)
           : fold_pass<Element, true, false>(sum, x, n, scale);
  else
    scaled ? fold_pass<Element, false, true>(sum, x, n, scale)
           : fold_pass<Element, false, false>(sum, x, n, scale);
}

}  // namespace

void sum_in_rank_order(const RankOrderSumArgs& args) {
  require(args.term_count >= 1 && args.terms != nullptr, "sum_in_rank_order: needs a term");
  require(args.out != nullptr || args.count == 0, "sum_in_rank_order: the output is null");
  alignas(64) float sum[kSumBlock];
  for (std::size_t base = 0; base < args.count; base += kSumBlock) {
    const std::size_t n = std::min(kSumBlock, args.count - base);
    for (int r = 0; r < args.term_count; ++r) {
      const SumTerm& term = args.terms[r];
      fold<F32Element>(sum, term.data != nullptr ? term.data + base : nullptr, n, term.scale,
                       r == 0);
    }
    if (args.post != 1.0f)
      for (std::size_t i = 0; i < n; ++i) sum[i] = detail::multiply(args.post, sum[i]);
    std::memcpy(args.out + base, sum, n * sizeof(float));
    if (args.also != nullptr) std::memcpy(args.also + base, sum, n * sizeof(float));
  }
}

void sum_shards_host(const ShardSumArgs& args) {
  require(args.shard_count > 0, "sum_shards: needs at least one shard");
  detail::with_element_type(args.type, [&](auto element) {
    using Element = decltype(element);
    using Storage = typename Element::Storage;
    const auto* shards = static_cast<const Storage*>(args.shards);
    auto* out = static_cast<Storage*>(args.out);
    alignas(64) float sum[kSumBlock];
    for (std::size_t base = 0; base < args.count; base += kSumBlock) {
      const std::size_t n = std::min(kSumBlock, args.count - base);
      for (int r = 0; r < args.shard_count; ++r)
        fold<Element>(sum, shards + static_cast<std::size_t>(r) * args.count + base, n, 1.0f,
                      r == 0);
      // Always multiplied, as the device kernel does.
      for (std::size_t i = 0; i < n; ++i)
        out[base + i] = Element::from_float(detail::multiply(args.scale, sum[i]));
    }
  });
}

}  // namespace haein::kernels
