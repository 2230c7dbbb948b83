// CPU reference of the multi-tensor kernels. Loops are written so that GCC vectorises
// them (-O3 on this file): fixed-width lanes for the sum of squares and an OR-reduced
// non-finite flag instead of early exits. The f32 paths that carry more than a copy (scale,
// statistics, the bf16 cast, accumulate) have explicit SSE2 bodies on x86-64, because
// GCC's own vectorisation of them ran at 0.4-0.75x memcpy (docs/benchmarks.md); their
// per-element results are the same bits as the shared element functions.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

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

#if defined(__SSE2__)
// Destinations at least this large are written with non-temporal stores: the lines are
// not read first (what memcpy's large copies avoid too) and do not evict the cache. Below
// it (the bucketer's in-cache pieces) plain stores keep the data close for the next step.
constexpr std::size_t kStreamingBytes = std::size_t{4} << 20;

bool streaming(std::size_t bytes) { return bytes >= kStreamingBytes; }

template <bool kStream>
void store4(float* p, __m128 v) {
  if constexpr (kStream)
    _mm_stream_ps(p, v);  // p is 16-byte aligned here
  else
    _mm_storeu_ps(p, v);
}

// Lanes whose exponent bits are all set (infinity or NaN), as all-ones masks.
inline __m128i non_finite_mask(__m128i bits, __m128i exponent) {
  return _mm_cmpeq_epi32(_mm_and_si128(bits, exponent), exponent);
}

// bf16 bits of four f32 lanes in the low halves of 32-bit lanes, rounded to nearest even,
// NaNs quieted: f32_to_bf16 lane by lane.
inline __m128i bf16_lanes(__m128 value) {
  const __m128i bits = _mm_castps_si128(value);
  const __m128i magnitude = _mm_and_si128(bits, _mm_set1_epi32(0x7fffffff));
  // Signed compare is right: magnitudes are non-negative int32.
  const __m128i nan = _mm_cmpgt_epi32(magnitude, _mm_set1_epi32(0x7f800000));
  const __m128i odd = _mm_and_si128(_mm_srli_epi32(bits, 16), _mm_set1_epi32(1));
  const __m128i rounded =
      _mm_srli_epi32(_mm_add_epi32(bits, _mm_add_epi32(_mm_set1_epi32(0x7fff), odd)), 16);
  const __m128i quiet = _mm_or_si128(_mm_srli_epi32(bits, 16), _mm_set1_epi32(0x40));
  return _mm_or_si128(_mm_andnot_si128(nan, rounded), _mm_and_si128(nan, quiet));
}

// Eight lanes of 16-bit values (low halves of a and b) into one vector, in order.
inline __m128i narrow_pair(__m128i a, __m128i b) {
  // Shifting the value to the high half and back arithmetically keeps it within int16
  // range, so the signed saturating pack is exact.
  return _mm_packs_epi32(_mm_srai_epi32(_mm_slli_epi32(a, 16), 16),
                         _mm_srai_epi32(_mm_slli_epi32(b, 16), 16));
}

// One element of the vector packs' heads and tails, with its statistics when asked.
template <class Dst, bool kStats>
struct ScalarPack {
  const float* src;
  typename Dst::Storage* dst;
  float scale;
  float sum_squares = 0;
  std::uint32_t non_finite = 0;
  void operator()(std::size_t i) {
    const float scaled = detail::multiply(scale, src[i]);
    const auto stored = Dst::from_float(scaled);
    dst[i] = stored;
    if constexpr (kStats) {
      sum_squares += scaled * scaled;
      non_finite |= Dst::non_finite(stored);
    }
  }
};

// pack for f32 tensors into an f32 or bf16 bucket: dst = cast(scale * src), with the
// statistics when asked. The sum of squares is taken over 4096-element blocks in f32
// vector lanes and folded into a double per block, as the generic loop does.
template <class Dst, bool kStats, bool kStream>
void pack_f32_sse(const float* src, typename Dst::Storage* dst, std::size_t count, float scale,
                  PackStats* stats) {
  constexpr bool kBF16 = std::is_same_v<Dst, detail::BF16Element>;
  const __m128 factor = _mm_set1_ps(scale);
  const __m128i exponent = _mm_set1_epi32(kBF16 ? 0x7f80 : 0x7f800000);
  double sum_squares = 0;
  ScalarPack<Dst, kStats> scalar{src, dst, scale};
  std::size_t i = 0;
  // Scalar head up to a 16-byte aligned destination (needed by the streaming stores).
  while (i < count && reinterpret_cast<std::uintptr_t>(dst + i) % 16 != 0) scalar(i++);
  __m128i flags = _mm_setzero_si128();
  while (i + 8 <= count) {
    const std::size_t end = i + std::min<std::size_t>(kBlock, (count - i) / 8 * 8);
    __m128 lanes0 = _mm_setzero_ps(), lanes1 = _mm_setzero_ps();
    for (; i < end; i += 8) {
      const __m128 a = _mm_mul_ps(factor, _mm_loadu_ps(src + i));
      const __m128 b = _mm_mul_ps(factor, _mm_loadu_ps(src + i + 4));
      __m128i stored_a, stored_b;
      if constexpr (kBF16) {
        stored_a = bf16_lanes(a);
        stored_b = bf16_lanes(b);
        const __m128i packed = narrow_pair(stored_a, stored_b);
        auto* out = reinterpret_cast<__m128i*>(dst + i);
        if constexpr (kStream)
          _mm_stream_si128(out, packed);
        else
          _mm_storeu_si128(out, packed);
      } else {
        stored_a = _mm_castps_si128(a);
        stored_b = _mm_castps_si128(b);
        store4<kStream>(dst + i, a);
        store4<kStream>(dst + i + 4, b);
      }
      if constexpr (kStats) {
        lanes0 = _mm_add_ps(lanes0, _mm_mul_ps(a, a));
        lanes1 = _mm_add_ps(lanes1, _mm_mul_ps(b, b));
        flags = _mm_or_si128(flags, _mm_or_si128(non_finite_mask(stored_a, exponent),
                                                 non_finite_mask(stored_b, exponent)));
      }
    }
    if constexpr (kStats) {
      alignas(16) float lanes[4];
      _mm_store_ps(lanes, _mm_add_ps(lanes0, lanes1));
      sum_squares += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
  }
  while (i < count) scalar(i++);
  if constexpr (kStream) _mm_sfence();
  if constexpr (kStats) {
    stats->sum_squares += sum_squares + scalar.sum_squares;
    stats->non_finite |= scalar.non_finite | (_mm_movemask_epi8(flags) != 0 ? 1u : 0u);
  }
}

// AVX2 (checked at run time) for the same pack: the bf16 cast and the statistics cost
// more arithmetic per byte than a copy, and at SSE2 width they ran at 0.6-0.75x memcpy on
// the development VM. bf16_lanes_avx2 gives the same bits as bf16_lanes.
__attribute__((target("avx2"))) inline __m256i bf16_lanes_avx2(__m256 value) {
  const __m256i bits = _mm256_castps_si256(value);
  const __m256i high = _mm256_srli_epi32(bits, 16);
  const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
  const __m256i odd = _mm256_and_si256(high, _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
  const __m256i quiet = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

template <class Dst, bool kStats, bool kStream>
__attribute__((target("avx2"))) void pack_f32_avx2(const float* src, typename Dst::Storage* dst,
                                                   std::size_t count, float scale,
                                                   PackStats* stats) {
  constexpr bool kBF16 = std::is_same_v<Dst, detail::BF16Element>;
  const __m256 factor = _mm256_set1_ps(scale);
  const __m256i exponent = _mm256_set1_epi32(kBF16 ? 0x7f80 : 0x7f800000);
  double sum_squares = 0;
  ScalarPack<Dst, kStats> scalar{src, dst, scale};
  std::size_t i = 0;
  while (i < count && reinterpret_cast<std::uintptr_t>(dst + i) % 32 != 0) scalar(i++);
  __m256i flags = _mm256_setzero_si256();
  while (i + 16 <= count) {
    const std::size_t end = i + std::min<std::size_t>(kBlock, (count - i) / 16 * 16);
    __m256 lanes = _mm256_setzero_ps();
    for (; i < end; i += 16) {
      const __m256 a = _mm256_mul_ps(factor, _mm256_loadu_ps(src + i));
      const __m256 b = _mm256_mul_ps(factor, _mm256_loadu_ps(src + i + 8));
      __m256i stored_a, stored_b;
      if constexpr (kBF16) {
        stored_a = bf16_lanes_avx2(a);
        stored_b = bf16_lanes_avx2(b);
        // packus works within 128-bit halves; the permute puts the quarters back in order.
        const __m256i packed =
            _mm256_permute4x64_epi64(_mm256_packus_epi32(stored_a, stored_b), 0xd8);
        auto* out = reinterpret_cast<__m256i*>(dst + i);
        if constexpr (kStream)
          _mm256_stream_si256(out, packed);
        else
          _mm256_store_si256(out, packed);
      } else {
        stored_a = _mm256_castps_si256(a);
        stored_b = _mm256_castps_si256(b);
        if constexpr (kStream) {
          _mm256_stream_ps(dst + i, a);
          _mm256_stream_ps(dst + i + 8, b);
        } else {
          _mm256_store_ps(dst + i, a);
          _mm256_store_ps(dst + i + 8, b);
        }
      }
      if constexpr (kStats) {
        lanes = _mm256_add_ps(lanes, _mm256_add_ps(_mm256_mul_ps(a, a), _mm256_mul_ps(b, b)));
        const __m256i mask_a = _mm256_cmpeq_epi32(_mm256_and_si256(stored_a, exponent), exponent);
        const __m256i mask_b = _mm256_cmpeq_epi32(_mm256_and_si256(stored_b, exponent), exponent);
        flags = _mm256_or_si256(flags, _mm256_or_si256(mask_a, mask_b));
      }
    }
    if constexpr (kStats) {
      alignas(32) float lane[8];
      _mm256_store_ps(lane, lanes);
      sum_squares +=
          ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
  }
  while (i < count) scalar(i++);
  if constexpr (kStream) _mm_sfence();
  if constexpr (kStats) {
    stats->sum_squares += sum_squares + scalar.sum_squares;
    stats->non_finite |= scalar.non_finite | (_mm256_movemask_epi8(flags) != 0 ? 1u : 0u);
  }
}

bool has_avx2() {
  static const bool supported = __builtin_cpu_supports("avx2");
  return supported;
}

template <class Dst>
bool pack_f32_simd(const float* src, typename Dst::Storage* dst, std::size_t count, float scale,
                   PackStats* stats) {
  if constexpr (!std::is_same_v<Dst, detail::F32Element> &&
                !std::is_same_v<Dst, detail::BF16Element>) {
    return false;
  } else {
    const bool stream = streaming(count * sizeof(typename Dst::Storage));
    if (has_avx2()) {
      if (stats != nullptr)
        stream ? pack_f32_avx2<Dst, true, true>(src, dst, count, scale, stats)
               : pack_f32_avx2<Dst, true, false>(src, dst, count, scale, stats);
      else
        stream ? pack_f32_avx2<Dst, false, true>(src, dst, count, scale, stats)
               : pack_f32_avx2<Dst, false, false>(src, dst, count, scale, stats);
      return true;
    }
    if (stats != nullptr) {
      if (stream)
        pack_f32_sse<Dst, true, true>(src, dst, count, scale, stats);
      else
        pack_f32_sse<Dst, true, false>(src, dst, count, scale, stats);
    } else if (stream) {
      pack_f32_sse<Dst, false, true>(src, dst, count, scale, stats);
    } else {
      pack_f32_sse<Dst, false, false>(src, dst, count, scale, stats);
    }
    return true;
  }
}

// unpack of an f32 bucket into f32 tensors: dst = scale * src or dst + scale * src.
template <bool kAccumulate, bool kStream>
void unpack_f32_sse(float* dst, const float* src, std::size_t count, float scale) {
  const __m128 factor = _mm_set1_ps(scale);
  std::size_t i = 0;
  for (; i < count && reinterpret_cast<std::uintptr_t>(dst + i) % 16 != 0; ++i)
    dst[i] = detail::unpack_element<detail::F32Element, detail::F32Element, kAccumulate>(
        dst[i], src[i], scale);
  for (; i + 8 <= count; i += 8) {
    __m128 a = _mm_mul_ps(factor, _mm_loadu_ps(src + i));
    __m128 b = _mm_mul_ps(factor, _mm_loadu_ps(src + i + 4));
    if constexpr (kAccumulate) {
      a = _mm_add_ps(_mm_load_ps(dst + i), a);
      b = _mm_add_ps(_mm_load_ps(dst + i + 4), b);
    }
    store4<kStream>(dst + i, a);
    store4<kStream>(dst + i + 4, b);
  }
  for (; i < count; ++i)
    dst[i] = detail::unpack_element<detail::F32Element, detail::F32Element, kAccumulate>(
        dst[i], src[i], scale);
  if constexpr (kStream) _mm_sfence();
}

void unpack_f32_simd(float* dst, const float* src, std::size_t count, float scale,
                     bool accumulate) {
  // Accumulating reads every destination line anyway; streaming it back measured slower.
  if (accumulate) return unpack_f32_sse<true, false>(dst, src, count, scale);
  const bool stream = streaming(count * sizeof(float));
  stream ? unpack_f32_sse<false, true>(dst, src, count, scale)
         : unpack_f32_sse<false, false>(dst, src, count, scale);
}
#endif

template <class Src, class Dst>
void pack_tensor(const TensorSlice& slice, void* bucket, float scale, PackStats* stats) {
  auto* dst = static_cast<typename Dst::Storage*>(bucket) + slice.offset;
  if (slice.data == nullptr) {
    std::memset(static_cast<void*>(dst), 0, slice.count * sizeof(typename Dst::Storage));
    return;
  }
  const auto* src = static_cast<const typename Src::Storage*>(slice.data);
#if defined(__SSE2__)
  if constexpr (std::is_same_v<Src, detail::F32Element>) {
    const bool plain_copy = std::is_same_v<Dst, detail::F32Element> && scale == 1.0f;
    if (!(plain_copy && stats == nullptr) &&
        pack_f32_simd<Dst>(src, dst, slice.count, scale, stats))
      return;
  }
#endif
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
#if defined(__SSE2__)
  if constexpr (std::is_same_v<Tensor, detail::F32Element> &&
                std::is_same_v<Bucket, detail::F32Element>) {
    // scale_host passes the same buffer as tensor and bucket: element-wise in place is
    // fine, but a partial overlap is not, so only exact aliasing or none takes this path.
    const bool disjoint = dst + slice.count <= src || src + slice.count <= dst || dst == src;
    if ((accumulate || scale != 1.0f) && disjoint)
      return unpack_f32_simd(dst, src, slice.count, scale, accumulate);
  }
#endif
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

}  // namespace haein::kernels
