// CUDA multi-tensor kernels. The tensor table travels in the kernel parameters (up to
// 32 KB since CUDA 12.1, read through __grid_constant__ without a copy); each tensor is
// cut into chunks and every block handles one chunk, found by a binary search over the
// table's first-chunk column. Inside a chunk a thread moves 16-byte vectors when the
// source and destination line up, and single elements at misaligned heads and odd tails.
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "dispatch.hpp"
#include "haein/common/check.hpp"
#include "haein/kernels/device.hpp"
#include "haein/kernels/launch.cuh"

namespace haein::kernels {

namespace {

using detail::pack_element;
using detail::unpack_element;

constexpr int kThreads = 256;
constexpr std::size_t kChunk = 16384;  // elements per block
// 32 bytes per entry; the rest of the 32,764-byte parameter space holds the header.
constexpr int kSlicesPerLaunch = 1000;

struct DeviceSlice {
  void* data;
  unsigned long long count;
  unsigned long long offset;
  unsigned long long first_chunk;
};

struct TableParams {
  DeviceSlice slices[kSlicesPerLaunch];
  int slice_count;
  float scale;
  void* bucket;
  PackStats* stats;
};
static_assert(sizeof(TableParams) <= 32764, "kernel parameters are limited to 32,764 bytes");

template <class T, int kCount>
struct alignas(sizeof(T) * kCount) Vector {
  T values[kCount];
};

/// Elements per 16-byte vector of the wider of the two types.
template <class A, class B>
inline constexpr int kVectorWidth = 16 / static_cast<int>(sizeof(typename A::Storage) >
                                                                  sizeof(typename B::Storage)
                                                              ? sizeof(typename A::Storage)
                                                              : sizeof(typename B::Storage));

__device__ std::size_t chunk_end(std::size_t begin, std::size_t count) {
  return begin + kChunk < count ? begin + kChunk : count;
}

__device__ int find_slice(const TableParams& params) {
  int low = 0;
  int high = params.slice_count - 1;
  const unsigned long long block = blockIdx.x;
  while (low < high) {  // last slice whose first chunk is <= block
    const int middle = (low + high + 1) / 2;
    if (params.slices[middle].first_chunk <= block)
      low = middle;
    else
      high = middle - 1;
  }
  return low;
}

__device__ bool aligned(const void* pointer, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(pointer) % bytes == 0;
}

/// Sums `value` over the block into thread 0's result.
__device__ float block_sum(float value) {
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = value;
  __syncthreads();
  float total = 0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
  return total;
}

/// Calls `element(i)` for i in [begin, end) of one chunk, and `vector(i)` for vector-wide
/// groups where `vector_ok(i)` says both sides are 16-byte aligned at i.
template <int kWidth, class IsAligned, class Element, class VectorOp>
__device__ void for_chunk(std::size_t begin, std::size_t end, IsAligned vector_ok, Element element,
                          VectorOp vector) {
  // Head: elements until the source side is aligned; then either vectors or elements.
  std::size_t head = begin;
  while (head < end && !vector_ok(head) && head - begin < kWidth) ++head;
  if (head < end && vector_ok(head)) {
    for (std::size_t i = begin + threadIdx.x; i < head; i += kThreads) element(i);
    const std::size_t vectors = (end - head) / kWidth;
    for (std::size_t v = threadIdx.x; v < vectors; v += kThreads) vector(head + v * kWidth);
    for (std::size_t i = head + vectors * kWidth + threadIdx.x; i < end; i += kThreads) element(i);
  } else {
    for (std::size_t i = begin + threadIdx.x; i < end; i += kThreads) element(i);
  }
}

template <class Src, class Dst, bool kStats>
__global__ void __launch_bounds__(kThreads)
    pack_kernel(const __grid_constant__ TableParams params) {
  using S = typename Src::Storage;
  using D = typename Dst::Storage;
  constexpr int kWidth = kVectorWidth<Src, Dst>;
  const DeviceSlice& slice = params.slices[find_slice(params)];
  const std::size_t begin = (blockIdx.x - slice.first_chunk) * kChunk;
  const std::size_t end = chunk_end(begin, slice.count);
  D* dst = static_cast<D*>(params.bucket) + slice.offset;
  const S* src = static_cast<const S*>(slice.data);
  float squares = 0;
  std::uint32_t non_finite = 0;
  if (src == nullptr) {
    for (std::size_t i = begin + threadIdx.x; i < end; i += kThreads) dst[i] = D(0);
  } else {
    const float scale = params.scale;
    auto store = [&](std::size_t i, S x) -> D {
      const D stored = pack_element<Src, Dst>(x, scale);
      if constexpr (kStats) {
        const float scaled = detail::multiply(scale, Src::to_float(x));
        squares = fmaf(scaled, scaled, squares);
        non_finite |= Dst::non_finite(stored);
      }
      return stored;
    };
    for_chunk<kWidth>(
        begin, end,
        [&](std::size_t i) {
          return aligned(src + i, sizeof(S) * kWidth) && aligned(dst + i, sizeof(D) * kWidth);
        },
        [&](std::size_t i) { dst[i] = store(i, src[i]); },
        [&](std::size_t i) {
          const auto in = *reinterpret_cast<const Vector<S, kWidth>*>(src + i);
          Vector<D, kWidth> out;
#pragma unroll
          for (int k = 0; k < kWidth; ++k) out.values[k] = store(i + k, in.values[k]);
          *reinterpret_cast<Vector<D, kWidth>*>(dst + i) = out;
        });
  }
  if constexpr (kStats) {
    const bool any_non_finite = __syncthreads_or(non_finite != 0);
    const float total = block_sum(squares);
    if (threadIdx.x == 0) {
      if (total != 0) atomicAdd(&params.stats->sum_squares, static_cast<double>(total));
      if (any_non_finite) atomicOr(&params.stats->non_finite, 1u);
    }
  }
}

template <class Tensor, class Bucket, bool kAccumulate>
__global__ void __launch_bounds__(kThreads)
    unpack_kernel(const __grid_constant__ TableParams params) {
  using T = typename Tensor::Storage;
  using B = typename Bucket::Storage;
  constexpr int kWidth = kVectorWidth<Tensor, Bucket>;
  const DeviceSlice& slice = params.slices[find_slice(params)];
  const std::size_t begin = (blockIdx.x - slice.first_chunk) * kChunk;
  const std::size_t end = chunk_end(begin, slice.count);
  const B* src = static_cast<const B*>(params.bucket) + slice.offset;
  T* dst = static_cast<T*>(slice.data);
  const float scale = params.scale;
  for_chunk<kWidth>(
      begin, end,
      [&](std::size_t i) {
        return aligned(src + i, sizeof(B) * kWidth) && aligned(dst + i, sizeof(T) * kWidth);
      },
      [&](std::size_t i) {
        dst[i] =
            unpack_element<Tensor, Bucket, kAccumulate>(kAccumulate ? dst[i] : T(0), src[i], scale);
      },
      [&](std::size_t i) {
        const auto in = *reinterpret_cast<const Vector<B, kWidth>*>(src + i);
        Vector<T, kWidth> out;
        if constexpr (kAccumulate) out = *reinterpret_cast<const Vector<T, kWidth>*>(dst + i);
#pragma unroll
        for (int k = 0; k < kWidth; ++k)
          out.values[k] =
              unpack_element<Tensor, Bucket, kAccumulate>(out.values[k], in.values[k], scale);
        *reinterpret_cast<Vector<T, kWidth>*>(dst + i) = out;
      });
}

template <class Element>
__global__ void __launch_bounds__(kThreads)
    sum_shards_kernel(const typename Element::Storage* shards, int shard_count, std::size_t count,
                      typename Element::Storage* out, float scale) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * kThreads;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(kThreads) + threadIdx.x; i < count;
       i += stride) {
    float sum = Element::to_float(shards[i]);
    for (int r = 1; r < shard_count; ++r)
      sum = detail::add(sum, Element::to_float(shards[static_cast<std::size_t>(r) * count + i]));
    out[i] = Element::from_float(detail::multiply(scale, sum));
  }
}

/// Fills the table from `tensors` in launches of at most kSlicesPerLaunch slices and calls
/// `launch(params, blocks)` for each; empty tensors are skipped.
template <class Launch>
void for_each_table(const TensorSlice* tensors, std::size_t tensor_count, TableParams& params,
                    Launch launch) {
  std::size_t next = 0;
  while (next < tensor_count) {
    params.slice_count = 0;
    unsigned long long blocks = 0;
    for (; next < tensor_count && params.slice_count < kSlicesPerLaunch; ++next) {
      const TensorSlice& tensor = tensors[next];
      if (tensor.count == 0) continue;
      params.slices[params.slice_count++] = {tensor.data, tensor.count, tensor.offset, blocks};
      blocks += (tensor.count + kChunk - 1) / kChunk;
    }
    if (params.slice_count == 0) continue;
    if (blocks > 0x7fffffffULL) throw InvalidArgument("multi-tensor kernels: too many elements");
    launch(params, static_cast<unsigned>(blocks));
  }
}

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

}  // namespace

void pack_device(const PackArgs& args, void* stream) {
  if (args.bucket == nullptr && args.tensor_count != 0)
    throw InvalidArgument("pack: the bucket is null");
  if (args.tensor_count == 0) return;
  // Kernels run on the device of their stream, whatever the caller's current device is.
  const DeviceGuard guard(stream_device(stream));
  detail::with_element_types(args.tensor_type, args.bucket_type, [&](auto tensor, auto bucket) {
    using Src = decltype(tensor);
    using Dst = decltype(bucket);
    TableParams params{};
    params.scale = args.scale;
    params.bucket = args.bucket;
    params.stats = args.stats;
    for_each_table(args.tensors, args.tensor_count, params,
                   [&](const TableParams& table, unsigned blocks) {
                     if (args.stats != nullptr)
                       launch_kernel("pack_kernel (with statistics)", pack_kernel<Src, Dst, true>,
                                     blocks, kThreads, as_stream(stream), table);
                     else
                       launch_kernel("pack_kernel", pack_kernel<Src, Dst, false>, blocks, kThreads,
                                     as_stream(stream), table);
                   });
  });
}

void unpack_device(const UnpackArgs& args, void* stream) {
  if (args.bucket == nullptr && args.tensor_count != 0)
    throw InvalidArgument("unpack: the bucket is null");
  if (args.tensor_count == 0) return;
  const DeviceGuard guard(stream_device(stream));
  detail::with_element_types(args.tensor_type, args.bucket_type, [&](auto tensor, auto bucket) {
    using Tensor = decltype(tensor);
    using Bucket = decltype(bucket);
    TableParams params{};
    params.scale = args.scale;
    params.bucket = const_cast<void*>(args.bucket);
    for_each_table(
        args.tensors, args.tensor_count, params, [&](const TableParams& table, unsigned blocks) {
          if (args.accumulate)
            launch_kernel("unpack_kernel (accumulating)", unpack_kernel<Tensor, Bucket, true>,
                          blocks, kThreads, as_stream(stream), table);
          else
            launch_kernel("unpack_kernel", unpack_kernel<Tensor, Bucket, false>, blocks, kThreads,
                          as_stream(stream), table);
        });
  });
}

void scale_device(void* data, std::size_t count, ElementType type, float scale, void* stream) {
  if (count == 0) return;
  const TensorSlice slice{data, count, 0};
  unpack_device({&slice, 1, type, data, type, scale, false}, stream);
}

void sum_shards_device(const ShardSumArgs& args, void* stream) {
  if (args.shard_count <= 0) throw InvalidArgument("sum_shards: needs at least one shard");
  if (args.count == 0) return;
  const DeviceGuard guard(stream_device(stream));
  detail::with_element_type(args.type, [&](auto element) {
    using Element = decltype(element);
    using Storage = typename Element::Storage;
    const unsigned blocks =
        static_cast<unsigned>(std::min<std::size_t>((args.count + kThreads - 1) / kThreads, 65535));
    launch_kernel("sum_shards_kernel", sum_shards_kernel<Element>, blocks, kThreads,
                  as_stream(stream), static_cast<const Storage*>(args.shards), args.shard_count,
                  args.count, static_cast<Storage*>(args.out), args.scale);
  });
}

}  // namespace haein::kernels
