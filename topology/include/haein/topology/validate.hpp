#pragma once
/// @file
/// Consistency checks of a cluster model, each problem with the place it was read from.

#include <string>
#include <vector>

#include "haein/topology/model.hpp"

namespace haein::topology {

struct Problem {
  SourceLocation where;
  std::string message;
};

/// Every problem found: duplicate hostnames, GPUs or NICs on missing NUMA domains, CPUs in
/// two domains, rails out of range, switches naming unknown nodes or switches, nodes in
/// two leaves, nodes outside the tree, NVLink domains naming unknown nodes, and so on.
std::vector<Problem> validate(const Cluster& cluster);

/// Throws ParseError for the first problem (its message counts the others).
void require_valid(const Cluster& cluster);

/// "FILE:LINE: message" (or just the message when the location is unknown).
std::string describe(const Problem& problem);

}  // namespace haein::topology
