#pragma once
/// @file
/// Calibration of the cost model against measurements: nccl-tests output as users already
/// produce it (all_reduce_perf and friends), turned into measured points on a cluster's
/// placement, and a fit of the model's parameters to them.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "haein/topology/cost_model.hpp"

namespace haein::topology {

/// One nccl-tests output file.
struct NcclTestsRun {
  std::string source;  ///< file name, for messages
  Collective collective = Collective::kAllReduce;
  /// Host and CUDA device of each rank, in rank order, from the "# Rank N ... on HOST
  /// device D" lines; empty when the file has none.
  struct RankLine {
    std::string host;
    int device = 0;
  };
  std::vector<RankLine> ranks;
  int ranks_declared = 0;  ///< from the rank lines, or 0
  /// NCCL_ALGO when the file says (a "NCCL_ALGO=..." anywhere in it), else empty.
  std::string algorithm;
  struct Row {
    double bytes = 0;
    double time_us = 0;
    double busbw_gbs = 0;
    int line = 0;
  };
  std::vector<Row> rows;  ///< out-of-place columns
};

/// Reads nccl-tests output. The collective comes from a "Collective test starting: X"
/// line, else from the file name (all_reduce_perf.log), else `fallback`. Throws ParseError
/// naming the line when the table is malformed or holds no rows.
NcclTestsRun parse_nccl_tests(std::string_view text, const std::string& source,
                              std::optional<Collective> fallback = std::nullopt);

/// One measured point on a placement.
struct Measurement {
  std::string label;  ///< source and line, for reports
  Collective collective = Collective::kAllReduce;
  std::vector<RankSite> ranks;
  double bytes = 0;
  double busbw_gbs = 0;
  /// Measured time, when known. Small sizes are compared by time: nccl-tests prints their
  /// bandwidth as 0.00.
  double seconds = 0;
  std::optional<Algorithm> algorithm;  ///< what NCCL ran, when known; else its best choice
};

/// log(predicted / measured) of a point's bandwidth (by time when the point has one): 0 is
/// exact, positive predicts it faster than it was.
double log_error(const CostModel& model, const Measurement& point);

/// The points of a run on `cluster`: ranks go to the nodes the rank lines name (by
/// hostname) and their devices; when a host is not in the cluster, the run's hosts map in
/// order onto the cluster's nodes in switch-tree order, and a line in `notes` says so.
/// Throws InvalidArgument when the cluster has too few nodes or GPUs. Rows smaller than
/// `min_bytes` are left out.
std::vector<Measurement> measurements_of(const NcclTestsRun& run, const Cluster& cluster,
                                         int gpus_per_node_hint = 0, double min_bytes = 0,
                                         std::vector<std::string>* notes = nullptr);

/// The model's prediction for a measured point: its algorithm if known, else the best.
Prediction predict_measurement(const CostModel& model, const Measurement& point);

struct FitReport {
  CostParameters parameters;
  std::vector<CostParam> fitted;  ///< the parameters the fit moved
  double rms_before = 0;          ///< root mean square of log(predicted / measured)
  double rms_after = 0;
  double worst_before = 0;  ///< largest |predicted / measured - 1|
  double worst_after = 0;
};

/// Fits `free` parameters (starting from `start`) to the points by coordinate descent on
/// the squared log error, each parameter within its range. A weak pull toward the starting
/// values keeps parameters the points say nothing about where they were.
FitReport fit_parameters(const Cluster& cluster, const CostParameters& start,
                         std::span<const Measurement> points, std::span<const CostParam> free);

/// Points measured on one cluster.
struct CalibrationSet {
  const Cluster* cluster = nullptr;
  std::vector<Measurement> points;
  /// Leaf down-links per up-link the points' traffic saw (CostParameters).
  double spine_oversubscription = 1.0;
};
/// The same over points from several clusters (the published points).
FitReport fit_parameters(std::span<const CalibrationSet> sets, const CostParameters& start,
                         std::span<const CostParam> free);

/// The parameters a set of points can inform: latencies where points are small,
/// bandwidth efficiencies where they are large, per GPU generation and algorithm present.
std::vector<CostParam> informed_parameters(const Cluster& cluster,
                                           std::span<const Measurement> points);

}  // namespace haein::topology
