// train_mlp: data-parallel training of an MLP classifier on a synthetic task, the way a
// DDP trainer does it. Each rank takes its slice of every global batch; backward hands each
// layer's gradients to the GradBucketer as they become final; SGD with momentum follows.
// Checkpoints in parallel HDF5 every N steps, resumed automatically; the ranks' parameters
// are compared every K steps; loss, accuracy and throughput per step; a loss CSV (and PNG
// through scripts/plot), the runtime's timeline and a summary JSON at the end.
//
//   haein run -n 4 --oversubscribe --backend mpirun -- train_mlp --steps 300 --out run1
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "dataset.hpp"
#include "haein/common/cli.hpp"
#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"
#include "haein/runtime/heartbeat.hpp"
#include "haein/runtime/rank_environment.hpp"
#include "haein/runtime/shared_folder.hpp"
#include "mlp.hpp"
#include "mlp_device.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
extern char** environ;

using haein::Error;
using haein::InvalidArgument;
using namespace haein::examples;
using namespace haein::runtime;

namespace {

// Runs the plot script with argv, never through a shell: --out is whatever the user typed.
bool run_plot(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct Options {
  std::uint64_t steps = 300;
  std::size_t global_batch = 256;
  float learning_rate = 0.05F;
  float momentum = 0.9F;
  std::string hidden = "256,256";
  DatasetShape data;
  std::uint64_t train_samples = 32768;
  std::uint64_t test_samples = 4096;
  std::uint64_t seed = 1;
  std::string out = "train-mlp-out";
  std::string checkpoint_dir;  // default: OUT/checkpoints
  std::uint64_t checkpoint_every = 50;
  std::size_t keep_checkpoints = 3;
  std::uint64_t check_every = 10;
  std::uint64_t eval_every = 50;
  double target_accuracy = 0;
  std::uint64_t log_every = 1;
  double bucket_cap_mb = 0.1;
  std::string wire = "f32";
  std::string device = "auto";
  bool plot = true;
  // Fault injection for the tests: on the first attempt only.
  int kill_rank = -1;
  std::uint64_t kill_at_step = 0;
  std::string kill_signal = "KILL";
  int perturb_rank = -1;
  std::uint64_t perturb_at_step = 0;
};

Options parse_options(int argc, char** argv) {
  Options o;
  po::options_description d("train_mlp: data-parallel MLP training (run it with haein run)");
  d.add_options()("help,h", "this help")("steps", po::value(&o.steps)->default_value(o.steps),
                                         "optimizer steps in all")(
      "global-batch", po::value(&o.global_batch)->default_value(o.global_batch),
      "samples per step over all ranks (a multiple of the rank count)")(
      "lr", po::value(&o.learning_rate)->default_value(o.learning_rate), "learning rate")(
      "momentum", po::value(&o.momentum)->default_value(o.momentum), "SGD momentum")(
      "hidden", po::value(&o.hidden)->default_value(o.hidden), "hidden layer widths")(
      "features", po::value(&o.data.features)->default_value(o.data.features), "input features")(
      "classes", po::value(&o.data.classes)->default_value(o.data.classes), "classes")(
      "noise", po::value(&o.data.noise)->default_value(o.data.noise),
      "standard deviation of the samples around their blob's centre")(
      "train-samples", po::value(&o.train_samples)->default_value(o.train_samples),
      "training set size")(
      "test-samples", po::value(&o.test_samples)->default_value(o.test_samples), "test set size")(
      "seed", po::value(&o.seed)->default_value(o.seed),
      "seed of the data, the shuffle and the initial weights")(
      "out", po::value(&o.out)->default_value(o.out),
      "directory for loss.csv, loss.png, timeline.json, summary.json")(
      "checkpoint-dir", po::value(&o.checkpoint_dir), "default OUT/checkpoints")(
      "checkpoint-every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
      "steps between checkpoints (0: only the last step)")(
      "keep-checkpoints", po::value(&o.keep_checkpoints)->default_value(o.keep_checkpoints),
      "checkpoints kept")("check-every", po::value(&o.check_every)->default_value(o.check_every),
                          "steps between cross-rank parameter checks (0: never)")(
      "eval-every", po::value(&o.eval_every)->default_value(o.eval_every),
      "steps between test-set evaluations (0: only at the end)")(
      "target-accuracy", po::value(&o.target_accuracy)->default_value(o.target_accuracy),
      "stop once the test accuracy reaches this (0: run all steps)")(
      "log-every", po::value(&o.log_every)->default_value(o.log_every), "steps between log lines")(
      "bucket-cap-mb", po::value(&o.bucket_cap_mb)->default_value(o.bucket_cap_mb),
      "GradBucketer bucket cap")("wire", po::value(&o.wire)->default_value(o.wire),
                                 "gradient type on the wire: f32, bf16 or f16")(
      "device", po::value(&o.device)->default_value(o.device),
      "where the layers run: cpu, gpu (cuBLAS, NCCL) or auto (gpu when one is visible)")(
      "no-plot", "do not run scripts/plot")("kill-rank", po::value(&o.kill_rank),
                                            "fault injection: this rank SIGKILLs itself ...")(
      "kill-at-step", po::value(&o.kill_at_step), "... after this step (first attempt only)")(
      "kill-signal", po::value(&o.kill_signal)->default_value(o.kill_signal),
      "... with this signal: KILL, or STOP (the rank hangs, stopped)")(
      "perturb-rank", po::value(&o.perturb_rank),
      "fault injection: this rank changes a weight ...")(
      "perturb-at-step", po::value(&o.perturb_at_step), "... after this step");
  po::variables_map vm;
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(d).run();
    // A later flag overrides an earlier one, so that launch scripts can append overrides.
    auto& items = parsed.options;
    for (auto it = items.begin(); it != items.end();) {
      const bool repeated = std::any_of(std::next(it), items.end(), [&](const po::option& later) {
        return later.string_key == it->string_key;
      });
      it = repeated ? items.erase(it) : std::next(it);
    }
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const po::error& error) {
    throw InvalidArgument(std::string(error.what()) + " (see train_mlp --help)");
  }
  if (vm.count("help")) {
    std::cout << d << "\n";
    throw haein::HelpShown{};
  }
  o.plot = vm.count("no-plot") == 0;
  if (o.checkpoint_dir.empty()) o.checkpoint_dir = (fs::path(o.out) / "checkpoints").string();
  if (o.steps == 0) throw InvalidArgument("--steps must be positive");
  if (o.global_batch == 0) throw InvalidArgument("--global-batch must be positive");
  if (!(o.learning_rate > 0)) throw InvalidArgument("--lr must be positive");
  if (o.wire != "f32" && o.wire != "bf16" && o.wire != "f16") {
    throw InvalidArgument("--wire '" + o.wire + "': expected f32, bf16 or f16");
  }
  if (o.device != "auto" && o.device != "cpu" && o.device != "gpu") {
    throw InvalidArgument("--device '" + o.device + "': expected cpu, gpu or auto");
  }
  if (o.kill_signal != "KILL" && o.kill_signal != "STOP") {
    throw InvalidArgument("--kill-signal '" + o.kill_signal + "': expected KILL or STOP");
  }
  return o;
}

std::vector<std::size_t> layer_sizes(const Options& o) {
  std::vector<std::size_t> sizes{o.data.features};
  std::stringstream in(o.hidden);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      std::size_t used = 0;
      const long width = std::stol(item, &used);
      if (used != item.size() || width <= 0) throw std::invalid_argument(item);
      sizes.push_back(static_cast<std::size_t>(width));
    } catch (const std::logic_error&) {
      throw InvalidArgument("--hidden '" + o.hidden + "': expected widths like 256,256");
    }
  }
  sizes.push_back(o.data.classes);
  return sizes;
}

int restart_count() { return static_cast<int>(haein::settings::kRestartCount.get()); }

// The features and labels of `indices`.
void make_batch(const SyntheticDataset& data, const std::uint64_t* indices, std::size_t count,
                std::vector<float>& x, std::vector<int>& labels) {
  const std::size_t features = data.shape().features;
  x.resize(count * features);
  labels.resize(count);
  for (std::size_t i = 0; i < count; ++i) labels[i] = data.sample(indices[i], &x[i * features]);
}

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

using Forward = std::function<BatchResult(const float* x, const int* labels, std::size_t batch)>;

// The test set, split over the ranks; sums over all ranks.
Evaluation evaluate(const Forward& model, const SyntheticDataset& data, const Options& o,
                    Communicator& comm) {
  const std::uint64_t begin = o.test_samples * comm.rank() / comm.size();
  const std::uint64_t end = o.test_samples * (comm.rank() + 1) / comm.size();
  double sums[2] = {0, 0};
  std::vector<std::uint64_t> indices;
  std::vector<float> x;
  std::vector<int> labels;
  constexpr std::uint64_t kChunk = 512;
  for (std::uint64_t first = begin; first < end; first += kChunk) {
    const std::uint64_t last = std::min(end, first + kChunk);
    indices.clear();
    for (std::uint64_t i = first; i < last; ++i) indices.push_back(SyntheticDataset::kTestBase + i);
    make_batch(data, indices.data(), indices.size(), x, labels);
    const BatchResult r = model(x.data(), labels.data(), indices.size());
    sums[0] += r.loss_sum;
    sums[1] += static_cast<double>(r.correct);
  }
  comm.all_reduce(sums, sums, 2, DataType::kF64, ReduceOp::kSum);
  return {sums[0] / static_cast<double>(o.test_samples),
          sums[1] / static_cast<double>(o.test_samples)};
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

// Every rank must hold the same parameters; a difference means a lost or corrupted
// reduction, and training on would silently fork the model.
void check_replicas(const Mlp& model, std::uint64_t step, Communicator& comm) {
  const std::int64_t mine = static_cast<std::int64_t>(parameter_checksum(model));
  std::vector<std::int64_t> all(static_cast<std::size_t>(comm.size()));
  comm.all_gather(&mine, all.data(), 1, DataType::kI64);
  std::string differing;
  for (int r = 1; r < comm.size(); ++r) {
    if (all[r] != all[0]) {
      differing += (differing.empty() ? "" : ", ") + std::to_string(r) + " (" +
                   hex(static_cast<std::uint64_t>(all[r])) + ")";
    }
  }
  if (!differing.empty()) {
    throw Error("parameters diverged at step " + std::to_string(step) + ": rank 0 has checksum " +
                hex(static_cast<std::uint64_t>(all[0])) + ", ranks " + differing + " differ");
  }
}

// Keeps the rows of loss.csv up to `step` (a resumed run rewrites what came after).
void reset_loss_csv(const std::string& path, std::uint64_t step) {
  std::vector<std::string> kept;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("step,", 0) == 0) continue;
    if (!line.empty() && std::strtoull(line.c_str(), nullptr, 10) <= step) kept.push_back(line);
  }
  std::ofstream out(path, std::ios::trunc);
  out << "step,loss,train_accuracy,samples_per_s,test_accuracy\n";
  for (const std::string& line : kept) out << line << "\n";
}

int train(const Options& o) {
  CommunicatorOptions comm_options = CommunicatorOptions::from_environment();
  std::error_code ec;
  fs::create_directories(o.out, ec);
  fs::create_directories(o.checkpoint_dir, ec);
  if (!fs::is_directory(o.out) || !fs::is_directory(o.checkpoint_dir)) {
    throw InvalidArgument("cannot create the output directories " + o.out + " and " +
                          o.checkpoint_dir);
  }
  if (comm_options.timeline_file.empty()) {
    comm_options.timeline_file = (fs::path(o.out) / "timeline.json").string();
  }
  Communicator comm = Communicator::world(comm_options);
  const int rank = comm.rank();
  const int size = comm.size();
  const bool leader = rank == 0;
  // Every rank writes the checkpoints (parallel HDF5) and rank 0 the rest: a folder private
  // to each host would split them, or hang the collective writes.
  require_shared_folder(comm, o.out, "the output folder (--out)");
  require_shared_folder(comm, o.checkpoint_dir, "the checkpoint folder");
  if (o.keep_checkpoints == 0) {
    throw InvalidArgument(
        "--keep-checkpoints 0 would delete every checkpoint, the one just written too; keep at "
        "least 1");
  }
  if (o.global_batch % static_cast<std::size_t>(size) != 0) {
    throw InvalidArgument("--global-batch " + std::to_string(o.global_batch) +
                          " is not a multiple of the " + std::to_string(size) + " ranks");
  }
  const std::size_t local_batch = o.global_batch / static_cast<std::size_t>(size);

  const SyntheticDataset data(o.data, o.seed);
  Sampler sampler(o.train_samples, o.seed);
  Mlp model(layer_sizes(o), o.seed);
  TrainState state;
  state.seed = o.seed;
  state.cursor = sampler.cursor();
  auto resumed = [&] {
    const auto watched = comm.watch_section("checkpoint read");
    return load_latest_checkpoint(o.checkpoint_dir, model, comm);
  }();
  if (resumed) {
    if (resumed->seed != o.seed) {
      throw InvalidArgument("the checkpoints in " + o.checkpoint_dir + " were made with --seed " +
                            std::to_string(resumed->seed));
    }
    state = *resumed;
    sampler.restore(state.cursor);
    if (leader) {
      std::cout << "resumed from " << checkpoint_path(o.checkpoint_dir, state.step) << " (step "
                << state.step << ", epoch " << state.cursor.epoch << ")" << std::endl;
    }
  }
  check_replicas(model, state.step, comm);

  // On a GPU the layers run there and the host model is refreshed (download) before what
  // reads it: replica checks, checkpoints, the final checksum.
  if (o.device == "gpu" && !gpu_available()) {
    throw InvalidArgument("--device gpu on rank " + std::to_string(rank) + ": " + why_no_gpu());
  }
  const bool on_gpu = o.device == "gpu" || (o.device == "auto" && gpu_available());
  std::unique_ptr<DeviceMlp> gpu;
  if (on_gpu) {
    gpu =
        std::make_unique<DeviceMlp>(model, gpu_for_local_rank(read_rank_environment().local_rank));
  }
  auto refresh_host = [&] {
    if (gpu) gpu->download(model);
  };
  const Forward forward = [&](const float* x, const int* y, std::size_t n) {
    return gpu ? gpu->evaluate(x, y, n) : model.evaluate(x, y, n);
  };

  BucketerOptions bucket_options;
  bucket_options.bucket_cap_mb = o.bucket_cap_mb;
  bucket_options.first_bucket_cap_mb = std::min(o.bucket_cap_mb, 0.02);
  // Fixed pieces and bucket order: the same reductions in the same order on every run, so
  // that a resumed run is bitwise identical to an uninterrupted one.
  bucket_options.host_chunk_mb = 4;
  bucket_options.rebuild_buckets = false;
  if (o.wire != "f32") bucket_options.wire_type = parse_data_type(o.wire);
  if (gpu) bucket_options.stream = gpu->stream();
  GradBucketer bucketer(comm, bucket_options);
  for (std::size_t t = 0; t < model.tensors().size(); ++t) {
    ParameterTensor& tensor = model.tensors()[t];
    bucketer.register_parameter(tensor.name, gpu ? gpu->gradient(t) : tensor.gradient.data(),
                                tensor.gradient.size(), DataType::kF32);
  }
  Heartbeat heartbeat = Heartbeat::from_environment();

  const std::string csv_path = (fs::path(o.out) / "loss.csv").string();
  if (leader) {
    reset_loss_csv(csv_path, state.step);
    std::cout << "train_mlp: " << size << " ranks, " << model.parameter_count()
              << " parameters (layers";
    for (std::size_t s : model.sizes()) std::cout << " " << s;
    std::cout << "), global batch " << o.global_batch << " (" << local_batch << " per rank), "
              << o.steps << " steps, restart " << restart_count() << ", "
              << (gpu ? "layers on the GPU (cuBLAS), gradients through NCCL"
                      : "layers on the host, gradients through the host path")
              << std::endl;
  }
  std::ofstream csv;
  if (leader) csv.open(csv_path, std::ios::app);

  std::vector<float> x;
  std::vector<int> labels;
  Evaluation last_eval{0, -1};
  std::uint64_t last_eval_step = 0;
  double busy_seconds = 0;
  std::uint64_t timed_steps = 0;
  bool reached_target = false;
  while (state.step < o.steps && !reached_target) {
    const auto started = std::chrono::steady_clock::now();
    const std::vector<std::uint64_t> batch = sampler.next_batch(o.global_batch);
    make_batch(data, batch.data() + local_batch * static_cast<std::size_t>(rank), local_batch, x,
               labels);
    bucketer.begin_step();
    const auto layer_done = [&](std::size_t layer) {
      // Reverse registration order, as autograd produces them.
      bucketer.mark_ready(2 * layer + 1);
      bucketer.mark_ready(2 * layer);
    };
    const double divisor = static_cast<double>(local_batch);
    const BatchResult result =
        gpu ? gpu->train_batch(x.data(), labels.data(), local_batch, divisor, layer_done)
            : model.train_batch(x.data(), labels.data(), local_batch, divisor, layer_done);
    bucketer.finish();
    if (gpu)
      gpu->sgd_step(o.learning_rate, o.momentum);
    else
      model.sgd_step(o.learning_rate, o.momentum);
    ++state.step;
    state.cursor = sampler.cursor();
    double sums[2] = {result.loss_sum, static_cast<double>(result.correct)};
    comm.all_reduce(sums, sums, 2, DataType::kF64, ReduceOp::kSum);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    busy_seconds += seconds;
    ++timed_steps;
    heartbeat.beat();

    if (o.perturb_rank == rank && o.perturb_at_step == state.step && restart_count() == 0) {
      refresh_host();
      model.tensors()[0].value[0] += 1e-3F;
      if (gpu) gpu->upload(model);
    }
    if ((o.check_every != 0 && state.step % o.check_every == 0) || state.step == o.steps) {
      refresh_host();
      check_replicas(model, state.step, comm);
    }
    std::string test_column;
    if ((o.eval_every != 0 && state.step % o.eval_every == 0) || state.step == o.steps) {
      last_eval = evaluate(forward, data, o, comm);
      last_eval_step = state.step;
      test_column = std::to_string(last_eval.accuracy);
      reached_target = o.target_accuracy > 0 && last_eval.accuracy >= o.target_accuracy;
    }
    const double loss = sums[0] / static_cast<double>(o.global_batch);
    const double accuracy = sums[1] / static_cast<double>(o.global_batch);
    const double throughput = static_cast<double>(o.global_batch) / seconds;
    if (leader) {
      csv << state.step << "," << loss << "," << accuracy << "," << throughput << "," << test_column
          << "\n";
      csv.flush();
      if (state.step % o.log_every == 0 || !test_column.empty()) {
        char line[160];
        std::snprintf(line, sizeof line,
                      "step %5" PRIu64 "/%" PRIu64
                      "  loss %.4f  batch acc %5.1f%%  %7.0f samples/s",
                      state.step, o.steps, loss, 100 * accuracy, throughput);
        std::cout << line;
        if (!test_column.empty()) {
          std::snprintf(line, sizeof line, "  test acc %.2f%% (loss %.4f)",
                        100 * last_eval.accuracy, last_eval.loss);
          std::cout << line;
        }
        std::cout << std::endl;
      }
    }
    const bool last = state.step == o.steps || reached_target;
    if ((o.checkpoint_every != 0 && state.step % o.checkpoint_every == 0) || last) {
      refresh_host();
      {
        // Parallel HDF5 waits without a timeout inside MPI-IO: the watchdog watches it.
        const auto watched = comm.watch_section("checkpoint write");
        write_checkpoint(o.checkpoint_dir, state, model, comm);
      }
      if (leader) prune_checkpoints(o.checkpoint_dir, o.keep_checkpoints, state.step);
    }
    if (o.kill_rank == rank && o.kill_at_step == state.step && restart_count() == 0) {
      const bool stop = o.kill_signal == "STOP";
      std::cerr << "train_mlp: fault injection: rank " << rank
                << (stop ? " stops itself (SIGSTOP)" : " kills itself") << " after step "
                << state.step << std::endl;
      ::raise(stop ? SIGSTOP : SIGKILL);
    }
  }
  if (last_eval_step != state.step) {
    last_eval = evaluate(forward, data, o, comm);
    last_eval_step = state.step;
  }
  refresh_host();
  check_replicas(model, state.step, comm);
  const std::uint64_t sum = parameter_checksum(model);
  if (leader) {
    const std::string checkpoint = checkpoint_path(o.checkpoint_dir, state.step);
    const std::string timeline = comm.options().timeline_file;
    std::printf("final: step %" PRIu64
                ", test accuracy %.2f%% (loss %.4f), parameter checksum %s\n",
                state.step, 100 * last_eval.accuracy, last_eval.loss, hex(sum).c_str());
    if (reached_target) {
      std::printf("target test accuracy %.2f%% reached at step %" PRIu64 "\n",
                  100 * o.target_accuracy, state.step);
    }
    std::printf("gradients: %zu buckets (cap %.2f MiB), %s on the wire\n",
                bucketer.buckets().size(), o.bucket_cap_mb, o.wire.c_str());
    if (timed_steps > 0) {
      std::printf("throughput: %.0f samples/s (mean over the %" PRIu64 " steps of this run)\n",
                  static_cast<double>(o.global_batch * timed_steps) / busy_seconds, timed_steps);
    }
    std::ofstream summary(fs::path(o.out) / "summary.json");
    summary << "{\"step\": " << state.step << ", \"ranks\": " << size
            << ", \"test_accuracy\": " << last_eval.accuracy
            << ", \"test_loss\": " << last_eval.loss << ", \"parameter_checksum\": \"" << hex(sum)
            << "\", \"checkpoint\": \"" << checkpoint << "\", \"loss_csv\": \"" << csv_path
            << "\", \"timeline\": \"" << timeline << "\"}\n";
    std::cout << "checkpoint: " << checkpoint << "\nloss curve: " << csv_path
              << "\ntimeline:   " << timeline << " (chrome://tracing, Perfetto)" << std::endl;
    csv.close();
    if (o.plot) {
      const std::string png = (fs::path(o.out) / "loss.png").string();
      if (run_plot({HAEIN_PLOT_SCRIPT, "loss", csv_path, "-o", png})) {
        std::cout << "loss plot:  " << png << std::endl;
      } else {
        std::cerr << "warning: " << HAEIN_PLOT_SCRIPT << " failed; the loss curve is in "
                  << csv_path << std::endl;
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return train(parse_options(argc, argv));
  } catch (const haein::HelpShown&) {
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "train_mlp: error: " << error.what() << std::endl;
    const int code = static_cast<int>(haein::exit_code_for(error));
    // Ranks that did not fail may be waiting for this one: end the job, do not finalise.
    haein::runtime::abort_job_on_error(code);
    return code;
  }
}
