#include "train_options.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "haein/common/cli.hpp"
#include "haein/common/error.hpp"

namespace haein::examples {

namespace po = boost::program_options;

namespace {

po::options_description describe(TrainOptions& o) {
  po::options_description d("train_mlp: data-parallel MLP training (run it with haein run)");
  FaultPlan& f = o.faults;
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
      "no-plot", "do not run scripts/plot")("kill-rank", po::value(&f.kill_rank),
                                            "fault injection: this rank SIGKILLs itself ...")(
      "kill-at-step", po::value(&f.kill_at_step), "... after this step (first attempt only)")(
      "kill-signal", po::value(&f.kill_signal)->default_value(f.kill_signal),
      "... with this signal: KILL, or STOP (the rank hangs, stopped)")(
      "perturb-rank", po::value(&f.perturb_rank),
      "fault injection: this rank changes a weight ...")(
      "perturb-at-step", po::value(&f.perturb_at_step), "... after this step");
  return d;
}

/// Parses into `vm`; of a flag given twice, the later one counts, so that launch scripts
/// can append overrides.
void parse(int argc, char** argv, const po::options_description& d, po::variables_map& vm) {
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(d).run();
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
}

void check(const TrainOptions& o) {
  if (o.steps == 0) throw InvalidArgument("--steps must be positive");
  if (o.global_batch == 0) throw InvalidArgument("--global-batch must be positive");
  if (!(o.learning_rate > 0)) throw InvalidArgument("--lr must be positive");
  if (o.wire != "f32" && o.wire != "bf16" && o.wire != "f16")
    throw InvalidArgument("--wire '" + o.wire + "': expected f32, bf16 or f16");
  if (o.device != "auto" && o.device != "cpu" && o.device != "gpu")
    throw InvalidArgument("--device '" + o.device + "': expected cpu, gpu or auto");
  if (o.faults.kill_signal != "KILL" && o.faults.kill_signal != "STOP")
    throw InvalidArgument("--kill-signal '" + o.faults.kill_signal + "': expected KILL or STOP");
}

}  // namespace

TrainOptions parse_options(int argc, char** argv) {
  TrainOptions o;
  const po::options_description d = describe(o);
  po::variables_map vm;
  parse(argc, argv, d, vm);
  if (vm.count("help")) {
    std::cout << d << "\n";
    throw HelpShown{};
  }
  o.plot = vm.count("no-plot") == 0;
  if (o.checkpoint_dir.empty())
    o.checkpoint_dir = (std::filesystem::path(o.out) / "checkpoints").string();
  check(o);
  return o;
}

std::vector<std::size_t> layer_sizes(const TrainOptions& o) {
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

}  // namespace haein::examples
