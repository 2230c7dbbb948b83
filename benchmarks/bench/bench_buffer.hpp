#pragma once
// A buffer of haein-bench collective: host memory, or device memory with --backend nccl,
// with copies to and from the host.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "haein/common/error.hpp"
#if HAEIN_BENCH_CUDA
#include <cuda_runtime.h>

#include "haein/common/check.hpp"
#endif

namespace haein::bench {

class BenchBuffer {
 public:
  BenchBuffer(std::size_t bytes, bool device) : device_(device) {
#if HAEIN_BENCH_CUDA
    if (device_) {
      if (cudaMalloc(&data_, std::max<std::size_t>(bytes, 1)) != cudaSuccess) {
        throw Error("cudaMalloc of " + std::to_string(bytes) + " bytes failed");
      }
      return;
    }
#endif
    host_.resize(std::max<std::size_t>(bytes, 1));
    data_ = host_.data();
  }
  BenchBuffer(const BenchBuffer&) = delete;
  BenchBuffer& operator=(const BenchBuffer&) = delete;
  ~BenchBuffer() {
#if HAEIN_BENCH_CUDA
    if (device_) cudaFree(data_);
#endif
  }
  unsigned char* data() { return static_cast<unsigned char*>(data_); }
  void upload(const void* from, std::size_t bytes) {
#if HAEIN_BENCH_CUDA
    if (device_) {
      HAEIN_CUDA_CHECK(cudaMemcpy(data(), from, bytes, cudaMemcpyHostToDevice));
      // From pageable memory cudaMemcpy may return before the data has landed, and a
      // stream of the bench's own (--stream own: non-blocking) is not ordered after the
      // copy: without this wait a checked run read part of the old contents (seen on an
      // H200: 9376 of 524288 elements at 2 MiB).
      HAEIN_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
      return;
    }
#endif
    std::memcpy(data(), from, bytes);
  }
  void download(void* to, std::size_t bytes) {
#if HAEIN_BENCH_CUDA
    if (device_) {
      HAEIN_CUDA_CHECK(cudaMemcpy(to, data(), bytes, cudaMemcpyDeviceToHost));
      return;
    }
#endif
    std::memcpy(to, data(), bytes);
  }
  void synchronize() {
#if HAEIN_BENCH_CUDA
    if (device_) cudaDeviceSynchronize();
#endif
  }

 private:
  bool device_;
  void* data_ = nullptr;
  std::vector<unsigned char> host_;
};

}  // namespace haein::bench
