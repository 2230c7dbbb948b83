#include "metrics_sink.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "replica_check.hpp"

extern char** environ;

namespace haein::examples {

namespace {

namespace fs = std::filesystem;

constexpr const char* kCsvHeader = "step,loss,train_accuracy,samples_per_s,test_accuracy";

/// Keeps the rows of loss.csv up to `step` (a resumed run rewrites what came after).
void reset_loss_csv(const std::string& path, std::uint64_t step) {
  std::vector<std::string> kept;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("step,", 0) == 0) continue;
    if (!line.empty() && std::strtoull(line.c_str(), nullptr, 10) <= step) kept.push_back(line);
  }
  std::ofstream out(path, std::ios::trunc);
  out << kCsvHeader << "\n";
  for (const std::string& line : kept) out << line << "\n";
}

/// Runs argv, never through a shell: --out is whatever the user typed.
bool run_program(const std::vector<std::string>& args) {
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

}  // namespace

MetricsSink::MetricsSink(const std::string& out, bool leader, std::uint64_t resumed_step,
                         std::uint64_t steps, std::uint64_t log_every, std::size_t global_batch,
                         std::string plot)
    : out_(out),
      csv_path_((fs::path(out) / "loss.csv").string()),
      leader_(leader),
      steps_(steps),
      log_every_(log_every),
      global_batch_(global_batch),
      plot_script_(std::move(plot)) {
  if (!leader_) return;
  reset_loss_csv(csv_path_, resumed_step);
  csv_.open(csv_path_, std::ios::app);
}

void MetricsSink::announce(const std::string& line) const {
  if (leader_) std::cout << line << std::endl;
}

void MetricsSink::record(const StepRecord& s) {
  busy_seconds_ += s.seconds;
  ++timed_steps_;
  if (!leader_) return;
  const double throughput = static_cast<double>(global_batch_) / s.seconds;
  csv_ << s.step << "," << s.loss << "," << s.accuracy << "," << throughput << ","
       << (s.test ? std::to_string(s.test->accuracy) : "") << "\n";
  csv_.flush();
  if (s.step % log_every_ != 0 && !s.test) return;
  char line[160];
  std::snprintf(line, sizeof line,
                "step %5" PRIu64 "/%" PRIu64 "  loss %.4f  batch acc %5.1f%%  %7.0f samples/s",
                s.step, steps_, s.loss, 100 * s.accuracy, throughput);
  std::cout << line;
  if (s.test) {
    std::snprintf(line, sizeof line, "  test acc %.2f%% (loss %.4f)", 100 * s.test->accuracy,
                  s.test->loss);
    std::cout << line;
  }
  std::cout << std::endl;
}

void MetricsSink::finish(const RunSummary& run) {
  if (!leader_) return;
  std::printf("final: step %" PRIu64 ", test accuracy %.2f%% (loss %.4f), parameter checksum %s\n",
              run.step, 100 * run.test.accuracy, run.test.loss,
              hex(run.parameter_checksum).c_str());
  if (run.reached_target)
    std::printf("target test accuracy %.2f%% reached at step %" PRIu64 "\n",
                100 * run.target_accuracy, run.step);
  std::printf("gradients: %zu buckets (cap %.2f MiB), %s on the wire\n", run.buckets,
              run.bucket_cap_mb, run.wire.c_str());
  if (timed_steps_ > 0)
    std::printf("throughput: %.0f samples/s (mean over the %" PRIu64 " steps of this run)\n",
                static_cast<double>(global_batch_ * timed_steps_) / busy_seconds_, timed_steps_);
  write_summary_json(run);
  std::cout << "checkpoint: " << run.checkpoint << "\nloss curve: " << csv_path_
            << "\ntimeline:   " << run.timeline << " (chrome://tracing, Perfetto)" << std::endl;
  csv_.close();
  plot();
}

void MetricsSink::write_summary_json(const RunSummary& run) const {
  nlohmann::ordered_json summary;
  summary["step"] = run.step;
  summary["ranks"] = run.ranks;
  summary["test_accuracy"] = run.test.accuracy;
  summary["test_loss"] = run.test.loss;
  summary["parameter_checksum"] = hex(run.parameter_checksum);
  summary["checkpoint"] = run.checkpoint;
  summary["loss_csv"] = csv_path_;
  summary["timeline"] = run.timeline;
  std::ofstream(fs::path(out_) / "summary.json") << summary.dump(2) << "\n";
}

void MetricsSink::plot() {
  if (plot_script_.empty()) return;
  const std::string png = (fs::path(out_) / "loss.png").string();
  if (run_program({plot_script_, "loss", csv_path_, "-o", png}))
    std::cout << "loss plot:  " << png << std::endl;
  else
    std::cerr << "warning: " << plot_script_ << " failed; the loss curve is in " << csv_path_
              << std::endl;
}

}  // namespace haein::examples
