#pragma once
// Which parameters go in which bucket, and where: pure arithmetic, no memory or
// communication, so that the bucketer's state machine (grad_bucketer.cpp) reads on its own.

#include <cstddef>
#include <vector>

#include "haein/runtime/grad_bucketer.hpp"

namespace haein::runtime::detail {

struct LayoutParameter {
  std::size_t count = 0;
  DataType type = DataType::kF32;
  bool device = false;
};

struct LayoutBucket {
  DataType type = DataType::kF32;
  bool device = false;
  std::vector<std::size_t> parameters;  ///< ids, in bucket order
  std::vector<std::size_t> offsets;     ///< first bucket element of each
  std::size_t elements = 0;             ///< padded: a multiple of `granule`
};

/// Buckets for `parameters` taken in `order`: one open bucket per (type, device); a
/// parameter that would take its bucket past the cap closes it first (the first bucket of
/// each kind has `first_cap_bytes`). Offsets are aligned to 16 bytes of the wire type and
/// bucket lengths padded to a multiple of `granule` elements (world size × alignment, so
/// that rank shards stay aligned). Buckets are numbered in the order they were opened.
std::vector<LayoutBucket> assign_buckets(const std::vector<LayoutParameter>& parameters,
                                         const std::vector<std::size_t>& order,
                                         std::size_t first_cap_bytes, std::size_t cap_bytes,
                                         std::size_t alignment, std::size_t granule);

/// The pieces [begin, end) a bucket of `elements` is reduced in: `chunk` elements each
/// (a multiple of the granule), the last one shorter.
struct Piece {
  std::size_t begin = 0;
  std::size_t end = 0;
};
std::vector<Piece> pieces_of(std::size_t elements, std::size_t chunk);

/// The parameter elements inside bucket elements [begin, end): appends
/// (parameter, element in parameter, count, element in bucket) for each overlap.
struct Overlap {
  std::size_t parameter = 0;
  std::size_t parameter_offset = 0;
  std::size_t count = 0;
  std::size_t bucket_offset = 0;
};
std::vector<Overlap> overlaps(const LayoutBucket& bucket,
                              const std::vector<LayoutParameter>& parameters, std::size_t begin,
                              std::size_t end);

}  // namespace haein::runtime::detail
