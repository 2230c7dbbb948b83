// The rank-ordered f32 sum (rank_order_sum.hpp) and the compressed pieces' sum of shards
// (multi_tensor.hpp), which is the same sum over terms of another storage type. Terms
// beyond two are summed into a block of partial sums that stays in L1 while they stream
// through; loops are written so that GCC vectorises them (-O3 on this file).
#include "haein/kernels/rank_order_sum.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "dispatch.hpp"

namespace haein::kernels {

namespace {

constexpr std::size_t kSumBlock = 2048;

void require(bool condition, const char* message) {
  if (!condition) throw InvalidArgument(message);
}

/// sum_shards_host's fold: sum[i] = x[i] (kFirst) or sum[i] + x[i], in f32.
template <class Element, bool kFirst>
void fold(float* __restrict__ sum, const typename Element::Storage* __restrict__ x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float term = Element::to_float(x[i]);
    sum[i] = kFirst ? term : detail::add(sum[i], term);
  }
}

/// A term's elements from `base` on; a null term reads zeros, unscaled, so that it is +0
/// (at most kSumBlock of them: with a null term, sum_in_rank_order goes a block at a time).
struct Source {
  const float* data;
  float scale;
};

alignas(64) constexpr float kZeros[kSumBlock] = {};

Source source(const SumTerm& term, std::size_t base) {
  if (term.data == nullptr) return {kZeros, 1.0f};
  return {term.data + base, term.scale};
}

// The passes of sum_in_rank_order work on 4 floats at a time through GCC's vector types
// (lane by lane the same IEEE operations as the scalar tail): loads and stores are explicit,
// so an output that is a term's memory (the bucketer sums into its own gradients) does not
// make the compiler fall back to scalar code, as its overlap check did with plain loops.
using Lanes = float __attribute__((vector_size(16)));
constexpr std::size_t kLanes = sizeof(Lanes) / sizeof(float);

Lanes load(const float* at) {
  Lanes v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

void store(float* at, Lanes v) { std::memcpy(at, &v, sizeof v); }

/// dst[i] = post * (a[i] + b[i]), or post * a[i] without b (each term scaled, post skipped
/// at 1), and dst2 too.
template <bool kScaleA, bool kWithB, bool kScaleB, bool kPost, bool kSecond>
void pass_lanes(Source a, Source b, float post, float* dst, float* dst2, std::size_t n) {
  const auto lanes = [&](std::size_t at) {
    Lanes v = load(a.data + at);
    if constexpr (kScaleA) v = a.scale * v;
    if constexpr (kWithB) {
      Lanes y = load(b.data + at);
      if constexpr (kScaleB) y = b.scale * y;
      v = v + y;
    }
    if constexpr (kPost) v = post * v;
    store(dst + at, v);
    if constexpr (kSecond) store(dst2 + at, v);
  };
  std::size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    lanes(i);
    lanes(i + kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) lanes(i);
  for (; i < n; ++i) {
    float v = kScaleA ? detail::multiply(a.scale, a.data[i]) : a.data[i];
    if constexpr (kWithB) {
      const float y = kScaleB ? detail::multiply(b.scale, b.data[i]) : b.data[i];
      v = detail::add(v, y);
    }
    if constexpr (kPost) v = detail::multiply(post, v);
    dst[i] = v;
    if constexpr (kSecond) dst2[i] = v;
  }
}

/// Calls body(std::bool_constant<flag>{}...) with the run-time flags made constants.
template <bool... kFlags, class Body>
void with_flags(Body&& body) {
  body(std::bool_constant<kFlags>{}...);
}
template <bool... kFlags, class Body, class... Rest>
void with_flags(Body&& body, bool first, Rest... rest) {
  if (first)
    with_flags<kFlags..., true>(body, rest...);
  else
    with_flags<kFlags..., false>(body, rest...);
}

/// One pass over n elements: a, plus b where there is one, into dst (and dst2).
void pass(Source a, const Source* b, float post, float* dst, float* dst2, std::size_t n) {
  with_flags(
      [&](auto scale_a, auto with_b, auto scale_b, auto with_post, auto second) {
        pass_lanes<decltype(scale_a)::value, decltype(with_b)::value, decltype(scale_b)::value,
                   decltype(with_post)::value, decltype(second)::value>(a, b != nullptr ? *b : a,
                                                                        post, dst, dst2, n);
      },
      a.scale != 1.0f, b != nullptr, b != nullptr && b->scale != 1.0f, post != 1.0f,
      dst2 != nullptr);
}

}  // namespace

void sum_in_rank_order(const RankOrderSumArgs& args) {
  require(args.term_count >= 1 && args.terms != nullptr, "sum_in_rank_order: needs a term");
  require(args.out != nullptr || args.count == 0, "sum_in_rank_order: the output is null");
  const int last = args.term_count - 1;
  const bool null_term = std::any_of(args.terms, args.terms + args.term_count,
                                     [](const SumTerm& t) { return t.data == nullptr; });
  // One or two terms need no partial sums: one pass over everything (a null term reads
  // kZeros, a block at a time). More: terms 0 .. last-1 into a block of partial sums that
  // stays in L1, then the last term fused with the stores.
  const std::size_t block = last <= 1 && !null_term ? args.count : kSumBlock;
  alignas(64) float sum[kSumBlock];
  for (std::size_t base = 0; base < args.count; base += block) {
    const std::size_t n = std::min(block, args.count - base);
    const auto term = [&](int r) { return source(args.terms[r], base); };
    float* const out = args.out + base;
    float* const also = args.also != nullptr ? args.also + base : nullptr;
    if (last == 0) {
      pass(term(0), nullptr, args.post, out, also, n);
      continue;
    }
    const Source second = term(1);
    if (last == 1) {
      pass(term(0), &second, args.post, out, also, n);
      continue;
    }
    pass(term(0), &second, 1.0f, sum, nullptr, n);
    const Source partial{sum, 1.0f};
    for (int r = 2; r < last; ++r) {
      const Source next = term(r);
      pass(partial, &next, 1.0f, sum, nullptr, n);
    }
    const Source final_term = term(last);
    pass(partial, &final_term, args.post, out, also, n);
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
      fold<Element, true>(sum, shards + base, n);
      for (int r = 1; r < args.shard_count; ++r)
        fold<Element, false>(sum, shards + static_cast<std::size_t>(r) * args.count + base, n);
      // Always multiplied, as the device kernel does.
      for (std::size_t i = 0; i < n; ++i)
        out[base + i] = Element::from_float(detail::multiply(args.scale, sum[i]));
    }
  });
}

}  // namespace haein::kernels
