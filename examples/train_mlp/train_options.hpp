#pragma once
// train_mlp's command line: every flag, its default and its checks, in one struct.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dataset.hpp"

namespace haein::examples {

/// Faults the tests inject, on the first attempt of a job only (restart count 0).
struct FaultPlan {
  int kill_rank = -1;                 ///< this rank SIGKILLs (or SIGSTOPs) itself ...
  std::uint64_t kill_at_step = 0;     ///< ... after this step
  std::string kill_signal = "KILL";   ///< KILL or STOP
  int perturb_rank = -1;              ///< this rank changes a weight ...
  std::uint64_t perturb_at_step = 0;  ///< ... after this step
};

struct TrainOptions {
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
  FaultPlan faults;
};

/// Parses and checks the flags (a later flag overrides an earlier one). Throws
/// InvalidArgument for a bad one, HelpShown after printing --help.
TrainOptions parse_options(int argc, char** argv);

/// Features, the --hidden widths, classes.
std::vector<std::size_t> layer_sizes(const TrainOptions& o);

}  // namespace haein::examples
