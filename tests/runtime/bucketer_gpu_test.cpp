// The GradBucketer's device paths on every visible GPU (one rank per GPU, NCCL through a
// ThreadBootstrap): every wire type x all-reduce or reduce-scatter x gradient views x
// averaging, buckets small enough that there are several, one parameter not ready in the
// second step (zero-filled), three steps (the second begin_step rebuilds the buckets).
// Every rank's gradients are the same, so the reduced gradient is the gradient cast
// through the wire type and back, summed `n` times and averaged (exact for n a power of
// two; with one GPU, the gradient through the wire). Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gpu.hpp"
#include "haein/kernels/device.hpp"
#include "haein/kernels/numeric.hpp"
#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"

namespace {

using namespace haein::runtime;

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

float through_wire(float x, DataType wire) {
  if (wire == DataType::kBF16) return haein::kernels::bf16_to_f32(haein::kernels::f32_to_bf16(x));
  if (wire == DataType::kF16) return haein::kernels::f16_to_f32(haein::kernels::f32_to_f16(x));
  return x;
}

const char* averaging_name(Averaging averaging) {
  switch (averaging) {
    case Averaging::kNone:
      return "none";
    case Averaging::kAvgOp:
      return "avg-op";
    case Averaging::kPreDivide:
      return "pre-divide";
    case Averaging::kPostDivide:
      return "post-divide";
  }
  return "?";
}

/// The gradient every rank writes: exact in bf16 for most elements, not for all.
float gradient_value(std::size_t parameter, std::size_t k, int step) {
  const auto bits = static_cast<float>((k * 2654435761u + parameter * 97 + step) % 20011);
  return std::ldexp(bits - 10005.0f, -7) + 1e-3f * static_cast<float>(step);
}

/// One configuration on this rank's GPU; returns the number of wrong elements.
std::size_t run_configuration(Communicator& comm, const BucketerOptions& base,
                              cudaStream_t stream) {
  const std::vector<std::size_t> sizes = {1, 7, 1000, 4097, 100003, 3, 300000};
  const int n = comm.size();
  std::vector<float*> gradients;
  struct Free {
    std::vector<float*>& list;
    ~Free() {
      for (float* p : list) cudaFree(p);
    }
  } release{gradients};
  for (std::size_t count : sizes) {
    float* p = nullptr;
    check_cuda(cudaMalloc(&p, count * sizeof(float)), "cudaMalloc");
    gradients.push_back(p);
  }
  BucketerOptions options = base;
  options.stream = stream;
  GradBucketer bucketer(comm, options);
  for (std::size_t i = 0; i < sizes.size(); ++i)
    bucketer.register_parameter("p" + std::to_string(i), gradients[i], sizes[i], DataType::kF32);
  const DataType wire = options.wire_type.value_or(DataType::kF32);
  std::size_t bad = 0;
  for (int step = 0; step < 3; ++step) {
    bucketer.begin_step();
    std::vector<std::vector<float>> want(sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::vector<float> host(sizes[i]);
      const bool ready = !(step == 1 && i == 2);
      want[i].resize(sizes[i]);
      for (std::size_t k = 0; k < sizes[i]; ++k) {
        host[k] = gradient_value(i, k, step);
        // n equal terms, summed in f32 and divided by n (or not): exact for n a power of 2.
        float sum = 0;
        for (int r = 0; r < n; ++r) sum += through_wire(host[k], wire);
        const float reduced = options.averaging == Averaging::kNone ? sum : sum / n;
        want[i][k] = ready ? reduced : 0.0f;
      }
      check_cuda(cudaMemcpyAsync(bucketer.gradient(i), host.data(), sizes[i] * sizeof(float),
                                 cudaMemcpyHostToDevice, stream),
                 "upload");
      check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");  // host goes away
    }
    for (std::size_t i = sizes.size(); i-- > 0;)
      if (!(step == 1 && i == 2)) bucketer.mark_ready(i);
    bucketer.finish();
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    std::vector<std::vector<char>> owned(sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i)
      owned[i].assign(sizes[i], options.reduce_scatter ? 0 : 1);
    for (const OwnedRange& range : bucketer.owned_ranges())
      for (std::size_t k = 0; k < range.count; ++k) owned[range.parameter][range.offset + k] = 1;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::vector<float> got(sizes[i]);
      check_cuda(cudaMemcpy(got.data(), bucketer.gradient(i), sizes[i] * sizeof(float),
                            cudaMemcpyDeviceToHost),
                 "download");
      for (std::size_t k = 0; k < sizes[i]; ++k)
        if (owned[i][k] && std::memcmp(&got[k], &want[i][k], sizeof(float)) != 0) ++bad;
    }
    for (const BucketInfo& bucket : bucketer.buckets()) {
      EXPECT_TRUE(bucket.device);
      EXPECT_EQ(bucket.wire, wire);
    }
    if (step == 2) {
      EXPECT_TRUE(bucketer.rebuilt()) << "the second begin_step rebuilds";
    }
  }
  EXPECT_GT(bucketer.buckets().size(), 2u) << "caps small enough for several buckets";
  return bad;
}

TEST(BucketerGpu, EveryDevicePathReducesBitwiseAsDefined) {
  HAEIN_SKIP_WITHOUT_GPU();
  const auto devices = haein::kernels::visible_devices();
  auto bootstraps =
      ThreadBootstrap::create_group(static_cast<int>(devices.size()), std::chrono::seconds(120));
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < devices.size(); ++r) {
    threads.emplace_back([&, r] {
      std::string config;
      try {
        check_cuda(cudaSetDevice(devices[r].index), "cudaSetDevice");
        CommunicatorOptions communicator_options = CommunicatorOptions::from_environment();
        communicator_options.timeout = std::chrono::seconds(120);
        Communicator comm(std::move(bootstraps[r]), communicator_options);
        cudaStream_t stream = nullptr;
        check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
        for (DataType wire : {DataType::kF32, DataType::kBF16, DataType::kF16})
          for (bool reduce_scatter : {false, true})
            for (bool views : {false, true}) {
              if (views && wire != DataType::kF32) continue;  // views need an uncompressed wire
              for (Averaging averaging : {Averaging::kNone, Averaging::kAvgOp,
                                          Averaging::kPreDivide, Averaging::kPostDivide}) {
                BucketerOptions options;
                options.bucket_cap_mb = 0.2;  // 300000 | 3 | 100003 | the rest: 4 buckets
                options.first_bucket_cap_mb = 0.01;
                if (wire != DataType::kF32) options.wire_type = wire;
                options.reduce_scatter = reduce_scatter;
                options.gradient_as_bucket_view = views;
                options.averaging = averaging;
                config = std::string(name_of(wire)) +
                         (reduce_scatter ? " reduce-scatter" : " all-reduce") +
                         (views ? " views" : "") + " averaging " + averaging_name(averaging);
                EXPECT_EQ(run_configuration(comm, options, stream), 0u)
                    << "rank " << r << ", " << config << ": elements differ";
              }
            }
        cudaStreamDestroy(stream);
      } catch (const std::exception& error) {
        ADD_FAILURE() << "rank " << r << (config.empty() ? "" : ", " + config)
                      << " threw: " << error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace
