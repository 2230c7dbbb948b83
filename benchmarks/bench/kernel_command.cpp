// Multi-tensor kernels against a plain copy of the same bytes, in the same run: pack
// (plain, with scale and the fused non-finite/sum-of-squares statistics, with a cast to
// bf16) and unpack (plain, scaled, accumulating), over a real model's tensor list cut into
// buckets of each given size. Medians of interleaved repeats; bandwidth counts the f32
// tensor bytes once (as the copy's). On the host the baseline is memcpy tensor by tensor;
// on a GPU (--device gpu) one cudaMemcpyAsync device-to-device of each bucket's bytes, the
// best a copy can do, timed with CUDA events.
//
//   haein-bench kernel [--device cpu|gpu] [--model NAME|FILE] [--bucket-mb 1,16,64]
//                      [--repeats 11] [--csv FILE] [--hdf5 FILE]
#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_results.hpp"
#include "bench/commands.hpp"
#include "bench/options.hpp"
#include "haein/common/error.hpp"
#include "haein/kernels/multi_tensor.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/rank_environment.hpp"
#include "model_list.hpp"
#include "statistics.hpp"

#if HAEIN_BENCH_CUDA
#include <cuda_runtime.h>

#include "haein/common/check.hpp"
#endif

namespace {

using haein::bench::CsvFile;
using haein::bench::format;
using haein::bench::Measurement;
using haein::bench::median;

using haein::kernels::ElementType;
using haein::kernels::PackStats;
using haein::kernels::TensorSlice;
namespace po = boost::program_options;

struct Options : haein::bench::OutputOptions {
  bool gpu = false;
  std::vector<double> bucket_mb{1, 16, 64};
  int repeats = 11;
};

Options parse(int argc, char** argv) {
  Options o;
  std::string sizes = "1,16,64";
  std::string device = "cpu";
  po::options_description d(
      "haein-bench kernel: pack/unpack/cast bandwidth against a copy of the same bytes");
  d.add_options()("help,h", "this help")(
      "device", po::value(&device)->default_value(device),
      "cpu: the host kernels against memcpy; gpu: the CUDA kernels against cudaMemcpyAsync");
  o.add_model(d);
  d.add_options()("bucket-mb", po::value(&sizes)->default_value(sizes),
                  "bucket sizes in MiB, comma-separated")(
      "repeats", po::value(&o.repeats)->default_value(o.repeats), "timed repeats (median)");
  o.add_files(d, "write the table as CSV", "write every repeat's time to this HDF5 file");
  haein::bench::parse_options(d, argc, argv, "kernel");
  if (o.repeats < 1) throw haein::InvalidArgument("--repeats must be at least 1");
  if (device != "cpu" && device != "gpu")
    throw haein::InvalidArgument("--device '" + device + "': expected cpu or gpu");
  o.gpu = device == "gpu";
#if !HAEIN_BENCH_CUDA
  if (o.gpu) throw haein::NotInThisBuild("--device gpu");
#endif
  o.bucket_mb = haein::bench::parse_positive_list("--bucket-mb", sizes);
  return o;
}

struct Row {
  std::string name;
  std::function<void()> run;
  std::vector<double> seconds;
};

/// Where the tensors, buckets and statistics live, and how a row is timed: host vectors
/// and a steady clock, or device memory, one stream and CUDA events.
class Memory {
 public:
  Memory(bool gpu, std::size_t total, std::size_t largest) : gpu_(gpu) {
    if (!gpu_) {
      host_.assign(total + 3 * largest + largest / 2 + 1, 0.5f);
      base_ = host_.data();
      stats_ = &host_stats_;
      return;
    }
#if HAEIN_BENCH_CUDA
    const std::size_t bytes = (total + 3 * largest + largest / 2 + 1) * sizeof(float);
    void* pointer = nullptr;
    HAEIN_CUDA_CHECK(cudaMalloc(&pointer, bytes));
    base_ = static_cast<float*>(pointer);
    HAEIN_CUDA_CHECK(cudaMemset(pointer, 0, bytes));
    HAEIN_CUDA_CHECK(cudaMalloc(&pointer, sizeof(PackStats)));
    stats_ = static_cast<PackStats*>(pointer);
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    HAEIN_CUDA_CHECK(cudaEventCreate(&start_));
    HAEIN_CUDA_CHECK(cudaEventCreate(&stop_));
#endif
    (void)total;
    (void)largest;
  }
  ~Memory() {
#if HAEIN_BENCH_CUDA
    if (gpu_) {
      cudaFree(base_);
      cudaFree(stats_);
      cudaStreamDestroy(stream_);
      cudaEventDestroy(start_);
      cudaEventDestroy(stop_);
    }
#endif
  }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  /// One block: the tensors (total), then bucket, source and narrow areas of `largest`.
  float* base() const { return base_; }
  PackStats* stats() const { return stats_; }
  void* stream() const {
#if HAEIN_BENCH_CUDA
    return stream_;
#else
    return nullptr;
#endif
  }

  /// One plain copy of `bytes`: memcpy, or cudaMemcpyAsync device to device.
  void copy(void* to, const void* from, std::size_t bytes) const {
#if HAEIN_BENCH_CUDA
    if (gpu_) {
      HAEIN_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream_));
      return;
    }
#endif
    std::memcpy(to, from, bytes);
  }

  double seconds(const std::function<void()>& run) const {
#if HAEIN_BENCH_CUDA
    if (gpu_) {
      HAEIN_CUDA_CHECK(cudaEventRecord(start_, stream_));
      run();
      HAEIN_CUDA_CHECK(cudaEventRecord(stop_, stream_));
      HAEIN_CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      HAEIN_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      return ms / 1e3;
    }
#endif
    const auto start = std::chrono::steady_clock::now();
    run();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

 private:
  bool gpu_;
  std::vector<float> host_;
  float* base_ = nullptr;
  PackStats host_stats_;
  PackStats* stats_ = nullptr;
#if HAEIN_BENCH_CUDA
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
#endif
};

/// A model's tensors cut into buckets: consecutive tensors up to the cap (a larger tensor
/// gets its own). The tensors lie one after another in one block, followed by the bucket,
/// a source for unpack and the bf16 bucket, each `largest` elements.
struct BucketCut {
  std::vector<std::vector<TensorSlice>> buckets{1};
  std::vector<std::size_t> first{0};  ///< element where each bucket's tensors begin
  std::size_t largest = 0;
};

BucketCut cut_into_buckets(const std::vector<haein::bench::ModelParameter>& model,
                           std::size_t cap) {
  BucketCut cut;
  std::size_t filled = 0, at = 0;
  for (const auto& p : model) {
    if (filled > 0 && filled + p.count > cap) {
      cut.largest = std::max(cut.largest, filled);
      cut.buckets.emplace_back();
      cut.first.push_back(at);
      filled = 0;
    }
    cut.buckets.back().push_back({nullptr, p.count, filled});
    filled += p.count;
    at += p.count;
  }
  cut.largest = std::max(cut.largest, filled);
  return cut;
}

void pack(bool gpu, void* stream, const std::vector<TensorSlice>& b, void* to, ElementType type,
          float scale, PackStats* with) {
  const haein::kernels::PackArgs args{b.data(), b.size(), ElementType::kF32, to, type, scale, with};
  if (gpu)
    haein::kernels::pack_device(args, stream);
  else
    haein::kernels::pack_host(args);
}

void unpack(bool gpu, void* stream, const std::vector<TensorSlice>& b, const void* from,
            ElementType type, float scale, bool accumulate) {
  const haein::kernels::UnpackArgs args{b.data(), b.size(), ElementType::kF32, from,
                                        type,     scale,    accumulate};
  if (gpu)
    haein::kernels::unpack_device(args, stream);
  else
    haein::kernels::unpack_host(args);
}

/// The copy of the same bytes and every kernel, over the buckets of `cut` laid out in
/// `memory` (both must outlive the rows).
std::vector<Row> kernel_rows(const Memory& memory, BucketCut& cut, std::size_t total, bool gpu) {
  float* const tensors = memory.base();
  std::size_t at = 0;
  for (auto& b : cut.buckets)
    for (TensorSlice& slice : b) {
      slice.data = tensors + at;
      at += slice.count;
    }
  float* const bucket = tensors + total;
  float* const source = bucket + cut.largest;
  void* const narrow = source + cut.largest;
  PackStats* const stats = memory.stats();
  void* const stream = memory.stream();
  const auto& buckets = cut.buckets;
  auto each = [&buckets](auto body) {
    return [&buckets, body] {
      for (const auto& b : buckets) body(b);
    };
  };
  auto copy = [&memory, &cut, tensors, bucket, gpu] {
    if (gpu) {  // one copy of each bucket's bytes: the best a copy can do
      for (std::size_t i = 0; i < cut.buckets.size(); ++i) {
        std::size_t elements = 0;
        for (const TensorSlice& t : cut.buckets[i]) elements += t.count;
        memory.copy(bucket, tensors + cut.first[i], elements * sizeof(float));
      }
      return;
    }
    for (const auto& b : cut.buckets)
      for (const TensorSlice& t : b)
        memory.copy(bucket + t.offset, t.data, t.count * sizeof(float));
  };
  using Slices = std::vector<TensorSlice>;
  const ElementType f32 = ElementType::kF32, bf16 = ElementType::kBF16;
  return {
      {gpu ? "cudaMemcpy D2D (same bytes)" : "memcpy (same bytes)", copy, {}},
      {"pack f32",
       each([=](const Slices& b) { pack(gpu, stream, b, bucket, f32, 1.0f, nullptr); }),
       {}},
      {"pack f32, scale + stats",
       each([=](const Slices& b) { pack(gpu, stream, b, bucket, f32, 0.5f, stats); }),
       {}},
      {"pack f32 -> bf16, scale",
       each([=](const Slices& b) { pack(gpu, stream, b, narrow, bf16, 0.5f, nullptr); }),
       {}},
      {"unpack f32",
       each([=](const Slices& b) { unpack(gpu, stream, b, source, f32, 1.0f, false); }),
       {}},
      {"unpack f32, scale",
       each([=](const Slices& b) { unpack(gpu, stream, b, source, f32, 0.5f, false); }),
       {}},
      {"unpack f32, accumulate",
       each([=](const Slices& b) { unpack(gpu, stream, b, source, f32, 1.0f, true); }),
       {}},
      {"unpack bf16 -> f32",
       each([=](const Slices& b) { unpack(gpu, stream, b, narrow, bf16, 1.0f, false); }),
       {}},
  };
}

/// A row's name as a CSV and HDF5 key: "pack f32 -> bf16, scale" is "pack_f32_bf16_scale".
std::string key_of(const std::string& name) {
  std::string key;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      key += c;
    else if (!key.empty() && key.back() != '_')
      key += '_';
  }
  if (!key.empty() && key.back() == '_') key.pop_back();
  return key;
}

/// Where the kernels run: the GPU of this node-local rank (selected), or the hosts.
std::string select_device(const Options& o, const std::string& hosts) {
#if HAEIN_BENCH_CUDA
  if (o.gpu) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
      throw haein::Error("--device gpu: no GPU is visible (no usable CUDA device)");
    const int local_rank = haein::runtime::read_rank_environment().local_rank;
    HAEIN_CUDA_CHECK(cudaSetDevice(local_rank % devices));
    cudaDeviceProp properties{};
    HAEIN_CUDA_CHECK(cudaGetDeviceProperties(&properties, local_rank % devices));
    return properties.name;
  }
#endif
  (void)o;
  return hosts;
}

/// One bucket size's table rows, CSV rows (leader) and HDF5 measurements.
struct SizeReport {
  const Options& o;
  bool leader;
  CsvFile& csv;
  std::vector<Measurement>& measurements;

  void add(double bucket_mb, std::size_t buckets, const std::vector<Row>& rows,
           double bytes) const {
    const double copy_time = median(rows[0].seconds);
    if (leader) {
      std::printf("#\n# buckets of %g MiB (%zu)\n", bucket_mb, buckets);
      std::printf("# %-27s %10s %10s %10s %12s\n", "operation", "median ms", "spread ms", "GB/s",
                  o.gpu ? "vs D2D copy" : "vs memcpy");
    }
    for (const Row& row : rows) {
      const double m = median(row.seconds);
      const auto [lo, hi] = std::minmax_element(row.seconds.begin(), row.seconds.end());
      std::vector<double> us;
      for (const double s : row.seconds) us.push_back(s * 1e6);
      const std::string key = key_of(row.name);
      if (leader) {
        std::printf("  %-27s %10.3f %10.3f %10.2f %11.2fx\n", row.name.c_str(), m * 1e3,
                    (*hi - *lo) * 1e3, bytes / m / 1e9, copy_time / m);
        csv.row({o.model, o.gpu ? "gpu" : "cpu", format("%g", bucket_mb), std::to_string(buckets),
                 key, format("%.3f", m * 1e3), format("%.3f", (*hi - *lo) * 1e3),
                 format("%.3f", bytes / m / 1e9), format("%.4f", copy_time / m)});
      }
      measurements.push_back(
          {"kernel/" + std::string(o.gpu ? "gpu/" : "") + o.model + "/bucket_" +
               format("%g", bucket_mb) + "MiB",
           key,
           us,
           {{"median_ms", m * 1e3}, {"gbs", bytes / m / 1e9}, {"vs_memcpy", copy_time / m}}});
    }
  }
};

}  // namespace

int haein::bench::kernel_command(int argc, char** argv) {
  const Options o = parse(argc, argv);
  // MPI only for the run's attributes and the HDF5 file; every rank measures its own.
  haein::runtime::Communicator comm = haein::runtime::Communicator::world();
  const bool leader = comm.rank() == 0;
  const RunAttributes attributes = standard_attributes(argc, argv);
  const auto model = haein::bench::load_model(o.model);
  std::size_t total = 0;
  for (const auto& p : model) total += p.count;
  const std::string where = select_device(o, attributes.at("hosts"));
  CsvFile csv;
  if (leader) {
    csv = CsvFile(o.csv, {"model", "device", "bucket_mb", "buckets", "operation", "median_ms",
                          "spread_ms", "gbs", "vs_memcpy"});
    std::printf(
        "# haein-bench kernel: %s, %zu tensors, %.1f MB of f32, median of %d repeats on %s\n",
        o.model.c_str(), model.size(), total * 4.0 / 1e6, o.repeats, where.c_str());
  }
  std::vector<Measurement> measurements;
  const SizeReport report{o, leader, csv, measurements};
  for (const double bucket_mb : o.bucket_mb) {
    BucketCut cut = cut_into_buckets(model, static_cast<std::size_t>(bucket_mb * 1024 * 1024 / 4));
    const Memory memory(o.gpu, total, cut.largest);
    std::vector<Row> rows = kernel_rows(memory, cut, total, o.gpu);
    for (int r = 0; r <= o.repeats; ++r) {
      for (Row& row : rows) {
        const double s = memory.seconds(row.run);
        if (r > 0) row.seconds.push_back(s);  // repeat 0 warms up
      }
    }
    report.add(bucket_mb, cut.buckets.size(), rows, static_cast<double>(total) * 4);
  }
  if (!o.hdf5.empty()) {
    RunAttributes all = attributes;
    all["benchmark"] = "kernel";
    all["model"] = o.model;
    write_hdf5(o.hdf5, all, measurements);
    if (leader) std::printf("# HDF5: %s\n", o.hdf5.c_str());
  }
  if (leader && !o.csv.empty()) std::printf("# CSV: %s\n", o.csv.c_str());
  return 0;
}
