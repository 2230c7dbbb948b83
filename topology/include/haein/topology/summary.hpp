#pragma once
/// @file
/// Human-readable summary of a cluster (`haein topo show`).

#include <ostream>

#include "haein/topology/model.hpp"

namespace haein::topology {

/// Prints name, "nodes: N", "gpus: M", GPU models, NVLink domains, rails and switches per
/// level, one fact per line.
void print_summary(const Cluster& cluster, std::ostream& out);

}  // namespace haein::topology
