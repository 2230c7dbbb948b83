// One training step's gradient exchange for a real model's parameter list, on host ranks:
// the GradBucketer (default options unless told otherwise) against two baselines measured
// in the same run, interleaved round by round:
//   per-tensor  one MPI_Allreduce per gradient, in place, last layer first (as hooks fire);
//   flat        one MPI_Allreduce over all gradients in one buffer (copies not counted).
//
//   mpirun -np 2 haein-bench bucket [--model gpt2-124m] [--rounds 7]
//
// Prints the median, min and max step time of each method over the rounds (rank 0's view
// of the slowest rank: each time is the max over ranks), and the speed-up of each over
// the two baselines. Extra rows: gradient views, bf16 on the wire, fixed piece sizes.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/commands.hpp"
#include "haein/common/log.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"
#include "model_list.hpp"
#include "statistics.hpp"

namespace {

using haein::bench::median;

using haein::runtime::BucketerOptions;
using haein::runtime::Communicator;
using haein::runtime::DataType;
using haein::runtime::GradBucketer;

/// Seconds of `step`, the slowest rank's.
double timed(const std::function<void()>& step) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = std::chrono::steady_clock::now();
  step();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return seconds;
}

struct Method {
  std::string name;
  std::function<void()> step;
  std::vector<double> times;
};

}  // namespace

int haein::bench::bucket_command(int argc, char** argv) {
  std::string model_path = "gpt2-124m";
  int rounds = 7;
  bool extras = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc)
      model_path = argv[++i];
    else if (arg == "--rounds" && i + 1 < argc)
      rounds = std::stoi(argv[++i]);
    else if (arg == "--no-extras")
      extras = false;
    else {
      std::fprintf(stderr,
                   "usage: haein-bench bucket [--model NAME|FILE] [--rounds N] [--no-extras]\n");
      return 2;
    }
  }
  {  // errors reach haein-bench's main, which names them and sets the exit code
    Communicator comm = Communicator::world();
    const auto model = haein::bench::load_model(model_path);
    std::size_t total = 0;
    for (const auto& p : model) total += p.count;
    // Gradients: small integers, so every method's result can be checked exactly.
    std::vector<std::vector<float>> gradients(model.size());
    for (std::size_t p = 0; p < model.size(); ++p)
      gradients[p].assign(model[p].count, static_cast<float>((p + comm.rank()) % 7));
    std::vector<float> flat(total, 1.0f);

    std::vector<Method> methods;
    methods.push_back({"per-tensor MPI_Allreduce",
                       [&] {
                         for (std::size_t p = model.size(); p-- > 0;)
                           MPI_Allreduce(MPI_IN_PLACE, gradients[p].data(),
                                         static_cast<int>(gradients[p].size()), MPI_FLOAT, MPI_SUM,
                                         MPI_COMM_WORLD);
                       },
                       {}});
    methods.push_back({"flat MPI_Allreduce",
                       [&] {
                         // 124M floats fit an int count; larger models go in int-sized calls.
                         for (std::size_t at = 0; at < total; at += 1u << 30) {
                           const std::size_t n = std::min<std::size_t>(total - at, 1u << 30);
                           MPI_Allreduce(MPI_IN_PLACE, flat.data() + at, static_cast<int>(n),
                                         MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                         }
                       },
                       {}});

    if (extras) {
      for (const std::size_t piece : {std::size_t{1} << 17, std::size_t{1} << 20}) {
        methods.push_back({"flat, MPI_Allreduce per " + std::to_string(piece * 4 / 1024) + " KiB",
                           [&, piece] {
                             for (std::size_t at = 0; at < total; at += piece)
                               MPI_Allreduce(MPI_IN_PLACE, flat.data() + at,
                                             static_cast<int>(std::min(piece, total - at)),
                                             MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                           },
                           {}});
      }
    }
    std::vector<std::unique_ptr<GradBucketer>> bucketers;
    std::vector<std::vector<std::vector<float>>> own_gradients;
    auto add_bucketer = [&](const std::string& name, BucketerOptions options) {
      auto bucketer = std::make_unique<GradBucketer>(comm, options);
      own_gradients.emplace_back(model.size());
      auto& mine = own_gradients.back();
      for (std::size_t p = 0; p < model.size(); ++p) {
        mine[p].assign(model[p].count, 1.0f);
        bucketer->register_parameter(model[p].name, mine[p].data(), model[p].count, DataType::kF32);
      }
      GradBucketer* b = bucketer.get();
      bucketers.push_back(std::move(bucketer));
      methods.push_back({name,
                         [b, &model] {
                           b->begin_step();
                           for (std::size_t p = model.size(); p-- > 0;) b->mark_ready(p);
                           b->finish();
                         },
                         {}});
    };
    add_bucketer("GradBucketer (defaults)", {});
    if (extras) {
      BucketerOptions views;
      views.gradient_as_bucket_view = true;
      add_bucketer("GradBucketer, gradient views", views);
      BucketerOptions bf16;
      bf16.wire_type = DataType::kBF16;
      add_bucketer("GradBucketer, bf16 on the wire", bf16);
      for (const double mb : {1.0, 4.0, 25.0}) {
        BucketerOptions fixed;
        fixed.host_chunk_mb = mb;
        add_bucketer("GradBucketer, pieces of " + std::to_string(static_cast<int>(mb)) + " MiB",
                     fixed);
      }
    }
    // Round 0 warms up (and builds and tunes the bucketers); then interleaved rounds.
    for (int round = 0; round <= rounds; ++round) {
      for (Method& method : methods) {
        const double seconds = timed(method.step);
        if (round > 0) method.times.push_back(seconds);
      }
    }
    if (comm.rank() == 0) {
      const double per_tensor = median(methods[0].times);
      const double flat_time = median(methods[1].times);
      std::printf("# %s: %zu tensors, %zu f32 elements (%.1f MB), %d ranks, %d rounds\n",
                  model_path.c_str(), model.size(), total, total * 4.0 / 1e6, comm.size(), rounds);
      std::printf("# GradBucketer (defaults) tuned host pieces: %.2f MiB\n",
                  bucketers.front()->host_chunk_mb());
      std::printf("# %-34s %10s %10s %10s %9s %12s %9s\n", "method", "median ms", "min ms",
                  "max ms", "GB/s", "vs per-ten.", "vs flat");
      for (const Method& method : methods) {
        const double m = median(method.times);
        std::printf("  %-34s %10.1f %10.1f %10.1f %9.2f %11.2fx %8.2fx\n", method.name.c_str(),
                    m * 1e3, *std::min_element(method.times.begin(), method.times.end()) * 1e3,
                    *std::max_element(method.times.begin(), method.times.end()) * 1e3,
                    total * 4.0 / m / 1e9, per_tensor / m, flat_time / m);
      }
    }
    return 0;
  }
}
