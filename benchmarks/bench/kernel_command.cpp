// Host multi-tensor kernels against memcpy of the same bytes, in the same run: pack
// (plain, with scale and the fused non-finite/sum-of-squares statistics, with a cast to
// bf16) and unpack (plain, scaled, accumulating), over a real model's tensor list cut into
// buckets of each given size. Medians of interleaved repeats; bandwidth counts the f32
// tensor bytes once (as memcpy's).
//
//   haein-bench kernel [--model NAME|FILE] [--bucket-mb 1,16,64] [--repeats 11]
//                      [--csv FILE] [--hdf5 FILE]
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
#include "model_list.hpp"
#include "statistics.hpp"

namespace {

using haein::bench::median;

using haein::kernels::ElementType;
using haein::kernels::PackStats;
using haein::kernels::TensorSlice;
namespace po = boost::program_options;

struct Options {
  std::string model = "gpt2-124m";
  std::vector<double> bucket_mb{1, 16, 64};
  int repeats = 11;
  std::string csv;
  std::string hdf5;
};

Options parse(int argc, char** argv) {
  Options o;
  std::string sizes = "1,16,64";
  po::options_description d(
      "haein-bench kernel: host pack/unpack/cast bandwidth against memcpy of the same bytes");
  d.add_options()("help,h", "this help")("model", po::value(&o.model)->default_value(o.model),
                                         "gpt2-124m, llama-3.2-1b or a parameter-list file")(
      "bucket-mb", po::value(&sizes)->default_value(sizes), "bucket sizes in MiB, comma-separated")(
      "repeats", po::value(&o.repeats)->default_value(o.repeats), "timed repeats (median)")(
      "csv", po::value(&o.csv), "write the table as CSV")(
      "hdf5", po::value(&o.hdf5), "write every repeat's time to this HDF5 file");
  haein::bench::parse_options(d, argc, argv, "kernel");
  if (o.repeats < 1) throw haein::InvalidArgument("--repeats must be at least 1");
  o.bucket_mb = haein::bench::parse_positive_list("--bucket-mb", sizes);
  return o;
}

}  // namespace

int haein::bench::kernel_command(int argc, char** argv) {
  const Options o = parse(argc, argv);
  // MPI only for the run's attributes and the HDF5 file; every rank measures its own.
  haein::runtime::Communicator comm = haein::runtime::Communicator::world();
  const bool leader = comm.rank() == 0;
  const RunAttributes attributes = standard_attributes(argc, argv);
  const auto model = haein::bench::load_model(o.model);
  std::vector<std::vector<float>> tensors;
  std::size_t total = 0;
  for (const auto& p : model) {
    tensors.emplace_back(p.count, 0.5f);
    total += p.count;
  }
  CsvFile csv;
  if (leader) {
    csv = CsvFile(o.csv, {"model", "bucket_mb", "buckets", "operation", "median_ms", "spread_ms",
                          "gbs", "vs_memcpy"});
    std::printf(
        "# haein-bench kernel: %s, %zu tensors, %.1f MB of f32, median of %d repeats on %s\n",
        o.model.c_str(), model.size(), total * 4.0 / 1e6, o.repeats,
        attributes.at("hosts").c_str());
  }
  std::vector<Measurement> measurements;
  for (const double bucket_mb : o.bucket_mb) {
    // Buckets: consecutive tensors up to the cap (a larger tensor gets its own).
    const auto cap = static_cast<std::size_t>(bucket_mb * 1024 * 1024 / 4);
    std::vector<std::vector<TensorSlice>> buckets(1);
    std::size_t filled = 0, largest = 0;
    for (std::size_t t = 0; t < tensors.size(); ++t) {
      if (filled > 0 && filled + tensors[t].size() > cap) {
        largest = std::max(largest, filled);
        buckets.emplace_back();
        filled = 0;
      }
      buckets.back().push_back({tensors[t].data(), tensors[t].size(), filled});
      filled += tensors[t].size();
    }
    largest = std::max(largest, filled);
    std::vector<float> bucket(largest);
    std::vector<std::uint16_t> narrow(largest);
    std::vector<float> source(largest, 0.25f);

    struct Row {
      std::string name;
      std::function<void()> run;
      std::vector<double> seconds;
    };
    PackStats stats;
    auto each = [&](auto body) {
      for (const auto& b : buckets) body(b);
    };
    std::vector<Row> rows = {
        {"memcpy (same bytes)",
         [&] {
           each([&](const std::vector<TensorSlice>& b) {
             for (const TensorSlice& s : b)
               std::memcpy(bucket.data() + s.offset, s.data, s.count * sizeof(float));
           });
         },
         {}},
        {"pack f32",
         [&] {
           each([&](const auto& b) {
             haein::kernels::pack_host({b.data(), b.size(), ElementType::kF32, bucket.data(),
                                        ElementType::kF32, 1.0f, nullptr});
           });
         },
         {}},
        {"pack f32, scale + stats",
         [&] {
           each([&](const auto& b) {
             haein::kernels::pack_host({b.data(), b.size(), ElementType::kF32, bucket.data(),
                                        ElementType::kF32, 0.5f, &stats});
           });
         },
         {}},
        {"pack f32 -> bf16, scale",
         [&] {
           each([&](const auto& b) {
             haein::kernels::pack_host({b.data(), b.size(), ElementType::kF32, narrow.data(),
                                        ElementType::kBF16, 0.5f, nullptr});
           });
         },
         {}},
        {"unpack f32",
         [&] {
           each([&](const auto& b) {
             haein::kernels::unpack_host({b.data(), b.size(), ElementType::kF32, source.data(),
                                          ElementType::kF32, 1.0f, false});
           });
         },
         {}},
        {"unpack f32, scale",
         [&] {
           each([&](const auto& b) {
             haein::kernels::unpack_host({b.data(), b.size(), ElementType::kF32, source.data(),
                                          ElementType::kF32, 0.5f, false});
           });
         },
         {}},
        {"unpack f32, accumulate",
         [&] {
           each([&](const auto& b) {
             haein::kernels::unpack_host({b.data(), b.size(), ElementType::kF32, source.data(),
                                          ElementType::kF32, 1.0f, true});
           });
         },
         {}},
        {"unpack bf16 -> f32",
         [&] {
           each([&](const auto& b) {
             haein::kernels::unpack_host({b.data(), b.size(), ElementType::kF32, narrow.data(),
                                          ElementType::kBF16, 1.0f, false});
           });
         },
         {}},
    };
    for (int r = 0; r <= o.repeats; ++r) {
      for (Row& row : rows) {
        const auto start = std::chrono::steady_clock::now();
        row.run();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r > 0) row.seconds.push_back(s);  // repeat 0 warms up
      }
    }
    const double bytes = static_cast<double>(total) * 4;
    const double memcpy_time = median(rows[0].seconds);
    if (leader) {
      std::printf("#\n# buckets of %g MiB (%zu)\n", bucket_mb, buckets.size());
      std::printf("# %-26s %10s %10s %10s %12s\n", "operation", "median ms", "spread ms", "GB/s",
                  "vs memcpy");
    }
    for (const Row& row : rows) {
      const double m = median(row.seconds);
      const auto [lo, hi] = std::minmax_element(row.seconds.begin(), row.seconds.end());
      std::vector<double> us;
      for (const double s : row.seconds) us.push_back(s * 1e6);
      std::string key;
      for (const char c : row.name) {
        if (std::isalnum(static_cast<unsigned char>(c)))
          key += c;
        else if (!key.empty() && key.back() != '_')
          key += '_';
      }
      if (!key.empty() && key.back() == '_') key.pop_back();
      if (leader) {
        std::printf("  %-26s %10.2f %10.2f %10.2f %11.2fx\n", row.name.c_str(), m * 1e3,
                    (*hi - *lo) * 1e3, bytes / m / 1e9, memcpy_time / m);
        csv.row({o.model, format("%g", bucket_mb), std::to_string(buckets.size()), key,
                 format("%.3f", m * 1e3), format("%.3f", (*hi - *lo) * 1e3),
                 format("%.3f", bytes / m / 1e9), format("%.4f", memcpy_time / m)});
      }
      measurements.push_back(
          {"kernel/" + o.model + "/bucket_" + format("%g", bucket_mb) + "MiB",
           key,
           us,
           {{"median_ms", m * 1e3}, {"gbs", bytes / m / 1e9}, {"vs_memcpy", memcpy_time / m}}});
    }
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
