// `haein topo calibrate`: nccl-tests output in, the cost model's parameters fitted to it,
// the cluster file written with them.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/launcher/calibrate.hpp"
#include "haein/topology/calibration.hpp"
#include "haein/topology/formats.hpp"

namespace haein::launcher {

namespace {

using topology::CostModel;
using topology::CostParam;
using topology::CostParameters;
using topology::Measurement;

std::string read_log(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw SysError("nccl-tests output " + path, EISDIR);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SysError("cannot read nccl-tests output " + path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string size_text(double bytes) {
  char buffer[32];
  if (bytes >= 1 << 30) {
    std::snprintf(buffer, sizeof buffer, "%g GiB", bytes / (1 << 30));
  } else if (bytes >= 1 << 20) {
    std::snprintf(buffer, sizeof buffer, "%g MiB", bytes / (1 << 20));
  } else if (bytes >= 1 << 10) {
    std::snprintf(buffer, sizeof buffer, "%g KiB", bytes / (1 << 10));
  } else {
    std::snprintf(buffer, sizeof buffer, "%g B", bytes);
  }
  return buffer;
}

void print_comparison(const topology::Cluster& cluster, const CostParameters& before,
                      const CostParameters& after, const std::vector<Measurement>& points,
                      std::ostream& out) {
  const CostModel old_model(cluster, before);
  const CostModel new_model(cluster, after);
  char line[512];
  std::snprintf(line, sizeof line, "%-28s %-14s %6s %10s %9s %16s %16s\n", "point", "collective",
                "ranks", "size", "measured", "before", "after");
  out << line;
  for (const Measurement& point : points) {
    const topology::Prediction old_p = topology::predict_measurement(old_model, point);
    const topology::Prediction new_p = topology::predict_measurement(new_model, point);
    // Shown within +-9999%: the rest says nothing more.
    const double old_error =
        std::clamp(std::exp(topology::log_error(old_model, point)) - 1, -99.99, 99.99);
    const double new_error =
        std::clamp(std::exp(topology::log_error(new_model, point)) - 1, -99.99, 99.99);
    std::snprintf(
        line, sizeof line, "%-28s %-14s %6zu %10s %9.2f %8.2f (%+5.0f%%) %8.2f (%+5.0f%%) %s\n",
        point.label.c_str(), std::string(name_of(point.collective)).c_str(), point.ranks.size(),
        size_text(point.bytes).c_str(), point.busbw_gbs, old_p.busbw_gbs, 100 * old_error,
        new_p.busbw_gbs, 100 * new_error, std::string(to_string(new_p.algorithm)).c_str());
    out << line;
  }
}

}  // namespace

namespace {

// Where the calibrated cluster goes, and in which format; refused for anything but
// haein's own YAML or JSON (an NCCL XML or a Slurm file given as CLUSTER is not
// overwritten with YAML).
struct Target {
  std::string path;
  bool json = false;
};

Target target_of(const CalibrateOptions& options) {
  Target target{options.output.empty() ? options.cluster : options.output, false};
  target.json = target.path.ends_with(".json");
  if (!options.dry_run && !target.json && !target.path.ends_with(".yaml") &&
      !target.path.ends_with(".yml")) {
    throw InvalidArgument(
        target.path +
        (options.output.empty() ? " (a preset or a file not in haein's YAML or JSON)" : "") +
        ": the calibrated cluster is written as YAML or JSON; give --output FILE.yaml (or "
        ".json), or --dry-run");
  }
  return target;
}

std::vector<Measurement> read_points(const CalibrateOptions& options,
                                     const topology::Cluster& cluster, std::ostream& out) {
  std::vector<Measurement> points;
  std::vector<std::string> notes;
  for (const std::string& path : options.logs) {
    const topology::NcclTestsRun run = topology::parse_nccl_tests(read_log(path), path);
    const std::vector<Measurement> run_points =
        topology::measurements_of(run, cluster, 0, options.min_bytes, &notes);
    points.insert(points.end(), run_points.begin(), run_points.end());
  }
  for (const std::string& note : notes) out << "note: " << note << "\n";
  if (points.empty()) {
    throw InvalidArgument("no rows of at least " + size_text(options.min_bytes) +
                          " in the nccl-tests output");
  }
  // A row the model cannot predict (one rank, an algorithm that cannot run it) would pull
  // the fit anywhere: refuse it by name.
  const CostModel model(cluster);
  for (const Measurement& point : points) {
    const topology::Prediction p = topology::predict_measurement(model, point);
    if (!p.applicable) {
      throw InvalidArgument(point.label + ": the cost model cannot predict this row: " + p.why_not);
    }
  }
  return points;
}

std::vector<CostParam> parameters_to_fit(const CalibrateOptions& options,
                                         const topology::Cluster& cluster,
                                         const std::vector<Measurement>& points) {
  if (options.fit.empty()) return topology::informed_parameters(cluster, points);
  std::vector<CostParam> free;
  for (const std::string& name : options.fit) {
    const auto id = topology::cost_param_from_string(name);
    if (!id) {
      throw InvalidArgument(
          "--fit " + printable(name, 80) +
          ": no such cost-model parameter; known: " + topology::cost_param_names());
    }
    free.push_back(*id);
  }
  return free;
}

void print_fit(const topology::FitReport& report, const CostParameters& start,
               const std::vector<CostParam>& free, std::size_t points, std::ostream& out) {
  char line[256];
  std::snprintf(line, sizeof line,
                "%zu points: rms error %.1f%% -> %.1f%%, worst %.1f%% -> %.1f%% (log ratio; "
                "percent of bandwidth)\n",
                points, 100 * report.rms_before, 100 * report.rms_after,
                100 * std::min(report.worst_before, 99.99),
                100 * std::min(report.worst_after, 99.99));
  out << line;
  const auto table = topology::cost_param_table();
  for (CostParam p : free) {
    std::snprintf(line, sizeof line, "  %-28s %10.4g -> %10.4g%s\n",
                  std::string(table[static_cast<int>(p)].name).c_str(), start[p],
                  report.parameters[p], report.parameters[p] == start[p] ? " (kept)" : "");
    out << line;
  }
}

}  // namespace

int topo_calibrate(const CalibrateOptions& options, std::ostream& out) {
  if (options.logs.empty()) {
    throw InvalidArgument("give one or more nccl-tests output files (all_reduce_perf and friends)");
  }
  const Target target = target_of(options);
  topology::Cluster cluster = topology::load_cluster(options.cluster);
  const std::vector<Measurement> points = read_points(options, cluster, out);
  const std::vector<CostParam> free = parameters_to_fit(options, cluster, points);
  const CostParameters start = CostParameters::from(cluster.cost_model);
  const topology::FitReport report = topology::fit_parameters(cluster, start, points, free);
  print_comparison(cluster, start, report.parameters, points, out);
  print_fit(report, start, free, points.size(), out);
  if (options.dry_run) return 0;
  const auto table = topology::cost_param_table();
  for (CostParam p : report.fitted) {
    cluster.cost_model[std::string(table[static_cast<int>(p)].name)] = report.parameters[p];
  }
  replace_file(target.path,
               topology::format_cluster(
                   cluster, target.json ? topology::Format::kJson : topology::Format::kYaml));
  out << "wrote " << target.path << " (cost_model: " << cluster.cost_model.size()
      << " parameters; the whole cluster is written again, without the file's comments)\n";
  return 0;
}

}  // namespace haein::launcher
