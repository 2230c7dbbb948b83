#pragma once
// The published nccl-tests points of topology/calibration/published.csv, each with the
// cluster it was measured on (built from the presets' node types) and its ranks.
#include <memory>
#include <string>
#include <vector>

#include "haein/topology/calibration.hpp"

namespace haein::topology::testing {

struct PublishedPoint {
  std::string system;
  int racks = 0;
  int nodes = 0;
  int gpus_per_node = 0;
  double oversubscription = 1;  ///< of the leaves' up-links in the point's fabric
  bool check = false;           ///< held to the +-15% goal; else the note says why not
  /// One of several published runs of the same system and size that disagree by more
  /// than 15%: their geometric mean is held to the goal.
  bool spread = false;
  std::string source;
  std::string note;
  int line = 0;
  std::shared_ptr<const Cluster> cluster;
  Measurement measurement;
};

/// Reads the data file; throws on a malformed line.
std::vector<PublishedPoint> load_published_points(const std::string& path);

}  // namespace haein::topology::testing
