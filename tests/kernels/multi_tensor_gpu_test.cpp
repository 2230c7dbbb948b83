// The CUDA multi-tensor kernels against the CPU reference, on the GPU (label gpu): the
// same random tensor lists, misaligned starts and poisoned outputs. Results must be
// bitwise equal (the element math is shared and rounded the same way); only the sum of
// squares differs, by summation order.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gpu.hpp"
#include "haein/kernels/device.hpp"
#include "haein/kernels/multi_tensor.hpp"
#include "tensor_lists.hpp"

namespace haein::kernels {
namespace {

using testing::random_list;
using testing::TensorList;

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&data_, bytes == 0 ? 1 : bytes) != cudaSuccess) data_ = nullptr;
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::uint8_t* get() const { return static_cast<std::uint8_t*>(data_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_;
};

/// Normal values; with `overflow`, also every 9973rd is 1e30 (inf in f16; finite in f32 and
/// bf16, where its square overflows the f32 sum of squares).
std::vector<std::uint8_t> random_bytes_of(ElementType type, std::size_t count,
                                          std::mt19937_64& random, bool overflow = true) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<std::uint8_t> bytes(count * size_of(type));
  for (std::size_t i = 0; i < count; ++i) {
    float value = normal(random);
    if (overflow && i % 9973 == 17) value = 1.0e30f;
    if (type == ElementType::kF32) {
      std::memcpy(&bytes[i * 4], &value, 4);
    } else {
      const std::uint16_t bits =
          type == ElementType::kBF16 ? testing::oracle_bf16(value) : testing::oracle_f16(value);
      std::memcpy(&bytes[i * 2], &bits, 2);
    }
  }
  return bytes;
}

struct Pair {
  ElementType tensor;
  ElementType bucket;
};
constexpr Pair kPairs[] = {{ElementType::kF32, ElementType::kF32},
                           {ElementType::kF32, ElementType::kBF16},
                           {ElementType::kF32, ElementType::kF16},
                           {ElementType::kBF16, ElementType::kBF16},
                           {ElementType::kF16, ElementType::kF16}};

class MultiTensorGpu : public ::testing::Test {
 protected:
  void SetUp() override { HAEIN_SKIP_WITHOUT_GPU(); }
};

TEST_F(MultiTensorGpu, PackAndUnpackEqualTheCpuReferenceBitwise) {
  std::mt19937_64 random(21);
  for (const Pair pair : kPairs) {
    for (int trial = 0; trial < 3; ++trial) {
      const TensorList list = random_list(random, 2000, 10'000'000, 20'000'000);
      const std::size_t tensor_bytes = size_of(pair.tensor);
      const std::size_t bucket_bytes = size_of(pair.bucket);
      // The last trial has only finite values, so that the sum of squares is compared.
      const bool finite = trial == 2;
      const std::vector<std::uint8_t> arena =
          random_bytes_of(pair.tensor, list.arena_elements, random, !finite);
      DeviceBuffer device_arena(arena.size());
      DeviceBuffer device_bucket(list.bucket_elements * bucket_bytes);
      DeviceBuffer device_stats(sizeof(PackStats));
      ASSERT_NE(device_arena.get(), nullptr);
      ASSERT_NE(device_bucket.get(), nullptr);
      ASSERT_CUDA(
          cudaMemcpy(device_arena.get(), arena.data(), arena.size(), cudaMemcpyHostToDevice));
      ASSERT_CUDA(cudaMemset(device_bucket.get(), testing::kPoisonByte, device_bucket.bytes()));
      ASSERT_CUDA(cudaMemset(device_stats.get(), 0, sizeof(PackStats)));
      std::vector<std::uint8_t> host_bucket(device_bucket.bytes(), testing::kPoisonByte);
      std::vector<TensorSlice> host_slices;
      std::vector<TensorSlice> device_slices;
      for (std::size_t t = 0; t < list.counts.size(); ++t) {
        // Every 50th tensor has no gradient: zero-filled.
        const bool missing = t % 50 == 49;
        const std::size_t at = list.starts[t] * tensor_bytes;
        host_slices.push_back({missing ? nullptr : const_cast<std::uint8_t*>(arena.data()) + at,
                               list.counts[t], list.offsets[t]});
        device_slices.push_back(
            {missing ? nullptr : device_arena.get() + at, list.counts[t], list.offsets[t]});
      }
      const float scale = trial == 0 ? 1.0f : 1.0f / 3.0f;
      PackStats host_stats;
      pack_host({host_slices.data(), host_slices.size(), pair.tensor, host_bucket.data(),
                 pair.bucket, scale, &host_stats});
      pack_device({device_slices.data(), device_slices.size(), pair.tensor, device_bucket.get(),
                   pair.bucket, scale, reinterpret_cast<PackStats*>(device_stats.get())},
                  nullptr);
      std::vector<std::uint8_t> got(device_bucket.bytes());
      PackStats device_stats_value;
      ASSERT_CUDA(cudaMemcpy(got.data(), device_bucket.get(), got.size(), cudaMemcpyDeviceToHost));
      ASSERT_CUDA(cudaMemcpy(&device_stats_value, device_stats.get(), sizeof(PackStats),
                             cudaMemcpyDeviceToHost));
      ASSERT_EQ(got, host_bucket) << name_of(pair.tensor) << "→" << name_of(pair.bucket)
                                  << " trial " << trial << ": pack differs from the CPU reference";
      EXPECT_EQ(device_stats_value.non_finite != 0, host_stats.non_finite != 0);
      if (finite) {
        ASSERT_TRUE(std::isfinite(host_stats.sum_squares)) << name_of(pair.tensor);
        EXPECT_GT(host_stats.sum_squares, 0.0);
        EXPECT_NEAR(device_stats_value.sum_squares, host_stats.sum_squares,
                    1e-5 * host_stats.sum_squares)
            << name_of(pair.tensor) << "→" << name_of(pair.bucket);
      } else if (pair.bucket == ElementType::kF16) {
        EXPECT_NE(device_stats_value.non_finite, 0u) << "the injected 1e30 (inf in f16) was not "
                                                     << "flagged: " << name_of(pair.tensor);
      } else {
        // 1e30 is finite in f32 and bf16 (not flagged), but its square overflows the f32 sum.
        EXPECT_EQ(device_stats_value.non_finite, 0u) << name_of(pair.tensor);
        EXPECT_FALSE(std::isfinite(device_stats_value.sum_squares)) << name_of(pair.tensor);
      }

      // Unpack with accumulate back into the arena, on both sides.
      for (bool accumulate : {false, true}) {
        std::vector<std::uint8_t> host_arena = arena;
        for (std::size_t t = 0; t < host_slices.size(); ++t)
          host_slices[t].data = host_arena.data() + list.starts[t] * tensor_bytes;
        for (std::size_t t = 0; t < device_slices.size(); ++t)
          device_slices[t].data = device_arena.get() + list.starts[t] * tensor_bytes;
        ASSERT_CUDA(
            cudaMemcpy(device_arena.get(), arena.data(), arena.size(), cudaMemcpyHostToDevice));
        unpack_host({host_slices.data(), host_slices.size(), pair.tensor, host_bucket.data(),
                     pair.bucket, 0.5f, accumulate});
        unpack_device({device_slices.data(), device_slices.size(), pair.tensor, device_bucket.get(),
                       pair.bucket, 0.5f, accumulate},
                      nullptr);
        std::vector<std::uint8_t> got_arena(arena.size());
        ASSERT_CUDA(cudaMemcpy(got_arena.data(), device_arena.get(), got_arena.size(),
                               cudaMemcpyDeviceToHost));
        ASSERT_EQ(got_arena, host_arena) << name_of(pair.tensor) << "←" << name_of(pair.bucket)
                                         << (accumulate ? " +=" : " =") << " trial " << trial;
      }
    }
  }
}

TEST_F(MultiTensorGpu, SumShardsAndScaleEqualTheCpuReference) {
  std::mt19937_64 random(22);
  for (ElementType type : {ElementType::kF32, ElementType::kBF16, ElementType::kF16}) {
    const int shards = 8;
    const std::size_t count = 3'000'017;
    std::vector<std::uint8_t> host = random_bytes_of(type, shards * count, random);
    DeviceBuffer device(host.size());
    ASSERT_CUDA(cudaMemcpy(device.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
    sum_shards_host({host.data(), shards, count, type, host.data(), 0.125f});
    sum_shards_device({device.get(), shards, count, type, device.get(), 0.125f}, nullptr);
    scale_host(host.data() + 1 * size_of(type), count - 1, type, 3.0f);
    scale_device(device.get() + 1 * size_of(type), count - 1, type, 3.0f, nullptr);
    std::vector<std::uint8_t> got(host.size());
    ASSERT_CUDA(cudaMemcpy(got.data(), device.get(), got.size(), cudaMemcpyDeviceToHost));
    ASSERT_EQ(got, host) << name_of(type);
  }
}

TEST_F(MultiTensorGpu, ALaunchAfterANotReadyQueryIsNotBlamedForIt) {
  // cudaEventQuery on busy work answers cudaErrorNotReady and leaves it as the thread's
  // last error; a launch checked with cudaGetLastError used to report it as its own.
  const std::size_t bytes = std::size_t{256} << 20;
  DeviceBuffer a(bytes), b(bytes);
  ASSERT_NE(a.get(), nullptr);
  ASSERT_NE(b.get(), nullptr);
  cudaStream_t stream = nullptr;
  cudaEvent_t event = nullptr;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ASSERT_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  for (int i = 0; i < 8; ++i)
    ASSERT_CUDA(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream));
  ASSERT_CUDA(cudaEventRecord(event, stream));
  const cudaError_t query = cudaEventQuery(event);
  const TensorSlice slice{a.get(), 1000, 0};
  EXPECT_NO_THROW(pack_device(
      {&slice, 1, ElementType::kF32, b.get(), ElementType::kF32, 1.0f, nullptr}, stream))
      << "after cudaEventQuery answered " << cudaGetErrorName(query);
  EXPECT_NO_THROW(scale_device(nullptr, 0, ElementType::kF32, 2.0f, stream))
      << "an empty tensor has nothing to scale";
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  cudaGetLastError();
  cudaEventDestroy(event);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace haein::kernels
