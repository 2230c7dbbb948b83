#pragma once
/// @file
/// Multi-tensor operations between a list of tensors and one flat bucket: pack (gather,
/// scale, cast, non-finite flag, sum of squares), unpack (scatter, scale, cast back,
/// optional accumulate), scale in place, and the f32 sum of rank shards that the bucketer
/// uses for compressed reductions. Every operation has a CPU reference (`*_host`) and,
/// in CUDA builds, a device launch (`*_device`) with the same semantics; the per-element
/// math is shared (element_math.hpp), so both give the same bits except for the order of
/// the sum of squares.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace haein::kernels {

/// Floating element types the kernels handle. f16/bf16 are 16-bit words.
enum class ElementType : std::uint8_t { kF32, kF16, kBF16 };

std::size_t size_of(ElementType type);
std::string_view name_of(ElementType type);

/// One tensor and where it goes in the bucket.
struct TensorSlice {
  /// The tensor's elements (its own type). nullptr in pack means "no gradient this step":
  /// its bucket range is zero-filled. Never nullptr in unpack.
  void* data = nullptr;
  std::size_t count = 0;
  /// First bucket element of this tensor (in bucket elements).
  std::size_t offset = 0;
};

/// What pack saw in what it wrote; accumulated into, so one PackStats can cover several
/// packs (reset it to zero first).
struct PackStats {
  /// Sum of squares of the scaled values, before any cast (for gradient-norm clipping).
  double sum_squares = 0;
  /// Non-zero when some element as stored in the bucket is an infinity or a NaN
  /// (including f16 overflow caused by the cast).
  std::uint32_t non_finite = 0;
  std::uint32_t reserved = 0;
};

/// The combinations of tensor and bucket types that are built: same type, or f32
/// tensors with a bf16 or f16 bucket (wire compression).
bool is_supported(ElementType tensor_type, ElementType bucket_type);

/// bucket[offset + i] = cast(scale * tensor[i]) for every tensor; zero for nullptr tensors.
struct PackArgs {
  const TensorSlice* tensors = nullptr;
  std::size_t tensor_count = 0;
  ElementType tensor_type = ElementType::kF32;
  void* bucket = nullptr;
  ElementType bucket_type = ElementType::kF32;
  float scale = 1.0f;
  /// Optional: receives the sum of squares and the non-finite flag (device memory for
  /// pack_device). nullptr skips both.
  PackStats* stats = nullptr;
};

/// tensor[i] = cast(scale * bucket[offset + i]), or with `accumulate`
/// tensor[i] = cast(tensor[i] + scale * bucket[offset + i]) (computed in f32).
struct UnpackArgs {
  const TensorSlice* tensors = nullptr;
  std::size_t tensor_count = 0;
  ElementType tensor_type = ElementType::kF32;
  const void* bucket = nullptr;
  ElementType bucket_type = ElementType::kF32;
  float scale = 1.0f;
  bool accumulate = false;
};

/// out[i] = cast(scale * (shards[0][i] + ... + shards[n-1][i])), summed in f32 in rank
/// order, where shard r starts at shards + r * count elements. `out` may alias shard 0.
struct ShardSumArgs {
  const void* shards = nullptr;
  int shard_count = 0;
  std::size_t count = 0;
  ElementType type = ElementType::kBF16;
  void* out = nullptr;
  float scale = 1.0f;
};

/// CPU references; single-threaded, vectorisable loops.
void pack_host(const PackArgs& args);
void unpack_host(const UnpackArgs& args);
void scale_host(void* data, std::size_t count, ElementType type, float scale);
void sum_shards_host(const ShardSumArgs& args);

/// Device launches (CUDA builds): enqueue on `stream` (a cudaStream_t; nullptr is the
/// legacy default stream) and return without synchronising. Tensor tables travel in kernel
/// parameters; long lists are split over several launches. Host-only builds throw.
void pack_device(const PackArgs& args, void* stream);
void unpack_device(const UnpackArgs& args, void* stream);
void scale_device(void* data, std::size_t count, ElementType type, float scale, void* stream);
void sum_shards_device(const ShardSumArgs& args, void* stream);

}  // namespace haein::kernels
