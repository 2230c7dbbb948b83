// Host multi-tensor kernels against memcpy of the same bytes, in the same run: pack
// (plain, with scale and the fused non-finite/sum-of-squares statistics, with a cast to
// bf16) and unpack (plain, scaled, accumulating), over a real model's tensor list cut into
// buckets of a given size. Medians of interleaved repeats; bandwidth counts the f32
// tensor bytes once (as memcpy's).
//
//   haein-bench kernel [--model NAME|FILE] [--bucket-mb 16] [--repeats 11]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/commands.hpp"
#include "haein/kernels/multi_tensor.hpp"
#include "model_list.hpp"
#include "statistics.hpp"

namespace {

using haein::bench::median;

using haein::kernels::ElementType;
using haein::kernels::PackStats;
using haein::kernels::TensorSlice;

}  // namespace

int haein::bench::kernel_command(int argc, char** argv) {
  std::string model_path = "gpt2-124m";
  double bucket_mb = 16;
  int repeats = 11;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc)
      model_path = argv[++i];
    else if (arg == "--bucket-mb" && i + 1 < argc)
      bucket_mb = std::stod(argv[++i]);
    else if (arg == "--repeats" && i + 1 < argc)
      repeats = std::stoi(argv[++i]);
    else {
      std::fprintf(
          stderr, "usage: haein-bench kernel [--model NAME|FILE] [--bucket-mb MB] [--repeats N]\n");
      return 2;
    }
  }
  {  // errors reach haein-bench's main, which names them and sets the exit code
    const auto model = haein::bench::load_model(model_path);
    std::vector<std::vector<float>> tensors;
    std::size_t total = 0;
    for (const auto& p : model) {
      tensors.emplace_back(p.count, 0.5f);
      total += p.count;
    }
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
    for (int r = 0; r <= repeats; ++r) {
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
    std::printf("# %s: %zu tensors, %.1f MB of f32, buckets of %.0f MiB (%zu), median of %d\n",
                model_path.c_str(), model.size(), bytes / 1e6, bucket_mb, buckets.size(), repeats);
    std::printf("# %-26s %10s %10s %10s %12s\n", "operation", "median ms", "spread ms", "GB/s",
                "vs memcpy");
    for (const Row& row : rows) {
      const double m = median(row.seconds);
      const auto [lo, hi] = std::minmax_element(row.seconds.begin(), row.seconds.end());
      std::printf("  %-26s %10.2f %10.2f %10.2f %11.2fx\n", row.name.c_str(), m * 1e3,
                  (*hi - *lo) * 1e3, bytes / m / 1e9, memcpy_time / m);
    }
    return 0;
  }
}
