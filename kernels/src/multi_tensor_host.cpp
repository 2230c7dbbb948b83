// CPU reference of the multi-tensor kernels. Loops are written so that GCC vectorises
// them (-O3 on this file): fixed-width lanes for the sum of squares and an OR-reduced
// non-finite flag instead of early exits.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "dispatch.hpp"

namespace haein::kernels {

std::size_t size_of(ElementType type) { return type == ElementType::kF32 ? 4 : 2; }

std::string_view name_of(ElementType type) {
  switch (type) {
    case ElementType::kF32:
      return "f32";
    case ElementType::kF16:
      return "f16";
    case ElementType::kBF16:
      return "bf16";
  }
  return "?";
}

bool is_supported(ElementType tensor_type, ElementType bucket_type) {
  return tensor_type == bucket_type ||
         (tensor_type == ElementType::kF32 && bucket_type != ElementType::kF32);
}

namespace {

using detail::pack_element;
using detail::unpack_element;

constexpr std::size_t kLanes = 16;
constexpr std::size_t kBlock = 4096;  // elements per f32 partial sum, folded into a double

template <class Src, class Dst>
void pack_with_stats(const typename Src::Storage* src, typename Dst::Storage* dst,
                     std::size_t count, float scale, PackStats& stats) {
  double sum_squares = 0;
  std::uint32_t non_finite = 0;
  for (std::size_t base = 0; base < count; base += kBlock) {
    const std::size_t end = std::min(count, base + kBlock);
    float lanes[kLanes] = {};
    std::uint32_t flags[kLanes] = {};
    std::size_t i = base;
    for (; i + kLanes <= end; i += kLanes) {
      for (std::size_t j = 0; j < kLanes; ++j) {
        const float scaled = detail::multiply(scale, Src::to_float(src[i + j]));
        const auto stored = Dst::from_float(scaled);
        dst[i + j] = stored;
        lanes[j] += scaled * scaled;
        flags[j] |= Dst::non_finite(stored);
      }
    }
    for (; i < end; ++i) {
      const float scaled = detail::multiply(scale, Src::to_float(src[i]));
      const auto stored = Dst::from_float(scaled);
      dst[i] = stored;
      lanes[0] += scaled * scaled;
      flags[0] |= Dst::non_finite(stored);
    }
    float block_sum = 0;
    for (std::size_t j = 0; j < kLanes; ++j) {
      block_sum += lanes[j];
      non_finite |= flags[j];
    }
    sum_squares += block_sum;
  }
  stats.sum_squares += sum_squares;
  stats.non_finite |= non_finite;
}

template <class Src, class Dst>
void pack_tensor(const TensorSlice& slice, void* bucket, float scale, PackStats* stats) {
  auto* dst = static_cast<typename Dst::Storage*>(bucket) + slice.offset;
  if (slice.data == nullptr) {
    std::memset(static_cast<void*>(dst), 0, slice.count * sizeof(typename Dst::Storage));
    return;
  }
  const auto* src = static_cast<const typename Src::Storage*>(slice.data);
  if (stats != nullptr) return pack_with_stats<Src, Dst>(src, dst, slice.count, scale, *stats);
  if constexpr (std::is_same_v<Src, Dst>) {
    if (scale == 1.0f) {
      std::memcpy(static_cast<void*>(dst), src, slice.count * sizeof(typename Src::Storage));
      return;
    }
  }
  for (std::size_t i = 0; i < slice.count; ++i) dst[i] = pack_element<Src, Dst>(src[i], scale);
}

template <class Tensor, class Bucket>
void unpack_tensor(const TensorSlice& slice, const void* bucket, float scale, bool accumulate) {
  const auto* src = static_cast<const typename Bucket::Storage*>(bucket) + slice.offset;
  auto* dst = static_cast<typename Tensor::Storage*>(slice.data);
  if (accumulate) {
    for (std::size_t i = 0; i < slice.count; ++i)
      dst[i] = unpack_element<Tensor, Bucket, true>(dst[i], src[i], scale);
    return;
  }
  if constexpr (std::is_same_v<Tensor, Bucket>) {
    if (scale == 1.0f) {
      // memmove: scale_host passes the same buffer as tensor and bucket.
      if (static_cast<const void*>(dst) != src)
        std::memmove(static_cast<void*>(dst), src, slice.count * sizeof(typename Tensor::Storage));
      return;
    }
  }
  for (std::size_t i = 0; i < slice.count; ++i)
    dst[i] = unpack_element<Tensor, Bucket, false>(dst[i], src[i], scale);
}

void require(bool condition, const char* message) {
  if (!condition) throw InvalidArgument(message);
}

}  // namespace

void pack_host(const PackArgs& args) {
  require(args.bucket != nullptr || args.tensor_count == 0, "pack: the bucket is null");
  detail::with_element_types(args.tensor_type, args.bucket_type, [&](auto tensor, auto bucket) {
    using Src = decltype(tensor);
    using Dst = decltype(bucket);
    for (std::size_t t = 0; t < args.tensor_count; ++t)
      pack_tensor<Src, Dst>(args.tensors[t], args.bucket, args.scale, args.stats);
  });
}

void unpack_host(const UnpackArgs& args) {
  require(args.bucket != nullptr || args.tensor_count == 0, "unpack: the bucket is null");
  detail::with_element_types(args.tensor_type, args.bucket_type, [&](auto tensor, auto bucket) {
    using Tensor = decltype(tensor);
    using Bucket = decltype(bucket);
    for (std::size_t t = 0; t < args.tensor_count; ++t) {
      const TensorSlice& slice = args.tensors[t];
      require(slice.data != nullptr || slice.count == 0, "unpack: a tensor pointer is null");
      unpack_tensor<Tensor, Bucket>(slice, args.bucket, args.scale, args.accumulate);
    }
  });
}

void scale_host(void* data, std::size_t count, ElementType type, float scale) {
  const TensorSlice slice{data, count, 0};
  unpack_host({&slice, 1, type, data, type, scale, false});
}

void sum_shards_host(const ShardSumArgs& args) {
  require(args.shard_count > 0, "sum_shards: needs at least one shard");
  detail::with_element_type(args.type, [&](auto element) {
    using Element = decltype(element);
    using Storage = typename Element::Storage;
    const auto* shards = static_cast<const Storage*>(args.shards);
    auto* out = static_cast<Storage*>(args.out);
    // Blocks keep the f32 partial sums in cache while the shards stream through.
    constexpr std::size_t kSumBlock = 2048;
    float sums[kSumBlock];
    for (std::size_t base = 0; base < args.count; base += kSumBlock) {
      const std::size_t n = std::min(kSumBlock, args.count - base);
      for (std::size_t i = 0; i < n; ++i) sums[i] = Element::to_float(shards[base + i]);
      for (int r = 1; r < args.shard_count; ++r) {
        const Storage* shard = shards + static_cast<std::size_t>(r) * args.count + base;
        for (std::size_t i = 0; i < n; ++i)
          sums[i] = detail::add(sums[i], Element::to_float(shard[i]));
      }
      for (std::size_t i = 0; i < n; ++i)
        out[base + i] = Element::from_float(detail::multiply(args.scale, sums[i]));
    }
  });
}

}  // namespace haein::kernels
