// `haein-bench bucket`: one training step's gradient exchange for a real model's
// parameter list, on host ranks, every method measured in the same run, interleaved round
// by round:
//   per-tensor   one MPI_Allreduce per gradient, in place, last layer first (as hooks fire);
//   flat         one MPI_Allreduce over all gradients in one buffer (copies not counted);
//   flat/512K    the same buffer in 512 KiB MPI_Allreduce calls (the regime Open MPI 4.1
//                is fastest in on one host);
//   GradBucketer at each --caps value, with f32 and with bf16 on the wire; with gradient
//                views; with host pieces through the shared-memory segment instead of the
//                peers' memory; with host pieces through MPI.
//
//   mpirun -np 2 haein-bench bucket [--model gpt2-124m] [--rounds 7] [--caps 1,5,25,100]
//
// Times are the slowest rank's per round; the table prints the median, the spread and the
// ratio of each method to the flat all-reduce and to the per-tensor one.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_results.hpp"
#include "commands.hpp"
#include "haein/common/error.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"
#include "model_list.hpp"
#include "options.hpp"
#include "statistics.hpp"

namespace haein::bench {

namespace {

namespace po = boost::program_options;
using runtime::BucketerOptions;
using runtime::Communicator;
using runtime::DataType;
using runtime::GradBucketer;

struct Options : OutputOptions {
  int rounds = 7;
  std::vector<double> caps{1, 5, 25, 100};
};

Options parse(int argc, char** argv) {
  Options o;
  std::string caps = "1,5,25,100";
  po::options_description d(
      "haein-bench bucket: one step's gradient exchange of a real model (under mpirun)");
  d.add_options()("help,h", "this help");
  o.add_model(d);
  d.add_options()("rounds", po::value(&o.rounds)->default_value(o.rounds),
                  "timed rounds (after one warm-up)")("caps", po::value(&caps)->default_value(caps),
                                                      "bucket caps in MiB, comma-separated");
  o.add_files(d, "write the table as CSV (rank 0)",
              "write every rank's step times to this HDF5 file");
  parse_options(d, argc, argv, "bucket");
  if (o.rounds < 1) throw InvalidArgument("--rounds must be at least 1");
  o.caps = parse_positive_list("--caps", caps);
  return o;
}

struct Method {
  std::string name;  ///< as printed
  std::string key;   ///< HDF5 dataset and CSV method name
  double cap_mb = 0;
  std::string wire = "f32";
  std::function<void()> step;
  std::vector<double> slowest;  ///< seconds per round, the slowest rank's
  std::vector<double> mine;     ///< this rank's
};

std::string cap_text(double cap) { return format("%g", cap); }

/// Every method's gradients and its measurements: one set of gradients for every method
/// that reduces in place (averaging keeps the values bounded), one flat buffer, and each
/// view bucketer's own buckets, so memory stays at about three times the model plus one
/// copy per view bucketer.
class BucketRun {
 public:
  BucketRun(const Options& o, std::vector<ModelParameter> model, Communicator& comm)
      : o_(o), comm_(comm), model_(std::move(model)) {
    for (const auto& p : model_) total_ += p.count;
    gradients_.resize(model_.size());
    for (std::size_t p = 0; p < model_.size(); ++p)
      gradients_[p].assign(model_[p].count, static_cast<float>((p + comm.rank()) % 7));
    flat_.assign(total_, 1.0f);
    add_baselines();
    add_bucketers();
  }

  /// Round 0 warms up (and builds and tunes the bucketers); then interleaved rounds.
  void measure() {
    const bool progress = leader() && ::isatty(STDERR_FILENO);
    for (int round = 0; round <= o_.rounds; ++round) {
      for (Method& method : methods_) {
        MPI_Barrier(MPI_COMM_WORLD);
        const auto start = std::chrono::steady_clock::now();
        method.step();
        const double mine =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double slowest = mine;
        MPI_Allreduce(MPI_IN_PLACE, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (round == 0) continue;
        method.mine.push_back(mine);
        method.slowest.push_back(slowest);
      }
      if (progress) std::fprintf(stderr, "\r# round %d/%d ", round, o_.rounds);
    }
    if (progress) std::fprintf(stderr, "\r%20s\r", "");
  }

  /// The table and the CSV (rank 0), and every rank's times in the HDF5 file.
  void report(const RunAttributes& attributes) const {
    const double per_tensor = median(methods_[0].slowest);
    const double flat_time = median(methods_[1].slowest);
    CsvFile csv;
    if (leader()) {
      csv = CsvFile(o_.csv, {"model", "ranks", "method", "cap_mb", "wire", "median_ms", "min_ms",
                             "max_ms", "spread_pct", "gbs", "vs_per_tensor", "vs_flat"});
      print_heading(attributes);
    }
    std::vector<Measurement> measurements;
    for (const Method& method : methods_) {
      const double m = median(method.slowest);
      const auto [low, high] = std::minmax_element(method.slowest.begin(), method.slowest.end());
      const double spread = 100 * (*high - *low) / m;
      const double gbs = total_ * 4.0 / m / 1e9;
      if (leader()) {
        std::printf("  %-38s %10.1f %7.0f%% %8.2f %10.2fx %8.2fx\n", method.name.c_str(), m * 1e3,
                    spread, gbs, per_tensor / m, flat_time / m);
        csv.row({o_.model, std::to_string(comm_.size()), method.key,
                 method.cap_mb > 0 ? cap_text(method.cap_mb) : "", method.wire,
                 format("%.3f", m * 1e3), format("%.3f", *low * 1e3), format("%.3f", *high * 1e3),
                 format("%.1f", spread), format("%.3f", gbs), format("%.4f", per_tensor / m),
                 format("%.4f", flat_time / m)});
      }
      std::vector<double> mine_us;
      for (const double seconds : method.mine) mine_us.push_back(seconds * 1e6);
      measurements.push_back({"bucket/" + o_.model,
                              method.key,
                              mine_us,
                              {{"median_ms", m * 1e3},
                               {"spread", spread / 100},
                               {"vs_per_tensor", per_tensor / m},
                               {"vs_flat", flat_time / m},
                               {"cap_mb", method.cap_mb}}});
    }
    write_files(attributes, measurements);
  }

 private:
  bool leader() const { return comm_.rank() == 0; }

  void add_baselines() {
    methods_.push_back({"per-tensor MPI_Allreduce",
                        "per_tensor",
                        0,
                        "f32",
                        [this] {
                          for (std::size_t p = model_.size(); p-- > 0;)
                            MPI_Allreduce(MPI_IN_PLACE, gradients_[p].data(),
                                          static_cast<int>(gradients_[p].size()), MPI_FLOAT,
                                          MPI_SUM, MPI_COMM_WORLD);
                        },
                        {},
                        {}});
    methods_.push_back({"flat MPI_Allreduce",
                        "flat",
                        0,
                        "f32",
                        [this] {
                          // int counts: larger models go in calls of 2^30 elements.
                          for (std::size_t at = 0; at < total_; at += 1u << 30) {
                            const std::size_t n = std::min<std::size_t>(total_ - at, 1u << 30);
                            MPI_Allreduce(MPI_IN_PLACE, flat_.data() + at, static_cast<int>(n),
                                          MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                          }
                        },
                        {},
                        {}});
    methods_.push_back({"flat, MPI_Allreduce per 512 KiB",
                        "flat_512k",
                        0,
                        "f32",
                        [this] {
                          constexpr std::size_t kPiece = 1u << 17;
                          for (std::size_t at = 0; at < total_; at += kPiece)
                            MPI_Allreduce(MPI_IN_PLACE, flat_.data() + at,
                                          static_cast<int>(std::min(kPiece, total_ - at)),
                                          MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                        },
                        {},
                        {}});
  }

  void add_bucketers() {
    const BucketerOptions defaults;
    for (const double cap : o_.caps) {
      BucketerOptions options;
      options.bucket_cap_mb = cap;
      const bool is_default = cap == defaults.bucket_cap_mb;
      add_bucketer(
          "GradBucketer, cap " + cap_text(cap) + " MiB" + (is_default ? " (defaults)" : ""),
          "bucketer_cap_" + cap_text(cap), options);
      options.wire_type = DataType::kBF16;
      add_bucketer("GradBucketer, cap " + cap_text(cap) + " MiB, bf16 wire",
                   "bucketer_cap_" + cap_text(cap) + "_bf16", options);
    }
    BucketerOptions views;
    views.gradient_as_bucket_view = true;
    add_bucketer("GradBucketer, gradient views", "bucketer_views", views);
    BucketerOptions segment;
    segment.host_peer_copy = false;
    add_bucketer("GradBucketer, shared-memory segment", "bucketer_segment_pieces", segment);
    BucketerOptions mpi;
    mpi.host_shared_memory = false;
    add_bucketer("GradBucketer, pieces through MPI", "bucketer_mpi_pieces", mpi);
  }

  void add_bucketer(const std::string& name, const std::string& key,
                    const BucketerOptions& options) {
    auto bucketer = std::make_unique<GradBucketer>(comm_, options);
    std::vector<std::vector<float>>* registered = &gradients_;
    if (options.gradient_as_bucket_view) {
      // Views move the gradients into the buckets: these are only the starting values.
      view_gradients_.push_back(gradients_);
      registered = &view_gradients_.back();
    }
    for (std::size_t p = 0; p < model_.size(); ++p)
      bucketer->register_parameter(model_[p].name, (*registered)[p].data(), model_[p].count,
                                   DataType::kF32);
    GradBucketer* b = bucketer.get();
    bucketers_.push_back(std::move(bucketer));
    methods_.push_back({name,
                        key,
                        options.bucket_cap_mb,
                        options.wire_type ? "bf16" : "f32",
                        [this, b] {
                          b->begin_step();
                          for (std::size_t p = model_.size(); p-- > 0;) b->mark_ready(p);
                          b->finish();
                        },
                        {},
                        {}});
  }

  void print_heading(const RunAttributes& attributes) const {
    std::printf(
        "# haein-bench bucket: %s, %zu tensors, %zu f32 elements (%.1f MB), %d ranks on %s\n",
        o_.model.c_str(), model_.size(), total_, total_ * 4.0 / 1e6, comm_.size(),
        attributes.at("hosts").c_str());
    std::printf(
        "# one step's exchange; the slowest rank's time, median over %d rounds; "
        "spread = (max - min) / median\n",
        o_.rounds);
    std::printf(
        "# GradBucketer host pieces after tuning: %.3f MiB (shared memory), %.3f MiB (MPI)\n",
        bucketers_.front()->host_chunk_mb(), bucketers_.back()->host_chunk_mb());
    std::printf("# %-38s %10s %8s %8s %11s %9s\n", "method", "median ms", "spread", "GB/s",
                "vs per-ten.", "vs flat");
  }

  void write_files(const RunAttributes& attributes,
                   const std::vector<Measurement>& measurements) const {
    if (!o_.hdf5.empty()) {
      RunAttributes all = attributes;
      all["benchmark"] = "bucket";
      all["model"] = o_.model;
      all["ranks"] = std::to_string(comm_.size());
      write_hdf5(o_.hdf5, all, measurements);
      if (leader()) std::printf("# HDF5: %s\n", o_.hdf5.c_str());
    }
    if (leader() && !o_.csv.empty()) std::printf("# CSV: %s\n", o_.csv.c_str());
  }

  const Options& o_;
  Communicator& comm_;
  const std::vector<ModelParameter> model_;
  std::size_t total_ = 0;
  std::vector<std::vector<float>> gradients_;
  std::vector<float> flat_;
  std::deque<std::vector<std::vector<float>>> view_gradients_;  // stays put as it grows
  std::vector<std::unique_ptr<GradBucketer>> bucketers_;
  std::vector<Method> methods_;
};

}  // namespace

int bucket_command(int argc, char** argv) {
  const Options o = parse(argc, argv);
  auto model = load_model(o.model);
  Communicator comm = Communicator::world();
  if (comm.size() < 2) throw InvalidArgument("bucket needs at least 2 ranks (run it under mpirun)");
  const RunAttributes attributes = standard_attributes(argc, argv);
  BucketRun run(o, std::move(model), comm);
  run.measure();
  run.report(attributes);
  return 0;
}

}  // namespace haein::bench
