#pragma once
/// @file
/// `haein topo calibrate`: fits the cost model to a cluster's own nccl-tests output and
/// writes the fitted parameters into the cluster file (its `cost_model:` section).

#include <ostream>
#include <string>
#include <vector>

namespace haein::launcher {

struct CalibrateOptions {
  std::string cluster;            ///< cluster file (or preset:NAME with `output`)
  std::vector<std::string> logs;  ///< nccl-tests output files
  /// Where to write the calibrated cluster; empty: back into `cluster`.
  std::string output;
  std::vector<std::string> fit;  ///< parameters to fit; empty: those the logs inform
  double min_bytes = 0;          ///< rows below this size are left out
  bool dry_run = false;          ///< print the comparison, write nothing
};

/// Prints measured against predicted bandwidth for every row, before and after the fit,
/// and the parameters it changed; writes the cluster file unless `dry_run`. Throws
/// ParseError for a malformed log and InvalidArgument for a log that does not fit the
/// cluster or an unknown parameter name.
int topo_calibrate(const CalibrateOptions& options, std::ostream& out);

}  // namespace haein::launcher
