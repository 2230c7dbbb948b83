// `haein topo calibrate`: nccl-tests output in, the cost model's parameters fitted to it,
// the cluster file written with them.
#include <cmath>
#include <cstdio>
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
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %-14s %6s %10s %9s %16s %16s\n", "point", "collective",
                "ranks", "size", "measured", "before", "after");
  out << line;
  for (const Measurement& point : points) {
    const topology::Prediction old_p = topology::predict_measurement(old_model, point);
    const topology::Prediction new_p = topology::predict_measurement(new_model, point);
    const double old_error = std::exp(topology::log_error(old_model, point)) - 1;
    const double new_error = std::exp(topology::log_error(new_model, point)) - 1;
    std::snprintf(
        line, sizeof line, "%-28s %-14s %6zu %10s %9.2f %8.2f (%+5.0f%%) %8.2f (%+5.0f%%) %s\n",
        point.label.c_str(), std::string(name_of(point.collective)).c_str(), point.ranks.size(),
        size_text(point.bytes).c_str(), point.busbw_gbs, old_p.busbw_gbs, 100 * old_error,
        new_p.busbw_gbs, 100 * new_error, std::string(to_string(new_p.algorithm)).c_str());
    out << line;
  }
}

}  // namespace

int topo_calibrate(const CalibrateOptions& options, std::ostream& out) {
  if (options.logs.empty()) {
    throw InvalidArgument("give one or more nccl-tests output files (all_reduce_perf and friends)");
  }
  const bool preset = options.cluster.starts_with("preset:");
  if (preset && options.output.empty() && !options.dry_run) {
    throw InvalidArgument(
        "a preset cannot be written back: give --output FILE for the calibrated "
        "cluster, or --dry-run");
  }
  topology::Cluster cluster = topology::load_cluster(options.cluster);
  std::vector<Measurement> points;
  for (const std::string& path : options.logs) {
    const topology::NcclTestsRun run = topology::parse_nccl_tests(read_log(path), path);
    const std::vector<Measurement> run_points =
        topology::measurements_of(run, cluster, 0, options.min_bytes);
    points.insert(points.end(), run_points.begin(), run_points.end());
  }
  if (points.empty()) {
    throw InvalidArgument("no rows of at least " + size_text(options.min_bytes) +
                          " in the nccl-tests output");
  }
  std::vector<CostParam> free;
  if (options.fit.empty()) {
    free = topology::informed_parameters(cluster, points);
  } else {
    for (const std::string& name : options.fit) {
      const auto id = topology::cost_param_from_string(name);
      if (!id) {
        std::string known;
        for (const auto& info : topology::cost_param_table()) {
          known += (known.empty() ? "" : ", ") + std::string(info.name);
        }
        throw InvalidArgument("--fit " + name + ": no such cost-model parameter; known: " + known);
      }
      free.push_back(*id);
    }
  }
  const CostParameters start = CostParameters::from(cluster.cost_model);
  const topology::FitReport report = topology::fit_parameters(cluster, start, points, free);

  print_comparison(cluster, start, report.parameters, points, out);
  char line[160];
  std::snprintf(line, sizeof line,
                "%zu points: rms error %.1f%% -> %.1f%%, worst %.1f%% -> %.1f%% (log ratio; "
                "percent of bandwidth)\n",
                points.size(), 100 * report.rms_before, 100 * report.rms_after,
                100 * report.worst_before, 100 * report.worst_after);
  out << line;
  const auto table = topology::cost_param_table();
  for (CostParam p : free) {
    const auto& info = table[static_cast<int>(p)];
    std::snprintf(line, sizeof line, "  %-28s %10.4g -> %10.4g%s\n", std::string(info.name).c_str(),
                  start[p], report.parameters[p],
                  report.parameters[p] == start[p] ? " (kept)" : "");
    out << line;
  }
  if (options.dry_run) return 0;
  for (CostParam p : report.fitted) {
    cluster.cost_model[std::string(table[static_cast<int>(p)].name)] = report.parameters[p];
  }
  const std::string target = options.output.empty() ? options.cluster : options.output;
  const topology::Format format =
      target.ends_with(".json") ? topology::Format::kJson : topology::Format::kYaml;
  replace_file(target, topology::format_cluster(cluster, format));
  out << "wrote " << target << " (cost_model: " << cluster.cost_model.size() << " parameters)\n";
  return 0;
}

}  // namespace haein::launcher
