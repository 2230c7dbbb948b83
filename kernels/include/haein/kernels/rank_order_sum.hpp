#pragma once
/// @file
/// The f32 sum of the ranks' terms in rank order, a block at a time: the one definition
/// behind every host reduction that must give every rank the same bits (the shared-memory
/// exchange, the sums in the peers' memory, the compressed pieces' sum of shards).

#include <cstddef>

namespace haein::kernels {

/// One rank's term: `scale * data[i]` (rounded to f32; `data[i]` itself when `scale` is 1).
/// A null `data` is a term of +0 (a rank without a gradient).
struct SumTerm {
  const float* data = nullptr;
  float scale = 1.0f;
};

/// For every i < count:
///
///     sum    = t_0[i] + t_1[i] + ... + t_{n-1}[i]   (added left to right, each add in f32)
///     out[i] = post * sum                           (sum itself when post is 1)
///
/// where t_r is terms[r] (n = term_count >= 1); `also[i]` gets the same value when `also`
/// is not null. Every rank that sums the same terms in the same order gets the same bits.
/// `out` and `also` may be the same memory as a term's data, element for element: a block
/// is summed before any of it is stored.
struct RankOrderSumArgs {
  const SumTerm* terms = nullptr;
  int term_count = 0;
  std::size_t count = 0;
  float post = 1.0f;
  float* out = nullptr;
  float* also = nullptr;
};

/// The CPU implementation (vectorised; one pass over each term).
void sum_in_rank_order(const RankOrderSumArgs& args);

}  // namespace haein::kernels
