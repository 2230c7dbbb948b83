#pragma once
// What a run reports, on rank 0: a log line per step (every --log-every), loss.csv (one
// row per step; a resumed run keeps the rows up to its checkpoint and rewrites the rest),
// and at the end the final lines, summary.json and the loss plot. The other ranks' sinks
// only count.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace haein::examples {

/// Loss and accuracy over the test set.
struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

/// One optimizer step, over all ranks.
struct StepRecord {
  std::uint64_t step = 0;
  double loss = 0;                 ///< mean over the global batch
  double accuracy = 0;             ///< of the global batch
  double seconds = 0;              ///< of this rank
  std::optional<Evaluation> test;  ///< when this step evaluated
};

/// How the run ended.
struct RunSummary {
  std::uint64_t step = 0;
  int ranks = 0;
  Evaluation test;
  std::uint64_t parameter_checksum = 0;
  bool reached_target = false;
  double target_accuracy = 0;
  std::size_t buckets = 0;
  double bucket_cap_mb = 0;
  std::string wire;
  std::string checkpoint;
  std::string timeline;
};

class MetricsSink {
 public:
  /// Writes into `out` when `leader`; keeps loss.csv's rows up to `resumed_step`. `plot` is
  /// the plot script, or empty for none.
  MetricsSink(const std::string& out, bool leader, std::uint64_t resumed_step, std::uint64_t steps,
              std::uint64_t log_every, std::size_t global_batch, std::string plot);

  /// The start-up line (rank 0).
  void announce(const std::string& line) const;
  void record(const StepRecord& step);
  void finish(const RunSummary& run);

 private:
  void write_summary_json(const RunSummary& run) const;
  void plot();

  std::string out_;
  std::string csv_path_;
  bool leader_;
  std::uint64_t steps_;
  std::uint64_t log_every_;
  std::size_t global_batch_;
  std::string plot_script_;
  std::ofstream csv_;
  double busy_seconds_ = 0;
  std::uint64_t timed_steps_ = 0;
};

}  // namespace haein::examples
