#pragma once
// A generated fat tree for benchmarks: DGX B200 nodes "g0001".. in scalable units of 32
// (one leaf each), 16 leaves per spine, spines under one core.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

namespace haein::bench {

inline std::string generated_yaml(int nodes) {
  std::ostringstream out;
  out << "version: 1\nname: generated\nrails: 8\nnodes:\n  - {hostname: \"g[0001-" << nodes
      << "]\", node_type: dgx-b200}\nswitches:\n";
  const int leaves = (nodes + 31) / 32;
  for (int leaf = 0; leaf < leaves; ++leaf) {
    char range[64];
    std::snprintf(range, sizeof range, "g[%04d-%04d]", leaf * 32 + 1,
                  std::min(nodes, leaf * 32 + 32));
    out << "  - {name: leaf" << leaf << ", level: leaf, nodes: \"" << range << "\"}\n";
  }
  const int spines = (leaves + 15) / 16;
  for (int spine = 0; spine < spines; ++spine) {
    out << "  - {name: spine" << spine << ", level: spine, switches: \"leaf[" << spine * 16 << "-"
        << std::min(leaves, spine * 16 + 16) - 1 << "]\"}\n";
  }
  out << "  - {name: core, level: core, switches: \"spine[0-" << spines - 1 << "]\"}\n";
  return out.str();
}

}  // namespace haein::bench
